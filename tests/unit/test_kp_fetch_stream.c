/*
 * test_kp_fetch_stream.c - the streamed FetchResponse path (kp_fetch_stream.h) on the spec-built
 * Fetch v13-v17 frames in tests/fuzz/seeds (written by test_kp_rewrite from
 * ../shared/kafka-spec) and on tails built here: chopped anywhere it gives the whole-body
 * rewrite's bytes when the length is kept; a shorter NodeEndpoints is padded, a longer one
 * dropped, both to the exact original length; cut and hostile bodies are refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fetch_stream_drive.h"
#include "kp_api.h"
#include "kp_buf.h"
#include "kp_fetch_stream.h"
#include "kp_frame.h"
#include "kp_rewrite.h"
#include "test.h"

#define MSK "b-1.ecommercekafka.13b4qv.c2.kafka.ap-south-1.amazonaws.com"
#define SEEDS "tests/fuzz/seeds/"

/* A frame file's body (after prefix and header), read into a heap buffer. */
struct frame {
    uint8_t *buf; /* whole file */
    size_t len;   /* file bytes */
    size_t body;  /* offset of the body */
};

static bool
frame_load(const char *name, int16_t v, struct frame *f)
{
    char path[256];
    FILE *fp;
    long n;
    int32_t cid;
    size_t hlen;

    snprintf(path, sizeof(path), SEEDS "%s", name);
    fp = fopen(path, "rb");
    if (!fp) {
        return false;
    }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    f->buf = malloc((size_t)n);
    f->len = f->buf && fread(f->buf, 1, (size_t)n, fp) == (size_t)n ? (size_t)n : 0;
    fclose(fp);
    if (f->len < KP_FRAME_PREFIX ||
        kp_response_header_decode(f->buf + KP_FRAME_PREFIX, f->len - KP_FRAME_PREFIX, KP_API_FETCH,
                                  v, &cid, &hlen) != KP_OK) {
        return false;
    }
    f->body = KP_FRAME_PREFIX + hlen;
    return true;
}

/* Maps every address to host (len bytes) and port 9000 + node. */
struct to_host {
    const char *host;
    size_t len;
};

static bool
map_to(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
       const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    const struct to_host *t = arg;

    (void)host;
    (void)host_len;
    (void)port;
    *new_host = t->host;
    *new_host_len = t->len;
    *new_port = 9000 + node_id;
    return true;
}

static bool
contains(const uint8_t *p, size_t len, const char *s)
{
    size_t n = strlen(s), i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(p + i, s, n) == 0) {
            return true;
        }
    }
    return false;
}

/* Every version's spec frame, chopped 200 ways: identity and same-length maps equal whole-body. */
static void
test_fetch_stream_equals_whole_body(void)
{
    static char same[sizeof(MSK)];
    struct to_host t = {same, sizeof(MSK) - 1};
    int16_t v;
    uint32_t seed;

    memset(same, 'k', sizeof(MSK) - 1);
    for (v = 13; v <= 17; v++) {
        char name[64];
        struct frame f;

        snprintf(name, sizeof(name), "spec_Fetch_v%d.resp", v);
        CHECK(frame_load(name, v, &f));
        for (seed = 0; seed < 200 && f.len; seed++) {
            const uint8_t *body = f.buf + f.body;
            size_t len = f.len - f.body, passed = 0;
            struct kp_writer whole, streamed, ident;
            struct kp_fetch_tail_stats fs;

            kp_writer_init(&whole);
            kp_writer_init(&streamed);
            kp_writer_init(&ident);
            CHECK(drive_stream(v, body, len, seed, NULL, NULL, &ident, NULL, NULL, NULL) == KP_OK);
            CHECK(ident.len == len && memcmp(ident.buf, body, len) == 0);
            CHECK(kp_rewrite_response(KP_API_FETCH, v, body, len, map_to, &t, &whole, NULL, NULL) ==
                  KP_OK);
            CHECK(drive_stream(v, body, len, seed, map_to, &t, &streamed, NULL, &fs, &passed) ==
                  KP_OK);
            CHECK(whole.len == len && streamed.len == len && !fs.padded);
            CHECK(streamed.len == whole.len && memcmp(streamed.buf, whole.buf, len) == 0);
            CHECK(memcmp(streamed.buf, body, passed) == 0); /* only the tail was held */
            CHECK(v < 16 || !contains(streamed.buf + passed, len - passed, MSK));
            CHECK(v < 16 || contains(body + passed, len - passed, MSK));
            kp_writer_free(&whole);
            kp_writer_free(&streamed);
            kp_writer_free(&ident);
        }
        free(f.buf);
    }
}

/* Shorter hosts: padded with tag 0x3FFF to the exact length; longer: NodeEndpoints dropped. */
static void
test_fetch_stream_pad_and_drop(void)
{
    static char longer[400];
    struct to_host shorter = {"kb", 2}, grow = {longer, sizeof(longer)};
    struct frame f;
    struct kp_writer out, check;
    struct kp_fetch_tail_stats fs;
    struct kp_rewrite_stats st;
    size_t len, passed;

    memset(longer, 'g', sizeof(longer));
    CHECK(frame_load("spec_Fetch_v17.resp", 17, &f));
    if (!f.len) {
        return;
    }
    len = f.len - f.body;
    kp_writer_init(&out);
    CHECK(drive_stream(17, f.buf + f.body, len, 7, map_to, &shorter, &out, &st, &fs, &passed) ==
          KP_OK);
    CHECK(out.len == len && fs.padded && !fs.dropped && st.rewritten > 0);
    CHECK(!contains(out.buf + passed, len - passed, MSK));
    CHECK(contains(out.buf + passed, len - passed, "kb"));
    CHECK(memcmp(out.buf, f.buf + f.body, passed) == 0); /* topics and records untouched */
    /* the padded body is a valid Fetch v17 body: the Java and librdkafka parsers skip tag 0x3FFF */
    kp_writer_init(&check);
    CHECK(kp_rewrite_response(KP_API_FETCH, 17, out.buf, out.len, NULL, NULL, &check, &st, NULL) ==
          KP_OK);
    CHECK(st.addresses > 0);
    kp_writer_free(&check);
    kp_writer_free(&out);

    kp_writer_init(&out);
    CHECK(drive_stream(17, f.buf + f.body, len, 3, map_to, &grow, &out, &st, &fs, &passed) ==
          KP_OK);
    CHECK(out.len == len && fs.padded && fs.dropped);
    CHECK(!contains(out.buf + passed, len - passed, MSK));
    CHECK(!contains(out.buf + passed, len - passed, "ggg"));
    kp_writer_init(&check);
    CHECK(kp_rewrite_response(KP_API_FETCH, 17, out.buf, out.len, NULL, NULL, &check, &st, NULL) ==
          KP_OK);
    CHECK_EQ_INT(st.addresses, 0); /* no NodeEndpoints left: the client refreshes Metadata */
    kp_writer_free(&check);
    kp_writer_free(&out);
    free(f.buf);
}

/* A tail: [count 1][tag 0, NodeEndpoints: one broker, host of hlen 'h', no rack]. */
static size_t
build_tail(uint8_t *t, size_t hlen)
{
    struct kp_writer data, w;
    static char host[300];
    size_t n;

    memset(host, 'h', sizeof(host));
    kp_writer_init(&data);
    kp_writer_init(&w);
    kp_writer_array_len(&data, KP_COMPACT, 1);
    kp_writer_i32(&data, 1);
    kp_writer_string(&data, KP_COMPACT, host, hlen);
    kp_writer_i32(&data, 9092);
    kp_writer_string(&data, KP_COMPACT | KP_NULLABLE, NULL, 0);
    kp_writer_uvarint(&data, 0);
    kp_writer_uvarint(&w, 1);
    kp_writer_tag(&w, 0, data.buf, data.len);
    n = w.len;
    memcpy(t, w.buf, n);
    kp_writer_free(&data);
    kp_writer_free(&w);
    return n;
}

/* Every shrink from 1 to 200 bytes (1-2: no padding field fits; 131: only a 3-byte tag does). */
static void
test_fetch_tail_every_difference(void)
{
    static char host[300];
    uint8_t tail[512];
    size_t d, len;

    memset(host, 'n', sizeof(host));
    for (d = 1; d <= 200; d++) {
        struct to_host t = {host, 250 - d};
        struct kp_fetch_tail_stats fs;
        struct kp_rewrite_stats st;
        struct kp_writer out, check;

        len = build_tail(tail, 250);
        kp_writer_init(&out);
        kp_writer_init(&check);
        CHECK(kp_fetch_tail_rewrite(17, tail, len, map_to, &t, &out, &st, &fs, NULL) == KP_OK);
        CHECK_EQ_INT(out.len, len);
        CHECK(fs.padded);
        CHECK_EQ_INT(fs.dropped, d < 3);
        CHECK(!contains(out.buf, out.len, "hhh"));
        /* a valid tag section: one tag 0 (or none when dropped) and the padding */
        CHECK(kp_fetch_tail_rewrite(17, out.buf, out.len, NULL, NULL, &check, &st, &fs, NULL) ==
              KP_OK);
        CHECK_EQ_INT(st.addresses, d < 3 ? 0 : 1);
        CHECK(check.len == out.len && memcmp(check.buf, out.buf, out.len) == 0);
        kp_writer_free(&out);
        kp_writer_free(&check);
    }
}

/* The status of the whole-body rewrite of body[0..len) (identity map). */
static enum kp_status
whole_status(int16_t v, const uint8_t *body, size_t len)
{
    struct kp_writer w;
    enum kp_status st;

    kp_writer_init(&w);
    st = kp_rewrite_response(KP_API_FETCH, v, body, len, NULL, NULL, &w, NULL, NULL);
    kp_writer_free(&w);
    return st;
}

/*
 * Cut bodies and every byte set to 0xff in turn (hostile counts and lengths): the streamed path
 * refuses exactly what the whole-body path refuses, and never by asking for more bytes.
 */
static void
test_fetch_stream_refuses_bad_bodies(void)
{
    struct frame f;
    struct kp_writer out;
    size_t len, cut, refused = 0;
    uint8_t *copy;
    enum kp_status st;

    CHECK(frame_load("spec_Fetch_v16.resp", 16, &f));
    if (!f.len) {
        return;
    }
    len = f.len - f.body;
    copy = malloc(len);
    for (cut = 0; cut < len; cut++) {
        kp_writer_init(&out);
        st = drive_stream(16, f.buf + f.body, cut, (uint32_t)cut, NULL, NULL, &out, NULL, NULL,
                          NULL);
        CHECK_EQ_INT(st, whole_status(16, f.buf + f.body, cut));
        refused += st == KP_MALFORMED;
        kp_writer_free(&out);

        memcpy(copy, f.buf + f.body, len);
        copy[cut] = 0xff;
        kp_writer_init(&out);
        st = drive_stream(16, copy, len, (uint32_t)cut, NULL, NULL, &out, NULL, NULL, NULL);
        CHECK_EQ_INT(st, whole_status(16, copy, len));
        kp_writer_free(&out);
    }
    CHECK(refused > len - 10); /* nearly every cut is malformed */
    free(copy);
    free(f.buf);
    {
        struct kp_fetch_scan s;

        CHECK(kp_fetch_scan_init(&s, 12, 10) == KP_UNSUPPORTED);
        CHECK(kp_fetch_scan_init(&s, 18, 10) == KP_UNSUPPORTED);
    }
}

int
main(void)
{
    RUN(test_fetch_stream_equals_whole_body);
    RUN(test_fetch_stream_pad_and_drop);
    RUN(test_fetch_tail_every_difference);
    RUN(test_fetch_stream_refuses_bad_bodies);
    return TEST_DONE();
}
