"""kbridge signs AWS IAM itself (sasl_mechanism = AWS_MSK_IAM | OAUTHBEARER, issue 15), live:
plaintext clients with no security settings, through kbridge, to a kbmock that verifies every
signature like MSK (iam_verify.c) against the credentials it knows (a file the mock STS appends
the keys it issues to). Credentials from the environment, web identity (token file -> mock
STS), GCP workload identity (mock metadata -> mock STS); refresh under steady produce, KIP-368
re-authentication, STS down at start, a role that refuses, and no secret in any output.
Also: the genuine npm signers (kafkajs + its IAM mechanism, aws-msk-iam-sasl-signer-js) against
kbmock directly, so the test cluster is known to answer real clients as MSK does.
"""
import os
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import (BUILD, HERE, KCAT, cluster_ini, error_lines, free_port,
                      produce_steadily, run)
from mock_aws import MockGCE, MockSTS, make_jwt

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/kbridge-msk"
OIDC = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
STATIC_KEY = "AKIAKBLIVESTATIC0001"
STATIC_SECRET = "kbLiveStaticSecret/0123456789abcdefghijk"
STATIC_TOKEN = "IQoJb3JpZ2luX2VjKBLIVETESTTOKEN" + "x" * 300
IAM_DIR = HERE / "iam"


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def clean_env(tmp_path, **extra):
    """kbridge's environment: none of the host's AWS/GCE variables, no ~/.aws, IMDS off,
    loopback not proxied; then extra."""
    env = {k: None for k in os.environ if k.startswith(("AWS_", "GCE_"))}
    env.update({k: None for k in os.environ
                if k.lower() in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")})
    env.update({"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


@pytest.fixture
def sts(certs, tmp_path):
    m = MockSTS(str(certs), region=REGION)
    m.creds_file = tmp_path / "iam-creds"
    m.creds_file.write_text("")
    yield m
    m.stop()


@pytest.fixture
def iam_bridge(kbmock, kbridge, ports, certs, tmp_path, sts):
    """start(mechanism, env, keys=None, ready=True, **mock_opts) -> (mock, kb, bootstrap,
    admin_port). The mock knows the static test key and every key the mock STS issues. ready:
    wait until /readyz is 200 (the first credentials are there), as a deployment would."""

    def start(mechanism, env, keys=None, ready=True, workers=1, **mock_opts):
        with open(sts.creds_file, "a") as f:
            f.write(f"{STATIC_KEY} {STATIC_SECRET} {STATIC_TOKEN} 0 "
                    f"arn:aws:iam::123456789012:user/kbridge-static\n")
        mock_opts.setdefault("sasl_mechanisms", "AWS_MSK_IAM,OAUTHBEARER")
        mock = kbmock(mode="msk", brokers=2, topics=["orders:3"], iam_credentials=sts.creds_file,
                      iam_region=REGION, **mock_opts)
        p = ports()
        admin_port = free_port()
        ini = cluster_ini("msk", [b.advertised for b in mock.brokers.values()], p,
                          tls_ca=certs / "ca.pem",
                          extra={"sasl_mechanism": mechanism, "aws_region": REGION,
                                 **(keys or {})})
        ini = ini.replace("[global]\n", f"[global]\nadmin_listen = 127.0.0.1:{admin_port}\n"
                                         f"workers = {workers}\n")
        kb = kbridge(ini, env=env)
        if ready:
            status, body = wait_ready(admin_port)
            assert status == 200, body
        return mock, kb, f"127.0.0.1:{p.listen}", admin_port

    return start


def static_env(tmp_path):
    return clean_env(tmp_path, AWS_ACCESS_KEY_ID=STATIC_KEY, AWS_SECRET_ACCESS_KEY=STATIC_SECRET,
                     AWS_SESSION_TOKEN=STATIC_TOKEN)


def web_identity(tmp_path, sts, **claims):
    """A token file and the trust policy that accepts it; returns kbridge's env additions."""
    claims = {"iss": OIDC, "sub": "system:serviceaccount:kafka:kbridge", "aud": "sts.amazonaws.com",
              "exp": int(time.time()) + 3600, **claims}
    token = make_jwt(claims)
    sts.secrets.append(token)
    path = tmp_path / "web-identity-token"
    path.write_text(token)
    sts.trust[ROLE] = {"sub": "system:serviceaccount:kafka:kbridge"}
    return {"AWS_WEB_IDENTITY_TOKEN_FILE": str(path), "AWS_ROLE_ARN": ROLE,
            "AWS_ROLE_SESSION_NAME": "kbridge-live", "AWS_ENDPOINT_URL_STS": sts.url,
            "AWS_CA_BUNDLE": str(BUILD / "certs" / "ca.pem")}


def kcat_produce(bootstrap, lines, topic="orders"):
    r = run([KCAT, "-P", "-b", bootstrap, "-t", topic], input="\n".join(lines) + "\n", timeout=40)
    assert r.returncode == 0, r.stderr
    return r


def kcat_consume_all(bootstrap, topic="orders"):
    r = run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"], timeout=40)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def assert_no_secret(kb, admin, secrets):
    """No secret in kbridge's log nor in /metrics, nor in /readyz."""
    texts = [kb.log_text(), http_get(admin, "/metrics")[1], http_get(admin, "/readyz")[1]]
    for s in secrets:
        assert len(s) >= 20, "a test secret too short to mean anything"
        for t in texts:
            assert s not in t, "a secret reached kbridge's log, /metrics or /readyz"
    # no signature either: no 64-hex run anywhere
    for t in texts:
        assert not re.search(r"\b[0-9a-f]{64}\b", t), "something like a SigV4 signature leaked"


def wait_ready(admin, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        status, body = http_get(admin, "/readyz")
        if status == 200 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.25)


@pytest.mark.parametrize("mech", ["AWS_MSK_IAM", "OAUTHBEARER"])
def test_static_env_credentials(iam_bridge, tmp_path, mech):
    mock, kb, bootstrap, admin = iam_bridge(mech, static_env(tmp_path))
    lines = [f"{mech}-{i}-{uuid.uuid4().hex[:6]}" for i in range(100)]
    kcat_produce(bootstrap, lines)
    assert set(lines) <= set(kcat_consume_all(bootstrap))
    s = mock.stats()
    assert s["iam_auths"] >= 2 and s["iam_failures"] == 0 and s["iam_keys_seen"] == 1, s
    assert s["sasl_unauth_closes"] == 0, s
    assert f"authenticated {mech} as 'arn:aws:iam::123456789012:user/kbridge-static'" in \
        mock.log_text()
    assert wait_ready(admin)[0] == 200
    _, metrics = http_get(admin, "/metrics")
    assert 'kbridge_aws_credentials_expiry_seconds{cluster="msk"} +Inf' in metrics, metrics
    assert re.search(r'kbridge_aws_credentials_refreshes_total\{cluster="msk",result="ok"\} 1\b',
                     metrics), metrics
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())
    assert_no_secret(kb, admin, [STATIC_SECRET, STATIC_TOKEN])


def test_web_identity(iam_bridge, tmp_path, sts):
    from confluent_kafka import Producer

    env = clean_env(tmp_path, **web_identity(tmp_path, sts))
    mock, kb, bootstrap, admin = iam_bridge("AWS_MSK_IAM", env)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    failures = []
    for i in range(200):
        producer.produce("orders", value=b"wi%d" % i,
                         on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(30) == 0 and not failures, failures[:3]
    s = mock.stats()
    assert s["iam_auths"] >= 2 and s["iam_failures"] == 0 and s["iam_keys_seen"] == 1, s
    assert "as 'arn:aws:sts::123456789012:assumed-role/kbridge-msk/kbridge-live'" in \
        mock.log_text()
    assert sts.calls.get("AssumeRoleWithWebIdentity") == 1, sts.calls
    assert wait_ready(admin)[0] == 200
    assert_no_secret(kb, admin, sts.secrets)


def test_gcp_end_to_end_oauthbearer(iam_bridge, tmp_path, sts):
    gce = MockGCE()
    try:
        sts.trust[ROLE] = {"aud": "sts.amazonaws.com", "sub": gce.sa_id}
        env = clean_env(tmp_path, GCE_METADATA_HOST=f"127.0.0.1:{gce.port}")
        keys = {"aws_credentials": "gcp", "aws_role_arn": ROLE,
                "aws_role_session_name": "dataproc-live", "aws_sts_endpoint": sts.url,
                "aws_ca_file": BUILD / "certs" / "ca.pem"}
        mock, kb, bootstrap, admin = iam_bridge("OAUTHBEARER", env, keys)
        lines = [f"gcp-{i}-{uuid.uuid4().hex[:6]}" for i in range(50)]
        kcat_produce(bootstrap, lines)
        assert set(lines) <= set(kcat_consume_all(bootstrap))
        s = mock.stats()
        assert s["iam_auths"] >= 2 and s["iam_failures"] == 0, s
        assert "as 'arn:aws:sts::123456789012:assumed-role/kbridge-msk/dataproc-live'" in \
            mock.log_text()
        assert_no_secret(kb, admin, sts.secrets)
    finally:
        gce.stop()


def test_refresh_under_steady_produce(iam_bridge, tmp_path, sts):
    """Credentials that live 20 s, 60 s of steady acks=all produce: the provider refreshes
    ahead of expiry, MSK-like sessions end with the credentials and kbridge re-authenticates
    with the fresh key (same principal: the session name is stable). Nothing lost, no refusal,
    no connection closed for an expired session."""
    sts.lifetime = 20
    env = clean_env(tmp_path, **web_identity(tmp_path, sts))
    mock, kb, bootstrap, admin = iam_bridge("AWS_MSK_IAM", env)
    produce_steadily(bootstrap, "orders", 60, b"r")
    s = mock.stats()
    assert s["iam_keys_seen"] >= 3, s  # the first key and at least two refreshed ones
    assert s["iam_failures"] == 0 and s["sasl_failures"] == 0, s
    assert s["sasl_expired_closes"] == 0 and s["sasl_unauth_closes"] == 0, s
    assert s["sasl_reauths"] >= 2, s
    assert sts.calls.get("AssumeRoleWithWebIdentity", 0) >= 3, sts.calls
    _, metrics = http_get(admin, "/metrics")
    m = re.search(r'kbridge_aws_credentials_expiry_seconds\{cluster="msk"\} (\d+)', metrics)
    assert m and 0 < int(m.group(1)) <= 20, metrics
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())
    assert_no_secret(kb, admin, sts.secrets)


def test_reauthentication_with_short_sessions(iam_bridge, tmp_path):
    """kbmock ends sessions after 3 s: every re-authentication signs afresh and is accepted."""
    from confluent_kafka import Producer

    mock, kb, bootstrap, admin = iam_bridge("OAUTHBEARER", static_env(tmp_path),
                                            sasl_session_ms=3000)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})
    failures, acked = [], []
    sent = 0
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        producer.produce("orders", value=b"a%06d" % sent,
                         on_delivery=lambda err, msg: (failures if err else acked).append(err))
        sent += 1
        producer.poll(0.01)
    assert producer.flush(30) == 0 and not failures, failures[:3]
    assert len(acked) == sent
    s = mock.stats()
    assert s["sasl_reauths"] >= 3 and s["iam_failures"] == 0, s
    assert s["sasl_expired_closes"] == 0, s
    assert_no_secret(kb, admin, [STATIC_SECRET, STATIC_TOKEN])


def test_credentials_the_broker_calls_expired_are_replaced_at_once(iam_bridge, tmp_path, sts):
    """STS says the credentials live an hour; the broker stops accepting them after a few
    seconds (revoked, or a source whose expiry was wrong). kbridge must not wait ~55 minutes for
    its scheduled refresh: the broker's "token ... expired" refusal makes it fetch new
    credentials at once (one STS call for the burst), and traffic resumes with the new key."""
    env = clean_env(tmp_path, **web_identity(tmp_path, sts))
    mock, kb, bootstrap, admin = iam_bridge("AWS_MSK_IAM", env)
    kcat_produce(bootstrap, ["before-revocation"])
    assert sts.calls.get("AssumeRoleWithWebIdentity") == 1, sts.calls
    # The broker side now holds the issued key as expired (kbmock rereads the file per exchange).
    lines = sts.creds_file.read_text().splitlines()
    revoked = []
    for i, line in enumerate(lines):
        f = line.split(" ")
        if f[0].startswith("ASIA") and f[0] != STATIC_KEY:
            f[3] = str(int(time.time()) - 1)
            lines[i] = " ".join(f)
            revoked.append(f[0])
    assert len(revoked) == 1, lines
    sts.creds_file.write_text("\n".join(lines) + "\n")
    # kcat opens new connections, so kbridge authenticates anew: refused, refreshed, accepted.
    deadline = time.monotonic() + 40
    while True:
        r = run([KCAT, "-P", "-b", bootstrap, "-t", "orders", "-m", "5"],
                input="after-revocation\n", timeout=30)
        if r.returncode == 0 and mock.stats()["iam_keys_seen"] >= 2:
            break
        assert time.monotonic() < deadline, (r.stderr, mock.stats(), kb.log_text()[-4000:])
        time.sleep(1)
    assert sts.calls.get("AssumeRoleWithWebIdentity") == 2, sts.calls
    kb.wait_log(r"says the AWS credentials expired: fetching new ones now")
    assert_no_secret(kb, admin, sts.secrets)


def test_sts_down_at_start_then_back(iam_bridge, tmp_path, sts):
    sts.down = True
    env = clean_env(tmp_path, **web_identity(tmp_path, sts))
    mock, kb, bootstrap, admin = iam_bridge("AWS_MSK_IAM", env, ready=False)
    kb.wait_log(r"ServiceUnavailable|503", timeout=15)
    status, body = http_get(admin, "/readyz")
    assert status == 503, body
    assert "no valid AWS credentials" in body, body
    r = run([KCAT, "-L", "-b", bootstrap, "-m", "3"], timeout=20)
    assert r.returncode != 0
    assert mock.stats()["iam_auths"] == 0
    sts.down = False
    status, body = wait_ready(admin, timeout=40)
    assert status == 200, body
    lines = [f"back-{i}" for i in range(20)]
    kcat_produce(bootstrap, lines)
    assert set(lines) <= set(kcat_consume_all(bootstrap))
    assert mock.stats()["iam_failures"] == 0
    _, metrics = http_get(admin, "/metrics")
    assert re.search(r'refreshes_total\{cluster="msk",result="failed"\} [1-9]', metrics), metrics
    assert_no_secret(kb, admin, sts.secrets)


def test_wrong_role_is_named(iam_bridge, tmp_path, sts):
    env = clean_env(tmp_path, **web_identity(tmp_path, sts))
    sts.trust[ROLE] = {"sub": "system:serviceaccount:other:someone"}  # the trust policy refuses
    mock, kb, bootstrap, admin = iam_bridge("OAUTHBEARER", env, ready=False)
    line = kb.wait_log(r"AccessDenied", timeout=15)
    assert "Not authorized to perform sts:AssumeRoleWithWebIdentity" in kb.log_text(), line
    status, body = http_get(admin, "/readyz")
    assert status == 503 and "AccessDenied" in body, body
    r = run([KCAT, "-L", "-b", bootstrap, "-m", "3"], timeout=20)
    assert r.returncode != 0
    assert mock.stats()["iam_auths"] == 0
    assert_no_secret(kb, admin, sts.secrets)


# --- the genuine npm signers against kbmock directly ----------------------------------------------

@pytest.fixture
def iam_mock(kbmock, tmp_path):
    creds = tmp_path / "iam-creds"
    creds.write_text(f"{STATIC_KEY} {STATIC_SECRET} {STATIC_TOKEN} 0 "
                     f"arn:aws:iam::123456789012:user/kbridge-static\n")
    return kbmock(mode="msk", brokers=1, topics=["orders:1"],
                  sasl_mechanisms="AWS_MSK_IAM,OAUTHBEARER", iam_credentials=creds,
                  iam_region=REGION)


def genuine_connect(node, mock, how, secret=STATIC_SECRET):
    """sign.js connect-iam|connect-oauth (kafkajs with the genuine signers) straight to kbmock's
    TLS front, which the IAM mechanism signs as the host it dials (127.0.0.1)."""
    host, port = mock.brokers[1].tls.rsplit(":", 1)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=STATIC_KEY, AWS_SECRET_ACCESS_KEY=secret,
               AWS_SESSION_TOKEN=STATIC_TOKEN, KB_TLS_CA=str(BUILD / "certs" / "ca.pem"))
    return run([node, "sign.js", how, REGION, host, port], cwd=IAM_DIR, env=env, timeout=60)


@pytest.mark.parametrize("how,mech", [("connect-iam", "AWS_MSK_IAM"),
                                      ("connect-oauth", "OAUTHBEARER")])
def test_genuine_signers_authenticate_to_kbmock(node, iam_mock, how, mech):
    r = genuine_connect(node, iam_mock, how)
    assert r.returncode == 0 and r.stdout.strip() == "connected", r.stderr[-2000:]
    s = iam_mock.stats()
    assert s["iam_auths"] >= 1 and s["iam_failures"] == 0, s
    assert f"authenticated {mech} as 'arn:aws:iam::123456789012:user/kbridge-static'" in \
        iam_mock.log_text()


@pytest.mark.parametrize("how", ["connect-iam", "connect-oauth"])
def test_genuine_signers_with_a_wrong_secret_are_refused(node, iam_mock, how):
    """AWS_MSK_IAM: error 58, kafkajs fails. OAUTHBEARER: the broker answers with RFC 7628's
    error JSON and waits for %x01; kafkajs does not send it (it takes any answer as success and
    only fails at its next request, as against Kafka's own OAUTHBEARER server), so there the proof
    is that the cluster refused the token and authenticated nobody."""
    r = genuine_connect(node, iam_mock, how, secret="wrongSecretWrongSecret/0123456789abcdefg")
    s = iam_mock.stats()
    assert s["iam_auths"] == 0, s
    assert "IAM: signature mismatch" in iam_mock.log_text(), iam_mock.log_text()[-2000:]
    if how == "connect-iam":
        assert r.returncode != 0, r.stdout
        assert "Access denied" in r.stderr, r.stderr[-2000:]


def test_reload_keeps_or_replaces_the_provider(iam_bridge, tmp_path, sts):
    """One provider per cluster across reloads: an unchanged AWS setup keeps its credentials (no
    new STS call); a changed one (another session name) gets a new provider, and traffic goes on
    signed with the new principal."""
    import signal

    env = clean_env(tmp_path, **web_identity(tmp_path, sts))
    mock, kb, bootstrap, admin = iam_bridge("AWS_MSK_IAM", env, workers=2)
    kcat_produce(bootstrap, ["before-reload"])
    assert sts.calls.get("AssumeRoleWithWebIdentity") == 1, sts.calls  # shared by both workers
    ini = kb.ini_path.read_text()
    kb.ini_path.write_text(ini.replace("log_level = debug", "log_level = info"))
    kb.proc.send_signal(signal.SIGHUP)
    kb.wait_log(r"configuration reloaded")
    kcat_produce(bootstrap, ["after-same-reload"])
    assert sts.calls.get("AssumeRoleWithWebIdentity") == 1, sts.calls
    kb.ini_path.write_text(ini + "aws_role_session_name = kbridge-renamed\n")
    kb.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while sts.calls.get("AssumeRoleWithWebIdentity") != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sts.calls.get("AssumeRoleWithWebIdentity") == 2, sts.calls
    assert wait_ready(admin)[0] == 200
    lines = [f"renamed-{i}" for i in range(10)]
    kcat_produce(bootstrap, lines)
    assert set(lines) <= set(kcat_consume_all(bootstrap))
    assert "as 'arn:aws:sts::123456789012:assumed-role/kbridge-msk/kbridge-renamed'" in \
        mock.log_text()
    assert mock.stats()["iam_failures"] == 0
    assert_no_secret(kb, admin, sts.secrets)
