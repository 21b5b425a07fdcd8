/*
 * kp_frame.h - Kafka framing: the 4-byte size prefix, request headers v0-v2 and
 * response headers v0-v1. Views only: nothing here keeps a pointer into the input.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_FRAME_H
#define KB_KAFKA_PROTOCOL_KP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_status.h"

#define KP_FRAME_PREFIX 4 /* bytes of the big-endian int32 size prefix */

/*
 * Reads the size prefix at buf[0..3]. On KP_OK *size is the body length that follows the
 * prefix (0 <= *size <= max_frame). KP_INCOMPLETE: len < 4. KP_MALFORMED: negative size.
 * KP_TOO_LARGE: size > max_frame.
 */
enum kp_status kp_frame_size(const uint8_t *buf, size_t len, size_t max_frame, size_t *size);

#define KP_RESPONSE_PEEK 8 /* the size prefix and the correlation id every response starts with */

/*
 * Reads the start of a response frame at buf: the size prefix and the correlation id that
 * begins every response header (v0 and v1). On KP_OK *size is the body length after the prefix
 * (4 <= *size <= max_frame) and *correlation_id the id. KP_INCOMPLETE: len < KP_RESPONSE_PEEK.
 * KP_MALFORMED: a negative size, or one too small to hold a correlation id. KP_TOO_LARGE: size
 * above max_frame. The one place that reads where a response starts (bridge, probe, doctor).
 */
enum kp_status kp_frame_response_peek(const uint8_t *buf, size_t len, size_t max_frame,
                                      size_t *size, int32_t *correlation_id);

/* A decoded request header. client_id points into the caller's buffer (a view). */
struct kp_request_header {
    int16_t api_key;          /* request api key */
    int16_t api_version;      /* request api version */
    int32_t correlation_id;   /* echoed by the broker in the response */
    const uint8_t *client_id; /* view into the input; NULL when null or header v0 */
    int16_t client_id_len;    /* -1 when null */
    int header_version;       /* 0, 1 or 2 (derived from api key and version) */
    size_t header_len;        /* bytes the header occupies at the start of the body */
};

/*
 * Decodes the request header at the start of body (the frame without its size prefix).
 * The header version is derived from (api_key, api_version) with kp_api_request_header_version().
 * KP_INCOMPLETE when body is shorter than the header; KP_MALFORMED on bad lengths or tags.
 * A request for an api key the codec does not know is decoded as header v1 (client id, no
 * tagged fields): every known-flexible API is in the table, and v1 is what such requests use.
 */
enum kp_status kp_request_header_decode(const uint8_t *body, size_t len,
                                        struct kp_request_header *hdr);

#define KP_MAX_PLAUSIBLE_VERSION 32 /* no Kafka API has come close to this many versions */

/*
 * After a SaslHandshake v0, a client sends raw SASL tokens (a size prefix, no Kafka header)
 * until authentication completes, then Kafka requests again. True when body (a frame without
 * its size prefix) reads as a Kafka request: a known api key, a version below
 * KP_MAX_PLAUSIBLE_VERSION and a header that decodes. The tokens of PLAIN, SCRAM, OAUTHBEARER
 * and GSSAPI never do (they start with ASCII, a NUL and a user name, or an ASN.1 tag).
 */
bool kp_request_plausible(const uint8_t *body, size_t len);

/*
 * Tells whether the broker will answer this request: false only for Produce with acks = 0.
 * body/len is the request frame without its size prefix (at least hdr->header_len bytes).
 * KP_INCOMPLETE when the bytes up to and including acks are not all in body yet.
 */
enum kp_status kp_request_expects_response(const uint8_t *body, size_t len,
                                           const struct kp_request_header *hdr, bool *expects);

/*
 * Response header length for a response to (api_key, api_version): header v0 is the 4-byte
 * correlation id, header v1 adds a tagged-field section. ApiVersions always uses v0.
 * Decodes from body (the frame without its size prefix) and sets *header_len.
 */
enum kp_status kp_response_header_decode(const uint8_t *body, size_t len, int16_t api_key,
                                         int16_t api_version, int32_t *correlation_id,
                                         size_t *header_len);

#endif
