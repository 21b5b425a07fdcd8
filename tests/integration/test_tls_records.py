"""The TLS records kbridge sends a broker: a large request leaves in full 16 KiB records, a
partial one only at its end (issue 16: every record is a fixed cost to both sides). A relay
between kbridge and the mock broker reads the record headers of what kbridge sends; the bytes
pass unchanged, so the handshake and verification are the real ones."""
import socket
import struct
import threading
import time

from conftest import cluster_ini
from fakebroker import produce_request

MIB = 1 << 20
FULL_RECORD = 16384 + 17  # TLS 1.3: 16 KiB of data, the content type byte, the AES-GCM tag
APPLICATION_DATA = 23


class RecordRelay:
    """Forwards every connection to target; for each, the lengths of the application-data
    records sent towards the target, in order."""

    def __init__(self, target):
        self.target = target
        self.records = []  # one list per connection
        self.lock = threading.Lock()
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.srv.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            host, port = self.target.rsplit(":", 1)
            u = socket.create_connection((host, int(port)), timeout=5)
            lens = []
            with self.lock:
                self.records.append(lens)
            threading.Thread(target=self._up, args=(c, u, lens), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    def _up(self, c, u, lens):
        buf = b""
        try:
            while True:
                data = c.recv(1 << 20)
                if not data:
                    break
                u.sendall(data)
                buf += data
                while len(buf) >= 5:
                    ctype, _, n = struct.unpack(">BHH", buf[:5])
                    if len(buf) < 5 + n:
                        break
                    if ctype == APPLICATION_DATA:
                        with self.lock:
                            lens.append(n)
                    buf = buf[5 + n:]
        except OSError:
            pass
        finally:
            u.close()

    @staticmethod
    def _down(u, c):
        try:
            while True:
                data = u.recv(1 << 20)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.srv.close()


def test_a_large_request_leaves_in_full_records(kbmock, kbridge, ports, certs):
    """A 4 MiB Produce, written at once: all its records but the last are full. (libevent's TLS
    filter made a record per buffer chain: four full ones and a partial one per 68 KiB read.)"""
    mock = kbmock(mode="msk", topics=["big:1"])
    relay = RecordRelay(mock.bootstrap[0])
    try:
        p = ports()
        kbridge(cluster_ini("msk", [f"localhost:{relay.port}"], p, tls_ca=certs / "ca.pem",
                            log_level="info"))
        req = produce_request(1, "records", acks=0, records_len=4 * MIB, topic="big")
        with socket.create_connection(("127.0.0.1", p.listen), timeout=10) as s:
            s.sendall(req)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with relay.lock:
                    best = max(relay.records, key=sum, default=[])
                    if sum(best) >= len(req):
                        break
                time.sleep(0.1)
        with relay.lock:
            lens = list(max(relay.records, key=sum, default=[]))
        assert sum(lens) >= len(req), f"only {sum(lens)} of {len(req)} bytes reached the broker"
        big = [n for n in lens[:-1] if n > 1024]  # the request's records, without the last
        full = sum(1 for n in big if n >= FULL_RECORD)
        assert len(big) >= (4 * MIB) // 16384 - 1, lens[:20]
        assert full == len(big), (f"{full} of {len(big)} records full; sizes of the others: "
                                  f"{sorted(set(n for n in big if n < FULL_RECORD))[:10]}")
    finally:
        relay.close()


def test_requests_after_a_large_one_are_not_held_back(kbmock, kbridge, ports, certs):
    """Bytes of an incomplete request wait for the rest to fill a record; a request that is
    complete goes at once, however small: ApiVersions written right behind a large Produce is
    answered (in order, after the Produce)."""
    mock = kbmock(mode="msk", topics=["big:1"])
    p = ports()
    kbridge(cluster_ini("msk", mock.bootstrap, p, tls_ca=certs / "ca.pem", log_level="info"))
    big = produce_request(1, "records", acks=1, records_len=MIB + 1000, topic="big")
    body = struct.pack(">hhih", 18, 0, 7, 7) + b"records"  # ApiVersions v0, correlation id 7
    small = struct.pack(">i", len(body)) + body
    with socket.create_connection(("127.0.0.1", p.listen), timeout=10) as s:
        s.sendall(big + small)
        s.settimeout(10)
        for want in (1, 7):
            head = recv_exactly(s, 8)
            size, corr = struct.unpack(">ii", head)
            assert corr == want, (corr, want)
            recv_exactly(s, size - 4)


def recv_exactly(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "kbridge closed the connection"
        out += chunk
    return out
