/*
 * fuzz_kp_rewrite.c - libFuzzer harness for kp_rewrite_response(). Input, two forms:
 *   - a whole response frame (big-endian size prefix == bytes that follow), like the golden
 *     .resp seeds: its header is decoded and the body tried as every (api, version) the
 *     codec parses, so each seed and its same-length mutations reach every walker;
 *   - anything else: byte 0 picks the api, byte 1 the version (-2..21), the rest is the body.
 * The map gives a 300-byte host, a 1-byte host, then keeps one, in turn. Checked: the status does
 * not depend on the map; a failure leaves no output; an identity rewrite of a valid body is the
 * body (unless ApiVersions was capped); an output re-rewritten with the identity reproduces itself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "kp_rewrite.h"

#define FUZZ_LONG_HOST_LEN 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The apis tried; SaslHandshake stands for every api that is copied unparsed. */
static const int16_t fuzz_apis[] = {
    KP_API_METADATA,       KP_API_FIND_COORDINATOR, KP_API_DESCRIBE_CLUSTER,  KP_API_PRODUCE,
    KP_API_FETCH,          KP_API_SHARE_FETCH,      KP_API_SHARE_ACKNOWLEDGE, KP_API_API_VERSIONS,
    KP_API_SASL_HANDSHAKE,
};

#define FUZZ_NAPIS (sizeof(fuzz_apis) / sizeof(fuzz_apis[0]))

static char fuzz_long_host[FUZZ_LONG_HOST_LEN]; /* "LLL...", filled on first use */

static void
fuzz_require(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* What fuzz_map did. */
struct fuzz_calls {
    unsigned calls; /* addresses passed to the map */
    unsigned kept;  /* of those, left as they were (every third) */
};

/* A long host, a short one, then keep: in turn. */
static bool
fuzz_map(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
         const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    struct fuzz_calls *fc = arg;
    unsigned turn = fc->calls++ % 3;

    fuzz_require(host != NULL || host_len == 0);
    fuzz_require(*new_host == host && *new_host_len == host_len && *new_port == port);
    if (turn == 2) {
        fc->kept++;
        return false;
    }
    if (turn == 1) {
        *new_host = "s";
        *new_host_len = 1;
    } else {
        *new_host = fuzz_long_host;
        *new_host_len = sizeof(fuzz_long_host);
    }
    *new_port = node_id ^ (int32_t)fc->calls;
    return true;
}

static bool
fuzz_same(const struct kp_writer *a, const uint8_t *b, size_t len)
{
    return a->len == len && (len == 0 || memcmp(a->buf, b, len) == 0);
}

static void
fuzz_one(int16_t key, int16_t version, const uint8_t *body, size_t len)
{
    struct kp_writer mapped, ident, again;
    struct kp_rewrite_stats s_mapped, s_ident, s_again;
    struct fuzz_calls fc = {0, 0};
    size_t err_offset = 0;
    enum kp_status st_mapped, st_ident, st;

    kp_writer_init(&mapped);
    kp_writer_init(&ident);
    kp_writer_init(&again);
    st_mapped = kp_rewrite_response(key, version, body, len, fuzz_map, &fc, &mapped, &s_mapped,
                                    &err_offset);
    st_ident = kp_rewrite_response(key, version, body, len, NULL, NULL, &ident, &s_ident, NULL);
    fuzz_require(st_mapped == st_ident);
    fuzz_require(st_mapped != KP_INCOMPLETE);
    if (st_mapped != KP_OK) {
        fuzz_require(mapped.len == 0 && ident.len == 0 && err_offset <= len);
        goto done;
    }
    fuzz_require(fc.calls == s_mapped.addresses && s_mapped.rewritten == fc.calls - fc.kept);
    fuzz_require(s_ident.addresses == fc.calls && s_ident.rewritten == 0);
    if (s_ident.capped == 0) {
        fuzz_require(fuzz_same(&ident, body, len));
    }

    /* The rewritten body is valid and the identity reproduces it. */
    st = kp_rewrite_response(key, version, mapped.buf, mapped.len, NULL, NULL, &again, &s_again,
                             NULL);
    fuzz_require(st == KP_OK);
    fuzz_require(fuzz_same(&again, mapped.buf, mapped.len));
    fuzz_require(s_again.addresses == s_mapped.addresses && s_again.capped == 0);
done:
    kp_writer_free(&mapped);
    kp_writer_free(&ident);
    kp_writer_free(&again);
}

/* A whole response frame: try it as every version of every api. */
static void
fuzz_frame(const uint8_t *body, size_t len)
{
    size_t a;

    for (a = 0; a < FUZZ_NAPIS; a++) {
        int max = kp_api_max_rewritable_version(fuzz_apis[a]);
        int16_t v;

        if (fuzz_apis[a] == KP_API_API_VERSIONS) {
            max = 4;
        }
        for (v = 0; v <= max; v++) {
            int32_t id;
            size_t hlen;

            if (kp_response_header_decode(body, len, fuzz_apis[a], v, &id, &hlen) == KP_OK) {
                fuzz_one(fuzz_apis[a], v, body + hlen, len - hlen);
            }
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t body_len;

    if (fuzz_long_host[0] == '\0') {
        memset(fuzz_long_host, 'L', sizeof(fuzz_long_host));
    }
    if (kp_frame_size(data, size, SIZE_MAX, &body_len) == KP_OK &&
        body_len == size - KP_FRAME_PREFIX) {
        fuzz_frame(data + KP_FRAME_PREFIX, body_len);
    } else if (size >= 2) {
        fuzz_one(fuzz_apis[data[0] % FUZZ_NAPIS], (int16_t)(data[1] % 24) - 2, data + 2, size - 2);
    }
    return 0;
}
