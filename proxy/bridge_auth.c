/*
 * bridge_auth.c - a bridge's side of kbridge's own SASL (sasl_mechanism set): KIP-368
 * re-authentication of the broker connection before its session ends, between requests, and
 * the answers kbridge gives a client that tries SASL itself. The first authentication happens
 * in upstream.c before the bridge sees the connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "kp_sasl.h"
#include "proxy/bridge_internal.h"
#include "proxy/cluster.h"
#include "proxy/proxy.h"
#include "proxy/sasl.h"
#include "proxy/settings.h"
#include "proxy/upstream.h"

#define KB_REAUTH_MIN_MS 100 /* never re-authenticate more often than this */

/* upstream_auth_fn: the terms of the session the broker connection was opened with. */
void
bridge_auth_on_session(void *arg, int64_t session_lifetime_ms, int auth_version)
{
    struct bridge *br = arg;

    br->session_ms = session_lifetime_ms;
    br->auth_version = auth_version;
}

static void bridge_auth_on_timer(evutil_socket_t fd, short what, void *arg);

/*
 * Arms the re-authentication timer at 85-95% of the session (KIP-368's client uses the same
 * window: early enough for one round trip, spread so connections opened together do not all
 * re-authenticate at once). No-op when the broker gave no lifetime.
 */
void
bridge_auth_schedule(struct bridge *br)
{
    double frac = 0.85 + 0.10 * ((double)rand() / RAND_MAX);
    int64_t ms = (int64_t)((double)br->session_ms * frac);
    struct timeval tv;

    if (br->session_ms <= 0) {
        return;
    }
    if (ms < KB_REAUTH_MIN_MS) {
        ms = KB_REAUTH_MIN_MS;
    }
    if (ms > 24LL * 3600 * 1000) {
        ms = 24LL * 3600 * 1000;
    }
    if (!br->reauth_timer) {
        br->reauth_timer = evtimer_new(br->cl->proxy->base, bridge_auth_on_timer, br);
        if (!br->reauth_timer) {
            bridge_log(br, KB_LOG_ERROR, "out of memory: this connection will not re-authenticate");
            return;
        }
    }
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    evtimer_add(br->reauth_timer, &tv);
}

static void
bridge_auth_on_done(void *arg, bool ok, int64_t session_lifetime_ms, int auth_version,
                    const char *why)
{
    struct bridge *br = arg;
    struct kb_metrics *m = br->cl->metrics;

    br->sasl = NULL;
    br->reauth_wanted = false;
    if (!ok) {
        m->failures[KB_FAIL_AUTH]++;
        m->reauth_failures++;
        metrics_set_error(m, "re-authentication: %s", why);
        bridge_close(br, KB_LOG_ERROR, "re-authentication failed: %s", why);
        return;
    }
    m->reauths++;
    br->session_ms = session_lifetime_ms;
    br->auth_version = auth_version;
    bridge_log(br, KB_LOG_DEBUG, "re-authenticated (%s); session %lld ms",
               conf_sasl_mechanism_str(br->set->cc->sasl_mechanism),
               (long long)session_lifetime_ms);
    bridge_server_resume(br); /* callbacks back; what the broker sent since is pumped */
    if (!bridge_pump_responses(br)) {
        return;
    }
    bridge_auth_schedule(br);
    bufferevent_enable(br->client, EV_READ);
    bridge_pump_requests(br);
}

bool
bridge_auth_try(struct bridge *br)
{
    char why[768];

    if (!br->reauth_wanted || br->sasl || !br->server || !br->client || br->linger) {
        return true;
    }
    if (br->req_remaining > 0 || br->resp_remaining > 0 || br->inflight.count > 0 ||
        evbuffer_get_length(br->stage) > 0) {
        return true; /* between requests only: the broker must see no other request meanwhile */
    }
    bufferevent_disable(br->client, EV_READ);
    br->sasl = sasl_start(br->server, br->set->cc, br->upstream.host, br->auth_version,
                          br->set->cc->tls_handshake_timeout_ms, KB_SASL_MAX_FRAME,
                          bridge_auth_on_done, br, why, sizeof(why));
    if (!br->sasl) {
        br->cl->metrics->reauth_failures++;
        bridge_close(br, KB_LOG_ERROR, "cannot re-authenticate: %s", why);
        return false;
    }
    return true;
}

static void
bridge_auth_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct bridge *br = arg;

    (void)fd;
    (void)what;
    if (br->draining) {
        return; /* closing anyway once what is in flight is answered */
    }
    br->reauth_wanted = true; /* new requests wait; the exchange starts once nothing is in flight */
    bridge_auth_try(br);
}

void
bridge_auth_free(struct bridge *br)
{
    sasl_cancel(br->sasl);
    br->sasl = NULL;
    if (br->reauth_timer) {
        event_free(br->reauth_timer);
        br->reauth_timer = NULL;
    }
}

/* --- a client's own SASL ------------------------------------------------------------------ */

enum frame_step
bridge_auth_refuse_client(struct bridge *br, struct evbuffer *in, size_t total,
                          const struct kp_request_header *hdr)
{
    const char *mech = conf_sasl_mechanism_str(br->set->cc->sasl_mechanism);

    if (evbuffer_get_length(in) < total) {
        return STEP_WAIT; /* answered whole: it is small */
    }
    if (hdr->api_key == KP_API_SASL_HANDSHAKE) {
        bridge_log(br, KB_LOG_WARN,
                   "client sent its own SaslHandshake v%d, but kbridge authenticates to the "
                   "brokers itself (sasl_mechanism = %s): remove the SASL settings from the "
                   "client (security.protocol=PLAINTEXT, no sasl.*)",
                   hdr->api_version, mech);
    }
    if (!inflight_push_kind(&br->inflight, hdr->correlation_id, hdr->api_key, hdr->api_version,
                            INFLIGHT_LOCAL, loopclock_now())) {
        bridge_close(br, KB_LOG_WARN, "client has more than %d requests in flight",
                     KB_INFLIGHT_MAX);
        return STEP_CLOSED;
    }
    evbuffer_drain(in, total); /* never forwarded: it may hold the client's credentials */
    return bridge_auth_answer_local(br) ? STEP_DONE : STEP_CLOSED;
}

/*
 * The answer kbridge gives in the broker's place. SaslHandshake v1 is accepted for the
 * client's mechanism, so that the client's SaslAuthenticate can carry the reason as its error
 * message (SaslHandshake has no message field); v0 (raw tokens would follow) is refused.
 */
static enum kp_status
bridge_auth_local_response(struct bridge *br, const struct inflight_entry *e, struct kp_writer *w)
{
    char msg[384];

    if (e->api_key == KP_API_SASL_HANDSHAKE) {
        return e->api_version >= 1 ? kp_sasl_handshake_response_write(
                                         w, e->correlation_id, 0,
                                         conf_sasl_mechanism_str(br->set->cc->sasl_mechanism))
                                   : kp_sasl_handshake_error_response(w, e->correlation_id,
                                                                      KP_ERR_ILLEGAL_SASL_STATE);
    }
    snprintf(msg, sizeof(msg),
             "kbridge authenticates to the brokers itself (sasl_mechanism = %s): connect with "
             "security.protocol=PLAINTEXT and no SASL settings",
             conf_sasl_mechanism_str(br->set->cc->sasl_mechanism));
    return kp_sasl_authenticate_error_response(w, e->api_version, e->correlation_id,
                                               KP_ERR_ILLEGAL_SASL_STATE, msg);
}

bool
bridge_auth_answer_local(struct bridge *br)
{
    const struct inflight_entry *e;

    while (br->resp_remaining == 0 && (e = inflight_peek(&br->inflight)) &&
           e->kind == INFLIGHT_LOCAL) {
        struct kp_writer w;
        enum kp_status st;

        kp_writer_init(&w);
        st = bridge_auth_local_response(br, e, &w);
        if (st != KP_OK || w.failed ||
            evbuffer_add(bufferevent_get_output(br->client), w.buf, w.len) != 0) {
            kp_writer_free(&w);
            bridge_close(br, KB_LOG_ERROR, "cannot answer the client's %s (%s)",
                         kp_api_name(e->api_key), kp_status_str(st));
            return false;
        }
        br->bytes_down += w.len;
        kp_writer_free(&w);
        inflight_pop(&br->inflight);
    }
    return true;
}
