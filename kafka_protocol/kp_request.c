/*
 * kp_request.c - encoders for the requests kbridge sends on its own (see kp_request.h).
 * Both use request header v1 (api key, version, correlation id, nullable client id).
 */
#include "kp_request.h"

#include <string.h>

#include "kp_api.h"

/* Writes a size prefix placeholder and header v1; returns the offset of the prefix. */
static enum kp_status
kp_request_begin(struct kp_writer *w, int16_t api_key, int16_t version, int32_t correlation_id,
                 const char *client_id, size_t *start)
{
    *start = w->len;
    kp_writer_i32(w, 0);
    kp_writer_i16(w, api_key);
    kp_writer_i16(w, version);
    kp_writer_i32(w, correlation_id);
    return kp_writer_string(w, 0, client_id, strlen(client_id));
}

/* Patches the size prefix at start now that the frame is complete. */
static enum kp_status
kp_request_end(struct kp_writer *w, size_t start)
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

    kp_request_begin(w, KP_API_API_VERSIONS, 0, correlation_id, client_id, &start);
    return kp_request_end(w, start);
}

enum kp_status
kp_request_metadata_brokers(struct kp_writer *w, int32_t correlation_id, const char *client_id)
{
    size_t start;

    kp_request_begin(w, KP_API_METADATA, 1, correlation_id, client_id, &start);
    kp_writer_array_len(w, 0, 0);   /* Topics: empty (v1+: null would mean all topics) */
    return kp_request_end(w, start);
}
