#!/usr/bin/env python3
"""bench/auth_cost.py - what kbridge's own SASL costs (issue 14; a benchmark, not a test).

Two numbers, each for kbridge with and without origination in front of the same test cluster
(kbmock: librdkafka's mock brokers behind TLS fronts, with or without SASL enforcement; for
AWS_MSK_IAM it verifies the SigV4-signed payload as MSK does, static test credentials):
  - set-up time: a new client (confluent-kafka Producer) from creation to its first Produce
    answered: kbridge's upstream DNS + TCP + TLS (+ ApiVersions, SaslHandshake, SCRAM's two
    SaslAuthenticate rounds, or one signed IAM payload) and the client's own metadata round trip; median and p90;
  - kbridge's CPU seconds per GB relayed once authenticated (utime + stime from /proc of the
    kbridge process only), producing 1 KiB records.
Paths run in interleaved rounds (the VMs are shared and noisy: compare only within one run).
Usage: /usr/bin/python3 bench/auth_cost.py BUILD_DIR [ROUNDS]   (prints a Markdown table)
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SETUPS = 15          # new clients per round and path
MB = 100             # MiB produced per round and path for the CPU figure
USER, PASSWORD = "bench", "bench-secret-1"
PATHS = ("tls", "scram-sha-512", "scram-sha-256", "plain", "aws_msk_iam")
IAM_KEY, IAM_SECRET = "AKIABENCHKEY00000001", "benchSecretKey0000000000000000000000000000"
REGION = "us-east-1"


def free_port_block(n):
    for base in range(31000, 39000, 100):
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise SystemExit("no free ports")


def start_mock(tmp, mech):
    cmd = [f"{BUILD}/kbmock", "--certs", f"{BUILD}/certs", "--brokers", "1", "--topic",
           "bench:1"]
    if mech == "aws_msk_iam":
        creds = os.path.join(tmp, "iam-creds")
        with open(creds, "w") as f:
            f.write(f"{IAM_KEY} {IAM_SECRET} - 0 arn:aws:iam::123456789012:user/bench\n")
        cmd += ["--sasl-mechanisms", "AWS_MSK_IAM", "--iam-credentials", creds, "--iam-region",
                REGION]
    elif mech != "tls":
        cmd += ["--sasl-mechanisms", "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", "--sasl-user",
                f"{USER}:{PASSWORD}", "--sasl-strict-nonce"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    brokers = []
    for line in p.stdout:
        if line.startswith("BROKER "):
            brokers.append(line.split()[2].split("=", 1)[1])
        if line.strip() == "READY":
            break
    return p, brokers


def start_kbridge(tmp, brokers, mech):
    base = free_port_block(4)
    ini = [f"[global]", "log_level = info", "", "[bench]",
           f"bootstrap_servers = {','.join(brokers)}", f"listen = 127.0.0.1:{base}",
           f"broker_port_base = {base + 1}", "max_node_id = 2",
           f"tls_ca_file = {BUILD}/certs/ca.pem"]
    env = dict(os.environ)
    if mech == "aws_msk_iam":
        ini += ["sasl_mechanism = AWS_MSK_IAM", f"aws_region = {REGION}"]
        env.update(AWS_ACCESS_KEY_ID=IAM_KEY, AWS_SECRET_ACCESS_KEY=IAM_SECRET,
                   AWS_EC2_METADATA_DISABLED="true")
        env.pop("AWS_SESSION_TOKEN", None)
    elif mech != "tls":
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pw, 0o600)
        ini += [f"sasl_mechanism = {mech.upper()}", f"sasl_username = {USER}",
                f"sasl_password_file = {pw}"]
    path = os.path.join(tmp, f"kb-{mech}.ini")
    with open(path, "w") as f:
        f.write("\n".join(ini) + "\n")
    log = open(os.path.join(tmp, f"kb-{mech}.log"), "w")
    p = subprocess.Popen([f"{BUILD}/kbridge", "-c", path], stdout=log, stderr=subprocess.STDOUT,
                         env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(log.name) as f:
            if "kbridge ready" in f.read():
                return p, f"127.0.0.1:{base}"
        time.sleep(0.05)
    raise SystemExit(f"kbridge ({mech}) did not start")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup_times(bootstrap):
    from confluent_kafka import Producer
    out = []
    for _ in range(SETUPS):
        t0 = time.perf_counter()
        done = []
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
        p.produce("bench", b"x", on_delivery=lambda err, msg: done.append(err))
        p.flush(15)
        if done != [None]:
            raise SystemExit(f"set-up produce failed: {done}")
        out.append(time.perf_counter() - t0)
    return out


def cpu_per_gb(kb, bootstrap):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "1",
                  "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20})
    p.produce("bench", b"warm")
    p.flush(15)
    value = b"v" * 1024
    n = MB * 1024
    before = cpu_seconds(kb.pid)
    for _ in range(n):
        while True:
            try:
                p.produce("bench", value)
                break
            except BufferError:
                p.poll(0.01)
    if p.flush(120) != 0:
        raise SystemExit("bulk produce did not finish")
    return (cpu_seconds(kb.pid) - before) / (n * 1024 / 1e9)


def main():
    setup = {m: [] for m in PATHS}
    cpu = {m: [] for m in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            for mech in PATHS:  # interleaved: every path once per round
                mock, brokers = start_mock(tmp, mech)
                kb, bootstrap = start_kbridge(tmp, brokers, mech)
                try:
                    setup[mech] += setup_times(bootstrap)
                    cpu[mech].append(cpu_per_gb(kb, bootstrap))
                finally:
                    kb.send_signal(signal.SIGTERM)
                    kb.wait(20)
                    mock.stdin.close()
                    mock.wait(20)
    print(f"| path | set-up median ms | set-up p90 ms | kbridge CPU-s/GB (median, range) |")
    print("|---|---:|---:|---|")
    for mech in PATHS:
        s = sorted(setup[mech])
        c = sorted(cpu[mech])
        print(f"| {mech} | {statistics.median(s) * 1000:.1f} | {s[int(len(s) * 0.9)] * 1000:.1f} "
              f"| {statistics.median(c):.2f} ({c[0]:.2f}-{c[-1]:.2f}) |")
    print(f"\n{ROUNDS} interleaved rounds; {SETUPS} new clients and {MB} MiB of 1 KiB records "
          f"per round and path; kbmock with 1 broker on this machine.")


if __name__ == "__main__":
    main()
