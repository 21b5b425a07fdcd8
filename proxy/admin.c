/*
 * admin.c - /healthz, /readyz and /metrics over HTTP/1.x (see admin.h). Read-only: nothing here
 * changes the proxy, and nothing secret (keys, SASL payloads) is ever rendered.
 *
 * The endpoint runs on the leader's loop, which also carries client traffic, and may be
 * reachable from the network (container probes), so everything a peer can make it do is
 * bounded: a request (line and headers) of at most 8 KiB, searched once per read; no body (GET
 * and HEAD only; a request announcing one is refused); 5 s from accept to the answer, however
 * slowly the request trickles in; 32 connections at once, more are answered 503 and closed.
 * One request per connection, answered with Connection: close.
 *
 * This is not evhttp: libevent 2.1's evhttp leaves a connection open, still reading, after its
 * header or body limit is crossed (evhttp_connection_incoming_fail answers nothing for
 * EVREQ_HTTP_DATA_TOO_LONG), its timeout is per read (a trickle never ends), and it has no
 * cap on connections nor a hook to count them.
 */
#include "proxy/admin.h"

#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "aws/provider.h"
#include "conf/conf.h"
#include "proxy/cluster.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/probe.h"
#include "proxy/proxy.h"
#include "proxy/settings.h"

#define KB_ADMIN_MAX_CONNS 32          /* admin connections at once */
#define KB_ADMIN_MAX_REQUEST (8 << 10) /* request line + headers, bytes */
#define KB_ADMIN_REQUEST_S 5           /* accept to answer sent, seconds */

struct admin_conn;

struct admin {
    struct kb_proxy *proxy;     /* what is reported on */
    struct evconnlistener *lev; /* the listening socket */
    struct admin_conn *conns;   /* open connections, newest first */
    int n_conns;                /* entries in conns */
};

/* One client connection: read one request, answer it, close. */
struct admin_conn {
    struct admin *a;         /* owner */
    struct bufferevent *bev; /* the socket */
    struct event *deadline;  /* KB_ADMIN_REQUEST_S after accept: close, answered or not */
    bool answered;           /* the answer is queued: close once it is written */
    struct admin_conn *next; /* in a->conns */
};

static void
admin_conn_free(struct admin_conn *c)
{
    struct admin_conn **pp;

    for (pp = &c->a->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            c->a->n_conns--;
            break;
        }
    }
    if (c->deadline) {
        event_free(c->deadline);
    }
    if (c->bev) {
        bufferevent_free(c->bev); /* closes the socket */
    }
    free(c);
}

static void
admin_conn_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    admin_conn_free(arg); /* a request too slow, or an answer the peer does not read */
}

/* The answer has left (or the peer is gone): done. */
static void
admin_conn_on_written(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;

    (void)bev;
    if (c->answered) {
        admin_conn_free(c);
    }
}

static void
admin_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    admin_conn_free(arg); /* EOF or error, before or while answering */
}

/* Queues the whole answer (head, then body unless HEAD) and closes once it is written. */
static void
admin_conn_answer(struct admin_conn *c, int code, const char *reason, const char *type,
                  struct evbuffer *body, bool head_only)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = body ? evbuffer_get_length(body) : 0;

    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n",
                        code, reason, type, len);
    if (body && !head_only) {
        evbuffer_add_buffer(out, body);
    }
    c->answered = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, admin_conn_on_written, admin_conn_on_event, c);
    bufferevent_enable(c->bev, EV_WRITE);
}

static void
admin_conn_error(struct admin_conn *c, int code, const char *reason)
{
    struct evbuffer *body = evbuffer_new();

    if (body) {
        evbuffer_add_printf(body, "%d %s\n", code, reason);
    }
    admin_conn_answer(c, code, reason, "text/plain", body, false);
    if (body) {
        evbuffer_free(body);
    }
}

/* Appends s as a JSON string (quotes included). */
static void
admin_json_str(struct evbuffer *out, const char *s)
{
    evbuffer_add(out, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            evbuffer_add_printf(out, "\\%c", c);
        } else if (c < 0x20) {
            evbuffer_add_printf(out, "\\u%04x", c);
        } else {
            evbuffer_add(out, s, 1);
        }
    }
    evbuffer_add(out, "\"", 1);
}

/* The cluster's AWS credentials provider (IAM mechanisms), else NULL. */
static struct aws_provider *
admin_aws(const struct kb_cluster *cl)
{
    return cl->cur ? cl->cur->cc->aws_provider : NULL;
}

/*
 * The credentials providers' metrics: they live with the clusters' snapshots, not in the
 * registry. Read under each provider's lock (aws_provider_stats), never a network call.
 */
static void
admin_render_aws(struct kb_proxy *p, struct evbuffer *out)
{
    struct aws_provider_stats st;
    bool any = false;
    size_t i;

    for (i = 0; i < p->n_clusters; i++) {
        any = any || admin_aws(p->clusters[i]);
    }
    if (!any) {
        return;
    }
    evbuffer_add_printf(out, "# HELP kbridge_aws_credentials_expiry_seconds Seconds until the "
                             "cluster's AWS credentials expire (+Inf: static keys; 0: none "
                             "valid).\n# TYPE kbridge_aws_credentials_expiry_seconds gauge\n");
    for (i = 0; i < p->n_clusters; i++) {
        struct aws_provider *ap = admin_aws(p->clusters[i]);

        if (!ap) {
            continue;
        }
        aws_provider_stats(ap, &st);
        if (st.valid && st.seconds_left == LLONG_MAX) {
            evbuffer_add_printf(out,
                                "kbridge_aws_credentials_expiry_seconds{cluster=\"%s\"} +Inf\n",
                                p->clusters[i]->name);
        } else {
            evbuffer_add_printf(
                out, "kbridge_aws_credentials_expiry_seconds{cluster=\"%s\"} %lld\n",
                p->clusters[i]->name, st.valid && st.seconds_left > 0 ? st.seconds_left : 0LL);
        }
    }
    evbuffer_add_printf(out, "# HELP kbridge_aws_credentials_refreshes_total AWS credential "
                             "fetches by result (the first one included).\n# TYPE "
                             "kbridge_aws_credentials_refreshes_total counter\n");
    for (i = 0; i < p->n_clusters; i++) {
        struct aws_provider *ap = admin_aws(p->clusters[i]);

        if (!ap) {
            continue;
        }
        aws_provider_stats(ap, &st);
        evbuffer_add_printf(
            out,
            "kbridge_aws_credentials_refreshes_total{cluster=\"%s\",result=\"ok\"} "
            "%llu\n"
            "kbridge_aws_credentials_refreshes_total{cluster=\"%s\",result=\"failed\"} "
            "%llu\n",
            p->clusters[i]->name, (unsigned long long)st.refresh_ok, p->clusters[i]->name,
            (unsigned long long)st.refresh_failed);
    }
}

static int
admin_readyz(struct admin *a, struct evbuffer *body)
{
    struct kb_proxy *p = a->proxy;
    double now = metrics_now();
    bool ready = !p->draining;
    size_t i;

    evbuffer_add_printf(body, "{\"clusters\":[");
    for (i = 0; i < p->n_clusters; i++) {
        const struct kb_cluster *cl = p->clusters[i];
        struct kb_metrics *m = cl->metrics;
        double last_ready = m->last_ready;
        bool listening = cl->bootstrap != NULL;
        bool ok = listening && last_ready > 0 && now - last_ready <= 3 * KB_PROBE_INTERVAL;
        char last_error[sizeof(m->last_error)];
        struct aws_provider *ap = admin_aws(cl);
        char aws_reason[512] = "";

        if (ap) {
            /* no valid credentials: no new connection can authenticate, whatever the probe saw */
            aws_provider_reason(ap, aws_reason, sizeof(aws_reason));
            ok = ok && !*aws_reason;
        }
        ready = ready && ok;
        evbuffer_add_printf(body, "%s{\"name\":", i ? "," : "");
        admin_json_str(body, m->cluster);
        evbuffer_add_printf(body, ",\"ready\":%s", ok ? "true" : "false");
        if (last_ready > 0) {
            evbuffer_add_printf(body, ",\"last_ok_seconds_ago\":%.1f", now - last_ready);
        }
        if (!listening) {
            evbuffer_add_printf(body, ",\"reason\":");
            admin_json_str(body, cl->listen_error[0] ? cl->listen_error
                                                     : "the bootstrap listener is not open");
        } else if (*aws_reason) {
            char why[600];

            snprintf(why, sizeof(why), "no valid AWS credentials: %s", aws_reason);
            evbuffer_add_printf(body, ",\"reason\":");
            admin_json_str(body, why);
        } else if (!ok) {
            metrics_get_error(m, last_error, sizeof(last_error));
            evbuffer_add_printf(body, ",\"reason\":");
            admin_json_str(body, last_error[0]    ? last_error
                                 : last_ready > 0 ? "no successful probe recently"
                                                  : "no verified Metadata exchange yet");
        }
        evbuffer_add_printf(body, "}");
    }
    evbuffer_add_printf(body, "],\"ready\":%s%s}\n", ready ? "true" : "false",
                        p->draining ? ",\"reason\":\"draining\"" : "");
    return ready ? 200 : 503;
}

/* "Content-Length: N" with N > 0, or "Transfer-Encoding:", among the headers in hdrs. */
static bool
admin_has_body(const char *hdrs)
{
    const char *line;

    for (line = strchr(hdrs, '\n'); line; line = strchr(line, '\n')) {
        line += 1;
        if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            return true;
        }
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            const char *v = line + 15;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            while (*v == '0') {
                v++;
            }
            if (isdigit((unsigned char)*v)) {
                return true;
            }
        }
    }
    return false;
}

/* Answers the complete request in req (NUL-terminated, its empty line included). */
static void
admin_conn_dispatch(struct admin_conn *c, char *req)
{
    struct admin *a = c->a;
    char *method = req, *target, *version, *q;
    struct evbuffer *body;
    bool head_only;
    int code = 200;

    target = strchr(method, ' ');
    version = target ? strchr(target + 1, ' ') : NULL;
    if (!target || !version || strncmp(version + 1, "HTTP/1.", 7) != 0) {
        admin_conn_error(c, 400, "Bad Request");
        return;
    }
    *target++ = '\0';
    *version = '\0';
    head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        admin_conn_error(c, 405, "Method Not Allowed");
        return;
    }
    if (admin_has_body(version + 1)) {
        admin_conn_error(c, 413, "Content Too Large"); /* GET and HEAD carry none */
        return;
    }
    q = strchr(target, '?');
    if (q) {
        *q = '\0';
    }
    body = evbuffer_new();
    if (!body) {
        admin_conn_error(c, 500, "Internal Server Error");
        return;
    }
    if (strcmp(target, "/healthz") == 0) {
        evbuffer_add_printf(body, "ok\n");
        admin_conn_answer(c, 200, "OK", "text/plain", body, head_only);
    } else if (strcmp(target, "/readyz") == 0) {
        code = admin_readyz(a, body);
        admin_conn_answer(c, code, code == 200 ? "OK" : "Service Unavailable", "application/json",
                          body, head_only);
    } else if (strcmp(target, "/metrics") == 0) {
        metrics_render(a->proxy->registry, body);
        admin_render_aws(a->proxy, body);
        admin_conn_answer(c, 200, "OK", "text/plain; version=0.0.4", body, head_only);
    } else {
        evbuffer_add_printf(body, "not found: try /healthz, /readyz or /metrics\n");
        admin_conn_answer(c, 404, "Not Found", "text/plain", body, head_only);
    }
    evbuffer_free(body);
}

static void
admin_conn_on_read(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    ev_ssize_t crlf = evbuffer_search(in, "\r\n\r\n", 4, NULL).pos;
    ev_ssize_t lf = evbuffer_search(in, "\n\n", 2, NULL).pos; /* LF-only clients */
    char req[KB_ADMIN_MAX_REQUEST + 1];
    size_t len;

    if (crlf < 0 && lf < 0) {
        /* Not complete yet: at most 8 KiB are ever held (and searched). */
        if (evbuffer_get_length(in) >= KB_ADMIN_MAX_REQUEST) {
            admin_conn_error(c, 431, "Request Header Fields Too Large");
        }
        return;
    }
    len = lf >= 0 && (crlf < 0 || lf < crlf) ? (size_t)lf + 2 : (size_t)crlf + 4;
    if (len > KB_ADMIN_MAX_REQUEST) {
        admin_conn_error(c, 431, "Request Header Fields Too Large");
        return;
    }
    evbuffer_remove(in, req, len);
    req[len] = '\0';
    admin_conn_dispatch(c, req);
}

static void
admin_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                void *arg)
{
    struct admin *a = arg;
    struct event_base *base = evconnlistener_get_base(lev);
    struct admin_conn *c = calloc(1, sizeof(*c));
    struct timeval tv = {KB_ADMIN_REQUEST_S, 0};

    (void)sa;
    (void)salen;
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->a = a;
    c->next = a->conns;
    a->conns = c;
    a->n_conns++;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->deadline = evtimer_new(base, admin_conn_on_deadline, c);
    if (!c->bev || !c->deadline) {
        if (!c->bev) {
            evutil_closesocket(fd);
        }
        admin_conn_free(c);
        return;
    }
    evtimer_add(c->deadline, &tv);
    /* Reading stops at the limit: the kernel, not kbridge, holds what a flood sends beyond. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, KB_ADMIN_MAX_REQUEST);
    bufferevent_setcb(c->bev, admin_conn_on_read, NULL, admin_conn_on_event, c);
    if (a->n_conns > KB_ADMIN_MAX_CONNS) {
        admin_conn_error(c, 503, "Service Unavailable"); /* too many at once */
        return;
    }
    bufferevent_enable(c->bev, EV_READ);
}

/* True when every address host resolves to is a loopback one (127.0.0.0/8, ::1). */
static bool
admin_is_loopback(const char *host)
{
    struct evutil_addrinfo hints, *res = NULL, *ai;
    bool loopback;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    if (evutil_getaddrinfo(host && *host ? host : NULL, "1", &hints, &res) != 0 || !res) {
        return false;
    }
    loopback = true;
    for (ai = res; ai && loopback; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)ai->ai_addr;
            loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ai->ai_addr;
            loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        } else {
            loopback = false;
        }
    }
    evutil_freeaddrinfo(res);
    return loopback;
}

struct admin *
admin_new(struct kb_proxy *p, char *err, size_t errlen)
{
    const struct kb_hostport *hp = &p->conf->admin_listen;
    struct admin *a = calloc(1, sizeof(*a));
    struct evutil_addrinfo hints, *res = NULL;
    char addr[KB_HOST_MAX + 16], port[8];
    int rc;

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->proxy = p;
    conf_hostport_str(hp, addr, sizeof(addr));
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", hp->port);
    rc = evutil_getaddrinfo(*hp->host ? hp->host : NULL, port, &hints, &res);
    if (rc == 0 && res) {
        a->lev = evconnlistener_new_bind(p->base, admin_on_accept, a,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                             LEV_OPT_CLOSE_ON_EXEC,
                                         -1, res->ai_addr, (int)res->ai_addrlen);
    }
    if (res) {
        evutil_freeaddrinfo(res);
    }
    if (!a->lev) {
        snprintf(err, errlen, "admin_listen: cannot listen on %s", addr);
        admin_free(a);
        return NULL;
    }
    log_info("admin endpoint on http://%s (/healthz /readyz /metrics)", addr);
    if (!admin_is_loopback(hp->host)) {
        log_warn("SECURITY: admin_listen = %s is not a loopback address: /healthz, /readyz "
                 "and /metrics (cluster names, traffic counts, last errors) are reachable from "
                 "the network; bind 127.0.0.1 unless something off-host (a container probe) "
                 "must reach it, and firewall it then",
                 addr);
    }
    return a;
}

void
admin_free(struct admin *a)
{
    if (!a) {
        return;
    }
    while (a->conns) {
        admin_conn_free(a->conns);
    }
    if (a->lev) {
        evconnlistener_free(a->lev);
    }
    free(a);
}
