"""kbridge authenticating to the broker itself (sasl_mechanism set), against a tiny broker
written here: TLS, Kafka framing, and a strict RFC 5802 SCRAM server (hashlib/hmac) plus PLAIN.
Like a Kafka SASL listener it answers ApiVersions before authentication and closes the
connection on any other request until authentication succeeded; after it, Metadata v1 is
answered. The client here speaks plain Kafka with no SASL at all, through kbridge.

(The SASL-enforcing kbmock comes on another branch; these tests need nothing but Python.)"""
import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import ssl
import struct
import threading
import time

import pytest

from conftest import cluster_ini, free_port
from fakebroker import read_uvarint as _read_uvarint
from fakebroker import uvarint as _uvarint
from test_operate import metrics

USERS = {"alice": "kbsecret-pw-1", "bob": "kbsecret-pw-2"}
SALT = b"kbridge-sasl-salt"
ITERATIONS = 4096


def _string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class SaslBroker:
    """One TLS listener; per connection: ApiVersions, SaslHandshake v1, SaslAuthenticate v0-v2."""

    def __init__(self, certs, mechanisms=("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"),
                 auth_max=2, lifetime_ms=0, forge_signature=False):
        self.mechanisms = list(mechanisms)
        self.auth_max = auth_max
        self.lifetime_ms = lifetime_ms
        self.forge_signature = forge_signature  # a server that accepts anyone and cannot sign
        self.auths = 0           # successful authentications
        self.failures = 0        # rejected ones
        self.client_finals = []  # SCRAM client-final messages as received
        self.violations = []     # anything a strict broker would refuse
        self.metadata_served = 0
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # --- framing ---

    @staticmethod
    def _read_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, raw):
        raw.settimeout(20)
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        state = {"mech": None, "authed": False, "scram": None}
        try:
            while True:
                size = struct.unpack(">i", self._read_exact(conn, 4))[0]
                frame = self._read_exact(conn, size)
                key, ver, corr = struct.unpack(">hhi", frame[:8])
                cid_len = struct.unpack(">h", frame[8:10])[0]
                pos = 10 + max(cid_len, 0)
                if key == 36 and ver >= 2:
                    pos += 1  # request header v2: empty tagged fields
                body = frame[pos:]
                resp = self._handle(state, key, ver, body)
                if resp is None:
                    return  # close, as Kafka does
                header = struct.pack(">i", corr) + (b"\x00" if key == 36 and ver >= 2 else b"")
                conn.sendall(struct.pack(">i", len(header) + len(resp)) + header + resp)
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _handle(self, state, key, ver, body):
        if key == 18:  # ApiVersions v0 (allowed before authentication)
            apis = [(3, 1, 1), (17, 0, 1), (18, 0, 0), (36, 0, self.auth_max)]
            return struct.pack(">hi", 0, len(apis)) + b"".join(struct.pack(">hhh", *a)
                                                              for a in apis)
        if key == 17:
            mech = body[2:2 + struct.unpack(">h", body[:2])[0]].decode()
            if ver != 1:
                self.violations.append(f"SaslHandshake v{ver}")
            names = b"".join(_string(m) for m in self.mechanisms)
            if mech not in self.mechanisms:
                return struct.pack(">hi", 33, len(self.mechanisms)) + names
            state["mech"] = mech
            return struct.pack(">hi", 0, len(self.mechanisms)) + names
        if key == 36:
            return self._authenticate(state, ver, body)
        if not state["authed"]:
            self.violations.append(f"api {key} before authentication")
            return None
        if key == 3 and ver == 1:  # Metadata v1: one broker (this one), controller, no topics
            self.metadata_served += 1
            return (struct.pack(">i", 1) + struct.pack(">i", 0) + _string("127.0.0.1")
                    + struct.pack(">i", self.port) + struct.pack(">h", -1)
                    + struct.pack(">i", 0) + struct.pack(">i", 0))
        return None

    def _auth_response(self, ver, error, message, data):
        if ver >= 2:
            def cbytes(b):
                return _uvarint(len(b) + 1) + b
            msg = b"\x00" if message is None else cbytes(message.encode())
            out = struct.pack(">h", error) + msg + cbytes(data)
        else:
            msg = struct.pack(">h", -1) if message is None else _string(message)
            out = struct.pack(">h", error) + msg + struct.pack(">i", len(data)) + data
        if ver >= 1:
            out += struct.pack(">q", self.lifetime_ms if error == 0 else 0)
        if ver >= 2:
            out += b"\x00"
        return out

    def _fail(self, ver, mech):
        self.failures += 1
        return self._auth_response(
            ver, 58, "Authentication failed during authentication due to invalid credentials "
                     f"with SASL mechanism {mech}", b"")

    def _authenticate(self, state, ver, body):
        if ver >= 2:
            n, pos = _read_uvarint(body, 0)
            data = body[pos:pos + n - 1]
        else:
            n = struct.unpack(">i", body[:4])[0]
            data = body[4:4 + n]
        mech = state["mech"]
        if mech == "PLAIN":
            _, user, pw = data.decode().split("\0")
            if USERS.get(user) != pw:
                return self._fail(ver, mech)
            state["authed"] = True
            self.auths += 1
            return self._auth_response(ver, 0, None, b"")
        if mech and mech.startswith("SCRAM-"):
            h = hashlib.sha512 if mech.endswith("512") else hashlib.sha256
            text = data.decode()
            if state["scram"] is None:  # client-first: "n,,n=user,r=nonce", nothing else
                m = re.fullmatch(r"n,,n=([^,]+),r=([!-+\--~]+)", text)
                if not m:
                    self.violations.append(f"bad client-first {text!r}")
                    return None
                user = m.group(1).replace("=2C", ",").replace("=3D", "=")
                nonce = m.group(2) + "SrvPart%$"
                server_first = (f"r={nonce},s={base64.b64encode(SALT).decode()},"
                                f"i={ITERATIONS}")
                state["scram"] = (user, text[3:], server_first, nonce)
                return self._auth_response(ver, 0, None, server_first.encode())
            user, bare, server_first, nonce = state["scram"]
            self.client_finals.append(text)
            # strict RFC 5802: exactly c=biws, the combined nonce once, then the proof
            m = re.fullmatch(r"c=biws,r=([^,]+),p=([A-Za-z0-9+/=]+)", text)
            if not m or m.group(1) != nonce:
                self.violations.append(f"bad client-final {text!r}")
                return None
            pw = USERS.get(user)
            if pw is None:
                return self._fail(ver, mech)
            salted = hashlib.pbkdf2_hmac(h().name, pw.encode(), SALT, ITERATIONS)
            client_key = hmac.new(salted, b"Client Key", h).digest()
            stored = h(client_key).digest()
            auth_msg = f"{bare},{server_first},c=biws,r={nonce}".encode()
            sig = hmac.new(stored, auth_msg, h).digest()
            proof = base64.b64decode(m.group(2))
            if self.forge_signature:  # says yes without knowing the credential
                state["authed"] = True
                return self._auth_response(ver, 0, None,
                                           b"v=" + base64.b64encode(os.urandom(h().digest_size)))
            if h(bytes(a ^ b for a, b in zip(proof, sig))).digest() != stored:
                return self._fail(ver, mech)
            server_key = hmac.new(salted, b"Server Key", h).digest()
            v = base64.b64encode(hmac.new(server_key, auth_msg, h).digest())
            state["authed"] = True
            self.auths += 1
            return self._auth_response(ver, 0, None, b"v=" + v)
        self.violations.append("SaslAuthenticate before a handshake")
        return None


def metadata_v1(port, corr=11, timeout=15):
    """A plain (no SASL) Metadata v1 request to kbridge; returns (corr, [(node, host, port)])."""
    cid = b"plain-client"
    req = struct.pack(">hhih", 3, 1, corr, len(cid)) + cid + struct.pack(">i", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        head = SaslBroker._read_exact(s, 4)
        body = SaslBroker._read_exact(s, struct.unpack(">i", head)[0])
    got_corr, n = struct.unpack(">ii", body[:8])
    pos, brokers = 8, []
    for _ in range(n):
        node, hlen = struct.unpack(">ih", body[pos:pos + 6])
        host = body[pos + 6:pos + 6 + hlen].decode()
        port_, rack = struct.unpack(">ih", body[pos + 6 + hlen:pos + 12 + hlen])
        pos += 12 + hlen
        brokers.append((node, host, port_))
    return got_corr, brokers


@pytest.fixture
def sasl_broker(certs):
    made = []

    def start(**kw):
        b = SaslBroker(certs, **kw)
        made.append(b)
        return b

    yield start
    for b in made:
        b.stop()


def sasl_ini(broker, p, certs, tmp_path, mech, user, password, admin=None, json_form=False):
    pw = tmp_path / "password"
    if json_form:
        pw.write_text('{"username": "%s", "password": "%s"}\n' % (user, password))
    else:
        pw.write_text(password + "\n")
    os.chmod(pw, 0o600)
    extra = {"sasl_mechanism": mech, "sasl_password_file": str(pw)}
    if not json_form:
        extra["sasl_username"] = user
    text = cluster_ini("msk", [broker.address], p, tls_ca=certs / "ca.pem", extra=extra)
    if admin:
        text = text.replace("[global]\n", f"[global]\nadmin_listen = {admin}\n", 1)
    return text


@pytest.mark.parametrize("mech,auth_max,json_form", [
    ("SCRAM-SHA-512", 2, False),
    ("SCRAM-SHA-256", 1, True),
    ("SCRAM-SHA-256", 0, False),
    ("PLAIN", 2, False),
])
def test_kbridge_authenticates_for_a_plain_client(sasl_broker, kbridge, ports, certs, tmp_path,
                                                   mech, auth_max, json_form):
    broker = sasl_broker(auth_max=auth_max, lifetime_ms=3600000)
    p = ports()
    kb = kbridge(sasl_ini(broker, p, certs, tmp_path, mech, "alice", USERS["alice"],
                          json_form=json_form))
    corr, brokers = metadata_v1(p.listen)
    assert corr == 11
    # answered after authentication, with the broker's address rewritten to kbridge's
    assert brokers == [(0, "127.0.0.1", p.node(0))]
    assert broker.metadata_served >= 1
    assert broker.auths >= 1 and broker.failures == 0
    assert not broker.violations, broker.violations
    if mech.startswith("SCRAM"):
        # RFC 5802's client-final: the combined nonce exactly once (no repeated client nonce)
        assert all(re.fullmatch(r"c=biws,r=[^,]+SrvPart%\$,p=[A-Za-z0-9+/=]+", f)
                   for f in broker.client_finals), broker.client_finals
    assert "kbsecret" not in kb.log_text()


def test_wrong_password_is_named_counted_and_secret(sasl_broker, kbridge, ports, certs,
                                                    tmp_path):
    broker = sasl_broker()
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    kb = kbridge(sasl_ini(broker, p, certs, tmp_path, "SCRAM-SHA-512", "alice",
                          "kbsecret-wrong", admin=admin))
    with pytest.raises((EOFError, ConnectionError, socket.timeout)):
        metadata_v1(p.listen)  # kbridge closes the client; it will retry
    line = kb.wait_log(r"authentication failed \(SCRAM-SHA-512\)")
    assert "the broker refused: Authentication failed during authentication due to invalid " \
           "credentials with SASL mechanism SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED, " \
           "error 58)" in line
    assert f"[broker 127.0.0.1]" in line and "msk" in kb.log_text()
    assert broker.failures >= 1 and broker.metadata_served == 0
    assert not broker.violations, broker.violations
    assert metrics(admin).get('kbridge_upstream_failures_total{cluster="msk",reason="auth"}',
                              0) >= 1
    assert "kbsecret" not in kb.log_text()


def test_mechanism_not_enabled_names_the_offered_ones(sasl_broker, kbridge, ports, certs,
                                                      tmp_path):
    broker = sasl_broker(mechanisms=("SCRAM-SHA-512",))
    p = ports()
    kb = kbridge(sasl_ini(broker, p, certs, tmp_path, "PLAIN", "alice", USERS["alice"]))
    with pytest.raises((EOFError, ConnectionError, socket.timeout)):
        metadata_v1(p.listen)
    line = kb.wait_log(r"authentication failed \(PLAIN\)")
    assert "mechanism not enabled on this listener; the broker offers: SCRAM-SHA-512" in line
    assert broker.auths == 0 and not broker.violations


def test_silent_broker_times_out(kbridge, ports, certs, tmp_path):
    """A TLS listener that never answers the SASL exchange: bounded, named."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "server.pem", certs / "server.key")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held = []

    def accept():
        srv.settimeout(10)
        try:
            c, _ = srv.accept()
            held.append(ctx.wrap_socket(c, server_side=True))  # handshake, then silence
        except OSError:
            pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()

    class Addr:
        address = f"127.0.0.1:{srv.getsockname()[1]}"

    p = ports()
    text = sasl_ini(Addr, p, certs, tmp_path, "SCRAM-SHA-256", "alice", USERS["alice"])
    kb = kbridge(text.replace("[msk]\n", "[msk]\ntls_handshake_timeout_ms = 800\n", 1))
    start = time.monotonic()
    with pytest.raises((EOFError, ConnectionError, socket.timeout)):
        metadata_v1(p.listen)
    line = kb.wait_log(r"authentication failed \(SCRAM-SHA-256\): no answer from 127\.0\.0\.1 "
                       r"within 800 ms")
    assert time.monotonic() - start < 10, line
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def test_reload_picks_up_new_credentials(sasl_broker, kbridge, ports, certs, tmp_path):
    """SIGHUP re-reads sasl_password_file: new connections use the new password."""
    broker = sasl_broker()
    p = ports()
    kb = kbridge(sasl_ini(broker, p, certs, tmp_path, "SCRAM-SHA-256", "bob", "kbsecret-old"))
    with pytest.raises((EOFError, ConnectionError, socket.timeout)):
        metadata_v1(p.listen)
    kb.wait_log(r"authentication failed \(SCRAM-SHA-256\): the broker refused")
    (tmp_path / "password").write_text(USERS["bob"] + "\n")
    kb.proc.send_signal(signal.SIGHUP)
    kb.wait_log(r"configuration reloaded", timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert metadata_v1(p.listen)[1] == [(0, "127.0.0.1", p.node(0))]
            break
        except (EOFError, ConnectionError, socket.timeout):
            assert time.monotonic() < deadline, kb.log_text()[-3000:]
            time.sleep(0.2)
    assert broker.auths >= 1 and not broker.violations
    assert "kbsecret" not in kb.log_text()


def test_server_that_cannot_sign_is_refused(sasl_broker, kbridge, ports, certs, tmp_path):
    """A broker that accepts the proof but sends a wrong v= (it does not know the credential,
    e.g. a server in the middle) must not get the client's traffic."""
    broker = sasl_broker(forge_signature=True)
    p = ports()
    kb = kbridge(sasl_ini(broker, p, certs, tmp_path, "SCRAM-SHA-512", "alice", USERS["alice"]))
    with pytest.raises((EOFError, ConnectionError, socket.timeout)):
        metadata_v1(p.listen)
    line = kb.wait_log(r"authentication failed \(SCRAM-SHA-512\)")
    assert "server signature does not match" in line
    assert broker.metadata_served == 0
