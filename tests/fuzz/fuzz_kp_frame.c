/*
 * fuzz_kp_frame.c - libFuzzer harness for what the proxy parses of every request: the size
 * prefix, the request header and the Produce acks=0 check. The input is a frame with its
 * 4-byte size prefix, as the golden .req/.resp seeds are; a short frame is decoded as far as
 * it goes. Invariants are checked with abort() so the fuzzer reports them as crashes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "kp_api.h"
#include "kp_frame.h"

#define FUZZ_MAX_FRAME (1u << 20)
#define FUZZ_MAX_PREFIXES 64 /* shorter inputs re-decoded per input, to keep execs fast */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_require(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* Every prefix of a decodable header is incomplete, never malformed or OK. */
static void
fuzz_prefixes(const uint8_t *body, const struct kp_request_header *hdr)
{
    struct kp_request_header h;
    size_t cut, step = hdr->header_len / FUZZ_MAX_PREFIXES + 1;

    for (cut = 0; cut < hdr->header_len; cut += step) {
        fuzz_require(kp_request_header_decode(body, cut, &h) == KP_INCOMPLETE);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kp_request_header hdr;
    size_t body_len = 0, len, hlen = 0;
    const uint8_t *body = data + KP_FRAME_PREFIX;
    enum kp_status st = kp_frame_size(data, size, FUZZ_MAX_FRAME, &body_len);
    int32_t id;
    bool expects = false;

    if (size < KP_FRAME_PREFIX) {
        fuzz_require(st == KP_INCOMPLETE);
        return 0;
    }
    if (st != KP_OK) {
        fuzz_require(st == KP_MALFORMED || st == KP_TOO_LARGE);
        return 0;
    }
    fuzz_require(body_len <= FUZZ_MAX_FRAME);
    len = size - KP_FRAME_PREFIX < body_len ? size - KP_FRAME_PREFIX : body_len;

    st = kp_request_header_decode(body, len, &hdr);
    if (st == KP_OK) {
        fuzz_require(hdr.header_len <= len);
        fuzz_require(hdr.header_version ==
                     kp_api_request_header_version(hdr.api_key, hdr.api_version));
        fuzz_require(hdr.client_id_len >= -1);
        fuzz_require((hdr.client_id == NULL) == (hdr.client_id_len < 0));
        if (hdr.client_id) {
            fuzz_require(hdr.client_id >= body &&
                         (size_t)(hdr.client_id - body) + (size_t)hdr.client_id_len <=
                             hdr.header_len);
        }
        fuzz_prefixes(body, &hdr);
        st = kp_request_expects_response(body, len, &hdr, &expects);
        fuzz_require(st == KP_OK || st == KP_INCOMPLETE || st == KP_MALFORMED);
        if (st == KP_OK && hdr.api_key != KP_API_PRODUCE) {
            fuzz_require(expects);
        }
        (void)kp_api_name(hdr.api_key);
        (void)kp_api_response_needs_rewrite(hdr.api_key, hdr.api_version);
    } else {
        fuzz_require(st == KP_INCOMPLETE || st == KP_MALFORMED);
    }

    /* The same bytes as a response, for the header versions of a few apis. */
    st = kp_response_header_decode(body, len, KP_API_METADATA, 12, &id, &hlen);
    fuzz_require(st != KP_OK || (hlen >= 5 && hlen <= len));
    st = kp_response_header_decode(body, len, KP_API_API_VERSIONS, 3, &id, &hlen);
    fuzz_require(st == (len >= 4 ? KP_OK : KP_INCOMPLETE));
    return 0;
}
