"""Fixtures for kbridge's integration tests: kbmock (a TLS "MSK-like" cluster built on librdkafka's
mock brokers), kbridge itself, free ports, and bounded subprocess helpers for real Kafka clients.

Everything here is bounded in time: every wait has a deadline, every subprocess a timeout, and a
per-test watchdog (faulthandler) ends the run with a traceback if a test still hangs. Child
processes get PR_SET_PDEATHSIG so they die with pytest.

Environment: KB_BUILD = absolute build dir with kbridge, kbmock and certs/ (default: <repo>/build).
"""
import ctypes
import faulthandler
import json
import os
import queue
import shutil
import random
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BUILD = Path(os.environ.get("KB_BUILD") or REPO / "build").resolve()
TEST_TIMEOUT = float(os.environ.get("KB_TEST_TIMEOUT", "150"))  # seconds, whole test incl. fixtures
KCAT = "kcat"
# KB_VALGRIND=1 runs every kbridge under valgrind: any invalid access or leak makes it exit 97,
# which the kbridge fixture's "exit code 0 after SIGTERM" check turns into a failure.
VALGRIND = (["valgrind", "--quiet", "--error-exitcode=97", "--leak-check=full",
             "--errors-for-leak-kinds=definite,possible", "--show-leak-kinds=definite,possible"]
            if os.environ.get("KB_VALGRIND") else [])

# Causes kbridge puts in its one error line when an upstream connection fails.
CAUSES = (
    "DNS failure",
    "connection refused",
    "connect timed out",
    "certificate not trusted",
    "hostname mismatch",
    "certificate expired",
    "not TLS",
)

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """preexec_fn: SIGTERM the child if pytest dies (PR_SET_PDEATHSIG = 1)."""
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def run(cmd, timeout=30, input=None, env=None, cwd=None):
    """Runs cmd (list) with a hard timeout; returns CompletedProcess with text stdout/stderr."""
    try:
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=cwd, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"{cmd[0]} did not finish within {timeout}s: {' '.join(map(str, cmd))}\n"
                    f"stdout (tail): {out[-2000:]}\nstderr (tail): {err[-2000:]}")


def close_stdin_and_wait(proc, timeout):
    """Closes proc's stdin (our children exit or finish on EOF) and waits for it; kills it if it
    outlives timeout. Returns True when it exited by itself."""
    if proc.poll() is None:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return False


def error_lines(log_text):
    """kbridge log lines at error level (the level is the upper-case word ERROR)."""
    return [l for l in log_text.splitlines() if re.search(r"\bERROR\b", l)]


# --- watchdog and failure reports ----------------------------------------------------------------

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture(autouse=True)
def _watchdog():
    """Hard per-test limit: dump every thread's stack and exit if a test (or fixture) hangs."""
    faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# --- build products ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def build_dir():
    for name in ("kbridge", "kbmock"):
        if not os.access(BUILD / name, os.X_OK):
            pytest.fail(f"{BUILD / name} missing: run `make {BUILD.name}/{name}` or set KB_BUILD")
    return BUILD


@pytest.fixture(scope="session")
def certs(build_dir):
    d = build_dir / "certs"
    if not (d / "ca.pem").exists():
        r = run(["sh", str(HERE / "gen_certs.sh"), str(d)], timeout=60)
        assert r.returncode == 0, r.stderr
    return d


# --- ports ---------------------------------------------------------------------------------------

def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port nothing listens on right now (taken from the kernel's ephemeral range)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PortBlock:
    """listen = first port; node N is served at base + N, base = listen + 1 (kbridge's default)."""

    def __init__(self, listen, max_node_id):
        self.listen = listen
        self.base = listen + 1
        self.max_node_id = max_node_id

    def node(self, node_id):
        return self.base + node_id


_LOW, _HIGH = 20000, 28999  # below Linux's default ephemeral range (32768-60999), so kbmock's
_next_block = [random.randrange(_LOW, _HIGH)]  # and the clients' own ports never land here


@pytest.fixture
def ports():
    """ports(max_node_id=5) -> PortBlock of max_node_id + 2 contiguous free ports."""

    def alloc(max_node_id=5):
        size = max_node_id + 2
        for _ in range(200):
            start = _next_block[0]
            if start + size > _HIGH:
                start = _LOW
            _next_block[0] = start + size
            if all(_bindable(p) for p in range(start, start + size)):
                return PortBlock(start, max_node_id)
        pytest.fail("no free block of %d ports in %d-%d" % (size, _LOW, _HIGH))

    return alloc


# --- kbmock --------------------------------------------------------------------------------------

class Broker:
    def __init__(self, node_id, advertised, tls):
        self.id = node_id
        self.advertised = advertised           # "127.0.0.1:P", what the mock puts in metadata
        self.tls = None if tls == "-" else tls  # "127.0.0.1:T" (== advertised in msk mode)

    @property
    def port(self):
        return int(self.advertised.rsplit(":", 1)[1])

    @property
    def tls_port(self):
        return int(self.tls.rsplit(":", 1)[1]) if self.tls else None


class KbMock:
    """A running kbmock. Its stdout is read on a thread; commands get their reply line back."""

    def __init__(self, build, certs_dir, tmp_path, mode, cert, topics, brokers, bootstrap_port,
                 tag, sasl=None):
        cmd = [str(build / "kbmock"), "--certs", str(certs_dir), "--brokers", str(brokers),
               "--cert", cert, "--mode", mode]
        for t in topics:
            cmd += ["--topic", t]
        if bootstrap_port:
            cmd += ["--bootstrap-port", str(bootstrap_port)]
        cmd += _sasl_args(**(sasl or {}))
        self.mode = mode
        self.log_path = tmp_path / f"kbmock-{tag}.log"
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True, bufsize=1,
                                         preexec_fn=_die_with_parent)
        self._lines = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()
        self.brokers = {}
        self.bootstrap = []
        deadline = time.monotonic() + 20
        while True:
            line = self._next_line(deadline, "READY")
            if line == "READY":
                break
            m = re.match(r"BROKER (\d+) advertised=(\S+) tls=(\S+)$", line)
            if m:
                self.brokers[int(m.group(1))] = Broker(int(m.group(1)), m.group(2), m.group(3))
            elif line.startswith("BOOTSTRAP "):
                self.bootstrap = line.split(" ", 1)[1].split(",")
        assert len(self.brokers) == brokers, f"kbmock printed {self.brokers}"

    def _reader(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, deadline, waiting_for):
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = "<timeout>"
        if line is None or line == "<timeout>":
            pytest.fail(f"kbmock: no {waiting_for} ({'exited' if line is None else 'timed out'})"
                        f"\n{self.log_text()}")
        return line

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def command(self, line, timeout=10):
        """Sends one stdin command and returns kbmock's reply line (OK.../ERR.../STATS...)."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._next_line(time.monotonic() + timeout, f"reply to '{line}'")

    def stats(self):
        reply = self.command("stats")
        assert reply.startswith("STATS "), reply
        return {k: int(v) for k, v in (kv.split("=") for kv in reply.split()[1:])}

    def ports(self):
        """Every port this mock owns: advertised (plaintext in front mode) and TLS fronts."""
        out = set()
        for b in self.brokers.values():
            out.add(b.port)
            if b.tls:
                out.add(b.tls_port)
        return out

    def stop(self, timeout=15):
        """Closes stdin (kbmock exits on EOF) and returns its exit code."""
        if not close_stdin_and_wait(self.proc, timeout):
            return "killed (did not exit on stdin EOF)"
        return self.proc.returncode


def _sasl_args(sasl_mechanisms=None, sasl_users=None, sasl_session_ms=None, sasl_v0_only=False,
               sasl_strict_nonce=False, sasl_off=(), iam_credentials=None, iam_region=None,
               iam_host=None):
    """kbmock's --sasl-* options. sasl_mechanisms: "SCRAM-SHA-512,PLAIN" or a list (None: no
    SASL, kbmock's fronts are plain byte pumps as before); sasl_users: {name: password};
    sasl_off: broker ids (or "bootstrap") whose front is a Kafka port without SASL;
    iam_credentials: the file AWS_MSK_IAM / OAUTHBEARER are verified against (lines
    "KEY_ID SECRET [TOKEN|- [EXPIRES [PRINCIPAL]]]"), iam_region, iam_host (default 127.0.0.1)."""
    if not sasl_mechanisms:
        assert not (sasl_users or sasl_session_ms or sasl_v0_only or sasl_strict_nonce or
                    sasl_off), "kbmock: --sasl-* options need sasl_mechanisms"
        return []
    if not isinstance(sasl_mechanisms, str):
        sasl_mechanisms = ",".join(sasl_mechanisms)
    args = ["--sasl-mechanisms", sasl_mechanisms]
    for name, password in (sasl_users or SASL_USERS).items():
        args += ["--sasl-user", f"{name}:{password}"]
    if sasl_session_ms is not None:
        args += ["--sasl-session-ms", str(sasl_session_ms)]
    if sasl_v0_only:
        args.append("--sasl-handshake-v0-only")
    if sasl_strict_nonce:
        args.append("--sasl-strict-nonce")
    for front in sasl_off:
        args += ["--sasl-off", str(front)]
    for opt, val in (("--iam-credentials", iam_credentials), ("--iam-region", iam_region),
                     ("--iam-host", iam_host)):
        if val is not None:
            args += [opt, str(val)]
    return args


# Default test users of a SASL-enforcing kbmock (sasl_users overrides).
SASL_USERS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}


@pytest.fixture
def kbmock(build_dir, certs, tmp_path, request):
    """kbmock(mode="msk", cert="server", topics=("orders:6",), brokers=3, bootstrap_port=None,
    **sasl) with sasl keywords as in _sasl_args (sasl_mechanisms, sasl_users, sasl_session_ms,
    sasl_v0_only, sasl_strict_nonce, sasl_off)."""
    mocks = []

    def start(mode="msk", cert="server", topics=("orders:6",), brokers=3, bootstrap_port=None,
              **sasl):
        m = KbMock(build_dir, certs, tmp_path, mode, cert, topics, brokers, bootstrap_port,
                   f"{len(mocks)}", sasl)
        mocks.append(m)
        return m

    yield start
    problems = []
    for m in mocks:
        rc = m.stop()
        if rc != 0:
            problems.append(f"kbmock exit {rc}")
        if rc != 0 or _failed(request):
            print(f"----- {m.log_path.name} -----\n{m.log_text()[-8000:]}")
    assert not problems, problems


# --- kbridge -------------------------------------------------------------------------------------

class KbBridge:
    """A running `kbridge -c FILE`, stdout and stderr going to one log file."""

    def __init__(self, build, tmp_path, ini_text, tag, ready_timeout=10, env=None):
        self.ini_path = tmp_path / f"kbridge-{tag}.ini"
        self.ini_path.write_text(ini_text)
        self.log_path = tmp_path / f"kbridge-{tag}.log"
        child_env = None
        if env is not None:  # additions to the test's environment; a None value removes a name
            child_env = dict(os.environ)
            for k, v in env.items():
                if v is None:
                    child_env.pop(k, None)
                else:
                    child_env[k] = str(v)
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(VALGRIND + [str(build / "kbridge"), "-c",
                                          str(self.ini_path)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                         env=child_env)
        deadline = time.monotonic() + ready_timeout
        while "kbridge ready" not in self.log_text():
            if self.proc.poll() is not None:
                pytest.fail(f"kbridge exited {self.proc.returncode} before 'kbridge ready'\n"
                            f"--- {self.ini_path.name}\n{ini_text}\n--- log\n{self.log_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no 'kbridge ready' within {ready_timeout}s\n{self.log_text()}")
            time.sleep(0.05)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern, timeout=10):
        """Returns the first log line matching regex pattern, waiting up to timeout seconds."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                pytest.fail(f"no kbridge log line matching {pattern!r} within {timeout}s\n"
                            f"{self.log_text()[-6000:]}")
            time.sleep(0.05)

    def stop(self, timeout=60 if VALGRIND else 10):
        """SIGTERM; returns the exit code ("hung" if it did not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return "hung after SIGTERM"
        return self.proc.returncode


def cluster_ini(name, bootstrap, ports, tls_ca=None, extra=None, log_level="debug"):
    """One [global] + one cluster section. bootstrap: list of host:port; extra: more keys."""
    lines = ["[global]", f"log_level = {log_level}", "", f"[{name}]",
             f"bootstrap_servers = {','.join(bootstrap)}",
             f"listen = 127.0.0.1:{ports.listen}",
             f"broker_port_base = {ports.base}",
             f"max_node_id = {ports.max_node_id}"]
    if tls_ca:
        lines.append(f"tls_ca_file = {tls_ca}")
    for k, v in (extra or {}).items():
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def kbridge(build_dir, tmp_path, request):
    """kbridge(ini_text, env=None) -> KbBridge, ready; env: names added to (None: removed from)
    the test's environment for kbridge. At teardown: SIGTERM, exit code must be 0."""
    bridges = []

    def start(ini_text, ready_timeout=60 if VALGRIND else 10, env=None):
        b = KbBridge(build_dir, tmp_path, ini_text, f"{len(bridges)}", ready_timeout, env)
        bridges.append(b)
        return b

    yield start
    problems = []
    for b in bridges:
        rc = b.stop()
        if rc != 0:
            problems.append(f"kbridge exit {rc} after SIGTERM")
        if rc != 0 or _failed(request):
            print(f"----- {b.ini_path.name} -----\n{b.ini_path.read_text()}"
                  f"----- {b.log_path.name} -----\n{b.log_text()[-12000:]}")
    assert not problems, problems


# --- kcat ----------------------------------------------------------------------------------------

def kcat_metadata(bootstrap, timeout_s=10, extra=()):
    """kcat -L -J through bootstrap; returns (CompletedProcess, parsed JSON or None)."""
    r = run([KCAT, "-L", "-J", "-b", bootstrap, "-m", str(timeout_s), *extra],
            timeout=timeout_s + 20)
    md = None
    if r.returncode == 0:
        try:
            md = json.loads(r.stdout)
        except ValueError:
            md = None
    return r, md


# --- confluent-kafka -----------------------------------------------------------------------------

def produce_steadily(bootstrap, topic, seconds, prefix=b"m"):
    """confluent-kafka, acks=all, one small record every ~10 ms for `seconds`; asserts every
    record was acknowledged exactly once. Returns how many were sent."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                         "message.timeout.ms": 20000})
    failures, acked = [], []

    def done(err, msg):
        (failures if err else acked).append(err or msg.value())

    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        producer.produce(topic, value=prefix + b"%06d" % sent, on_delivery=done)
        sent += 1
        producer.poll(0.01)
    assert producer.flush(30) == 0
    assert not failures, failures[:3]
    assert len(acked) == sent and len(set(acked)) == sent
    return sent


# --- kafka-python --------------------------------------------------------------------------------

def kafka_python_roundtrip(common, topic, partition, count=50):
    """kafka-python with the given client settings: produce `count` records to one partition,
    wait for each, then read the partition from the beginning and expect exactly those."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(**common)
    try:
        for f in [producer.send(topic, b"kp-%d" % i, partition=partition) for i in range(count)]:
            f.get(timeout=10)
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer(**common, consumer_timeout_ms=5000)
    try:
        consumer.assign([TopicPartition(topic, partition)])
        consumer.seek_to_beginning()
        got = [m.value for m in consumer]
    finally:
        consumer.close()
    assert got == [b"kp-%d" % i for i in range(count)]


# --- node (the genuine MSK IAM signers from npm) ------------------------------------------------

IAM_DIR = HERE / "iam"


@pytest.fixture(scope="session")
def node():
    """The node binary, with tests/integration/iam's npm packages installed."""
    node = shutil.which("node") or shutil.which("nodejs")
    npm = shutil.which("npm")
    if not node or not npm:
        msg = "node/npm not found: the genuine MSK IAM signers cannot run (install nodejs npm)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    if not (IAM_DIR / "node_modules" / "aws-msk-iam-sasl-signer-js").is_dir():
        r = run([npm, "ci", "--no-audit", "--no-fund"], cwd=IAM_DIR, timeout=240)
        assert r.returncode == 0, f"npm ci in {IAM_DIR} failed:\n{r.stderr[-3000:]}"
    return node
