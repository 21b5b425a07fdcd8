"""kbmock's SASL enforcement, proved right with clients straight to kbmock (no kbridge): a wire
client written here from RFC 5802 and the Kafka specs (sasl_wire.py) for the exact error codes,
messages, nonce rules, session expiry and re-authentication; then kcat (librdkafka),
confluent-kafka, kafka-python (SaslHandshake v0, raw tokens) and kafkajs (PLAIN, SCRAM, KIP-368
re-authentication) over TLS with their own SASL settings.

kbmock's counters (`stats`): sasl_auths, sasl_v0_auths, sasl_reauths, sasl_failures,
sasl_expired_closes, sasl_unauth_closes, sasl_nonce_quirks.
"""
import os
import shutil
import time
import uuid

import pytest

import sasl_wire as sw
from conftest import HERE, KCAT, SASL_USERS, kafka_python_roundtrip, run

ALICE = ("alice", SASL_USERS["alice"])
KAFKAJS_DIR = HERE / "kafkajs"
ALL_MECHS = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
SCRAM_FAILED = ("Authentication failed during authentication due to invalid credentials with "
                "SASL mechanism {}")


def sasl_mock(kbmock, **kw):
    kw.setdefault("sasl_mechanisms", ALL_MECHS)
    return kbmock(mode="msk", brokers=2, topics=["orders:3"], **kw)


def conn(mock, certs, broker=1, timeout=5.0):
    host, port = mock.brokers[broker].tls.rsplit(":", 1)
    return sw.KafkaConn(host, int(port), cafile=certs / "ca.pem", timeout=timeout)


def kcat_sasl(mech, user, password, certs):
    return ["-X", "security.protocol=SASL_SSL", "-X", f"sasl.mechanisms={mech}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}",
            "-X", f"ssl.ca.location={certs / 'ca.pem'}"]


# --- the wire: exact behaviour -------------------------------------------------------------------

def test_wire_scram_client_matches_rfc_7677():
    """The test's own SCRAM client reproduces RFC 7677's SCRAM-SHA-256 example, so the server
    signature it checks below is an independent, RFC-exact judgement of kbmock's SCRAM."""
    sc = sw.ScramClient("SCRAM-SHA-256", "user", "pencil", cnonce="rOprNGfwEbeRWgbNEkqO")
    assert sc.client_first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = sc.client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert sc.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert not sc.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=")


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("auth_version", [0, 1, 2])
def test_scram_exchange_server_signature_and_session(kbmock, certs, mech, auth_version):
    mock = sasl_mock(kbmock, sasl_session_ms=60000)
    with conn(mock, certs) as c:
        versions = c.api_versions()  # allowed before authentication
        assert versions[sw.API_SASL_HANDSHAKE] == (0, 1)
        assert versions[sw.API_SASL_AUTHENTICATE] == (0, 2)
        assert sw.API_METADATA in versions  # the mock's own list is kept
        err, msg, life = sw.sasl_login(c, mech, *ALICE, version=auth_version)
        assert (err, msg) == (0, None)
        assert life == (60000 if auth_version >= 1 else None)
        assert c.metadata() == 2
    s = mock.stats()
    assert (s["sasl_auths"], s["sasl_failures"], s["sasl_nonce_quirks"]) == (1, 0, 0), s


def test_scram_refuses_wrong_password_wrong_nonce_unknown_user(kbmock, certs):
    mock = sasl_mock(kbmock)
    cases = [("SCRAM-SHA-512", "alice", "not-the-password", {}),
             ("SCRAM-SHA-256", "alice", ALICE[1], {"bad_nonce": True}),
             ("SCRAM-SHA-512", "mallory", "whatever", {})]
    for mech, user, password, opts in cases:
        with conn(mock, certs) as c:
            err, msg, _ = sw.sasl_login(c, mech, user, password, **opts)
            assert err == sw.ERR_SASL_AUTHENTICATION_FAILED, (user, opts, err, msg)
            assert msg == SCRAM_FAILED.format(mech), msg
            assert c.is_closed(), "a failed authentication must close the connection"
    s = mock.stats()
    assert (s["sasl_auths"], s["sasl_failures"]) == (0, 3), s
    log = mock.log_text()
    assert "r= is not the combined nonce" in log and "wrong proof" in log, log
    assert "unknown user 'mallory'" in log
    assert ALICE[1] not in log and "not-the-password" not in log, "a password reached the log"


def test_repeated_client_nonce_tolerated_and_counted_unless_strict(kbmock, certs):
    lenient = sasl_mock(kbmock)
    with conn(lenient, certs) as c:
        err, msg, _ = sw.sasl_login(c, "SCRAM-SHA-512", *ALICE, repeat_nonce=True)
        assert (err, msg) == (0, None)
        assert c.metadata() == 2
    assert lenient.stats()["sasl_nonce_quirks"] == 1

    strict = sasl_mock(kbmock, sasl_strict_nonce=True)
    with conn(strict, certs) as c:
        err, msg, _ = sw.sasl_login(c, "SCRAM-SHA-512", *ALICE, repeat_nonce=True)
        assert err == sw.ERR_SASL_AUTHENTICATION_FAILED, (err, msg)
    with conn(strict, certs) as c:  # the RFC's exact form passes the strict server
        assert sw.sasl_login(c, "SCRAM-SHA-512", *ALICE)[0] == 0
    s = strict.stats()
    assert (s["sasl_auths"], s["sasl_failures"], s["sasl_nonce_quirks"]) == (1, 1, 0), s


def test_plain_ok_wrong_password_and_foreign_authzid(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_mechanisms="PLAIN")
    with conn(mock, certs) as c:
        assert sw.sasl_login(c, "PLAIN", *ALICE, version=2)[:2] == (0, None)
        assert c.metadata() == 2
    with conn(mock, certs) as c:
        err, msg, _ = sw.sasl_login(c, "PLAIN", "alice", "wrong")
        assert (err, msg) == (58, "Authentication failed: Invalid username or password")
        assert c.is_closed()
    with conn(mock, certs) as c:
        assert c.handshake("PLAIN") == (0, ["PLAIN"])
        err, msg, _, _ = c.authenticate(sw.plain_token(*ALICE, authzid="bob"))
        assert err == 58 and "authorization id that is different" in msg, msg
    s = mock.stats()
    assert (s["sasl_auths"], s["sasl_failures"]) == (1, 2), s


def test_unsupported_mechanism_lists_the_enabled_ones(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_mechanisms="SCRAM-SHA-512,PLAIN")
    with conn(mock, certs) as c:
        err, mechs = c.handshake("SCRAM-SHA-256")
        assert err == sw.ERR_UNSUPPORTED_SASL_MECHANISM
        assert mechs == ["PLAIN", "SCRAM-SHA-512"]
        assert c.is_closed()
    assert mock.stats()["sasl_failures"] == 1


def test_requests_before_authentication_close_and_are_counted(kbmock, certs):
    mock = sasl_mock(kbmock)
    with conn(mock, certs) as c:  # straight to Metadata
        with pytest.raises(sw.Closed):
            c.metadata()
    with conn(mock, certs) as c:  # after the handshake, before SaslAuthenticate
        assert c.handshake("SCRAM-SHA-512")[0] == 0
        with pytest.raises(sw.Closed):
            c.metadata()
    s = mock.stats()
    assert (s["sasl_unauth_closes"], s["sasl_auths"]) == (2, 0), s
    assert "Metadata (key 3) v1 before authentication: closing" in mock.log_text()


def test_authenticate_out_of_order_is_illegal_sasl_state(kbmock, certs):
    mock = sasl_mock(kbmock)
    with conn(mock, certs) as c:
        err, msg, _, _ = c.authenticate(b"n,,n=alice,r=abc", version=1)
        assert err == sw.ERR_ILLEGAL_SASL_STATE and "SaslAuthenticate" in msg, (err, msg)
        assert c.is_closed()
    with conn(mock, certs) as c:  # a second handshake while the first one is open
        assert c.handshake("PLAIN")[0] == 0
        assert c.handshake("PLAIN")[0] == sw.ERR_ILLEGAL_SASL_STATE
        assert c.is_closed()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "PLAIN"])
def test_handshake_v0_then_raw_tokens(kbmock, certs, mech):
    mock = sasl_mock(kbmock)
    with conn(mock, certs) as c:
        assert c.handshake(mech, version=0)[0] == 0
        if mech == "PLAIN":
            # Kafka answers PLAIN's raw token with an empty one: a zero size prefix
            assert c.raw_token(sw.plain_token(*ALICE)) == b""
        else:
            sc = sw.ScramClient(mech, *ALICE)
            server_first = c.raw_token(sc.client_first())
            assert sc.verify(c.raw_token(sc.client_final(server_first)))
        assert c.metadata() == 2  # Kafka requests again after the raw exchange
    s = mock.stats()
    assert (s["sasl_auths"], s["sasl_v0_auths"]) == (1, 1), s


def test_raw_token_failure_closes_without_a_response(kbmock, certs):
    mock = sasl_mock(kbmock)
    with conn(mock, certs) as c:
        assert c.handshake("PLAIN", version=0)[0] == 0
        with pytest.raises(sw.Closed):
            c.raw_token(sw.plain_token("alice", "wrong"))
    assert mock.stats()["sasl_failures"] == 1


def test_v0_only_broker_advertises_handshake_v0_and_no_authenticate(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_v0_only=True)
    with conn(mock, certs) as c:
        for version in (0, 1, 2):
            versions = c.api_versions(version)
            assert versions[sw.API_SASL_HANDSHAKE] == (0, 0), versions
            assert sw.API_SASL_AUTHENTICATE not in versions, versions
        assert c.handshake("SCRAM-SHA-512", version=0)[0] == 0
        sc = sw.ScramClient("SCRAM-SHA-512", *ALICE)
        assert sc.verify(c.raw_token(sc.client_final(c.raw_token(sc.client_first()))))
        assert c.metadata() == 2
    with conn(mock, certs) as c:  # a v1 handshake is not something this broker knows
        with pytest.raises(sw.Closed):
            c.handshake("SCRAM-SHA-512", version=1)


def test_session_expiry_closes_a_connection_that_does_not_reauthenticate(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_session_ms=1000)
    with conn(mock, certs) as c:
        err, _, life = sw.sasl_login(c, "SCRAM-SHA-512", *ALICE)
        assert (err, life) == (0, 1000)
        assert c.metadata() == 2
        time.sleep(1.3)
        with pytest.raises(sw.Closed):
            c.metadata()
    s = mock.stats()
    assert (s["sasl_expired_closes"], s["sasl_unauth_closes"]) == (1, 0), s
    assert "after the session of 'alice' expired" in mock.log_text()


def test_reauthentication_extends_the_session_and_keeps_the_principal(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_session_ms=1500)
    with conn(mock, certs) as c:
        assert sw.sasl_login(c, "SCRAM-SHA-256", *ALICE)[0] == 0
        time.sleep(0.8)
        err, msg, life = sw.sasl_login(c, "SCRAM-SHA-256", *ALICE, version=2)
        assert (err, msg, life) == (0, None, 1500)
        time.sleep(1.0)  # past the first session's end, inside the second's
        assert c.metadata() == 2
    with conn(mock, certs) as c:  # re-authentication as somebody else is refused
        assert sw.sasl_login(c, "PLAIN", *ALICE)[0] == 0
        err, msg, _ = sw.sasl_login(c, "PLAIN", "bob", SASL_USERS["bob"])
        assert err == 58 and "Cannot change principals" in msg, (err, msg)
        assert c.is_closed()
    with conn(mock, certs) as c:  # nor with another mechanism
        assert sw.sasl_login(c, "PLAIN", *ALICE)[0] == 0
        assert c.handshake("SCRAM-SHA-512")[0] == sw.ERR_UNSUPPORTED_SASL_MECHANISM
    s = mock.stats()
    assert (s["sasl_auths"], s["sasl_reauths"], s["sasl_expired_closes"]) == (3, 1, 0), s
    assert s["sasl_failures"] == 2, s


def test_sasl_off_front_is_a_kafka_port_without_sasl(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_off=[2])
    with conn(mock, certs, broker=2) as c:
        assert c.metadata() == 2  # no authentication needed
        assert c.handshake("SCRAM-SHA-512") == (sw.ERR_ILLEGAL_SASL_STATE, [])
        assert c.metadata() == 2  # and the connection stays, as on Kafka
    with conn(mock, certs, broker=1) as c:
        with pytest.raises(sw.Closed):
            c.metadata()
    s = mock.stats()
    assert (s["sasl_unauth_closes"], s["sasl_auths"]) == (1, 0), s


def test_without_sasl_options_nothing_changes(kbmock, certs):
    mock = kbmock(mode="msk", brokers=2, topics=["orders:3"])
    with conn(mock, certs) as c:
        assert c.metadata() == 2
    s = mock.stats()
    assert all(v == 0 for k, v in s.items() if k.startswith("sasl_")), s


# --- real clients, straight to kbmock ------------------------------------------------------------

def test_kcat_scram_sha_512_produce_and_consume(kbmock, certs):
    mock = sasl_mock(kbmock)
    bootstrap = ",".join(mock.bootstrap)
    sasl = kcat_sasl("SCRAM-SHA-512", *ALICE, certs)
    lines = [f"kcat-{i}-{uuid.uuid4().hex[:6]}" for i in range(200)]
    r = run([KCAT, "-P", "-b", bootstrap, "-t", "orders", *sasl], input="\n".join(lines) + "\n",
            timeout=40)
    assert r.returncode == 0, r.stderr
    r = run([KCAT, "-C", "-b", bootstrap, "-t", "orders", "-o", "beginning", "-e", "-q", *sasl],
            timeout=40)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(lines)
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0, s
    # librdkafka 2.0.2 repeats its client nonce in client-final: kbmock's tolerance is needed
    assert s["sasl_nonce_quirks"] == s["sasl_auths"], s


def test_kcat_wrong_password_gets_the_brokers_message(kbmock, certs):
    mock = sasl_mock(kbmock)
    r = run([KCAT, "-L", "-b", mock.bootstrap[0], "-m", "3",
             *kcat_sasl("SCRAM-SHA-512", "alice", "wrong", certs)], timeout=30)
    assert r.returncode != 0
    assert SCRAM_FAILED.format("SCRAM-SHA-512") in r.stderr, r.stderr
    s = mock.stats()
    assert s["sasl_failures"] >= 1 and s["sasl_auths"] == 0, s


def test_kcat_refused_by_a_strict_server(kbmock, certs):
    """What librdkafka 2.0.2 sends is exactly the tolerated quirk: strict mode refuses it."""
    mock = sasl_mock(kbmock, sasl_strict_nonce=True)
    r = run([KCAT, "-L", "-b", mock.bootstrap[0], "-m", "3",
             *kcat_sasl("SCRAM-SHA-256", *ALICE, certs)], timeout=30)
    assert r.returncode != 0
    assert SCRAM_FAILED.format("SCRAM-SHA-256") in r.stderr, r.stderr
    assert "r= is not the combined nonce" in mock.log_text()


def test_librdkafka_without_reauthentication_is_cut_when_its_session_ends(kbmock, certs):
    """librdkafka 2.0.2 has no KIP-368: a consumer that outlives its 1-second session is cut at
    its next request (counted), reconnects, authenticates again and still gets what is produced
    afterwards."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    mock = sasl_mock(kbmock, sasl_session_ms=1000)
    conf = {"bootstrap.servers": ",".join(mock.bootstrap), "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": ALICE[0],
            "sasl.password": ALICE[1], "ssl.ca.location": str(certs / "ca.pem"),
            "log_level": 0}
    c = Consumer({**conf, "group.id": "unused", "enable.auto.commit": False})
    got = []
    try:
        c.assign([TopicPartition("orders", 0, 0)])
        deadline = time.monotonic() + 2.5  # past the first session's end
        while time.monotonic() < deadline:
            c.poll(0.2)
        assert mock.stats()["sasl_expired_closes"] >= 1
        p = Producer(conf)
        p.produce("orders", b"after-expiry", partition=0)
        assert p.flush(10) == 0
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        c.close()
    assert got == [b"after-expiry"]
    s = mock.stats()
    assert s["sasl_reauths"] == 0 and s["sasl_failures"] == 0, s
    assert s["sasl_auths"] > s["sasl_expired_closes"], s  # it came back and authenticated


def test_confluent_kafka_scram_sha_256(kbmock, certs):
    from confluent_kafka import Consumer, Producer

    mock = sasl_mock(kbmock)
    conf = {"bootstrap.servers": ",".join(mock.bootstrap), "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": ALICE[0],
            "sasl.password": ALICE[1], "ssl.ca.location": str(certs / "ca.pem")}
    values = {f"ck-{i}".encode() for i in range(100)}
    p = Producer(conf)
    for v in values:
        p.produce("orders", v)
    assert p.flush(20) == 0
    c = Consumer({**conf, "group.id": f"ck-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest"})
    got = set()
    try:
        c.subscribe(["orders"])
        deadline = time.monotonic() + 30
        while got != values and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.add(m.value())
    finally:
        c.close()
    assert got == values
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0 and s["sasl_unauth_closes"] == 0, s


def test_kafka_python_scram_uses_handshake_v0_raw_tokens(kbmock, certs):
    mock = sasl_mock(kbmock)
    common = dict(bootstrap_servers=mock.bootstrap, security_protocol="SASL_SSL",
                  ssl_cafile=str(certs / "ca.pem"), sasl_mechanism="SCRAM-SHA-512",
                  sasl_plain_username=ALICE[0], sasl_plain_password=ALICE[1],
                  request_timeout_ms=10000, api_version_auto_timeout_ms=5000)
    kafka_python_roundtrip(common, "orders", 0)
    s = mock.stats()
    assert s["sasl_v0_auths"] >= 2 and s["sasl_v0_auths"] == s["sasl_auths"], s
    assert s["sasl_failures"] == 0, s


def kafkajs(mock, certs, mech, extra_env=None, count=100, deadline_s=60):
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs is not installed: run `npm ci` in {KAFKAJS_DIR}")
    env = dict(os.environ, KB_BOOTSTRAP=",".join(mock.bootstrap), KB_TOPIC="orders",
               KB_COUNT=str(count), KB_SSL_CA=str(certs / "ca.pem"), KB_SASL_MECHANISM=mech,
               KB_SASL_USERNAME=ALICE[0], KB_SASL_PASSWORD=ALICE[1],
               KB_GROUP=f"kjs-{uuid.uuid4().hex[:6]}", KB_DEADLINE_MS=str(deadline_s * 1000),
               **(extra_env or {}))
    return run([shutil.which("node") or "node", str(KAFKAJS_DIR / "roundtrip.js")],
               timeout=deadline_s + 15, env=env)


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-512"])
def test_kafkajs_producer_and_group(kbmock, certs, mech):
    mock = sasl_mock(kbmock)
    r = kafkajs(mock, certs, mech)
    assert r.returncode == 0, r.stderr
    s = mock.stats()
    assert s["sasl_auths"] >= 2 and s["sasl_failures"] == 0, s
    assert s["sasl_nonce_quirks"] == 0, s  # kafkajs sends RFC 5802's exact nonce


def test_kafkajs_reauthenticates_and_keeps_working(kbmock, certs):
    """kafkajs implements KIP-368: with 2-second sessions and a produce spread over 5 seconds it
    re-authenticates its connections and kbmock never has to cut one."""
    mock = sasl_mock(kbmock, sasl_session_ms=2000)
    r = kafkajs(mock, certs, "SCRAM-SHA-256", count=700,
                extra_env={"KB_REAUTH_THRESHOLD_MS": "1000", "KB_SEND_INTERVAL_MS": "700"})
    assert r.returncode == 0, r.stderr
    s = mock.stats()
    assert s["sasl_reauths"] >= 2, s
    assert s["sasl_expired_closes"] == 0 and s["sasl_failures"] == 0, s


def test_librdkafka_with_a_v0_only_broker_uses_raw_tokens(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_v0_only=True)
    r = run([KCAT, "-L", "-b", mock.bootstrap[0], "-m", "10",
             *kcat_sasl("SCRAM-SHA-256", *ALICE, certs)], timeout=30)
    assert r.returncode == 0, r.stderr
    s = mock.stats()
    assert s["sasl_v0_auths"] >= 1 and s["sasl_v0_auths"] == s["sasl_auths"], s
    assert s["sasl_failures"] == 0, s


def test_kafkajs_with_a_v0_only_broker_uses_raw_tokens(kbmock, certs):
    mock = sasl_mock(kbmock, sasl_v0_only=True)
    r = kafkajs(mock, certs, "SCRAM-SHA-512")
    assert r.returncode == 0, r.stderr
    s = mock.stats()
    assert s["sasl_v0_auths"] >= 2 and s["sasl_v0_auths"] == s["sasl_auths"], s
    assert s["sasl_failures"] == 0, s


def test_produce_acks_0_expects_no_response_and_keeps_sasl_in_order(kbmock, certs):
    """Kafka sends no response to a Produce with acks=0. librdkafka's mock does, so kbmock drops
    it; the SASL request after it (a re-authentication here) must still be answered in order."""
    import struct

    mock = sasl_mock(kbmock)
    with conn(mock, certs) as c:
        assert sw.sasl_login(c, "PLAIN", *ALICE)[0] == 0
        # Produce v3: transactional_id null, acks 0, timeout, no topics
        c.corr += 1
        c.send_frame(struct.pack(">hhi", 0, 3, c.corr) + sw.kstring("t") +
                     struct.pack(">hhii", -1, 0, 1000, 0))
        assert sw.sasl_login(c, "PLAIN", *ALICE)[0] == 0  # answered, not stuck behind it
        assert c.metadata() == 2
    assert mock.stats()["sasl_reauths"] == 1


def test_malformed_frames_close_the_connection_and_kbmock_lives_on(kbmock, certs):
    import struct

    mock = sasl_mock(kbmock)
    bad = [
        struct.pack(">hhi", 17, 1, 1),                                # header cut before client id
        struct.pack(">hhi", 17, 1, 1) + sw.kstring("x") + b"\x00",    # mechanism string cut
        b"\x00",                                                      # frame shorter than a header
    ]
    for payload in bad:
        with conn(mock, certs) as c:
            c.send_frame(payload)
            assert c.is_closed(), payload
    with conn(mock, certs) as c:  # SaslAuthenticate v2 whose auth bytes run past the frame
        assert c.handshake("PLAIN")[0] == 0
        c.send_frame(struct.pack(">hhi", 36, 2, 9) + sw.kstring("x") + b"\x00\x09")
        assert c.is_closed()
    with conn(mock, certs) as c:  # a size prefix far beyond any request
        c.sock.sendall(struct.pack(">i", 0x7FFFFFFF))
        assert c.is_closed()
    with conn(mock, certs) as c:  # a raw token too long for any mechanism
        assert c.handshake("PLAIN", version=0)[0] == 0
        c.send_frame(b"\x00" * 5000)
        assert c.is_closed()
    with conn(mock, certs) as c:  # and the next client is served normally
        assert sw.sasl_login(c, "SCRAM-SHA-512", *ALICE)[0] == 0
        assert c.metadata() == 2
