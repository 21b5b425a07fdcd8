"""kbridge without an INI file: `kbridge --bootstrap-servers ... --listen ...` serves real traffic
(kcat through it to kbmock), ignores SIGHUP with one log line, prints the equivalent INI file
with --print-config (which, fed back with -c, gives the same --check-config dump), reports a bad
flag in the INI key's words, and `kbridge check` takes the same flags.
"""
import json
import signal
import subprocess
import time

import pytest

from conftest import KCAT, VALGRIND, _die_with_parent, cluster_ini, kcat_metadata, run

N_MESSAGES = 200


def flags_for(mock, p, certs, *extra):
    return ["--bootstrap-servers", f"localhost:{mock.brokers[1].port}",
            f"--listen=127.0.0.1:{p.listen}", "--broker-port-base", str(p.base),
            "--max-node-id", str(p.max_node_id), "--tls-ca-file", str(certs / "ca.pem"), *extra]


def dump_body(text):
    """A --check-config / --print-config dump without its comment line (which names the source)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(";"))


@pytest.fixture
def flag_bridge(build_dir, tmp_path):
    """flag_bridge(flags) -> (Popen, log path), ready. At teardown: SIGTERM, exit code 0."""
    started = []

    def start(flags, ready_timeout=60 if VALGRIND else 10):
        log_path = tmp_path / f"kbridge-flags-{len(started)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(VALGRIND + [str(build_dir / "kbridge"), *flags],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        started.append(proc)
        deadline = time.monotonic() + ready_timeout
        while "kbridge ready" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kbridge {' '.join(flags)}: not ready (exit {proc.poll()})\n"
                            f"{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        return proc, log_path

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60 if VALGRIND else 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                pytest.fail("kbridge hung after SIGTERM")
        assert proc.returncode == 0, f"kbridge exit {proc.returncode} after SIGTERM"


def test_flags_only_serves_kcat_and_ignores_sighup(kbmock, flag_bridge, ports, certs):
    mock = kbmock(mode="msk", topics=["orders:3"])
    p = ports()
    proc, log = flag_bridge(flags_for(mock, p, certs, "--log-level", "debug", "--name", "msk"))
    bootstrap = f"127.0.0.1:{p.listen}"
    text = log.read_text()
    assert "starting with command line" in text, text

    r, md = kcat_metadata(bootstrap)
    assert md, r.stderr
    assert {b["name"] for b in md["brokers"]} == {f"127.0.0.1:{p.node(n)}" for n in mock.brokers}

    sent = [f"k{i}:flag-only message {i}" for i in range(N_MESSAGES)]
    r = run([KCAT, "-P", "-b", bootstrap, "-t", "orders", "-K", ":"],
            input="\n".join(sent) + "\n", timeout=60)
    assert r.returncode == 0, r.stderr
    r = run([KCAT, "-C", "-b", bootstrap, "-t", "orders", "-o", "beginning", "-e", "-q",
             "-f", "%k:%s\n"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(sent)
    # The flags' values are the config: the debug level and the cluster name took effect.
    assert "[msk]" in log.read_text()

    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload ignored: the configuration came from command-line flags" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    assert "reloading" not in log.read_text()
    assert proc.poll() is None
    r, md = kcat_metadata(bootstrap)
    assert md and len(md["brokers"]) == len(mock.brokers), r.stderr


def test_print_config_round_trip(build_dir, tmp_path, certs):
    kb = str(build_dir / "kbridge")
    flags = ["--bootstrap-servers", "b-1.example.com:9094,b-2.example.com:9094",
             "--listen", "127.0.0.1:19092", "--tls-ca-file", str(certs / "ca.pem"),
             "--connect-timeout-ms=2500", "--log-format", "json", "--admin-listen",
             "127.0.0.1:19644", "--connect-to", "b-1.example.com:9094=127.0.0.1:29094"]
    printed = run([kb, "--print-config", *flags])
    assert printed.returncode == 0, printed.stderr
    assert "[kbridge]" in printed.stdout and "connect_timeout_ms = 2500" in printed.stdout
    assert "log_format = json" in printed.stdout
    ini = tmp_path / "printed.ini"
    ini.write_text(printed.stdout)

    from_flags = run([kb, "--check-config", *flags])
    from_file = run([kb, "--check-config", "-c", str(ini)])
    assert from_flags.returncode == 0 and from_file.returncode == 0, from_flags.stderr
    assert dump_body(from_flags.stdout) == dump_body(from_file.stdout)
    assert dump_body(printed.stdout) == dump_body(from_flags.stdout)

    # --print-config with -c prints the same file again.
    again = run([kb, "--print-config", "-c", str(ini)])
    assert again.returncode == 0 and dump_body(again.stdout) == dump_body(printed.stdout)


@pytest.mark.parametrize("key,value", [
    ("tls_verify", "strict"),
    ("connect_timeout_ms", "50"),
    ("bootstrap_servers", "b-1.example.com:9094,b-2.example.com"),
    ("listen", "0.0.0.0:9092"),
    ("max_node_id", "-1"),
    ("log_level", "verbose"),
    ("tls_ca_file", "/nonexistent/kbridge/ca.pem"),
])
def test_bad_flag_reads_like_the_ini_key(build_dir, tmp_path, key, value):
    kb = str(build_dir / "kbridge")
    glob = key == "log_level"
    lines = ["[global]", f"{key} = {value}"] if glob else []
    lines += ["[kbridge]"]
    if key != "bootstrap_servers":
        lines.append("bootstrap_servers = b-1.example.com:9094")
    if not glob:
        lines.append(f"{key} = {value}")
    ini = tmp_path / "bad.ini"
    ini.write_text("\n".join(lines) + "\n")
    line_no = lines.index(f"{key} = {value}") + 1
    from_file = run([kb, "--check-config", "-c", str(ini)])
    flag = "--" + key.replace("_", "-")
    flags = [flag, value] if key == "bootstrap_servers" else \
        ["--bootstrap-servers", "b-1.example.com:9094", flag, value]
    from_flags = run([kb, "--check-config", *flags])
    assert from_file.returncode == 2 and from_flags.returncode == 2
    file_prefix = f"{ini}:{line_no}: "
    flag_prefix = f"command line: {flag}: "
    assert from_file.stderr.startswith(file_prefix), from_file.stderr
    assert from_flags.stderr.startswith(flag_prefix), from_flags.stderr
    assert from_flags.stderr[len(flag_prefix):] == from_file.stderr[len(file_prefix):]


def test_unknown_flag_and_mixing(build_dir):
    kb = str(build_dir / "kbridge")
    r = run([kb, "--bootstrap-servers", "b:9094", "--tls-verfy", "full"])
    assert r.returncode == 2
    assert r.stderr.strip() == ("command line: --tls-verfy: unknown flag '--tls-verfy' "
                                "(did you mean '--tls-verify'?)")
    r = run([kb, "-c", "/etc/kbridge/kbridge.ini", "--listen", "127.0.0.1:9092"])
    assert r.returncode == 2 and "either -c FILE or configuration flags" in r.stderr
    r = run([kb, "--bootstrap-servers"])
    assert r.returncode == 2 and "needs a value" in r.stderr


def test_check_takes_the_same_flags(build_dir, kbmock, ports, certs, tmp_path):
    mock = kbmock(mode="msk", topics=["orders:3"])
    p = ports()
    kb = str(build_dir / "kbridge")
    flags = flags_for(mock, p, certs, "--connect-timeout-ms", "2000")
    r = run([kb, "check", "--json", *flags], timeout=40)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and [c["name"] for c in doc["clusters"]] == ["kbridge"]
    brokers = [t for c in doc["clusters"] for t in c["targets"] if t["role"] == "broker"]
    assert sorted(t["node_id"] for t in brokers) == sorted(mock.brokers)

    # The same checks from the equivalent file give the same verdicts.
    ini = tmp_path / "check.ini"
    ini.write_text(cluster_ini("kbridge", [f"localhost:{mock.brokers[1].port}"], p,
                               tls_ca=certs / "ca.pem", extra={"connect_timeout_ms": "2000"},
                               log_level="info"))
    r2 = run([kb, "check", "--json", "-c", str(ini)], timeout=40)
    doc2 = json.loads(r2.stdout)
    verdicts = [[(s["step"], s["ok"]) for s in t["steps"]] for t in doc["clusters"][0]["targets"]]
    verdicts2 = [[(s["step"], s["ok"]) for s in t["steps"]]
                 for t in doc2["clusters"][0]["targets"]]
    assert r2.returncode == 0 and verdicts == verdicts2

    # A bad flag is a configuration error (2) with the INI wording; -c with flags is refused.
    r = run([kb, "check", "--json", *flags_for(mock, p, certs, "--tls-verify", "strict")])
    assert r.returncode == 2
    assert "command line: --tls-verify: invalid tls_verify 'strict' in [kbridge]" in r.stderr
    r = run([kb, "check", "-c", str(ini), "--listen", "127.0.0.1:9092"])
    assert r.returncode == 2 and "either -c FILE or configuration flags" in r.stderr
