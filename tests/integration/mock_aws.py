"""Mocks of the AWS and Google endpoints kbridge's credentials layer calls, for the tests only.

MockSTS       HTTPS (test CA in build/certs), AWS STS's query API: AssumeRoleWithWebIdentity and
              GetCallerIdentity, XML answers and <ErrorResponse>s as STS writes them. A "trust
              policy" per role decides AccessDenied; tokens must be JWTs signed "mock-signature"
              (else InvalidIdentityToken). Configurable credential lifetime, answer delay, Date
              offset (clock skew), "down" (503 ServiceUnavailable), call counts.
MockGCE       plain HTTP GCE metadata server: the service account's ID token (a JWT with the
              requested audience), only with "Metadata-Flavor: Google".
MockIMDS      plain HTTP EC2 IMDSv2: PUT /latest/api/token first, then the role and its JSON.
MockContainer plain HTTP container credentials endpoint (ECS / EKS Pod Identity agents), with
              an Authorization token check.
ConnectProxy  an HTTPS_PROXY (HTTP CONNECT tunnel) that counts what went through it.

Every secret handed out is recorded in .secrets, so tests can assert none reaches any output.
Servers run on daemon threads on 127.0.0.1 with a free port; .stop() ends them.
"""
import base64
import email.utils
import hashlib
import hmac
import json
import random
import re
import select
import socket
import ssl
import string
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "123456789012"
SIGNATURE = "mock-signature"  # the only JWT "signature" MockSTS accepts
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, signature=SIGNATURE):
    """A JWT-shaped token: header.payload.signature (base64url); signed only by convention."""
    header = {"alg": "RS256", "kid": "mock", "typ": "JWT"}
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()),
                     signature])


def jwt_claims(token):
    """The payload of a JWT-shaped token, or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        pad = "=" * (-len(parts[1]) % 4)
        return json.loads(base64.urlsafe_b64decode(parts[1] + pad))
    except (ValueError, json.JSONDecodeError):
        return None


def _rand(chars, n):
    return "".join(random.choice(chars) for _ in range(n))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 running a handler class bound to this object."""

    def __init__(self, handler, tls_dir=None):
        mock = self

        class Bound(handler):
            pass

        Bound.mock = mock
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Bound)
        self.httpd.daemon_threads = True
        if tls_dir:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(f"{tls_dir}/server.pem", f"{tls_dir}/server.key")
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.lock = threading.Lock()
        self.requests = []  # (method, path, headers dict) in arrival order
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def issue(self):
        """A fresh temporary key (key id, secret, session token), recorded in .secrets."""
        with self.lock:
            self.serial += 1
            key_id = "ASIA" + _rand(string.ascii_uppercase, 12) + f"{self.serial:04d}"
            secret = _rand(string.ascii_letters + string.digits, 40)
            token = _rand(string.ascii_letters + string.digits, 400)
            self.secrets.extend([secret, token])
        return key_id, secret, token


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    date_offset = 0

    def log_message(self, *args):  # quiet
        pass

    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(time.time() + getattr(self.mock, "date_offset", 0), usegmt=True)

    def reply(self, status, body, ctype="text/xml", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        with self.mock.lock:
            self.mock.requests.append((self.command, self.path, dict(self.headers.items())))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode() if n else ""


# ---- STS ------------------------------------------------------------------------------------

def sts_error(code, message, sender=True):
    return (f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n'
            f'    <Type>{"Sender" if sender else "Receiver"}</Type>\n    <Code>{code}</Code>\n'
            f'    <Message>{message}</Message>\n  </Error>\n'
            f'  <RequestId>{_rand(string.hexdigits.lower(), 8)}-0000</RequestId>\n</ErrorResponse>\n')


class _STSHandler(_Handler):
    def do_GET(self):
        self.handle_sts(urllib.parse.urlsplit(self.path).query)

    def do_POST(self):
        self.handle_sts(self.body())

    def handle_sts(self, query):
        body = query
        self.record()
        m = self.mock
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        action = params.get("Action", "")
        with m.lock:
            m.calls[action] = m.calls.get(action, 0) + 1
            m.params.append(params)
        if m.delay:
            time.sleep(m.delay)
        if m.down:
            return self.reply(503, sts_error("ServiceUnavailable", "Service is unavailable.",
                                             sender=False))
        if action == "AssumeRoleWithWebIdentity":
            return self.assume(params)
        if action == "GetCallerIdentity":
            return self.caller_identity(body)
        return self.reply(400, sts_error("InvalidAction",
                                         f"Could not find operation {action} for version NO_VERSION_SPECIFIED"))

    def assume(self, params):
        m = self.mock
        role, session = params.get("RoleArn", ""), params.get("RoleSessionName", "")
        token = params.get("WebIdentityToken", "")
        if params.get("Version") != "2011-06-15" or not role or not session or not token:
            return self.reply(400, sts_error("MissingParameter",
                                             "The request must contain RoleArn, RoleSessionName "
                                             "and WebIdentityToken"))
        claims = jwt_claims(token)
        if claims is None or not token.endswith("." + SIGNATURE):
            return self.reply(400, sts_error("InvalidIdentityToken",
                                             "Couldn't retrieve verification key from your "
                                             "identity provider,  please reference "
                                             "AssumeRoleWithWebIdentity documentation for requirements"))
        if claims.get("exp", 0) < time.time():
            return self.reply(400, sts_error("ExpiredTokenException",
                                             "Token expired: current date/time must be before the "
                                             "expiration date/time"))
        trust = m.trust.get(role)
        if trust is None or any(claims.get(k) != v for k, v in trust.items()):
            return self.reply(403, sts_error("AccessDenied",
                                             "Not authorized to perform sts:AssumeRoleWithWebIdentity"))
        with m.lock:
            m.serial += 1
            key_id = "ASIA" + _rand(string.ascii_uppercase + "234567", 12) + f"{m.serial:04d}"
            secret = _rand(string.ascii_letters + string.digits + "+/", 40)
            stoken = "IQoJb3JpZ2luX2Vj" + _rand(string.ascii_letters + string.digits + "+/", 600)
            m.secrets.extend([secret, stoken, token])
            m.issued[key_id] = (role, session, secret, stoken)
        name = role.split("/")[-1]
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}"
        expires = time.time() + m.lifetime
        if m.creds_file:  # tell the test cluster (kbmock --iam-credentials) about the new key
            with m.lock, open(m.creds_file, "a") as f:
                f.write(f"{key_id} {secret} {stoken} {int(expires)} {arn}\n")
        body = f"""<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{claims.get("sub", "")}</SubjectFromWebIdentityToken>
    <Audience>{claims.get("aud", "")}</Audience>
    <AssumedRoleUser>
      <Arn>{arn}</Arn>
      <AssumedRoleId>AROA{_rand(string.ascii_uppercase, 16)}:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{stoken}</SessionToken>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{iso(expires)}</Expiration>
      <AccessKeyId>{key_id}</AccessKeyId>
    </Credentials>
    <Provider>{claims.get("iss", "")}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>{_rand(string.hexdigits.lower(), 8)}-1111</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"""
        self.reply(200, body)

    def caller_identity(self, body):
        """Checks the SigV4 Authorization header as STS does (service sts, this region)."""
        m = self.mock
        auth = self.headers.get("Authorization", "")
        got = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/sts/aws4_request, "
                           r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
        with m.lock:
            who = m.issued.get(got.group(1)) if got else None
        if not who:
            return self.reply(403, sts_error("InvalidClientTokenId",
                                             "The security token included in the request is invalid."))
        key_id, date, region, signed, signature = got.groups()
        role, session, secret, stoken = who
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names or \
                self.headers.get("X-Amz-Security-Token") != stoken or \
                "x-amz-security-token" not in names:
            return self.reply(400, sts_error("IncompleteSignature",
                                             "host, x-amz-date and x-amz-security-token must be signed"))
        canon_headers = "".join(f"{n}:{' '.join(self.headers.get(n, '').split())}\n" for n in names)
        canon = "\n".join(["POST", urllib.parse.urlsplit(self.path).path or "/", "", canon_headers,
                           signed, hashlib.sha256(body.encode()).hexdigest()])
        amz_date = self.headers.get("X-Amz-Date", "")
        scope = f"{date}/{region}/sts/aws4_request"
        sts_ = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                          hashlib.sha256(canon.encode()).hexdigest()])
        k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
        for part in (region, "sts", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        want = hmac.new(k, sts_.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, signature) or region != m.region:
            return self.reply(403, sts_error("SignatureDoesNotMatch",
                                             "The request signature we calculated does not match "
                                             "the signature you provided."))
        m.verified += 1
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.split('/')[-1]}/{session}"
        self.reply(200, f"""<GetCallerIdentityResponse xmlns="{STS_NS}">
  <GetCallerIdentityResult>
    <Arn>{arn}</Arn>
    <UserId>AROAEXAMPLE:{session}</UserId>
    <Account>{ACCOUNT}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>0000-2222</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
""")


class MockSTS(_Server):
    def __init__(self, tls_dir, lifetime=3600, region="eu-west-1"):
        self.lifetime = lifetime  # seconds the credentials handed out live
        self.delay = 0.0          # seconds to wait before answering
        self.date_offset = 0      # seconds added to the Date header (clock skew)
        self.down = False         # answer 503 ServiceUnavailable to everything
        self.trust = {}           # role ARN -> {claim: required value}
        self.calls = {}           # Action -> count
        self.params = []          # every request's parameters
        self.issued = {}          # access key id -> (role ARN, session name)
        self.secrets = []         # secrets, session tokens and web identity tokens seen
        self.serial = 0
        self.region = region      # the region GetCallerIdentity signatures must name
        self.verified = 0         # GetCallerIdentity calls whose signature checked out
        self.creds_file = None    # when set: each issued key is appended, as kbmock reads them
        super().__init__(_STSHandler, tls_dir)
        self.url = f"https://127.0.0.1:{self.port}"


# ---- GCE metadata ---------------------------------------------------------------------------

class _GCEHandler(_Handler):
    def do_GET(self):
        self.record()
        m = self.mock
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, "Missing required header \"Metadata-Flavor\"\n", "text/html")
        if url.path != "/computeMetadata/v1/instance/service-accounts/default/identity":
            return self.reply(404, "Not Found\n", "text/html")
        if not q.get("audience"):
            return self.reply(400, "non-empty audience parameter required\n", "text/html")
        now = int(time.time())
        claims = {"iss": "https://accounts.google.com", "aud": q["audience"], "azp": m.sa_id,
                  "sub": m.sa_id, "iat": now, "exp": now + 3600}
        if q.get("format") == "full":
            claims.update({"email": m.email, "email_verified": True,
                           "google": {"compute_engine": {"project_id": "demo", "zone": "europe-west1-b"}}})
        token = make_jwt(claims)
        with m.lock:
            m.audiences.append(q["audience"])
            m.secrets.append(token)
        self.reply(200, token, "application/text", [("Metadata-Flavor", "Google")])


class MockGCE(_Server):
    def __init__(self, sa_id="104857600123456789012", email="kbridge@demo.iam.gserviceaccount.com"):
        self.sa_id, self.email = sa_id, email
        self.audiences = []  # audience of every token handed out
        self.secrets = []    # every ID token handed out
        super().__init__(_GCEHandler)
        self.host = f"127.0.0.1:{self.port}"


# ---- IMDSv2 ---------------------------------------------------------------------------------

class _IMDSHandler(_Handler):
    def do_PUT(self):
        self.record()
        self.body()
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "", "text/plain")
        token = _rand(string.ascii_letters + string.digits, 56) + "=="
        with self.mock.lock:
            self.mock.tokens.add(token)
            self.mock.secrets.append(token)
        self.reply(200, token, "text/plain")

    def do_GET(self):
        self.record()
        m = self.mock
        if self.headers.get("X-aws-ec2-metadata-token") not in m.tokens:
            return self.reply(401, "", "text/plain")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.reply(200, m.role, "text/plain")
        if self.path != base + m.role:
            return self.reply(404, "", "text/plain")
        key_id, secret, token = m.issue()
        now = time.time()
        self.reply(200, json.dumps({"Code": "Success", "LastUpdated": iso(now), "Type": "AWS-HMAC",
                                    "AccessKeyId": key_id, "SecretAccessKey": secret,
                                    "Token": token, "Expiration": iso(now + m.lifetime)},
                                   indent=2), "text/plain")


class MockIMDS(_Server):
    def __init__(self, role="kbridge-ec2", lifetime=21600):
        self.role, self.lifetime = role, lifetime
        self.tokens = set()
        self.secrets = []
        self.serial = 0
        super().__init__(_IMDSHandler)
        self.url = f"http://127.0.0.1:{self.port}"


# ---- container credentials (ECS agent, EKS Pod Identity agent) -----------------------------

class _ContainerHandler(_Handler):
    def do_GET(self):
        self.record()
        m = self.mock
        if m.auth is not None and self.headers.get("Authorization") != m.auth:
            return self.reply(401, json.dumps({"code": "AccessDeniedException",
                                               "message": "Authorization token is invalid"}),
                              "application/json")
        if self.path != m.path:
            return self.reply(404, json.dumps({"code": "NotFound", "message": "no such task"}),
                              "application/json")
        key_id, secret, token = m.issue()
        self.reply(200, json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret,
                                    "Token": token, "AccountId": ACCOUNT,
                                    "Expiration": iso(time.time() + m.lifetime)}),
                   "application/json")


class MockContainer(_Server):
    """plain HTTP container credentials endpoint: GET path, Authorization must equal auth
    (None: not checked); answers the ECS/EKS agents' JSON, or their error JSON."""

    def __init__(self, path="/v1/credentials", auth=None, lifetime=21600):
        self.path, self.auth, self.lifetime = path, auth, lifetime
        self.secrets = [auth] if auth else []
        self.serial = 0
        super().__init__(_ContainerHandler)
        self.url = f"http://127.0.0.1:{self.port}"


# ---- HTTPS_PROXY ----------------------------------------------------------------------------

class ConnectProxy:
    """HTTP CONNECT proxy on 127.0.0.1; .connects lists the "host:port" of each tunnel."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connects = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = c.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n")[0].decode()
            method, target = line.split()[:2]
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.connects.append(target)
            host, port = target.rsplit(":", 1)
            up = socket.create_connection((host, int(port)), timeout=5)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            socks = [c, up]
            while True:
                r, _, _ = select.select(socks, [], [], 10)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is c else c).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def stop(self):
        self.running = False
        self.sock.close()
