"""TLS session resumption to the brokers: later connections to a broker resume the session its
first verified handshake made (fewer full handshakes for reconnect storms and many clients), a
session is only offered to the broker it was made with, and a new trust configuration on
reload never resumes a session verified under the old one."""
import re
import signal

from conftest import cluster_ini, error_lines, kcat_metadata, run


def connected_lines(kb):
    """(upstream host:port, resumed?) for every upstream TLS connection kbridge logged."""
    out = []
    for line in kb.log_text().splitlines():
        m = re.search(r"connected to (\S+) \((?:bootstrap \d+/\d+|node \d+)\): TLSv", line)
        if m:
            out.append((m.group(1), ", resumed (session of " in line))
    return out


def one_broker_kbridge(kbmock, kbridge, ports, certs, topics):
    """kbmock + kbridge bootstrapping from broker 1 only (so the readiness probe dials only it)."""
    mock = kbmock(mode="msk", topics=topics)
    p = ports()
    kb = kbridge(cluster_ini("msk", [mock.brokers[1].advertised], p, tls_ca=certs / "ca.pem",
                             log_level="info"))
    return mock, p, kb


def metadata_times(bootstrap, n):
    for _ in range(n):
        r, md = kcat_metadata(bootstrap)
        assert md is not None, r.stderr


def test_reconnects_resume_and_sessions_stay_with_their_broker(kbmock, kbridge, ports, certs):
    mock, p, kb = one_broker_kbridge(kbmock, kbridge, ports, certs, ["orders:6"])
    bootstrap = f"127.0.0.1:{p.listen}"
    metadata_times(bootstrap, 4)
    lines = "".join(f"m-{i}\n" for i in range(200))
    for _ in range(2):
        r = run(["kcat", "-P", "-b", bootstrap, "-t", "orders"], input=lines, timeout=30)
        assert r.returncode == 0, r.stderr

    conns = connected_lines(kb)
    first = {}
    for target, resumed in conns:
        first.setdefault(target, resumed)
    # The first connection to each broker the readiness probe never dialled (it dials the
    # bootstrap address only) is a full, verified handshake: no other broker's session is
    # offered to it.
    # (kcat's partitioner decides which brokers it needs; at least one besides broker 1.)
    others = {t: r for t, r in first.items() if t != mock.brokers[1].advertised}
    assert others and not any(others.values()), first
    resumed = [t for t, r in conns if r]
    assert len(resumed) >= 3, conns  # the bootstrap broker at least, on the later kcat runs
    stats = mock.stats()
    # The broker agrees (its count also has the readiness probe's own connections).
    assert stats["tls_handshakes_resumed"] >= len(resumed), (stats, conns)
    assert stats["tls_handshakes_failed"] == 0, stats
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())
    # The log still says what the session was verified as.
    line = next(l for l in kb.log_text().splitlines() if ", resumed (session of " in l)
    assert "verified when the session was made" in line, line


def test_reload_with_another_trust_store_does_not_resume(kbmock, kbridge, ports, certs):
    mock, p, kb = one_broker_kbridge(kbmock, kbridge, ports, certs, ["orders:1"])
    bootstrap = f"127.0.0.1:{p.listen}"
    metadata_times(bootstrap, 2)
    assert any(r for _, r in connected_lines(kb)), "no resumption before the reload"
    # Same broker, but now trusted only through a CA that did not sign it: a cached session
    # from the old trust store must not get around that.
    kb.ini_path.write_text(kb.ini_path.read_text().replace(str(certs / "ca.pem"),
                                                           str(certs / "other-ca.pem")))
    kb.proc.send_signal(signal.SIGHUP)
    kb.wait_log(r"configuration reloaded")
    before = mock.stats()["tls_handshakes_resumed"]
    r, md = kcat_metadata(bootstrap, timeout_s=4)
    assert md is None, "metadata came back through an untrusted broker"
    kb.wait_log(r"certificate not trusted")
    assert mock.stats()["tls_handshakes_resumed"] == before


def test_concurrent_connections_all_resume(kbmock, kbridge, ports, certs):
    """Batches of connections opened together and closed without close_notify (as bridges end)
    must not spoil the cached session for the next batch."""
    from test_workers import api_versions
    mock, p, kb = one_broker_kbridge(kbmock, kbridge, ports, certs, ["orders:1"])
    api_versions(p.listen, 1).close()  # one full handshake (or the probe's) makes a session
    kb.wait_log(r"C#1 .*connected to")
    for batch in range(3):
        before = mock.stats()
        socks = [api_versions(p.listen, 10 + i) for i in range(30)]
        for s in socks:
            s.close()
        after = mock.stats()
        ok = after["tls_handshakes_ok"] - before["tls_handshakes_ok"]
        resumed = after["tls_handshakes_resumed"] - before["tls_handshakes_resumed"]
        assert ok >= 30 and resumed == ok, (batch, ok, resumed)
