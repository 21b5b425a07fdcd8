/*
 * probe.c - periodic brokers-only Metadata exchange per cluster (see probe.h): ApiVersions v0
 * to pick a Metadata version the broker serves (Kafka 4 dropped v0-v3, old brokers lack v4),
 * then Metadata, then hang up. One request in flight at a time.
 */
#include "proxy/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "kp_api.h"
#include "kp_frame.h"
#include "kp_request.h"
#include "kp_rewrite.h"
#include "proxy/brokermap.h"
#include "proxy/cluster.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/sasl.h"
#include "proxy/settings.h"
#include "proxy/upstream.h"

#define KB_PROBE_CORR_VERSIONS 0x6b61 /* correlation ids: "ka" */
#define KB_PROBE_CORR_METADATA 0x6b62 /* "kb" */

struct probe {
    struct kb_cluster *cl;       /* cluster probed (the owner) */
    struct kb_settings *set;     /* the settings it probes with (a reference) */
    struct event *timer;         /* next probe, or the deadline of the current one */
    struct upstream *connecting; /* connect attempt under way */
    struct bufferevent *bev;     /* connected, waiting for the Metadata response */
    size_t next_bootstrap;       /* round robin over bootstrap_servers */
    int md_version;              /* Metadata version asked for; 0 while ApiVersions runs */
    bool failing;                /* the last probe failed (log changes of state only) */
    bool settled;                /* the first round has ended */
    bool sasl_required;          /* passthrough: the brokers want SASL before Metadata, which
                                    kbridge cannot do for clients, so probes stop at ApiVersions */
};

static void probe_on_timer(evutil_socket_t fd, short what, void *arg);

static void
probe_reset(struct probe *pr)
{
    upstream_cancel(pr->connecting);
    pr->connecting = NULL;
    upstream_bev_free(pr->bev);
    pr->bev = NULL;
}

/* Ends the current probe, records the outcome and schedules the next one. */
static void
probe_done(struct probe *pr, const char *target, const char *why)
{
    struct kb_metrics *m = pr->cl->metrics;
    struct timeval tv = {KB_PROBE_INTERVAL, 0};
    bool leader = pr->cl->proxy->worker_id == 0; /* every worker probes; the leader reports */

    probe_reset(pr);
    if (why) {
        metrics_set_error(m, "%s: %s", target, why);
        cllog(pr->failing || !leader ? KB_LOG_DEBUG : KB_LOG_WARN, pr->cl->name,
              "readiness probe failed: %s: %s", target, why);
        pr->failing = true;
    } else {
        m->last_ready = metrics_now();
        metrics_set_error(m, "%s", "");
        if (pr->failing) {
            cllog(leader ? KB_LOG_INFO : KB_LOG_DEBUG, pr->cl->name,
                  "readiness probe ok again via %s", target);
        }
        pr->failing = false;
    }
    evtimer_add(pr->timer, &tv);
    if (!pr->settled) {
        pr->settled = true;
        cluster_probe_settled(pr->cl);
    }
}

static const char *
probe_target(const struct probe *pr, char *out, size_t outlen)
{
    const struct kb_cluster_conf *cc = pr->set->cc;
    size_t i = (pr->next_bootstrap + cc->n_bootstrap - 1) % cc->n_bootstrap;

    return conf_hostport_str(&cc->bootstrap[i], out, outlen);
}

/* Queues one request frame; false (after probe_done) when it cannot be built. */
static bool
probe_send(struct probe *pr, const char *target, int md_version)
{
    struct kp_writer w;
    enum kp_status st;

    kp_writer_init(&w);
    st = md_version ? kp_request_metadata_brokers(&w, (int16_t)md_version, KB_PROBE_CORR_METADATA,
                                                  "kbridge-probe")
                    : kp_request_api_versions(&w, KB_PROBE_CORR_VERSIONS, "kbridge-probe");
    if (st == KP_OK) {
        bufferevent_write(pr->bev, w.buf, w.len);
    }
    kp_writer_free(&w);
    if (st != KP_OK) {
        probe_done(pr, target, "cannot build the probe request");
        return false;
    }
    pr->md_version = md_version;
    return true;
}

/* The ApiVersions answer: pick the Metadata version and ask for the brokers. */
static void
probe_on_versions(struct probe *pr, const char *target, const uint8_t *body, size_t len)
{
    struct kp_api_range md = {0, 0, -1, -1};
    char why[160];
    int v;

    if (kp_response_api_versions_v0(body, len, KP_API_METADATA, &md) != KP_OK || md.error) {
        snprintf(why, sizeof(why), "bad ApiVersions response (error code %d)", md.error);
        probe_done(pr, target, why);
        return;
    }
    v = kp_request_metadata_version(md.min, md.max);
    if (v < 0) {
        snprintf(why, sizeof(why), "broker serves Metadata v%d-v%d only", md.min, md.max);
        probe_done(pr, target, why);
        return;
    }
    if (pr->sasl_required) {
        probe_done(pr, target, NULL); /* verified TLS and a Kafka answer: as far as we can go */
        return;
    }
    probe_send(pr, target, v);
}

/* The Metadata answer: teach the broker map, and count the cluster as ready. */
static void
probe_on_metadata(struct probe *pr, const char *target, const uint8_t *body, size_t len)
{
    struct brokermap_call call = {.map = pr->cl->map,
                                  .learn = !cluster_is_stale_for(pr->cl, pr->set)};
    struct kp_rewrite_stats stats = {0};
    struct kp_writer w;
    enum kp_status st;
    size_t off = 0;
    char why[640];

    kp_writer_init(&w);
    st = kp_rewrite_response(KP_API_METADATA, (int16_t)pr->md_version, body, len, brokermap_map,
                             &call, &w, &stats, &off);
    kp_writer_free(&w);
    if (st != KP_OK) {
        snprintf(why, sizeof(why), "bad Metadata v%d response (%s at byte %zu)", pr->md_version,
                 kp_status_str(st), off);
        probe_done(pr, target, why);
    } else if (call.failed) {
        probe_done(pr, target, call.err);
    } else if (stats.addresses == 0) {
        probe_done(pr, target, "Metadata response lists no brokers");
    } else {
        probe_done(pr, target, NULL);
    }
}

static void
probe_on_read(struct bufferevent *bev, void *arg)
{
    struct probe *pr = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t avail = evbuffer_get_length(in), size = 0, hlen = 0;
    int16_t api = pr->md_version ? KP_API_METADATA : KP_API_API_VERSIONS;
    int16_t version = (int16_t)pr->md_version;
    int32_t want = pr->md_version ? KB_PROBE_CORR_METADATA : KB_PROBE_CORR_VERSIONS;
    char target[KB_HOST_MAX + 16];
    uint8_t head[KP_RESPONSE_PEEK], *p;
    int32_t cid = 0;
    enum kp_status st;

    probe_target(pr, target, sizeof(target));
    if (avail < sizeof(head)) {
        return;
    }
    evbuffer_copyout(in, head, sizeof(head));
    st = kp_frame_response_peek(head, sizeof(head), pr->set->conf->max_frame_bytes, &size, &cid);
    if (st != KP_OK) {
        probe_done(pr, target, "response frame with an invalid size");
        return;
    }
    if (cid != want) {
        probe_done(pr, target, "response does not answer the probe's request");
        return;
    }
    if (avail < KP_FRAME_PREFIX + size) {
        return;
    }
    p = evbuffer_pullup(in, (ev_ssize_t)(KP_FRAME_PREFIX + size));
    if (!p ||
        kp_response_header_decode(p + KP_FRAME_PREFIX, size, api, version, &cid, &hlen) != KP_OK) {
        probe_done(pr, target, p ? "malformed response header" : "out of memory");
        return;
    }
    p += KP_FRAME_PREFIX + hlen;
    size -= hlen;
    if (pr->md_version) {
        probe_on_metadata(pr, target, p, size); /* ends the probe */
        return;
    }
    probe_on_versions(pr, target, p, size);
    if (pr->bev) {
        evbuffer_drain(in, KP_FRAME_PREFIX + hlen + size);
    }
}

static void
probe_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe *pr = arg;
    char target[KB_HOST_MAX + 16];

    (void)bev;
    probe_target(pr, target, sizeof(target));
    if ((what & BEV_EVENT_EOF) && pr->md_version && pr->set->cc->sasl_mechanism == KB_SASL_NONE) {
        /* A SASL listener answers ApiVersions and hangs up on anything else before
         * authentication. Without sasl_mechanism the clients authenticate themselves. */
        pr->sasl_required = true;
        if (pr->cl->proxy->worker_id == 0) {
            cllog(KB_LOG_INFO, pr->cl->name,
                  "readiness probe: %s answers ApiVersions but closes the connection when asked "
                  "for Metadata before authentication: it requires SASL, which the clients do "
                  "themselves (no sasl_mechanism, SASL passes through); the probe checks TLS and "
                  "ApiVersions only",
                  target);
        }
        probe_done(pr, target, NULL);
        return;
    }
    probe_done(pr, target,
               (what & BEV_EVENT_EOF) ? "broker closed the connection before answering Metadata"
                                      : "connection error while waiting for Metadata");
}

static void
probe_on_upstream(void *arg, struct bufferevent *bev, enum kb_fail_reason reason, const char *why)
{
    struct probe *pr = arg;
    char target[KB_HOST_MAX + 16];
    struct timeval tv;

    pr->connecting = NULL;
    probe_target(pr, target, sizeof(target));
    if (!bev) {
        pr->cl->metrics->failures[reason]++;
        if (reason == KB_FAIL_AUTH) {
            cluster_auth_result(pr->cl, false);
        }
        probe_done(pr, target, why);
        return;
    }
    if (pr->set->cc->sasl_mechanism != KB_SASL_NONE) {
        cluster_auth_result(pr->cl, true);
    }
    pr->bev = bev;
    if (!probe_send(pr, target, 0)) {
        return;
    }
    bufferevent_setcb(bev, probe_on_read, NULL, probe_on_event, pr);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    tv = metrics_timeval_ms(pr->set->cc->connect_timeout_ms);
    evtimer_add(pr->timer, &tv); /* deadline for the answer */
}

static void
probe_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct probe *pr = arg;
    const struct kb_cluster_conf *cc = pr->set->cc;
    const struct kb_hostport *target;
    char t[KB_HOST_MAX + 16], why[768];

    (void)fd;
    (void)what;
    if (pr->bev) { /* the deadline of an exchange under way */
        probe_done(pr, probe_target(pr, t, sizeof(t)), "no Metadata response in time");
        return;
    }
    if (!sasl_ready(cc, why, sizeof(why))) {
        /* Nothing to sign with yet: look again in a second rather than a whole interval, so
         * the cluster is ready soon after the provider's first (or recovered) credentials.
         * Checking costs a mutex, not a connection (so it counts no upstream failure). */
        struct timeval soon = {1, 0};

        probe_done(pr, probe_target(pr, t, sizeof(t)), why);
        evtimer_add(pr->timer, &soon); /* reschedules the timer probe_done set */
        return;
    }
    target = &cc->bootstrap[pr->next_bootstrap];
    pr->next_bootstrap = (pr->next_bootstrap + 1) % cc->n_bootstrap;
    pr->connecting = upstream_connect(pr->cl->proxy->base, pr->cl->proxy->dns, cc, pr->set->ssl_ctx,
                                      target, probe_on_upstream, pr);
    if (!pr->connecting) {
        probe_done(pr, probe_target(pr, t, sizeof(t)), "out of memory");
    }
}

struct probe *
probe_new(struct kb_cluster *cl)
{
    struct probe *pr = calloc(1, sizeof(*pr));
    struct timeval now = {0, 0};

    if (!pr) {
        return NULL;
    }
    pr->timer = evtimer_new(cl->proxy->base, probe_on_timer, pr);
    if (!pr->timer) {
        free(pr);
        return NULL;
    }
    pr->cl = cl;
    pr->set = settings_ref(cl->cur);
    evtimer_add(pr->timer, &now);
    return pr;
}

void
probe_free(struct probe *pr)
{
    if (!pr) {
        return;
    }
    probe_reset(pr);
    event_free(pr->timer);
    settings_unref(pr->set);
    free(pr);
}
