"""kbridge authenticates to the brokers for its clients (sasl_mechanism set, issue 14): real
clients with no security settings at all, through kbridge, to a SASL-enforcing kbmock that is a
strict RFC 5802 server (sasl_strict_nonce: kbridge's client-final must carry the combined nonce
exactly once). Also: refused credentials, KIP-368 re-authentication under steady produce, a
reload to new credentials, a client that tries SASL itself, and the readiness probe of a
passthrough section in front of a SASL cluster.
"""
import json
import os
import re
import shutil
import signal
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import (HERE, KCAT, SASL_USERS, cluster_ini, error_lines, free_port,
                      produce_steadily, run)

KAFKAJS_DIR = HERE / "kafkajs"
MECHS = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"


def write_secret(tmp_path, name, text, mode=0o600):
    p = tmp_path / name
    p.write_text(text)
    os.chmod(p, mode)
    return p


@pytest.fixture
def sasl_bridge(kbmock, kbridge, ports, certs, tmp_path):
    """start(mechanism, user="alice", password=None, admin=False, **mock_opts) ->
    (mock, kb, bootstrap, admin_port)."""

    def start(mechanism, user="alice", password=None, admin=False, extra=None, **mock_opts):
        mock_opts.setdefault("sasl_mechanisms", MECHS)
        mock_opts.setdefault("sasl_strict_nonce", True)
        mock = kbmock(mode="msk", brokers=2, topics=["orders:3"], **mock_opts)
        secret = write_secret(tmp_path, f"pw-{uuid.uuid4().hex[:6]}",
                              (password if password is not None else SASL_USERS[user]) + "\n")
        keys = {"sasl_mechanism": mechanism, "sasl_username": user,
                "sasl_password_file": secret, **(extra or {})}
        p = ports()
        ini = cluster_ini("msk", [b.advertised for b in mock.brokers.values()], p,
                          tls_ca=certs / "ca.pem", extra=keys)
        admin_port = None
        if admin:
            admin_port = free_port()
            ini = ini.replace("[global]\n", f"[global]\nadmin_listen = 127.0.0.1:{admin_port}\n")
        kb = kbridge(ini)
        return mock, kb, f"127.0.0.1:{p.listen}", admin_port

    return start


def kcat_produce(bootstrap, lines, topic="orders", extra=()):
    r = run([KCAT, "-P", "-b", bootstrap, "-t", topic, *extra], input="\n".join(lines) + "\n",
            timeout=40)
    assert r.returncode == 0, r.stderr
    return r


def kcat_consume_all(bootstrap, topic="orders"):
    r = run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"], timeout=40)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def assert_no_secret(kb, *secrets):
    text = kb.log_text()
    for s in secrets:
        assert s not in text, "a secret reached kbridge's log"


def test_kcat_produce_and_kafka_python_group_scram_sha_512(sasl_bridge):
    from kafka import KafkaConsumer

    mock, kb, bootstrap, _ = sasl_bridge("SCRAM-SHA-512")
    lines = [f"s512-{i}-{uuid.uuid4().hex[:6]}" for i in range(200)]
    kcat_produce(bootstrap, lines)
    consumer = KafkaConsumer("orders", bootstrap_servers=bootstrap,
                             group_id=f"kp-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                             request_timeout_ms=15000, session_timeout_ms=10000,
                             heartbeat_interval_ms=1000, api_version_auto_timeout_ms=5000)
    got = set()
    try:
        deadline = time.monotonic() + 45
        while len(got) < len(lines) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.update(r.value.decode() for r in records)
    finally:
        consumer.close()
    assert got == set(lines), f"group consumer got {len(got)} of {len(lines)}"
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0, s
    assert s["sasl_unauth_closes"] == 0 and s["sasl_nonce_quirks"] == 0, s
    assert re.search(r"authenticated|SCRAM-SHA-512", kb.log_text())
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())
    assert_no_secret(kb, SASL_USERS["alice"])


def test_confluent_kafka_scram_sha_256(sasl_bridge):
    from confluent_kafka import Consumer, Producer

    mock, kb, bootstrap, _ = sasl_bridge("SCRAM-SHA-256", user="bob")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    failures = []
    for i in range(300):
        producer.produce("orders", key=b"k%d" % i, value=b"v%d" % i,
                         on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(30) == 0 and not failures, failures[:3]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ck-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    got = set()
    try:
        consumer.subscribe(["orders"])
        deadline = time.monotonic() + 45
        while len(got) < 300 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.add(msg.key())
    finally:
        consumer.close()
    assert len(got) == 300, f"got {len(got)} of 300"
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0 and s["sasl_nonce_quirks"] == 0, s
    assert_no_secret(kb, SASL_USERS["bob"])


def test_kafkajs_group_plain(sasl_bridge):
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs is not installed: run `npm ci` in {KAFKAJS_DIR}")
    node = shutil.which("node") or shutil.which("nodejs")
    mock, kb, bootstrap, _ = sasl_bridge("PLAIN")
    port_base = int(bootstrap.rsplit(":", 1)[1]) + 1
    env = dict(os.environ, KB_BOOTSTRAP=bootstrap, KB_TOPIC="orders", KB_COUNT="200",
               KB_GROUP=f"kjs-{uuid.uuid4().hex[:8]}", KB_ADVERTISED_HOST="127.0.0.1",
               KB_PORT_BASE=str(port_base), KB_DEADLINE_MS="45000")
    env.pop("KB_SASL_MECHANISM", None)
    r = run([node, "roundtrip.js"], cwd=KAFKAJS_DIR, env=env, timeout=60)
    assert r.returncode == 0, f"roundtrip.js exit {r.returncode}\n{r.stderr[-4000:]}"
    assert "consumed 200 distinct of 200" in r.stderr, r.stderr[-2000:]
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0, s
    assert_no_secret(kb, SASL_USERS["alice"])


def test_wrong_password_is_named_backs_off_and_fails_readiness(sasl_bridge):
    mock, kb, bootstrap, admin = sasl_bridge("SCRAM-SHA-512", password="not-the-password",
                                             admin=True)
    line = kb.wait_log(r"authentication failed", timeout=15)
    assert "SCRAM-SHA-512" in line and "[msk]" in line, line
    assert "invalid credentials" in line, line  # the broker's own message
    assert "not-the-password" not in kb.log_text()
    # Clients keep retrying; kbridge backs off instead of hammering the broker.
    for _ in range(6):
        r = run([KCAT, "-L", "-b", bootstrap, "-m", "2"], timeout=20)
        assert r.returncode != 0
    failures = mock.stats()["sasl_failures"]
    assert failures <= 5, f"{failures} refused authentications in ~12 s: no back-off"
    assert "next attempt in" in kb.log_text()
    status, body = http_get(admin, "/readyz")
    assert status == 503, body
    assert "authentication failed" in body and "not-the-password" not in body, body
    status, metrics = http_get(admin, "/metrics")
    assert re.search(r'kbridge_upstream_failures_total\{cluster="msk",reason="auth"\} [1-9]',
                     metrics), metrics


def test_reauthentication_under_steady_produce(sasl_bridge):
    """KIP-368: 4-second sessions, 30 s of steady acks=all produce on the same connections:
    nothing lost, the broker closes no connection for an expired session, re-auths happened."""
    mock, kb, bootstrap, admin = sasl_bridge("SCRAM-SHA-512", admin=True, sasl_session_ms=4000)
    produce_steadily(bootstrap, "orders", 30, b"m")
    s = mock.stats()
    assert s["sasl_reauths"] >= 6, s  # >= 2 connections x 30 s / ~3.6 s, at the least
    assert s["sasl_expired_closes"] == 0, s
    status, metrics = http_get(admin, "/metrics")
    m = re.search(r'kbridge_reauthentications_total\{cluster="msk"\} (\d+)', metrics)
    assert m and int(m.group(1)) >= 6, metrics
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())[:3]


def test_reload_to_new_credentials(sasl_bridge, tmp_path):
    mock, kb, bootstrap, _ = sasl_bridge("PLAIN", user="alice")
    kcat_produce(bootstrap, ["before-reload"])
    secret = write_secret(tmp_path, "bob.json",
                          json.dumps({"username": "bob", "password": SASL_USERS["bob"]}))
    text = kb.ini_path.read_text()
    text = re.sub(r"sasl_username = alice", "sasl_username = bob", text)
    text = re.sub(r"sasl_password_file = .*", f"sasl_password_file = {secret}", text)
    kb.ini_path.write_text(text)
    kb.proc.send_signal(signal.SIGHUP)
    kb.wait_log("configuration reloaded")
    kcat_produce(bootstrap, ["after-reload"])
    assert set(kcat_consume_all(bootstrap)) >= {"before-reload", "after-reload"}
    log = mock.log_text()
    assert re.search(r"\bbob\b", log), "no connection authenticated as bob after the reload"
    assert_no_secret(kb, SASL_USERS["alice"], SASL_USERS["bob"])


def test_client_own_sasl_gets_a_kafka_error_telling_it_to_stop(sasl_bridge):
    mock, kb, bootstrap, _ = sasl_bridge("SCRAM-SHA-512")
    r = run([KCAT, "-L", "-b", bootstrap, "-m", "5", "-X", "security.protocol=SASL_PLAINTEXT",
             "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice",
             "-X", "sasl.password=client-side-secret"], timeout=30)
    assert r.returncode != 0
    assert "kbridge authenticates to the brokers itself" in r.stderr, r.stderr[-2000:]
    line = kb.wait_log(r"client sent its own SaslHandshake")
    assert "remove the SASL settings" in line
    assert "client-side-secret" not in kb.log_text()
    assert mock.stats()["sasl_failures"] == 0  # nothing of the client's SASL reached the broker


def test_passthrough_probe_stops_at_api_versions_on_a_sasl_cluster(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", brokers=2, topics=["orders:3"], sasl_mechanisms=MECHS)
    p = ports()
    admin = free_port()
    ini = cluster_ini("pt", [b.advertised for b in mock.brokers.values()], p,
                      tls_ca=certs / "ca.pem")
    ini = ini.replace("[global]\n", f"[global]\nadmin_listen = 127.0.0.1:{admin}\n")
    kb = kbridge(ini)
    kb.wait_log(r"requires SASL, which the clients do themselves")
    status, body = http_get(admin, "/readyz")
    assert status == 200, body
    assert "readiness probe failed" not in kb.log_text()
