"""Upstream failures: kbridge must refuse to carry a client's bytes to a broker it cannot verify
(or reach), close the client, and log ONE error-level line naming the cluster, the upstream
host:port and a cause starting with a fixed phrase (conftest.CAUSES).

Each case also checks that the client got no metadata and, for TLS failures, that kbmock saw
the handshake fail and not a single byte reach the mock broker behind it.
"""
import re

import pytest

from conftest import CAUSES, cluster_ini, error_lines, free_port, kcat_metadata

KCAT_WAIT = 3  # kcat -m: how long the client keeps trying before it gives up


def expect_upstream_failure(kb, cluster, upstream_hosts, port, cause, detail=None):
    """Asserts a client gets nothing through kb and the log has the one error line; returns it."""
    r, md = kcat_metadata(f"127.0.0.1:{kb.listen_port}", timeout_s=KCAT_WAIT,
                          extra=("-X", "reconnect.backoff.ms=200"))
    assert md is None or not md.get("brokers"), f"client got metadata through kbridge: {r.stdout}"
    assert r.returncode != 0, f"kcat -L succeeded through a failing upstream: {r.stdout}"

    line = kb.wait_log(r"\bERROR\b.*\b" + re.escape(cause))
    assert cluster in line, f"cluster name '{cluster}' missing: {line}"
    assert any(f"{h}:{port}" in line for h in upstream_hosts), \
        f"upstream {upstream_hosts}:{port} missing: {line}"
    if detail:
        assert detail in line, f"'{detail}' missing: {line}"
    # one line per failure: every error-level line is such a cause line, none is a second,
    # generic one for the same failure
    errors = error_lines(kb.log_text())
    stray = [l for l in errors if not any(c in l for c in CAUSES)]
    assert not stray, f"error lines without a cause: {stray}"
    assert all(cause in l for l in errors), f"mixed causes for one failure: {errors}"
    return line, [l for l in errors if cause in l]


class _Bridge:
    """kbridge started for one upstream; listen_port is the plaintext bootstrap port."""

    def __init__(self, kbridge, ports, cluster, bootstrap, ca, extra=None):
        self.ports = ports()
        self.proc = kbridge(cluster_ini(cluster, bootstrap, self.ports, tls_ca=ca, extra=extra))
        self.listen_port = self.ports.listen

    def wait_log(self, pattern):
        return self.proc.wait_log(pattern)

    def log_text(self):
        return self.proc.log_text()


@pytest.mark.parametrize("cert,cause,detail", [
    ("wronghost", "hostname mismatch", "wrong.example.com"),
    ("untrusted", "certificate not trusted", None),
    ("expired", "certificate expired", None),
])
def test_bad_certificate(kbmock, kbridge, ports, certs, cert, cause, detail):
    mock = kbmock(mode="msk", cert=cert, topics=["orders:3"])
    b1 = mock.brokers[1]
    # tls_verify is left at its default, which must be full verification
    kb = _Bridge(kbridge, ports, f"msk-{cert}", [f"localhost:{b1.port}"], certs / "ca.pem")
    line, cause_lines = expect_upstream_failure(kb, f"msk-{cert}", ("localhost", "127.0.0.1"),
                                                b1.port, cause, detail)
    stats = mock.stats()
    assert stats["bytes_to_mock"] == 0, f"bytes reached the mock through a bad TLS peer: {stats}"
    assert stats["tls_handshakes_ok"] == 0, stats
    # kbridge attempted (and aborted) at least one handshake per error line it logged
    assert stats["tls_handshakes_failed"] >= len(cause_lines) >= 1, (stats, cause_lines)


def test_plaintext_upstream_is_not_tls(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="plain", topics=["orders:3"])
    b1 = mock.brokers[1]
    kb = _Bridge(kbridge, ports, "msk-plain", [b1.advertised], certs / "ca.pem",
                 extra={"tls": "on"})
    expect_upstream_failure(kb, "msk-plain", ("127.0.0.1",), b1.port, "not TLS")


def test_connection_refused(kbridge, ports, certs):
    closed = free_port()  # nothing listens there
    kb = _Bridge(kbridge, ports, "msk-down", [f"127.0.0.1:{closed}"], certs / "ca.pem")
    expect_upstream_failure(kb, "msk-down", ("127.0.0.1",), closed, "connection refused")


def test_dns_failure(kbridge, ports, certs):
    kb = _Bridge(kbridge, ports, "msk-nxdomain", ["nonexistent.invalid:9094"], certs / "ca.pem")
    expect_upstream_failure(kb, "msk-nxdomain", ("nonexistent.invalid",), 9094, "DNS failure")
