"""The test cluster's MSK IAM verifier (tests/integration/iam_verify.c, as build/iamverify)
proven with genuine signers from npm - aws-msk-iam-sasl-signer-js (OAUTHBEARER token) and
@jm18457/kafkajs-msk-iam-authentication-mechanism (AWS_MSK_IAM payload, captured from its kafkajs
authenticator) - then kbridge's own signer (auth/msk_iam.c, as build/iamsign) through the same
verifier, and byte-compared with the genuine signatures at a fixed time.

Needs node + npm; runs `npm ci` in tests/integration/iam when its node_modules is missing (the
npm registry must be reachable then; CI should run it beforehand). The last tests run a real
kafkajs client over the Kafka protocol (ApiVersions, SaslHandshake, SaslAuthenticate) against a
small SASL broker here that verifies with the same build/iamverify.
"""
import base64
import json
import os
import socket
import struct
import threading
import time
import urllib.parse

import pytest

from conftest import BUILD, HERE, run

IAM_DIR = HERE / "iam"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLESESSIONTOKEN+/=="
ROLE = "arn:aws:sts::123456789012:assumed-role/kbridge-test/dataproc-1"
USER = "arn:aws:iam::123456789012:user/kbridge-test"
REGION = "eu-west-1"
HOST = "b-1.kbtest.abc123.c2.kafka.eu-west-1.amazonaws.com"
FIXED = 1440938160  # 20150830T123600Z

# Temporary (with a session token) and long-term credentials.
CREDS = {
    "temporary": {"AWS_ACCESS_KEY_ID": "ASIAKBTESTTEMPORARY1", "AWS_SECRET_ACCESS_KEY": SECRET,
                  "AWS_SESSION_TOKEN": TOKEN},
    "long-term": {"AWS_ACCESS_KEY_ID": "AKIAKBTESTLONGTERM01", "AWS_SECRET_ACCESS_KEY": SECRET},
}


@pytest.fixture(scope="module")
def tools():
    for t in ("iamverify", "iamsign"):
        assert (BUILD / t).is_file(), f"{BUILD / t} missing: make {BUILD / t}"
    return BUILD


@pytest.fixture(scope="module")
def creds_file(tmp_path_factory):
    """The cluster's known credentials: both test identities, with their principals."""
    p = tmp_path_factory.mktemp("iam") / "creds"
    t, lt = CREDS["temporary"], CREDS["long-term"]
    p.write_text(f"# akid secret token principal\n"
                 f"{t['AWS_ACCESS_KEY_ID']} {SECRET} {TOKEN} {ROLE}\n"
                 f"{lt['AWS_ACCESS_KEY_ID']} {SECRET} - {USER}\n")
    return p


def _env(kind, fixed=None, **over):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CREDS[kind])
    env.update(over)
    env.pop("KB_FIXED_TIME", None)
    if fixed is not None:
        env["KB_FIXED_TIME"] = str(fixed)
    return env


def js(node, kind, what, region=REGION, host=HOST, fixed=None, **over):
    args = [node, "sign.js", what, region] + ([host] if what == "payload" else [])
    r = run(args, cwd=IAM_DIR, env=_env(kind, fixed, **over), timeout=60)
    assert r.returncode == 0, f"sign.js {what}: {r.stderr[-2000:]}"
    return r.stdout.strip()


def kb(tools, kind, what, region=REGION, host=HOST, fixed=None, **over):
    args = [str(tools / "iamsign"), what, region] + ([host] if what == "payload" else [])
    r = run(args, env=_env(kind, fixed, **over), timeout=10)
    assert r.returncode == 0, f"iamsign {what}: {r.stderr}"
    return r.stdout


def verify(tools, creds_file, mech, data, region=REGION, host=HOST, now=None):
    """Returns the verifier's one output line; asserts it never shows a secret or token."""
    args = [str(tools / "iamverify"), "--mech", mech, "--creds", str(creds_file),
            "--region", region, "--host", host]
    if now is not None:
        args += ["--now", str(now)]
    r = run(args, input=data, timeout=10)
    out = r.stdout.strip()
    assert r.returncode in (0, 1), f"iamverify exit {r.returncode}: {r.stderr}"
    assert (r.returncode == 0) == out.startswith("OK "), out
    for secret in (SECRET, TOKEN, OTHER_SECRET):
        assert secret not in r.stdout + r.stderr
    return out


def message(token):
    """RFC 7628 client first message, as kafkajs / librdkafka send it."""
    return f"n,,\x01auth=Bearer {token}\x01\x01"


def token_url(token):
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def url_token(url):
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def url_param(url, name):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[name][0]


def flip_hex(s):
    return ("0" if s[0] != "0" else "1") + s[1:]


# --- genuine signers against the verifier ------------------------------------------------------

@pytest.mark.parametrize("kind", ["temporary", "long-term"])
def test_genuine_oauthbearer_token_is_accepted(node, tools, creds_file, kind):
    tok = js(node, kind, "token")
    url = token_url(tok)
    assert url.startswith(f"https://kafka.{REGION}.amazonaws.com/?")
    assert "User-Agent=aws-msk-iam-sasl-signer-js" in url
    principal = ROLE if kind == "temporary" else USER
    assert verify(tools, creds_file, "token", tok).startswith(f"OK {principal} ")
    assert verify(tools, creds_file, "oauthbearer", message(tok)).startswith(f"OK {principal} ")


@pytest.mark.parametrize("kind", ["temporary", "long-term"])
def test_genuine_aws_msk_iam_payload_is_accepted(node, tools, creds_file, kind):
    payload = js(node, kind, "payload")
    doc = json.loads(payload)
    assert doc["version"] == "2020_10_22" and doc["host"] == HOST
    assert ("x-amz-security-token" in doc) == (kind == "temporary")
    principal = ROLE if kind == "temporary" else USER
    out = verify(tools, creds_file, "aws_msk_iam", payload)
    assert out.startswith(f"OK {principal} expires_in="), out
    assert 890 <= int(out.rsplit("=", 1)[1]) <= 901


def test_tampered_signatures_are_refused(node, tools, creds_file):
    tok = js(node, "temporary", "token")
    url = token_url(tok)
    sig = url_param(url, "X-Amz-Signature")
    bad = url_token(url.replace(sig, flip_hex(sig)))
    assert verify(tools, creds_file, "token", bad) == "FAIL signature mismatch"
    assert verify(tools, creds_file, "oauthbearer", message(bad)) == "FAIL signature mismatch"

    doc = json.loads(js(node, "temporary", "payload"))
    doc["x-amz-signature"] = flip_hex(doc["x-amz-signature"])
    assert verify(tools, creds_file, "aws_msk_iam", json.dumps(doc)) == \
        "FAIL signature mismatch"


def test_tampered_signed_fields_are_refused(node, tools, creds_file):
    """A signed field changed after signing (the date by one second, the action, the expiry)
    breaks the signature; the unsigned User-Agent does not."""
    doc = json.loads(js(node, "temporary", "payload"))
    d = doc["x-amz-date"]
    later = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(
        int(time.mktime(time.strptime(d, "%Y%m%dT%H%M%SZ"))) - time.timezone + 1))
    assert verify(tools, creds_file, "aws_msk_iam", json.dumps({**doc, "x-amz-date": later})) \
        == "FAIL signature mismatch"
    assert verify(tools, creds_file, "aws_msk_iam",
                  json.dumps({**doc, "x-amz-expires": "600"})) == "FAIL signature mismatch"
    assert verify(tools, creds_file, "aws_msk_iam",
                  json.dumps({**doc, "action": "kafka-cluster:*"})) == "FAIL wrong action"
    assert verify(tools, creds_file, "aws_msk_iam",
                  json.dumps({**doc, "user-agent": "other"})).startswith("OK ")

    url = token_url(js(node, "temporary", "token"))
    ua = urllib.parse.quote(url_param(url, "User-Agent"), safe="")
    assert verify(tools, creds_file, "token", url_token(url.replace(ua, "x"))).startswith("OK ")
    assert verify(tools, creds_file, "token",
                  url_token(url + "&Extra=1")) == "FAIL signature mismatch"


def test_wrong_host_is_refused(node, tools, creds_file):
    payload = js(node, "temporary", "payload", host="b-2.kbtest.abc123.c2.kafka.eu-west-1."
                                                  "amazonaws.com")
    assert verify(tools, creds_file, "aws_msk_iam", payload) == "FAIL wrong host"
    # The name a client dials through kbridge, which is why kbridge has to sign itself.
    payload = js(node, "temporary", "payload", host="127.0.0.1")
    assert verify(tools, creds_file, "aws_msk_iam", payload) == "FAIL wrong host"
    url = token_url(js(node, "temporary", "token"))
    moved = url.replace(f"kafka.{REGION}.amazonaws.com", "kafka.eu-west-1.example.com", 1)
    assert verify(tools, creds_file, "token", url_token(moved)) == "FAIL wrong host"


def test_wrong_region_is_refused(node, tools, creds_file):
    tok = js(node, "temporary", "token", region="us-east-1")
    assert verify(tools, creds_file, "token", tok) == "FAIL wrong region"
    payload = js(node, "temporary", "payload", region="us-east-1")
    assert verify(tools, creds_file, "aws_msk_iam", payload) == "FAIL wrong region"
    # And the right signature read by a cluster in another region.
    tok = js(node, "temporary", "token")
    assert verify(tools, creds_file, "token", tok, region="us-east-1") == "FAIL wrong region"


def test_expired_and_future_dates_are_refused(node, tools, creds_file):
    now = int(time.time())
    for what, mech in (("token", "token"), ("payload", "aws_msk_iam")):
        old = js(node, "temporary", what, fixed=now - 901)
        assert verify(tools, creds_file, mech, old, now=now) == "FAIL signature expired"
        still = js(node, "temporary", what, fixed=now - 899)
        assert verify(tools, creds_file, mech, still, now=now).startswith("OK ")
        ahead = js(node, "temporary", what, fixed=now + 301)
        assert verify(tools, creds_file, mech, ahead, now=now) == \
            "FAIL date in the future (clock skew)"
        assert verify(tools, creds_file, mech, ahead, now=now + 2).startswith("OK ")


def test_unknown_keys_wrong_secrets_and_tokens_are_refused(node, tools, creds_file):
    assert verify(tools, creds_file, "token", js(
        node, "temporary", "token", AWS_ACCESS_KEY_ID="ASIAUNKNOWNKEY000000")) == \
        "FAIL unknown access key"
    assert verify(tools, creds_file, "aws_msk_iam", js(
        node, "temporary", "payload", AWS_SECRET_ACCESS_KEY=OTHER_SECRET)) == \
        "FAIL signature mismatch"
    assert verify(tools, creds_file, "token", js(
        node, "temporary", "token", AWS_SESSION_TOKEN=TOKEN[:-3] + "xx=")) == \
        "FAIL security token mismatch"
    lt_key = CREDS["long-term"]["AWS_ACCESS_KEY_ID"]
    assert verify(tools, creds_file, "aws_msk_iam", js(
        node, "temporary", "payload", AWS_ACCESS_KEY_ID=lt_key)) == \
        "FAIL unexpected security token"
    tok_key = CREDS["temporary"]["AWS_ACCESS_KEY_ID"]
    assert verify(tools, creds_file, "token", js(
        node, "long-term", "token", AWS_ACCESS_KEY_ID=tok_key)) == "FAIL security token missing"


def test_malformed_input_is_refused(tools, creds_file):
    assert verify(tools, creds_file, "aws_msk_iam", "{") == "FAIL malformed payload"
    assert verify(tools, creds_file, "aws_msk_iam", '{"version":"2020_10_22"}') == \
        "FAIL missing field: host"
    assert verify(tools, creds_file, "aws_msk_iam", '{"version":"1","host":"h"}') == \
        "FAIL unsupported version"
    assert verify(tools, creds_file, "token", "!!!") == "FAIL malformed token"
    assert verify(tools, creds_file, "token", url_token("http://x/?a=b")) == \
        "FAIL malformed token"
    assert verify(tools, creds_file, "oauthbearer", "n,,auth=Bearer x") == \
        "FAIL malformed message"


# --- kbridge's own signer through the same verifier --------------------------------------------

@pytest.mark.parametrize("kind", ["temporary", "long-term"])
def test_kbridge_signatures_are_accepted(tools, creds_file, kind):
    principal = ROLE if kind == "temporary" else USER
    assert verify(tools, creds_file, "aws_msk_iam", kb(tools, kind, "payload")).startswith(
        f"OK {principal} ")
    assert verify(tools, creds_file, "token", kb(tools, kind, "token")).startswith(
        f"OK {principal} ")
    assert verify(tools, creds_file, "oauthbearer", kb(tools, kind, "message")).startswith(
        f"OK {principal} ")
    assert verify(tools, creds_file, "aws_msk_iam", kb(tools, kind, "payload"),
                  host="b-3.other.kafka.eu-west-1.amazonaws.com") == "FAIL wrong host"
    assert verify(tools, creds_file, "token", kb(tools, kind, "token", region="us-west-2")) == \
        "FAIL wrong region"
    now = int(time.time())
    assert verify(tools, creds_file, "aws_msk_iam", kb(tools, kind, "payload", fixed=now - 901),
                  now=now) == "FAIL signature expired"


@pytest.mark.parametrize("kind", ["temporary", "long-term"])
def test_kbridge_signs_exactly_like_the_genuine_signers(node, tools, kind):
    """Same credentials, host, region and second: the same canonical request, so the same
    signature as aws-msk-iam-sasl-signer-js and the kafkajs mechanism; the same fields."""
    ours = json.loads(kb(tools, kind, "payload", fixed=FIXED))
    theirs = json.loads(js(node, kind, "payload", fixed=FIXED))
    assert ours.pop("user-agent") == "kbridge/iamsign" and theirs.pop("user-agent") == "MSK_IAM"
    assert ours == theirs
    assert ours["x-amz-date"] == "20150830T123600Z"

    ours_url, theirs_url = token_url(kb(tools, kind, "token", fixed=FIXED)), \
        token_url(js(node, kind, "token", fixed=FIXED))
    assert url_param(ours_url, "X-Amz-Signature") == url_param(theirs_url, "X-Amz-Signature")
    strip = ("User-Agent",)
    q = {k: v for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(ours_url).query).items()
         if k not in strip}
    t = {k: v for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(theirs_url).query).items()
         if k not in strip}
    assert q == t
    assert urllib.parse.urlsplit(ours_url)[:3] == urllib.parse.urlsplit(theirs_url)[:3]


def test_cluster_answers_like_msk(tools, creds_file):
    """After an accepted AWS_MSK_IAM payload the cluster sends MSK's server message, which both
    aws-msk-iam-auth (AuthenticationResponse) and kafkajs's mechanism require: version + id."""
    r = run([str(tools / "iamverify"), "--mech", "aws_msk_iam", "--creds", str(creds_file),
             "--region", REGION, "--host", HOST], input=kb(tools, "temporary", "payload"),
            timeout=10)
    assert r.returncode == 0, r.stdout
    answer = json.loads(r.stderr)
    assert answer["version"] == "2020_10_22" and answer["request-id"].startswith("kbtest-")


# --- a real kafkajs client, SASL over the Kafka protocol, against the verifier --------------------

class SaslBroker:
    """The SASL part of a Kafka broker on loopback, enough for kafkajs's admin.connect():
    ApiVersions v0-v2, SaslHandshake v0-v1 and SaslAuthenticate v0-v1 (request header v1,
    response header v0, per /work/shared/kafka-spec), verifying with build/iamverify. An
    accepted AWS_MSK_IAM gets MSK's server message; a refusal is error 58
    (SASL_AUTHENTICATION_FAILED) with the reason, as MSK answers "Access denied"."""

    def __init__(self, tools, creds_file, host):
        self.tools, self.creds_file, self.host = tools, creds_file, host
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.results = []  # (mechanism, iamverify line)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    self._session(conn)
                except (OSError, ValueError):
                    pass

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ValueError("eof")
            buf += chunk
        return buf

    def _session(self, conn):
        mech = None
        while True:
            size = struct.unpack(">i", self._read(conn, 4))[0]
            req = self._read(conn, size)
            key, ver, corr, cid_len = struct.unpack(">hhih", req[:10])
            body = req[10 + max(cid_len, 0):]
            if key == 18:  # ApiVersions: error, [key, min, max], throttle (v1+)
                apis = [(18, 0, 2), (17, 0, 1), (36, 0, 1)]
                out = struct.pack(">hi", 0, len(apis)) + b"".join(
                    struct.pack(">hhh", *a) for a in apis)
                if ver >= 1:
                    out += struct.pack(">i", 0)
            elif key == 17:  # SaslHandshake: mechanism -> error, [mechanisms]
                n = struct.unpack(">h", body[:2])[0]
                mech = body[2:2 + n].decode()
                ok = mech in ("AWS_MSK_IAM", "OAUTHBEARER")
                names = [b"AWS_MSK_IAM", b"OAUTHBEARER"]
                out = struct.pack(">hi", 0 if ok else 33, len(names)) + b"".join(
                    struct.pack(">h", len(m)) + m for m in names)
            elif key == 36:  # SaslAuthenticate: auth_bytes -> error, message, bytes, lifetime
                n = struct.unpack(">i", body[:4])[0]
                auth = body[4:4 + n]
                r = run([str(self.tools / "iamverify"), "--mech",
                         "aws_msk_iam" if mech == "AWS_MSK_IAM" else "oauthbearer",
                         "--creds", str(self.creds_file), "--region", REGION,
                         "--host", self.host], input=auth.decode("latin-1"), timeout=10)
                line = r.stdout.strip()
                self.results.append((mech, line))
                if line.startswith("OK "):
                    answer = r.stderr.strip().encode() if mech == "AWS_MSK_IAM" else b""
                    life = int(line.rsplit("=", 1)[1]) * 1000
                    out = struct.pack(">hh", 0, -1) + struct.pack(">i", len(answer)) + answer
                else:
                    msg = f"[kbtest]: Access denied ({line[5:]})".encode()
                    out = struct.pack(">hh", 58, len(msg)) + msg + struct.pack(">i", 0)
                    life = 0
                if ver >= 1:
                    out += struct.pack(">q", life)
            else:
                return
            frame = struct.pack(">i", corr) + out
            conn.sendall(struct.pack(">i", len(frame)) + frame)


@pytest.fixture
def sasl_broker(tools, creds_file):
    # kafkajs dials "localhost": that is the host name its mechanism signs.
    b = SaslBroker(tools, creds_file, "localhost")
    yield b
    b.close()


def kafkajs_connect(node, sasl_broker, how, host="localhost", region=REGION, **over):
    return run([node, "sign.js", how, region, host, str(sasl_broker.port)], cwd=IAM_DIR,
               env=_env("temporary", **over), timeout=60)


@pytest.mark.parametrize("how,mech", [("connect-iam", "AWS_MSK_IAM"),
                                      ("connect-oauth", "OAUTHBEARER")])
def test_kafkajs_authenticates_directly(node, sasl_broker, how, mech):
    r = kafkajs_connect(node, sasl_broker, how)
    assert r.returncode == 0 and r.stdout.strip() == "connected", r.stderr[-2000:]
    assert sasl_broker.results and sasl_broker.results[-1][0] == mech
    assert sasl_broker.results[-1][1].startswith(f"OK {ROLE} ")


@pytest.mark.parametrize("how", ["connect-iam", "connect-oauth"])
def test_kafkajs_with_the_wrong_secret_is_refused(node, sasl_broker, how):
    r = kafkajs_connect(node, sasl_broker, how, AWS_SECRET_ACCESS_KEY=OTHER_SECRET)
    assert r.returncode != 0
    assert "Access denied (signature mismatch)" in r.stderr, r.stderr[-2000:]


def test_kafkajs_dialling_another_name_is_refused(node, sasl_broker):
    """What happens to a client that signs for itself through kbridge: it signs the name it
    dialled (here 127.0.0.1, not the broker's), and the broker refuses it."""
    r = kafkajs_connect(node, sasl_broker, "connect-iam", host="127.0.0.1")
    assert r.returncode != 0
    assert "Access denied (wrong host)" in r.stderr, r.stderr[-2000:]
