"""Real client libraries through kbridge (msk-mode kbmock behind it): kafka-python,
confluent-kafka-python and kafkajs, each producing and then consuming in a consumer group, so
FindCoordinator, JoinGroup/SyncGroup, OffsetCommit and Fetch all cross kbridge.

kafka-python and confluent-kafka are Debian's python3-kafka / python3-confluent-kafka, importable
only by /usr/bin/python3 (the interpreter `make integration-test` uses).
"""
import os
import shutil
import time
import uuid

import pytest

from conftest import HERE, cluster_ini, error_lines, run

N_MESSAGES = 500
GROUP_DEADLINE = 45  # seconds to get every message back in a group (first join alone is ~3 s)


@pytest.fixture
def bridged(kbmock, kbridge, ports, certs):
    """An msk-mode kbmock (3 brokers, orders:6) behind a ready kbridge: (mock, ports, bootstrap)."""
    mock = kbmock(mode="msk", topics=["orders:6"])
    p = ports()
    kb = kbridge(cluster_ini("msk", [b.advertised for b in mock.brokers.values()], p,
                             tls_ca=certs / "ca.pem"))
    yield mock, p, f"127.0.0.1:{p.listen}"
    assert not error_lines(kb.log_text()), error_lines(kb.log_text())


def message(i):
    return b"k%04d" % i, b"value-%d-%s" % (i, uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex.encode())


def assert_kbridge_broker(p, node_id, host, port, what):
    assert (host, port) == ("127.0.0.1", p.node(node_id)), \
        f"{what}: node {node_id} at {host}:{port}, expected 127.0.0.1:{p.node(node_id)}"


# --- kafka-python --------------------------------------------------------------------------------

def test_kafka_python_metadata_lists_only_kbridge(bridged):
    from kafka import KafkaConsumer

    mock, p, bootstrap = bridged
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                             api_version_auto_timeout_ms=5000)
    try:
        assert "orders" in consumer.topics()
        brokers = consumer._client.cluster.brokers()
        assert {b.nodeId for b in brokers} == set(mock.brokers), brokers
        for b in brokers:
            assert_kbridge_broker(p, b.nodeId, b.host, b.port, "kafka-python metadata")
            assert b.port not in mock.ports()
        assert len(consumer.partitions_for_topic("orders")) == 6
    finally:
        consumer.close()


def test_kafka_python_producer_and_group(bridged):
    from kafka import KafkaConsumer, KafkaProducer

    mock, p, bootstrap = bridged
    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                             api_version_auto_timeout_ms=5000, linger_ms=5)
    try:
        futures = [producer.send("orders", key=k, value=v)
                   for k, v in (message(i) for i in range(N_MESSAGES))]
        producer.flush(timeout=20)
        partitions = {f.get(timeout=10).partition for f in futures}
    finally:
        producer.close(timeout=5)
    assert len(partitions) > 1, "all messages went to one partition: only one broker exercised"

    group = f"kp-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer("orders", bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             request_timeout_ms=15000, session_timeout_ms=10000,
                             heartbeat_interval_ms=1000, api_version_auto_timeout_ms=5000)
    got = {}
    try:
        deadline = time.monotonic() + GROUP_DEADLINE
        while len(got) < N_MESSAGES and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for rec in records:
                    got[rec.key] = rec.value
        consumer.commit()  # OffsetCommit through the coordinator kbridge advertised
        coordinator_id = consumer._client.cluster.coordinator_for_group(group)
        coordinator = consumer._client.cluster.broker_metadata(coordinator_id)
    finally:
        consumer.close()

    assert len(got) == N_MESSAGES, f"group consumer got {len(got)} of {N_MESSAGES}"
    assert all(got[k] == v for k, v in (message(i) for i in range(N_MESSAGES)))
    # FindCoordinator's answer was rewritten too ("coordinator-<id>" is kafka-python's node name)
    assert coordinator is not None, "no group coordinator known"
    node_id = int(str(coordinator.nodeId).replace("coordinator-", ""))
    assert_kbridge_broker(p, node_id, coordinator.host, coordinator.port, "FindCoordinator")


# --- confluent-kafka-python ----------------------------------------------------------------------

def test_confluent_kafka_producer_and_group(bridged):
    from confluent_kafka import Consumer, Producer

    mock, p, bootstrap = bridged
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    failures = []
    for i in range(N_MESSAGES):
        k, v = message(i)
        producer.produce("orders", key=k, value=v,
                         on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(20) == 0, "messages still queued after 20 s"
    assert not failures, failures[:3]
    md = producer.list_topics(timeout=10)
    assert set(md.brokers) == set(mock.brokers)
    for b in md.brokers.values():
        assert_kbridge_broker(p, b.id, b.host, b.port, "librdkafka metadata")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ck-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "enable.auto.commit": False})
    got = {}
    try:
        consumer.subscribe(["orders"])
        deadline = time.monotonic() + GROUP_DEADLINE
        while len(got) < N_MESSAGES and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert not msg.error() or msg.error().code() < 0, msg.error()  # <0: local events
            if not msg.error():
                got[msg.key()] = msg.value()
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert len(got) == N_MESSAGES, f"group consumer got {len(got)} of {N_MESSAGES}"
    assert all(got[k] == v for k, v in (message(i) for i in range(N_MESSAGES)))


# --- kafkajs -------------------------------------------------------------------------------------

KAFKAJS_DIR = HERE / "kafkajs"


def test_kafkajs_producer_and_group(bridged):
    mock, p, bootstrap = bridged
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        msg = (f"kafkajs is not installed: run `npm ci` in {KAFKAJS_DIR} "
               f"(the CI script does; node and npm are needed)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node not found on PATH"
    env = dict(os.environ, KB_BOOTSTRAP=bootstrap, KB_TOPIC="orders", KB_COUNT=str(N_MESSAGES),
               KB_GROUP=f"kjs-{uuid.uuid4().hex[:8]}", KB_ADVERTISED_HOST="127.0.0.1",
               KB_PORT_BASE=str(p.base), KB_DEADLINE_MS=str(GROUP_DEADLINE * 1000))
    r = run([node, "roundtrip.js"], cwd=KAFKAJS_DIR, env=env, timeout=GROUP_DEADLINE + 15)
    assert r.returncode == 0, f"roundtrip.js exit {r.returncode}\n{r.stderr[-4000:]}"
    assert f"consumed {N_MESSAGES} distinct of {N_MESSAGES}" in r.stderr, r.stderr
