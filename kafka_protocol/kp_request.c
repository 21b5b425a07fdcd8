/*
 * kp_request.c - encoders for the requests kbridge sends on its own, and the ApiVersions v0
 * reader that picks their versions (see kp_request.h). Request header v1 throughout.
 */
#include "kp_request.h"

#include <string.h>

#include "kp_api.h"
#include "kp_internal.h"

#define KP_API_ENTRY_V0 6 /* ApiKey, MinVersion, MaxVersion: int16 each */

enum kp_status
kp_request_frame_begin(struct kp_writer *w, int16_t api_key, int16_t version,
                       int32_t correlation_id, const char *client_id, size_t *start)
{
    enum kp_status st;

    *start = w->len;
    kp_writer_i32(w, 0);
    kp_writer_i16(w, api_key);
    kp_writer_i16(w, version);
    kp_writer_i32(w, correlation_id);
    st = kp_writer_string(w, 0, client_id, strlen(client_id));
    if (st == KP_OK && kp_api_request_header_version(api_key, version) >= 2) {
        st = kp_writer_uvarint(w, 0);
    }
    return st;
}

enum kp_status
kp_frame_end(struct kp_writer *w, size_t start)
{
    size_t size = w->len - start - 4;

    if (w->failed) {
        return KP_NOMEM;
    }
    w->buf[start] = (uint8_t)(size >> 24);
    w->buf[start + 1] = (uint8_t)(size >> 16);
    w->buf[start + 2] = (uint8_t)(size >> 8);
    w->buf[start + 3] = (uint8_t)size;
    return KP_OK;
}

enum kp_status
kp_request_api_versions(struct kp_writer *w, int32_t correlation_id, const char *client_id)
{
    size_t start;

    kp_request_frame_begin(w, KP_API_API_VERSIONS, 0, correlation_id, client_id, &start);
    return kp_frame_end(w, start);
}

enum kp_status
kp_response_api_versions_v0(const uint8_t *body, size_t len, int16_t api_key,
                            struct kp_api_range *out)
{
    int16_t key = 0, min = 0, max = 0;
    struct kp_reader r;
    enum kp_status st;
    int32_t i;

    out->min = out->max = -1;
    out->n_apis = 0;
    kp_reader_init(&r, body, len);
    if ((st = kp_reader_i16(&r, &out->error)) != KP_OK || out->error != 0) {
        return st == KP_OK ? KP_OK : KP_MALFORMED;
    }
    if (kp_reader_array_len(&r, 0, KP_API_ENTRY_V0, &out->n_apis) != KP_OK) {
        return KP_MALFORMED;
    }
    for (i = 0; i < out->n_apis; i++) {
        if (kp_reader_i16(&r, &key) != KP_OK || kp_reader_i16(&r, &min) != KP_OK ||
            kp_reader_i16(&r, &max) != KP_OK) {
            return KP_MALFORMED;
        }
        if (key == api_key) {
            out->min = min;
            out->max = max;
        }
    }
    return KP_OK;
}

int
kp_request_metadata_version(int16_t min, int16_t max)
{
    int v = max < 4 ? max : 4;

    if (v < min) {
        v = min;
    }
    return v >= 1 && v <= 8 && v <= max ? v : -1;
}

enum kp_status
kp_request_metadata_brokers(struct kp_writer *w, int16_t version, int32_t correlation_id,
                            const char *client_id)
{
    size_t start;

    if (version < 1 || version > 8) {
        return KP_UNSUPPORTED;
    }
    kp_request_frame_begin(w, KP_API_METADATA, version, correlation_id, client_id, &start);
    kp_writer_array_len(w, 0, 0); /* Topics: empty (v1+: null would mean all topics) */
    if (version >= 4) {
        kp_writer_i8(w, 0); /* AllowAutoTopicCreation: false */
    }
    if (version >= 8) {
        kp_writer_i8(w, 0); /* IncludeClusterAuthorizedOperations: false */
        kp_writer_i8(w, 0); /* IncludeTopicAuthorizedOperations: false */
    }
    return kp_frame_end(w, start);
}
