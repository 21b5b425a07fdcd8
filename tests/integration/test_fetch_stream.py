"""Fetch v16/v17 responses stream through kbridge (issue 16 item 4): a fake TLS broker answers
with 50 MiB responses, sent in small pieces, with and without the KIP-951 NodeEndpoints tagged
field. The client must get byte-exact frames (the topics and records untouched, NodeEndpoints
rewritten to kbridge's addresses and padded to the original length, or dropped when kbridge's
addresses are longer) and kbridge's RSS may grow by no more than 2 x buffer_high_bytes, whatever
the response size (it used to buffer every such response whole)."""
import os
import re
import socket
import ssl
import struct
import threading
import time

import pytest

from conftest import VALGRIND, cluster_ini
from fakebroker import FakeBroker, i16, i32, i64, read_uvarint, string, uvarint

MIB = 1 << 20
HIGH = 4 * MIB  # buffer_high_bytes for these tests
PAD_TAG = 0x3FFF


def rss_bound():
    """2 x buffer_high_bytes; under ASan plus its quarantine of freed memory (and 2 MiB for the
    shadow of what is live), which ASan keeps mapped by design; none under valgrind."""
    if VALGRIND:
        return None
    m = re.search(r"quarantine_size_mb=(\d+)", os.environ.get("ASAN_OPTIONS", ""))
    if "ASAN_OPTIONS" in os.environ:
        return 2 * HIGH + (int(m.group(1)) if m else 256) * MIB + 2 * MIB
    return 2 * HIGH


def check_rss(growth):
    bound = rss_bound()
    assert bound is None or growth <= bound, \
        f"kbridge RSS grew {growth / MIB:.1f} MiB for a 50 MiB response (bound {bound / MIB:.0f})"


def cstring(s):
    return uvarint(len(s) + 1) + s.encode() if s is not None else b"\x00"


def node_endpoints(brokers):
    """NodeEndpoints (tag 0 data): compact array of NodeId, Host, Port, Rack, tags."""
    return uvarint(len(brokers) + 1) + b"".join(
        i32(n) + cstring(h) + i32(p) + cstring(None) + b"\x00" for n, h, p in brokers)


def fetch_body(records, brokers):
    """A FetchResponse v16/v17 body: one topic, one partition per records value."""
    parts = b""
    for i, rec in enumerate(records):
        parts += (i32(i) + i16(0) + i64(1000) + i64(1000) + i64(0) + b"\x00"  # aborted: null
                  + i32(-1) + uvarint(len(rec) + 1) + rec + b"\x00")
    topic = bytes(range(16)) + uvarint(len(records) + 1) + parts + b"\x00"
    body = i32(0) + i16(0) + i32(7) + uvarint(2) + topic
    if brokers is None:
        return body + b"\x00"
    data = node_endpoints(brokers)
    return body + b"\x01" + b"\x00" + uvarint(len(data)) + data


def parse_tail(tail):
    """(NodeEndpoints brokers or None, [(tag, data)] of the other fields, trailing bytes)."""
    n, off = read_uvarint(tail, 0)
    brokers, others = None, []
    for _ in range(n):
        tag, off = read_uvarint(tail, off)
        size, off = read_uvarint(tail, off)
        data = tail[off:off + size]
        off += size
        if tag != 0:
            others.append((tag, data))
            continue
        cnt, d = read_uvarint(data, 0)
        brokers = []
        for _ in range(cnt - 1):
            node = struct.unpack(">i", data[d:d + 4])[0]
            hl, d = read_uvarint(data, d + 4)
            host = data[d:d + hl - 1].decode()
            d += hl - 1
            port = struct.unpack(">i", data[d:d + 4])[0]
            d += 4 + 1 + 1  # rack (null), tags (none)
            brokers.append((node, host, port))
    return brokers, others, tail[off:]


def recv_exact(sock, n, deadline):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise AssertionError(f"kbridge closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key}")


@pytest.fixture
def streamed(kbridge, ports, certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    fake = FakeBroker(tls=ctx)
    p = ports()
    ini = cluster_ini("fs", [fake.address], p, tls_ca=certs / "ca.pem")
    kb = kbridge(ini.replace("[global]\n", f"[global]\nbuffer_high_bytes = {HIGH}\n"
                             f"buffer_low_bytes = {HIGH // 2}\n", 1))
    yield fake, p, kb
    fake.close()


def pieces(frame):
    """Small pieces at the start and around the tail (where the scanner works), 16 KiB between."""
    view, out, off = memoryview(frame), [], 0
    while off < len(frame):
        small = off < 65536 or off > len(frame) - 65536
        n = 1 + (off * 7919) % (97 if small else 16384)
        out.append(view[off:off + n])
        off += n
    return out


def fetch_through(fake, p, kb, version, records, brokers):
    """Sends one Fetch through kbridge; returns (sent frame body, received frame, RSS growth)."""
    body = fetch_body(records, brokers)
    corr = 4242
    sent = i32(corr) + b"\x00" + body  # response header v1: correlation id, no tags
    fake.fetch_reply = lambda ver, c: pieces(i32(len(sent)) + sent)
    s = socket.create_connection(("127.0.0.1", p.listen), timeout=10)
    # Metadata first, as a client does: kbridge learns the brokers it serves
    hdr = i16(3) + i16(1) + i32(1) + string("fs-test")
    s.sendall(i32(len(hdr) + 4) + hdr + i32(0))
    size = struct.unpack(">i", recv_exact(s, 4, time.monotonic() + 10))[0]
    recv_exact(s, size, time.monotonic() + 10)
    base = vm(kb.proc.pid, "VmRSS")
    with open(f"/proc/{kb.proc.pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    req = i16(1) + i16(version) + i32(corr) + string("fs-test") + b"\x00" + b"\x00" * 40
    s.sendall(i32(len(req)) + req)
    deadline = time.monotonic() + 120
    size = struct.unpack(">i", recv_exact(s, 4, deadline))[0]
    got = recv_exact(s, size, deadline)
    growth = vm(kb.proc.pid, "VmHWM") - base
    s.close()
    return sent, got, growth


@pytest.mark.parametrize("version", [16, 17])
def test_fetch_50mib_without_node_endpoints_streams_unchanged(streamed, version):
    fake, p, kb = streamed
    records = [os.urandom(10 * MIB) for _ in range(5)]
    sent, got, growth = fetch_through(fake, p, kb, version, records, None)
    print(f"v{version} no NodeEndpoints: RSS growth {growth / MIB:.1f} MiB")
    assert got == sent, "the frame must pass byte for byte"
    check_rss(growth)


def test_fetch_50mib_node_endpoints_rewritten_and_padded(streamed):
    fake, p, kb = streamed
    records = [os.urandom(10 * MIB) for _ in range(5)]
    upstream = [(0, fake.host, fake.port), (1, "b-1.upstream-broker.example.internal", 9094)]
    sent, got, growth = fetch_through(fake, p, kb, 17, records, upstream)
    print(f"v17 NodeEndpoints: RSS growth {growth / MIB:.1f} MiB")
    assert len(got) == len(sent), "the size prefix went out first: the length must not change"
    tail_at = len(sent) - len(b"\x01\x00" + uvarint(len(node_endpoints(upstream)))
                              + node_endpoints(upstream))
    assert got[:tail_at] == sent[:tail_at], "header, topics and records must be untouched"
    brokers, others, trailing = parse_tail(got[tail_at:])
    assert brokers == [(0, "127.0.0.1", p.node(0)), (1, "127.0.0.1", p.node(1))]
    assert len(others) == 1 and others[0][0] == PAD_TAG and set(others[0][1]) <= {0}
    assert trailing == b""
    assert b"upstream-broker" not in got and struct.pack(">i", fake.port) not in got[tail_at:]
    check_rss(growth)


def test_fetch_node_endpoints_longer_than_the_original_are_dropped(streamed):
    """Upstream host "b" (1 byte) becomes "127.0.0.1": it cannot fit, so NodeEndpoints is left
    out (the client refreshes Metadata) and padding takes its place; nothing upstream leaks."""
    fake, p, kb = streamed
    upstream = [(2, "b", 9094)]
    sent, got, _ = fetch_through(fake, p, kb, 17, [os.urandom(MIB)], upstream)
    assert len(got) == len(sent)
    tail_at = len(sent) - len(b"\x01\x00" + uvarint(len(node_endpoints(upstream)))
                              + node_endpoints(upstream))
    assert got[:tail_at] == sent[:tail_at]
    brokers, others, trailing = parse_tail(got[tail_at:])
    assert brokers is None and len(others) == 1 and others[0][0] == PAD_TAG
    kb.wait_log(r"NodeEndpoints.*dropped")


def test_fetch_malformed_midway_closes_the_connection(streamed):
    """A body that stops parsing at its first topic (a partition count the body cannot hold):
    kbridge has passed on what it parsed (no address there), then closes the client with a
    clear error instead of forwarding bytes it could not parse."""
    fake, p, kb = streamed
    body = bytearray(fetch_body([os.urandom(1000)], [(0, fake.host, fake.port)]))
    at = 4 + 2 + 4 + 1 + 16  # ThrottleTimeMs, ErrorCode, SessionId, topics count, TopicId
    body[at] = 0x7F  # 126 partitions of 15 bytes or more: more than the ~1.1 KB left
    sent = i32(77) + b"\x00" + bytes(body)
    fake.fetch_reply = lambda ver, c: pieces(i32(len(sent)) + sent)
    s = socket.create_connection(("127.0.0.1", p.listen), timeout=10)
    req = i16(1) + i16(17) + i32(77) + string("fs-test") + b"\x00" + b"\x00" * 40
    s.sendall(i32(len(req)) + req)
    got = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    assert len(got) < len(sent) and (i32(len(sent)) + sent).startswith(got)
    kb.wait_log(r"cannot parse Fetch v17 response \(malformed at byte \d+")
