/*
 * bridge.c - the life cycle of one client <-> broker pair: accept, connect upstream (bootstrap
 * servers in turn, or the broker a node port serves), flow control between the two sides, and
 * every ending: drain, a side closing, flushing what is queued before the close. The request
 * and response directions are bridge_req.c and bridge_resp.c. A side whose peer's output is
 * above buffer_high_bytes stops being read until it drains below buffer_low_bytes.
 */
#include "proxy/bridge.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "aws/provider.h"
#include "proxy/bridge_internal.h"
#include "proxy/brokermap.h"
#include "proxy/cluster.h"
#include "proxy/listener.h"
#include "proxy/proxy.h"
#include "proxy/sasl.h"
#include "proxy/settings.h"
#include "proxy/upstream.h"

#define KB_LINGER_SEC 10                 /* flushing one side before a close gives up after this */
#define KB_LINGER_POLL_MS 20             /* how often a flush to the broker is checked */
#define KB_MAX_SINGLE_WRITE (256 * 1024) /* per write callback, both sides */

static void bridge_connect_next(struct bridge *br);

void
bridge_log(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(lvl, br->cl->name, br->prefix, fmt, ap);
    va_end(ap);
}

struct bridge *
bridge_next(const struct bridge *br)
{
    return br->next;
}

bool
bridge_is_stale(const struct bridge *br)
{
    return cluster_is_stale_for(br->cl, br->set);
}

/* Plaintext request bytes queued for the broker and not yet handed to TLS or the socket. */
static size_t
bridge_pending_up(const struct bridge *br)
{
    size_t n = br->stage ? evbuffer_get_length(br->stage) : 0;

    if (br->server) {
        n += evbuffer_get_length(bufferevent_get_output(br->server));
    }
    return n;
}

/* Bytes still in kbridge's buffers on their way to the broker (plaintext or TLS records). */
static size_t
bridge_unsent_up(const struct bridge *br)
{
    return bridge_pending_up(br) + (br->server ? upstream_unsent(br->server) : 0);
}

void
bridge_free(struct bridge *br)
{
    struct kb_proxy *p = br->cl->proxy;

    upstream_cancel(br->connecting);
    bridge_auth_free(br);
    if (br->client) {
        bufferevent_free(br->client);
    }
    if (br->server) {
        metrics_broker(br->cl->metrics, br->node_id)->active--;
        upstream_bev_free(br->server);
    }
    if (br->linger) {
        event_free(br->linger);
    }
    if (br->stage) {
        evbuffer_free(br->stage);
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
    settings_unref(br->set);
    cluster_unref(br->cl);
    free(br);
}

void
bridge_close(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...)
{
    struct kb_proxy *p = br->cl->proxy;
    size_t up_left = bridge_pending_up(br);
    size_t down_left = br->client ? evbuffer_get_length(bufferevent_get_output(br->client)) : 0;
    char why[1024], left[96] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (up_left || down_left) {
        snprintf(left, sizeof(left), "; %zu bytes up and %zu down not delivered", up_left,
                 down_left);
    }
    /* Counted as delivered: what left kbridge's plaintext buffers. */
    bridge_log(br, lvl, "closed: %s (%llu bytes up, %llu down, %llu responses rewritten%s)", why,
               (unsigned long long)(br->bytes_up - up_left),
               (unsigned long long)(br->bytes_down - down_left),
               (unsigned long long)br->responses_rewritten, left);
    bridge_free(br);
    proxy_bridge_closed(p);
}

/* The upstream for log lines, escaped: a broker chose its advertised name. */
static const char *
bridge_upstream_str(const struct bridge *br, char *out, size_t outlen)
{
    char hp[KB_HOST_MAX + 16], esc[KB_LOG_ESCAPED_MAX(KB_HOST_MAX + 16)];

    conf_hostport_str(&br->upstream, hp, sizeof(hp));
    log_escape(hp, strlen(hp), esc, sizeof(esc));
    if (br->node_id == KB_NODE_BOOTSTRAP) {
        snprintf(out, outlen, "%s (bootstrap %zu/%zu)", esc, br->next_bootstrap,
                 br->set->cc->n_bootstrap);
    } else {
        snprintf(out, outlen, "%s (node %d)", esc, (int)br->node_id);
    }
    return out;
}

/*
 * Sends what was just queued for a socket bufferevent now, instead of on the next loop turn
 * (the client, or the broker with tls = off). The TLS pipe sends on its own, in this turn.
 */
static void
bridge_flush(struct bufferevent *bev)
{
    sockio_flush(bev);
}

/* --- flow control ------------------------------------------------------------------------ */

/*
 * Stops reading `from` while `to` has buffer_high_bytes or more queued; `to`'s write callback
 * (low watermark buffer_low_bytes) resumes it.
 */
static void
bridge_throttle(struct bridge *br, struct bufferevent *from, struct bufferevent *to)
{
    if (evbuffer_get_length(bufferevent_get_output(to)) >= br->set->conf->buffer_high_bytes) {
        bufferevent_disable(from, EV_READ);
    }
}

bool
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
        bridge_feed_tls(d->stage, bufferevent_get_output(d->to), *d->remaining > 0);
    }
    bridge_flush(d->to);
    bridge_throttle(br, d->from, d->to);
    return true;
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
    /* While draining, a request cut in half by backpressure is still completed. */
    if (!br->linger && br->client && !br->sasl && (!br->draining || br->req_remaining > 0) &&
        !(bufferevent_get_enabled(br->client) & EV_READ)) {
        bufferevent_enable(br->client, EV_READ);
        bridge_pump_requests(br);
    }
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

void
bridge_finish(struct bridge *br, const char *why)
{
    struct timeval tv = {KB_LINGER_SEC, 0};

    if (!br->client || evbuffer_get_length(bufferevent_get_output(br->client)) == 0) {
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

static void bridge_on_server_event(struct bufferevent *bev, short what, void *arg);

/* The client has gone: what the broker still answers has nobody to go to. */
static void
bridge_on_server_discard(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

/* Polls a flush to the broker after the client left: closes once all of it is on the wire. */
static void
bridge_on_upstream_linger(evutil_socket_t fd, short what, void *arg)
{
    struct bridge *br = arg;
    size_t left = bridge_unsent_up(br);

    (void)fd;
    (void)what;
    if (left == 0) {
        bridge_close(br, KB_LOG_INFO, "%s", br->finish_why);
    } else if (metrics_now() >= br->linger_deadline) {
        bridge_close(br, KB_LOG_WARN, "%s; gave up flushing %zu bytes to the broker after %d s",
                     br->finish_why, left, KB_LINGER_SEC);
    }
}

/*
 * The client went away. Requests it sent before (an acks=0 Produce expects no answer) are still
 * delivered: the broker side is flushed, bounded by KB_LINGER_SEC, then the pair closes.
 */
static void
bridge_client_ended(struct bridge *br, const char *why)
{
    struct timeval tv = metrics_timeval_ms(KB_LINGER_POLL_MS);

    if (!br->server || br->linger || bridge_unsent_up(br) == 0) {
        bridge_close(br, KB_LOG_INFO, "%s", why);
        return;
    }
    snprintf(br->finish_why, sizeof(br->finish_why), "%s", why);
    bufferevent_free(br->client);
    br->client = NULL;
    /* Answers are no longer wanted; keep reading them so the broker never blocks on us. */
    bufferevent_setcb(br->server, bridge_on_server_discard, NULL, bridge_on_server_event, br);
    bufferevent_enable(br->server, EV_READ | EV_WRITE);
    br->linger_deadline = metrics_now() + KB_LINGER_SEC;
    br->linger = event_new(br->cl->proxy->base, -1, EV_PERSIST, bridge_on_upstream_linger, br);
    if (!br->linger || event_add(br->linger, &tv) != 0) {
        bridge_close(br, KB_LOG_ERROR, "%s; out of memory flushing to the broker", why);
        return;
    }
    bridge_feed_tls(br->stage, bufferevent_get_output(br->server), false); /* nothing follows */
    bridge_flush(br->server);
}

/* The broker ended the connection: deliver what is queued for the client, then close. */
static void
bridge_server_ended(struct bridge *br, const char *why)
{
    size_t partial = evbuffer_get_length(bufferevent_get_input(br->server));
    char msg[320];

    if (!br->client) {
        bridge_close(br, KB_LOG_WARN, "%s; the broker closed the connection (%s)", br->finish_why,
                     why);
        return;
    }
    if (partial || br->resp_remaining || br->fetch_active) {
        bridge_log(br, KB_LOG_WARN, "broker ended mid-response (%s); %zu bytes of it dropped", why,
                   partial);
    }
    snprintf(msg, sizeof(msg), "broker closed the connection (%s)", why);
    metrics_broker(br->cl->metrics, br->node_id)->active--;
    upstream_bev_free(br->server);
    br->server = NULL;
    bridge_finish(br, msg);
}

void
bridge_drain(struct bridge *br)
{
    br->draining = true;
    if (!br->client) {
        return; /* already flushing its last requests to the broker */
    }
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
    char why[160];

    if (what & BEV_EVENT_TIMEOUT) {
        /* Silent, but waiting for a response (a long-poll Fetch) is not idle. */
        if (br->inflight.count > 0 || br->req_remaining > 0 || br->resp_remaining > 0) {
            bufferevent_enable(bev, EV_READ);
            return;
        }
        bridge_close(br, KB_LOG_INFO, "idle for %d ms with nothing in flight (idle_timeout_ms)",
                     br->set->cc->idle_timeout_ms);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        bridge_client_ended(br, "client closed the connection");
        return;
    }
    snprintf(why, sizeof(why), "client connection error: %s", strerror(EVUTIL_SOCKET_ERROR()));
    bridge_client_ended(br, why);
}

static void
bridge_on_server_event(struct bufferevent *bev, short what, void *arg)
{
    struct bridge *br = arg;
    char why[256];

    (void)bev; /* a TLS-level failure already dropped its session (tlspipe.c) */
    if (what & BEV_EVENT_EOF) {
        snprintf(why, sizeof(why), "end of stream");
    } else if (EVUTIL_SOCKET_ERROR() != 0) {
        snprintf(why, sizeof(why), "error: %s", strerror(EVUTIL_SOCKET_ERROR()));
    } else {
        /* An OpenSSL-level end: a TLS peer that went away without close_notify. */
        snprintf(why, sizeof(why), "TLS connection ended without close_notify");
    }
    if (!br->client || bridge_pump_responses(br)) { /* anything complete still goes out */
        bridge_server_ended(br, why);
    }
}

/* --- connecting ---------------------------------------------------------------------------- */

void
bridge_server_resume(struct bridge *br)
{
    bufferevent_setcb(br->server, bridge_on_server_read, bridge_on_server_drained,
                      bridge_on_server_event, br);
    bufferevent_enable(br->server, EV_READ | EV_WRITE);
}

/*
 * Who kbridge authenticated as, for the log: sasl_username, or with IAM the assumed-role ARN
 * (else the access key's hint: never the whole id). The buffer is thread-local (one per event
 * loop) and read at once.
 */
static const char *
bridge_sasl_who(const struct bridge *br)
{
    static _Thread_local char who[AWS_ARN_MAX];
    struct aws_provider_stats st;

    if (!KB_SASL_IS_IAM(br->set->cc->sasl_mechanism) || !br->set->cc->aws_provider) {
        return br->set->cc->sasl_username ? br->set->cc->sasl_username : "";
    }
    aws_provider_stats(br->set->cc->aws_provider, &st);
    snprintf(who, sizeof(who), "%s", st.principal_arn[0] ? st.principal_arn : st.key_hint);
    return who;
}

static void
bridge_on_upstream(void *arg, struct bufferevent *bev, enum kb_fail_reason reason, const char *why)
{
    struct bridge *br = arg;
    const struct kb_conf *conf = br->set->conf;
    char up[KB_LOG_ESCAPED_MAX(KB_HOST_MAX + 16) + 48], tls[512], sasl[KB_HOST_MAX + 128] = "";

    br->connecting = NULL;
    bridge_upstream_str(br, up, sizeof(up));
    if (!bev) {
        struct kb_metrics *m = br->cl->metrics;
        m->failures[reason]++;
        metrics_set_error(m, "%s: %s", up, why);
        bridge_log(br, KB_LOG_ERROR, "upstream %s: %s", up, why);
        if (reason == KB_FAIL_AUTH) {
            cluster_auth_result(br->cl, false);
            bridge_close(br, KB_LOG_INFO, "authentication refused; the client will retry");
            return;
        }
        if (br->node_id == KB_NODE_BOOTSTRAP && br->next_bootstrap < br->set->cc->n_bootstrap) {
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
    if (br->set->cc->sasl_mechanism != KB_SASL_NONE) {
        cluster_auth_result(br->cl, true);
    }
    metrics_observe(&br->cl->metrics->connect_latency, metrics_now() - br->connect_started);
    metrics_broker(br->cl->metrics, br->node_id)->active++;
    metrics_broker(br->cl->metrics, br->node_id)->total++;
    if (br->set->cc->sasl_mechanism != KB_SASL_NONE) {
        snprintf(sasl, sizeof(sasl), "; authenticated %s as '%.200s'%s",
                 conf_sasl_mechanism_str(br->set->cc->sasl_mechanism), bridge_sasl_who(br),
                 br->session_ms > 0 ? ", re-authenticating before the session ends" : "");
    }
    bridge_log(br, KB_LOG_INFO, "connected to %s: %s%s", up,
               upstream_describe(bev, tls, sizeof(tls)), sasl);
    bridge_server_resume(br);
    bufferevent_setwatermark(br->server, EV_WRITE, conf->buffer_low_bytes, 0);
    bufferevent_set_max_single_write(br->server, KB_MAX_SINGLE_WRITE);
    bufferevent_set_max_single_write(br->client, KB_MAX_SINGLE_WRITE);
    if (br->set->cc->idle_timeout_ms > 0) {
        struct timeval idle = metrics_timeval_ms(br->set->cc->idle_timeout_ms);
        bufferevent_set_timeouts(br->client, &idle, NULL);
    }
    bridge_auth_schedule(br);
    bufferevent_enable(br->client, EV_READ | EV_WRITE);
    bridge_pump_requests(br); /* requests that arrived while connecting */
}

static void
bridge_connect_next(struct bridge *br)
{
    const struct kb_cluster_conf *cc = br->set->cc;
    const struct kb_hostport *target;
    double wait = cluster_auth_wait(br->cl);
    char why[768];

    if (wait > 0) {
        bridge_close(br, KB_LOG_INFO,
                     "not connecting: the brokers refused kbridge's credentials; next attempt in "
                     "%.1f s (back-off; see the error above, fix the credentials and reload)",
                     wait);
        return;
    }
    if (!sasl_ready(cc, why, sizeof(why))) {
        br->cl->metrics->failures[KB_FAIL_AUTH]++;
        metrics_set_error(br->cl->metrics, "%s", why);
        bridge_close(br, KB_LOG_ERROR, "not connecting: %s", why);
        return;
    }
    if (br->node_id == KB_NODE_BOOTSTRAP) {
        target = &cc->bootstrap[br->next_bootstrap++];
    } else {
        target = bridge_is_stale(br) ? NULL : brokermap_upstream(br->cl->map, br->node_id);
        if (!target) {
            bridge_close(br, KB_LOG_ERROR, "no address known for broker %d", (int)br->node_id);
            return;
        }
    }
    br->upstream = *target;
    br->connect_started = metrics_now();
    br->connecting = upstream_connect(br->cl->proxy->base, br->cl->proxy->dns, cc, br->set->ssl_ctx,
                                      target, bridge_on_upstream, br);
    if (!br->connecting) {
        bridge_close(br, KB_LOG_ERROR, "out of memory starting an upstream connection");
        return;
    }
    upstream_set_auth_cb(br->connecting, bridge_auth_on_session);
}

/* "C#12 127.0.0.1:50412 bootstrap" or "C#12 127.0.0.1:50412 node 2" into br->prefix. */
static void
bridge_set_prefix(struct bridge *br, const struct sockaddr *peer)
{
    char host[64] = "?", serv[16] = "?";

    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
        evutil_inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(serv, sizeof(serv), "%u", ntohs(sin->sin_port));
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
        evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(serv, sizeof(serv), "%u", ntohs(sin6->sin6_port));
    }
    if (br->node_id == KB_NODE_BOOTSTRAP) {
        snprintf(br->prefix, sizeof(br->prefix), "C#%llu %s:%s bootstrap",
                 (unsigned long long)br->id, host, serv);
    } else {
        snprintf(br->prefix, sizeof(br->prefix), "C#%llu %s:%s node %d", (unsigned long long)br->id,
                 host, serv, (int)br->node_id);
    }
}

void
bridge_new(struct kb_cluster *cl, evutil_socket_t fd, const struct sockaddr *peer,
           socklen_t peerlen, int32_t node_id)
{
    const struct kb_cluster_conf *cc = cl->cur->cc;
    struct kb_proxy *p = cl->proxy;
    struct bridge *br;
    int one = 1;

    (void)peerlen;
    if (cl->metrics->clients_active >= cc->max_connections) {
        evutil_closesocket(fd);
        cl->metrics->clients_rejected++;
        cllog(KB_LOG_WARN, cl->name,
              "refused a client: max_connections (%d) reached; raise max_connections or find "
              "the client that leaks connections",
              cc->max_connections);
        return;
    }
    br = calloc(1, sizeof(*br));
    if (!br) {
        evutil_closesocket(fd);
        cllog(KB_LOG_ERROR, cl->name, "out of memory accepting a client");
        return;
    }
    br->cl = cluster_ref(cl);
    br->set = settings_ref(cl->cur);
    br->node_id = node_id;
    br->id = ++p->registry->next_conn_id;
    inflight_init(&br->inflight);
    bridge_set_prefix(br, peer);
    br->next = p->bridges;
    if (br->next) {
        br->next->prev = br;
    }
    p->bridges = br;
    p->n_bridges++;
    cl->metrics->clients_active++;
    cl->metrics->clients_total++;
    if (p->worker_id < KB_METRICS_WORKERS) {
        p->registry->worker_clients[p->worker_id]++;
        p->registry->worker_active[p->worker_id]++;
    }

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    br->client = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    br->stage = evbuffer_new();
    if (!br->client || !br->stage) {
        if (!br->client) {
            evutil_closesocket(fd);
        }
        bridge_close(br, KB_LOG_ERROR, "out of memory accepting a client");
        return;
    }
    /* Client bytes wait in the kernel until the upstream is ready. */
    bufferevent_setcb(br->client, bridge_on_client_read, bridge_on_client_drained,
                      bridge_on_client_event, br);
    bufferevent_setwatermark(br->client, EV_WRITE, br->set->conf->buffer_low_bytes, 0);
    bufferevent_disable(br->client, EV_READ);
    if (node_id == KB_NODE_BOOTSTRAP) {
        bridge_log(br, KB_LOG_DEBUG, "accepted on the bootstrap listener");
    } else {
        bridge_log(br, KB_LOG_DEBUG, "accepted for broker %d", (int)node_id);
    }
    bridge_connect_next(br);
}
