/*
 * sasl_fsm.c - the broker-side SASL exchange as a state machine over whole frames (see
 * sasl_fsm.h). Every broker answer is checked with the pure codec (kp_sasl.h, kp_request.h);
 * the mechanism (auth/) sees only the AuthBytes.
 */
#include "proxy/sasl_fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "conf/conf.h"
#include "conf/secret.h"
#include "kp_api.h"
#include "kp_frame.h"
#include "kp_request.h"
#include "kp_sasl.h"
#include "proxy/version.h"

#define SASL_MSG_MAX 200 /* bytes of a broker's error message quoted in a sentence */

struct sasl_fsm {
    enum sasl_fsm_state state;    /* what the last request was */
    const struct auth_mech *mech; /* the mechanism */
    struct auth_session *auth;    /* its exchange; NULL once finished */
    struct auth_buf next;         /* the client message to send next (wiped when sent) */
    char *client_id;              /* request header client id */
    int auth_version;             /* SaslAuthenticate version, -1 until known */
    int32_t correlation_id;       /* id of the request the next answer must carry */
    int16_t expect_api;           /* api key of that request */
    int16_t expect_version;       /* its version */
    int64_t session_lifetime_ms;  /* from the final SaslAuthenticate answer */
    int16_t broker_error;         /* the error code a failing broker answer carried, else 0 */
};

/* Kafka's name for the error codes a SASL exchange meets. */
static const char *
sasl_fsm_error_name(int16_t code)
{
    switch (code) {
    case KP_ERR_UNSUPPORTED_SASL_MECHANISM:
        return "UNSUPPORTED_SASL_MECHANISM";
    case KP_ERR_ILLEGAL_SASL_STATE:
        return "ILLEGAL_SASL_STATE";
    case KP_ERR_SASL_AUTHENTICATION_FAILED:
        return "SASL_AUTHENTICATION_FAILED";
    case 35:
        return "UNSUPPORTED_VERSION";
    case 31:
        return "CLUSTER_AUTHORIZATION_FAILED";
    default:
        return "error";
    }
}

/* Fails the exchange with SASL_FAIL_PREFIX " (MECH): " + the formatted sentence. */
static enum sasl_fsm_result sasl_fsm_fail(struct sasl_fsm *f, char *why, size_t whylen,
                                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum sasl_fsm_result
sasl_fsm_fail(struct sasl_fsm *f, char *why, size_t whylen, const char *fmt, ...)
{
    int n;
    va_list ap;

    f->state = SASL_FSM_FAILED;
    auth_session_free(f->auth);
    f->auth = NULL;
    auth_buf_free(&f->next);
    n = snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): ", f->mech->name);
    if (n >= 0 && (size_t)n < whylen) {
        va_start(ap, fmt);
        vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return SASL_FSM_FAIL;
}

/* Copies a broker's error message into out as printable ASCII, cut to SASL_MSG_MAX. */
static const char *
sasl_fsm_quote(const struct kp_view *v, char *out, size_t outlen)
{
    size_t i, o = 0;

    if (v->null || v->len == 0) {
        snprintf(out, outlen, "(no message)");
        return out;
    }
    for (i = 0; i < v->len && i < SASL_MSG_MAX && o + 1 < outlen; i++) {
        uint8_t c = v->ptr[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[o] = '\0';
    return out;
}

/* Appends a request and records what its answer must look like. */
static enum sasl_fsm_result
sasl_fsm_sent(struct sasl_fsm *f, enum kp_status st, int16_t api, int16_t version,
              enum sasl_fsm_state state, char *why, size_t whylen)
{
    if (st != KP_OK) {
        return sasl_fsm_fail(f, why, whylen, "cannot encode %s v%d: %s", kp_api_name(api), version,
                             kp_status_str(st));
    }
    f->expect_api = api;
    f->expect_version = version;
    f->state = state;
    return SASL_FSM_SEND;
}

static enum sasl_fsm_result
sasl_fsm_send_handshake(struct sasl_fsm *f, struct kp_writer *out, char *why, size_t whylen)
{
    enum kp_status st =
        kp_sasl_handshake_request(out, 1, ++f->correlation_id, f->client_id, f->mech->name);

    return sasl_fsm_sent(f, st, KP_API_SASL_HANDSHAKE, 1, SASL_FSM_HANDSHAKE, why, whylen);
}

/* Sends f->next (the mechanism's latest message) in a SaslAuthenticate, then wipes it. */
static enum sasl_fsm_result
sasl_fsm_send_authenticate(struct sasl_fsm *f, struct kp_writer *out, char *why, size_t whylen)
{
    enum kp_status st =
        kp_sasl_authenticate_request(out, (int16_t)f->auth_version, ++f->correlation_id,
                                     f->client_id, f->next.data, f->next.len);

    auth_buf_free(&f->next);
    return sasl_fsm_sent(f, st, KP_API_SASL_AUTHENTICATE, (int16_t)f->auth_version,
                         SASL_FSM_AUTHENTICATE, why, whylen);
}

struct sasl_fsm *
sasl_fsm_new(const struct auth_mech *mech, const struct auth_creds *creds, const char *client_id,
             int auth_version, char *why, size_t whylen)
{
    struct sasl_fsm *f = calloc(1, sizeof(*f));
    char err[256];

    if (!f || !(f->client_id = strdup(client_id))) {
        snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): out of memory", mech->name);
        free(f);
        return NULL;
    }
    f->mech = mech;
    f->auth_version = auth_version >= 0 && auth_version <= 2 ? auth_version : -1;
    f->correlation_id = SASL_CORRELATION_BASE;
    /* Start the mechanism now, so the credentials need not outlive this call. */
    f->auth = auth_session_new(mech, creds, &f->next, err, sizeof(err));
    if (!f->auth) {
        snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): %s", mech->name, err);
        sasl_fsm_free(f);
        return NULL;
    }
    return f;
}

enum sasl_fsm_result
sasl_fsm_start(struct sasl_fsm *f, struct kp_writer *out, char *why, size_t whylen)
{
    enum kp_status st;

    if (f->state != SASL_FSM_API_VERSIONS || f->expect_api != 0 || !f->auth) {
        return sasl_fsm_fail(f, why, whylen, "started twice");
    }
    if (f->auth_version >= 0) {
        return sasl_fsm_send_handshake(f, out, why, whylen);
    }
    st = kp_request_api_versions(out, ++f->correlation_id, f->client_id);
    return sasl_fsm_sent(f, st, KP_API_API_VERSIONS, 0, SASL_FSM_API_VERSIONS, why, whylen);
}

static enum sasl_fsm_result
sasl_fsm_on_api_versions(struct sasl_fsm *f, const uint8_t *body, size_t len, struct kp_writer *out,
                         char *why, size_t whylen)
{
    struct kp_api_range hs, au;

    if (kp_response_api_versions_v0(body, len, KP_API_SASL_HANDSHAKE, &hs) != KP_OK ||
        kp_response_api_versions_v0(body, len, KP_API_SASL_AUTHENTICATE, &au) != KP_OK) {
        return sasl_fsm_fail(f, why, whylen, "malformed ApiVersions answer from the broker");
    }
    if (hs.error != 0) {
        f->broker_error = hs.error;
        return sasl_fsm_fail(f, why, whylen, "the broker answered ApiVersions with error %d (%s)",
                             hs.error, sasl_fsm_error_name(hs.error));
    }
    if (hs.max < 1 || hs.min > 1) {
        return sasl_fsm_fail(f, why, whylen,
                             "the broker does not offer SaslHandshake v1 (it offers %d-%d): "
                             "Kafka before 1.0 cannot authenticate with SaslAuthenticate",
                             hs.min, hs.max);
    }
    f->auth_version = kp_sasl_authenticate_version(au.min, au.max);
    if (f->auth_version < 0) {
        return sasl_fsm_fail(f, why, whylen,
                             "the broker offers no usable SaslAuthenticate version (%d-%d; "
                             "kbridge speaks 0-2)",
                             au.min, au.max);
    }
    return sasl_fsm_send_handshake(f, out, why, whylen);
}

static enum sasl_fsm_result
sasl_fsm_on_handshake(struct sasl_fsm *f, const uint8_t *body, size_t len, struct kp_writer *out,
                      char *why, size_t whylen)
{
    struct kp_sasl_handshake_result res;
    enum kp_status st = kp_sasl_handshake_response(body, len, f->mech->name, &res);

    if (st != KP_OK) {
        return sasl_fsm_fail(f, why, whylen, "%s SaslHandshake answer from the broker",
                             st == KP_INCOMPLETE ? "truncated" : "malformed");
    }
    f->broker_error = res.error;
    if (res.error == KP_ERR_UNSUPPORTED_SASL_MECHANISM) {
        return sasl_fsm_fail(f, why, whylen,
                             "mechanism not enabled on this listener; the broker offers: %s "
                             "(UNSUPPORTED_SASL_MECHANISM; MSK serves SASL/SCRAM on 9096, 9196 "
                             "with public access, IAM on 9098/9198)",
                             res.n_mechanisms ? res.mechanisms : "none");
    }
    if (res.error == KP_ERR_ILLEGAL_SASL_STATE) {
        return sasl_fsm_fail(f, why, whylen,
                             "this listener does not take SASL (ILLEGAL_SASL_STATE): a TLS-only "
                             "port? MSK TLS is 9094/9194, SASL/SCRAM 9096/9196");
    }
    if (res.error != 0) {
        return sasl_fsm_fail(f, why, whylen, "the broker answered SaslHandshake with error %d (%s)",
                             res.error, sasl_fsm_error_name(res.error));
    }
    return sasl_fsm_send_authenticate(f, out, why, whylen);
}

static enum sasl_fsm_result
sasl_fsm_on_authenticate(struct sasl_fsm *f, const uint8_t *body, size_t len, struct kp_writer *out,
                         char *why, size_t whylen)
{
    struct kp_sasl_auth_result res;
    enum kp_status st = kp_sasl_authenticate_response(body, len, f->expect_version, &res);
    char msg[SASL_MSG_MAX + 1], err[512];
    bool done = false;

    if (st != KP_OK) {
        return sasl_fsm_fail(f, why, whylen, "%s SaslAuthenticate v%d answer from the broker",
                             st == KP_INCOMPLETE ? "truncated" : "malformed", f->expect_version);
    }
    if (res.error != 0) {
        f->broker_error = res.error;
        return sasl_fsm_fail(f, why, whylen, "the broker refused: %s (%s, error %d)",
                             sasl_fsm_quote(&res.error_message, msg, sizeof(msg)),
                             sasl_fsm_error_name(res.error), res.error);
    }
    if (!auth_session_step(f->auth, res.auth_bytes.ptr, res.auth_bytes.len, &f->next, &done, err,
                           sizeof(err))) {
        return sasl_fsm_fail(f, why, whylen, "%s", err);
    }
    if (!done) {
        return sasl_fsm_send_authenticate(f, out, why, whylen);
    }
    f->session_lifetime_ms = res.session_lifetime_ms;
    auth_session_free(f->auth);
    f->auth = NULL;
    f->state = SASL_FSM_DONE;
    return SASL_FSM_OK;
}

enum sasl_fsm_result
sasl_fsm_on_response(struct sasl_fsm *f, const uint8_t *frame, size_t len, struct kp_writer *out,
                     char *why, size_t whylen)
{
    size_t hlen = 0;
    int32_t corr = 0;
    enum kp_status st;

    if (f->state == SASL_FSM_DONE || f->state == SASL_FSM_FAILED || f->expect_api == 0) {
        return sasl_fsm_fail(f, why, whylen, "an answer nobody asked for");
    }
    st = kp_response_header_decode(frame, len, f->expect_api, f->expect_version, &corr, &hlen);
    if (st != KP_OK) {
        return sasl_fsm_fail(f, why, whylen, "%s %s response header from the broker",
                             st == KP_INCOMPLETE ? "truncated" : "malformed",
                             kp_api_name(f->expect_api));
    }
    if (corr != f->correlation_id) {
        return sasl_fsm_fail(f, why, whylen,
                             "the broker answered correlation id %d, expected %d (%s)", (int)corr,
                             (int)f->correlation_id, kp_api_name(f->expect_api));
    }
    frame += hlen;
    len -= hlen;
    switch (f->state) {
    case SASL_FSM_API_VERSIONS:
        return sasl_fsm_on_api_versions(f, frame, len, out, why, whylen);
    case SASL_FSM_HANDSHAKE:
        return sasl_fsm_on_handshake(f, frame, len, out, why, whylen);
    case SASL_FSM_AUTHENTICATE:
        return sasl_fsm_on_authenticate(f, frame, len, out, why, whylen);
    default:
        return sasl_fsm_fail(f, why, whylen, "internal state error");
    }
}

int64_t
sasl_fsm_session_lifetime_ms(const struct sasl_fsm *f)
{
    return f->session_lifetime_ms;
}

int
sasl_fsm_auth_version(const struct sasl_fsm *f)
{
    return f->auth_version;
}

int16_t
sasl_fsm_broker_error(const struct sasl_fsm *f)
{
    return f->broker_error;
}

enum sasl_fsm_state
sasl_fsm_state(const struct sasl_fsm *f)
{
    return f->state;
}

void
sasl_fsm_free(struct sasl_fsm *f)
{
    if (!f) {
        return;
    }
    auth_session_free(f->auth);
    auth_buf_free(&f->next);
    free(f->client_id);
    free(f);
}

void
sasl_fsm_creds(struct auth_creds *creds, const struct kb_cluster_conf *cc, const char *host,
               const struct aws_creds *aws)
{
    memset(creds, 0, sizeof(*creds));
    creds->host = host;
    if (aws) {
        creds->aws_key_id = aws->access_key_id;
        creds->aws_secret = aws->secret;
        creds->aws_session_token = aws->session_token;
        creds->aws_expiration = aws->expiration;
        creds->aws_region = conf_aws_region(cc);
        creds->user_agent = "kbridge/" KB_VERSION;
    } else {
        creds->username = cc->sasl_username;
        creds->password = cc->sasl_secret ? cc->sasl_secret->password : NULL;
    }
}
