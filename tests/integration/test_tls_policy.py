"""TLS policy: weakening is explicit, loud at every start, visible in /metrics, and still
works as configured; key material never reaches logs or /metrics."""
import pytest

from conftest import cluster_ini, free_port, run
from test_operate import metrics


@pytest.mark.parametrize("setting,cert,warning", [
    ({"tls_verify": "none"}, "untrusted", "SECURITY: tls_verify = none"),
    ({"tls_verify": "chain"}, "wronghost", "SECURITY: tls_verify = chain"),
])
def test_weakened_verification_is_explicit_loud_and_exposed(kbmock, kbridge, ports, certs,
                                                           setting, cert, warning):
    mock = kbmock(mode="msk", cert=cert)
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    extra = dict(setting, tls_cert_file=certs / "client.pem", tls_key_file=certs / "client.key")
    text = cluster_ini("weak", mock.bootstrap, p, tls_ca=certs / "ca.pem", extra=extra,
                       log_level="debug")
    kb = kbridge(text.replace("[global]\n", f"[global]\nadmin_listen = {admin}\n", 1))
    assert warning in kb.wait_log(r"SECURITY:")
    r = run(["kcat", "-L", "-b", f"127.0.0.1:{p.listen}", "-m", "10"], timeout=30)
    assert r.returncode == 0 and "3 brokers" in r.stdout, r.stdout + r.stderr
    assert metrics(admin)['kbridge_tls_weakened{cluster="weak"}'] == 1
    key = (certs / "client.key").read_text()
    body = "".join(l for l in key.splitlines() if "PRIVATE KEY" not in l)[:40]
    for text_out in (kb.log_text(), str(metrics(admin))):
        assert "PRIVATE KEY" not in text_out and body not in text_out


def test_default_verification_is_full_and_not_weakened(kbmock, kbridge, ports, certs):
    mock = kbmock(mode="msk", cert="wronghost")
    p = ports()
    admin = f"127.0.0.1:{free_port()}"
    text = cluster_ini("strict", mock.bootstrap, p, tls_ca=certs / "ca.pem", log_level="info")
    kb = kbridge(text.replace("[global]\n", f"[global]\nadmin_listen = {admin}\n", 1))
    r = run(["kcat", "-L", "-b", f"127.0.0.1:{p.listen}", "-m", "3"], timeout=30)
    assert "3 brokers" not in r.stdout
    kb.wait_log(r"hostname mismatch")
    assert "SECURITY:" not in kb.log_text()
    assert metrics(admin)['kbridge_tls_weakened{cluster="strict"}'] == 0
