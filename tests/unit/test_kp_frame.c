/*
 * test_kp_frame.c - kp_frame.h: the size prefix, request headers v0-v2, the Produce acks=0
 * check and response headers v0-v1, built from RequestHeader.json / ResponseHeader.json.
 */
#include <stdint.h>
#include <string.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "test.h"

#define MAX_FRAME 1000

/* Request header fields in front of every request built here. */
static void
put_request_header(struct kp_writer *w, int16_t key, int16_t version, const char *client_id,
                   bool unknown_tag)
{
    kp_writer_i16(w, key);
    kp_writer_i16(w, version);
    kp_writer_i32(w, 0x01020304);
    if (kp_api_request_header_version(key, version) >= 1) {
        kp_writer_string(w, KP_NULLABLE, client_id, client_id ? strlen(client_id) : 0);
    }
    if (kp_api_request_header_version(key, version) >= 2) {
        kp_writer_uvarint(w, unknown_tag ? 1 : 0);
        if (unknown_tag) {
            kp_writer_tag(w, 5, "tag", 3);
        }
    }
}

static void
test_kp_frame_size(void)
{
    static const uint8_t ok[] = {0x00, 0x00, 0x03, 0xe8};
    static const uint8_t neg[] = {0x80, 0x00, 0x00, 0x00};
    static const uint8_t big[] = {0x00, 0x00, 0x03, 0xe9};
    static const uint8_t zero[] = {0, 0, 0, 0};
    size_t size = 7;

    CHECK_EQ_INT(kp_frame_size(ok, 3, MAX_FRAME, &size), KP_INCOMPLETE);
    CHECK_EQ_INT(kp_frame_size(NULL, 0, MAX_FRAME, &size), KP_INCOMPLETE);
    CHECK_EQ_INT(size, 7);
    CHECK_EQ_INT(kp_frame_size(ok, 4, MAX_FRAME, &size), KP_OK);
    CHECK_EQ_INT(size, 1000);
    CHECK_EQ_INT(kp_frame_size(neg, 4, MAX_FRAME, &size), KP_MALFORMED);
    CHECK_EQ_INT(kp_frame_size(big, 4, MAX_FRAME, &size), KP_TOO_LARGE);
    CHECK_EQ_INT(kp_frame_size(zero, 4, MAX_FRAME, &size), KP_OK);
    CHECK_EQ_INT(size, 0);
}

/* Decodes w's request header and checks the fields put_request_header wrote. */
static void
check_request_header(const struct kp_writer *w, int16_t key, int16_t version, const char *client_id,
                     int header_version)
{
    struct kp_request_header h;
    size_t cut;

    CHECK_EQ_INT(kp_request_header_decode(w->buf, w->len, &h), KP_OK);
    CHECK_EQ_INT(h.api_key, key);
    CHECK_EQ_INT(h.api_version, version);
    CHECK_EQ_INT(h.correlation_id, 0x01020304);
    CHECK_EQ_INT(h.header_version, header_version);
    CHECK_EQ_INT(h.header_len, w->len);
    if (client_id) {
        CHECK_EQ_INT(h.client_id_len, strlen(client_id));
        CHECK(h.client_id && memcmp(h.client_id, client_id, strlen(client_id)) == 0);
    } else {
        CHECK_EQ_INT(h.client_id_len, -1);
        CHECK(h.client_id == NULL);
    }
    for (cut = 0; cut < w->len; cut++) {
        CHECK_EQ_INT(kp_request_header_decode(w->buf, cut, &h), KP_INCOMPLETE);
    }
}

static void
test_kp_frame_request_header_versions(void)
{
    struct kp_writer w;

    kp_writer_init(&w); /* v0: ControlledShutdown v0 has no client id */
    put_request_header(&w, KP_API_CONTROLLED_SHUTDOWN, 0, NULL, false);
    check_request_header(&w, KP_API_CONTROLLED_SHUTDOWN, 0, NULL, 0);
    kp_writer_free(&w);

    kp_writer_init(&w); /* v1: Metadata v8 */
    put_request_header(&w, KP_API_METADATA, 8, "rdkafka", false);
    check_request_header(&w, KP_API_METADATA, 8, "rdkafka", 1);
    kp_writer_free(&w);

    kp_writer_init(&w); /* v2: Metadata v9, int16 client id, then tags (with an unknown one) */
    put_request_header(&w, KP_API_METADATA, 9, "kwire", true);
    check_request_header(&w, KP_API_METADATA, 9, "kwire", 2);
    kp_writer_free(&w);

    kp_writer_init(&w); /* null client id in v2 */
    put_request_header(&w, KP_API_API_VERSIONS, 3, NULL, false);
    check_request_header(&w, KP_API_API_VERSIONS, 3, NULL, 2);
    kp_writer_free(&w);

    kp_writer_init(&w); /* SaslHandshake is never flexible */
    put_request_header(&w, KP_API_SASL_HANDSHAKE, 1, "c", false);
    check_request_header(&w, KP_API_SASL_HANDSHAKE, 1, "c", 1);
    kp_writer_free(&w);

    kp_writer_init(&w); /* an unknown key is decoded as header v1 */
    put_request_header(&w, 999, 4, "x", false);
    check_request_header(&w, 999, 4, "x", 1);
    kp_writer_free(&w);
}

static void
test_kp_frame_request_header_malformed(void)
{
    static const uint8_t neg_client_id[] = {0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe};
    static const uint8_t bad_tags[] = {0, 3,    0,    9,    0,    0,    0,    1,   0,
                                       0, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    struct kp_request_header h;

    CHECK_EQ_INT(kp_request_header_decode(neg_client_id, sizeof(neg_client_id), &h), KP_MALFORMED);
    CHECK_EQ_INT(kp_request_header_decode(bad_tags, sizeof(bad_tags), &h), KP_MALFORMED);
}

/* A Produce request up to Acks: TransactionalId v3+ (compact v9+), Acks, TimeoutMs. */
static void
put_produce(struct kp_writer *w, int16_t version, const char *txn, int16_t acks)
{
    unsigned flex = kp_api_is_flexible(KP_API_PRODUCE, version) ? KP_COMPACT : 0;

    put_request_header(w, KP_API_PRODUCE, version, "producer", true);
    if (version >= 3) {
        kp_writer_string(w, flex | KP_NULLABLE, txn, txn ? strlen(txn) : 0);
    }
    kp_writer_i16(w, acks);
    kp_writer_i32(w, 30000);
}

static void
test_kp_frame_produce_acks(void)
{
    static const int16_t versions[] = {0, 2, 3, 8, 9, 11};
    static const char *const txns[] = {NULL, "", "txn-1"};
    static const int16_t acks[] = {0, 1, -1};
    size_t v, t, a;

    for (v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        for (t = 0; t < 3; t++) {
            for (a = 0; a < 3; a++) {
                struct kp_writer w;
                struct kp_request_header h;
                bool expects = acks[a] == 0;
                size_t cut;

                kp_writer_init(&w);
                put_produce(&w, versions[v], txns[t], acks[a]);
                CHECK_EQ_INT(kp_request_header_decode(w.buf, w.len, &h), KP_OK);
                CHECK_EQ_INT(kp_request_expects_response(w.buf, w.len, &h, &expects), KP_OK);
                CHECK(expects == (acks[a] != 0));
                /* Acks must be there in full: everything up to it is INCOMPLETE */
                for (cut = h.header_len; cut < w.len - 4; cut++) {
                    CHECK_EQ_INT(kp_request_expects_response(w.buf, cut, &h, &expects),
                                 KP_INCOMPLETE);
                }
                CHECK_EQ_INT(kp_request_expects_response(w.buf, h.header_len - 1, &h, &expects),
                             KP_INCOMPLETE);
                kp_writer_free(&w);
            }
        }
    }
}

static void
test_kp_frame_other_requests_expect_response(void)
{
    struct kp_writer w;
    struct kp_request_header h;
    bool expects = false;

    kp_writer_init(&w);
    put_request_header(&w, KP_API_FETCH, 12, "c", false);
    CHECK_EQ_INT(kp_request_header_decode(w.buf, w.len, &h), KP_OK);
    CHECK_EQ_INT(kp_request_expects_response(w.buf, w.len, &h, &expects), KP_OK);
    CHECK(expects);
    kp_writer_free(&w);
}

static void
test_kp_frame_produce_bad_transactional_id(void)
{
    struct kp_writer w;
    struct kp_request_header h;
    bool expects;

    kp_writer_init(&w);
    put_request_header(&w, KP_API_PRODUCE, 7, "c", false);
    kp_writer_i16(&w, -7); /* TransactionalId length -7 */
    kp_writer_i16(&w, 0);
    CHECK_EQ_INT(kp_request_header_decode(w.buf, w.len, &h), KP_OK);
    CHECK_EQ_INT(kp_request_expects_response(w.buf, w.len, &h, &expects), KP_MALFORMED);
    kp_writer_free(&w);
}

static void
test_kp_frame_response_headers(void)
{
    static const uint8_t v0[] = {0, 0, 0, 42, 0xaa};
    static const uint8_t v1[] = {0, 0, 0, 42, 0x01, 0x03, 0x02, 'h', 'i', 0xaa};
    static const uint8_t v1_bad[] = {0, 0, 0, 42, 0x01, 0x03, 0x09, 'h'};
    int32_t id = 0;
    size_t hlen = 0, cut;

    CHECK_EQ_INT(kp_response_header_decode(v0, sizeof(v0), KP_API_METADATA, 8, &id, &hlen), KP_OK);
    CHECK(id == 42 && hlen == 4);
    CHECK_EQ_INT(kp_response_header_decode(v1, sizeof(v1), KP_API_METADATA, 9, &id, &hlen), KP_OK);
    CHECK_EQ_INT(hlen, 9);
    /* ApiVersions: header v0 even at v3+ (the first body byte is not a tag count) */
    CHECK_EQ_INT(kp_response_header_decode(v1, sizeof(v1), KP_API_API_VERSIONS, 3, &id, &hlen),
                 KP_OK);
    CHECK_EQ_INT(hlen, 4);
    CHECK_EQ_INT(kp_response_header_decode(v1_bad, sizeof(v1_bad), KP_API_FETCH, 12, &id, &hlen),
                 KP_INCOMPLETE);
    for (cut = 0; cut < 9; cut++) {
        CHECK_EQ_INT(kp_response_header_decode(v1, cut, KP_API_DESCRIBE_CLUSTER, 0, &id, &hlen),
                     KP_INCOMPLETE);
    }
}

/* kp_frame_response_peek: size and correlation id, every short and bad prefix named. */
static void
test_kp_frame_response_peek(void)
{
    const uint8_t ok[] = {0, 0, 0, 6, 0x7f, 0xff, 0xff, 0xff, 0, 0};
    const uint8_t neg[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1};
    const uint8_t tiny[] = {0, 0, 0, 3, 0, 0, 0, 1};
    const uint8_t big[] = {0, 0x10, 0, 0, 0, 0, 0, 1};
    size_t size = 0, n;
    int32_t cid = 0;

    CHECK(kp_frame_response_peek(ok, sizeof(ok), 100, &size, &cid) == KP_OK);
    CHECK_EQ_INT(size, 6);
    CHECK_EQ_INT(cid, 2147483647);
    for (n = 0; n < KP_RESPONSE_PEEK; n++) {
        CHECK(kp_frame_response_peek(ok, n, 100, &size, &cid) == KP_INCOMPLETE);
    }
    CHECK(kp_frame_response_peek(neg, sizeof(neg), 100, &size, &cid) == KP_MALFORMED);
    CHECK(kp_frame_response_peek(tiny, sizeof(tiny), 100, &size, &cid) == KP_MALFORMED);
    CHECK(kp_frame_response_peek(big, sizeof(big), 100, &size, &cid) == KP_TOO_LARGE);
}

/* kp_request_plausible: requests yes, raw SASL tokens of every common mechanism no. */
static void
test_kp_frame_request_plausible(void)
{
    /* Metadata v1, correlation id 7, client id "c". */
    const uint8_t md[] = {0, 3, 0, 1, 0, 0, 0, 7, 0, 1, 'c', 0xff, 0xff, 0xff, 0xff};
    const char scram_first[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const char scram_final[] = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=x";
    const uint8_t plain[] = {0, 'u', 's', 'e', 'r', 0, 'p', 'e', 'n', 'c', 'i', 'l'};
    const uint8_t plain_short[] = {0, 'A', 0, 'p', 'w'};
    const uint8_t gssapi[] = {0x60, 0x82, 0x02, 0x5b, 0x06, 0x09, 0x2a, 0x86, 0x48};
    const uint8_t oauth_fail[] = {0x01};
    const uint8_t bad_version[] = {0, 3, 0, 40, 0, 0, 0, 7, 0, 1, 'c'};

    CHECK(kp_request_plausible(md, sizeof(md)));
    CHECK(!kp_request_plausible((const uint8_t *)scram_first, strlen(scram_first)));
    CHECK(!kp_request_plausible((const uint8_t *)scram_final, strlen(scram_final)));
    CHECK(!kp_request_plausible(plain, sizeof(plain)));
    CHECK(!kp_request_plausible(plain_short, sizeof(plain_short)));
    CHECK(!kp_request_plausible(gssapi, sizeof(gssapi)));
    CHECK(!kp_request_plausible(oauth_fail, sizeof(oauth_fail)));
    CHECK(!kp_request_plausible(bad_version, sizeof(bad_version)));
}

int
main(void)
{
    RUN(test_kp_frame_size);
    RUN(test_kp_frame_request_header_versions);
    RUN(test_kp_frame_request_header_malformed);
    RUN(test_kp_frame_produce_acks);
    RUN(test_kp_frame_other_requests_expect_response);
    RUN(test_kp_frame_produce_bad_transactional_id);
    RUN(test_kp_frame_response_headers);
    RUN(test_kp_frame_response_peek);
    RUN(test_kp_frame_request_plausible);
    return TEST_DONE();
}
