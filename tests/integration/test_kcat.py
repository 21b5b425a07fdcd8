"""kcat through kbridge: 1,000 distinct messages out and back, and metadata that names only kbridge.

msk mode: the addresses the mock advertises are themselves TLS endpoints (as on AWS MSK), so
kbridge must dial the advertised brokers with TLS and verify them. front mode: the advertised
addresses are plaintext and kbridge reaches the TLS fronts only through connect_to.
"""
import hashlib

from conftest import KCAT, cluster_ini, error_lines, kcat_metadata, run

N_MESSAGES = 1000


def payloads(n):
    """n distinct key:value lines of varying size (up to ~1.3 KB), each checkable on its own."""
    out = []
    for i in range(n):
        digest = hashlib.sha256(b"kbridge-%d" % i).hexdigest()
        out.append(f"k{i:04d}:v{i}-" + digest * (1 + i % 20))
    return out


def assert_only_kbridge_brokers(md, ports, mock, raw):
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert set(brokers) == set(mock.brokers), f"broker ids {brokers} vs mock {list(mock.brokers)}"
    for node_id, name in brokers.items():
        assert name == f"127.0.0.1:{ports.node(node_id)}", f"node {node_id} advertised as {name}"
    for port in mock.ports():
        assert f":{port}" not in raw, f"a mock port ({port}) leaked to the client:\n{raw}"


def roundtrip(bootstrap, topic="orders"):
    """Produces N_MESSAGES with kcat, consumes them back; returns (sent, received) line lists."""
    sent = payloads(N_MESSAGES)
    r = run([KCAT, "-P", "-b", bootstrap, "-t", topic, "-K", ":", "-X", "linger.ms=5"],
            input="\n".join(sent) + "\n", timeout=60)
    assert r.returncode == 0, f"kcat -P failed: {r.stderr}"
    r = run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
             "-f", "%k:%s\n"], timeout=60)
    assert r.returncode == 0, f"kcat -C failed: {r.stderr}"
    return sent, r.stdout.splitlines()


def check_roundtrip(sent, got):
    assert len(got) == len(sent), f"sent {len(sent)}, consumed {len(got)}"
    missing = set(sent) - set(got)
    assert not missing, f"{len(missing)} messages missing or altered, e.g. {sorted(missing)[:3]}"
    assert sorted(got) == sorted(sent)


def test_kcat_msk_mode(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:6"])
    assert all(b.tls == b.advertised for b in mock.brokers.values())
    p = ports()
    # bootstrap by name (verified against DNS:localhost); advertised brokers are 127.0.0.1 (IP SAN)
    kb = kbridge(cluster_ini("msk", [f"localhost:{mock.brokers[1].port}"], p,
                             tls_ca=certs / "ca.pem"))
    bootstrap = f"127.0.0.1:{p.listen}"

    r, md = kcat_metadata(bootstrap)
    assert md is not None, f"kcat -L through kbridge failed: {r.stderr}"
    assert_only_kbridge_brokers(md, p, mock, r.stdout)
    orders = [t for t in md["topics"] if t["topic"] == "orders"]
    assert orders and len(orders[0]["partitions"]) == 6, md["topics"]

    sent, got = roundtrip(bootstrap)
    check_roundtrip(sent, got)

    stats = mock.stats()
    assert stats["tls_handshakes_ok"] >= 2, stats  # bootstrap + at least one advertised broker
    assert stats["tls_handshakes_failed"] == 0, stats
    assert stats["bytes_to_mock"] > sum(map(len, sent)), stats
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())


def test_kcat_front_mode_connect_to(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="front", topics=["orders:6"])
    p = ports()
    # the mock advertises plaintext 127.0.0.1:P; kbridge must dial the TLS front T instead
    connect_to = ",".join(f"{b.advertised}={b.tls}" for b in mock.brokers.values())
    kb = kbridge(cluster_ini("front", [mock.brokers[1].advertised], p, tls_ca=certs / "ca.pem",
                             extra={"connect_to": connect_to, "tls_verify": "full"}))
    bootstrap = f"127.0.0.1:{p.listen}"

    r, md = kcat_metadata(bootstrap)
    assert md is not None, f"kcat -L through kbridge failed: {r.stderr}"
    assert_only_kbridge_brokers(md, p, mock, r.stdout)

    sent, got = roundtrip(bootstrap)
    check_roundtrip(sent, got)

    stats = mock.stats()
    # every byte went through the TLS fronts: a plaintext shortcut would show bytes_to_mock == 0
    assert stats["tls_handshakes_ok"] >= 2 and stats["tls_handshakes_failed"] == 0, stats
    assert stats["bytes_to_mock"] > sum(map(len, sent)), stats
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())
