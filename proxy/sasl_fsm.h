/*
 * sasl_fsm.h - the SASL exchange kbridge runs with a broker, as a pure state machine: it writes
 * request frames and reads response frames, and never touches a socket or a timer, so every
 * broker answer (truncated, malformed, refused) is unit-tested without I/O. proxy/sasl.c
 * drives it on a bufferevent.
 *
 *   ApiVersions v0 -> SaslHandshake v1 (mechanism) -> SaslAuthenticate vN, repeated while the
 *   mechanism has more to say -> done (session_lifetime_ms) or failed (one sentence)
 *
 * ApiVersions is skipped when the SaslAuthenticate version is already known (KIP-368
 * re-authentication on a connection that did it once).
 */
#ifndef KB_PROXY_SASL_FSM_H
#define KB_PROXY_SASL_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/mech.h"
#include "kp_buf.h"

/* Every failure sentence starts with this. */
#define SASL_FAIL_PREFIX "authentication failed"

#define SASL_CORRELATION_BASE 0x5a510000 /* our requests' correlation ids count up from here */

enum sasl_fsm_state {
    SASL_FSM_API_VERSIONS = 0, /* ApiVersions v0 sent */
    SASL_FSM_HANDSHAKE,        /* SaslHandshake v1 sent */
    SASL_FSM_AUTHENTICATE,     /* a SaslAuthenticate sent */
    SASL_FSM_DONE,             /* authenticated */
    SASL_FSM_FAILED            /* why() says why; nothing more is sent */
};

/* What the caller does next. */
enum sasl_fsm_result {
    SASL_FSM_SEND = 0, /* write the frame appended to out, then feed the broker's answer */
    SASL_FSM_OK,       /* authenticated: the connection may carry the client's requests */
    SASL_FSM_FAIL      /* failed: close the connection; the sentence is in why */
};

struct sasl_fsm;
struct aws_creds;
struct kb_cluster_conf;

/*
 * Fills creds for cc's sasl_mechanism and the broker host: the user and password of the
 * snapshot, or (AWS_MSK_IAM, OAUTHBEARER) the AWS credentials aws, copied by the caller from
 * the cluster's provider, with cc's region and kbridge's user agent. Views into cc and aws: keep
 * both alive while creds is used. The daemon (proxy/sasl.c) and kbridge check both use it, so
 * the doctor signs exactly as the daemon does.
 */
void sasl_fsm_creds(struct auth_creds *creds, const struct kb_cluster_conf *cc, const char *host,
                    const struct aws_creds *aws);

/*
 * Prepares an exchange with mech and creds (copied by the mechanism: creds may go away after
 * the call). client_id goes in every request header (copied). auth_version: the
 * SaslAuthenticate version to use (0-2), or -1 to learn it with ApiVersions first. NULL with a
 * sentence in why when the mechanism cannot start (e.g. an empty user name).
 */
struct sasl_fsm *sasl_fsm_new(const struct auth_mech *mech, const struct auth_creds *creds,
                              const char *client_id, int auth_version, char *why, size_t whylen);

/*
 * Appends the first request frame (ApiVersions, or SaslHandshake when auth_version was given)
 * to out. SASL_FSM_SEND, or SASL_FSM_FAIL when out of memory.
 */
enum sasl_fsm_result sasl_fsm_start(struct sasl_fsm *f, struct kp_writer *out, char *why,
                                    size_t whylen);

/*
 * Feeds one whole response frame (frame: the bytes after the 4-byte size prefix) answering the
 * last request. Appends the next request to out (SASL_FSM_SEND), finishes (SASL_FSM_OK), or
 * fails with one sentence starting with SASL_FAIL_PREFIX, naming the mechanism and, when the
 * broker refused, its own error message and code: a wrong correlation id, a truncated or
 * malformed answer, a broker without SaslHandshake v1 / SaslAuthenticate, a mechanism the
 * listener does not enable (with the ones it does), a non-SASL listener, rejected credentials,
 * or a mechanism-level failure such as a wrong SCRAM server signature. After SASL_FSM_OK or
 * SASL_FSM_FAIL every further call fails.
 */
enum sasl_fsm_result sasl_fsm_on_response(struct sasl_fsm *f, const uint8_t *frame, size_t len,
                                          struct kp_writer *out, char *why, size_t whylen);

/* SessionLifetimeMs of the final SaslAuthenticate answer (0: no expiry, or v0). */
int64_t sasl_fsm_session_lifetime_ms(const struct sasl_fsm *f);

/* The SaslAuthenticate version in use (-1 before ApiVersions answered): keep it for re-auth. */
int sasl_fsm_auth_version(const struct sasl_fsm *f);

enum sasl_fsm_state sasl_fsm_state(const struct sasl_fsm *f);

/*
 * After SASL_FSM_FAIL: the Kafka error code of the broker answer that failed the exchange
 * (UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED, ...), or 0 when
 * the failure was not a broker's refusal (malformed answer, mechanism-level check). Lets a
 * caller such as `kbridge check` name the cause without parsing the sentence.
 */
int16_t sasl_fsm_broker_error(const struct sasl_fsm *f);

/* Wipes (the mechanism's secrets included) and frees. NULL is fine. */
void sasl_fsm_free(struct sasl_fsm *f);

#endif
