"""The AWS credentials provider (aws/) live, through build/kbcreds, against the mocks of
mock_aws.py: each source of the SDK chain, GCP workload identity end to end, refresh ahead of
expiry, STS outages and refusals, proxies, clock skew, and no secret in any output."""
import os
import re
import threading
import time

import pytest

from conftest import run
from mock_aws import ConnectProxy, MockContainer, MockGCE, MockIMDS, MockSTS, make_jwt

ROLE = "arn:aws:iam::123456789012:role/kbridge-msk"
OIDC = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


@pytest.fixture
def kbcreds(build_dir):
    path = build_dir / "kbcreds"
    if not path.exists():
        pytest.skip("build/kbcreds missing: make build/kbcreds")
    return path


@pytest.fixture
def sts(certs):
    m = MockSTS(str(certs))
    yield m
    m.stop()


@pytest.fixture
def gce():
    m = MockGCE()
    yield m
    m.stop()


@pytest.fixture
def imds():
    m = MockIMDS()
    yield m
    m.stop()


def base_env(tmp_path, **extra):
    """A clean environment: no AWS variables from the host, HOME without ~/.aws, IMDS off, and
    proxies pointing nowhere but bypassed for loopback (as NO_PROXY must make them)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GCE_")) and k.lower() not in ("https_proxy", "http_proxy",
                                                                        "no_proxy", "all_proxy")}
    env.update({"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true",
                "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"})
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def write_conf(tmp_path, **keys):
    lines = ["[msk]", "bootstrap_servers = b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9198"]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    p = tmp_path / "kbridge.ini"
    p.write_text("\n".join(lines) + "\n")
    return p


def kbc(kbcreds, conf, env, seconds=0, wait=20, timeout=60):
    r = run([str(kbcreds), "-c", str(conf), "-t", str(seconds), "-w", str(wait)], env=env,
            timeout=timeout)
    return r, r.stdout + r.stderr


def first_line(out):
    return next(l for l in out.splitlines() if l.startswith("first "))


def field(line, name):
    m = re.search(rf"\b{name}=(\S+)", line)
    return m.group(1) if m else None


def assert_no_secrets(out, *mocks, extra=()):
    for m in mocks:
        for s in m.secrets:
            assert s not in out, "a secret or token reached kbcreds' output"
    for s in extra:
        assert s not in out


def web_identity_conf(tmp_path, sts, certs, token, **more):
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    return write_conf(tmp_path, aws_credentials="default", aws_role_arn=ROLE,
                      aws_web_identity_token_file=tf, aws_role_session_name="kbridge-test",
                      aws_sts_endpoint=sts.url, aws_ca_file=f"{certs}/ca.pem", **more)


def eks_token(sub="system:serviceaccount:kafka:kbridge", ttl=3600):
    return make_jwt({"iss": OIDC, "aud": "sts.amazonaws.com", "sub": sub,
                     "exp": int(time.time()) + ttl})


def test_environment_credentials(kbcreds, tmp_path):
    secret, token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN" * 20
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
                                         AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=token))
    assert r.returncode == 0, out
    line = first_line(out)
    assert field(line, "valid") == "1" and field(line, "source") == "environment", line
    assert field(line, "key") == "AKIA****MPLE", line
    assert int(field(line, "expires_in")) > 10 ** 15, "static keys do not expire"
    assert_no_secrets(out, extra=[secret, token])


def test_partial_environment_is_an_error_naming_the_missing_variable(kbcreds, tmp_path, sts):
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE"))
    assert r.returncode == 1, out
    assert "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" in out


def test_no_credentials_names_every_source(kbcreds, tmp_path):
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(tmp_path))
    assert r.returncode == 1, out
    reason = first_line(out)
    for source in ("environment: AWS_ACCESS_KEY_ID", "web-identity: AWS_ROLE_ARN",
                   "shared-files: no profile 'default'",
                   "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                   "imds: disabled by AWS_EC2_METADATA_DISABLED"):
        assert source in reason, reason


def test_web_identity_from_keys(kbcreds, tmp_path, sts, certs):
    token = eks_token()
    sts.trust[ROLE] = {"iss": OIDC, "aud": "sts.amazonaws.com"}
    conf = web_identity_conf(tmp_path, sts, certs, token)
    r, out = kbc(kbcreds, conf, base_env(tmp_path))
    assert r.returncode == 0, out
    line = first_line(out)
    assert field(line, "source") == "web-identity", line
    assert field(line, "principal") == \
        "arn:aws:sts::123456789012:assumed-role/kbridge-msk/kbridge-test", line
    assert field(line, "key").startswith("ASIA"), line
    assert 3500 < int(field(line, "expires_in")) <= 3600, line
    p = sts.params[0]
    assert p["Action"] == "AssumeRoleWithWebIdentity" and p["RoleArn"] == ROLE
    assert p["RoleSessionName"] == "kbridge-test" and p["WebIdentityToken"] == token
    assert sts.requests[0][0] == "POST", "the token goes in a POST body, not in a URL"
    assert_no_secrets(out, sts)


def test_web_identity_from_environment_irsa(kbcreds, tmp_path, sts, certs):
    """EKS IRSA sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE; the STS endpoint and CA come
    from AWS_ENDPOINT_URL_STS and AWS_CA_BUNDLE; the session name defaults to the host name."""
    tf = tmp_path / "irsa-token"
    tf.write_text(eks_token())
    sts.trust[ROLE] = {"iss": OIDC}
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, AWS_ROLE_ARN=ROLE,
                                         AWS_WEB_IDENTITY_TOKEN_FILE=str(tf),
                                         AWS_ENDPOINT_URL_STS=sts.url,
                                         AWS_CA_BUNDLE=f"{certs}/ca.pem"))
    assert r.returncode == 0, out
    assert field(first_line(out), "source") == "web-identity"
    session = sts.params[0]["RoleSessionName"]
    assert session.startswith("kbridge-") and re.fullmatch(r"[\w+=,.@-]{2,64}", session)
    assert_no_secrets(out, sts)


def test_sts_tls_is_verified(kbcreds, tmp_path, sts, certs):
    """Without the test CA (system store only) the mock STS's certificate is not trusted."""
    sts.trust[ROLE] = {"iss": OIDC}
    tf = tmp_path / "token"
    tf.write_text(eks_token())
    conf = write_conf(tmp_path, aws_role_arn=ROLE, aws_web_identity_token_file=tf,
                      aws_sts_endpoint=sts.url)
    r, out = kbc(kbcreds, conf, base_env(tmp_path))
    assert r.returncode == 1, out
    assert "STS at https://127.0.0.1" in out and "unreachable" in out
    assert re.search(r"(?i)certificate|SSL", first_line(out)), out
    assert sts.calls == {}, "nothing may be sent over an unverified connection"


def test_wrong_role_is_access_denied_with_sts_message_and_hint(kbcreds, tmp_path, sts, certs):
    sts.trust["arn:aws:iam::123456789012:role/other"] = {"iss": OIDC}
    conf = web_identity_conf(tmp_path, sts, certs, eks_token())
    r, out = kbc(kbcreds, conf, base_env(tmp_path))
    assert r.returncode == 1, out
    reason = field(first_line(out), "reason") and first_line(out).split("reason=", 1)[1]
    assert f"AssumeRoleWithWebIdentity for {ROLE} failed: STS AccessDenied (HTTP 403)" in reason
    assert "Not authorized to perform sts:AssumeRoleWithWebIdentity" in reason
    assert "trust policy" in reason and "audience" in reason and "subject" in reason
    assert "ERROR [msk]" in out, "the failure is logged"
    assert_no_secrets(out, sts)


def test_invalid_identity_token(kbcreds, tmp_path, sts, certs):
    sts.trust[ROLE] = {"iss": OIDC}
    token = make_jwt({"iss": OIDC, "exp": int(time.time()) + 600}, signature="forged")
    conf = web_identity_conf(tmp_path, sts, certs, token)
    r, out = kbc(kbcreds, conf, base_env(tmp_path))
    assert r.returncode == 1, out
    assert "STS InvalidIdentityToken (HTTP 400): Couldn't retrieve verification key" in out
    assert "issuer" in out
    assert token not in out


def test_gcp_end_to_end(kbcreds, tmp_path, sts, gce, certs):
    """Dataproc: the VM's service account ID token (audience sts.amazonaws.com by default) is
    exchanged at STS for the role; the trust policy checks audience and the account's id."""
    sts.trust[ROLE] = {"iss": "https://accounts.google.com", "aud": "sts.amazonaws.com",
                       "azp": gce.sa_id}
    conf = write_conf(tmp_path, aws_credentials="gcp", aws_role_arn=ROLE,
                      aws_role_session_name="dataproc-w-0", aws_sts_endpoint=sts.url,
                      aws_ca_file=f"{certs}/ca.pem")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, GCE_METADATA_HOST=gce.host))
    assert r.returncode == 0, out
    line = first_line(out)
    assert field(line, "source") == "gcp", line
    assert field(line, "principal") == \
        "arn:aws:sts::123456789012:assumed-role/kbridge-msk/dataproc-w-0", line
    method, path, headers = gce.requests[0]
    assert headers.get("Metadata-Flavor") == "Google"
    assert "format=full" in path and gce.audiences == ["sts.amazonaws.com"]
    assert sts.params[0]["WebIdentityToken"] == gce.secrets[0]
    assert_no_secrets(out, sts, gce)


def test_gcp_audience_key_and_metadata_host_key(kbcreds, tmp_path, sts, gce, certs):
    sts.trust[ROLE] = {"aud": ROLE}
    conf = write_conf(tmp_path, aws_credentials="gcp", aws_role_arn=ROLE, gcp_audience=ROLE,
                      gcp_metadata_host=gce.host, aws_sts_endpoint=sts.url,
                      aws_ca_file=f"{certs}/ca.pem")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, GCE_METADATA_HOST="127.0.0.1:9"))
    assert r.returncode == 0, out
    assert gce.audiences == [ROLE], "the key wins over GCE_METADATA_HOST and sets the audience"


def test_gcp_wrong_audience_is_denied_with_the_audience_named(kbcreds, tmp_path, sts, gce, certs):
    sts.trust[ROLE] = {"aud": "something-else"}
    conf = write_conf(tmp_path, aws_credentials="gcp", aws_role_arn=ROLE,
                      aws_sts_endpoint=sts.url, aws_ca_file=f"{certs}/ca.pem")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, GCE_METADATA_HOST=gce.host))
    assert r.returncode == 1, out
    assert "STS AccessDenied" in out and "audience 'sts.amazonaws.com'" in out
    assert_no_secrets(out, sts, gce)


def test_gcp_metadata_server_unreachable(kbcreds, tmp_path, sts, certs):
    conf = write_conf(tmp_path, aws_credentials="gcp", aws_role_arn=ROLE,
                      aws_sts_endpoint=sts.url, aws_ca_file=f"{certs}/ca.pem")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, GCE_METADATA_HOST="127.0.0.1:9"))
    assert r.returncode == 1, out
    assert "GCE metadata server at 127.0.0.1:9 unreachable" in out and "GCE_METADATA_HOST" in out


def test_imdsv2(kbcreds, tmp_path, imds):
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, AWS_EC2_METADATA_DISABLED=None,
                                         AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url + "/"))
    assert r.returncode == 0, out
    line = first_line(out)
    assert field(line, "source") == "imds" and field(line, "key").startswith("ASIA"), line
    methods = [(m, p) for m, p, _ in imds.requests]
    assert methods == [("PUT", "/latest/api/token"),
                       ("GET", "/latest/meta-data/iam/security-credentials/"),
                       ("GET", "/latest/meta-data/iam/security-credentials/kbridge-ec2")]
    assert imds.requests[0][2].get("X-aws-ec2-metadata-token-ttl-seconds")
    assert_no_secrets(out, imds)


def test_container_endpoint_with_a_rotating_token_file(kbcreds, tmp_path):
    """EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI + a token file, which the agent
    rotates: it is re-read at every fetch, sent as Authorization, and never printed."""
    token = "eyJhbGciOiJSUzI1NiJ9.pod-identity-token-1"
    agent = MockContainer(auth=token)
    try:
        tf = tmp_path / "eks-pod-identity-token"
        tf.write_text(token + "\n")
        conf = write_conf(tmp_path, aws_credentials="default")
        env = base_env(tmp_path, AWS_CONTAINER_CREDENTIALS_FULL_URI=agent.url + "/v1/credentials",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(tf))
        r, out = kbc(kbcreds, conf, env)
        assert r.returncode == 0, out
        line = first_line(out)
        assert field(line, "source") == "container" and field(line, "key").startswith("ASIA"), line
        assert 21000 < int(field(line, "expires_in")) <= 21600, line
        assert [(m, p) for m, p, _ in agent.requests] == [("GET", "/v1/credentials")]
        # rotated: the next process start (and every refresh) reads the new one
        agent.auth = token.replace("-1", "-2")
        agent.secrets.append(agent.auth)
        tf.write_text(agent.auth + "\n")
        r, out2 = kbc(kbcreds, conf, env)
        assert r.returncode == 0, out2
        assert agent.requests[-1][2].get("Authorization") == agent.auth
        assert_no_secrets(out + out2, agent)
    finally:
        agent.stop()


def test_container_endpoint_refusal_is_named_and_stops_the_chain(kbcreds, tmp_path, imds):
    """A wrong token: the agent's 401 and message are named, and the chain does not fall
    through to IMDS (a source that is set up but fails stops it)."""
    agent = MockContainer(auth="the-right-token")
    try:
        conf = write_conf(tmp_path, aws_credentials="default")
        env = base_env(tmp_path, AWS_CONTAINER_CREDENTIALS_FULL_URI=agent.url + "/v1/credentials",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN="a-wrong-token",
                       AWS_EC2_METADATA_DISABLED=None,
                       AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url)
        r, out = kbc(kbcreds, conf, env, wait=10)
        assert r.returncode == 1, out
        reason = first_line(out)
        assert "container: GET http://127.0.0.1:" in reason, reason
        assert "HTTP 401 (Authorization token is invalid)" in reason, reason
        assert "/v1/credentials" not in reason, "the path (an ECS task's credentials id) is shown"
        assert imds.requests == [], "the chain fell through to IMDS"
        assert "a-wrong-token" not in out and "the-right-token" not in out
    finally:
        agent.stop()


def test_container_full_uri_in_clear_to_another_host_is_refused(kbcreds, tmp_path):
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(
        tmp_path, AWS_CONTAINER_CREDENTIALS_FULL_URI="http://creds.example.com/v1/credentials"))
    assert r.returncode == 1, out
    reason = first_line(out)
    assert "sends credentials in clear to creds.example.com" in reason, reason
    assert "use https://" in reason, reason


def test_shared_files_and_profile(kbcreds, tmp_path):
    secret = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
    (tmp_path / "creds").write_text("[default]\naws_access_key_id = AKIADEFAULTEXAMPLE00\n"
                                    f"aws_secret_access_key = x{secret}\n\n"
                                    "[msk]\n# the profile kbridge uses\n"
                                    "aws_access_key_id = AKIAI44QH8DHBEXAMPLE\n"
                                    f"aws_secret_access_key = {secret}\n")
    conf = write_conf(tmp_path, aws_credentials="default", aws_profile="msk")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "creds"),
                                         AWS_PROFILE="default"))
    assert r.returncode == 0, out
    line = first_line(out)
    assert field(line, "source") == "shared-files" and field(line, "key") == "AKIA****MPLE", line
    assert secret not in out


def test_profile_with_role_chaining_is_named_unsupported(kbcreds, tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile msk]\nrole_arn = " + ROLE +
                                              "\nsource_profile = default\nregion = eu-west-1\n")
    conf = write_conf(tmp_path, aws_credentials="default")
    r, out = kbc(kbcreds, conf, base_env(tmp_path, AWS_PROFILE="msk"))
    assert r.returncode == 1, out
    assert "shared-files: profile 'msk' uses role_arn, which kbridge does not support" in out


def test_refresh_ahead_of_expiry_20s_credentials(kbcreds, tmp_path, sts, certs):
    """Credentials that live 20 s are replaced before they expire: several keys, never invalid,
    and the getter (what an event loop calls) never waits for the 1 s slow STS."""
    sts.lifetime, sts.delay = 20, 1.0
    sts.trust[ROLE] = {"iss": OIDC}
    conf = web_identity_conf(tmp_path, sts, certs, eks_token())
    r, out = kbc(kbcreds, conf, base_env(tmp_path), seconds=33, timeout=60)
    assert r.returncode == 0, out
    summary = next(l for l in out.splitlines() if l.startswith("summary "))
    assert int(field(summary, "keys_seen")) >= 3, out
    assert field(summary, "refresh_failed") == "0", out
    assert not [l for l in out.splitlines() if l.startswith("state ")], "never without credentials"
    expires = [int(field(l, "expires_in")) for l in out.splitlines() if l.startswith(("key ", "first "))]
    assert all(e >= 3 for e in expires), f"refreshed too late: {expires}"
    assert int(field(summary, "get_max_us")) < 200000, "the getter waited for the network"
    assert int(field(summary, "gets")) > 1000
    assert out.count("AWS credentials refreshed from web-identity") >= 2
    assert_no_secrets(out, sts)


def test_sts_down_at_start_then_back(kbcreds, tmp_path, sts, certs):
    sts.down = True
    sts.trust[ROLE] = {"iss": OIDC}
    threading.Timer(2.5, lambda: setattr(sts, "down", False)).start()
    conf = web_identity_conf(tmp_path, sts, certs, eks_token())
    r, out = kbc(kbcreds, conf, base_env(tmp_path), seconds=7, wait=5)
    assert r.returncode == 0, out
    first = first_line(out)
    assert field(first, "valid") == "0" and "STS ServiceUnavailable (HTTP 503)" in first, first
    assert [l for l in out.splitlines() if l.startswith("state valid=1")], out
    assert out.count("AWS credentials fetch failed, none valid") == 1, "logged once, not per retry"
    assert "AWS credentials recovered from web-identity" in out
    assert sts.calls["AssumeRoleWithWebIdentity"] >= 3, "retried"


def test_refresh_failure_keeps_current_credentials(kbcreds, tmp_path, sts, certs):
    sts.lifetime = 20
    sts.trust[ROLE] = {"iss": OIDC}
    threading.Timer(3, lambda: setattr(sts, "down", True)).start()
    conf = web_identity_conf(tmp_path, sts, certs, eks_token())
    r, out = kbc(kbcreds, conf, base_env(tmp_path), seconds=18)
    assert r.returncode == 0, out
    assert "AWS credentials refresh failed, keeping the current ones until" in out
    assert out.count("refresh failed, keeping") == 1, "one log line per state change"
    assert not [l for l in out.splitlines() if l.startswith("state ")], "still valid"


def test_https_proxy_is_used_unless_no_proxy(kbcreds, tmp_path, sts, certs):
    proxy = ConnectProxy()
    try:
        sts.trust[ROLE] = {"iss": OIDC}
        conf = web_identity_conf(tmp_path, sts, certs, eks_token())
        r, out = kbc(kbcreds, conf, base_env(tmp_path, HTTPS_PROXY=proxy.url, NO_PROXY=None))
        assert r.returncode == 0, out
        assert proxy.connects == [f"127.0.0.1:{sts.port}"], "STS was reached through HTTPS_PROXY"
        r, out = kbc(kbcreds, conf, base_env(tmp_path, HTTPS_PROXY=proxy.url, NO_PROXY="127.0.0.1"))
        assert r.returncode == 0, out
        assert len(proxy.connects) == 1, "NO_PROXY=127.0.0.1 keeps loopback direct"
    finally:
        proxy.stop()


def test_clock_skew_is_reported(kbcreds, tmp_path, sts, certs):
    sts.date_offset = -900
    sts.trust[ROLE] = {"iss": OIDC}
    conf = web_identity_conf(tmp_path, sts, certs, eks_token())
    r, out = kbc(kbcreds, conf, base_env(tmp_path))
    assert r.returncode == 0, out
    assert re.search(r"clock skew: the local clock is 9\d\d s ahead of AWS's", out), out
    assert "fix NTP" in out
    assert 890 <= int(field(first_line(out), "skew")) <= 910


def test_whoami_signed_get_caller_identity(kbcreds, tmp_path, sts, gce, certs):
    """What `kbridge check` shows: the source, the expiry and the assumed-role ARN, from a
    SigV4-signed GetCallerIdentity that the mock STS verifies with the issued secret."""
    sts.trust[ROLE] = {"aud": "sts.amazonaws.com"}
    conf = write_conf(tmp_path, aws_credentials="gcp", aws_role_arn=ROLE,
                      aws_role_session_name="dataproc-m", aws_sts_endpoint=sts.url,
                      aws_ca_file=f"{certs}/ca.pem")
    r = run([str(kbcreds), "-c", str(conf), "-t", "0", "-i"],
            env=base_env(tmp_path, GCE_METADATA_HOST=gce.host), timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    line = next(l for l in out.splitlines() if l.startswith("whoami "))
    assert line.startswith("whoami ok source=gcp key=ASIA****"), line
    assert field(line, "arn") == "arn:aws:sts::123456789012:assumed-role/kbridge-msk/dataproc-m"
    assert field(line, "account") == "123456789012"
    assert int(field(line, "expiration")) > time.time() + 3000
    assert sts.verified == 1, "the signature was checked and matched"
    assert_no_secrets(out, sts, gce)


def test_whoami_signature_in_wrong_region_is_refused(kbcreds, tmp_path, certs, gce):
    sts = MockSTS(str(certs), region="us-east-1")  # the config's region is eu-west-1
    try:
        sts.trust[ROLE] = {"aud": "sts.amazonaws.com"}
        conf = write_conf(tmp_path, aws_credentials="gcp", aws_role_arn=ROLE,
                          aws_sts_endpoint=sts.url, aws_ca_file=f"{certs}/ca.pem")
        r = run([str(kbcreds), "-c", str(conf), "-t", "0", "-i"],
                env=base_env(tmp_path, GCE_METADATA_HOST=gce.host), timeout=60)
        out = r.stdout + r.stderr
        assert "whoami failed reason=GetCallerIdentity failed: STS SignatureDoesNotMatch (HTTP 403)" \
            in out, out
        assert_no_secrets(out, sts, gce)
    finally:
        sts.stop()
