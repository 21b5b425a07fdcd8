"""A minimal Kafka wire client for the SASL tests: one blocking socket (TLS or plaintext), the few
requests the tests need (ApiVersions, Metadata, SaslHandshake, SaslAuthenticate, raw tokens),
and a SCRAM client written from RFC 5802 with knobs to get things wrong on purpose (nonce, proof).
It is test equipment for kbmock's SASL server, independent of kbmock's and kbridge's code.
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct

API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_API_VERSIONS = 18
API_SASL_AUTHENTICATE = 36

ERR_UNSUPPORTED_SASL_MECHANISM = 33
ERR_ILLEGAL_SASL_STATE = 34
ERR_SASL_AUTHENTICATION_FAILED = 58


class Closed(Exception):
    """The peer closed the connection (or reset it)."""


def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"short read: {n} at {self.pos} of {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def string(self, compact=False):
        n = self.uvarint() - 1 if compact else self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self, compact=False):
        n = self.uvarint() - 1 if compact else self.i32()
        return None if n < 0 else self.take(n)

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def kstring(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class KafkaConn:
    """One connection. tls: a CA file to verify the server with (None: plaintext)."""

    def __init__(self, host, port, cafile=None, timeout=5.0):
        raw = socket.create_connection((host, port), timeout=timeout)
        if cafile:
            ctx = ssl.create_default_context(cafile=str(cafile))
            self.sock = ctx.wrap_socket(raw, server_hostname=host)
        else:
            self.sock = raw
        self.sock.settimeout(timeout)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError) as e:
                raise Closed(str(e)) from e
            if not chunk:
                raise Closed("EOF")
            buf += chunk
        return bytes(buf)

    def send_frame(self, payload):
        try:
            self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            raise Closed(str(e)) from e

    def recv_frame(self):
        (size,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(size)

    def request(self, key, version, body, flexible=False, response_flexible=None):
        """Sends one request; returns a Reader positioned after the response header."""
        self.corr += 1
        hdr = struct.pack(">hhi", key, version, self.corr) + kstring("kbmock-sasl-test")
        if flexible:
            hdr += b"\x00"
        self.send_frame(hdr + body)
        r = Reader(self.recv_frame())
        corr = r.i32()
        assert corr == self.corr, f"correlation id {corr}, sent {self.corr}"
        if flexible if response_flexible is None else response_flexible:
            r.skip_tags()
        return r

    def api_versions(self, version=2):
        """{api_key: (min, max)} from ApiVersions (v3+: flexible body, still a v0 response header).
        librdkafka 2.0.2's mock answers v0-v2 only."""
        if version >= 3:
            body = b"\x05test" + b"\x041.0" + b"\x00"  # compact strings name, version; no tags
            r = self.request(API_API_VERSIONS, version, body, flexible=True,
                             response_flexible=False)
        else:
            r = self.request(API_API_VERSIONS, version, b"")
        err = r.i16()
        assert err == 0, f"ApiVersions error {err}"
        n = r.uvarint() - 1 if version >= 3 else r.i32()
        out = {}
        for _ in range(n):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            if version >= 3:
                r.skip_tags()
            out[key] = (lo, hi)
        return out

    def metadata(self):
        """Metadata v1, all topics; returns the broker count (proves a real answer)."""
        r = self.request(API_METADATA, 1, struct.pack(">i", -1))
        return r.i32()

    def handshake(self, mechanism, version=1):
        """SaslHandshake; returns (error_code, [mechanisms])."""
        r = self.request(API_SASL_HANDSHAKE, version, kstring(mechanism))
        err = r.i16()
        mechs = [r.string() for _ in range(r.i32())]
        return err, mechs

    def authenticate(self, token, version=1):
        """SaslAuthenticate v0-v2; returns (error, message, auth_bytes, session_lifetime_ms)."""
        flex = version >= 2
        if flex:
            body = _uvarint(len(token) + 1) + token + b"\x00"
        else:
            body = struct.pack(">i", len(token)) + token
        r = self.request(API_SASL_AUTHENTICATE, version, body, flexible=flex)
        err = r.i16()
        msg = r.string(compact=flex)
        data = r.bytes_(compact=flex)
        lifetime = r.i64() if version >= 1 else None
        return err, msg, data, lifetime

    def raw_token(self, token):
        """After SaslHandshake v0: one raw token out, one raw token back."""
        self.send_frame(token)
        return self.recv_frame()

    def is_closed(self, timeout=3.0):
        """True when the peer closes within timeout without sending anything."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True
        return data == b""


# --- SCRAM client (RFC 5802, RFC 7677) -----------------------------------------------------------

def _h(mech):
    return hashlib.sha512 if mech == "SCRAM-SHA-512" else hashlib.sha256


class ScramClient:
    """client_first() -> bytes; client_final(server_first) -> bytes; verify(server_final).
    bad_nonce: send a nonce other than the combined one; repeat_nonce: librdkafka < 2.6.1's
    client nonce + combined nonce; the password may simply be wrong."""

    def __init__(self, mech, user, password, bad_nonce=False, repeat_nonce=False, cnonce=None):
        self.mech, self.user, self.password = mech, user, password
        self.bad_nonce, self.repeat_nonce = bad_nonce, repeat_nonce
        self.cnonce = cnonce or base64.b64encode(os.urandom(18)).decode().replace("=", "")
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = f"n={name},r={self.cnonce}"

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        nonce, salt, it = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        assert nonce.startswith(self.cnonce) and len(nonce) > len(self.cnonce), sf
        h = _h(self.mech)
        salted = hashlib.pbkdf2_hmac(h().name, self.password.encode(), salt, it)
        client_key = hmac.new(salted, b"Client Key", h).digest()
        stored_key = h(client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", h).digest()
        if self.bad_nonce:
            nonce = nonce[:-1] + ("A" if nonce[-1] != "A" else "B")
        elif self.repeat_nonce:
            nonce = self.cnonce + nonce
        without_proof = f"c=biws,r={nonce}"
        self.auth_message = f"{self.first_bare},{sf},{without_proof}".encode()
        sig = hmac.new(stored_key, self.auth_message, h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final):
        expect = hmac.new(self.server_key, self.auth_message, _h(self.mech)).digest()
        return server_final.decode() == "v=" + base64.b64encode(expect).decode()


def plain_token(user, password, authzid=""):
    return f"{authzid}\0{user}\0{password}".encode()


def sasl_login(conn, mech, user, password, version=1, handshake_version=1, **scram_opts):
    """Handshake + authenticate on conn. Returns (error, message, session_lifetime_ms); for
    SCRAM the server signature is checked (AssertionError if it is wrong)."""
    err, mechs = conn.handshake(mech, handshake_version)
    if err:
        return err, f"handshake error {err}, mechanisms {mechs}", None
    if mech == "PLAIN":
        e, msg, _, life = conn.authenticate(plain_token(user, password), version)
        return e, msg, life
    sc = ScramClient(mech, user, password, **scram_opts)
    e, msg, server_first, life = conn.authenticate(sc.client_first(), version)
    if e:
        return e, msg, life
    e, msg, server_final, life = conn.authenticate(sc.client_final(server_first), version)
    if e == 0:
        assert sc.verify(server_final), f"wrong server signature {server_final!r}"
    return e, msg, life
