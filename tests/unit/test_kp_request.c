/*
 * test_kp_request.c - the requests kbridge sends itself (kafka_protocol/kp_request.h), checked
 * against the codec's own request-header decoder and against a golden ApiVersions v0 answer.
 */
#include "kp_request.h"

#include <stdio.h>
#include <stdlib.h>

#include "kp_api.h"
#include "kp_frame.h"
#include "test.h"

static const char *frames_dir = "tests/golden/frames";

static void
test_kp_request_metadata_versions_encode(void)
{
    /* body bytes after the header: topics int32 (+ 1 byte v4+, + 2 bytes v8) */
    static const size_t tail[9] = {0, 4, 4, 4, 5, 5, 5, 5, 7};
    int16_t v;

    for (v = 1; v <= 8; v++) {
        struct kp_writer w;
        struct kp_request_header h;
        size_t size = 0;

        kp_writer_init(&w);
        CHECK_EQ_INT(kp_request_metadata_brokers(&w, v, 77, "kbridge-probe"), KP_OK);
        CHECK_EQ_INT(kp_frame_size(w.buf, w.len, 1 << 20, &size), KP_OK);
        CHECK_EQ_INT(size, w.len - 4);
        CHECK_EQ_INT(kp_request_header_decode(w.buf + 4, size, &h), KP_OK);
        CHECK_EQ_INT(h.api_key, KP_API_METADATA);
        CHECK_EQ_INT(h.api_version, v);
        CHECK_EQ_INT(h.correlation_id, 77);
        CHECK_EQ_INT(h.client_id_len, 13);
        CHECK_EQ_INT(size - h.header_len, tail[v]);
        /* topics: an empty array, never null (null means every topic) */
        CHECK_EQ_INT(w.buf[4 + h.header_len + 3], 0);
        CHECK_EQ_INT(w.buf[4 + h.header_len], 0);
        kp_writer_free(&w);
    }
    {
        struct kp_writer w;
        kp_writer_init(&w);
        CHECK_EQ_INT(kp_request_metadata_brokers(&w, 9, 1, "x"), KP_UNSUPPORTED);
        CHECK_EQ_INT(kp_request_metadata_brokers(&w, 0, 1, "x"), KP_UNSUPPORTED);
        kp_writer_free(&w);
    }
}

static void
test_kp_request_metadata_version_pick(void)
{
    CHECK_EQ_INT(kp_request_metadata_version(0, 2), 2);  /* Debian's mock */
    CHECK_EQ_INT(kp_request_metadata_version(0, 12), 4); /* Kafka 3.x */
    CHECK_EQ_INT(kp_request_metadata_version(4, 13), 4); /* Kafka 4 dropped v0-v3 */
    CHECK_EQ_INT(kp_request_metadata_version(6, 13), 6);
    CHECK_EQ_INT(kp_request_metadata_version(9, 13), -1);  /* flexible only: not written here */
    CHECK_EQ_INT(kp_request_metadata_version(0, 0), -1);   /* v0 cannot ask for no topics */
    CHECK_EQ_INT(kp_request_metadata_version(-1, -1), -1); /* not listed */
}

static void
test_kp_request_api_versions_roundtrip_golden(void)
{
    char path[512];
    uint8_t buf[4096];
    struct kp_writer w;
    struct kp_request_header h;
    struct kp_api_range r;
    size_t n, size = 0, hlen = 0;
    int32_t cid = 0;
    FILE *f;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_request_api_versions(&w, 5, "kb"), KP_OK);
    CHECK_EQ_INT(kp_request_header_decode(w.buf + 4, w.len - 4, &h), KP_OK);
    CHECK_EQ_INT(h.api_key, KP_API_API_VERSIONS);
    CHECK_EQ_INT(h.api_version, 0);
    CHECK_EQ_INT(h.header_len, w.len - 4); /* v0 has no body */
    kp_writer_free(&w);

    snprintf(path, sizeof(path), "%s/apiversions_v0.resp", frames_dir);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) {
        return;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    CHECK_EQ_INT(kp_frame_size(buf, n, sizeof(buf), &size), KP_OK);
    CHECK_EQ_INT(kp_response_header_decode(buf + 4, size, KP_API_API_VERSIONS, 0, &cid, &hlen),
                 KP_OK);
    CHECK_EQ_INT(kp_response_api_versions_v0(buf + 4 + hlen, size - hlen, KP_API_METADATA, &r),
                 KP_OK);
    CHECK_EQ_INT(r.error, 0);
    CHECK(r.n_apis > 10);
    CHECK_EQ_INT(r.min, 0);
    CHECK(r.max >= 2);
    CHECK_EQ_INT(kp_response_api_versions_v0(buf + 4 + hlen, size - hlen, 9999, &r), KP_OK);
    CHECK_EQ_INT(r.min, -1);
    /* every truncation is an error, never a read past the end */
    for (n = 0; n < size - hlen; n++) {
        CHECK_EQ_INT(kp_response_api_versions_v0(buf + 4 + hlen, n, KP_API_METADATA, &r),
                     KP_MALFORMED);
    }
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        frames_dir = argv[1];
    }
    RUN(test_kp_request_metadata_versions_encode);
    RUN(test_kp_request_metadata_version_pick);
    RUN(test_kp_request_api_versions_roundtrip_golden);
    return TEST_DONE();
}
