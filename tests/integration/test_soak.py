"""Fault soak: an idempotent producer with acks=all sends small messages through kbridge while
every upstream TLS connection is cut every few seconds, and in between the brokers' TLS
endpoints are taken down and up in turn (connections cut, new ones refused until it is back). A consumer then reads the topic:
every message the producer saw acknowledged must be there.

Messages are paced over KB_SOAK_SECONDS so that faults hit a steady stream. `make test` runs
200,000 messages over 40 s; `make soak` runs 1,000,000 over 120 s. Loopback only, bounded."""
import os
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import cluster_ini

N = int(os.environ.get("KB_SOAK_MESSAGES", "200000"))
SECONDS = float(os.environ.get("KB_SOAK_SECONDS", "40"))
PARTITIONS = 12                     # the mock keeps ~5 MB per partition: stay well below
FAULT_EVERY = 2.0                   # seconds between faults
DEADLINE = SECONDS + 60             # seconds for the produce phase, flush included


def test_soak_no_acknowledged_message_lost(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=[f"soak:{PARTITIONS}"])
    p = ports()
    kb = kbridge(cluster_ini("soak", mock.bootstrap, p, tls_ca=certs / "ca.pem",
                             log_level="info"))
    bootstrap = f"127.0.0.1:{p.listen}"
    acked, failed = [], []

    def report(err, msg):
        if err is None:
            acked.append(msg.value())
        else:
            failed.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": int(DEADLINE * 1000),
                         "queue.buffering.max.messages": 200000,
                         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    stop = threading.Event()
    faults, inject_errors = [], []

    def inject():
        """Every FAULT_EVERY s: cut every upstream TLS connection (odd ticks), or take the next
        broker down for 0.7 s (even ticks: its connections are cut and new ones refused)."""
        try:
            inject_faults()
        except BaseException as e:  # pytest.fail() too; surfaced by the main thread
            inject_errors.append(repr(e))

    def inject_faults():
        tick, broker = 0, 0
        while not stop.wait(FAULT_EVERY):
            tick += 1
            if tick % 2:
                assert mock.command("drop").startswith("OK drop"), "kbmock drop"
                faults.append("drop")
                continue
            broker = broker % len(mock.brokers) + 1
            assert mock.command(f"down {broker}").startswith("OK"), "kbmock down"
            faults.append(f"down {broker}")
            stop.wait(0.7)
            assert mock.command(f"up {broker}").startswith("OK"), "kbmock up"

    t = threading.Thread(target=inject)
    t.start()
    t0 = time.monotonic()
    try:
        for i in range(N):
            while True:
                try:
                    producer.produce("soak", b"s-%08d" % i, on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 1000 == 0:
                producer.poll(0)
                ahead = t0 + SECONDS * i / N - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # pace the stream across the soak
            assert time.monotonic() - t0 < DEADLINE, f"produce phase over {DEADLINE:.0f} s"
        remaining = producer.flush(max(10.0, DEADLINE - (time.monotonic() - t0)))
    finally:
        stop.set()
        t.join(10)
    produce_s = time.monotonic() - t0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak-check",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition("soak", i, 0) for i in range(PARTITIONS)])
    found = []
    want = len(acked)
    t1 = time.monotonic()
    while len(set(found)) < want and time.monotonic() - t1 < 60:
        for msg in consumer.consume(10000, 0.5):
            if not msg.error():
                found.append(msg.value())
    consumer.close()

    found_set = set(found)
    missing = set(acked) - found_set
    duplicates = len(found) - len(found_set)
    print(f"soak: sent={N} acked={len(acked)} failed={len(failed)} unflushed={remaining} "
          f"found={len(found_set)} duplicates={duplicates} missing={len(missing)} "
          f"faults={len(faults)} produce={produce_s:.1f}s")
    assert not inject_errors, inject_errors
    assert "drop" in faults and any(f.startswith("down") for f in faults), faults
    assert not missing, f"{len(missing)} acknowledged messages missing, e.g. {sorted(missing)[:5]}"
    assert len(acked) == N and remaining == 0 and not failed, failed[:5]
    log = kb.log_text()
    assert "connection refused" in log      # a broker that was down, named as such
    assert "broker closed the connection" in log   # the cuts, seen from kbridge
