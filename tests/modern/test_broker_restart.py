"""A broker goes down and comes back while a modern producer sends through kbridge: kbridge's
connections to it fail with one named error line ("connection refused" naming the broker's
advertised host:port), the rest of the cluster keeps being served, and once the broker is back
the same kbridge process carries the client to it again: every message is delivered, and a
consumer reads all of them back.
"""
from conftest import (ADVERTISE_HOST, MODERN_VERSION, assert_only_kbridge_dialled, error_lines,
                      kcat_metadata, leaders, wait_until)

TOPIC = "orders"
REFUSALS = 3  # client reconnects (reconnect.backoff.max.ms=1000) kbridge must refuse while down


def test_broker_down_and_up(modern_cluster, client):
    mock, kb, p, bootstrap = modern_cluster(topics=[f"{TOPIC}:6"])
    led = leaders(bootstrap, TOPIC)
    victim = max(set(led.values()), key=lambda b: list(led.values()).count(b))
    victim_addr = mock.brokers[victim].advertised  # localhost:<TLS port>

    prod = client("producer", "produce", bootstrap, TOPIC, "--interval-ms", 5)
    assert prod.ready == MODERN_VERSION
    prod.wait_progress(200)

    assert mock.command(f"down {victim}") == f"OK down {victim}"
    refused = kb.wait_log(r"\bERROR\b.*connection refused by " + victim_addr, timeout=20)
    assert "[msk]" in refused, refused
    # the other brokers' partitions keep going while the victim is down, and the client keeps
    # retrying the victim through kbridge: one named line per failed attempt
    prod.wait_progress(prod.progress + 100, timeout=20)
    refusal = f"connection refused by {victim_addr}"
    wait_until(lambda: kb.log_text().count(refusal) >= REFUSALS, 20,
               f"{REFUSALS} refusals of {victim_addr}", lambda: kb.log_text()[-4000:])
    assert kb.proc.poll() is None, "kbridge exited"

    assert mock.command(f"up {victim}") == f"OK up {victim}"
    sent_before_up = prod.progress
    prod.wait_progress(sent_before_up + 200, timeout=30)
    res = prod.finish()
    assert res["error_count"] == 0 and res["undelivered"] == 0, res
    assert res["delivered"] == res["distinct_delivered"] == res["sent"], res
    assert len(res["partitions"]) == 6, res

    # the same kbridge serves the whole cluster again
    _, md = kcat_metadata(bootstrap)
    assert {b["id"]: b["name"] for b in md["brokers"]} == \
        {n: f"127.0.0.1:{p.node(n)}" for n in mock.brokers}
    cons = client("consumer", "consume", bootstrap, TOPIC)
    cons.send(f"EXPECT {res['sent']}")
    got = cons.finish()
    assert got["distinct"] == res["sent"] and not got["errors"] and not got["bad_values"], got

    log = kb.log_text()
    lines = log.splitlines()
    last_refusal = max(i for i, l in enumerate(lines) if refusal in l)
    assert any(f"connected to {victim_addr} (node {victim})" in l for l in lines[last_refusal:]), \
        f"kbridge never reached broker {victim} again after it came back"
    errors = error_lines(log)
    stray = [l for l in errors if refusal not in l]
    assert not stray, f"error lines other than the victim's refusals: {stray}"
    assert ADVERTISE_HOST in victim_addr
    for c in (prod, cons):
        assert_only_kbridge_dialled(c.connect_log, p, mock)
