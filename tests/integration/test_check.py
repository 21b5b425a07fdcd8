"""`kbridge check`: every failure an operator meets when pointing kbridge at MSK, simulated locally,
must be reported at the right step with its cause, and the exit code must say pass (0), fail (1)
or config error (2). Assertions use --json; one test reads the human output.

Simulations: kbmock --cert wronghost/untrusted/expired/server and --mode plain/front; a closed port;
nonexistent.invalid; a listening socket whose accept queue is full (SYNs are dropped, so the TCP
connect times out, all on loopback); a TCP server that never answers the ClientHello.
"""
import contextlib
import json
import socket
import threading

import pytest

from conftest import cluster_ini, free_port, run

FAST = {"connect_timeout_ms": "600", "tls_handshake_timeout_ms": "600"}
STEPS = ["dns", "tcp", "tls", "chain", "hostname", "kafka"]


def check(build_dir, tmp_path, ini_text, *args, timeout=40):
    """Runs `kbridge check --json -c INI ARGS`; returns (exit code, document or None, result)."""
    ini = tmp_path / "check.ini"
    ini.write_text(ini_text)
    r = run([str(build_dir / "kbridge"), "check", "--json", "-c", str(ini), *args],
            timeout=timeout)
    doc = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, doc, r


def targets(doc, role=None):
    return [t for c in doc["clusters"] for t in c["targets"] if role in (None, t["role"])]


def only_target(doc, role="bootstrap"):
    ts = targets(doc, role)
    assert len(ts) == 1, ts
    return ts[0]


def failing(target, step):
    """Asserts that target's steps all pass up to step, which fails and is the last one run."""
    names = [s["step"] for s in target["steps"]]
    assert names[-1] == step, f"chain stopped at {names[-1]}, not {step}: {target['steps']}"
    assert all(s["ok"] for s in target["steps"][:-1]), target["steps"]
    last = target["steps"][-1]
    assert not last["ok"] and last["fix"], last
    assert target["ok"] is False
    return last


def ini_for(name, bootstrap, ports, certs, extra=None, ca="ca.pem"):
    return cluster_ini(name, bootstrap, ports(), tls_ca=certs / ca, extra={**FAST, **(extra or {})})


# --- all good ---------------------------------------------------------------------------------

def test_all_good(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:3"])
    port = mock.brokers[1].port
    # kbmock listens on 127.0.0.1 only, and Debian's /etc/hosts also maps localhost to ::1,
    # which check dials first (a TCP warning, rightly: the daemon dials the first address).
    # The name still goes through TLS host name verification; only the dialling is pinned.
    ini = ini_for("msk", [f"localhost:{port}"], ports, certs,
                  extra={"connect_to": f"localhost:{port}=127.0.0.1:{port}"})
    rc, doc, r = check(build_dir, tmp_path, ini)
    assert rc == 0, r.stdout + r.stderr
    assert doc["ok"] is True and doc["error"] is None
    store = only_target(doc, "config")
    assert store["steps"][0]["step"] == "trust_store" and str(certs / "ca.pem") in store["address"]
    boot = only_target(doc, "bootstrap")
    assert [s["step"] for s in boot["steps"]] == STEPS
    assert {b["node_id"] for b in boot["brokers"]} == {1, 2, 3}
    brokers = targets(doc, "broker")
    assert sorted(t["node_id"] for t in brokers) == [1, 2, 3]
    for t in [boot] + brokers:
        assert t["ok"] is True
        assert [s["step"] for s in t["steps"]] == STEPS, t
        assert all(s["ok"] and not s["warning"] for s in t["steps"]), t["steps"]
    tls = boot["steps"][2]["detail"]
    assert tls.startswith("TLSv1.") and "CN=kbridge test CA" in tls and "days" in tls, tls
    assert "expected 'localhost'" in boot["steps"][4]["detail"]
    assert "3 brokers" in boot["steps"][5]["detail"]


def test_human_output(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", cert="wronghost", topics=["orders:1"], brokers=1)
    ini = tmp_path / "human.ini"
    ini.write_text(ini_for("msk-h", [f"localhost:{mock.brokers[1].port}"], ports, certs))
    r = run([str(build_dir / "kbridge"), "check", "-c", str(ini)])
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    addr = f"localhost:{mock.brokers[1].port}"
    tls = [l for l in lines if "3/6 TLS handshake" in l]
    assert tls and tls[0].startswith(f"[msk-h] {addr}  3/6 TLS handshake  ok  TLSv1."), lines
    bad = [i for i, l in enumerate(lines) if "5/6 host name  FAIL  hostname mismatch" in l]
    assert bad, lines
    assert lines[bad[0] + 1].startswith("    fix: "), lines
    assert not any("6/6" in l for l in lines), "steps after a failure must not run"
    assert lines[-1].startswith("kbridge check: FAILED"), lines


# --- network failures -------------------------------------------------------------------------

def test_connection_refused(build_dir, tmp_path, ports, certs):
    closed = free_port()
    rc, doc, r = check(build_dir, tmp_path, ini_for("msk", [f"localhost:{closed}"], ports, certs))
    assert rc == 1, r.stderr
    step = failing(only_target(doc), "tcp")
    assert "connection refused" in step["detail"] and f"127.0.0.1:{closed}" in step["detail"]
    assert "9094" in step["fix"] and "ACTIVE" in step["fix"]


def test_dns_failure(build_dir, tmp_path, ports, certs):
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", ["nonexistent.invalid:9094"], ports, certs))
    assert rc == 1, r.stderr
    step = failing(only_target(doc), "dns")
    assert "DNS failure" in step["detail"] and "nonexistent.invalid" in step["detail"]


@contextlib.contextmanager
def silent_server(accepting):
    """A loopback TCP server that never sends a byte; yields its port. accepting=False: its
    accept queue is kept full, so the kernel drops further SYNs and a connect times out (the
    closest loopback gets to a security group dropping packets). accepting=True: it accepts and
    holds every connection, so a TLS ClientHello goes unanswered (as on a plaintext Kafka port)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8 if accepting else 0)
    port = srv.getsockname()[1]
    held = [] if accepting else [socket.create_connection(("127.0.0.1", port), timeout=2)]

    def accept():
        try:
            while True:
                held.append(srv.accept()[0])
        except OSError:
            pass

    if accepting:
        threading.Thread(target=accept, daemon=True).start()
    try:
        yield port
    finally:
        srv.close()
        for c in held:
            c.close()


@pytest.mark.parametrize("accepting,step,words", [
    (False, "tcp", ["connect timed out after 600 ms"]),
    (True, "tls", ["not TLS?", "timed out after 600 ms", "never answered the ClientHello"]),
])
def test_timeout(build_dir, tmp_path, ports, certs, accepting, step, words):
    # 127.0.0.1, not localhost: the server listens there only, and a localhost that also
    # resolves to ::1 (Debian's /etc/hosts) would be refused there first instead of timing out.
    with silent_server(accepting) as port:
        rc, doc, r = check(build_dir, tmp_path, ini_for("msk", [f"127.0.0.1:{port}"], ports, certs))
    assert rc == 1, r.stderr
    last = failing(only_target(doc), step)
    for w in words:
        assert w in last["detail"], last
    if step == "tcp":
        assert "security group" in last["fix"] and "public access" in last["fix"]


def test_not_tls(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="plain", topics=["orders:1"], brokers=1)
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", [f"localhost:{mock.brokers[1].port}"], ports, certs))
    assert rc == 1, r.stderr
    step = failing(only_target(doc), "tls")
    assert step["detail"].startswith("not TLS"), step
    assert "9094" in step["fix"]


# --- certificates -------------------------------------------------------------------------------

@pytest.mark.parametrize("cert,step,words", [
    ("untrusted", "chain", ["certificate not trusted", "some other CA"]),
    ("expired", "chain", ["certificate expired", "2020-01-01"]),
    ("wronghost", "hostname", ["hostname mismatch", "expected 'localhost'", "wrong.example.com"]),
])
def test_bad_certificate(build_dir, tmp_path, kbmock, ports, certs, cert, step, words):
    mock = kbmock(mode="msk", cert=cert, topics=["orders:1"], brokers=1)
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", [f"localhost:{mock.brokers[1].port}"], ports, certs))
    assert rc == 1, r.stderr
    last = failing(only_target(doc), step)
    for w in words:
        assert w in last["detail"], last
    if step == "chain":
        assert str(certs / "ca.pem") in last["detail"] or cert == "expired", last
    assert mock.stats()["bytes_to_mock"] == 0, "check sent Kafka bytes to a peer that failed"


def test_ip_literal_bootstrap(build_dir, tmp_path, kbmock, ports, certs):
    # Our test certificate names 127.0.0.1, so full verification passes: a warning, not a failure.
    mock = kbmock(mode="msk", topics=["orders:1"], brokers=1)
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", [mock.brokers[1].advertised], ports, certs))
    assert rc == 0, r.stdout + r.stderr
    boot = only_target(doc)
    assert boot["node_id"] == 1  # the broker's advertised address is this very target
    dns = boot["steps"][0]
    assert dns["step"] == "dns" and dns["ok"] and dns["warning"], dns
    assert "IP literal" in dns["detail"] and "MSK certificates name hosts" in dns["detail"]
    assert "connect_to" in dns["fix"]
    host = boot["steps"][4]
    assert host["step"] == "hostname" and host["ok"] and "IP" in host["detail"], host


def test_connect_to(build_dir, tmp_path, kbmock, ports, certs):
    # front mode: the advertised addresses are plaintext; TLS is reachable only through connect_to
    mock = kbmock(mode="front", topics=["orders:1"], brokers=2)
    b = mock.brokers
    mapping = [f"localhost:{b[1].port}=127.0.0.1:{b[1].tls_port}"]
    mapping += [f"{x.advertised}={x.tls}" for x in b.values()]
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", [f"localhost:{b[1].port}"], ports, certs,
                               extra={"connect_to": ",".join(mapping)}))
    assert rc == 0, r.stdout + r.stderr
    boot = only_target(doc)
    assert boot["connect_to"] == f"127.0.0.1:{b[1].tls_port}"
    assert "connect_to" in boot["steps"][0]["detail"]
    assert "expected 'localhost'" in boot["steps"][4]["detail"]
    assert sorted(t["node_id"] for t in targets(doc, "broker")) == [1, 2]
    assert all(t["connect_to"] for t in targets(doc, "broker"))


# --- configuration ------------------------------------------------------------------------------

def test_ca_file_not_pem(build_dir, tmp_path, ports, certs):
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", ["localhost:9094"], ports, certs, ca="garbage.pem"))
    assert rc == 2, r.stdout + r.stderr
    store = only_target(doc, "config")
    step = failing(store, "trust_store")
    assert str(certs / "garbage.pem") in step["detail"] and "no certificates found" in step["detail"]
    assert "check.ini:" in step["detail"]  # FILE:LINE of tls_ca_file
    assert not targets(doc, "bootstrap"), "nothing is dialled without a trust store"


def test_ca_file_missing(build_dir, tmp_path, ports, certs):
    rc, doc, r = check(build_dir, tmp_path,
                       ini_for("msk", ["localhost:9094"], ports, certs, ca="no-such-ca.pem"))
    assert rc == 2, r.stdout + r.stderr
    assert doc["ok"] is False and doc["clusters"] == []
    for text in (doc["error"], r.stderr):
        assert "check.ini:" in text and "no-such-ca.pem" in text and "No such file" in text, text


def test_unknown_cluster(build_dir, tmp_path, ports, certs):
    rc, doc, r = check(build_dir, tmp_path, ini_for("msk", ["localhost:9094"], ports, certs),
                       "--cluster", "nope")
    assert rc == 2 and "no cluster section named 'nope'" in r.stderr, r.stderr


# --- end to end through kbridge -------------------------------------------------------------------

def test_produce_through_kbridge(build_dir, tmp_path, kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:3"])
    p = ports()
    ini = cluster_ini("msk", [f"localhost:{mock.brokers[1].port}"], p, tls_ca=certs / "ca.pem")
    kbridge(ini)
    rc, doc, r = check(build_dir, tmp_path, ini, "--produce-test", "orders")
    assert rc == 0, r.stdout + r.stderr
    lst = only_target(doc, "listener")
    assert lst["address"] == f"127.0.0.1:{p.listen}"
    assert [s["step"] for s in lst["steps"]] == ["dns", "tcp", "produce", "consume"]
    assert all(s["ok"] for s in lst["steps"]), lst["steps"]
    produce, consume = lst["steps"][2], lst["steps"][3]
    assert "'orders' partition" in produce["detail"] and "delivered in" in produce["detail"]
    assert "read it back" in consume["detail"] and "from produce to consume" in consume["detail"]


def test_produce_without_kbridge(build_dir, tmp_path, kbmock, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:1"], brokers=1)
    p = ports()
    ini = cluster_ini("msk", [f"localhost:{mock.brokers[1].port}"], p, tls_ca=certs / "ca.pem")
    rc, doc, r = check(build_dir, tmp_path, ini, "--produce-test", "orders")
    assert rc == 1, r.stdout + r.stderr
    assert only_target(doc)["ok"] is True  # the brokers themselves are fine
    step = failing(only_target(doc, "listener"), "tcp")
    assert f"kbridge is not listening on 127.0.0.1:{p.listen}" in step["detail"], step
    assert "kbridge -c" in step["fix"]
