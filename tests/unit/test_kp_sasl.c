/*
 * test_kp_sasl.c - SaslHandshake / SaslAuthenticate encoders and response readers
 * (kafka_protocol/kp_sasl.h): byte-exact frames written from the spec JSON by hand, every
 * truncation offset of each response, and malformed lengths.
 */
#include "kp_sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_api.h"
#include "kp_frame.h"
#include "test.h"

static bool
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static void
test_kp_sasl_handshake_request_bytes(void)
{
    /* size, key 17, v1, corr 7, client "kb", mechanism "PLAIN" */
    static const uint8_t want[] = {0, 0, 0,   19,  0, 17, 0,   1,   0,   0,   0,  7,
                                   0, 2, 'k', 'b', 0, 5,  'P', 'L', 'A', 'I', 'N'};
    struct kp_writer w;
    struct kp_request_header h;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_handshake_request(&w, 1, 7, "kb", "PLAIN"), KP_OK);
    CHECK(bytes_eq(w.buf, w.len, want, sizeof(want)));
    CHECK_EQ_INT(kp_request_header_decode(w.buf + 4, w.len - 4, &h), KP_OK);
    CHECK_EQ_INT(h.api_key, KP_API_SASL_HANDSHAKE);
    CHECK_EQ_INT(h.header_version, 1);
    kp_writer_free(&w);
    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_handshake_request(&w, 2, 7, "kb", "PLAIN"), KP_UNSUPPORTED);
    CHECK_EQ_INT(kp_sasl_handshake_request(&w, -1, 7, "kb", "PLAIN"), KP_UNSUPPORTED);
    CHECK_EQ_INT(w.len, 0);
    kp_writer_free(&w);
}

static void
test_kp_sasl_authenticate_request_v0_v1(void)
{
    static const uint8_t want[] = {0, 0, 0,   19,  0, 36, 0, 1, 0,   0, 1,  0,
                                   0, 2, 'k', 'b', 0, 0,  0, 3, 'a', 0, 'b'};
    static const uint8_t auth[] = {'a', 0, 'b'};
    struct kp_writer w;
    int16_t v;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_authenticate_request(&w, 1, 256, "kb", auth, 3), KP_OK);
    CHECK(bytes_eq(w.buf, w.len, want, sizeof(want)));
    kp_writer_free(&w);
    for (v = 0; v <= 2; v++) {
        struct kp_request_header h;

        kp_writer_init(&w);
        CHECK_EQ_INT(kp_sasl_authenticate_request(&w, v, 9, "kbridge", auth, 3), KP_OK);
        CHECK_EQ_INT(kp_request_header_decode(w.buf + 4, w.len - 4, &h), KP_OK);
        CHECK_EQ_INT(h.api_version, v);
        CHECK_EQ_INT(h.header_version, v >= 2 ? 2 : 1);
        CHECK_EQ_INT(h.correlation_id, 9);
        kp_writer_free(&w);
    }
    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_authenticate_request(&w, 3, 9, "kb", auth, 3), KP_UNSUPPORTED);
    kp_writer_free(&w);
}

static void
test_kp_sasl_authenticate_request_v2_flexible(void)
{
    /* header v2: client id int16 string then empty tags; body: compact bytes (len+1), tags */
    static const uint8_t want[] = {0, 0, 0, 17,  0,   36, 0, 2,   0,   0, 0,
                                   5, 0, 2, 'k', 'b', 0,  3, 'x', 'y', 0};
    static const uint8_t auth[] = {'x', 'y'};
    struct kp_writer w;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_authenticate_request(&w, 2, 5, "kb", auth, 2), KP_OK);
    CHECK(bytes_eq(w.buf, w.len, want, sizeof(want)));
    kp_writer_free(&w);
}

static void
test_kp_sasl_handshake_response_decodes(void)
{
    static const uint8_t body[] = {0,   0,   0,   0,   0,   2,   0,   5,   'P', 'L',
                                   'A', 'I', 'N', 0,   13,  'S', 'C', 'R', 'A', 'M',
                                   '-', 'S', 'H', 'A', '-', '5', '1', '2'};
    struct kp_sasl_handshake_result res;

    CHECK_EQ_INT(kp_sasl_handshake_response(body, sizeof(body), "SCRAM-SHA-512", &res), KP_OK);
    CHECK_EQ_INT(res.error, 0);
    CHECK_EQ_INT(res.n_mechanisms, 2);
    CHECK(res.offered);
    CHECK(strcmp(res.mechanisms, "PLAIN, SCRAM-SHA-512") == 0);
    CHECK_EQ_INT(kp_sasl_handshake_response(body, sizeof(body), "SCRAM-SHA-256", &res), KP_OK);
    CHECK(!res.offered);
    /* a prefix of a listed name is not the name */
    CHECK_EQ_INT(kp_sasl_handshake_response(body, sizeof(body), "PLAI", &res), KP_OK);
    CHECK(!res.offered);
}

static void
test_kp_sasl_handshake_response_error_and_unprintable(void)
{
    /* UNSUPPORTED_SASL_MECHANISM, mechanisms ["A\n"] */
    static const uint8_t body[] = {0, 33, 0, 0, 0, 1, 0, 2, 'A', '\n'};
    struct kp_sasl_handshake_result res;

    CHECK_EQ_INT(kp_sasl_handshake_response(body, sizeof(body), "PLAIN", &res), KP_OK);
    CHECK_EQ_INT(res.error, KP_ERR_UNSUPPORTED_SASL_MECHANISM);
    CHECK(strcmp(res.mechanisms, "A?") == 0);
}

static void
test_kp_sasl_handshake_response_every_truncation(void)
{
    static const uint8_t body[] = {0, 0, 0, 0, 0, 2, 0, 1, 'A', 0, 2, 'B', 'C'};
    struct kp_sasl_handshake_result res;
    size_t cut;

    for (cut = 0; cut < sizeof(body); cut++) {
        CHECK_EQ_INT(kp_sasl_handshake_response(body, cut, "A", &res), KP_INCOMPLETE);
        CHECK(!res.offered);
    }
    CHECK_EQ_INT(kp_sasl_handshake_response(body, sizeof(body), "A", &res), KP_OK);
}

static void
test_kp_sasl_handshake_response_malformed(void)
{
    static const uint8_t neg_count[] = {0, 0, 0xff, 0xff, 0xff, 0xfe};
    static const uint8_t null_name[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff};
    static const uint8_t huge_count[] = {0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, 'A'};
    struct kp_sasl_handshake_result res;

    CHECK_EQ_INT(kp_sasl_handshake_response(neg_count, sizeof(neg_count), "A", &res), KP_MALFORMED);
    CHECK_EQ_INT(kp_sasl_handshake_response(null_name, sizeof(null_name), "A", &res), KP_MALFORMED);
    /* a count that cannot fit in the bytes left never drives a long loop */
    CHECK_EQ_INT(kp_sasl_handshake_response(huge_count, sizeof(huge_count), "A", &res),
                 KP_INCOMPLETE);
}

/* A SaslAuthenticate response body of version v: error, message, bytes "srv", lifetime. */
static size_t
auth_body(int16_t v, int16_t error, const char *msg, int64_t lifetime, uint8_t *out)
{
    struct kp_writer w;
    unsigned flags = v >= 2 ? KP_COMPACT : 0;
    size_t n;

    kp_writer_init(&w);
    kp_writer_i16(&w, error);
    kp_writer_string(&w, flags | KP_NULLABLE, msg, msg ? strlen(msg) : 0);
    kp_writer_bytes(&w, flags, "srv", 3);
    if (v >= 1) {
        kp_writer_i64(&w, lifetime);
    }
    if (v >= 2) {
        kp_writer_uvarint(&w, 1); /* one unknown tagged field, skipped */
        kp_writer_tag(&w, 5, "zz", 2);
    }
    n = w.len;
    memcpy(out, w.buf, n);
    kp_writer_free(&w);
    return n;
}

static void
test_kp_sasl_authenticate_response_versions(void)
{
    uint8_t body[128];
    int16_t v;

    for (v = 0; v <= 2; v++) {
        struct kp_sasl_auth_result res;
        size_t n = auth_body(v, 0, NULL, 4000, body);

        CHECK_EQ_INT(kp_sasl_authenticate_response(body, n, v, &res), KP_OK);
        CHECK_EQ_INT(res.error, 0);
        CHECK(res.error_message.null);
        CHECK(bytes_eq(res.auth_bytes.ptr, res.auth_bytes.len, (const uint8_t *)"srv", 3));
        CHECK_EQ_INT(res.session_lifetime_ms, v >= 1 ? 4000 : 0);

        n = auth_body(v, KP_ERR_SASL_AUTHENTICATION_FAILED, "bad password", 0, body);
        CHECK_EQ_INT(kp_sasl_authenticate_response(body, n, v, &res), KP_OK);
        CHECK_EQ_INT(res.error, 58);
        CHECK(!res.error_message.null);
        CHECK(bytes_eq(res.error_message.ptr, res.error_message.len,
                       (const uint8_t *)"bad password", 12));
    }
    {
        struct kp_sasl_auth_result res;
        CHECK_EQ_INT(kp_sasl_authenticate_response(body, 4, 3, &res), KP_UNSUPPORTED);
    }
}

static void
test_kp_sasl_authenticate_response_every_truncation(void)
{
    uint8_t body[128];
    int16_t v;

    for (v = 0; v <= 2; v++) {
        size_t n = auth_body(v, 58, "no", 9, body), cut;
        struct kp_sasl_auth_result res;

        for (cut = 0; cut < n; cut++) {
            CHECK_EQ_INT(kp_sasl_authenticate_response(body, cut, v, &res), KP_INCOMPLETE);
            CHECK_EQ_INT(res.error, 0);
            CHECK(res.auth_bytes.ptr == NULL);
        }
    }
}

static void
test_kp_sasl_authenticate_response_malformed(void)
{
    /* v0: error 0, message length -2 */
    static const uint8_t neg_msg[] = {0, 0, 0xff, 0xfe, 0, 0, 0, 0};
    /* v0: bytes length -1 (AuthBytes is not nullable) */
    static const uint8_t null_bytes[] = {0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    /* v1: negative session lifetime */
    static const uint8_t neg_life[] = {0,    0,    0xff, 0xff, 0,    0,    0,    0,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    /* v2: compact bytes 0 = null */
    static const uint8_t v2_null[] = {0, 0, 0, 0, 0};
    /* v2: varint that never ends */
    static const uint8_t v2_varint[] = {0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    struct kp_sasl_auth_result res;

    CHECK_EQ_INT(kp_sasl_authenticate_response(neg_msg, sizeof(neg_msg), 0, &res), KP_MALFORMED);
    CHECK_EQ_INT(kp_sasl_authenticate_response(null_bytes, sizeof(null_bytes), 0, &res),
                 KP_MALFORMED);
    CHECK_EQ_INT(kp_sasl_authenticate_response(neg_life, sizeof(neg_life), 1, &res), KP_MALFORMED);
    CHECK_EQ_INT(res.session_lifetime_ms, 0);
    CHECK_EQ_INT(kp_sasl_authenticate_response(v2_null, sizeof(v2_null), 2, &res), KP_MALFORMED);
    CHECK_EQ_INT(kp_sasl_authenticate_response(v2_varint, sizeof(v2_varint), 2, &res),
                 KP_MALFORMED);
}

static void
test_kp_sasl_error_responses_round_trip(void)
{
    struct kp_writer w;
    struct kp_sasl_handshake_result hs;
    size_t size = 0, hlen = 0;
    int32_t corr = 0;
    int16_t v;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_handshake_error_response(&w, 42, KP_ERR_ILLEGAL_SASL_STATE), KP_OK);
    CHECK_EQ_INT(kp_frame_size(w.buf, w.len, 1 << 20, &size), KP_OK);
    CHECK_EQ_INT(size, w.len - 4);
    CHECK_EQ_INT(kp_response_header_decode(w.buf + 4, size, KP_API_SASL_HANDSHAKE, 1, &corr, &hlen),
                 KP_OK);
    CHECK_EQ_INT(corr, 42);
    CHECK_EQ_INT(kp_sasl_handshake_response(w.buf + 4 + hlen, size - hlen, NULL, &hs), KP_OK);
    CHECK_EQ_INT(hs.error, KP_ERR_ILLEGAL_SASL_STATE);
    CHECK_EQ_INT(hs.n_mechanisms, 0);
    kp_writer_free(&w);
    for (v = 0; v <= 2; v++) {
        struct kp_sasl_auth_result res;

        kp_writer_init(&w);
        CHECK_EQ_INT(kp_sasl_authenticate_error_response(&w, v, 43, KP_ERR_ILLEGAL_SASL_STATE,
                                                         "remove the SASL settings"),
                     KP_OK);
        CHECK_EQ_INT(kp_frame_size(w.buf, w.len, 1 << 20, &size), KP_OK);
        CHECK_EQ_INT(
            kp_response_header_decode(w.buf + 4, size, KP_API_SASL_AUTHENTICATE, v, &corr, &hlen),
            KP_OK);
        CHECK_EQ_INT(corr, 43);
        CHECK_EQ_INT(kp_sasl_authenticate_response(w.buf + 4 + hlen, size - hlen, v, &res), KP_OK);
        CHECK_EQ_INT(res.error, KP_ERR_ILLEGAL_SASL_STATE);
        CHECK_EQ_INT(res.error_message.len, 24);
        CHECK_EQ_INT(res.auth_bytes.len, 0);
        kp_writer_free(&w);
    }
    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_authenticate_error_response(&w, 3, 1, 34, NULL), KP_UNSUPPORTED);
    kp_writer_free(&w);
}

static void
test_kp_sasl_authenticate_version_pick(void)
{
    CHECK_EQ_INT(kp_sasl_authenticate_version(0, 2), 2);
    CHECK_EQ_INT(kp_sasl_authenticate_version(0, 5), 2);
    CHECK_EQ_INT(kp_sasl_authenticate_version(0, 1), 1);
    CHECK_EQ_INT(kp_sasl_authenticate_version(0, 0), 0);
    CHECK_EQ_INT(kp_sasl_authenticate_version(3, 5), -1);
    CHECK_EQ_INT(kp_sasl_authenticate_version(-1, -1), -1);
}

/* kp_sasl_handshake_response_write: a mechanism list of one, byte for byte. */
static void
test_kp_sasl_handshake_response_one_mechanism(void)
{
    static const uint8_t want[] = {0,   0,   0,   25,  0,   0,   0,   9,   0,   0,
                                   0,   0,   0,   1,   0,   13,  'S', 'C', 'R', 'A',
                                   'M', '-', 'S', 'H', 'A', '-', '5', '1', '2'};
    struct kp_writer w;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_sasl_handshake_response_write(&w, 9, 0, "SCRAM-SHA-512"), KP_OK);
    CHECK_EQ_INT(w.len, sizeof(want));
    CHECK(w.len == sizeof(want) && memcmp(w.buf, want, sizeof(want)) == 0);
    kp_writer_free(&w);
}

int
main(void)
{
    RUN(test_kp_sasl_handshake_response_one_mechanism);
    RUN(test_kp_sasl_handshake_request_bytes);
    RUN(test_kp_sasl_authenticate_request_v0_v1);
    RUN(test_kp_sasl_authenticate_request_v2_flexible);
    RUN(test_kp_sasl_handshake_response_decodes);
    RUN(test_kp_sasl_handshake_response_error_and_unprintable);
    RUN(test_kp_sasl_handshake_response_every_truncation);
    RUN(test_kp_sasl_handshake_response_malformed);
    RUN(test_kp_sasl_authenticate_response_versions);
    RUN(test_kp_sasl_authenticate_response_every_truncation);
    RUN(test_kp_sasl_authenticate_response_malformed);
    RUN(test_kp_sasl_error_responses_round_trip);
    RUN(test_kp_sasl_authenticate_version_pick);
    return TEST_DONE();
}
