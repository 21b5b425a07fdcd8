"""Operating kbridge: the admin endpoint (/healthz, /readyz, /metrics scraped with curl),
SIGHUP reload (valid and invalid, during a live consumer group), SIGTERM drain with produce
requests in flight, and JSON logs. Real clients, real TLS (msk-mode kbmock)."""
import json
import signal
import threading
import time
import uuid

import pytest

from conftest import cluster_ini, free_port, run

N_PRODUCE = 20000


def curl(url, timeout=10):
    """(status code, body) of GET url with curl."""
    r = run(["curl", "-s", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", url],
            timeout=timeout + 5)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def metrics(admin):
    """The /metrics text parsed into {'name{labels}': value}."""
    code, body = curl(f"http://{admin}/metrics")
    assert code == 200, body
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def ini_with_admin(mock, p, certs, admin, extra=None, name="msk", log_format=None):
    text = cluster_ini(name, [b.advertised for b in mock.brokers.values()], p,
                       tls_ca=certs / "ca.pem", extra=extra, log_level="info")
    head = f"[global]\nadmin_listen = {admin}\ndrain_timeout_ms = 15000\n"
    if log_format:
        head += f"log_format = {log_format}\n"
    return text.replace("[global]\n", head, 1)


@pytest.fixture
def operated(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:6"])
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    kb = kbridge(ini_with_admin(mock, p, certs, admin))
    return mock, p, admin, kb


def wait_ready(admin, want=200, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        code, body = curl(f"http://{admin}/readyz")
        if code == want:
            return json.loads(body)
        if time.monotonic() > deadline:
            pytest.fail(f"/readyz stayed {code}: {body}")
        time.sleep(0.2)


def test_healthz_readyz_and_metrics_move_with_traffic(operated):
    mock, p, admin, kb = operated
    assert curl(f"http://{admin}/healthz") == (200, "ok\n")
    ready = wait_ready(admin)
    assert ready["ready"] is True and ready["clusters"][0]["name"] == "msk"
    # The readiness probe already learnt the brokers: their listeners are open.
    kb.wait_log(r"broker 3 served at 127\.0\.0\.1:%d" % p.node(3))
    assert curl(f"http://{admin}/nope")[0] == 404

    before = metrics(admin)
    lines = "".join(f"m-{i}\n" for i in range(300))
    r = run(["kcat", "-b", f"127.0.0.1:{p.listen}", "-P", "-t", "orders"], input=lines, timeout=30)
    assert r.returncode == 0, r.stderr
    after = metrics(admin)

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)

    assert delta('kbridge_client_connections_total{cluster="msk"}') >= 2
    assert delta('kbridge_requests_total{cluster="msk",api="Produce"}') >= 1
    assert delta('kbridge_responses_rewritten_total{cluster="msk",api="Metadata"}') >= 1
    assert delta('kbridge_addresses_rewritten_total{cluster="msk"}') >= 3
    assert delta('kbridge_bytes_total{cluster="msk",direction="up"}') > 300 * 6
    assert delta('kbridge_request_seconds_count{cluster="msk"}') >= 2
    assert after['kbridge_upstream_connect_seconds_count{cluster="msk"}'] >= 2
    assert after['kbridge_tls_weakened{cluster="msk"}'] == 0
    assert after['kbridge_client_connections_active{cluster="msk"}'] == 0


def test_readyz_503_names_the_cause_when_upstream_is_down(kbridge, ports, certs):
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    dead = free_port()
    text = cluster_ini("down", [f"127.0.0.1:{dead}"], p, tls_ca=certs / "ca.pem",
                       log_level="info")
    kb = kbridge(text.replace("[global]\n", f"[global]\nadmin_listen = {admin}\n", 1))
    kb.wait_log(r"readiness probe failed")
    code, body = curl(f"http://{admin}/readyz")
    assert code == 503, body
    doc = json.loads(body)
    assert doc["ready"] is False
    assert "connection refused" in doc["clusters"][0]["reason"]
    assert f"127.0.0.1:{dead}" in doc["clusters"][0]["reason"]
    m = metrics(admin)
    assert m['kbridge_upstream_failures_total{cluster="down",reason="refused"}'] >= 1


def test_reload_rejects_invalid_config_and_keeps_serving(operated):
    mock, p, admin, kb = operated
    good = kb.ini_path.read_text()
    kb.ini_path.write_text(good + "tls_verfy = full\n")
    kb.proc.send_signal(signal.SIGHUP)
    line = kb.wait_log(r"reload rejected")
    assert f"{kb.ini_path}:" in line and "unknown key 'tls_verfy'" in line
    assert "did you mean 'tls_verify'" in line
    r = run(["kcat", "-L", "-b", f"127.0.0.1:{p.listen}", "-m", "10"], timeout=30)
    assert r.returncode == 0 and "3 brokers" in r.stdout, r.stdout + r.stderr
    m = metrics(admin)
    assert m['kbridge_config_reloads_total{result="failed"}'] == 1
    assert m['kbridge_config_reloads_total{result="ok"}'] == 0


def test_reload_during_consumer_group_causes_no_client_error(operated, ports, certs):
    from confluent_kafka import Consumer, Producer

    mock, p, admin, kb = operated
    bootstrap = f"127.0.0.1:{p.listen}"
    topic_msgs = [f"reload-{i}".encode() for i in range(2000)]
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "error_cb": lambda e: errors.append(("producer", str(e)))})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                         "error_cb": lambda e: errors.append(("consumer", str(e)))})
    consumer.subscribe(["orders"])
    got = set()
    stop = threading.Event()

    def consume():
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                got.add(msg.value())
            elif msg is not None:
                errors.append(("consumer", str(msg.error())))

    t = threading.Thread(target=consume)
    t.start()
    try:
        second = ports()
        for i, v in enumerate(topic_msgs):
            producer.produce("orders", v)
            producer.poll(0)
            if i == len(topic_msgs) // 2:
                producer.flush(20)
                # Add a cluster, change TLS and timeout settings of the running one.
                new = kb.ini_path.read_text().replace("log_level = info",
                                                      "log_level = debug")
                new += "connect_timeout_ms = 7000\ntls_verify = full\n"
                new += (f"\n[second]\nbootstrap_servers = {mock.bootstrap[0]}\n"
                        f"listen = 127.0.0.1:{second.listen}\nmax_node_id = {second.max_node_id}\n"
                        f"tls_ca_file = {certs / 'ca.pem'}\n")
                kb.ini_path.write_text(new)
                kb.proc.send_signal(signal.SIGHUP)
                kb.wait_log(r"configuration reloaded: 2 clusters")
        assert producer.flush(30) == 0
        deadline = time.monotonic() + 40
        while len(got & set(topic_msgs)) < len(topic_msgs) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        t.join(10)
        consumer.close()
    assert errors == [], errors
    assert len(got & set(topic_msgs)) == len(topic_msgs)
    # The new cluster serves too.
    r = run(["kcat", "-L", "-b", f"127.0.0.1:{second.listen}", "-m", "10"], timeout=30)
    assert r.returncode == 0 and "3 brokers" in r.stdout, r.stdout + r.stderr
    assert metrics(admin)['kbridge_config_reloads_total{result="ok"}'] == 1


def test_sigterm_drains_and_loses_no_acknowledged_produce(kbmock, kbridge, ports, certs):
    """Produce continuously with acks=all, SIGTERM kbridge mid-stream, start a new kbridge on
    the same ports, let the producer finish: every message the producer saw acknowledged is
    in the topic."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    mock = kbmock(mode="msk", topics=["drain:1"])
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    text = ini_with_admin(mock, p, certs, admin)
    kb1 = kbridge(text)
    bootstrap = f"127.0.0.1:{p.listen}"
    acked, failed = set(), []

    def report(err, msg):
        if err is None:
            acked.add(msg.value())
        else:
            failed.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                         "enable.idempotence": True, "message.timeout.ms": 60000,
                         "reconnect.backoff.max.ms": 500})
    values = [f"d-{i}".encode() for i in range(N_PRODUCE)]
    sent_at_term = None
    for i, v in enumerate(values):
        producer.produce("drain", v, on_delivery=report)
        producer.poll(0)
        if i == N_PRODUCE // 4:
            producer.flush(20)
        if i == N_PRODUCE // 3:
            sent_at_term = len(acked)
            kb1.proc.send_signal(signal.SIGTERM)
    assert kb1.proc.wait(20) == 0
    log1 = kb1.log_text()
    assert "received SIGTERM" in log1
    # Connections with produce requests in flight were drained, not cut.
    assert "closed: drained:" in log1, log1[-4000:]
    assert "drain_timeout_ms" not in log1 and "kbridge stopped" in log1
    kb2 = kbridge(text)  # same ports: the producer reconnects and retries what was not acked
    assert producer.flush(60) == 0
    assert failed == [], failed[:5]
    assert sent_at_term and len(acked) == N_PRODUCE

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "drain-check",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition("drain", 0, 0)])
    found = []
    deadline = time.monotonic() + 40
    while len(found) < len(acked) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            found.append(msg.value())
    consumer.close()
    missing = acked - set(found)
    assert not missing, f"{len(missing)} acknowledged messages missing, e.g. {sorted(missing)[:5]}"
    assert len(found) == len(set(found)), "idempotent producer: no duplicates expected"
    assert kb2.proc.poll() is None


def test_json_logs_are_one_object_per_line(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk")
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    kb = kbridge(ini_with_admin(mock, p, certs, admin, log_format="json"))
    r = run(["kcat", "-P", "-b", f"127.0.0.1:{p.listen}", "-t", "orders"],
            input="".join(f"j-{i}\n" for i in range(60)), timeout=30)
    assert r.returncode == 0, r.stderr
    kb.wait_log(r'node \d+","msg":"closed: client closed the connection')
    docs = [json.loads(line) for line in kb.log_text().splitlines() if line.strip()]
    # Each connection line names its cluster, a connection id and the broker it serves.
    conns = [d.get("conn", "") for d in docs if d.get("cluster") == "msk" and "conn" in d]
    assert any(c.startswith("C#") and c.endswith(" bootstrap") for c in conns), conns
    assert any(c.startswith("C#") and " node " in c for c in conns), conns
    assert all({"ts", "level", "msg"} <= set(d) for d in docs)
    text = kb.log_text()
    for secret_word in ("BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY"):
        assert secret_word not in text
