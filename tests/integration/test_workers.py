"""workers = N: N event loops in one process, each with its own listening socket on every port
(SO_REUSEPORT). Real clients through real TLS: connections are spread over the loops, every
loop serves bootstrap and broker ports, reload and drain reach every loop, and SO_REUSEPORT does
not let a second kbridge silently share our ports."""
import signal
import socket
import struct
import time

import pytest

from conftest import cluster_ini, error_lines, free_port, kcat_metadata, run
from test_kcat import assert_only_kbridge_brokers, check_roundtrip, roundtrip
from test_operate import metrics, wait_ready


def workers_ini(mock, p, certs, admin, workers=2, extra=None):
    text = cluster_ini("msk", [b.advertised for b in mock.brokers.values()], p,
                       tls_ca=certs / "ca.pem", extra=extra, log_level="info")
    return text.replace("[global]\n",
                        f"[global]\nadmin_listen = {admin}\nworkers = {workers}\n", 1)


def listeners(port):
    """How many sockets listen on 127.0.0.1:port (ss), i.e. how many loops serve it."""
    r = run(["ss", "-Hltn", f"sport = :{port}"], timeout=10)
    assert r.returncode == 0, r.stderr
    return len([l for l in r.stdout.splitlines() if l.strip()])


def wait_listeners(port, want, timeout=15):
    deadline = time.monotonic() + timeout
    while (n := listeners(port)) != want:
        if time.monotonic() > deadline:
            pytest.fail(f"{n} sockets listen on port {port}, expected {want}")
        time.sleep(0.1)


def api_versions(port, corr):
    """One ApiVersions v0 round trip on a fresh connection; returns the open socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    client = b"kbridge-test"
    body = struct.pack(">hhih", 18, 0, corr, len(client)) + client
    s.sendall(struct.pack(">i", len(body)) + body)
    head = b""
    while len(head) < 8:
        chunk = s.recv(8 - len(head))
        assert chunk, "kbridge closed the connection before the ApiVersions response"
        head += chunk
    size, got = struct.unpack(">ii", head)
    assert got == corr, f"correlation id {got}, sent {corr}"
    left = size - 4
    while left > 0:
        chunk = s.recv(min(left, 65536))
        assert chunk, "response cut short"
        left -= len(chunk)
    return s


def test_workers_spread_connections_and_every_loop_serves(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:6"])
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    kb = kbridge(workers_ini(mock, p, certs, admin, workers=2))
    kb.wait_log(r"1 more worker started: 2 event loops")
    wait_ready(admin)
    # Both loops listen on the bootstrap port, and (each probes) on every broker's port.
    assert listeners(p.listen) == 2
    for node in mock.brokers:
        wait_listeners(p.node(node), 2)

    # 40 connections, each with a real request answered through TLS: the kernel spreads them
    # (the chance that all land in one loop is 2^-39).
    socks = [api_versions(p.listen, 100 + i) for i in range(40)]
    m = metrics(admin)
    for s in socks:
        s.close()
    per_worker = [m.get(f'kbridge_worker_client_connections_total{{worker="{w}"}}', 0)
                  for w in (0, 1)]
    assert sum(per_worker) >= 40 and min(per_worker) >= 1, per_worker
    assert m['kbridge_client_connections_total{cluster="msk"}'] >= 40

    # Real clients through both loops: metadata names only kbridge, 1,000 messages round-trip.
    r, md = kcat_metadata(f"127.0.0.1:{p.listen}")
    assert md is not None, r.stderr
    assert_only_kbridge_brokers(md, p, mock, r.stdout)
    sent, got = roundtrip(f"127.0.0.1:{p.listen}")
    check_roundtrip(sent, got)
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())
    # Connection ids stay unique across loops.
    ids = [l.split(" C#")[1].split()[0] for l in kb.log_text().splitlines()
           if " C#" in l and "closed:" in l]
    assert len(ids) == len(set(ids)), "a connection id was used twice"


def active_per_worker(admin, n=2):
    m = metrics(admin)
    return [m.get(f'kbridge_worker_client_connections_active{{worker="{w}"}}', 0)
            for w in range(n)]


def test_new_connections_go_to_the_loop_with_the_fewest(kbmock, kbridge, ports, certs):
    """SO_REUSEPORT hashes each connection to a loop; with a handful of long-lived Kafka
    connections that is often all in one loop. A loop that accepts a client while another has
    fewer hands it over, so the loops stay within one connection of each other."""
    mock = kbmock(mode="msk", topics=["orders:6"])
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    kbridge(workers_ini(mock, p, certs, admin, workers=2))
    wait_ready(admin)
    socks = []
    for i in range(10):
        socks.append(api_versions(p.listen, 700 + i))  # answered: served by its loop now
        active = active_per_worker(admin)
        assert sum(active) == i + 1 and max(active) - min(active) <= 1, (i, active)
    assert active_per_worker(admin) == [5, 5]
    # Broker ports too, and the connections still work after being handed over.
    more = [api_versions(p.node(node), 800 + node) for node in mock.brokers for _ in range(2)]
    assert active_per_worker(admin) == [8, 8]
    for s in socks[:6] + more:
        s.close()
    deadline = time.monotonic() + 10
    while sum(active_per_worker(admin)) != 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sum(active_per_worker(admin)) == 4
    # kcat through the balanced loops: bootstrap and broker connections, real traffic.
    sent, got = roundtrip(f"127.0.0.1:{p.listen}")
    check_roundtrip(sent, got)
    for s in socks[6:]:
        s.close()


def test_second_kbridge_cannot_share_our_ports(kbmock, kbridge, ports, certs, build_dir, tmp_path):
    """SO_REUSEPORT lets any process of the same user join a port group; kbridge checks first."""
    mock = kbmock(mode="msk", topics=["orders:1"])
    p = ports()
    kb = kbridge(workers_ini(mock, p, certs, f"127.0.0.1:{free_port()}", workers=2))
    for workers in (2, 1):
        ini = tmp_path / f"second-{workers}.ini"
        ini.write_text(workers_ini(mock, p, certs, f"127.0.0.1:{free_port()}", workers=workers))
        r = run([str(build_dir / "kbridge"), "-c", str(ini)], timeout=20)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert f"cannot listen on 127.0.0.1:{p.listen}: Address already in use" in r.stderr, \
            r.stderr
    assert listeners(p.listen) == 2  # ours, untouched
    r, md = kcat_metadata(f"127.0.0.1:{p.listen}")
    assert md is not None, r.stderr
    assert kb.proc.poll() is None


def test_workers_reload_and_drain_reach_every_loop(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:3"])
    p, q = ports(), ports()
    admin = f"127.0.0.1:{free_port()}"
    kb = kbridge(workers_ini(mock, p, certs, admin, workers=2))
    wait_ready(admin)
    # Reload: a second cluster appears; both loops must listen on its port and serve it.
    second = cluster_ini("second", [b.advertised for b in mock.brokers.values()], q,
                         tls_ca=certs / "ca.pem").split("\n\n", 1)[1]
    kb.ini_path.write_text(kb.ini_path.read_text() + "\n" + second)
    kb.proc.send_signal(signal.SIGHUP)
    kb.wait_log(r"configuration reloaded: 2 clusters")
    wait_listeners(q.listen, 2)
    r, md = kcat_metadata(f"127.0.0.1:{q.listen}")
    assert md is not None, r.stderr
    assert_only_kbridge_brokers(md, q, mock, r.stdout)
    # A changed non-reloadable key is named, and the loops keep running as they are.
    kb.ini_path.write_text(kb.ini_path.read_text().replace("workers = 2", "workers = 3"))
    kb.proc.send_signal(signal.SIGHUP)
    kb.wait_log(r"workers in \[global\] changed from '2' to '3': that takes effect at the next")
    assert listeners(p.listen) == 2

    # Drain: open connections in both loops, then SIGTERM; every loop drains and the process
    # exits 0 (the fixture checks the exit code).
    socks = [api_versions(p.listen, 500 + i) for i in range(16)]
    m = metrics(admin)
    assert min(m.get(f'kbridge_worker_client_connections_total{{worker="{w}"}}', 0)
               for w in (0, 1)) >= 1
    kb.proc.send_signal(signal.SIGTERM)
    kb.wait_log(r"drained: every connection finished$")
    assert kb.proc.wait(15) == 0
    for s in socks:
        s.close()
    assert listeners(p.listen) == 0
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())


def test_loops_making_their_first_tls_connection_at_once(kbmock, kbridge, ports, certs):
    """Regression: libevent built its TLS filter's BIO method lazily, with no lock. Every loop
    probes the upstream as it starts, so two loops could build it at once: one copy leaked (the
    ASan build's exit code caught it in 1 of 6 runs of the test above) or a loop used a
    half-filled method. kbridge's own TLS pipe builds its BIO method once, before any worker
    thread runs (and under pthread_once). Eight loops start
    together, several times; each start must reach readiness through TLS and exit 0 (LeakSanitizer
    turns a leaked method into exit 1)."""
    mock = kbmock(mode="msk", topics=["orders:1"])
    for _ in range(4):
        p = ports()
        admin = f"127.0.0.1:{free_port()}"
        kb = kbridge(workers_ini(mock, p, certs, admin, workers=8))
        wait_ready(admin)
        socks = [api_versions(p.listen, 700 + i) for i in range(16)]
        for s in socks:
            s.close()
        assert kb.stop() == 0, kb.log_text()[-6000:]
        assert not error_lines(kb.log_text()), error_lines(kb.log_text())
