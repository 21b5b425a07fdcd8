"""A plaintext fake Kafka broker for the core tests (kbridge in front of it with `tls = off`),
plus the hand-made client side: request builders and a frame reader.

It speaks just enough Kafka, written from /work/shared/kafka-spec/*.json (non-flexible versions
only, which is all the hand-made clients and kbridge's probe use): ApiVersions v0-v2, Metadata
v0-v4, Produce v3-v4 (acks honoured: no answer for acks=0), FindCoordinator v0-v1. Everything
it receives is recorded per upstream connection (which connection carried which client_id,
correlation id and bytes), so a test can tell which client's bytes went where. Hooks:

- `brokers`: the broker list every Metadata answer carries, as (node_id, host, port) tuples;
  default: node 0 at this broker's own address. Node ids may be anything an int32 holds.
- `coordinator`: (error_code, node_id, host, port) for FindCoordinator.
- `metadata_delay`: seconds to wait before answering each Metadata request.
- `read_rate`: bytes per second each connection reads (None: as fast as possible); with
  `rcvbuf` (SO_RCVBUF of the accepted sockets) it makes a slow-reading broker.
- `tls`: a server ssl.SSLContext: every accepted connection speaks TLS (kbridge's real path).
- `fetch_reply`: fetch_reply(version, correlation_id) -> list of byte chunks making up the whole
  response frame (size prefix included), sent one sendall() each: Fetch is answered only so.

Every wait is bounded; `close()` stops the server and its connection threads.
"""
import socket
import struct
import threading
import time

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_FIND_COORDINATOR = 10
API_VERSIONS = 18

# What this broker says it serves (ApiVersions). Metadata up to v4 so kbridge's probe picks v4.
SERVED = {API_PRODUCE: (3, 4), API_METADATA: (0, 4), API_FIND_COORDINATOR: (0, 1),
          API_VERSIONS: (0, 2)}


# --- encoding helpers (classic, non-flexible Kafka encoding) ------------------------------------

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    """STRING / NULLABLE_STRING (None -> length -1)."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def uvarint(v):
    """Unsigned varint (flexible versions: compact lengths, tag numbers and sizes)."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def read_uvarint(b, off):
    """(value, offset after it) of the unsigned varint at b[off]."""
    v = shift = 0
    while True:
        x = b[off]
        off += 1
        v |= (x & 0x7F) << shift
        if x < 0x80:
            return v, off
        shift += 7


def array(items):
    return i32(len(items)) + b"".join(items)


def frame(body):
    return i32(len(body)) + body


def request(api_key, version, corr, client_id, body):
    """A request frame with header v1 (api_key, api_version, correlation_id, client_id)."""
    return frame(i16(api_key) + i16(version) + i32(corr) + string(client_id) + body)


def metadata_request(corr, client_id, version=1, topics=()):
    """Metadata v1-v4 request; topics=() asks for no topic (v1+), brokers only."""
    body = array([string(t) for t in topics])
    if version >= 4:
        body += i8(0)  # allow_auto_topic_creation
    return request(API_METADATA, version, corr, client_id, body)


def produce_request(corr, client_id, acks, records_len, topic="t", partition=0, version=3,
                    fill=b"r"):
    """Produce v3 request whose single records field is records_len bytes of `fill` (the fake
    broker does not parse record batches and kbridge forwards them by length)."""
    records = (fill * (records_len // len(fill) + 1))[:records_len]
    body = (string(None) + i16(acks) + i32(30000) +
            array([string(topic) + array([i32(partition) + i32(len(records)) + records])]))
    return request(API_PRODUCE, version, corr, client_id, body)


def find_coordinator_request(corr, client_id, key="g", version=1):
    body = string(key) + (i8(0) if version >= 1 else b"")
    return request(API_FIND_COORDINATOR, version, corr, client_id, body)


# --- decoding ------------------------------------------------------------------------------------

class Reader:
    def __init__(self, data, off=0):
        self.d = data
        self.o = off

    def take(self, n):
        if self.o + n > len(self.d):
            raise ValueError("short frame")
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode(errors="replace")

    def array(self, fn):
        n = self.i32()
        return [] if n < 0 else [fn() for _ in range(n)]


def parse_metadata_response(body, version):
    """body: the response after its 4-byte size. Returns (correlation_id, [(node, host, port)])."""
    r = Reader(body)
    corr = r.i32()
    if version >= 3:
        r.i32()  # throttle_time_ms

    def broker():
        node, host, port = r.i32(), r.string(), r.i32()
        if version >= 1:
            r.string()  # rack
        return node, host, port

    return corr, r.array(broker)


def recv_exact(sock, n, deadline):
    out = bytearray()
    while len(out) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError(f"peer closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def recv_frame(sock, timeout=10):
    """One whole frame from sock: returns its body (after the size prefix). Raises EOFError when
    the peer closes, socket.timeout when nothing complete arrives in time."""
    deadline = time.monotonic() + timeout
    size = struct.unpack(">i", recv_exact(sock, 4, deadline))[0]
    return recv_exact(sock, size, deadline)


def recv_all(sock, timeout=10):
    """Everything sock delivers until EOF (or timeout / reset): returns (bytes, how_it_ended)."""
    deadline = time.monotonic() + timeout
    out = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(out), "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(out), "timeout"
        except (ConnectionResetError, BrokenPipeError):
            return bytes(out), "reset"
        if not chunk:
            return bytes(out), "eof"
        out += chunk


def split_frames(data):
    """Splits a byte stream into frame bodies; returns (bodies, trailing incomplete bytes)."""
    frames, off = [], 0
    while off + 4 <= len(data):
        size = struct.unpack(">i", data[off:off + 4])[0]
        if size < 0 or off + 4 + size > len(data):
            break
        frames.append(data[off + 4:off + 4 + size])
        off += 4 + size
    return frames, data[off:]


# --- the broker ----------------------------------------------------------------------------------

class Frame:
    """One request as the broker received it."""

    def __init__(self, api_key, api_version, corr, client_id, size, acks=None):
        self.api_key = api_key
        self.api_version = api_version
        self.corr = corr
        self.client_id = client_id
        self.size = size  # bytes after the size prefix
        self.acks = acks

    def __repr__(self):
        return (f"Frame(api={self.api_key} v{self.api_version} corr={self.corr} "
                f"client_id={self.client_id!r} size={self.size})")


class Conn:
    """One upstream connection kbridge (or its probe) opened to the fake broker."""

    def __init__(self, index, sock):
        self.index = index
        self.sock = sock
        self.frames = []       # Frame, in arrival order
        self.bytes_in = 0      # every byte received, complete frames or not
        self.closed = False    # the peer closed (EOF) or the connection broke
        self.error = None      # why the connection thread stopped, when not a plain EOF

    def client_ids(self):
        return {f.client_id for f in self.frames}


class FakeBroker:
    def __init__(self, host="127.0.0.1", port=0, brokers=None, read_rate=None, rcvbuf=None,
                 tls=None):
        self.lock = threading.Lock()
        self.tls = tls
        self.fetch_reply = None
        self.conns = []
        self.brokers = brokers
        self.coordinator = (15, -1, "", -1)  # COORDINATOR_NOT_AVAILABLE, no node
        self.metadata_delay = 0.0
        self.read_rate = read_rate
        self.rcvbuf = rcvbuf
        self.topic = "t"
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # Set before listen() so accepted sockets start with it (window scaling is fixed
            # at the handshake).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()[:2]
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def snapshot(self):
        with self.lock:
            return list(self.conns)

    def frames(self, api_key=None):
        """Every recorded frame, as (conn index, Frame)."""
        out = []
        for c in self.snapshot():
            for f in list(c.frames):
                if api_key is None or f.api_key == api_key:
                    out.append((c.index, f))
        return out

    def wait(self, predicate, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                seen = [(c.index, c.bytes_in, c.frames) for c in self.snapshot()]
                raise AssertionError(f"fake broker: no {what} within {timeout}s; "
                                     f"connections (index, bytes, frames): {seen}")
            time.sleep(0.02)

    def close(self):
        self._stop.set()
        self.sock.close()
        for c in self.snapshot():
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.sock.close()
        for t in self._threads:
            t.join(5)

    # --- serving ---

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                c = Conn(len(self.conns), s)
                self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            with self.lock:
                self._threads.append(t)
            t.start()

    def _recv(self, c, n):
        """Exactly n bytes from c (paced by read_rate), or None at EOF / stop."""
        out = bytearray()
        started = time.monotonic()
        while len(out) < n:
            if self._stop.is_set():
                return None
            want = n - len(out)
            if self.read_rate:
                want = min(want, 16384)
                # pace: never ahead of read_rate bytes per second since this read began
                ahead = (len(out) + want) / self.read_rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(min(ahead, 0.2))
                    continue
            c.sock.settimeout(0.2)
            try:
                chunk = c.sock.recv(want)
            except socket.timeout:
                continue
            except OSError as e:
                c.error = str(e)
                return None
            if not chunk:
                return None
            out += chunk
            c.bytes_in += len(chunk)
        return bytes(out)

    def _serve(self, c):
        try:
            if self.tls:
                c.sock.settimeout(10)
                c.sock = self.tls.wrap_socket(c.sock, server_side=True)
            while not self._stop.is_set():
                pre = self._recv(c, 4)
                if pre is None:
                    break
                size = struct.unpack(">i", pre)[0]
                if size < 8:
                    c.error = f"bad frame size {size}"
                    break
                body = self._recv(c, size)
                if body is None:
                    break
                reply = self._handle(c, body)
                if isinstance(reply, list):  # pre-framed chunks (fetch_reply)
                    c.sock.settimeout(60)  # kbridge may pause reading while its client catches up
                    for chunk in reply:
                        c.sock.sendall(chunk)
                elif reply is not None:
                    c.sock.sendall(frame(reply))
        except Exception as e:  # recorded for the test to see; the thread just ends
            c.error = f"{type(e).__name__}: {e}"
        finally:
            c.closed = True
            try:
                c.sock.close()
            except OSError:
                pass

    def _handle(self, c, body):
        r = Reader(body)
        api, ver, corr = r.i16(), r.i16(), r.i32()
        client_id = r.string()
        f = Frame(api, ver, corr, client_id, len(body))
        if api == API_PRODUCE:
            r.string()  # transactional_id (v3+)
            f.acks = r.i16()
        c.frames.append(f)
        head = i32(corr)  # response header v0
        if api == API_VERSIONS:
            keys = [i16(k) + i16(lo) + i16(hi) for k, (lo, hi) in sorted(SERVED.items())]
            return head + i16(0) + array(keys) + (i32(0) if ver >= 1 else b"")
        if api == API_METADATA:
            if self.metadata_delay:
                time.sleep(self.metadata_delay)
            return head + self.metadata_body(ver)
        if api == API_PRODUCE:
            if f.acks == 0:
                return None
            return head + self.produce_body(ver)
        if api == API_FETCH and self.fetch_reply:
            return self.fetch_reply(ver, corr)
        if api == API_FIND_COORDINATOR:
            err, node, host, port = self.coordinator
            out = b""
            if ver >= 1:
                out += i32(0) + i16(err) + string(None)
            else:
                out += i16(err)
            return head + out + i32(node) + string(host) + i32(port)
        raise ValueError(f"fake broker: unsupported API {api} v{ver}")

    def metadata_body(self, ver):
        brokers = self.brokers if self.brokers is not None else [(0, self.host, self.port)]
        out = b""
        if ver >= 3:
            out += i32(0)  # throttle_time_ms
        items = []
        for node, host, port in brokers:
            item = i32(node) + string(host) + i32(port)
            if ver >= 1:
                item += string(None)  # rack
            items.append(item)
        out += array(items)
        if ver >= 2:
            out += string("fake-cluster")
        if ver >= 1:
            out += i32(brokers[0][0] if brokers else -1)  # controller_id
        leader = brokers[0][0] if brokers else -1
        part = i16(0) + i32(0) + i32(leader) + array([i32(leader)]) + array([i32(leader)])
        topic = i16(0) + string(self.topic) + (i8(0) if ver >= 1 else b"") + array([part])
        out += array([topic])
        return out

    def produce_body(self, ver):
        part = i32(0) + i16(0) + i64(42) + (i64(-1) if ver >= 2 else b"")
        return array([string(self.topic) + array([part])]) + i32(0)
