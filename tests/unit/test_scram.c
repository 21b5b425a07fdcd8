/*
 * test_scram.c - the SCRAM client (auth/scram.h) against RFC 7677 section 3's SCRAM-SHA-256
 * example, a SCRAM-SHA-512 exchange whose expected values were computed independently with
 * Python's hashlib/hmac (pbkdf2_hmac, RFC 5802 formulas; the script is in the comment below),
 * and every check the client makes of the server's messages.
 */
#include "auth/scram.h"

#include <stdio.h>
#include <string.h>

#include "test.h"

#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                                 \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/*
 * SHA-512 case, generated with:
 *   sp = hashlib.pbkdf2_hmac('sha512', b's3cr3t,=pw', b'kbridge-salt-512', 4096)
 *   ck = hmac(sp, 'Client Key'); sk = sha512(ck); am = bare + ',' + sf + ',' + without_proof
 *   proof = ck ^ hmac(sk, am); v = hmac(hmac(sp, 'Server Key'), am)
 * with user "alice=,x" (saslname "alice=3D=2Cx") and client nonce "kbnonce512Client".
 */
#define S512_USER "alice=,x"
#define S512_PASSWORD "s3cr3t,=pw"
#define S512_NONCE "kbnonce512Client"
#define S512_CLIENT_FIRST "n,,n=alice=3D=2Cx,r=kbnonce512Client"
#define S512_SERVER_FIRST "r=kbnonce512Client%Zz9+Yy8Server,s=a2JyaWRnZS1zYWx0LTUxMg==,i=4096"
#define S512_CLIENT_FINAL                                                                          \
    "c=biws,r=kbnonce512Client%Zz9+Yy8Server,p=BwkRFvS5GRp2blLjCd8gYgFbQXw7QuDC67KQHh2qjeCFoPVW"   \
    "ykxqBdu5bh2IFP1kLBAiWgNJY0H6SumcYpFd+w=="
#define S512_SERVER_FINAL                                                                          \
    "v=0XB4vmW4j6CnZZX0+qmb8gO1G3dAz009DqGHgfZefPyHHFLTGY9E7gPGfkEMRs2bYiUQ0CVCzc3PU1JzwqN8Mg=="

static bool
buf_is(const struct auth_buf *b, const char *s)
{
    return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static const uint8_t *
u8(const char *s)
{
    return (const uint8_t *)s;
}

/* Runs client-first with the RFC's user and nonce; the caller goes on from SCRAM_SENT_FIRST. */
static void
rfc_first(struct scram *s, struct auth_buf *out)
{
    char err[256];

    memset(s, 0, sizeof(*s));
    CHECK(scram_client_first(s, SCRAM_SHA_256, "user", "pencil", RFC_NONCE, out, err, sizeof(err)));
}

static void
test_scram_rfc7677_sha256(void)
{
    struct scram s;
    struct auth_buf out = {0};
    char err[256];

    rfc_first(&s, &out);
    CHECK(buf_is(&out, "n,,n=user,r=" RFC_NONCE));
    CHECK(scram_client_final(&s, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), &out, err,
                             sizeof(err)));
    /* exactly RFC 5802's client-final: the combined nonce once, no repeat of ours */
    CHECK(buf_is(&out, RFC_CLIENT_FINAL));
    CHECK(s.password == NULL); /* wiped once the proof exists */
    CHECK(scram_server_final(&s, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL), err, sizeof(err)));
    CHECK_EQ_INT(s.state, SCRAM_DONE);
    auth_buf_free(&out);
    scram_clear(&s);
}

static void
test_scram_sha512_exchange(void)
{
    struct scram s = {0};
    struct auth_buf out = {0};
    char err[256];

    CHECK(scram_client_first(&s, SCRAM_SHA_512, S512_USER, S512_PASSWORD, S512_NONCE, &out, err,
                             sizeof(err)));
    CHECK(buf_is(&out, S512_CLIENT_FIRST));
    CHECK(scram_client_final(&s, u8(S512_SERVER_FIRST), strlen(S512_SERVER_FIRST), &out, err,
                             sizeof(err)));
    CHECK(buf_is(&out, S512_CLIENT_FINAL));
    CHECK(
        scram_server_final(&s, u8(S512_SERVER_FINAL), strlen(S512_SERVER_FINAL), err, sizeof(err)));
    auth_buf_free(&out);
    scram_clear(&s);
}

static void
test_scram_random_nonce(void)
{
    struct scram a = {0}, b = {0};
    struct auth_buf oa = {0}, ob = {0};
    char err[256];

    CHECK(scram_client_first(&a, SCRAM_SHA_512, "u", "p", NULL, &oa, err, sizeof(err)));
    CHECK(scram_client_first(&b, SCRAM_SHA_512, "u", "p", NULL, &ob, err, sizeof(err)));
    CHECK_EQ_INT(strlen(a.nonce), 24);
    CHECK(strcmp(a.nonce, b.nonce) != 0);
    CHECK(strchr(a.nonce, ',') == NULL);
    auth_buf_free(&oa);
    auth_buf_free(&ob);
    scram_clear(&a);
    scram_clear(&b);
}

/* server-first variants that must be refused, each with the words its error must contain */
static void
test_scram_server_first_refused(void)
{
    static const struct {
        const char *msg;
        const char *why;
    } cases[] = {
        {"r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend ours"},
        {"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend ours"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "iteration count 4095"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", "outside 4096"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=16385", "outside 4096"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999", "malformed iteration"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096", "malformed iteration"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "malformed iteration"},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x", "malformed iteration"},
        {"r=" RFC_NONCE "x,s=not*base64,i=4096", "salt that is not base64"},
        {"r=" RFC_NONCE "x,s=,i=4096", "salt that is not base64"},
        {"r=" RFC_NONCE "x,i=4096", "no s="},
        {"r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==", "no i="},
        {"m=ext,r=" RFC_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "mandatory extension"},
        {"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not start with r="},
        {"e=unknown-user", "refused the SCRAM exchange: unknown-user"},
        {"r=,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "empty or non-printable nonce"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scram s;
        struct auth_buf out = {0};
        char err[256] = "";

        rfc_first(&s, &out);
        CHECK(!scram_client_final(&s, u8(cases[i].msg), strlen(cases[i].msg), &out, err,
                                  sizeof(err)));
        CHECK_STR_CONTAINS(err, cases[i].why);
        CHECK(s.password == NULL);
        CHECK_EQ_INT(s.state, SCRAM_SENT_FIRST);
        auth_buf_free(&out);
        scram_clear(&s);
    }
}

static void
test_scram_server_first_bytes_refused(void)
{
    static const uint8_t nul[] = {'r', '=', 'a', 0, 'b'};
    struct scram s;
    struct auth_buf out = {0};
    char err[256], big[SCRAM_MSG_MAX + 2];

    rfc_first(&s, &out);
    CHECK(!scram_client_final(&s, nul, sizeof(nul), &out, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "non-printable byte at offset 3");
    scram_clear(&s);
    rfc_first(&s, &out);
    CHECK(!scram_client_final(&s, NULL, 0, &out, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "server-first is 0 bytes");
    scram_clear(&s);
    rfc_first(&s, &out);
    memset(big, 'a', sizeof(big));
    CHECK(!scram_client_final(&s, u8(big), sizeof(big), &out, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "expected 1-4096");
    auth_buf_free(&out);
    scram_clear(&s);
}

/* Extensions after i= are allowed (RFC 5802 section 7) and are part of AuthMessage. */
static void
test_scram_server_first_extension_kept(void)
{
    static const char *sf = RFC_SERVER_FIRST ",x=ext";
    struct scram s;
    struct auth_buf out = {0};
    char err[256];

    rfc_first(&s, &out);
    CHECK(scram_client_final(&s, u8(sf), strlen(sf), &out, err, sizeof(err)));
    /* the proof covers the extension, so it differs from the RFC's */
    CHECK(out.len == strlen(RFC_CLIENT_FINAL) && !buf_is(&out, RFC_CLIENT_FINAL));
    auth_buf_free(&out);
    scram_clear(&s);
}

static void
test_scram_server_final_checks(void)
{
    static const struct {
        const char *msg;
        const char *why;
    } cases[] = {
        /* the RFC's signature with one character changed */
        {"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "signature does not match"},
        {"v=dGVzdA==", "signature does not match"},
        {"v=", "signature does not match"},
        {"v=***", "not base64"},
        {"e=invalid-proof", "refused the SCRAM exchange: invalid-proof"},
        {"x=1", "neither v= nor e="},
        {"", "server-final is 0 bytes"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scram s;
        struct auth_buf out = {0};
        char err[256] = "";

        rfc_first(&s, &out);
        CHECK(scram_client_final(&s, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), &out, err,
                                 sizeof(err)));
        CHECK(!scram_server_final(&s, u8(cases[i].msg), strlen(cases[i].msg), err, sizeof(err)));
        CHECK_STR_CONTAINS(err, cases[i].why);
        CHECK(s.state != SCRAM_DONE);
        auth_buf_free(&out);
        scram_clear(&s);
    }
}

static void
test_scram_out_of_order_and_bad_input(void)
{
    struct scram s = {0};
    struct auth_buf out = {0};
    char err[256];

    CHECK(
        !scram_server_final(&s, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL), err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "out of order");
    CHECK(!scram_client_final(&s, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), &out, err,
                              sizeof(err)));
    CHECK_STR_CONTAINS(err, "out of order");
    CHECK(!scram_client_first(&s, SCRAM_SHA_256, "", "p", NULL, &out, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "needs a user name");
    CHECK(!scram_client_first(&s, SCRAM_SHA_256, "u", "p", "bad,nonce", &out, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "nonce");
    /* a server-final replayed after the exchange completed */
    rfc_first(&s, &out);
    CHECK(scram_client_final(&s, u8(RFC_SERVER_FIRST), strlen(RFC_SERVER_FIRST), &out, err,
                             sizeof(err)));
    CHECK(scram_server_final(&s, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL), err, sizeof(err)));
    CHECK(
        !scram_server_final(&s, u8(RFC_SERVER_FINAL), strlen(RFC_SERVER_FINAL), err, sizeof(err)));
    auth_buf_free(&out);
    scram_clear(&s);
    CHECK(s.client_first_bare == NULL && s.password == NULL);
}

int
main(void)
{
    RUN(test_scram_rfc7677_sha256);
    RUN(test_scram_sha512_exchange);
    RUN(test_scram_random_nonce);
    RUN(test_scram_server_first_refused);
    RUN(test_scram_server_first_bytes_refused);
    RUN(test_scram_server_first_extension_kept);
    RUN(test_scram_server_final_checks);
    RUN(test_scram_out_of_order_and_bad_input);
    return TEST_DONE();
}
