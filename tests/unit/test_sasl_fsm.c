/*
 * test_sasl_fsm.c - the broker-side SASL state machine (proxy/sasl_fsm.h) fed broker answers
 * built here: PLAIN at SaslAuthenticate v0-v2, a three-message test mechanism, SCRAM-SHA-256
 * against a strict RFC 5802 server written in this file with libcrypto, and every way a broker
 * can refuse, truncate or garble an answer (each must fail with a named sentence, never crash).
 */
#include "proxy/sasl_fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/b64.h"
#include "kp_api.h"
#include "kp_frame.h"
#include "kp_sasl.h"
#include "test.h"

/* A response frame under construction (no size prefix: the FSM takes frames without it). */
static void
resp_begin(struct kp_writer *w, int32_t corr, bool header_tags)
{
    kp_writer_init(w);
    kp_writer_i32(w, corr);
    if (header_tags) {
        kp_writer_uvarint(w, 0);
    }
}

/* ApiVersions v0 answer listing (key, min, max) triples. */
static void
resp_api_versions(struct kp_writer *w, int32_t corr, const int16_t *keys, size_t n)
{
    size_t i;

    resp_begin(w, corr, false);
    kp_writer_i16(w, 0);
    kp_writer_array_len(w, 0, (int32_t)n);
    for (i = 0; i < n * 3; i++) {
        kp_writer_i16(w, keys[i]);
    }
}

static void
resp_handshake(struct kp_writer *w, int32_t corr, int16_t error, const char *mechs)
{
    const char *p = mechs;
    int32_t n = 0;

    resp_begin(w, corr, false);
    kp_writer_i16(w, error);
    while (*p) {
        n++;
        p += strlen(p) + 1;
    }
    kp_writer_array_len(w, 0, n);
    for (p = mechs; *p; p += strlen(p) + 1) {
        kp_writer_string(w, 0, p, strlen(p));
    }
}

static void
resp_authenticate(struct kp_writer *w, int16_t v, int32_t corr, int16_t error, const char *msg,
                  const void *bytes, size_t len, int64_t lifetime)
{
    unsigned flags = v >= 2 ? KP_COMPACT : 0;

    resp_begin(w, corr, v >= 2);
    kp_writer_i16(w, error);
    kp_writer_string(w, flags | KP_NULLABLE, msg, msg ? strlen(msg) : 0);
    kp_writer_bytes(w, flags, bytes, len);
    if (v >= 1) {
        kp_writer_i64(w, lifetime);
    }
    if (v >= 2) {
        kp_writer_uvarint(w, 0);
    }
}

/* The request the FSM wrote: header fields and, for SaslAuthenticate, its AuthBytes. */
struct sent {
    struct kp_request_header h;
    struct kp_view auth; /* SaslAuthenticate AuthBytes */
    char mech[64];       /* SaslHandshake Mechanism */
};

static bool
parse_sent(const struct kp_writer *out, struct sent *s)
{
    struct kp_reader r;
    size_t size = 0;
    struct kp_view v;

    memset(s, 0, sizeof(*s));
    if (kp_frame_size(out->buf, out->len, 1 << 20, &size) != KP_OK || size != out->len - 4 ||
        kp_request_header_decode(out->buf + 4, size, &s->h) != KP_OK) {
        return false;
    }
    kp_reader_init(&r, out->buf + 4 + s->h.header_len, size - s->h.header_len);
    if (s->h.api_key == KP_API_SASL_HANDSHAKE) {
        if (kp_reader_string(&r, 0, &v) != KP_OK || v.len >= sizeof(s->mech)) {
            return false;
        }
        memcpy(s->mech, v.ptr, v.len);
    } else if (s->h.api_key == KP_API_SASL_AUTHENTICATE) {
        if (kp_reader_bytes(&r, s->h.api_version >= 2 ? KP_COMPACT : 0, &s->auth) != KP_OK) {
            return false;
        }
        if (s->h.api_version >= 2 && kp_reader_skip_tags(&r) != KP_OK) {
            return false;
        }
    }
    return kp_reader_remaining(&r) == 0;
}

static const int16_t apis_v2[] = {17, 0, 1, 36, 0, 2, 18, 0, 3};
static const struct auth_creds plain_creds = {
    .username = "bob", .password = "kbsecret", .host = "b-1"};

/* Runs start + ApiVersions (SaslAuthenticate max auth_max) + a good handshake. */
static struct sasl_fsm *
to_authenticate(const char *mech, const struct auth_creds *creds, int16_t auth_max,
                struct kp_writer *out, struct sent *s)
{
    int16_t apis[] = {17, 0, 1, 36, 0, auth_max};
    char why[512] = "";
    struct kp_writer resp;
    struct sasl_fsm *f = sasl_fsm_new(auth_mech_find(mech), creds, "kbridge", -1, why, sizeof(why));

    CHECK(f != NULL);
    kp_writer_init(out);
    CHECK_EQ_INT(sasl_fsm_start(f, out, why, sizeof(why)), SASL_FSM_SEND);
    CHECK(parse_sent(out, s));
    CHECK_EQ_INT(s->h.api_key, KP_API_API_VERSIONS);
    CHECK_EQ_INT(s->h.api_version, 0);
    resp_api_versions(&resp, s->h.correlation_id, apis, 2);
    kp_writer_free(out);
    CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, out, why, sizeof(why)), SASL_FSM_SEND);
    kp_writer_free(&resp);
    CHECK(parse_sent(out, s));
    CHECK_EQ_INT(s->h.api_key, KP_API_SASL_HANDSHAKE);
    CHECK_EQ_INT(s->h.api_version, 1);
    CHECK(strcmp(s->mech, mech) == 0);
    resp_handshake(&resp, s->h.correlation_id, 0, "SCRAM-SHA-256\0PLAIN\0");
    kp_writer_free(out);
    CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, out, why, sizeof(why)), SASL_FSM_SEND);
    kp_writer_free(&resp);
    CHECK(parse_sent(out, s));
    CHECK_EQ_INT(s->h.api_key, KP_API_SASL_AUTHENTICATE);
    return f;
}

static void
test_sasl_fsm_plain_every_version(void)
{
    int16_t v;

    for (v = 0; v <= 2; v++) {
        struct kp_writer out, resp;
        struct sent s;
        char why[512] = "";
        struct sasl_fsm *f = to_authenticate("PLAIN", &plain_creds, v, &out, &s);

        CHECK_EQ_INT(s.h.api_version, v);
        CHECK_EQ_INT(s.h.header_version, v >= 2 ? 2 : 1);
        CHECK(s.auth.len == 13 && memcmp(s.auth.ptr, "\0bob\0kbsecret", 13) == 0);
        resp_authenticate(&resp, v, s.h.correlation_id, 0, NULL, "", 0, 4000);
        kp_writer_free(&out);
        kp_writer_init(&out);
        CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, sizeof(why)),
                     SASL_FSM_OK);
        CHECK_EQ_INT(out.len, 0);
        CHECK_EQ_INT(sasl_fsm_state(f), SASL_FSM_DONE);
        CHECK_EQ_INT(sasl_fsm_session_lifetime_ms(f), v >= 1 ? 4000 : 0);
        CHECK_EQ_INT(sasl_fsm_auth_version(f), v);
        /* nothing more is accepted */
        CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, sizeof(why)),
                     SASL_FSM_FAIL);
        kp_writer_free(&resp);
        kp_writer_free(&out);
        sasl_fsm_free(f);
    }
}

static void
test_sasl_fsm_picks_highest_authenticate(void)
{
    struct kp_writer out;
    struct sent s;
    struct sasl_fsm *f = to_authenticate("PLAIN", &plain_creds, 9, &out, &s);

    CHECK_EQ_INT(s.h.api_version, 2);
    kp_writer_free(&out);
    sasl_fsm_free(f);
}

/* Runs to the ApiVersions answer and feeds resp; returns the result, why filled. */
static enum sasl_fsm_result
feed_api_versions(const int16_t *apis, size_t n, char *why, size_t whylen)
{
    struct kp_writer out, resp;
    struct sent s;
    struct sasl_fsm *f =
        sasl_fsm_new(auth_mech_find("PLAIN"), &plain_creds, "kbridge", -1, why, whylen);
    enum sasl_fsm_result r;

    kp_writer_init(&out);
    (void)sasl_fsm_start(f, &out, why, whylen);
    CHECK(parse_sent(&out, &s));
    resp_api_versions(&resp, s.h.correlation_id, apis, n);
    kp_writer_free(&out);
    r = sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, whylen);
    kp_writer_free(&resp);
    kp_writer_free(&out);
    sasl_fsm_free(f);
    return r;
}

static void
test_sasl_fsm_api_versions_refused(void)
{
    static const int16_t no_auth[] = {17, 0, 1, 18, 0, 3};
    static const int16_t hs_v0[] = {17, 0, 0, 36, 0, 2};
    static const int16_t auth_new[] = {17, 0, 1, 36, 3, 4};
    char why[512] = "";

    CHECK_EQ_INT(feed_api_versions(no_auth, 2, why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "authentication failed (PLAIN): the broker offers no usable "
                            "SaslAuthenticate version (-1--1");
    CHECK_EQ_INT(feed_api_versions(hs_v0, 2, why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "does not offer SaslHandshake v1");
    CHECK_EQ_INT(feed_api_versions(auth_new, 2, why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "no usable SaslAuthenticate version (3-4");
    CHECK_EQ_INT(feed_api_versions(apis_v2, 3, why, sizeof(why)), SASL_FSM_SEND);
}

/* sasl_fsm_broker_error() of the last feed_handshake() exchange. */
static int16_t handshake_broker_error;

/* Runs to the handshake answer and feeds a handshake response with error and mechs. */
static enum sasl_fsm_result
feed_handshake(int16_t error, const char *mechs, char *why, size_t whylen)
{
    struct kp_writer out, resp;
    struct sent s;
    struct sasl_fsm *f =
        sasl_fsm_new(auth_mech_find("SCRAM-SHA-512"), &plain_creds, "kbridge", 2, why, whylen);
    enum sasl_fsm_result r;

    kp_writer_init(&out);
    /* auth_version known (re-authentication): the first request is the handshake */
    CHECK_EQ_INT(sasl_fsm_start(f, &out, why, whylen), SASL_FSM_SEND);
    CHECK(parse_sent(&out, &s));
    CHECK_EQ_INT(s.h.api_key, KP_API_SASL_HANDSHAKE);
    resp_handshake(&resp, s.h.correlation_id, error, mechs);
    kp_writer_free(&out);
    r = sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, whylen);
    if (r == SASL_FSM_SEND) {
        CHECK(parse_sent(&out, &s));
        CHECK_EQ_INT(s.h.api_key, KP_API_SASL_AUTHENTICATE);
        CHECK_EQ_INT(s.h.api_version, 2);
    }
    handshake_broker_error = sasl_fsm_broker_error(f);
    kp_writer_free(&resp);
    kp_writer_free(&out);
    sasl_fsm_free(f);
    return r;
}

static void
test_sasl_fsm_handshake_refused(void)
{
    char why[512] = "";

    CHECK_EQ_INT(feed_handshake(KP_ERR_UNSUPPORTED_SASL_MECHANISM, "SCRAM-SHA-256\0PLAIN\0", why,
                                sizeof(why)),
                 SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "authentication failed (SCRAM-SHA-512): mechanism not enabled on "
                            "this listener; the broker offers: SCRAM-SHA-256, PLAIN");
    CHECK_STR_CONTAINS(why, "9096");
    /* the code itself, for callers that name the cause (kbridge check) */
    CHECK_EQ_INT(handshake_broker_error, KP_ERR_UNSUPPORTED_SASL_MECHANISM);
    CHECK_EQ_INT(feed_handshake(KP_ERR_ILLEGAL_SASL_STATE, "", why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "this listener does not take SASL (ILLEGAL_SASL_STATE)");
    CHECK_EQ_INT(handshake_broker_error, KP_ERR_ILLEGAL_SASL_STATE);
    CHECK_EQ_INT(feed_handshake(99, "", why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "answered SaslHandshake with error 99");
    CHECK_EQ_INT(handshake_broker_error, 99);
    CHECK_EQ_INT(feed_handshake(0, "SCRAM-SHA-512\0", why, sizeof(why)), SASL_FSM_SEND);
    CHECK_EQ_INT(handshake_broker_error, 0);
}

static void
test_sasl_fsm_credentials_refused(void)
{
    int16_t v;

    for (v = 0; v <= 2; v++) {
        struct kp_writer out, resp;
        struct sent s;
        char why[512] = "";
        struct sasl_fsm *f = to_authenticate("PLAIN", &plain_creds, v, &out, &s);

        resp_authenticate(&resp, v, s.h.correlation_id, KP_ERR_SASL_AUTHENTICATION_FAILED,
                          "Authentication failed: Invalid username or password\n", "", 0, 0);
        kp_writer_free(&out);
        CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, sizeof(why)),
                     SASL_FSM_FAIL);
        CHECK_STR_CONTAINS(why, "authentication failed (PLAIN): the broker refused: "
                                "Authentication failed: Invalid username or password? "
                                "(SASL_AUTHENTICATION_FAILED, error 58)");
        CHECK(strstr(why, "kbsecret") == NULL);
        CHECK_EQ_INT(sasl_fsm_state(f), SASL_FSM_FAILED);
        CHECK_EQ_INT(sasl_fsm_broker_error(f), KP_ERR_SASL_AUTHENTICATION_FAILED);
        kp_writer_free(&resp);
        kp_writer_free(&out);
        sasl_fsm_free(f);
    }
}

static void
test_sasl_fsm_wrong_correlation_id(void)
{
    struct kp_writer out, resp;
    struct sent s;
    char why[512] = "";
    struct sasl_fsm *f = to_authenticate("PLAIN", &plain_creds, 1, &out, &s);

    resp_authenticate(&resp, 1, s.h.correlation_id + 1, 0, NULL, "", 0, 0);
    kp_writer_free(&out);
    CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, sizeof(why)),
                 SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "answered correlation id");
    kp_writer_free(&resp);
    kp_writer_free(&out);
    sasl_fsm_free(f);
}

/* Every prefix of each good answer fails with a named sentence; the whole answer works. */
static void
test_sasl_fsm_every_truncation(void)
{
    int stage;

    for (stage = 0; stage < 3; stage++) {
        struct kp_writer out, resp;
        struct sent s;
        char why[512];
        size_t cut, full;
        struct sasl_fsm *f;

        /* build the answer for this stage from a fresh exchange */
        f = to_authenticate("PLAIN", &plain_creds, 2, &out, &s);
        sasl_fsm_free(f);
        kp_writer_free(&out);
        if (stage == 0) {
            resp_api_versions(&resp, SASL_CORRELATION_BASE + 1, apis_v2, 3);
        } else if (stage == 1) {
            resp_handshake(&resp, SASL_CORRELATION_BASE + 2, 0, "PLAIN\0");
        } else {
            resp_authenticate(&resp, 2, SASL_CORRELATION_BASE + 3, 0, NULL, "", 0, 9);
        }
        full = resp.len;
        for (cut = 0; cut <= full; cut++) {
            int step;

            f = sasl_fsm_new(auth_mech_find("PLAIN"), &plain_creds, "kbridge", -1, why,
                             sizeof(why));
            kp_writer_init(&out);
            (void)sasl_fsm_start(f, &out, why, sizeof(why));
            for (step = 0; step < stage; step++) {
                struct kp_writer r2;

                if (step == 0) {
                    resp_api_versions(&r2, SASL_CORRELATION_BASE + 1, apis_v2, 3);
                } else {
                    resp_handshake(&r2, SASL_CORRELATION_BASE + 2, 0, "PLAIN\0");
                }
                kp_writer_free(&out);
                CHECK_EQ_INT(sasl_fsm_on_response(f, r2.buf, r2.len, &out, why, sizeof(why)),
                             SASL_FSM_SEND);
                kp_writer_free(&r2);
            }
            kp_writer_free(&out);
            why[0] = '\0';
            if (cut < full) {
                CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, cut, &out, why, sizeof(why)),
                             SASL_FSM_FAIL);
                CHECK_STR_CONTAINS(why, "authentication failed (PLAIN): ");
                CHECK(strstr(why, "truncated") || strstr(why, "malformed"));
            } else {
                CHECK(sasl_fsm_on_response(f, resp.buf, cut, &out, why, sizeof(why)) !=
                      SASL_FSM_FAIL);
            }
            kp_writer_free(&out);
            sasl_fsm_free(f);
        }
        kp_writer_free(&resp);
    }
}

/* Garbage of every length at every stage: a named failure or (rarely) progress, no crash. */
static void
test_sasl_fsm_garbage(void)
{
    uint8_t junk[64];
    unsigned seed = 12345;
    int round;

    for (round = 0; round < 3000; round++) {
        struct kp_writer out;
        char why[512] = "";
        size_t len = (size_t)(round % (int)sizeof(junk)), i;
        struct sasl_fsm *f = sasl_fsm_new(auth_mech_find("SCRAM-SHA-256"), &plain_creds, "kbridge",
                                          round % 2 ? 1 : -1, why, sizeof(why));

        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (uint8_t)(seed >> 16);
        }
        if (len >= 4) { /* mostly the right correlation id, to get past the header */
            int32_t corr = SASL_CORRELATION_BASE + 1;
            junk[0] = (uint8_t)(corr >> 24);
            junk[1] = (uint8_t)(corr >> 16);
            junk[2] = (uint8_t)(corr >> 8);
            junk[3] = (uint8_t)corr;
        }
        kp_writer_init(&out);
        (void)sasl_fsm_start(f, &out, why, sizeof(why));
        kp_writer_free(&out);
        if (sasl_fsm_on_response(f, junk, len, &out, why, sizeof(why)) == SASL_FSM_FAIL) {
            CHECK_STR_CONTAINS(why, SASL_FAIL_PREFIX " (SCRAM-SHA-256): ");
        }
        kp_writer_free(&out);
        sasl_fsm_free(f);
    }
}

/* --- a three-message test mechanism, to drive several SaslAuthenticate rounds ------------- */

struct three_state {
    int sent; /* messages written */
};

static bool
three_start(void *state, const struct auth_creds *c, struct auth_buf *out, char *err, size_t errlen)
{
    (void)c;
    (void)err;
    (void)errlen;
    ((struct three_state *)state)->sent = 1;
    return auth_buf_set(out, "m1", 2);
}

static bool
three_step(void *state, const uint8_t *in, size_t len, struct auth_buf *out, bool *done, char *err,
           size_t errlen)
{
    struct three_state *t = state;
    char want[16];

    snprintf(want, sizeof(want), "s%d", t->sent);
    if (len != strlen(want) || memcmp(in, want, len) != 0) {
        snprintf(err, errlen, "three: unexpected server message");
        return false;
    }
    if (t->sent == 3) {
        *done = true;
        return true;
    }
    snprintf(want, sizeof(want), "m%d", ++t->sent);
    return auth_buf_set(out, want, strlen(want));
}

static void
three_clear(void *state)
{
    (void)state;
}

static const struct auth_mech three_mech = {"THREE", sizeof(struct three_state), three_start,
                                            three_step, three_clear};

static void
test_sasl_fsm_several_rounds(void)
{
    struct kp_writer out, resp;
    struct sent s;
    char why[512] = "", srv[8];
    struct sasl_fsm *f = sasl_fsm_new(&three_mech, &plain_creds, "kbridge", 1, why, sizeof(why));
    int i;

    kp_writer_init(&out);
    CHECK_EQ_INT(sasl_fsm_start(f, &out, why, sizeof(why)), SASL_FSM_SEND);
    CHECK(parse_sent(&out, &s));
    resp_handshake(&resp, s.h.correlation_id, 0, "THREE\0");
    kp_writer_free(&out);
    CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, sizeof(why)),
                 SASL_FSM_SEND);
    kp_writer_free(&resp);
    for (i = 1; i <= 3; i++) {
        CHECK(parse_sent(&out, &s));
        snprintf(srv, sizeof(srv), "m%d", i);
        CHECK(s.auth.len == 2 && memcmp(s.auth.ptr, srv, 2) == 0);
        snprintf(srv, sizeof(srv), "s%d", i);
        resp_authenticate(&resp, 1, s.h.correlation_id, 0, NULL, srv, 2, 1000 * i);
        kp_writer_free(&out);
        CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, sizeof(why)),
                     i < 3 ? SASL_FSM_SEND : SASL_FSM_OK);
        kp_writer_free(&resp);
    }
    CHECK_EQ_INT(sasl_fsm_session_lifetime_ms(f), 3000); /* from the final answer */
    kp_writer_free(&out);
    sasl_fsm_free(f);
}

/* --- SCRAM-SHA-256 against a strict RFC 5802 server built here ----------------------------- */

/* Server-side check of client-final (proof), returns the v= message; "" when the proof fails. */
static void
scram_server(const char *password, const char *client_first_bare, const char *server_first,
             const char *client_final, bool corrupt_signature, char *out, size_t outlen)
{
    static const uint8_t salt[] = "kbridge-test-salt";
    const EVP_MD *md = EVP_sha256();
    uint8_t sp[32], ck[32], sk[32], csig[32], proof[64], svk[32], ss[32], h[32];
    char am[2048], sig_b64[64];
    const char *p = strstr(client_final, ",p=");
    size_t plen = 0, i;
    unsigned int hl;

    out[0] = '\0';
    if (!p || !b64_decode(p + 3, strlen(p + 3), proof, sizeof(proof), &plen) || plen != 32) {
        return;
    }
    snprintf(am, sizeof(am), "%s,%s,%.*s", client_first_bare, server_first, (int)(p - client_final),
             client_final);
    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt) - 1, 4096, md, 32, sp);
    HMAC(md, sp, 32, (const uint8_t *)"Client Key", 10, ck, &hl);
    EVP_Digest(ck, 32, sk, NULL, md, NULL);
    HMAC(md, sk, 32, (const uint8_t *)am, strlen(am), csig, &hl);
    for (i = 0; i < 32; i++) {
        proof[i] ^= csig[i]; /* the client key, if the proof is right */
    }
    EVP_Digest(proof, 32, h, NULL, md, NULL);
    if (memcmp(h, sk, 32) != 0) {
        return;
    }
    HMAC(md, sp, 32, (const uint8_t *)"Server Key", 10, svk, &hl);
    HMAC(md, svk, 32, (const uint8_t *)am, strlen(am), ss, &hl);
    if (corrupt_signature) {
        ss[0] ^= 1;
    }
    b64_encode(ss, 32, false, sig_b64, sizeof(sig_b64));
    snprintf(out, outlen, "v=%s", sig_b64);
}

static enum sasl_fsm_result
run_scram(const char *server_password, bool corrupt_signature, char *why, size_t whylen)
{
    static const struct auth_creds creds = {
        .username = "user", .password = "pencil", .host = "b-1"};
    struct kp_writer out, resp;
    struct sent s;
    char bare[256], sf[512], cf[512], sfinal[128];
    struct sasl_fsm *f = to_authenticate("SCRAM-SHA-256", &creds, 2, &out, &s);
    enum sasl_fsm_result r;

    /* client-first: "n,,n=user,r=<nonce>"; the server extends the nonce */
    CHECK(s.auth.len > 3 && s.auth.len < sizeof(bare));
    snprintf(bare, sizeof(bare), "%.*s", (int)s.auth.len - 3, (const char *)s.auth.ptr + 3);
    CHECK(strncmp(bare, "n=user,r=", 9) == 0);
    snprintf(sf, sizeof(sf), "r=%sSrvNonce,s=a2JyaWRnZS10ZXN0LXNhbHQ=,i=4096", bare + 9);
    resp_authenticate(&resp, 2, s.h.correlation_id, 0, NULL, sf, strlen(sf), 0);
    kp_writer_free(&out);
    CHECK_EQ_INT(sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, whylen), SASL_FSM_SEND);
    kp_writer_free(&resp);
    CHECK(parse_sent(&out, &s));
    snprintf(cf, sizeof(cf), "%.*s", (int)s.auth.len, (const char *)s.auth.ptr);
    /* exactly RFC 5802: the combined nonce once, then the proof */
    CHECK(strncmp(cf, "c=biws,r=", 9) == 0 && strstr(cf, "SrvNonce,p=") != NULL);
    scram_server(server_password, bare, sf, cf, corrupt_signature, sfinal, sizeof(sfinal));
    if (!sfinal[0]) {
        resp_authenticate(&resp, 2, s.h.correlation_id, KP_ERR_SASL_AUTHENTICATION_FAILED,
                          "Authentication failed during authentication due to invalid "
                          "credentials with SASL mechanism SCRAM-SHA-256",
                          "", 0, 0);
    } else {
        resp_authenticate(&resp, 2, s.h.correlation_id, 0, NULL, sfinal, strlen(sfinal), 4000);
    }
    kp_writer_free(&out);
    r = sasl_fsm_on_response(f, resp.buf, resp.len, &out, why, whylen);
    if (r == SASL_FSM_OK) {
        CHECK_EQ_INT(sasl_fsm_session_lifetime_ms(f), 4000);
    }
    kp_writer_free(&resp);
    kp_writer_free(&out);
    sasl_fsm_free(f);
    return r;
}

static void
test_sasl_fsm_scram_strict_server(void)
{
    char why[512] = "";

    CHECK_EQ_INT(run_scram("pencil", false, why, sizeof(why)), SASL_FSM_OK);
    CHECK_EQ_INT(run_scram("other", false, why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "authentication failed (SCRAM-SHA-256): the broker refused: "
                            "Authentication failed during authentication due to invalid "
                            "credentials");
    /* a server that does not know the password cannot fake the signature */
    CHECK_EQ_INT(run_scram("pencil", true, why, sizeof(why)), SASL_FSM_FAIL);
    CHECK_STR_CONTAINS(why, "server signature does not match");
}

static void
test_sasl_fsm_bad_start(void)
{
    static const struct auth_creds nouser = {.username = "", .password = "x", .host = "b-1"};
    char why[256] = "";

    CHECK(sasl_fsm_new(auth_mech_find("PLAIN"), &nouser, "kbridge", -1, why, sizeof(why)) == NULL);
    CHECK_STR_CONTAINS(why, "authentication failed (PLAIN): PLAIN needs a user name");
    sasl_fsm_free(NULL);
}

int
main(void)
{
    RUN(test_sasl_fsm_plain_every_version);
    RUN(test_sasl_fsm_picks_highest_authenticate);
    RUN(test_sasl_fsm_api_versions_refused);
    RUN(test_sasl_fsm_handshake_refused);
    RUN(test_sasl_fsm_credentials_refused);
    RUN(test_sasl_fsm_wrong_correlation_id);
    RUN(test_sasl_fsm_every_truncation);
    RUN(test_sasl_fsm_garbage);
    RUN(test_sasl_fsm_several_rounds);
    RUN(test_sasl_fsm_scram_strict_server);
    RUN(test_sasl_fsm_bad_start);
    return TEST_DONE();
}
