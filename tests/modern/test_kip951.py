"""KIP-951 through kbridge: when a partition leader moves, the old leader answers Produce v10+ /
Fetch v16+ with NOT_LEADER_OR_FOLLOWER, the new leader in CurrentLeader and its address in the
response's NodeEndpoints tagged field. A client (librdkafka >= 2.4) goes straight to that
address. If the proxy let it through, the client would dial the broker's TLS port in plaintext:
the failure this suite exists to rule out. Every connect() the clients make is recorded
(connect_recorder.so) and must go to kbridge.
"""
from conftest import (MODERN_VERSION, assert_only_kbridge_dialled, dialled_elsewhere,
                      endpoint_rewrites, error_lines, leaders, request_versions, wait_until)

TOPIC = "moves"
MOVES = 2
PROGRESS_AFTER_MOVE = 100  # deliveries (or consumed keys) after each move, via the new leader


def move_leader_twice(mock, kb, p, bootstrap, api, min_version, clients):
    """Moves TOPIC/0 to each of the other two brokers in turn. After each move, waits for kbridge
    to log an api >= min_version response carrying NodeEndpoints (or for a client to dial
    something other than kbridge, which fails at once), then for every client to make progress
    again. Returns the leaders in order (initial first)."""
    (first,) = leaders(bootstrap, TOPIC).values()
    order = [first] + [b for b in sorted(mock.brokers) if b != first][:MOVES]
    for new in order[1:]:
        before = len(endpoint_rewrites(kb.log_text(), api, min_version))
        reply = mock.command(f"leader {TOPIC} 0 {new}")
        assert reply == f"OK leader {TOPIC} 0 {new}", reply
        wait_until(lambda: len(endpoint_rewrites(kb.log_text(), api, min_version)) > before or
                   any(dialled_elsewhere(c.connect_log, p) for c in clients), 20,
                   f"a {api} v{min_version}+ response with NodeEndpoints after the move to "
                   f"broker {new}", lambda: kb.log_text()[-6000:])
        for c in clients:
            assert_only_kbridge_dialled(c.connect_log, p, mock, require_broker=False)
        assert len(endpoint_rewrites(kb.log_text(), api, min_version)) > before
        for c in clients:
            c.wait_progress(c.progress + PROGRESS_AFTER_MOVE, timeout=20)
    assert leaders(bootstrap, TOPIC) == {0: order[-1]}
    return order


def assert_endpoints_rewritten(log, api, min_version, p, order, dialled):
    rewrites = endpoint_rewrites(log, api, min_version)
    assert len(rewrites) >= MOVES, f"{api}: {rewrites}"
    # every address in every such response was replaced, none capped or left alone
    assert all(r[2] == r[3] for r in rewrites), f"{api} addresses not all rewritten: {rewrites}"
    assert max(request_versions(log, api)) >= min_version, request_versions(log, api)
    # the client followed each new leader to its kbridge port
    for leader in order[1:]:
        assert p.node(leader) in dialled, \
            f"never dialled kbridge's port for new leader {leader} ({p.node(leader)}): {dialled}"


def test_produce_while_leader_moves_twice(modern_cluster, client):
    mock, kb, p, bootstrap = modern_cluster(topics=[f"{TOPIC}:1"])
    prod = client("producer", "produce", bootstrap, TOPIC, "--interval-ms", 5)
    assert prod.ready == MODERN_VERSION
    prod.wait_progress(100)
    order = move_leader_twice(mock, kb, p, bootstrap, "Produce", 10, [prod])
    res = prod.finish()

    assert res["error_count"] == 0 and res["undelivered"] == 0, res
    assert res["delivered"] == res["distinct_delivered"] == res["sent"], res
    assert res["duplicate_offsets"] == 0, res
    log = kb.log_text()
    dialled = assert_only_kbridge_dialled(prod.connect_log, p, mock)
    assert_endpoints_rewritten(log, "Produce", 10, p, order, dialled)
    assert not error_lines(log), error_lines(log)


def test_fetch_while_leader_moves_twice(modern_cluster, client):
    mock, kb, p, bootstrap = modern_cluster(topics=[f"{TOPIC}:1"])
    prod = client("producer", "produce", bootstrap, TOPIC, "--interval-ms", 5)
    cons = client("consumer", "consume", bootstrap, TOPIC)
    assert cons.ready == MODERN_VERSION
    cons.wait_progress(100)
    order = move_leader_twice(mock, kb, p, bootstrap, "Fetch", 16, [cons, prod])
    res = prod.finish()
    assert res["error_count"] == 0 and res["undelivered"] == 0, res
    assert res["delivered"] == res["distinct_delivered"] == res["sent"], res

    cons.send(f"EXPECT {res['sent']}")
    got = cons.finish()
    assert got["distinct"] == res["sent"], got
    assert not got["errors"] and not got["bad_values"], got
    log = kb.log_text()
    dialled = assert_only_kbridge_dialled(cons.connect_log, p, mock)
    assert_only_kbridge_dialled(prod.connect_log, p, mock)
    assert_endpoints_rewritten(log, "Fetch", 16, p, order, dialled)
    assert not error_lines(log), error_lines(log)
