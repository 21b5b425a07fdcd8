"""Clients' own SASL through kbridge in passthrough mode (no sasl_* keys: kbridge forwards the
client's SaslHandshake/SaslAuthenticate untouched) to a SASL-enforcing kbmock (issue 14).

The client speaks plaintext SASL to kbridge (security.protocol=SASL_PLAINTEXT) and kbridge
carries it over verified TLS. SaslHandshake v1 + SaslAuthenticate frames are ordinary Kafka
requests; after a SaslHandshake **v0** the client sends raw length-prefixed SASL tokens with no
Kafka header, which kbridge must relay as opaque frames until authentication completes.
kafka-python 2.0.2 (Debian's) always uses v0; librdkafka and kafkajs use it when the broker
offers SaslHandshake v0 only (kbmock --sasl-handshake-v0-only).
"""
import os
import shutil
import uuid

import pytest

import sasl_wire as sw
from conftest import HERE, KCAT, SASL_USERS, cluster_ini, kafka_python_roundtrip, run

ALICE = ("alice", SASL_USERS["alice"])
KAFKAJS_DIR = HERE / "kafkajs"


@pytest.fixture
def passthrough(kbmock, kbridge, ports, certs):
    """start(**sasl) -> (mock, bootstrap): a SASL kbmock (msk mode, 2 brokers, orders:3) behind
    a ready kbridge with no SASL configuration."""

    def start(**sasl):
        sasl.setdefault("sasl_mechanisms", "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN")
        mock = kbmock(mode="msk", brokers=2, topics=["orders:3"], **sasl)
        p = ports()
        kbridge(cluster_ini("sasl", [b.advertised for b in mock.brokers.values()], p,
                            tls_ca=certs / "ca.pem"))
        return mock, f"127.0.0.1:{p.listen}"

    return start


def kcat_sasl(mech):
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mech}",
            "-X", f"sasl.username={ALICE[0]}", "-X", f"sasl.password={ALICE[1]}"]


def kcat_roundtrip(bootstrap, mech, n=100):
    lines = [f"pt-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    r = run([KCAT, "-P", "-b", bootstrap, "-t", "orders", *kcat_sasl(mech)],
            input="\n".join(lines) + "\n", timeout=40)
    assert r.returncode == 0, r.stderr
    r = run([KCAT, "-C", "-b", bootstrap, "-t", "orders", "-o", "beginning", "-e", "-q",
             *kcat_sasl(mech)], timeout=40)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(lines)


def test_kcat_scram_handshake_v1_through_kbridge(passthrough):
    mock, bootstrap = passthrough()
    kcat_roundtrip(bootstrap, "SCRAM-SHA-512")
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0, s
    assert s["sasl_v0_auths"] == 0, s  # v1 + SaslAuthenticate frames, not raw tokens


def test_wire_scram_v0_raw_tokens_through_kbridge(passthrough):
    """The raw-token exchange by itself, with the test wire client: handshake v0, two raw
    tokens each way, then a Kafka request."""
    mock, bootstrap = passthrough()
    host, port = bootstrap.rsplit(":", 1)
    with sw.KafkaConn(host, int(port)) as c:
        assert c.handshake("SCRAM-SHA-512", version=0)[0] == 0
        sc = sw.ScramClient("SCRAM-SHA-512", *ALICE)
        assert sc.verify(c.raw_token(sc.client_final(c.raw_token(sc.client_first()))))
        assert c.metadata() == 2
    assert mock.stats()["sasl_v0_auths"] == 1


def test_kafka_python_scram_v0_through_kbridge(passthrough):
    """kafka-python 2.0.2 always authenticates with SaslHandshake v0 and raw tokens."""
    mock, bootstrap = passthrough()
    common = dict(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=ALICE[0],
                  sasl_plain_password=ALICE[1], request_timeout_ms=10000,
                  api_version_auto_timeout_ms=5000)
    kafka_python_roundtrip(common, "orders", 1)
    s = mock.stats()
    assert s["sasl_v0_auths"] >= 2 and s["sasl_failures"] == 0, s


def test_librdkafka_raw_tokens_with_a_v0_only_broker_through_kbridge(passthrough):
    """A broker offering SaslHandshake v0 only makes librdkafka use raw tokens too."""
    mock, bootstrap = passthrough(sasl_v0_only=True)
    kcat_roundtrip(bootstrap, "SCRAM-SHA-256", n=50)
    s = mock.stats()
    assert s["sasl_v0_auths"] >= 2 and s["sasl_v0_auths"] == s["sasl_auths"], s


@pytest.mark.parametrize("v0_only", [False, True], ids=["handshake-v1", "v0-only-broker"])
def test_kafkajs_scram_through_kbridge(passthrough, v0_only):
    """kafkajs SCRAM-SHA-512 through kbridge; against a v0-only broker it sends raw tokens."""
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs is not installed: run `npm ci` in {KAFKAJS_DIR}")
    mock, bootstrap = passthrough(sasl_v0_only=v0_only)
    env = dict(os.environ, KB_BOOTSTRAP=bootstrap, KB_TOPIC="orders", KB_COUNT="100",
               KB_SASL_MECHANISM="SCRAM-SHA-512", KB_SASL_USERNAME=ALICE[0],
               KB_SASL_PASSWORD=ALICE[1], KB_GROUP=f"kjs-{uuid.uuid4().hex[:6]}",
               KB_DEADLINE_MS="45000")
    r = run([shutil.which("node") or "node", str(KAFKAJS_DIR / "roundtrip.js")], timeout=60,
            env=env)
    assert r.returncode == 0, r.stderr
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0, s
    assert s["sasl_v0_auths"] == (s["sasl_auths"] if v0_only else 0), s
