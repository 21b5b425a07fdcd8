/*
 * upstream.c - connect to one broker: resolve the name (evdns, never blocking the loop), dial
 * each address it has in turn with a plain bufferevent (so a refused or timed-out TCP connect
 * is told apart from a TLS failure), then hand the first socket that connects to a TLS pipe
 * (proxy/tlspipe.h) for the handshake.
 *
 * Time: connect_timeout_ms is one shared deadline for DNS and every address (it is documented
 * as bounding the whole connect, and a per-address timeout would multiply it). Each address
 * gets an equal share of what is left when its turn comes, so one address that drops packets
 * cannot use up the time of those after it. The handshake gets tls_handshake_timeout_ms of its
 * own. A TLS failure ends the attempt: another address of the same broker would present the
 * same certificate.
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
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "conf/conf.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/sasl.h"
#include "proxy/tlspipe.h"
#include "tls/tlsconn.h"
#include "tls/tlserr.h"
#include "tls/tlssess.h"

enum upstream_phase { UP_RESOLVING, UP_CONNECTING, UP_HANDSHAKE };

struct upstream {
    struct event_base *base;                /* loop the attempt runs on */
    struct evdns_base *dns;                 /* resolver */
    const struct kb_cluster_conf *cc;       /* cluster settings (owned by the caller's snapshot) */
    SSL_CTX *ctx;                           /* NULL when tls = off */
    struct kb_hostport name;                /* verified name */
    struct kb_hostport dial;                /* where we connect */
    enum upstream_phase phase;              /* what the timer interrupts */
    struct evdns_getaddrinfo_request *dreq; /* the lookup while UP_RESOLVING, else NULL */
    struct evutil_addrinfo *addrs;          /* what dial.host resolved to (owned) */
    struct evutil_addrinfo *next;           /* the next address to try, NULL: none left */
    size_t n_addrs;                         /* entries in addrs */
    int dns_err;                            /* the lookup's result, for the kick to report */
    char at[INET6_ADDRSTRLEN + 16];         /* the address being dialled, "[::1]:9094" */
    char tried[768];                        /* addresses that failed and why, for the error */
    double deadline;                        /* metrics_now() when connect_timeout_ms runs out */
    struct bufferevent *bev;                /* current bufferevent of the attempt */
    struct tlspipe *pipe;                   /* the TLS handshake under way, else NULL */
    SSL *ssl;                               /* owned by pipe once the handshake starts */
    struct event *timer;                    /* the current address's share of the deadline,
                                               then the handshake's timeout */
    struct event *kick;                     /* runs the first step from the loop */
    upstream_done_fn done;                  /* completion callback */
    void *arg;                              /* its argument */
    struct sasl *sasl;                      /* the SASL exchange after TLS (sasl_mechanism set) */
    upstream_auth_fn auth;                  /* told the session's terms before done; may be NULL */
};

static void
upstream_free(struct upstream *u)
{
    sasl_cancel(u->sasl);
    if (u->dreq) {
        struct evdns_getaddrinfo_request *r = u->dreq;
        u->dreq = NULL;
        evdns_getaddrinfo_cancel(r); /* calls back with EVUTIL_EAI_CANCEL, ignored */
    }
    tlspipe_abort(u->pipe);
    tlspipe_bev_free(u->bev);
    if (u->timer) {
        event_free(u->timer);
    }
    if (u->kick) {
        event_free(u->kick);
    }
    if (u->addrs) {
        evutil_freeaddrinfo(u->addrs);
    }
    free(u);
}

/* Reports the outcome and frees the attempt. On success the bufferevent moves to the callee. */
static void
upstream_finish(struct upstream *u, enum kb_fail_reason reason, const char *why)
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
    done(arg, bev, reason, why);
}

static void upstream_try_next(struct upstream *u);

/* "host:port" escaped for a log line: a broker chose the name. */
static const char *
upstream_dial_str(const struct upstream *u, char *out, size_t outlen)
{
    char raw[KB_HOST_MAX + 16];

    conf_hostport_str(&u->dial, raw, sizeof(raw));
    return log_escape(raw, strlen(raw), out, outlen);
}

/* Notes that the address being dialled failed, and why, for the final error. */
static void
upstream_note_failure(struct upstream *u, const char *cause)
{
    size_t n = strlen(u->tried);

    if (n < sizeof(u->tried) - 1) {
        snprintf(u->tried + n, sizeof(u->tried) - n, "%s%s (%s)", n ? ", " : "", u->at, cause);
    }
}

/* Ends the attempt with sentence why, naming every address tried when there were several. */
static void upstream_finish(struct upstream *u, enum kb_fail_reason reason, const char *why);
static void
upstream_fail_all(struct upstream *u, enum kb_fail_reason reason, const char *why)
{
    char all[2048];

    if (u->n_addrs > 1) {
        snprintf(all, sizeof(all), "%s; every address of %s failed: %s", why, u->dial.host,
                 u->tried);
        upstream_finish(u, reason, all);
        return;
    }
    upstream_finish(u, reason, why);
}

/* The sentence for a failed TCP connect (errno err) into out; returns its class. */
static enum kb_fail_reason
sock_err_cause(int err, const struct upstream *u, char *out, size_t outlen)
{
    enum kb_fail_reason reason = KB_FAIL_CONNECT;

    char dial[KB_HOST_MAX + 16];

    upstream_dial_str(u, dial, sizeof(dial));
    switch (err) {
    case ECONNREFUSED:
        snprintf(out, outlen,
                 "connection refused by %s: nothing listens there (wrong port? MSK TLS is 9094, "
                 "9194 with public access; "
                 "is public access on and the cluster ACTIVE?)",
                 dial);
        reason = KB_FAIL_REFUSED;
        break;
    case ETIMEDOUT:
        snprintf(out, outlen,
                 "connect timed out to %s (a security group or firewall dropping packets?)", dial);
        reason = KB_FAIL_TIMEOUT;
        break;
    case EHOSTUNREACH:
    case ENETUNREACH:
        snprintf(out, outlen, "host unreachable: %s: %s (no route from this host)", dial,
                 strerror(err));
        reason = KB_FAIL_UNREACHABLE;
        break;
    default:
        snprintf(out, outlen, "connect to %s failed: %s", dial,
                 err ? strerror(err) : "connection closed");
        break;
    }
    return reason;
}

static void
upstream_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *u = arg;
    char why[512], dial[KB_HOST_MAX + 16];

    (void)fd;
    (void)what;
    upstream_dial_str(u, dial, sizeof(dial));
    if (u->phase == UP_CONNECTING && u->next && metrics_now() < u->deadline) {
        /* This address had its share: the next one gets its own. */
        upstream_note_failure(u, "connect timed out");
        bufferevent_free(u->bev);
        u->bev = NULL;
        upstream_try_next(u);
        return;
    }
    if (u->phase != UP_HANDSHAKE) {
        if (u->phase == UP_CONNECTING) {
            upstream_note_failure(u, "connect timed out");
        }
        snprintf(why, sizeof(why),
                 "connect timed out after %d ms to %s (a security group or firewall dropping "
                 "packets, or DNS too slow?)",
                 u->cc->connect_timeout_ms, dial);
        upstream_fail_all(u, KB_FAIL_TIMEOUT, why);
        return;
    } else {
        snprintf(why, sizeof(why),
                 "not TLS? the TLS handshake with %s timed out after %d ms "
                 "(tls_handshake_timeout_ms): the peer accepted TCP but never completed the "
                 "handshake (plaintext port? MSK TLS is 9094, or 9194 with public access)",
                 dial, u->cc->tls_handshake_timeout_ms);
    }
    upstream_finish(u, KB_FAIL_NOT_TLS, why);
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
    upstream_finish(u, KB_FAIL_AUTH, ok ? NULL : why);
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
        upstream_finish(u, KB_FAIL_AUTH, why);
    }
}

/* The metrics reason of a TLS handshake failure. */
static enum kb_fail_reason
upstream_tls_reason(enum tlserr_class cls)
{
    switch (cls) {
    case TLSERR_CLASS_UNTRUSTED:
        return KB_FAIL_TLS_UNTRUSTED;
    case TLSERR_CLASS_HOSTNAME:
        return KB_FAIL_TLS_HOSTNAME;
    case TLSERR_CLASS_EXPIRED:
        return KB_FAIL_TLS_EXPIRED;
    case TLSERR_CLASS_NOT_TLS:
        return KB_FAIL_NOT_TLS;
    case TLSERR_CLASS_PROTOCOL:
        return KB_FAIL_TLS_PROTOCOL;
    default:
        return KB_FAIL_TLS_OTHER;
    }
}

static void
upstream_on_tls_done(void *arg, struct bufferevent *bev, const struct tlspipe_fail *f)
{
    struct upstream *u = arg;
    char why[1024], dial[KB_HOST_MAX + 16];
    enum tlserr_class cls;

    if (bev) {
        u->pipe = NULL; /* owned by bev now */
        u->bev = bev;
        if (u->cc->sasl_mechanism != KB_SASL_NONE) {
            upstream_start_sasl(u);
            return;
        }
        upstream_finish(u, KB_FAIL_N, NULL);
        return;
    }
    upstream_dial_str(u, dial, sizeof(dial));
    if (f->n_errs == 0 && BIO_number_read(SSL_get_rbio(u->ssl)) == 0) {
        /* Not a single byte back: nothing that speaks TLS would do that to a ClientHello. */
        snprintf(why, sizeof(why),
                 "not TLS: %s closed the connection without answering the TLS ClientHello "
                 "(plaintext port? MSK TLS is 9094 or 9194 public, plaintext 9092)",
                 dial);
        upstream_finish(u, KB_FAIL_NOT_TLS, why);
        return;
    }
    tlserr_classify(u->ssl, f->errs, f->n_errs, f->eof ? 0 : f->sock_err, u->name.host, why,
                    sizeof(why), &cls);
    upstream_finish(u, upstream_tls_reason(cls), why);
}

static bool
upstream_start_tls(struct upstream *u, evutil_socket_t fd, char *why, size_t whylen)
{
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
    u->pipe = tlspipe_start(u->base, fd, u->ssl, upstream_on_tls_done, u);
    if (!u->pipe) {
        snprintf(why, whylen, "out of memory starting TLS");
        return false;
    }
    u->phase = UP_HANDSHAKE;
    tv = metrics_timeval_ms(u->cc->tls_handshake_timeout_ms);
    evtimer_add(u->timer, &tv); /* re-armed: the handshake gets its own budget */
    return true;
}

/* Short cause for the list of addresses tried. */
static const char *
sock_err_short(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "connection refused";
    case ETIMEDOUT:
        return "connect timed out";
    case 0:
        return "connection closed";
    default:
        return strerror(err);
    }
}

/* The address being dialled failed with err: the next one, or the end with every cause. */
static void
upstream_tcp_failed(struct upstream *u, int err)
{
    char why[768];

    tlspipe_bev_free(u->bev);
    u->bev = NULL;
    upstream_note_failure(u, sock_err_short(err));
    if (u->next && metrics_now() < u->deadline) {
        upstream_try_next(u);
        return;
    }
    upstream_fail_all(u, sock_err_cause(err, u, why, sizeof(why)), why);
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
            upstream_finish(u, KB_FAIL_N, NULL);
            return;
        }
        /* Detach the socket from the plain bufferevent and give it to OpenSSL. */
        bufferevent_setfd(bev, -1);
        bufferevent_free(bev);
        u->bev = NULL;
        if (!upstream_start_tls(u, fd, why, sizeof(why))) {
            upstream_finish(u, KB_FAIL_TLS_OTHER, why);
        }
        return;
    }
    upstream_tcp_failed(u, EVUTIL_SOCKET_ERROR());
}

/* "127.0.0.1:9094" or "[::1]:9094". */
static void
upstream_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
    } else {
        snprintf(out, outlen, "(address family %d)", sa->sa_family);
    }
}

/*
 * Dials u->next with its share of the time left. Runs from the loop (a callback), so it may
 * finish the attempt. A connect that fails at once (no IPv6 on this host) moves on at once.
 */
static void
upstream_try_next(struct upstream *u)
{
    struct evutil_addrinfo *ai = u->next, *rest;
    struct timeval tv;
    double left = u->deadline - metrics_now();
    int share_ms, remaining = 0;

    u->next = ai->ai_next;
    for (rest = ai; rest; rest = rest->ai_next) {
        remaining++;
    }
    share_ms = (int)(left * 1000.0 / remaining);
    upstream_addr_str(ai->ai_addr, u->at, sizeof(u->at));
    u->phase = UP_CONNECTING;
    u->bev = bufferevent_socket_new(u->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!u->bev) {
        upstream_finish(u, KB_FAIL_CONNECT, "out of memory connecting");
        return;
    }
    tv = metrics_timeval_ms(share_ms > 1 ? share_ms : 1);
    evtimer_add(u->timer, &tv);
    bufferevent_setcb(u->bev, NULL, NULL, upstream_on_tcp_event, u);
    if (bufferevent_socket_connect(u->bev, ai->ai_addr, (int)ai->ai_addrlen) < 0) {
        upstream_tcp_failed(u,
                            EVUTIL_SOCKET_ERROR()); /* frees bev: its deferred error never runs */
    }
}

/*
 * The first step, from the loop: the lookup's outcome (it may have completed inside
 * evdns_getaddrinfo, before upstream_connect returned).
 */
static void
upstream_on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct upstream *u = arg;
    char why[512], host[KB_HOST_MAX + 16];

    (void)fd;
    (void)what;
    if (u->dns_err != 0 || !u->addrs) {
        log_escape(u->dial.host, strlen(u->dial.host), host, sizeof(host));
        snprintf(why, sizeof(why), "DNS failure: cannot resolve '%s': %s", host,
                 evutil_gai_strerror(u->dns_err ? u->dns_err : EVUTIL_EAI_NONAME));
        upstream_finish(u, KB_FAIL_DNS, why);
        return;
    }
    upstream_try_next(u);
}

static void
upstream_on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct upstream *u = arg;
    struct evutil_addrinfo *ai;

    if (result == EVUTIL_EAI_CANCEL) {
        return; /* upstream_free cancelled it: u is going */
    }
    u->dreq = NULL;
    u->dns_err = result;
    u->addrs = result == 0 ? res : NULL;
    u->next = u->addrs;
    for (ai = u->addrs; ai; ai = ai->ai_next) {
        u->n_addrs++;
    }
    if (result != 0 && res) {
        evutil_freeaddrinfo(res);
    }
    event_active(u->kick, EV_TIMEOUT, 1);
}

struct upstream *
upstream_connect(struct event_base *base, struct evdns_base *dns, const struct kb_cluster_conf *cc,
                 SSL_CTX *ctx, const struct kb_hostport *name, upstream_done_fn done, void *arg)
{
    struct upstream *u = calloc(1, sizeof(*u));
    struct evutil_addrinfo hints;
    struct timeval tv;
    char port[8];

    if (!u) {
        return NULL;
    }
    u->base = base;
    u->dns = dns;
    u->cc = cc;
    u->ctx = cc->tls ? ctx : NULL;
    u->name = *name;
    u->dial = *conf_connect_target(cc, name);
    u->done = done;
    u->arg = arg;
    u->phase = UP_RESOLVING;
    u->deadline = metrics_now() + cc->connect_timeout_ms / 1000.0;
    u->timer = evtimer_new(base, upstream_on_timeout, u);
    u->kick = evtimer_new(base, upstream_on_kick, u);
    if (!u->timer || !u->kick) {
        goto fail;
    }
    tv = metrics_timeval_ms(cc->connect_timeout_ms);
    evtimer_add(u->timer, &tv);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%u", u->dial.port);
    /* Every outcome is reported from the loop (upstream_on_kick), after we have returned u:
     * a literal or hosts-file name is answered inside this call, a DNS name later. */
    u->dreq = evdns_getaddrinfo(dns, u->dial.host, port, &hints, upstream_on_resolved, u);
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
    SSL *ssl = tlspipe_bev_ssl(bev);

    if (!ssl) {
        snprintf(out, outlen, "plaintext (tls = off)");
        return out;
    }
    return tlserr_describe_session(ssl, out, outlen);
}

void
upstream_bev_free(struct bufferevent *bev)
{
    tlspipe_bev_free(bev);
}

size_t
upstream_unsent(struct bufferevent *bev)
{
    return tlspipe_bev_unsent(bev);
}

bool
upstream_threads_prepare(void)
{
    return tlspipe_init();
}
