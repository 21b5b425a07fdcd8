"""Edges of the core (issue 13, defects 3, 4, 9, 10): running out of descriptors, a hostile
client of the admin endpoint, names with several addresses, wildcard and non-loopback
listeners, and broker-chosen host names in the log.

The upstream is a tiny fake broker in this file (tls = off): it answers ApiVersions v0 and
Metadata v1 by hand (Kafka's ApiVersions v0 and Metadata v1 schemas) and advertises whatever
brokers a test asks for. Names with several addresses come from a private /etc/hosts,
bind-mounted for kbridge alone in a user + mount namespace (`unshare`), or else from the
system's localhost when it has both 127.0.0.1 and ::1 (dual_name).
"""
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import BUILD, _die_with_parent, free_port

# --- a fake broker -----------------------------------------------------------------------------


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


class FakeBroker:
    """Listens on (host, port 0 or given). brokers: list of (node_id, host, port) it advertises
    in Metadata; None advertises itself as node 1. Serves until close()."""

    def __init__(self, host="127.0.0.1", brokers=None, port=0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.brokers = brokers if brokers is not None else [(1, host, self.port)]
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read(c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, c):
        try:
            while True:
                size = struct.unpack(">i", self._read(c, 4))[0]
                req = self._read(c, size)
                api, _version, corr = struct.unpack(">hhi", req[:8])
                if api == 18:  # ApiVersions v0: Metadata 0-1, ApiVersions 0
                    body = struct.pack(">hi", 0, 2) + struct.pack(">hhh", 3, 0, 1) + \
                        struct.pack(">hhh", 18, 0, 0)
                elif api == 3:  # Metadata v1: brokers, controller, no topics
                    body = struct.pack(">i", len(self.brokers))
                    for node, host, port in self.brokers:
                        body += struct.pack(">i", node) + _str(host) + struct.pack(">i", port) + \
                            struct.pack(">h", -1)
                    body += struct.pack(">ii", self.brokers[0][0] if self.brokers else -1, 0)
                else:
                    return
                frame = struct.pack(">i", corr) + body
                c.sendall(struct.pack(">i", len(frame)) + frame)
        except (OSError, EOFError, struct.error):
            pass
        finally:
            c.close()

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def metadata(host, port, timeout=5.0):
    """One Metadata v1 request through kbridge; returns [(node, host, port)]."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        return metadata_on(s)


def metadata_on(s, corr=7):
    req = struct.pack(">hhi", 3, 1, corr) + _str("edges") + struct.pack(">i", -1)
    s.sendall(struct.pack(">i", len(req)) + req)
    size = struct.unpack(">i", FakeBroker._read(s, 4))[0]
    resp = FakeBroker._read(s, size)
    assert struct.unpack(">i", resp[:4])[0] == corr
    pos = 4
    n = struct.unpack(">i", resp[pos:pos + 4])[0]
    pos += 4
    out = []
    for _ in range(n):
        node = struct.unpack(">i", resp[pos:pos + 4])[0]
        hlen = struct.unpack(">h", resp[pos + 4:pos + 6])[0]
        host = resp[pos + 6:pos + 6 + hlen].decode("latin-1")
        pos += 6 + hlen
        port = struct.unpack(">i", resp[pos:pos + 4])[0]
        rlen = struct.unpack(">h", resp[pos + 4:pos + 6])[0]
        pos += 6 + max(rlen, 0)
        out.append((node, host, port))
    return out


@pytest.fixture
def fake_broker():
    made = []

    def start(**kw):
        b = FakeBroker(**kw)
        made.append(b)
        return b

    yield start
    for b in made:
        b.close()


# --- kbridge, started with a descriptor limit or inside a private /etc/hosts --------------------


def edge_ini(p, bootstrap, listen_host="127.0.0.1", global_extra=None, extra=None):
    g = {"log_level": "info"}
    g.update(global_extra or {})
    lines = ["[global]"] + [f"{k} = {v}" for k, v in g.items()]
    lines += ["", "[edge]", f"bootstrap_servers = {bootstrap}",
              f"listen = {listen_host}:{p.listen}", f"broker_port_base = {p.base}",
              f"max_node_id = {p.max_node_id}", "tls = off", "connect_timeout_ms = 3000"]
    lines += [f"{k} = {v}" for k, v in (extra or {}).items()]
    return "\n".join(lines) + "\n"


class Kb:
    """kbridge -c INI with stdout+stderr in a log file; prefix: a command to run it under."""

    def __init__(self, tmp_path, ini, tag="kb", nofile=None, prefix=()):
        self.ini = tmp_path / f"{tag}.ini"
        self.ini.write_text(ini)
        self.log_path = tmp_path / f"{tag}.log"

        def pre():
            _die_with_parent()
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([*prefix, str(BUILD / "kbridge"), "-c", str(self.ini)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=pre)
        self.wait_log("kbridge ready")

    def log_bytes(self):
        return self.log_path.read_bytes()

    def log_text(self):
        return self.log_bytes().decode(errors="replace")

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().splitlines():
                if rx.search(line):
                    return line
            if self.proc.poll() is not None:
                pytest.fail(f"kbridge exited {self.proc.returncode}\n{self.log_text()[-6000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no log line matching {pattern!r}\n{self.log_text()[-6000:]}")
            time.sleep(0.05)

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return "hung"
        return self.proc.returncode


@pytest.fixture
def kb(tmp_path, request):
    started = []

    def start(ini, **kw):
        k = Kb(tmp_path, ini, tag=f"kb{len(started)}", **kw)
        started.append(k)
        return k

    yield start
    problems = []
    for k in started:
        rc = k.stop()
        if rc != 0:
            problems.append(f"kbridge exit {rc}")
        rep = getattr(request.node, "rep_call", None)
        if rc != 0 or rep is None or rep.failed:
            print(f"----- {k.log_path.name} -----\n{k.log_text()[-8000:]}")
    assert not problems, problems


def _unshare_works():
    try:
        r = subprocess.run(["unshare", "-m", "--map-root-user", "sh", "-c",
                            "mount --bind /etc/hosts /etc/hosts"], capture_output=True,
                           timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _localhost_has_both():
    try:
        fams = {ai[0] for ai in socket.getaddrinfo("localhost", 1, type=socket.SOCK_STREAM)}
    except OSError:
        return False
    return fams == {socket.AF_INET, socket.AF_INET6}


@pytest.fixture
def dual_name(tmp_path):
    """dual_name(first) -> (prefix, name): a command prefix under which `name` resolves to both
    127.0.0.1 and ::1, `first` listed first. A private /etc/hosts for kbridge alone where
    unshare is allowed; else the system's localhost when it already has both (the order is
    then the system's: tests cover both orders); else the test is skipped."""
    ns = _unshare_works()
    if not ns and not _localhost_has_both():
        pytest.skip("no name with both 127.0.0.1 and ::1 (unshare not permitted, and "
                    "localhost has one address)")

    def make(first="::1"):
        if not ns:
            return [], "localhost"
        other = "127.0.0.1" if first == "::1" else "::1"
        path = tmp_path / f"hosts-{first.replace(':', '_')}"
        path.write_text(f"{first} dualhost\n{other} dualhost\n127.0.0.1 localhost\n")
        return (["unshare", "-m", "--map-root-user", "sh", "-c",
                 'mount --bind "$0" /etc/hosts && exec "$@"', str(path)], "dualhost")

    return make


# --- defect 3: out of descriptors ----------------------------------------------------------------


@pytest.mark.parametrize("limit", [64, 65])  # odd or even: the last descriptor taken or not
def test_descriptor_exhaustion_pauses_accepting(kb, fake_broker, ports, limit):
    broker = fake_broker()
    p = ports(max_node_id=3)
    k = kb(edge_ini(p, f"127.0.0.1:{broker.port}",
                    global_extra={"log_format": "json", "workers": "2"}), nofile=(limit, limit))
    assert metadata("127.0.0.1", p.listen)  # served before the limit is hit

    clients = []
    try:
        for _ in range(90):  # ~2 descriptors each: far more than 64 allow
            clients.append(socket.create_connection(("127.0.0.1", p.listen), timeout=2))
        time.sleep(1)  # every descriptor is taken by now
        lines0 = len(k.log_bytes().splitlines())
        cpu0 = k.cpu_seconds()
        time.sleep(3)
        cpu = k.cpu_seconds() - cpu0
        lines = len(k.log_bytes().splitlines()) - lines0
        assert cpu < 0.3, f"kbridge used {cpu:.2f} CPU-s in 3 s while out of descriptors"
        assert lines < 20, f"{lines} log lines in 3 s while out of descriptors"
    finally:
        for c in clients:
            c.close()
    # descriptors are back: accepting resumes within the 1 s retry
    deadline = time.monotonic() + 10
    while True:
        try:
            assert metadata("127.0.0.1", p.listen, timeout=2)
            break
        except (OSError, AssertionError, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # the retry timer (at most 1 s) re-enables, then 1 s without a failure ends the episode;
    # sanitizer builds on a loaded machine need more than those 2 s
    k.wait_log("accepting connections again", timeout=15)
    text = k.log_text()
    assert re.search(r"Too many open files.*pausing accepts.*LimitNOFILE", text), text
    assert len(re.findall("pausing accepts", text)) <= 2, text  # once per episode (and loop)
    # the limit could not be raised (hard = soft): said once at start, with the numbers
    assert re.search(r"open file limit \(RLIMIT_NOFILE\) is %d \(hard %d\).*need about \d+"
                     % (limit, limit), text), text
    for line in text.splitlines():
        json.loads(line)  # every line, libevent's own included, is JSON


def test_descriptor_limit_raised_at_start(kb, fake_broker, ports):
    broker = fake_broker()
    p = ports(max_node_id=3)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} too low to test raising")
    k = kb(edge_ini(p, f"127.0.0.1:{broker.port}", extra={"max_connections": "400"}),
           nofile=(64, hard))
    line = k.wait_log(r"raised the open file limit \(RLIMIT_NOFILE\) from 64 to \d+")
    raised = int(re.search(r"to (\d+)", line).group(1))
    assert raised >= 800, line  # two descriptors per client at least
    with open(f"/proc/{k.proc.pid}/limits") as f:
        soft = [l for l in f if l.startswith("Max open files")][0].split()[3]
    assert int(soft) == raised
    assert "need about" not in k.log_text()


# --- defect 4: the admin endpoint ----------------------------------------------------------------


@pytest.fixture
def admin_kb(kb, fake_broker, ports):
    broker = fake_broker()
    p = ports(max_node_id=3)
    admin = free_port()
    k = kb(edge_ini(p, f"127.0.0.1:{broker.port}", global_extra={"admin_listen":
                                                                f"127.0.0.1:{admin}"}))
    return k, admin, p


def http_get(port, path="/healthz", timeout=3):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def flood(port, head, chunk, limit):
    """Sends head, then chunk until limit bytes or the server cuts the connection. Returns
    (bytes sent, True when cut, what the server answered)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    sent, answer = 0, b""
    pending = head
    deadline = time.monotonic() + 20
    try:
        while sent < limit and time.monotonic() < deadline:
            try:
                data = s.recv(65536)
                return sent, True, data  # an answer (a 4xx) or EOF: the server reacted
            except BlockingIOError:
                pass
            except OSError:
                return sent, True, answer
            try:
                n = s.send(pending or chunk)
                sent += n
                pending = (pending or chunk)[n:] if pending else b""
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                return sent, True, answer
        return sent, False, answer
    finally:
        s.close()


def raw_request(port, data, timeout=3):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_admin_answers_what_probes_send(admin_kb):
    k, admin, _ = admin_kb
    ok = raw_request(admin, b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and ok.endswith(b"\r\n\r\nok\n"), ok
    assert b"Connection: close" in ok
    lf = raw_request(admin, b"GET /healthz HTTP/1.0\n\n")  # LF-only clients
    assert lf.startswith(b"HTTP/1.1 200 OK") and lf.endswith(b"ok\n"), lf
    head = raw_request(admin, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n"), head
    assert raw_request(admin, b"DELETE /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert raw_request(admin, b"GET /nope?x=1 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert raw_request(admin, b"GET /healthz?verbose HTTP/1.1\r\n\r\n").endswith(b"ok\n")
    assert raw_request(admin, b"nonsense\r\n\r\n").startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("what,head,chunk", [
    ("header lines", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Flood: " + b"a" * 1000 + b"\r\n"),
    ("one endless header", b"GET /healthz HTTP/1.1\r\nX-Endless: ", b"a" * 4096),
    ("huge Content-Length GET", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 99999999999\r\n\r\n", b"b" * 65536),
    ("POST body", b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
     b"b" * 65536),
], ids=["header-lines", "endless-header", "content-length-get", "post-body"])
def test_admin_floods_are_cut(admin_kb, what, head, chunk):
    k, admin, _ = admin_kb
    rss0 = k.rss_kib()
    sent, cut, answer = flood(admin, head, chunk, 64 << 20)
    grown = k.rss_kib() - rss0
    assert cut, f"{what}: {sent} bytes sent and the connection still open"
    assert grown < 20 << 10, f"{what}: kbridge RSS grew {grown} KiB"
    if answer:
        assert re.match(rb"HTTP/1\.[01] (4\d\d|5\d\d)", answer), answer[:200]
    assert b"200 OK" in http_get(admin)


def test_admin_trickle_is_cut(admin_kb):
    k, admin, _ = admin_kb
    s = socket.create_connection(("127.0.0.1", admin), timeout=2)
    s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    start = time.monotonic()
    cut = False
    try:
        while time.monotonic() - start < 9:
            time.sleep(1)
            try:
                s.sendall(b"a")  # one byte a second: every read resets an idle timeout
                s.settimeout(0.01)
                if s.recv(4096) == b"":
                    cut = True
                    break
            except socket.timeout:
                continue
            except OSError:
                cut = True
                break
    finally:
        s.close()
    elapsed = time.monotonic() - start
    assert cut, "a request trickling in at 1 byte/s was never cut"
    assert elapsed < 8, f"cut only after {elapsed:.1f} s"


def test_admin_slowloris_connections_capped(admin_kb):
    k, admin, _ = admin_kb
    conns = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", admin), timeout=2)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            conns.append(s)
        time.sleep(1)
        closed = 0
        for s in conns:
            s.settimeout(0.05)
            try:
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 503"):
                    closed += 1
            except socket.timeout:
                pass
            except OSError:
                closed += 1
        assert closed >= 250, f"only {closed} of 300 slowloris connections were refused"
        # the held ones time out, and /healthz answers again while the rest stay connected
        deadline = time.monotonic() + 9
        while True:
            try:
                if b"200 OK" in http_get(admin, timeout=1):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "/healthz never answered"
            time.sleep(0.3)
    finally:
        for s in conns:
            s.close()


def test_admin_flood_does_not_stall_clients(admin_kb):
    k, admin, p = admin_kb
    stop = threading.Event()

    def attack():
        while not stop.is_set():
            flood(admin, b"GET /healthz HTTP/1.1\r\nX-Endless: ", b"a" * 4096, 4 << 20)

    threads = [threading.Thread(target=attack, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", p.listen), timeout=5) as s:
            rtts = []
            for i in range(60):
                t0 = time.monotonic()
                assert metadata_on(s, corr=i)
                rtts.append(time.monotonic() - t0)
                time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(25)
    rtts.sort()
    assert rtts[len(rtts) // 2] < 0.005, f"p50 {rtts[len(rtts) // 2] * 1000:.1f} ms"


def test_security_warnings_for_wildcard_listeners(kb, fake_broker, ports):
    broker = fake_broker()
    p = ports(max_node_id=3)
    admin = free_port()
    k = kb(edge_ini(p, f"127.0.0.1:{broker.port}", listen_host="0.0.0.0",
                    global_extra={"admin_listen": f"0.0.0.0:{admin}"},
                    extra={"advertised_host": "127.0.0.1"}))
    text = k.log_text()
    assert re.search(r"WARN .*SECURITY: admin_listen = 0\.0\.0\.0:\d+ is not a loopback", text), \
        text
    assert re.search(r"WARN .*\[edge\] SECURITY: listen = 0\.0\.0\.0 is a wildcard", text), text


def test_no_security_warning_for_loopback(kb, fake_broker, ports):
    broker = fake_broker()
    p = ports(max_node_id=3)
    k = kb(edge_ini(p, f"127.0.0.1:{broker.port}",
                    global_extra={"admin_listen": f"127.0.0.1:{free_port()}"}))
    text = k.log_text()
    assert "SECURITY: admin_listen" not in text and "is a wildcard" not in text, text


# --- defect 9: every address of a name -----------------------------------------------------------


@pytest.mark.parametrize("broker_at", ["127.0.0.1", "::1"])
def test_dial_tries_every_address(kb, fake_broker, ports, dual_name, broker_at):
    # the broker listens on one address of the name only, the other one listed first
    prefix, name = dual_name(first="::1" if broker_at == "127.0.0.1" else "127.0.0.1")
    broker = fake_broker(host=broker_at, port=free_port())
    p = ports(max_node_id=3)
    kb(edge_ini(p, f"{name}:{broker.port}"), prefix=prefix)
    brokers = metadata("127.0.0.1", p.listen)
    assert brokers == [(1, "127.0.0.1", p.node(1))], brokers


def test_dial_names_every_failed_address(kb, ports, dual_name):
    closed = free_port()
    prefix, name = dual_name()
    p = ports(max_node_id=3)
    k = kb(edge_ini(p, f"{name}:{closed}"), prefix=prefix)
    with pytest.raises((OSError, EOFError)):
        metadata("127.0.0.1", p.listen)
    line = k.wait_log(r"ERROR.*connection refused by %s:%d" % (name, closed))
    assert f"every address of {name} failed" in line, line
    assert f"[::1]:{closed} (connection refused)" in line, line
    assert f"127.0.0.1:{closed} (connection refused)" in line, line


def test_listen_binds_every_address(kb, fake_broker, ports, dual_name):
    prefix, name = dual_name()
    broker = fake_broker()
    p = ports(max_node_id=3)
    kb(edge_ini(p, f"127.0.0.1:{broker.port}", listen_host=name), prefix=prefix)
    assert metadata("127.0.0.1", p.listen) == [(1, name, p.node(1))]
    assert metadata("::1", p.listen) == [(1, name, p.node(1))]


# --- defect 10: broker-chosen names in the log ---------------------------------------------------


def test_broker_host_names_are_escaped_in_the_log(kb, fake_broker, ports):
    evil = "evil\nFAKE ERROR injected\x1b[31mred"
    broker = fake_broker(brokers=[])
    broker.brokers = [(1, evil, broker.port)]
    p = ports(max_node_id=3)
    k = kb(edge_ini(p, f"127.0.0.1:{broker.port}"))
    assert metadata("127.0.0.1", p.listen) == [(1, "127.0.0.1", p.node(1))]
    line = k.wait_log(r"broker 1 served at")
    raw = k.log_bytes()
    assert b"\x1b" not in raw, raw[-2000:]
    assert not any(l.startswith(b"FAKE") for l in raw.splitlines()), raw[-2000:]
    assert "evil\\x0aFAKE ERROR injected\\x1b[31mred" in line, line
