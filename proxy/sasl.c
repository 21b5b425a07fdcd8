/*
 * sasl.c - the SASL exchange's I/O (see sasl.h): write what sasl_fsm asks for, cut the
 * broker's answers into frames, feed them back, bound the whole exchange with one timer.
 * Request frames carry secrets (a PLAIN password, a SCRAM proof), so they enter the output
 * buffer by reference and are wiped once libevent has handed them to TLS.
 */
#include "proxy/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "auth/mech.h"
#include "aws/provider.h"
#include "conf/conf.h"
#include "conf/secret.h"
#include "kp_frame.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/sasl_fsm.h"
#include "proxy/version.h"

#define SASL_WHY_MAX 768

struct sasl {
    struct bufferevent *bev;  /* the connection (not owned) */
    struct sasl_fsm *fsm;     /* the exchange */
    struct event *timer;      /* the whole exchange's deadline */
    char host[KB_HOST_MAX];   /* broker, for messages */
    const char *mech;         /* mechanism name, for messages */
    int timeout_ms;           /* for the timeout message */
    size_t max_frame;         /* largest answer accepted */
    sasl_done_fn done;        /* completion callback */
    void *arg;                /* its argument */
    const char *cluster;      /* IAM: the section name (the settings own it), for the log */
    struct aws_provider *aws; /* IAM: the credentials' provider (the settings own it), or NULL */
    char aws_key[AWS_KEY_ID_MAX]; /* IAM: the access key id this exchange signed with */
};

static void
sasl_free(struct sasl *s)
{
    bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
    if (s->timer) {
        event_free(s->timer);
    }
    sasl_fsm_free(s->fsm);
    free(s);
}

/* Reports the outcome and frees the driver; see sasl_done_fn. */
static void
sasl_finish(struct sasl *s, bool ok, const char *why)
{
    sasl_done_fn done = s->done;
    void *arg = s->arg;
    int64_t lifetime = sasl_fsm_session_lifetime_ms(s->fsm);
    int version = sasl_fsm_auth_version(s->fsm);

    sasl_free(s);
    done(arg, ok, ok ? lifetime : 0, version, ok ? NULL : why);
}

/* Wipes a request frame once the output buffer is done with it. */
static void
sasl_wipe_frame(const void *data, size_t len, void *extra)
{
    (void)extra;
    OPENSSL_cleanse((void *)data, len);
    free((void *)data);
}

/* Moves w's frame into the output buffer (by reference: wiped when sent). Takes w. */
static bool
sasl_send(struct sasl *s, struct kp_writer *w)
{
    uint8_t *buf = w->buf;
    size_t len = w->len;

    kp_writer_init(w); /* the buffer now belongs to the evbuffer reference */
    if (evbuffer_add_reference(bufferevent_get_output(s->bev), buf, len, sasl_wipe_frame, NULL) !=
        0) {
        sasl_wipe_frame(buf, len, NULL);
        return false;
    }
    return true;
}

/* Wipes and frees what is left in w (nothing on the normal path). */
static void
sasl_writer_wipe(struct kp_writer *w)
{
    if (w->buf) {
        OPENSSL_cleanse(w->buf, w->cap);
    }
    kp_writer_free(w);
}

/*
 * MSK refused the signature because the credentials expired (revoked early, or the source's
 * expiry was wrong): ask the provider for new ones now rather than at its scheduled refresh.
 * It fetches only if the refused key is still its current one, so a burst of refusals costs one
 * STS call; the cluster's authentication back-off paces the retries.
 */
static void
sasl_aws_refused(struct sasl *s, const char *why)
{
    if (s->aws && strcasestr(why, "expired") &&
        (strcasestr(why, "token") || strcasestr(why, "credential"))) {
        if (aws_provider_refresh_stale(s->aws, s->aws_key)) {
            cllog(KB_LOG_WARN, s->cluster,
                  "broker %s says the AWS credentials expired: fetching new ones now", s->host);
        }
    }
}

/* Feeds every whole answer in the input buffer; false once the driver is gone. */
static bool
sasl_process(struct sasl *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    char why[SASL_WHY_MAX];

    for (;;) {
        uint8_t prefix[KP_FRAME_PREFIX];
        struct kp_writer out;
        enum sasl_fsm_result r;
        enum kp_status st;
        size_t size = 0;

        if (evbuffer_copyout(in, prefix, sizeof(prefix)) < (ev_ssize_t)sizeof(prefix)) {
            return true;
        }
        st = kp_frame_size(prefix, sizeof(prefix), s->max_frame, &size);
        if (st != KP_OK) {
            snprintf(why, sizeof(why),
                     SASL_FAIL_PREFIX " (%s): %s answer size from %s during SASL (%s)", s->mech,
                     st == KP_TOO_LARGE ? "oversized" : "bad", s->host, kp_status_str(st));
            sasl_finish(s, false, why);
            return false;
        }
        if (evbuffer_get_length(in) < KP_FRAME_PREFIX + size) {
            return true;
        }
        kp_writer_init(&out);
        r = sasl_fsm_on_response(
            s->fsm, evbuffer_pullup(in, (ev_ssize_t)(KP_FRAME_PREFIX + size)) + KP_FRAME_PREFIX,
            size, &out, why, sizeof(why));
        evbuffer_drain(in, KP_FRAME_PREFIX + size);
        if (r == SASL_FSM_SEND && !sasl_send(s, &out)) {
            snprintf(why, sizeof(why), SASL_FAIL_PREFIX " (%s): out of memory", s->mech);
            r = SASL_FSM_FAIL;
        }
        sasl_writer_wipe(&out);
        if (r == SASL_FSM_OK) {
            sasl_finish(s, true, NULL);
            return false;
        }
        if (r == SASL_FSM_FAIL) {
            /* name the broker: the FSM's sentence does not know it */
            char full[SASL_WHY_MAX + KB_HOST_MAX + 16];
            sasl_aws_refused(s, why);
            snprintf(full, sizeof(full), "%s [broker %s]", why, s->host);
            sasl_finish(s, false, full);
            return false;
        }
    }
}

static void
sasl_on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)sasl_process(arg);
}

static void
sasl_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct sasl *s = arg;
    char why[SASL_WHY_MAX];

    (void)bev;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        return;
    }
    /* An answer that arrived together with the close (a refusal) says more than the close. */
    if (!sasl_process(s)) {
        return;
    }
    snprintf(why, sizeof(why),
             SASL_FAIL_PREFIX " (%s): %s closed the connection during the SASL exchange (a "
                              "listener without SASL, or one that rejected the request)",
             s->mech, s->host);
    sasl_finish(s, false, why);
}

static void
sasl_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sasl *s = arg;
    char why[SASL_WHY_MAX];

    (void)fd;
    (void)what;
    snprintf(why, sizeof(why),
             SASL_FAIL_PREFIX " (%s): no answer from %s within %d ms during the SASL exchange",
             s->mech, s->host, s->timeout_ms);
    sasl_finish(s, false, why);
}

/* Wipes and frees what sasl_aws_creds() copied. NULL is fine. */
static void
sasl_aws_free(struct aws_creds *aws)
{
    if (aws) {
        aws_creds_clear(aws);
        free(aws);
    }
}

/*
 * Copies cc's current AWS credentials (never a network call: the provider's thread fetched
 * them). When there are none, why is the provider's reason, so the connection fails with the
 * cause (no credentials and where each source said so, STS's refusal, expired). The provider
 * is not prodded: it already retries with its own back-off, and every client retry would
 * otherwise become an STS call.
 */
static bool
sasl_aws_creds(const struct kb_cluster_conf *cc, const char *mech, struct aws_creds **out,
               char *why, size_t whylen)
{
    char reason[512];

    *out = malloc(sizeof(**out)); /* ~10 KB: too big for an event-loop stack frame */
    if (!*out) {
        snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): out of memory", mech);
        return false;
    }
    if (aws_provider_get(cc->aws_provider, *out)) {
        return true;
    }
    sasl_aws_free(*out);
    *out = NULL;
    aws_provider_reason(cc->aws_provider, reason, sizeof(reason));
    snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): no valid AWS credentials for [%s]: %s", mech,
             cc->name, *reason ? reason : "none yet");
    return false;
}

bool
sasl_ready(const struct kb_cluster_conf *cc, char *why, size_t whylen)
{
    char reason[512];

    if (!KB_SASL_IS_IAM(cc->sasl_mechanism) || !cc->aws_provider) {
        return true;
    }
    aws_provider_reason(cc->aws_provider, reason, sizeof(reason));
    if (!*reason) {
        return true;
    }
    snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): no valid AWS credentials for [%s]: %s",
             conf_sasl_mechanism_str(cc->sasl_mechanism), cc->name, reason);
    return false;
}

struct sasl *
sasl_start(struct bufferevent *bev, const struct kb_cluster_conf *cc, const char *host,
           int auth_version, int timeout_ms, size_t max_frame, sasl_done_fn done, void *arg,
           char *why, size_t whylen)
{
    const struct auth_mech *mech = auth_mech_find(conf_sasl_mechanism_str(cc->sasl_mechanism));
    struct auth_creds creds = {0};
    struct aws_creds *aws = NULL;
    struct kp_writer out;
    struct timeval tv;
    struct sasl *s;

    if (!mech || (KB_SASL_IS_IAM(cc->sasl_mechanism) ? !cc->aws_provider
                                                     : !cc->sasl_secret || !cc->sasl_username)) {
        snprintf(why, whylen, SASL_FAIL_PREFIX ": no usable sasl_mechanism in [%s]", cc->name);
        return NULL;
    }
    if (KB_SASL_IS_IAM(cc->sasl_mechanism) && !sasl_aws_creds(cc, mech->name, &aws, why, whylen)) {
        return NULL;
    }
    if (!(s = calloc(1, sizeof(*s))) ||
        !(s->timer = evtimer_new(bufferevent_get_base(bev), sasl_on_timeout, s))) {
        free(s);
        sasl_aws_free(aws);
        snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): out of memory", mech->name);
        return NULL;
    }
    s->bev = bev;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->mech = mech->name;
    s->timeout_ms = timeout_ms;
    s->max_frame = max_frame;
    s->done = done;
    s->arg = arg;
    if (aws) {
        s->aws = cc->aws_provider;
        s->cluster = cc->name;
        snprintf(s->aws_key, sizeof(s->aws_key), "%s", aws->access_key_id);
    }
    sasl_fsm_creds(&creds, cc, host, aws);
    kp_writer_init(&out);
    if (!(s->fsm = sasl_fsm_new(mech, &creds, "kbridge", auth_version, why, whylen)) ||
        sasl_fsm_start(s->fsm, &out, why, whylen) != SASL_FSM_SEND) {
        goto fail; /* the FSM wrote why */
    }
    sasl_aws_free(aws); /* the mechanism signed: the message holds what it needs */
    aws = NULL;
    if (!sasl_send(s, &out)) {
        snprintf(why, whylen, SASL_FAIL_PREFIX " (%s): out of memory", mech->name);
        goto fail;
    }
    tv = metrics_timeval_ms(timeout_ms);
    evtimer_add(s->timer, &tv);
    bufferevent_setcb(bev, sasl_on_read, NULL, sasl_on_event, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return s;
fail:
    sasl_aws_free(aws);
    sasl_writer_wipe(&out);
    sasl_fsm_free(s->fsm);
    event_free(s->timer);
    free(s);
    return NULL;
}

void
sasl_cancel(struct sasl *s)
{
    if (s) {
        sasl_free(s);
    }
}
