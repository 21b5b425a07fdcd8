"""Fixtures for the modern-protocol tests: the integration suite's own fixtures (kbridge, kbmock,
ports, certs, the watchdog and failure reports: tests/integration/conftest.py stays the one
source of truth) pointed at a build directory view in which `kbmock` is kbmock-modern (kbmock.c
built against librdkafka 2.12) advertising every broker as localhost:<its TLS port>, plus
modern clients: Debian's kcat and confluent-kafka-python run with librdkafka 2.12 through
LD_LIBRARY_PATH and connect_recorder.so through LD_PRELOAD.

Environment: KB_BUILD as for tests/integration; it must also hold librdkafka-2.12/ and modern/
(`make modern-deps`).
"""
import importlib.util
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "kb_integration_conftest", HERE.parent / "integration" / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _integration
_spec.loader.exec_module(_integration)

# the integration fixtures and hooks, re-exported so pytest finds them in this conftest
from kb_integration_conftest import (  # noqa: E402,F401
    _watchdog, certs, kbmock, kbridge, ports, pytest_runtest_makereport)
from kb_integration_conftest import (  # noqa: E402,F401
    BUILD, KCAT, _die_with_parent, close_stdin_and_wait, cluster_ini, error_lines, run)

LRK = BUILD / "librdkafka-2.12"
LRK_LIB = LRK / "lib"
KBMOCK_MODERN = BUILD / "modern" / "kbmock-modern"
RECORDER = BUILD / "modern" / "connect_recorder.so"
PYTHON = "/usr/bin/python3"  # Debian's confluent-kafka is importable only there
ADVERTISE_HOST = "localhost"  # what kbmock-modern advertises; the server certificate's DNS SAN
MODERN_VERSION = "2.12.0"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    """Overrides the integration build_dir: a view of KB_BUILD whose kbmock is kbmock-modern
    --advertise-host localhost (a wrapper script), so the integration kbmock fixture starts it."""
    missing = [str(p) for p in (BUILD / "kbridge", KBMOCK_MODERN, RECORDER,
                                LRK_LIB / "librdkafka.so.1") if not p.exists()]
    if missing:
        pytest.fail(f"missing {missing}: run `make BUILD={BUILD.name} modern-deps "
                    f"{BUILD.name}/kbridge` (or set KB_BUILD)")
    view = tmp_path_factory.mktemp("modern-build")
    (view / "kbridge").symlink_to(BUILD / "kbridge")
    (BUILD / "certs").mkdir(exist_ok=True)
    (view / "certs").symlink_to(BUILD / "certs")
    wrapper = view / "kbmock"
    wrapper.write_text(f'#!/bin/sh\nexec "{KBMOCK_MODERN}" --advertise-host {ADVERTISE_HOST} '
                       f'"$@"\n')
    wrapper.chmod(0o755)
    return view


def client_env(connect_log=None):
    """Environment for a modern client: librdkafka 2.12, and the connect() recorder if asked."""
    env = dict(os.environ, LD_LIBRARY_PATH=str(LRK_LIB))
    env.pop("LD_PRELOAD", None)
    env.pop("KB_CONNECT_LOG", None)
    if connect_log is not None:
        env["LD_PRELOAD"] = str(RECORDER)
        env["KB_CONNECT_LOG"] = str(connect_log)
    return env


# --- what a client dialled -----------------------------------------------------------------------

def tcp_connects(connect_log):
    """[(address, port, result)] of the TCP connect() calls recorded in connect_log."""
    out = []
    if Path(connect_log).exists():
        for line in Path(connect_log).read_text().splitlines():
            kind, _family, addr, port, result = line.split()
            if kind == "tcp":
                out.append((addr, int(port), result))
    return out


def kbridge_ports(p):
    return {p.listen} | {p.node(n) for n in range(0, p.max_node_id + 1)}


def dialled_elsewhere(connect_log, p):
    """The TCP destinations in connect_log that are not kbridge's."""
    return [c for c in tcp_connects(connect_log) if c[0] != "127.0.0.1" or c[1] not in
            kbridge_ports(p)]


def assert_only_kbridge_dialled(connect_log, p, mock, require_broker=True):
    """Every TCP connect() in connect_log went to kbridge (listen or base+N on 127.0.0.1), none
    to a kbmock port; with require_broker at least one went to a broker port (base+N), so the
    check is not vacuous. Returns the set of ports dialled."""
    conns = tcp_connects(connect_log)
    leaked = dialled_elsewhere(connect_log, p)
    to_mock = [c for c in conns if c[1] in mock.ports()]
    assert not leaked and not to_mock, (
        f"the client dialled something other than kbridge: {sorted(set(leaked + to_mock))}; "
        f"kbridge is 127.0.0.1:{p.listen} and {p.base}+N, kbmock owns {sorted(mock.ports())}")
    assert conns, f"{connect_log}: no connect() recorded: is connect_recorder.so loaded?"
    dialled = {c[1] for c in conns}
    assert not require_broker or dialled - {p.listen}, \
        f"the client only ever dialled the bootstrap port: {conns}"
    return dialled


# --- kbridge log ---------------------------------------------------------------------------------

RESPONSE_RX = re.compile(r"response (\w+) v(\d+) correlation id -?\d+: (\d+) addresses, "
                         r"(\d+) rewritten, (\d+) capped")
REQUEST_RX = re.compile(r"request (\w+) v(\d+) correlation id")


def responses(log_text, api=None):
    """[(api, version, addresses, rewritten, capped)] from kbridge's debug lines."""
    out = []
    for m in RESPONSE_RX.finditer(log_text):
        r = (m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)))
        if api is None or r[0] == api:
            out.append(r)
    return out


def request_versions(log_text, api):
    return sorted({int(m.group(2)) for m in REQUEST_RX.finditer(log_text) if m.group(1) == api})


def endpoint_rewrites(log_text, api, min_version):
    """Responses of api at >= min_version that carried at least one address (KIP-951
    NodeEndpoints for Produce/Fetch)."""
    return [r for r in responses(log_text, api) if r[1] >= min_version and r[2] > 0]


def wait_until(predicate, timeout, what, details=lambda: ""):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{details()}")
        time.sleep(0.05)


# --- client subprocesses -------------------------------------------------------------------------

class Client:
    """A running client.py (produce | consume | group) with librdkafka 2.12 and the recorder."""

    def __init__(self, tmp_path, tag, args, record=True):
        self.tag = tag
        self.connect_log = tmp_path / f"connect-{tag}.log" if record else None
        self.err_path = tmp_path / f"client-{tag}.err"
        self.lines = queue.Queue()
        self.progress = 0
        self.result = None
        self.ready = None
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([PYTHON, str(HERE / "client.py"), *args],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, bufsize=1,
                                         env=client_env(self.connect_log),
                                         preexec_fn=_die_with_parent)
        threading.Thread(target=self._reader, daemon=True).start()
        wait_until(lambda: self.ready is not None or self.proc.poll() is not None, 20,
                   f"client {tag} READY", self.stderr_tail)
        assert self.ready is not None, f"client {tag} exited {self.proc.returncode}\n" \
                                       f"{self.stderr_tail()}"

    def _reader(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("READY "):
                self.ready = line.split(" ", 1)[1]
            elif line.startswith("PROGRESS "):
                self.progress = int(line.split()[1])
            elif line.startswith("RESULT "):
                self.result = json.loads(line.split(" ", 1)[1])

    def stderr_tail(self, n=6000):
        return f"--- client {self.tag} stderr ---\n" + \
            self.err_path.read_text(errors="replace")[-n:]

    def wait_progress(self, n, timeout=20):
        wait_until(lambda: self.progress >= n or self.proc.poll() is not None, timeout,
                   f"client {self.tag} to reach {n} (at {self.progress})", self.stderr_tail)
        assert self.progress >= n, f"client {self.tag} exited at {self.progress}\n" \
                                   f"{self.stderr_tail()}"

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout=60):
        """Closes stdin (the client then flushes / drains) and returns its RESULT."""
        if not close_stdin_and_wait(self.proc, timeout):
            pytest.fail(f"client {self.tag} did not finish within {timeout}s\n"
                        f"{self.stderr_tail()}")
        deadline = time.monotonic() + 5
        while self.result is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the reader thread may still be on the last line
        assert self.result is not None, f"client {self.tag}: no RESULT (exit " \
                                        f"{self.proc.returncode})\n{self.stderr_tail()}"
        return self.result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def client(tmp_path):
    """client(tag, *args, record=True) -> Client, READY. Killed at teardown if still running."""
    started = []

    def start(tag, *args, record=True):
        c = Client(tmp_path, tag, [str(a) for a in args], record)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()


@pytest.fixture
def modern_cluster(kbmock, kbridge, ports, certs):
    """kbmock-modern (3 brokers, advertised as localhost:<TLS port>) behind a ready kbridge at
    log_level debug. topics: list of NAME:PARTITIONS. Returns (mock, kbridge, PortBlock,
    bootstrap)."""

    def start(topics=("orders:6",), extra=None):
        mock = kbmock(mode="msk", topics=list(topics))
        for b in mock.brokers.values():
            assert b.advertised.startswith(f"{ADVERTISE_HOST}:"), b.advertised
            assert b.tls_port == b.port, (b.advertised, b.tls)
        p = ports()
        kb = kbridge(cluster_ini("msk", [b.advertised for b in mock.brokers.values()], p,
                                 tls_ca=certs / "ca.pem", extra=extra))
        return mock, kb, p, f"127.0.0.1:{p.listen}"

    return start


# --- kcat ----------------------------------------------------------------------------------------

def kcat(args, connect_log=None, timeout=30, input=None):
    """Debian's kcat with librdkafka 2.12 (and the recorder if connect_log is given)."""
    return run([KCAT, *args], env=client_env(connect_log), timeout=timeout, input=input)


def kcat_metadata(bootstrap, topic=None, connect_log=None):
    """kcat -L -J through bootstrap with librdkafka 2.12: (CompletedProcess, parsed JSON)."""
    r = kcat(["-L", "-J", "-b", bootstrap, "-m", "10", *(["-t", topic] if topic else [])],
             connect_log)
    assert r.returncode == 0, f"kcat -L failed: {r.stderr}"
    return r, json.loads(r.stdout)


def leaders(bootstrap, topic):
    """{partition: leader id} as a client sees it through kbridge."""
    _, md = kcat_metadata(bootstrap, topic)
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    return {p["partition"]: p["leader"] for p in t["partitions"]}
