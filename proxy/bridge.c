/*
 * bridge.c - one client <-> broker pair. Client bytes are forwarded frame by frame as they
 * arrive; only the first bytes of each request are looked at (header, and acks for Produce)
 * to remember which response to expect. Broker responses that may carry addresses are
 * buffered whole and rewritten by the codec; all others are moved by length (evbuffer chains,
 * no copy). A side whose peer's output is above KB_HIGH_WATER stops being read until it drains.
 */
#include "proxy/bridge.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "kp_api.h"
#include "kp_frame.h"
#include "kp_rewrite.h"
#include "proxy/brokermap.h"
#include "proxy/cluster.h"
#include "proxy/inflight.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/sockio.h"
#include "proxy/upstream.h"
#include "tls/tlssess.h"

#define KB_HEADER_PEEK 64 /* first guess of how many bytes a request header needs */
#define KB_LINGER_SEC 10
#define KB_READ_MORE (64 * 1024) /* top-up read after a full 4 KiB libevent read */
#define KB_TLS_RECORD 16384      /* a full TLS record's payload */
#define KB_MAX_SINGLE_WRITE                                                                        \
    (256 * 1024) /* per write callback, both sides */ /* bound on flushing the other side after    \
                                                         one side ends */

enum frame_step { STEP_DONE, STEP_WAIT, STEP_CLOSED };

struct bridge {
    struct kb_cluster *cl;        /* owner */
    uint64_t id;                  /* connection id, "C#id" in logs */
    int32_t node_id;              /* KB_NODE_BOOTSTRAP or the broker this serves */
    char prefix[112];             /* "C#12 127.0.0.1:50412 node 2" or "... bootstrap" */
    struct bufferevent *client;   /* the plaintext client */
    struct bufferevent *server;   /* the broker; NULL until connected */
    struct upstream *connecting;  /* attempt under way, or NULL */
    size_t next_bootstrap;        /* index of the next bootstrap server to try */
    struct kb_hostport upstream;  /* the broker's name (for SNI, verification and logs) */
    struct inflight inflight;     /* requests waiting for their response */
    struct sockio_tap tap;        /* read top-up on the socket under the broker's TLS */
    size_t req_remaining;         /* bytes of the current request still to forward */
    size_t resp_remaining;        /* bytes of the current pass-through response to forward */
    uint64_t bytes_up;            /* client -> broker */
    uint64_t bytes_down;          /* broker -> client */
    uint64_t responses_rewritten; /* responses that went through the codec */
    double connect_started;       /* monotonic time the upstream attempt began */
    bool draining;                /* finish what is in flight, accept no new request */
    struct event *linger;         /* set while flushing to the client before closing */
    char finish_why[320];         /* why we are closing once the client is flushed */
    struct bridge *prev;          /* proxy list */
    struct bridge *next;          /* proxy list */
};

static void bridge_finish(struct bridge *br, const char *why);
static bool bridge_pump_requests(struct bridge *br);
static bool bridge_pump_responses(struct bridge *br);
static void bridge_connect_next(struct bridge *br);

static void brlog(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...) KB_PRINTF(3, 4);

static void
brlog(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(lvl, br->cl->cc->name, br->prefix, fmt, ap);
    va_end(ap);
}

struct bridge *
bridge_next(const struct bridge *br)
{
    return br->next;
}

void
bridge_free(struct bridge *br)
{
    struct kb_proxy *p = br->cl->proxy;

    upstream_cancel(br->connecting);
    if (br->client) {
        bufferevent_free(br->client);
    }
    if (br->server) {
        metrics_broker(br->cl->metrics, br->node_id)->active--;
        bufferevent_free(br->server);
    }
    if (br->linger) {
        event_free(br->linger);
    }
    inflight_free(&br->inflight);
    if (br->prev) {
        br->prev->next = br->next;
    } else {
        p->bridges = br->next;
    }
    if (br->next) {
        br->next->prev = br->prev;
    }
    p->n_bridges--;
    br->cl->metrics->clients_active--;
    if (p->worker_id < KB_METRICS_WORKERS) {
        p->registry->worker_active[p->worker_id]--;
    }
    cluster_unref(br->cl);
    free(br);
}

/* Logs why and frees the pair. Callers return at once: br is gone. */
static void bridge_close(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...)
    KB_PRINTF(3, 4);

static void
bridge_close(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...)
{
    struct kb_proxy *p = br->cl->proxy;
    char why[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);

    brlog(br, lvl, "closed: %s (%llu bytes up, %llu down, %llu responses rewritten)", why,
          (unsigned long long)br->bytes_up, (unsigned long long)br->bytes_down,
          (unsigned long long)br->responses_rewritten);
    bridge_free(br);
    proxy_bridge_closed(p);
}

static const char *
bridge_upstream_str(const struct bridge *br, char *out, size_t outlen)
{
    char hp[KB_HOST_MAX + 16];

    if (br->node_id == KB_NODE_BOOTSTRAP) {
        snprintf(out, outlen, "%s (bootstrap %zu/%zu)",
                 conf_hostport_str(&br->upstream, hp, sizeof(hp)), br->next_bootstrap,
                 br->cl->cc->n_bootstrap);
    } else {
        snprintf(out, outlen, "%s (node %d)", conf_hostport_str(&br->upstream, hp, sizeof(hp)),
                 (int)br->node_id);
    }
    return out;
}

/*
 * Sends what was just queued for bev now, instead of on the next loop turn: the client socket
 * directly, the broker through the socket under its TLS filter (the records are already made).
 */
static void
bridge_flush(struct bufferevent *bev)
{
    struct bufferevent *under = bufferevent_get_underlying(bev);

    sockio_flush(under ? under : bev);
}

/* --- flow control ------------------------------------------------------------------------ */

/*
 * Stops reading `from` while `to` has buffer_high_bytes or more queued; `to`'s write callback
 * (low watermark buffer_low_bytes) resumes it.
 */
static void
bridge_throttle(struct bridge *br, struct bufferevent *from, struct bufferevent *to)
{
    if (evbuffer_get_length(bufferevent_get_output(to)) >= br->cl->conf->buffer_high_bytes) {
        bufferevent_disable(from, EV_READ);
    }
}

static void
bridge_on_client_drained(struct bufferevent *bev, void *arg)
{
    struct bridge *br = arg;

    (void)bev;
    if (br->linger) {
        if (evbuffer_get_length(bufferevent_get_output(br->client)) == 0) {
            bridge_close(br, KB_LOG_INFO, "%s", br->finish_why);
        }
        return;
    }
    if (br->server && !(bufferevent_get_enabled(br->server) & EV_READ)) {
        bufferevent_enable(br->server, EV_READ);
        bridge_pump_responses(br); /* process what is already buffered */
    }
}

static void
bridge_on_server_drained(struct bufferevent *bev, void *arg)
{
    struct bridge *br = arg;

    (void)bev;
    if (!br->linger && !br->draining && !(bufferevent_get_enabled(br->client) & EV_READ)) {
        bufferevent_enable(br->client, EV_READ);
        bridge_pump_requests(br);
    }
}

/* --- requests: client -> broker ------------------------------------------------------------ */

/* Reads the header of the request at the start of in and records it. */
static enum frame_step
bridge_start_request(struct bridge *br, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    size_t max = br->cl->conf->max_frame_bytes;
    uint8_t pre[KP_FRAME_PREFIX];
    struct kp_request_header hdr;
    enum kp_status st;
    size_t size, total, need;
    const uint8_t *p;
    bool expects = true;

    if (br->draining) {
        bufferevent_disable(br->client, EV_READ); /* no new request once draining */
        return STEP_WAIT;
    }
    if (avail < KP_FRAME_PREFIX) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, pre, sizeof(pre));
    st = kp_frame_size(pre, sizeof(pre), max, &size);
    if (st != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(
            br, KB_LOG_WARN, "client sent a request frame with %s size %d%s",
            st == KP_TOO_LARGE ? "a too large" : "an invalid",
            (int)((uint32_t)pre[0] << 24 | (uint32_t)pre[1] << 16 | (uint32_t)pre[2] << 8 | pre[3]),
            st == KP_TOO_LARGE ? " (above max_frame_bytes)" : "");
        return STEP_CLOSED;
    }
    total = KP_FRAME_PREFIX + size;
    need = total < KP_FRAME_PREFIX + KB_HEADER_PEEK ? total : KP_FRAME_PREFIX + KB_HEADER_PEEK;
    for (;;) {
        if (avail < need) {
            return STEP_WAIT;
        }
        p = evbuffer_pullup(in, (ev_ssize_t)need);
        st = kp_request_header_decode(p + KP_FRAME_PREFIX, need - KP_FRAME_PREFIX, &hdr);
        if (st == KP_OK) {
            st = kp_request_expects_response(p + KP_FRAME_PREFIX, need - KP_FRAME_PREFIX, &hdr,
                                             &expects);
        }
        if (st != KP_INCOMPLETE || need == total) {
            break;
        }
        need = need * 4 < total ? need * 4 : total;
    }
    if (st != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_WARN, "client sent a malformed request header (%s)",
                     st == KP_INCOMPLETE ? "frame ends inside it" : kp_status_str(st));
        return STEP_CLOSED;
    }
    if (log_enabled(KB_LOG_DEBUG)) {
        brlog(br, KB_LOG_DEBUG, "request %s v%d correlation id %d, %zu bytes%s",
              kp_api_name(hdr.api_key), hdr.api_version, (int)hdr.correlation_id, total,
              expects ? "" : " (acks=0: no response)");
    }
    metrics_count_request(br->cl->metrics, hdr.api_key);
    if (expects && !inflight_push(&br->inflight, hdr.correlation_id, hdr.api_key, hdr.api_version,
                                  metrics_now())) {
        bridge_close(br, KB_LOG_WARN, "client has more than %d requests in flight",
                     KB_INFLIGHT_MAX);
        return STEP_CLOSED;
    }
    br->req_remaining = total;
    return STEP_DONE;
}

/* One direction of a bridge, for bridge_pump(). */
struct pump_dir {
    struct bufferevent *from; /* read side */
    struct bufferevent *to;   /* write side */
    size_t *remaining;        /* bytes of the current frame still to move */
    uint64_t *bytes;          /* this bridge's byte counter */
    kb_counter *metric;       /* the cluster's byte counter */
    enum frame_step (*start)(struct bridge *, struct evbuffer *); /* look at a new frame */
    struct evbuffer *stage; /* requests: collects the frames, then bridge_feed_tls() */
};

/*
 * Hands staged request bytes to the broker's bufferevent in pieces of at least one full TLS
 * record. The TLS filter makes a record (one SSL_write) per buffer chain as soon as data is
 * added, so ten 1 KiB frames moved one by one would become ten records; staged and joined they
 * become one. A chain that is already large (a big Produce read in one go) is moved as it is.
 */
static void
bridge_feed_tls(struct evbuffer *stage, struct evbuffer *out)
{
    struct evbuffer_iovec first;
    size_t len, take;

    while ((len = evbuffer_get_length(stage)) > 0) {
        evbuffer_peek(stage, -1, NULL, &first, 1);
        if (first.iov_len >= KB_TLS_RECORD) {
            take = first.iov_len;
        } else {
            take = len < KB_TLS_RECORD ? len : KB_TLS_RECORD;
            evbuffer_pullup(stage, (ev_ssize_t)take);
        }
        evbuffer_remove_buffer(stage, out, take);
    }
}

/*
 * Moves every complete-enough frame from d->from to d->to: start() looks at each new frame
 * (and may consume it whole, e.g. a rewritten response); the rest of a frame is moved by length.
 * Then throttles d->from if d->to is too full. Returns false when the bridge was closed.
 */
static bool
bridge_pump(struct bridge *br, const struct pump_dir *d)
{
    struct evbuffer *in = bufferevent_get_input(d->from);
    struct evbuffer *out = d->stage ? d->stage : bufferevent_get_output(d->to);
    size_t avail, n;

    while ((avail = evbuffer_get_length(in)) > 0) {
        if (*d->remaining == 0) {
            enum frame_step step = d->start(br, in);
            if (step == STEP_CLOSED) {
                return false;
            }
            if (step == STEP_WAIT) {
                break;
            }
            continue;
        }
        n = avail < *d->remaining ? avail : *d->remaining;
        evbuffer_remove_buffer(in, out, n);
        *d->remaining -= n;
        *d->bytes += n;
        *d->metric += n;
    }
    if (d->stage) {
        bridge_feed_tls(d->stage, bufferevent_get_output(d->to));
    }
    bridge_flush(d->to);
    bridge_throttle(br, d->from, d->to);
    return true;
}

/* Forwards every request byte available. Returns false when the bridge was closed. */
static bool
bridge_pump_requests(struct bridge *br)
{
    const struct pump_dir d = {br->client,
                               br->server,
                               &br->req_remaining,
                               &br->bytes_up,
                               &br->cl->metrics->bytes_up,
                               bridge_start_request,
                               br->cl->proxy->stage};

    return bridge_pump(br, &d);
}

static void
bridge_on_client_read(struct bufferevent *bev, void *arg)
{
    struct bridge *br = arg;

    (void)bev;
    /* libevent 2.1 reads 4 KiB per event; a large Produce should go upstream in large TLS
     * records, so read on while the broker side has room. */
    if (br->server &&
        evbuffer_get_length(bufferevent_get_output(br->server)) < br->cl->conf->buffer_high_bytes) {
        sockio_read_more(br->client, KB_READ_MORE);
    }
    bridge_pump_requests(br);
}

/* --- responses: broker -> client ----------------------------------------------------------- */

static void
bridge_free_chunk(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Rewrites one whole buffered response frame of `total` bytes into the client's output. */
static enum frame_step
bridge_rewrite_response(struct bridge *br, struct evbuffer *in, size_t total,
                        const struct inflight_entry *req)
{
    struct evbuffer *out = bufferevent_get_output(br->client);
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)total);
    size_t size = total - KP_FRAME_PREFIX, hlen = 0, err_off = 0;
    struct brokermap_call call = {.map = br->cl->map};
    struct kp_rewrite_stats stats = {0};
    struct kp_writer w;
    enum kp_status st;
    int32_t cid;
    uint8_t pre[KP_FRAME_PREFIX];
    size_t nsize;

    kp_writer_init(&w);
    st = kp_response_header_decode(p + KP_FRAME_PREFIX, size, req->api_key, req->api_version, &cid,
                                   &hlen);
    if (st == KP_OK) {
        st = kp_rewrite_response(req->api_key, req->api_version, p + KP_FRAME_PREFIX + hlen,
                                 size - hlen, brokermap_map, &call, &w, &stats, &err_off);
    }
    if (st != KP_OK || call.failed || w.failed) {
        kp_writer_free(&w);
        if (call.failed) {
            bridge_close(br, KB_LOG_ERROR, "%s v%d response not forwarded: %s",
                         kp_api_name(req->api_key), req->api_version, call.err);
        } else {
            bridge_close(br, KB_LOG_ERROR,
                         "cannot rewrite %s v%d response (%s at byte %zu of %zu); closing "
                         "rather than pass on unrewritten broker addresses",
                         kp_api_name(req->api_key), req->api_version, kp_status_str(st), err_off,
                         size);
        }
        return STEP_CLOSED;
    }
    nsize = hlen + w.len;
    pre[0] = (uint8_t)(nsize >> 24);
    pre[1] = (uint8_t)(nsize >> 16);
    pre[2] = (uint8_t)(nsize >> 8);
    pre[3] = (uint8_t)nsize;
    evbuffer_add(out, pre, sizeof(pre));
    evbuffer_add(out, p + KP_FRAME_PREFIX, hlen);
    /* Hand the writer's buffer to the evbuffer instead of copying it again. */
    if (w.len == 0 || evbuffer_add_reference(out, w.buf, w.len, bridge_free_chunk, NULL) == 0) {
        if (w.len == 0) {
            kp_writer_free(&w);
        }
    } else {
        kp_writer_free(&w);
        bridge_close(br, KB_LOG_ERROR, "out of memory queueing a response");
        return STEP_CLOSED;
    }
    evbuffer_drain(in, total);
    br->bytes_down += KP_FRAME_PREFIX + nsize;
    br->cl->metrics->bytes_down += KP_FRAME_PREFIX + nsize;
    br->responses_rewritten++;
    metrics_count_rewrite(br->cl->metrics, req->api_key, stats.rewritten);
    if (req->api_key == KP_API_METADATA) {
        br->cl->metrics->last_ready = metrics_now(); /* a verified Metadata exchange */
    }
    if (log_enabled(KB_LOG_DEBUG)) {
        brlog(br, KB_LOG_DEBUG,
              "response %s v%d correlation id %d: %u addresses, %u rewritten, %u capped",
              kp_api_name(req->api_key), req->api_version, (int)cid, stats.addresses,
              stats.rewritten, stats.capped);
    }
    return STEP_DONE;
}

/* Looks at the response starting at in: pass it through by length, or rewrite it whole. */
static enum frame_step
bridge_start_response(struct bridge *br, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    uint8_t head[KP_FRAME_PREFIX + 4];
    const struct inflight_entry *req;
    struct inflight_entry r;
    size_t size, total;
    enum kp_status st;
    int32_t cid;
    enum frame_step step;

    if (avail < sizeof(head)) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, head, sizeof(head));
    st = kp_frame_size(head, sizeof(head), br->cl->conf->max_frame_bytes, &size);
    if (st != KP_OK || size < 4) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR, "broker sent a response frame with %s size",
                     st == KP_TOO_LARGE ? "a size above max_frame_bytes" : "an invalid");
        return STEP_CLOSED;
    }
    total = KP_FRAME_PREFIX + size;
    cid = (int32_t)((uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 |
                    head[7]);
    req = inflight_peek(&br->inflight);
    if (!req || req->correlation_id != cid) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR,
                     "broker sent a response with correlation id %d, expected %s%d", (int)cid,
                     req ? "" : "none; ", req ? (int)req->correlation_id : 0);
        return STEP_CLOSED;
    }
    if (!kp_api_response_needs_rewrite(req->api_key, req->api_version)) {
        metrics_observe(&br->cl->metrics->request_latency, metrics_now() - req->sent);
        inflight_pop(&br->inflight);
        br->resp_remaining = total;
        return STEP_DONE;
    }
    if (avail < total) {
        return STEP_WAIT; /* rewriting needs the whole frame */
    }
    r = *req;
    metrics_observe(&br->cl->metrics->request_latency, metrics_now() - r.sent);
    inflight_pop(&br->inflight);
    step = bridge_rewrite_response(br, in, total, &r);
    return step;
}

/* Forwards every complete response available. Returns false when the bridge was closed. */
static bool
bridge_pump_responses(struct bridge *br)
{
    const struct pump_dir d = {br->server,
                               br->client,
                               &br->resp_remaining,
                               &br->bytes_down,
                               &br->cl->metrics->bytes_down,
                               bridge_start_response,
                               NULL};

    if (!bridge_pump(br, &d)) {
        return false;
    }
    if (br->draining && br->inflight.count == 0 && br->req_remaining == 0 &&
        br->resp_remaining == 0) {
        bridge_finish(br, "drained: every request in flight was answered");
        return false;
    }
    return true;
}

static void
bridge_on_server_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    bridge_pump_responses(arg);
}

/* --- endings ----------------------------------------------------------------------------- */

static void
bridge_on_linger_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct bridge *br = arg;

    (void)fd;
    (void)what;
    bridge_close(br, KB_LOG_WARN, "gave up flushing to the client after %d s", KB_LINGER_SEC);
}

/*
 * Closes once everything queued for the client is written (bounded by KB_LINGER_SEC): reads
 * stop on both sides now. why is logged at the close. br may be freed before this returns.
 */
static void
bridge_finish(struct bridge *br, const char *why)
{
    struct timeval tv = {KB_LINGER_SEC, 0};

    if (evbuffer_get_length(bufferevent_get_output(br->client)) == 0) {
        bridge_close(br, KB_LOG_INFO, "%s", why);
        return;
    }
    snprintf(br->finish_why, sizeof(br->finish_why), "%s", why);
    if (br->server) {
        bufferevent_disable(br->server, EV_READ);
    }
    bufferevent_disable(br->client, EV_READ);
    bufferevent_setwatermark(br->client, EV_WRITE, 0, 0);
    if (!br->linger) {
        br->linger = evtimer_new(br->cl->proxy->base, bridge_on_linger_timeout, br);
        if (!br->linger) {
            bridge_close(br, KB_LOG_ERROR, "out of memory");
            return;
        }
        evtimer_add(br->linger, &tv);
    }
}

/* The broker ended the connection: deliver what is queued for the client, then close. */
static void
bridge_server_ended(struct bridge *br, const char *why)
{
    size_t partial = evbuffer_get_length(bufferevent_get_input(br->server));
    char msg[320];

    if (partial || br->resp_remaining) {
        brlog(br, KB_LOG_WARN, "broker ended mid-response (%s); %zu bytes of it dropped", why,
              partial);
    }
    snprintf(msg, sizeof(msg), "broker closed the connection (%s)", why);
    metrics_broker(br->cl->metrics, br->node_id)->active--;
    bufferevent_free(br->server);
    br->server = NULL;
    bridge_finish(br, msg);
}

void
bridge_drain(struct bridge *br)
{
    br->draining = true;
    if (!br->server) {
        bridge_close(br, KB_LOG_INFO, "draining: the upstream was not connected yet");
        return;
    }
    if (br->req_remaining == 0) {
        bufferevent_disable(br->client, EV_READ);
    }
    if (br->inflight.count == 0 && br->req_remaining == 0 && br->resp_remaining == 0) {
        bridge_finish(br, "drained: nothing was in flight");
    }
}

static void
bridge_on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct bridge *br = arg;

    if (what & BEV_EVENT_TIMEOUT) {
        /* Silent, but waiting for a response (a long-poll Fetch) is not idle. */
        if (br->inflight.count > 0 || br->req_remaining > 0 || br->resp_remaining > 0) {
            bufferevent_enable(bev, EV_READ);
            return;
        }
        bridge_close(br, KB_LOG_INFO, "idle for %d ms with nothing in flight (idle_timeout_ms)",
                     br->cl->cc->idle_timeout_ms);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        bridge_close(br, KB_LOG_INFO, "client closed the connection");
    } else {
        bridge_close(br, KB_LOG_INFO, "client connection error: %s",
                     strerror(EVUTIL_SOCKET_ERROR()));
    }
}

static void
bridge_on_server_event(struct bufferevent *bev, short what, void *arg)
{
    struct bridge *br = arg;
    char why[256];

    if ((what & BEV_EVENT_ERROR) && bufferevent_get_openssl_error(bev) != 0) {
        /* A TLS-level failure (fatal alert, bad record): never resume that session. */
        tlssess_forget(bufferevent_openssl_get_ssl(bev));
    }
    if (what & BEV_EVENT_EOF) {
        snprintf(why, sizeof(why), "end of stream");
    } else if (EVUTIL_SOCKET_ERROR() != 0) {
        snprintf(why, sizeof(why), "error: %s", strerror(EVUTIL_SOCKET_ERROR()));
    } else {
        /* An OpenSSL-level end: a TLS peer that went away without close_notify. */
        snprintf(why, sizeof(why), "TLS connection ended without close_notify");
    }
    if (bridge_pump_responses(br)) { /* anything complete still goes out */
        bridge_server_ended(br, why);
    }
}

/* --- connecting ---------------------------------------------------------------------------- */

static void
bridge_on_upstream(void *arg, struct bufferevent *bev, const char *why)
{
    struct bridge *br = arg;
    char up[KB_HOST_MAX + 64], tls[512];

    br->connecting = NULL;
    bridge_upstream_str(br, up, sizeof(up));
    if (!bev) {
        struct kb_metrics *m = br->cl->metrics;
        m->failures[metrics_fail_reason(why)]++;
        metrics_set_error(m, "%s: %s", up, why);
        brlog(br, KB_LOG_ERROR, "upstream %s: %s", up, why);
        if (br->node_id == KB_NODE_BOOTSTRAP && br->next_bootstrap < br->cl->cc->n_bootstrap) {
            bridge_connect_next(br);
            return;
        }
        /* The cause was the one error line above; the close itself is routine. */
        bridge_close(br, KB_LOG_INFO, "%s",
                     br->node_id == KB_NODE_BOOTSTRAP
                         ? "no bootstrap server could be reached; the client will retry"
                         : "broker unreachable; the client will retry");
        return;
    }
    br->server = bev;
    metrics_observe(&br->cl->metrics->connect_latency, metrics_now() - br->connect_started);
    metrics_broker(br->cl->metrics, br->node_id)->active++;
    metrics_broker(br->cl->metrics, br->node_id)->total++;
    brlog(br, KB_LOG_INFO, "connected to %s: %s", up, upstream_describe(bev, tls, sizeof(tls)));
    bufferevent_setcb(br->server, bridge_on_server_read, bridge_on_server_drained,
                      bridge_on_server_event, br);
    bufferevent_setwatermark(br->server, EV_WRITE, br->cl->conf->buffer_low_bytes, 0);
    bufferevent_enable(br->server, EV_READ | EV_WRITE);
    bufferevent_set_max_single_write(br->server, KB_MAX_SINGLE_WRITE);
    bufferevent_set_max_single_write(br->client, KB_MAX_SINGLE_WRITE);
    if (bufferevent_get_underlying(bev)) {
        struct bufferevent *under = bufferevent_get_underlying(bev);
        /* TLS records wait in the socket's output only up to buffer_high_bytes; beyond that
         * the plaintext stays in the filter's output, where bridge_throttle() sees it. */
        bufferevent_setwatermark(under, EV_WRITE, 0, br->cl->conf->buffer_high_bytes);
        bufferevent_set_max_single_write(under, KB_MAX_SINGLE_WRITE);
        sockio_tap_install(&br->tap, under, KB_READ_MORE);
    }
    if (br->cl->cc->idle_timeout_ms > 0) {
        struct timeval idle = metrics_timeval_ms(br->cl->cc->idle_timeout_ms);
        bufferevent_set_timeouts(br->client, &idle, NULL);
    }
    bufferevent_enable(br->client, EV_READ | EV_WRITE);
    bridge_pump_requests(br); /* requests that arrived while connecting */
}

static void
bridge_connect_next(struct bridge *br)
{
    struct kb_cluster *cl = br->cl;
    const struct kb_hostport *target;

    if (br->node_id == KB_NODE_BOOTSTRAP) {
        target = &cl->cc->bootstrap[br->next_bootstrap++];
    } else {
        target = brokermap_upstream(cl->map, br->node_id);
        if (!target) {
            bridge_close(br, KB_LOG_ERROR, "no address known for broker %d", (int)br->node_id);
            return;
        }
    }
    br->upstream = *target;
    br->connect_started = metrics_now();
    br->connecting = upstream_connect(cl->proxy->base, cl->proxy->dns, cl->cc, cl->ssl_ctx, target,
                                      bridge_on_upstream, br);
    if (!br->connecting) {
        bridge_close(br, KB_LOG_ERROR, "out of memory starting an upstream connection");
    }
}

void
bridge_new(struct kb_cluster *cl, evutil_socket_t fd, const struct sockaddr *peer,
           socklen_t peerlen, int32_t node_id)
{
    struct bridge *br;
    char host[64] = "?", serv[16] = "?";
    int one = 1;

    (void)peerlen;
    if (cl->metrics->clients_active >= cl->cc->max_connections) {
        evutil_closesocket(fd);
        cl->metrics->clients_rejected++;
        cllog(KB_LOG_WARN, cl->cc->name,
              "refused a client: max_connections (%d) reached; raise max_connections or find "
              "the client that leaks connections",
              cl->cc->max_connections);
        return;
    }
    br = calloc(1, sizeof(*br));
    if (!br) {
        evutil_closesocket(fd);
        cllog(KB_LOG_ERROR, cl->cc->name, "out of memory accepting a client");
        return;
    }
    br->cl = cluster_ref(cl);
    br->node_id = node_id;
    br->id = ++cl->proxy->registry->next_conn_id;
    inflight_init(&br->inflight);
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
        evutil_inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(serv, sizeof(serv), "%u", ntohs(sin->sin_port));
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
        evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(serv, sizeof(serv), "%u", ntohs(sin6->sin6_port));
    }
    if (node_id == KB_NODE_BOOTSTRAP) {
        snprintf(br->prefix, sizeof(br->prefix), "C#%llu %s:%s bootstrap",
                 (unsigned long long)br->id, host, serv);
    } else {
        snprintf(br->prefix, sizeof(br->prefix), "C#%llu %s:%s node %d", (unsigned long long)br->id,
                 host, serv, (int)node_id);
    }
    br->next = cl->proxy->bridges;
    if (br->next) {
        br->next->prev = br;
    }
    cl->proxy->bridges = br;
    cl->proxy->n_bridges++;
    cl->metrics->clients_active++;
    cl->metrics->clients_total++;
    if (cl->proxy->worker_id < KB_METRICS_WORKERS) {
        cl->proxy->registry->worker_clients[cl->proxy->worker_id]++;
        cl->proxy->registry->worker_active[cl->proxy->worker_id]++;
    }

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    br->client = bufferevent_socket_new(cl->proxy->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!br->client) {
        evutil_closesocket(fd);
        bridge_close(br, KB_LOG_ERROR, "out of memory accepting a client");
        return;
    }
    /* Client bytes wait in the kernel until the upstream is ready. */
    bufferevent_setcb(br->client, bridge_on_client_read, bridge_on_client_drained,
                      bridge_on_client_event, br);
    bufferevent_setwatermark(br->client, EV_WRITE, br->cl->conf->buffer_low_bytes, 0);
    bufferevent_disable(br->client, EV_READ);
    if (node_id == KB_NODE_BOOTSTRAP) {
        brlog(br, KB_LOG_DEBUG, "accepted on the bootstrap listener");
    } else {
        brlog(br, KB_LOG_DEBUG, "accepted for broker %d", (int)node_id);
    }
    bridge_connect_next(br);
}
