"""`kbridge check` with authentication: the SASL step kbridge runs with every bootstrap server and
broker (the daemon's own state machine, driven by the doctor) against the SASL-enforcing kbmock,
and the AWS credentials step against mock_aws.py's STS. Every finding is asserted through --json
(one test reads the human lines); no password, secret key or session token may appear anywhere
in the output."""
import os
import re

import pytest

from conftest import SASL_USERS, cluster_ini, run
from mock_aws import MockSTS
from test_check import FAST, check, failing, only_target, targets

AUTH_STEPS = ["dns", "tcp", "tls", "chain", "hostname", "authentication", "kafka"]
ROLE = "arn:aws:iam::123456789012:role/kbridge-msk"


def sasl_ini(tmp_path, mock, ports, certs, mech, user="alice", password=None, bootstrap=None,
             extra=None):
    pw = tmp_path / "password"
    pw.write_text((SASL_USERS[user] if password is None else password) + "\n")
    os.chmod(pw, 0o600)
    keys = {**FAST, "sasl_mechanism": mech, "sasl_username": user,
            "sasl_password_file": str(pw), **(extra or {})}
    return cluster_ini("msk", bootstrap or [mock.brokers[1].advertised], ports(),
                       tls_ca=certs / "ca.pem", extra=keys)


def no_secret(r, *secrets):
    out = r.stdout + r.stderr
    for s in secrets:
        assert s not in out, f"a secret is in check's output: {s[:4]}..."


def auth_step(target):
    return next(s for s in target["steps"] if s["step"] == "authentication")


# --- SASL ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mech", ["SCRAM-SHA-512", "PLAIN"])
def test_sasl_all_good(build_dir, tmp_path, kbmock, ports, certs, mech):
    mock = kbmock(mode="msk", brokers=3, topics=["orders:3"], sasl_mechanisms=mech,
                  sasl_session_ms=60000)
    before = mock.stats()
    rc, doc, r = check(build_dir, tmp_path, sasl_ini(tmp_path, mock, ports, certs, mech))
    assert rc == 0, r.stdout + r.stderr
    boot = only_target(doc)
    brokers = targets(doc, "broker")
    # the bootstrap is broker 1's own address, so it is checked once: 3 exchanges in all
    assert boot["node_id"] == 1 and sorted(t["node_id"] for t in brokers) == [2, 3]
    for t in [boot] + brokers:
        assert [s["step"] for s in t["steps"]] == AUTH_STEPS, t
        assert t["ok"] and all(s["ok"] for s in t["steps"]), t["steps"]
        # the one warning: the bootstrap is an IP literal (test_check.py covers that)
        assert [s["step"] for s in t["steps"] if s["warning"]] == (["dns"] if t is boot else [])
    step = auth_step(boot)
    assert step["detail"].startswith(f"{mech} as 'alice' in "), step
    assert "session lifetime 60000 ms" in step["detail"], step
    assert isinstance(step["ms"], int) and step["ms"] >= 0
    # the Kafka step ran after authentication on the same connection: Metadata was answered
    assert "3 brokers" in boot["steps"][-1]["detail"], boot["steps"][-1]
    after = mock.stats()
    assert after["sasl_auths"] - before["sasl_auths"] == 3, after
    assert after["sasl_failures"] == before["sasl_failures"], after
    no_secret(r, SASL_USERS["alice"])


def test_sasl_human_output_numbers_the_step(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", brokers=1, topics=["orders:1"], sasl_mechanisms="SCRAM-SHA-256")
    ini = tmp_path / "human.ini"
    ini.write_text(sasl_ini(tmp_path, mock, ports, certs, "SCRAM-SHA-256", user="bob"))
    r = run([str(build_dir / "kbridge"), "check", "-c", str(ini)])
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any("3/7 TLS handshake  ok" in l for l in lines), lines
    assert any("6/7 authentication  ok  SCRAM-SHA-256 as 'bob'" in l for l in lines), lines
    assert any("7/7 Kafka  ok" in l for l in lines), lines
    no_secret(r, SASL_USERS["bob"])


def test_sasl_wrong_password(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", brokers=1, topics=["orders:1"], sasl_mechanisms="SCRAM-SHA-512")
    wrong = "not-alices-password-77"
    rc, doc, r = check(build_dir, tmp_path,
                       sasl_ini(tmp_path, mock, ports, certs, "SCRAM-SHA-512", password=wrong))
    assert rc == 1, r.stdout + r.stderr
    step = failing(only_target(doc), "authentication")
    assert step["detail"].startswith("authentication failed (SCRAM-SHA-512): the broker refused: ")
    assert "SASL_AUTHENTICATION_FAILED" in step["detail"], step
    assert "sasl_password_file" in step["fix"] and "Secrets Manager" in step["fix"], step
    assert not targets(doc, "broker"), "no Metadata without authentication"
    no_secret(r, wrong, SASL_USERS["alice"])


def test_sasl_mechanism_not_enabled(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", brokers=1, topics=["orders:1"], sasl_mechanisms="PLAIN")
    rc, doc, r = check(build_dir, tmp_path,
                       sasl_ini(tmp_path, mock, ports, certs, "SCRAM-SHA-512"))
    assert rc == 1, r.stdout + r.stderr
    step = failing(only_target(doc), "authentication")
    assert "mechanism not enabled on this listener; the broker offers: PLAIN" in step["detail"]
    assert "UNSUPPORTED_SASL_MECHANISM" in step["detail"], step
    assert "9096" in step["fix"] and "9196" in step["fix"] and "9094/9194" in step["fix"], step
    no_secret(r, SASL_USERS["alice"])


def test_sasl_on_a_port_without_sasl(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", brokers=2, topics=["orders:1"], sasl_mechanisms="SCRAM-SHA-512",
                  sasl_off=[2])
    rc, doc, r = check(build_dir, tmp_path, sasl_ini(tmp_path, mock, ports, certs, "SCRAM-SHA-512"))
    assert rc == 1, r.stdout + r.stderr
    good = only_target(doc)
    assert [s["step"] for s in good["steps"]] == AUTH_STEPS and good["ok"], good
    bad = [t for t in targets(doc, "broker") if t["node_id"] == 2]
    assert len(bad) == 1, targets(doc, "broker")
    step = failing(bad[0], "authentication")
    assert "ILLEGAL_SASL_STATE" in step["detail"], step
    assert "remove sasl_mechanism" in step["fix"] and "9094/9194" in step["fix"], step


def test_passthrough_against_a_sasl_cluster(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", brokers=1, topics=["orders:1"], sasl_mechanisms="SCRAM-SHA-512")
    ini = cluster_ini("msk", [mock.brokers[1].advertised], ports(), tls_ca=certs / "ca.pem",
                      extra=FAST)
    rc, doc, r = check(build_dir, tmp_path, ini)
    boot = only_target(doc)
    assert [s["step"] for s in boot["steps"]] == ["dns", "tcp", "tls", "chain", "hostname",
                                                  "kafka"], boot
    kafka = boot["steps"][-1]
    assert kafka["ok"] and kafka["warning"], kafka
    assert "requires SASL authentication" in kafka["detail"], kafka
    assert "clients must authenticate themselves" in kafka["detail"], kafka
    assert "sasl_mechanism" in kafka["fix"], kafka
    assert rc == 0, r.stdout + r.stderr  # passthrough works there: a warning, not a failure


# --- AWS credentials ------------------------------------------------------------------------

@pytest.fixture
def sts(certs):
    m = MockSTS(str(certs))
    yield m
    m.stop()


def aws_env(tmp_path, **extra):
    """check's environment with no AWS settings from the host, no ~/.aws and IMDS off."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GCE_")) and k.lower() not in ("https_proxy", "http_proxy",
                                                                        "no_proxy", "all_proxy")}
    env.update({"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


def aws_check(build_dir, tmp_path, kbmock, ports, certs, env, sts=None):
    """Runs check --json on a plain TLS cluster that uses the AWS credentials layer."""
    mock = kbmock(mode="msk", brokers=1, topics=["orders:1"])
    extra = {**FAST, "aws_credentials": "default", "aws_region": "eu-west-1"}
    if sts:
        extra.update({"aws_sts_endpoint": sts.url, "aws_ca_file": str(certs / "ca.pem")})
    ini = tmp_path / "check.ini"
    ini.write_text(cluster_ini("msk", [mock.brokers[1].advertised], ports(),
                               tls_ca=certs / "ca.pem", extra=extra))
    r = run([str(build_dir / "kbridge"), "check", "--json", "-c", str(ini)], env=env, timeout=60)
    import json
    return r.returncode, json.loads(r.stdout), r


def aws_target(doc):
    ts = [t for t in targets(doc, "config") if t["steps"][0]["step"] == "aws_credentials"]
    assert len(ts) == 1, targets(doc, "config")
    return ts[0]


def issue(sts, key_id, secret, token, session="kbridge-env"):
    """Makes the mock STS know static credentials, so GetCallerIdentity can verify them."""
    sts.issued[key_id] = (ROLE, session, secret, token)


def test_aws_env_credentials_whoami(build_dir, tmp_path, kbmock, ports, certs, sts):
    key, secret = "ASIAEXAMPLEKEY0000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    token = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN" + "x" * 200
    issue(sts, key, secret, token)
    env = aws_env(tmp_path, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                  AWS_SESSION_TOKEN=token, NO_PROXY="127.0.0.1")
    rc, doc, r = aws_check(build_dir, tmp_path, kbmock, ports, certs, env, sts)
    assert rc == 0, r.stdout + r.stderr
    step = aws_target(doc)["steps"][0]
    assert step["ok"] and not step["warning"], step
    assert "source environment" in step["detail"], step
    assert "arn:aws:sts::123456789012:assumed-role/kbridge-msk/kbridge-env" in step["detail"]
    assert "account 123456789012" in step["detail"], step
    assert sts.verified == 1, "GetCallerIdentity was not signed right"
    assert only_target(doc)["ok"], "the brokers are still checked"
    no_secret(r, secret, token)
    # The report is the whole story: no daemon log line (the credentials provider's) in it.
    assert not re.search(r"^\d{4}-\d\d-\d\dT\S+ (INFO|WARN|DEBUG) ", r.stderr, re.M), r.stderr


def test_aws_access_denied_role(build_dir, tmp_path, kbmock, ports, certs, sts):
    token_file = tmp_path / "token"
    import time
    from mock_aws import make_jwt
    token_file.write_text(make_jwt({"iss": "https://oidc.example", "sub": "system:sa",
                                    "aud": "sts.amazonaws.com", "exp": int(time.time()) + 3600}))
    sts.trust[ROLE] = {"aud": "another-audience"}
    env = aws_env(tmp_path, AWS_ROLE_ARN=ROLE, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
                  AWS_ROLE_SESSION_NAME="kbridge-test", NO_PROXY="127.0.0.1")
    rc, doc, r = aws_check(build_dir, tmp_path, kbmock, ports, certs, env, sts)
    assert rc == 1, r.stdout + r.stderr
    step = failing(aws_target(doc), "aws_credentials")
    assert "AccessDenied" in step["detail"], step
    assert "Not authorized to perform sts:AssumeRoleWithWebIdentity" in step["detail"], step
    assert "trust policy" in step["detail"] + step["fix"], step
    no_secret(r, token_file.read_text())


def test_aws_no_credentials_lists_each_source(build_dir, tmp_path, kbmock, ports, certs):
    rc, doc, r = aws_check(build_dir, tmp_path, kbmock, ports, certs, aws_env(tmp_path))
    assert rc == 1, r.stdout + r.stderr
    step = failing(aws_target(doc), "aws_credentials")
    assert step["detail"].startswith("no AWS credentials: "), step
    for source in ("environment: AWS_ACCESS_KEY_ID", "web-identity: AWS_ROLE_ARN",
                   "shared-files: no profile 'default'",
                   "imds: disabled by AWS_EC2_METADATA_DISABLED"):
        assert source in step["detail"], step
    assert "AWS_ACCESS_KEY_ID" in step["fix"] and "aws_credentials = gcp" in step["fix"], step


def test_aws_clock_skew_warns(build_dir, tmp_path, kbmock, ports, certs, sts):
    key, secret = "ASIAEXAMPLEKEY0000002", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
    token = "IQoJb3JpZ2luX2VjSKEWSESSIONTOKEN" + "y" * 200
    issue(sts, key, secret, token)
    sts.date_offset = -900  # STS's Date 15 minutes behind this host's clock
    env = aws_env(tmp_path, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                  AWS_SESSION_TOKEN=token, NO_PROXY="127.0.0.1")
    rc, doc, r = aws_check(build_dir, tmp_path, kbmock, ports, certs, env, sts)
    assert rc == 0, r.stdout + r.stderr  # a warning: the mock STS does not refuse the skew
    step = aws_target(doc)["steps"][0]
    assert step["ok"] and step["warning"], step
    assert "clock skew" in step["detail"] and "NTP" in step["fix"], step
    assert "assumed-role/kbridge-msk/kbridge-env" in step["detail"], step
    no_secret(r, secret, token)


# --- IAM: the AWS credentials step, then the signed authentication per broker ---------------

@pytest.mark.parametrize("mech", ["AWS_MSK_IAM", "OAUTHBEARER"])
@pytest.mark.parametrize("good", [True, False], ids=["known-key", "unknown-key"])
def test_iam_authentication_step(build_dir, tmp_path, kbmock, ports, certs, sts, mech, good):
    """The doctor signs with the daemon's mechanism and the credentials its AWS step found; an
    MSK-like broker (kbmock + iam_verify) accepts a key it knows and refuses one it does not,
    and the fix then names the IAM policy."""
    key, secret = "ASIAEXAMPLEKEY0000003", "Zm9vYmFyYmF6cXV4RXhhbXBsZVNlY3JldEtleTEy"
    token = "IQoJb3JpZ2luX2VjIAMCHECKSESSIONTOKEN" + "z" * 200
    issue(sts, key, secret, token)
    creds = tmp_path / "iam-creds"
    creds.write_text(f"{key} {secret if good else secret[::-1]} {token} 0 "
                     f"arn:aws:sts::123456789012:assumed-role/kbridge-msk/kbridge-env\n")
    mock = kbmock(mode="msk", brokers=1, topics=["orders:1"], sasl_mechanisms=mech,
                  iam_credentials=creds, iam_region="eu-west-1")
    extra = {**FAST, "sasl_mechanism": mech, "aws_region": "eu-west-1",
             "aws_sts_endpoint": sts.url, "aws_ca_file": str(certs / "ca.pem")}
    ini = tmp_path / "check.ini"
    ini.write_text(cluster_ini("msk", [mock.brokers[1].advertised], ports(),
                               tls_ca=certs / "ca.pem", extra=extra))
    env = aws_env(tmp_path, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                  AWS_SESSION_TOKEN=token, NO_PROXY="127.0.0.1")
    r = run([str(build_dir / "kbridge"), "check", "--json", "-c", str(ini)], env=env, timeout=60)
    import json
    doc = json.loads(r.stdout)
    step = auth_step(only_target(doc))
    if good:
        assert r.returncode == 0, r.stdout + r.stderr
        assert step["ok"] and mech in step["detail"], step
    else:
        assert r.returncode == 1, r.stdout + r.stderr
        assert not step["ok"] and "kafka-cluster:Connect" in step["fix"], step
    no_secret(r, secret, secret[::-1], token)
