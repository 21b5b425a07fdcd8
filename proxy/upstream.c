/*
 * upstream.c - connect to one broker: resolve and dial with a plain bufferevent (so a refused
 * or timed-out TCP connect is told apart from a TLS failure), then hand the socket to an
 * OpenSSL bufferevent for the handshake. One timer bounds the whole attempt.
 */
#include "proxy/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "conf/conf.h"
#include "proxy/metrics.h"
#include "proxy/sasl.h"
#include "tls/tlsconn.h"
#include "tls/tlserr.h"
#include "tls/tlssess.h"

enum upstream_phase { UP_CONNECTING, UP_HANDSHAKE };

struct upstream {
    struct event_base *base;          /* loop the attempt runs on */
    const struct kb_cluster_conf *cc; /* cluster settings (owned by the caller's snapshot) */
    SSL_CTX *ctx;                     /* NULL when tls = off */
    struct kb_hostport name;          /* verified name */
    struct kb_hostport dial;          /* where we connect */
    enum upstream_phase phase;        /* what the timer interrupts */
    struct bufferevent *bev;          /* current bufferevent of the attempt */
    SSL *ssl;                         /* owned by bev once the handshake starts */
    struct event *timer;              /* connect_timeout_ms for the whole attempt */
    upstream_done_fn done;            /* completion callback */
    void *arg;                        /* its argument */
    struct sasl *sasl;                /* the SASL exchange after TLS (sasl_mechanism set) */
    upstream_auth_fn auth;            /* told the session's terms before done; may be NULL */
};

static void
upstream_free(struct upstream *u)
{
    sasl_cancel(u->sasl);
    if (u->bev) {
        bufferevent_free(u->bev);
    }
    if (u->timer) {
        event_free(u->timer);
    }
    free(u);
}

/* Reports the outcome and frees the attempt. On success the bufferevent moves to the callee. */
static void
upstream_finish(struct upstream *u, const char *why)
{
    struct bufferevent *bev = NULL;
    upstream_done_fn done = u->done;
    void *arg = u->arg;

    if (!why) {
        bev = u->bev;
        u->bev = NULL;
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        bufferevent_set_timeouts(bev, NULL, NULL);
    }
    upstream_free(u);
    done(arg, bev, why);
}

static const char *
sock_err_cause(int err, const struct upstream *u, char *out, size_t outlen)
{
    char dial[KB_HOST_MAX + 16];

    conf_hostport_str(&u->dial, dial, sizeof(dial));
    switch (err) {
    case ECONNREFUSED:
        snprintf(out, outlen,
                 "connection refused by %s: nothing listens there (wrong port? MSK TLS is 9094, "
                 "9194 with public access; "
                 "is public access on and the cluster ACTIVE?)",
                 dial);
        break;
    case ETIMEDOUT:
        snprintf(out, outlen,
                 "connect timed out to %s (a security group or firewall dropping packets?)", dial);
        break;
    case EHOSTUNREACH:
    case ENETUNREACH:
        snprintf(out, outlen, "host unreachable: %s: %s (no route from this host)", dial,
                 strerror(err));
        break;
    default:
        snprintf(out, outlen, "connect to %s failed: %s", dial,
                 err ? strerror(err) : "connection closed");
        break;
    }
    return out;
}

static void
upstream_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *u = arg;
    char why[512], dial[KB_HOST_MAX + 16];

    (void)fd;
    (void)what;
    conf_hostport_str(&u->dial, dial, sizeof(dial));
    if (u->phase == UP_CONNECTING) {
        snprintf(why, sizeof(why),
                 "connect timed out after %d ms to %s (a security group or firewall dropping "
                 "packets, or DNS too slow?)",
                 u->cc->connect_timeout_ms, dial);
    } else {
        snprintf(why, sizeof(why),
                 "not TLS? the TLS handshake with %s timed out after %d ms "
                 "(tls_handshake_timeout_ms): the peer accepted TCP but never completed the "
                 "handshake (plaintext port? MSK TLS is 9094, or 9194 with public access)",
                 dial, u->cc->tls_handshake_timeout_ms);
    }
    upstream_finish(u, why);
}

static void
upstream_on_sasl_done(void *arg, bool ok, int64_t session_lifetime_ms, int auth_version,
                      const char *why)
{
    struct upstream *u = arg;

    u->sasl = NULL; /* already freed */
    if (ok && u->auth) {
        u->auth(u->arg, session_lifetime_ms, auth_version);
    }
    upstream_finish(u, ok ? NULL : why);
}

/* Authenticates before the connection is reported ready; the exchange has its own timer. */
static void
upstream_start_sasl(struct upstream *u)
{
    char why[768];

    evtimer_del(u->timer);
    u->sasl = sasl_start(u->bev, u->cc, u->name.host, -1, u->cc->tls_handshake_timeout_ms,
                         KB_SASL_MAX_FRAME, upstream_on_sasl_done, u, why, sizeof(why));
    if (!u->sasl) {
        upstream_finish(u, why);
    }
}

static void
upstream_on_tls_event(struct bufferevent *bev, short what, void *arg)
{
    struct upstream *u = arg;
    unsigned long errs[8];
    size_t n = 0;
    unsigned long e;
    int sock_err = EVUTIL_SOCKET_ERROR();
    char why[1024], dial[KB_HOST_MAX + 16];

    if (what & BEV_EVENT_CONNECTED) {
        if (u->cc->sasl_mechanism != KB_SASL_NONE) {
            upstream_start_sasl(u);
            return;
        }
        upstream_finish(u, NULL);
        return;
    }
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        /* libevent also queues the bare SSL_ERROR_* code (e.g. 5, SSL_ERROR_SYSCALL), which
         * is not an OpenSSL error: keep only real ones (they carry a library number). */
        if (ERR_GET_LIB(e) != 0 && n < sizeof(errs) / sizeof(errs[0])) {
            errs[n++] = e;
        }
    }
    conf_hostport_str(&u->dial, dial, sizeof(dial));
    if (n == 0 && BIO_number_read(SSL_get_rbio(u->ssl)) == 0) {
        /* Not a single byte back: nothing that speaks TLS would do that to a ClientHello. */
        snprintf(why, sizeof(why),
                 "not TLS: %s closed the connection without answering the TLS ClientHello "
                 "(plaintext port? MSK TLS is 9094 or 9194 public, plaintext 9092)",
                 dial);
    } else {
        tlserr_describe(u->ssl, errs, n, (what & BEV_EVENT_EOF) ? 0 : sock_err, u->name.host, why,
                        sizeof(why));
    }
    upstream_finish(u, why);
}

static bool
upstream_start_tls(struct upstream *u, evutil_socket_t fd, char *why, size_t whylen)
{
    struct bufferevent *under;
    struct timeval tv;
    char err[512];

    u->ssl = tlsconn_new(u->ctx, u->cc, u->name.host, err, sizeof(err));
    if (!u->ssl) {
        snprintf(why, whylen, "TLS setup failed: %s", err);
        evutil_closesocket(fd);
        return false;
    }
    /* Resume the broker's last session when there is one (a failure just means a full
     * handshake). Keyed by the name verified, not the connect_to target. */
    tlssess_offer(u->ssl, conf_hostport_str(&u->name, err, sizeof(err)));
    /* TLS as a filter over a socket bufferevent: the records made in one loop turn leave in
     * one writev (sockio_flush), instead of one write() per record. */
    under = bufferevent_socket_new(u->base, fd, BEV_OPT_CLOSE_ON_FREE);
    u->bev = under ? bufferevent_openssl_filter_new(
                         u->base, under, u->ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE)
                   : NULL;
    if (!u->bev && under) {
        bufferevent_free(under); /* closes fd */
        fd = -1;
    }
    if (!u->bev) {
        SSL_free(u->ssl);
        if (fd >= 0) {
            evutil_closesocket(fd);
        }
        snprintf(why, whylen, "out of memory starting TLS");
        return false;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(u->bev, 1);
    u->phase = UP_HANDSHAKE;
    tv = metrics_timeval_ms(u->cc->tls_handshake_timeout_ms);
    evtimer_add(u->timer, &tv); /* re-armed: the handshake gets its own budget */
    bufferevent_setcb(u->bev, NULL, NULL, upstream_on_tls_event, u);
    bufferevent_enable(u->bev, EV_READ | EV_WRITE);
    return true;
}

static void
upstream_on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    struct upstream *u = arg;
    char why[768];
    evutil_socket_t fd;
    int one = 1;

    if (what & BEV_EVENT_CONNECTED) {
        fd = bufferevent_getfd(bev);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!u->ctx) {
            upstream_finish(u, NULL);
            return;
        }
        /* Detach the socket from the plain bufferevent and give it to OpenSSL. */
        bufferevent_setfd(bev, -1);
        bufferevent_free(bev);
        u->bev = NULL;
        if (!upstream_start_tls(u, fd, why, sizeof(why))) {
            upstream_finish(u, why);
        }
        return;
    }
    if (bufferevent_socket_get_dns_error(bev)) {
        snprintf(why, sizeof(why), "DNS failure: cannot resolve '%s': %s", u->dial.host,
                 evutil_gai_strerror(bufferevent_socket_get_dns_error(bev)));
    } else {
        sock_err_cause(EVUTIL_SOCKET_ERROR(), u, why, sizeof(why));
    }
    upstream_finish(u, why);
}

struct upstream *
upstream_connect(struct event_base *base, struct evdns_base *dns, const struct kb_cluster_conf *cc,
                 SSL_CTX *ctx, const struct kb_hostport *name, upstream_done_fn done, void *arg)
{
    struct upstream *u = calloc(1, sizeof(*u));
    struct timeval tv;

    if (!u) {
        return NULL;
    }
    u->base = base;
    u->cc = cc;
    u->ctx = cc->tls ? ctx : NULL;
    u->name = *name;
    u->dial = *conf_connect_target(cc, name);
    u->done = done;
    u->arg = arg;
    u->phase = UP_CONNECTING;
    u->timer = evtimer_new(base, upstream_on_timeout, u);
    u->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!u->timer || !u->bev) {
        goto fail;
    }
    tv = metrics_timeval_ms(cc->connect_timeout_ms);
    evtimer_add(u->timer, &tv);
    bufferevent_setcb(u->bev, NULL, NULL, upstream_on_tcp_event, u);
    /* Deferred callbacks: a failure found inside this call (a numeric host, a refused loopback
     * connect) is reported from the loop, after we have returned u. */
    if (bufferevent_socket_connect_hostname(u->bev, dns, AF_UNSPEC, u->dial.host, u->dial.port) <
        0) {
        goto fail;
    }
    return u;
fail:
    upstream_free(u);
    return NULL;
}

void
upstream_cancel(struct upstream *u)
{
    if (u) {
        upstream_free(u);
    }
}

void
upstream_set_auth_cb(struct upstream *u, upstream_auth_fn auth)
{
    u->auth = auth;
}

const char *
upstream_describe(struct bufferevent *bev, char *out, size_t outlen)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (!ssl) {
        snprintf(out, outlen, "plaintext (tls = off)");
        return out;
    }
    return tlserr_describe_session(ssl, out, outlen);
}
