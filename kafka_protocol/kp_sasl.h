/*
 * kp_sasl.h - the SASL exchange kbridge originates with a broker: SaslHandshake v0-v1 and
 * SaslAuthenticate v0-v2 requests (whole frames, size prefix included) and the readers for
 * their responses, plus the error responses kbridge sends a client whose own SASL it refuses.
 * Views only: nothing here keeps a pointer into its input after returning.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_SASL_H
#define KB_KAFKA_PROTOCOL_KP_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_buf.h"
#include "kp_status.h"

#define KP_SASL_MECHS_MAX 256 /* bytes kept of a handshake response's mechanism list */

/* Kafka error codes the SASL exchange uses (org.apache.kafka.common.protocol.Errors). */
#define KP_ERR_UNSUPPORTED_SASL_MECHANISM 33
#define KP_ERR_ILLEGAL_SASL_STATE 34
#define KP_ERR_SASL_AUTHENTICATION_FAILED 58

/*
 * SaslHandshake v0 or v1 request (header v1) naming mechanism. v1 means the SASL tokens that
 * follow travel in SaslAuthenticate requests; v0 means raw length-prefixed tokens.
 * KP_UNSUPPORTED for another version, KP_TOO_LARGE for a mechanism over KP_STRING_MAX.
 */
enum kp_status kp_sasl_handshake_request(struct kp_writer *w, int16_t version,
                                         int32_t correlation_id, const char *client_id,
                                         const char *mechanism);

/*
 * SaslAuthenticate v0-v2 request carrying auth[0..len) as AuthBytes. v0-v1: header v1 and
 * int32-length bytes; v2 (flexible): header v2 (client id still an int16 string, then an empty
 * tagged-field section), compact bytes and an empty tagged-field section. KP_UNSUPPORTED for
 * another version.
 */
enum kp_status kp_sasl_authenticate_request(struct kp_writer *w, int16_t version,
                                            int32_t correlation_id, const char *client_id,
                                            const uint8_t *auth, size_t len);

/* What a SaslHandshake response body says. */
struct kp_sasl_handshake_result {
    int16_t error;                      /* ErrorCode (0: the mechanism is enabled) */
    int32_t n_mechanisms;               /* entries in Mechanisms */
    bool offered;                       /* the mechanism asked about is among them */
    char mechanisms[KP_SASL_MECHS_MAX]; /* "A, B, C" (printable ASCII only, cut to fit) */
};

/*
 * Reads a SaslHandshake v0/v1 response body (after the 4-byte response header v0) and fills
 * out; mechanism (may be NULL) is the one to look for, compared exactly. Bytes after the last
 * field are ignored, as Kafka's readers do. KP_INCOMPLETE when the body ends inside a field,
 * KP_MALFORMED for a negative count or null string. out is zeroed first on every path.
 */
enum kp_status kp_sasl_handshake_response(const uint8_t *body, size_t len, const char *mechanism,
                                          struct kp_sasl_handshake_result *out);

/* What a SaslAuthenticate response body says. The views point into the caller's body. */
struct kp_sasl_auth_result {
    int16_t error;                /* ErrorCode */
    struct kp_view error_message; /* ErrorMessage; null when the broker sent none */
    struct kp_view auth_bytes;    /* AuthBytes: the server's SASL message (may be empty) */
    int64_t session_lifetime_ms;  /* SessionLifetimeMs (v1+), 0 when absent or v0 */
};

/*
 * Reads a SaslAuthenticate response body of version 0-2 (after its response header: v0 for
 * versions 0-1, v1 with tagged fields for v2). v2 also reads the trailing tagged-field section.
 * KP_INCOMPLETE when the body ends inside a field, KP_MALFORMED for bad lengths or a negative
 * session lifetime, KP_UNSUPPORTED for another version. out is zeroed first on every path.
 */
enum kp_status kp_sasl_authenticate_response(const uint8_t *body, size_t len, int16_t version,
                                             struct kp_sasl_auth_result *out);

/*
 * A whole SaslHandshake v0/v1 response frame (size prefix, header v0) with error and a
 * mechanism list of mechanism alone (NULL: empty).
 */
enum kp_status kp_sasl_handshake_response_write(struct kp_writer *w, int32_t correlation_id,
                                                int16_t error, const char *mechanism);

/*
 * A whole SaslHandshake v0/v1 response frame (size prefix, header v0) with error and an empty
 * mechanism list: what kbridge answers a client whose own SASL it refuses.
 */
enum kp_status kp_sasl_handshake_error_response(struct kp_writer *w, int32_t correlation_id,
                                                int16_t error);

/*
 * A whole SaslAuthenticate v0-v2 response frame with error, message (NUL-terminated, may be
 * NULL for null), empty AuthBytes and, v1+, SessionLifetimeMs 0. KP_UNSUPPORTED for another
 * version.
 */
enum kp_status kp_sasl_authenticate_error_response(struct kp_writer *w, int16_t version,
                                                   int32_t correlation_id, int16_t error,
                                                   const char *message);

/* The highest SaslAuthenticate version in both [min, max] and 0-2; -1 when there is none. */
int kp_sasl_authenticate_version(int16_t min, int16_t max);

#endif
