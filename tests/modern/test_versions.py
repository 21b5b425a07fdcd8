"""Modern clients through kbridge at the versions librdkafka 2.12 negotiates with its own mock
(Metadata v12, Produce v10, Fetch v16, FindCoordinator v2, ApiVersions v3 with the v0
fallback), with the brokers advertised by host name as on MSK.
"""
import uuid

from conftest import (ADVERTISE_HOST, MODERN_VERSION, assert_only_kbridge_dialled,
                      error_lines, kcat, kcat_metadata, request_versions, responses)

N_GROUP = 600


def test_kcat_metadata_v12_lists_only_kbridge(modern_cluster, tmp_path):
    mock, kb, p, bootstrap = modern_cluster(topics=["orders:6"])
    r = kcat(["-V"])
    assert f"librdkafka {MODERN_VERSION}" in r.stdout + r.stderr, r.stdout + r.stderr

    connect_log = tmp_path / "connect-kcat.log"
    r, md = kcat_metadata(bootstrap, connect_log=connect_log)
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert brokers == {n: f"127.0.0.1:{p.node(n)}" for n in mock.brokers}, brokers
    assert f"{ADVERTISE_HOST}:" not in r.stdout, f"a broker host name leaked:\n{r.stdout}"
    for port in mock.ports():
        assert f":{port}" not in r.stdout, f"a kbmock port ({port}) leaked:\n{r.stdout}"
    (orders,) = [t for t in md["topics"] if t["topic"] == "orders"]
    assert len(orders["partitions"]) == 6, orders

    log = kb.log_text()
    assert request_versions(log, "Metadata") == [12], request_versions(log, "Metadata")
    md_responses = responses(log, "Metadata")
    assert md_responses and all(r[1] == 12 and r[2] == 3 and r[3] == 3 for r in md_responses), \
        md_responses
    # ApiVersions v3 first; the mock answers with a v0 error response listing its versions (it
    # serves ApiVersions <= v2) and the client asks again at that version
    api_versions = request_versions(log, "ApiVersions")
    assert 3 in api_versions and min(api_versions) < 3, api_versions
    # kbridge dialled the brokers by the name they advertise and verified that name: in a full
    # handshake, or in the one that made the session a later connection resumed (sessions are
    # kept per verified host:port, tls/tlssess.h)
    verified = [l for l in log.splitlines() if f"verified as '{ADVERTISE_HOST}'" in l or
                ("verified when the session was made" in l and
                 f"resumed (session of {ADVERTISE_HOST}:" in l)]
    assert verified, f"no TLS handshake verified as '{ADVERTISE_HOST}':\n{log[-4000:]}"
    assert not error_lines(log), error_lines(log)
    assert_only_kbridge_dialled(connect_log, p, mock, require_broker=False)


def test_kcat_roundtrip_at_produce_v10_fetch_v16(modern_cluster, tmp_path):
    mock, kb, p, bootstrap = modern_cluster(topics=["orders:6"])
    sent = [f"k{i:04d}:value-{i}-{uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex}" for i in range(1000)]
    connect_log = tmp_path / "connect-kcat.log"
    r = kcat(["-P", "-b", bootstrap, "-t", "orders", "-K", ":", "-X", "linger.ms=5"],
             connect_log, timeout=60, input="\n".join(sent) + "\n")
    assert r.returncode == 0, f"kcat -P failed: {r.stderr}"
    r = kcat(["-C", "-b", bootstrap, "-t", "orders", "-o", "beginning", "-e", "-q",
              "-f", "%k:%s\n"], connect_log, timeout=60)
    assert r.returncode == 0, f"kcat -C failed: {r.stderr}"
    assert sorted(r.stdout.splitlines()) == sorted(sent)

    log = kb.log_text()
    assert max(request_versions(log, "Produce")) >= 10, request_versions(log, "Produce")
    assert max(request_versions(log, "Fetch")) >= 16, request_versions(log, "Fetch")
    # Produce v10+ / Fetch v16+ responses go through the rewriter (NodeEndpoints may be there)
    assert [r for r in responses(log, "Produce") if r[1] >= 10], "no Produce v10+ rewritten"
    assert [r for r in responses(log, "Fetch") if r[1] >= 16], "no Fetch v16+ rewritten"
    assert_only_kbridge_dialled(connect_log, p, mock)
    assert not error_lines(log), error_lines(log)


def test_confluent_kafka_group_reads_everything(modern_cluster, client):
    mock, kb, p, bootstrap = modern_cluster(topics=["orders:6"])
    prod = client("producer", "produce", bootstrap, "orders", "--count", N_GROUP,
                  "--interval-ms", 0)
    assert prod.ready == MODERN_VERSION
    prod.wait_progress(N_GROUP)
    res = prod.finish()
    assert res["error_count"] == 0 and res["undelivered"] == 0, res
    assert res["delivered"] == res["distinct_delivered"] == N_GROUP, res
    assert len(res["partitions"]) > 1, res

    grp = client("group", "group", bootstrap, "orders", f"modern-{uuid.uuid4().hex[:8]}", N_GROUP)
    assert grp.ready == MODERN_VERSION
    res = grp.finish(timeout=60)
    assert res["distinct"] == N_GROUP, res
    assert not res["errors"] and not res["bad_values"], res
    assert res["committed"] == N_GROUP, res  # committed offsets add up to every message

    log = kb.log_text()
    fc = responses(log, "FindCoordinator")
    assert fc and all(r[1] >= 2 and r[2] >= 1 and r[2] == r[3] for r in fc), fc
    for api in ("JoinGroup", "SyncGroup", "OffsetFetch", "OffsetCommit"):
        assert request_versions(log, api), f"no {api} request crossed kbridge"
    for c in (prod, grp):
        assert_only_kbridge_dialled(c.connect_log, p, mock)
    assert not error_lines(log), error_lines(log)
