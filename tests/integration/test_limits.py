"""Limits and hostile clients: each limit is crossed and only the offending connection is
closed, with a log line naming the limit, while other clients keep being served. Memory stays
bounded when a client or a broker stops reading."""
import os
import signal
import socket
import struct
import time

import pytest

from conftest import cluster_ini, run

KB_LIMITS = {"max_connections": "40", "idle_timeout_ms": "1500"}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def metadata_ok(bootstrap):
    r = run(["kcat", "-L", "-b", bootstrap, "-m", "10"], timeout=30)
    return r.returncode == 0 and "3 brokers" in r.stdout


@pytest.fixture
def limited(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:6", "big:1"])
    p = ports()
    kb = kbridge(cluster_ini("msk", mock.bootstrap, p, tls_ca=certs / "ca.pem",
                             extra=KB_LIMITS, log_level="info"))
    return mock, p, kb, f"127.0.0.1:{p.listen}"


def connect(p):
    s = socket.create_connection(("127.0.0.1", p.listen), timeout=5)
    return s


def wait_closed(s, timeout=10):
    """True when the peer closes s within timeout (reads until EOF)."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_oversized_and_negative_frames_close_only_that_client(limited):
    mock, p, kb, bootstrap = limited
    bystander = connect(p)
    huge = connect(p)
    huge.sendall(struct.pack(">i", 0x7FFFFFFF))  # a 2 GiB size prefix
    assert wait_closed(huge)
    kb.wait_log(r"too large size 2147483647 \(above max_frame_bytes\)")
    neg = connect(p)
    neg.sendall(struct.pack(">i", -5) + b"xxxx")
    assert wait_closed(neg)
    kb.wait_log(r"invalid size -5")
    garbage = connect(p)
    garbage.sendall(struct.pack(">i", 6) + b"\x00\x03\x00")  # header cut short by the frame
    garbage.sendall(b"\x01\x02\x03")
    assert wait_closed(garbage)
    kb.wait_log(r"malformed request header")
    assert metadata_ok(bootstrap)
    bystander.close()


def test_half_frames_and_many_idle_connections_do_not_block_others(limited):
    mock, p, kb, bootstrap = limited
    held = []
    for _ in range(30):  # below max_connections (40)
        s = connect(p)
        s.sendall(struct.pack(">i", 100) + b"\x00\x03")  # half a frame, held open
        held.append(s)
    t0 = time.monotonic()
    assert metadata_ok(bootstrap)
    assert time.monotonic() - t0 < 10
    for s in held:
        s.close()


def test_thousands_of_idle_connections_do_not_block_others(kbmock, kbridge, ports, certs):
    """2,000 clients connect and say nothing (each makes kbridge open an upstream TLS
    connection): a new client still gets its metadata promptly."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 16384)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by kbridge/kbmock
    mock = kbmock(mode="msk")
    p = ports()
    kb = kbridge(cluster_ini("many", mock.bootstrap, p, tls_ca=certs / "ca.pem",
                             extra={"max_connections": "5000"}, log_level="info"))
    idle = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", p.listen), timeout=5))
        t0 = time.monotonic()
        assert metadata_ok(f"127.0.0.1:{p.listen}")
        assert time.monotonic() - t0 < 15
        assert "max_connections" not in kb.log_text()
    finally:
        for s in idle:
            s.close()


def test_max_connections_refuses_only_the_excess(limited):
    mock, p, kb, bootstrap = limited
    held = [connect(p) for _ in range(40)]
    time.sleep(0.5)
    extra = connect(p)
    assert wait_closed(extra, timeout=5), "the 41st connection was not closed"
    kb.wait_log(r"refused a client: max_connections \(40\) reached")
    for s in held[:5]:
        s.close()
    time.sleep(0.5)
    assert metadata_ok(bootstrap)  # room again
    for s in held[5:]:
        s.close()


def test_idle_timeout_closes_a_silent_client(limited):
    mock, p, kb, bootstrap = limited
    s = connect(p)
    t0 = time.monotonic()
    assert wait_closed(s, timeout=10)
    assert 1.2 < time.monotonic() - t0 < 8
    kb.wait_log(r"idle for 1500 ms with nothing in flight \(idle_timeout_ms\)")


def test_tls_handshake_timeout_names_the_limit(kbridge, ports, certs):
    """An upstream that accepts TCP and then says nothing."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    p = ports()
    kb = kbridge(cluster_ini("silent", [f"127.0.0.1:{silent.getsockname()[1]}"], p,
                             tls_ca=certs / "ca.pem",
                             extra={"tls_handshake_timeout_ms": "700"}, log_level="info"))
    c = socket.create_connection(("127.0.0.1", p.listen), timeout=5)
    assert wait_closed(c, timeout=10)
    line = kb.wait_log(r"timed out after 700 ms \(tls_handshake_timeout_ms\)")
    assert "not TLS?" in line
    silent.close()


def fetch_v4(correlation_id, topic, partition, max_bytes, offset):
    """A FetchRequest v4 frame (request header v1) for one partition from offset."""
    client = b"kbridge-test"
    t = topic.encode()
    body = struct.pack(">hhih", 1, 4, correlation_id, len(client)) + client
    body += struct.pack(">iiiib", -1, 100, 1, max_bytes, 0)          # replica, wait, min, max, iso
    body += struct.pack(">ih", 1, len(t)) + t                        # one topic
    body += struct.pack(">iiqi", 1, partition, offset, max_bytes)    # one partition
    return struct.pack(">i", len(body)) + body


def leader_port(p, bootstrap, topic):
    import json
    r = run(["kcat", "-L", "-J", "-b", bootstrap, "-t", topic, "-m", "10"], timeout=30)
    md = json.loads(r.stdout)
    return p.node(md["topics"][0]["partitions"][0]["leader"])


def test_memory_stays_bounded_when_the_client_stops_reading(limited):
    """Fill a partition (the mock keeps the last few MiB of it), then pipeline 64 Fetch
    requests for all of it and never read: kbridge must stop reading the broker once
    buffer_high_bytes are queued for the client, so its RSS stays flat instead of growing by
    the hundreds of MiB of responses."""
    mock, p, kb, bootstrap = limited
    payload = ("x" * 100_000 + "\n") * 600
    r = run(["kcat", "-b", bootstrap, "-P", "-t", "big", "-p", "0"], input=payload, timeout=120)
    assert r.returncode == 0, r.stderr
    r = run(["kcat", "-b", bootstrap, "-C", "-t", "big", "-o", "beginning", "-c", "1", "-q",
             "-f", "%o"], timeout=30)
    first = int(r.stdout.strip())  # the mock's log start offset
    base = rss_kib(kb.proc.pid)
    s = socket.create_connection(("127.0.0.1", leader_port(p, bootstrap, "big")), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"".join(fetch_v4(i, "big", 0, 64 * 1024 * 1024, first) for i in range(64)))
    peak = base
    for _ in range(25):
        time.sleep(0.2)
        peak = max(peak, rss_kib(kb.proc.pid))
    growth_mib = (peak - base) / 1024
    print(f"RSS growth {growth_mib:.1f} MiB (base {base} KiB)")
    s.close()
    # Bound: buffer_high_bytes (1 MiB) queued for the client plus the TLS/socket read chunks;
    # far below the hundreds of MiB a stalled client asks for.
    assert growth_mib < 16, f"kbridge RSS grew {growth_mib:.1f} MiB with a stalled client"
    assert metadata_ok(bootstrap)


def test_memory_stays_bounded_when_the_broker_stops_reading(limited):
    mock, p, kb, bootstrap = limited
    base = rss_kib(kb.proc.pid)
    producer = __import__("subprocess").Popen(
        ["kcat", "-b", bootstrap, "-P", "-t", "big", "-p", "0", "-X", "queue.buffering.max.kbytes=65536"],
        stdin=__import__("subprocess").PIPE, stdout=__import__("subprocess").DEVNULL,
        stderr=__import__("subprocess").DEVNULL)
    try:
        producer.stdin.write((("y" * 50_000 + "\n") * 20).encode())
        producer.stdin.flush()
        time.sleep(1.0)
        os.kill(mock.proc.pid, signal.SIGSTOP)  # the whole broker (and its TLS) stops reading
        peak = base
        try:
            for _ in range(60):  # ~60 MiB offered while the broker reads nothing
                producer.stdin.write((("y" * 50_000 + "\n") * 20).encode())
                producer.stdin.flush()
                time.sleep(0.05)
                peak = max(peak, rss_kib(kb.proc.pid))
        except BrokenPipeError:
            pass
        growth_mib = (peak - base) / 1024
        print(f"RSS growth {growth_mib:.1f} MiB (base {base} KiB)")
        assert growth_mib < 24, f"kbridge RSS grew {growth_mib:.1f} MiB with a stalled broker"
    finally:
        os.kill(mock.proc.pid, signal.SIGCONT)
        producer.kill()
        producer.wait(5)
    assert metadata_ok(bootstrap)


def test_large_requests_pass_with_the_smallest_watermarks(kbmock, kbridge, ports, certs):
    """buffer_high_bytes at its minimum (16 KiB) and 500 KB messages: each Produce is many
    times the high mark, so the TLS pipe keeps stopping and starting. A lost 'room again'
    signal once stalled the first large request forever; every message must be acknowledged
    and read back."""
    from confluent_kafka import Consumer, Producer
    mock = kbmock(mode="msk", topics=["big:1"])
    p = ports()
    text = cluster_ini("msk", mock.bootstrap, p, tls_ca=certs / "ca.pem", log_level="info")
    kbridge(text.replace("[global]\n",
                         "[global]\nbuffer_high_bytes = 16384\nbuffer_low_bytes = 4096\n", 1))
    bootstrap = f"127.0.0.1:{p.listen}"
    prod = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "message.timeout.ms": 20000, "batch.size": 1000000})
    acked, failed = [], []
    values = [(b"%03d-" % i) * 100_000 for i in range(12)]  # 500 KB each
    for v in values:
        prod.produce("big", v, partition=0,
                     on_delivery=lambda err, msg: (failed if err else acked).append(err or msg))
    assert prod.flush(30) == 0, "messages still unacknowledged after 30 s"
    assert not failed and len(acked) == len(values), failed
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": "big-reader",
                     "auto.offset.reset": "earliest", "fetch.message.max.bytes": 1_100_000})
    cons.subscribe(["big"])
    got, deadline = [], time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        m = cons.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    cons.close()
    assert got == values, f"read back {len(got)} of {len(values)} messages"
