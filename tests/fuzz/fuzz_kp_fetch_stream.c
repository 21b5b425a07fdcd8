/*
 * fuzz_kp_fetch_stream.c - differential harness: the streamed FetchResponse path
 * (kp_fetch_scan_feed over arrivals chopped at fuzzer-chosen points, then kp_fetch_tail_rewrite)
 * against the whole-body kp_rewrite_response. Input, two forms:
 *   - a whole response frame (size prefix == bytes that follow), like the spec_Fetch seeds: its
 *     body is tried as Fetch v13-v17, chopped by a seed taken from its length;
 *   - anything else: byte 0 picks the version (13 + b % 5), bytes 1-4 the chop seed, the rest
 *     is the body.
 * The map replaces each address in turn by a same-length host, a 1-byte one (the tail is padded)
 * and a 300-byte one (NodeEndpoints is dropped). Checked: both paths accept the same bodies; a
 * streamed body is exactly as long as the original; when the whole-body result has that length
 * the streamed bytes are its bytes; a streamed body is a valid Fetch body and every address left
 * in it is one the map produced (an upstream address never gets through).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_stream_drive.h"
#include "kp_api.h"
#include "kp_buf.h"
#include "kp_fetch_stream.h"
#include "kp_frame.h"
#include "kp_rewrite.h"

#define FUZZ_LONG 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_same_host[KP_STRING_MAX]; /* '\1' repeated: the same-length replacement */
static char fuzz_long_host[FUZZ_LONG];     /* 'L' repeated */

static void
fuzz_require(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* Replaces every address: same length, "s", long, in turn (arg counts the calls). */
static bool
fuzz_map(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
         const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    unsigned *calls = arg;
    unsigned turn = (*calls)++ % 3;

    (void)host;
    *new_port = node_id ^ port;
    if (turn == 0) {
        *new_host = fuzz_same_host;
        *new_host_len = host_len;
    } else if (turn == 1) {
        *new_host = "s";
        *new_host_len = 1;
    } else {
        *new_host = fuzz_long_host;
        *new_host_len = sizeof(fuzz_long_host);
    }
    return true;
}

/* Aborts on any address fuzz_map could not have produced. */
static bool
fuzz_check(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
           const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    (void)arg;
    (void)node_id;
    (void)port;
    (void)new_host;
    (void)new_host_len;
    (void)new_port;
    fuzz_require(
        (host_len == 1 && host[0] == 's') ||
        (host_len <= sizeof(fuzz_same_host) &&
         (host_len == 0 || memcmp(host, fuzz_same_host, host_len) == 0)) ||
        (host_len == sizeof(fuzz_long_host) && memcmp(host, fuzz_long_host, host_len) == 0));
    return false;
}

static void
fuzz_one(int16_t v, const uint8_t *body, size_t len, uint32_t seed)
{
    struct kp_writer whole, streamed, check;
    struct kp_fetch_tail_stats fs;
    unsigned calls_w = 0, calls_s = 0;
    enum kp_status st_w, st_s;

    kp_writer_init(&whole);
    kp_writer_init(&streamed);
    kp_writer_init(&check);
    st_w = kp_rewrite_response(KP_API_FETCH, v, body, len, fuzz_map, &calls_w, &whole, NULL, NULL);
    st_s = drive_stream(v, body, len, seed, fuzz_map, &calls_s, &streamed, NULL, &fs, NULL);
    fuzz_require((st_w == KP_OK) == (st_s == KP_OK));
    if (st_s == KP_OK) {
        fuzz_require(streamed.len == len);
        fuzz_require(calls_s == calls_w);
        if (whole.len == len) {
            fuzz_require(!fs.padded && memcmp(whole.buf, streamed.buf, len) == 0);
        }
        fuzz_require(kp_rewrite_response(KP_API_FETCH, v, streamed.buf, streamed.len, fuzz_check,
                                         NULL, &check, NULL, NULL) == KP_OK);
    }
    kp_writer_free(&whole);
    kp_writer_free(&streamed);
    kp_writer_free(&check);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t body_len, hlen;
    int32_t id;
    int16_t v;

    if (fuzz_long_host[0] == '\0') {
        memset(fuzz_long_host, 'L', sizeof(fuzz_long_host));
        memset(fuzz_same_host, 1, sizeof(fuzz_same_host));
    }
    if (kp_frame_size(data, size, SIZE_MAX, &body_len) == KP_OK &&
        body_len == size - KP_FRAME_PREFIX) {
        for (v = 13; v <= 17; v++) {
            if (kp_response_header_decode(data + KP_FRAME_PREFIX, body_len, KP_API_FETCH, v, &id,
                                          &hlen) == KP_OK) {
                fuzz_one(v, data + KP_FRAME_PREFIX + hlen, body_len - hlen, (uint32_t)size);
                fuzz_one(v, data + KP_FRAME_PREFIX + hlen, body_len - hlen, 0);
            }
        }
    } else if (size >= 5) {
        uint32_t seed =
            (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];

        fuzz_one((int16_t)(13 + data[0] % 5), data + 5, size - 5, seed);
    }
    return 0;
}
