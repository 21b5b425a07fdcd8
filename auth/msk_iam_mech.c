/*
 * msk_iam_mech.c - AWS_MSK_IAM and OAUTHBEARER as struct auth_mech (see msk_iam_mech.h).
 *
 * AWS_MSK_IAM: the client message is the signed JSON; MSK answers with its own JSON
 * ({"version":"2020_10_22","request-id":...}) and the exchange ends; a refusal comes as a
 * SaslAuthenticate error, which proxy/sasl_fsm.c reports.
 *
 * OAUTHBEARER (RFC 7628 3.2): success is an empty server message. On failure the server first
 * sends an error JSON as a challenge and waits for the client's %x01 ("dummy" response), then
 * fails the exchange with a SaslAuthenticate error: so a non-empty answer is acknowledged with
 * %x01 and the broker's final error ends it.
 */
#include "auth/msk_iam_mech.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/msk_iam.h"

/* Where a single-message IAM exchange stands. */
enum msk_iam_phase {
    MSK_IAM_NOT_SENT = 0, /* start() failed or was not called */
    MSK_IAM_SENT,         /* the signed message is out: the broker's answer ends it */
    MSK_IAM_ERROR_ACKED   /* OAUTHBEARER: the server's error JSON answered with %x01 */
};

struct msk_iam_state {
    enum msk_iam_phase phase; /* see above */
};

unsigned
msk_iam_mech_expires(time_t now, time_t expiration)
{
    if (expiration == 0) {
        return KB_MSK_IAM_EXPIRES;
    }
    if (expiration <= now) {
        return 0;
    }
    return expiration - now < KB_MSK_IAM_EXPIRES ? (unsigned)(expiration - now)
                                                 : KB_MSK_IAM_EXPIRES;
}

/*
 * What both mechanisms check before signing: credentials and a region are there and still valid.
 * Fills sc, *now and *expires.
 */
static bool
msk_iam_prepare(const char *mech, const struct auth_creds *creds, struct sigv4_creds *sc,
                time_t *now, unsigned *expires, char *err, size_t errlen)
{
    if (!creds->aws_key_id || !*creds->aws_key_id || !creds->aws_secret || !*creds->aws_secret) {
        snprintf(err, errlen, "%s needs AWS credentials and none were given", mech);
        return false;
    }
    if (!creds->aws_region || !*creds->aws_region) {
        snprintf(err, errlen, "%s needs an AWS region (aws_region)", mech);
        return false;
    }
    *now = creds->now ? creds->now : time(NULL);
    *expires = msk_iam_mech_expires(*now, creds->aws_expiration);
    if (*expires == 0) {
        snprintf(err, errlen, "%s: the AWS credentials expired %lld s ago and were not refreshed",
                 mech, (long long)(*now - creds->aws_expiration));
        return false;
    }
    sc->access_key_id = creds->aws_key_id;
    sc->secret = creds->aws_secret;
    sc->session_token = creds->aws_session_token;
    return true;
}

/* Moves a malloc'd message of len bytes into out, wiping and freeing it. */
static bool
msk_iam_take(char *msg, size_t len, struct auth_buf *out, char *err, size_t errlen)
{
    bool ok = auth_buf_set(out, msg, len);

    OPENSSL_cleanse(msg, len);
    free(msg);
    if (!ok) {
        snprintf(err, errlen, "out of memory");
    }
    return ok;
}

static bool
msk_iam_start(void *state, const struct auth_creds *creds, struct auth_buf *out, char *err,
              size_t errlen)
{
    struct msk_iam_state *st = state;
    struct sigv4_creds sc;
    unsigned expires;
    char *payload = NULL;
    size_t len = 0;
    time_t now;

    if (!msk_iam_prepare("AWS_MSK_IAM", creds, &sc, &now, &expires, err, errlen)) {
        return false;
    }
    if (!creds->host || !*creds->host) {
        snprintf(err, errlen, "AWS_MSK_IAM needs the broker host name to sign for");
        return false;
    }
    if (!msk_iam_payload(&sc, creds->host, creds->aws_region, creds->user_agent, now, expires,
                         &payload, &len, err, errlen)) {
        return false;
    }
    st->phase = MSK_IAM_SENT;
    return msk_iam_take(payload, len, out, err, errlen);
}

static bool
msk_iam_step(void *state, const uint8_t *in, size_t len, struct auth_buf *out, bool *done,
             char *err, size_t errlen)
{
    struct msk_iam_state *st = state;
    char request_id[128], why[256];

    (void)out;
    if (st->phase != MSK_IAM_SENT) {
        snprintf(err, errlen, "AWS_MSK_IAM: answer before the message was sent");
        return false;
    }
    if (!msk_iam_parse_response(in, len, request_id, sizeof(request_id), why, sizeof(why))) {
        snprintf(err, errlen, "AWS_MSK_IAM: unexpected server message: %s", why);
        return false;
    }
    *done = true;
    return true;
}

static bool
oauthbearer_start(void *state, const struct auth_creds *creds, struct auth_buf *out, char *err,
                  size_t errlen)
{
    struct msk_iam_state *st = state;
    struct sigv4_creds sc;
    unsigned expires;
    char *token = NULL, *msg = NULL;
    size_t len = 0;
    time_t now;
    bool ok;

    if (!msk_iam_prepare("OAUTHBEARER", creds, &sc, &now, &expires, err, errlen)) {
        return false;
    }
    if (!msk_iam_token(&sc, creds->aws_region, creds->user_agent, now, expires, &token, err,
                       errlen)) {
        return false;
    }
    ok = msk_iam_oauth_message(token, &msg, &len);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    st->phase = MSK_IAM_SENT;
    return msk_iam_take(msg, len, out, err, errlen);
}

static bool
oauthbearer_step(void *state, const uint8_t *in, size_t len, struct auth_buf *out, bool *done,
                 char *err, size_t errlen)
{
    struct msk_iam_state *st = state;
    static const uint8_t ack = 0x01;

    (void)in;
    if (st->phase == MSK_IAM_SENT && len == 0) {
        *done = true; /* RFC 7628: the server's success is an empty message */
        return true;
    }
    if (st->phase == MSK_IAM_SENT) {
        /* The error JSON: answer %x01 so the broker ends the exchange with its error. */
        st->phase = MSK_IAM_ERROR_ACKED;
        if (!auth_buf_set(out, &ack, 1)) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        return true;
    }
    snprintf(err, errlen,
             "OAUTHBEARER: the broker reported an error (%zu bytes) and then did not fail the "
             "exchange",
             len);
    return false;
}

static void
msk_iam_clear(void *state)
{
    (void)state;
}

const struct auth_mech msk_iam_mech = {
    .name = "AWS_MSK_IAM",
    .state_size = sizeof(struct msk_iam_state),
    .start = msk_iam_start,
    .step = msk_iam_step,
    .clear = msk_iam_clear,
};

const struct auth_mech oauthbearer_mech = {
    .name = "OAUTHBEARER",
    .state_size = sizeof(struct msk_iam_state),
    .start = oauthbearer_start,
    .step = oauthbearer_step,
    .clear = msk_iam_clear,
};
