/*
 * kp_frame.c - the 4-byte size prefix and the request/response headers. This is all the proxy
 * parses of a frame that passes through, so it stays small: a reader over the header bytes,
 * the header version from kp_api, and INCOMPLETE kept apart from MALFORMED.
 */
#include "kp_frame.h"

#include "kp_api.h"
#include "kp_buf.h"

enum kp_status
kp_frame_size(const uint8_t *buf, size_t len, size_t max_frame, size_t *size)
{
    struct kp_reader r;
    int32_t n;

    kp_reader_init(&r, buf, len);
    if (kp_reader_i32(&r, &n) != KP_OK) {
        return KP_INCOMPLETE;
    }
    if (n < 0) {
        return KP_MALFORMED;
    }
    if ((uint32_t)n > max_frame) {
        return KP_TOO_LARGE;
    }
    *size = (size_t)n;
    return KP_OK;
}

enum kp_status
kp_frame_response_peek(const uint8_t *buf, size_t len, size_t max_frame, size_t *size,
                       int32_t *correlation_id)
{
    struct kp_reader r;
    enum kp_status st;
    int32_t cid;

    if (len < KP_RESPONSE_PEEK) {
        return KP_INCOMPLETE;
    }
    st = kp_frame_size(buf, len, max_frame, size);
    if (st != KP_OK) {
        return st;
    }
    if (*size < 4) {
        return KP_MALFORMED;
    }
    kp_reader_init(&r, buf + KP_FRAME_PREFIX, len - KP_FRAME_PREFIX);
    if (kp_reader_i32(&r, &cid) != KP_OK) {
        return KP_INCOMPLETE;
    }
    *correlation_id = cid;
    return KP_OK;
}

enum kp_status
kp_request_header_decode(const uint8_t *body, size_t len, struct kp_request_header *hdr)
{
    struct kp_reader r;
    struct kp_request_header h = {0, 0, 0, NULL, -1, 0, 0};
    struct kp_view client_id;
    enum kp_status st;

    kp_reader_init(&r, body, len);
    st = kp_reader_i16(&r, &h.api_key);
    if (st == KP_OK) {
        st = kp_reader_i16(&r, &h.api_version);
    }
    if (st == KP_OK) {
        st = kp_reader_i32(&r, &h.correlation_id);
    }
    if (st != KP_OK) {
        return st;
    }
    h.header_version = kp_api_request_header_version(h.api_key, h.api_version);
    if (h.header_version >= 1) {
        /* RequestHeader ClientId: an int16-length nullable string even in v2 */
        st = kp_reader_string(&r, KP_NULLABLE, &client_id);
        if (st != KP_OK) {
            return st;
        }
        h.client_id = client_id.ptr;
        h.client_id_len = client_id.null ? -1 : (int16_t)client_id.len;
    }
    if (h.header_version >= 2) {
        st = kp_reader_skip_tags(&r);
        if (st != KP_OK) {
            return st;
        }
    }
    h.header_len = r.pos;
    *hdr = h;
    return KP_OK;
}

enum kp_status
kp_request_expects_response(const uint8_t *body, size_t len, const struct kp_request_header *hdr,
                            bool *expects)
{
    struct kp_reader r;
    unsigned flags = KP_NULLABLE;
    int16_t acks;
    enum kp_status st;

    if (hdr->api_key != KP_API_PRODUCE) {
        *expects = true;
        return KP_OK;
    }
    kp_reader_init(&r, body, len);
    st = kp_reader_skip(&r, hdr->header_len);
    if (st != KP_OK) {
        return st;
    }
    if (kp_api_is_flexible(hdr->api_key, hdr->api_version)) {
        flags |= KP_COMPACT;
    }
    if (hdr->api_version >= 3) {
        st = kp_reader_string(&r, flags, NULL); /* ProduceRequest v3+: TransactionalId */
        if (st != KP_OK) {
            return st;
        }
    }
    st = kp_reader_i16(&r, &acks);
    if (st != KP_OK) {
        return st;
    }
    *expects = acks != 0;
    return KP_OK;
}

enum kp_status
kp_response_header_decode(const uint8_t *body, size_t len, int16_t api_key, int16_t api_version,
                          int32_t *correlation_id, size_t *header_len)
{
    struct kp_reader r;
    int32_t id;
    enum kp_status st;

    kp_reader_init(&r, body, len);
    st = kp_reader_i32(&r, &id);
    if (st == KP_OK && kp_api_response_header_version(api_key, api_version) >= 1) {
        st = kp_reader_skip_tags(&r);
    }
    if (st != KP_OK) {
        return st;
    }
    *correlation_id = id;
    *header_len = r.pos;
    return KP_OK;
}

bool
kp_request_plausible(const uint8_t *body, size_t len)
{
    struct kp_request_header hdr;

    return kp_request_header_decode(body, len, &hdr) == KP_OK && kp_api_known(hdr.api_key) &&
           hdr.api_version >= 0 && hdr.api_version < KP_MAX_PLAUSIBLE_VERSION;
}
