/*
 * kp_sasl.c - SaslHandshake and SaslAuthenticate encoders and response readers (see
 * kp_sasl.h). Field layouts follow SaslHandshake*.json and SaslAuthenticate*.json in the spec.
 */
#include "kp_sasl.h"

#include <string.h>

#include "kp_api.h"
#include "kp_internal.h"

enum kp_status
kp_sasl_handshake_request(struct kp_writer *w, int16_t version, int32_t correlation_id,
                          const char *client_id, const char *mechanism)
{
    size_t start, len = strlen(mechanism);
    enum kp_status st;

    if (version < 0 || version > 1) {
        return KP_UNSUPPORTED;
    }
    if (len > KP_STRING_MAX || strlen(client_id) > KP_STRING_MAX) {
        return KP_TOO_LARGE;
    }
    kp_request_frame_begin(w, KP_API_SASL_HANDSHAKE, version, correlation_id, client_id, &start);
    if ((st = kp_writer_string(w, 0, mechanism, len)) != KP_OK) {
        w->len = start;
        return st;
    }
    return kp_frame_end(w, start);
}

enum kp_status
kp_sasl_authenticate_request(struct kp_writer *w, int16_t version, int32_t correlation_id,
                             const char *client_id, const uint8_t *auth, size_t len)
{
    bool flexible = version >= 2;
    size_t start;
    enum kp_status st;

    if (version < 0 || version > 2) {
        return KP_UNSUPPORTED;
    }
    if (strlen(client_id) > KP_STRING_MAX) {
        return KP_TOO_LARGE;
    }
    kp_request_frame_begin(w, KP_API_SASL_AUTHENTICATE, version, correlation_id, client_id, &start);
    if ((st = kp_writer_bytes(w, flexible ? KP_COMPACT : 0, auth, len)) != KP_OK) {
        w->len = start;
        return st;
    }
    if (flexible) {
        kp_writer_uvarint(w, 0); /* no tagged fields */
    }
    return kp_frame_end(w, start);
}

/* Appends s to the comma-separated list in out, printable ASCII only, cut to fit. */
static void
kp_sasl_list_add(char *out, size_t outlen, const struct kp_view *s)
{
    size_t pos = strlen(out), i;

    if (pos && pos + 2 < outlen) {
        out[pos++] = ',';
        out[pos++] = ' ';
    }
    for (i = 0; i < s->len && pos + 1 < outlen; i++) {
        uint8_t c = s->ptr[i];
        out[pos++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[pos] = '\0';
}

enum kp_status
kp_sasl_handshake_response(const uint8_t *body, size_t len, const char *mechanism,
                           struct kp_sasl_handshake_result *out)
{
    size_t mlen = mechanism ? strlen(mechanism) : 0;
    struct kp_reader r;
    struct kp_view s;
    enum kp_status st;
    int32_t i;

    memset(out, 0, sizeof(*out));
    kp_reader_init(&r, body, len);
    /* Each mechanism is at least its 2-byte length. */
    if ((st = kp_reader_i16(&r, &out->error)) != KP_OK ||
        (st = kp_reader_array_len(&r, 0, 2, &out->n_mechanisms)) != KP_OK) {
        goto fail;
    }
    for (i = 0; i < out->n_mechanisms; i++) {
        if ((st = kp_reader_string(&r, 0, &s)) != KP_OK) {
            goto fail;
        }
        if (mechanism && s.len == mlen && memcmp(s.ptr, mechanism, mlen) == 0) {
            out->offered = true;
        }
        kp_sasl_list_add(out->mechanisms, sizeof(out->mechanisms), &s);
    }
    return KP_OK;
fail:
    memset(out, 0, sizeof(*out));
    return st;
}

enum kp_status
kp_sasl_authenticate_response(const uint8_t *body, size_t len, int16_t version,
                              struct kp_sasl_auth_result *out)
{
    unsigned flags = version >= 2 ? KP_COMPACT : 0;
    struct kp_reader r;
    enum kp_status st;

    memset(out, 0, sizeof(*out));
    out->error_message.null = true;
    if (version < 0 || version > 2) {
        return KP_UNSUPPORTED;
    }
    kp_reader_init(&r, body, len);
    if ((st = kp_reader_i16(&r, &out->error)) != KP_OK ||
        (st = kp_reader_string(&r, flags | KP_NULLABLE, &out->error_message)) != KP_OK ||
        (st = kp_reader_bytes(&r, flags, &out->auth_bytes)) != KP_OK) {
        goto fail;
    }
    if (version >= 1 && (st = kp_reader_i64(&r, &out->session_lifetime_ms)) != KP_OK) {
        goto fail;
    }
    if (out->session_lifetime_ms < 0) {
        st = KP_MALFORMED;
        goto fail;
    }
    if (version >= 2 && (st = kp_reader_skip_tags(&r)) != KP_OK) {
        goto fail;
    }
    return KP_OK;
fail:
    memset(out, 0, sizeof(*out));
    out->error_message.null = true;
    return st;
}

enum kp_status
kp_sasl_handshake_response_write(struct kp_writer *w, int32_t correlation_id, int16_t error,
                                 const char *mechanism)
{
    size_t start = w->len;
    enum kp_status st = KP_OK;

    kp_writer_i32(w, 0);
    kp_writer_i32(w, correlation_id); /* response header v0 */
    kp_writer_i16(w, error);
    kp_writer_array_len(w, 0, mechanism ? 1 : 0); /* Mechanisms */
    if (mechanism) {
        st = kp_writer_string(w, 0, mechanism, strlen(mechanism));
    }
    if (st != KP_OK) {
        w->len = start;
        return st;
    }
    return kp_frame_end(w, start);
}

enum kp_status
kp_sasl_handshake_error_response(struct kp_writer *w, int32_t correlation_id, int16_t error)
{
    return kp_sasl_handshake_response_write(w, correlation_id, error, NULL);
}

enum kp_status
kp_sasl_authenticate_error_response(struct kp_writer *w, int16_t version, int32_t correlation_id,
                                    int16_t error, const char *message)
{
    unsigned flags = version >= 2 ? KP_COMPACT : 0;
    size_t start = w->len;
    enum kp_status st;

    if (version < 0 || version > 2) {
        return KP_UNSUPPORTED;
    }
    kp_writer_i32(w, 0);
    kp_writer_i32(w, correlation_id);
    if (version >= 2) {
        kp_writer_uvarint(w, 0); /* response header v1: no tagged fields */
    }
    kp_writer_i16(w, error);
    st = kp_writer_string(w, flags | KP_NULLABLE, message, message ? strlen(message) : 0);
    if (st != KP_OK) {
        w->len = start;
        return st;
    }
    kp_writer_bytes(w, flags, "", 0);
    if (version >= 1) {
        kp_writer_i64(w, 0);
    }
    if (version >= 2) {
        kp_writer_uvarint(w, 0);
    }
    return kp_frame_end(w, start);
}

int
kp_sasl_authenticate_version(int16_t min, int16_t max)
{
    int v = max > 2 ? 2 : max;

    return v >= 0 && v >= min ? v : -1;
}
