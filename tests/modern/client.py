#!/usr/bin/python3
"""client.py - confluent-kafka-python clients for tests/modern.

Run as a subprocess by the tests so that LD_LIBRARY_PATH (librdkafka 2.12) and LD_PRELOAD
(connect_recorder.so) apply to the client alone, never to pytest, kbridge or kbmock.

  client.py produce BOOTSTRAP TOPIC [--count N] [--interval-ms MS]
      Produces key "k<seq>" (value: 100 bytes derived from the key) every MS ms until stdin
      reaches EOF (or N messages), then flushes (idempotent producer, acks=all).
  client.py consume BOOTSTRAP TOPIC
      assign()s every partition from the beginning and consumes until stdin has said
      "EXPECT <n>" and n distinct keys arrived.
  client.py group BOOTSTRAP TOPIC GROUP N
      A consumer group (subscribe) that reads until N distinct keys arrived, then commits.

stdout, line-buffered: "READY <librdkafka version>", "PROGRESS <n>" whenever the count of
delivered (produce) or distinct consumed keys changes (at most every 50 ms), and a last line
"RESULT <json>". librdkafka's own log goes to stderr. Exit 0 unless the client could not run.
"""
import argparse
import json
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

COMMON = {
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 1000,  # a broker back up is found again within a second
    "socket.connection.setup.timeout.ms": 5000,
    "log.connection.close": False,
}
FINISH_DEADLINE = 45  # seconds to flush or to get the expected messages after stdin says so


def value_of(key):
    return (key * 20)[:100]


class Progress:
    def __init__(self):
        self.last = -1
        self.at = 0.0

    def report(self, n, force=False):
        now = time.monotonic()
        if n != self.last and (force or now - self.at >= 0.05):
            print(f"PROGRESS {n}", flush=True)
            self.last, self.at = n, now


class Stdin:
    """Reads stdin on a thread: `eof` is set at EOF, `expect` holds the last EXPECT n."""

    def __init__(self):
        self.eof = threading.Event()
        self.expect = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "EXPECT":
                self.expect = int(parts[1])
        self.eof.set()


def extra_conf(args):
    conf = dict(COMMON)
    for kv in args.conf or ():
        k, v = kv.split("=", 1)
        conf[k] = v
    return conf


def produce(args):
    errors, delivered, offsets = [], [], {}
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True, **extra_conf(args)})

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{msg.key().decode()}: {err}")
        else:
            delivered.append(msg.key().decode())
            offsets.setdefault(msg.partition(), []).append(msg.offset())

    stdin = Stdin()
    progress = Progress()
    print(f"READY {confluent_kafka.libversion()[0]}", flush=True)
    sent = 0
    next_at = time.monotonic()
    while not stdin.eof.is_set() and (args.count is None or sent < args.count):
        key = f"k{sent:06d}".encode()
        try:
            producer.produce(args.topic, key=key, value=value_of(key), on_delivery=on_delivery)
            sent += 1
        except BufferError:
            pass  # queue full: poll below makes room
        producer.poll(0)
        progress.report(len(delivered))
        if args.interval_ms:
            next_at += args.interval_ms / 1000.0
            time.sleep(max(0.0, next_at - time.monotonic()))
    deadline = time.monotonic() + FINISH_DEADLINE
    while len(producer) > 0 and time.monotonic() < deadline:
        producer.poll(0.1)
        progress.report(len(delivered))
    left = producer.flush(1)
    progress.report(len(delivered), force=True)
    dup_offsets = sum(len(v) - len(set(v)) for v in offsets.values())
    print("RESULT " + json.dumps({
        "libversion": confluent_kafka.libversion()[0], "sent": sent,
        "delivered": len(delivered), "distinct_delivered": len(set(delivered)),
        "undelivered": left, "errors": errors[:20], "error_count": len(errors),
        "partitions": sorted(offsets), "duplicate_offsets": dup_offsets}), flush=True)


def consume_loop(consumer, stdin_or_n, progress):
    """Polls until the expected number of distinct keys arrived; returns (keys, errors, bad)."""
    keys, errors, bad = set(), [], []
    deadline = None
    while True:
        expect = stdin_or_n if isinstance(stdin_or_n, int) else stdin_or_n.expect
        if expect is not None:
            if len(keys) >= expect:
                break
            if deadline is None:
                deadline = time.monotonic() + FINISH_DEADLINE
            elif time.monotonic() > deadline:
                break
        msg = consumer.poll(0.1)
        if msg is not None:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    errors.append(str(msg.error()))
            else:
                keys.add(msg.key())
                if msg.value() != value_of(msg.key()):
                    bad.append(msg.key().decode())
        progress.report(len(keys))
    progress.report(len(keys), force=True)
    return keys, errors, bad


def consume(args):
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "modern-assign",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         **extra_conf(args)})
    md = consumer.list_topics(args.topic, timeout=10)
    parts = sorted(md.topics[args.topic].partitions)
    consumer.assign([TopicPartition(args.topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in parts])
    stdin = Stdin()
    print(f"READY {confluent_kafka.libversion()[0]}", flush=True)
    keys, errors, bad = consume_loop(consumer, stdin, Progress())
    consumer.close()
    print("RESULT " + json.dumps({
        "libversion": confluent_kafka.libversion()[0], "partitions": parts,
        "distinct": len(keys), "expected": stdin.expect, "errors": errors[:20],
        "bad_values": bad[:20]}), flush=True)


def group(args):
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000, **extra_conf(args)})
    consumer.subscribe([args.topic])
    print(f"READY {confluent_kafka.libversion()[0]}", flush=True)
    keys, errors, bad = consume_loop(consumer, args.n, Progress())
    committed = None
    try:
        consumer.commit(asynchronous=False)
        committed = sum(tp.offset for tp in consumer.committed(consumer.assignment(), timeout=10)
                        if tp.offset >= 0)
    except confluent_kafka.KafkaException as e:
        errors.append(f"commit: {e}")
    consumer.close()
    print("RESULT " + json.dumps({
        "libversion": confluent_kafka.libversion()[0], "distinct": len(keys),
        "expected": args.n, "committed": committed, "errors": errors[:20],
        "bad_values": bad[:20]}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--count", type=int)
    p.add_argument("--interval-ms", type=float, default=10)
    c = sub.add_parser("consume")
    g = sub.add_parser("group")
    for s in (p, c, g):
        s.add_argument("bootstrap")
        s.add_argument("topic")
        s.add_argument("-X", dest="conf", action="append", help="librdkafka key=value")
    g.add_argument("group")
    g.add_argument("n", type=int)
    args = ap.parse_args()
    {"produce": produce, "consume": consume, "group": group}[args.mode](args)


if __name__ == "__main__":
    main()
