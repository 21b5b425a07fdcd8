/*
 * listener.c - evconnlistener wrapper: bind every address of the cluster's listen host at a
 * given port and turn each accepted socket into a bridge. With workers > 1 every worker binds
 * its own socket on each port with SO_REUSEPORT, and the kernel spreads new connections over
 * them. Out of descriptors, a socket stops accepting for a while instead of spinning.
 */
#include "proxy/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "conf/conf.h"
#include "proxy/bridge.h"
#include "proxy/log.h"
#include "proxy/cluster.h"
#include "proxy/proxy.h"
#include "proxy/settings.h"
#include "proxy/worker.h"

/* One bound address of a listener (its host may resolve to several, e.g. 127.0.0.1 and ::1). */
struct listener_sock {
    struct listener *l;           /* owner */
    struct evconnlistener *lev;   /* the listening socket */
    struct sockaddr_storage addr; /* the address bound */
    socklen_t addrlen;            /* its length */
    bool claimed;                 /* holds a reference in listener_ports */
    struct event *retry;          /* re-enables accepting after a failed accept() */
    int pause_ms;                 /* 0: accepting; else paused (disabled) for this long */
    int backoff_ms;               /* the last pause of this episode (100 ms .. 1 s), 0: none */
    bool recovering;              /* accepting again, not yet for KB_LISTENER_QUIET_MS */
    long long resumed_ms;         /* when recovering began (CLOCK_MONOTONIC ms) */
    int waiting;                  /* connections queued in the backlog at the last retry */
};

struct listener {
    struct kb_cluster *cl;       /* owner */
    int32_t node_id;             /* KB_NODE_BOOTSTRAP or a broker id */
    int port;                    /* local port */
    struct listener_sock *socks; /* n_socks bound addresses */
    size_t n_socks;              /* entries in socks */
};

/*
 * Out of descriptors, accept() fails while the connection stays queued, so a listener left
 * armed is woken again at once: a busy loop and a log line per turn. A failing socket is paused
 * and retried on a timer instead, and the episode is logged once for the process: when the
 * first socket pauses and when the last one accepts again. Counted across every worker.
 */
#define KB_LISTENER_PAUSE_MIN_MS 100
#define KB_LISTENER_PAUSE_MAX_MS 1000
#define KB_LISTENER_QUIET_MS 1000   /* accepting without a failure this long ends an episode */
static _Atomic int listener_paused; /* sockets paused now, process-wide */
static _Atomic long long listener_paused_at;  /* ms (CLOCK_MONOTONIC) the episode began */
static _Atomic long long listener_paused_max; /* most connections seen waiting in it */

/*
 * SO_REUSEPORT would also let another process of the same user (a second kbridge started by
 * mistake) bind our ports and silently take half the connections. So the first of our
 * workers to bind an address checks with a plain bind that nobody holds it; the addresses we
 * hold are counted here, process-wide, because workers bind from their own threads.
 */
struct listener_port {
    struct sockaddr_storage addr; /* a bound address */
    socklen_t addrlen;            /* its length */
    int refs;                     /* our listeners on it */
};
static pthread_mutex_t listener_ports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct listener_port *listener_ports; /* n_listener_ports entries */
static size_t n_listener_ports;

static struct listener_port *
listener_port_find(const struct sockaddr_storage *ss, socklen_t len)
{
    size_t i;

    for (i = 0; i < n_listener_ports; i++) {
        if (listener_ports[i].addrlen == len && memcmp(&listener_ports[i].addr, ss, len) == 0) {
            return &listener_ports[i];
        }
    }
    return NULL;
}

/* 0, or the errno of a plain bind (EADDRINUSE: someone else listens there). */
static int
listener_probe_bind(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0;

    if (fd < 0) {
        return errno;
    }
    /* As libevent does for the real socket: a port in TIME_WAIT is not "in use". */
    evutil_make_listen_socket_reuseable(fd);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        err = errno;
    }
    evutil_closesocket(fd);
    return err;
}

/* Takes a reference on ls's address; the first one checks nobody else holds it. 0 or errno. */
static int
listener_claim(struct listener_sock *l)
{
    struct listener_port *lp, *grown;
    int err = 0;

    pthread_mutex_lock(&listener_ports_lock);
    lp = listener_port_find(&l->addr, l->addrlen);
    if (!lp) {
        err = listener_probe_bind(&l->addr, l->addrlen);
        if (err == 0) {
            grown = realloc(listener_ports, (n_listener_ports + 1) * sizeof(*grown));
            if (!grown) {
                err = ENOMEM;
            } else {
                listener_ports = grown;
                lp = &listener_ports[n_listener_ports++];
                lp->addr = l->addr;
                lp->addrlen = l->addrlen;
                lp->refs = 0;
            }
        }
    }
    if (lp) {
        lp->refs++;
        l->claimed = true;
    }
    pthread_mutex_unlock(&listener_ports_lock);
    return err;
}

static void
listener_unclaim(struct listener_sock *l)
{
    struct listener_port *lp;

    if (!l->claimed) {
        return;
    }
    pthread_mutex_lock(&listener_ports_lock);
    lp = listener_port_find(&l->addr, l->addrlen);
    if (lp && --lp->refs == 0) {
        *lp = listener_ports[--n_listener_ports];
        if (n_listener_ports == 0) {
            free(listener_ports);
            listener_ports = NULL;
        }
    }
    pthread_mutex_unlock(&listener_ports_lock);
    l->claimed = false;
}

static long long
listener_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connections waiting in a listening socket's accept queue (Linux TCP_INFO), or -1. */
static int
listener_backlog(struct evconnlistener *lev)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) {
        return -1;
    }
    return (int)ti.tcpi_unacked; /* for a listening socket: the accept queue's length */
}

/*
 * The socket has accepted for KB_LISTENER_QUIET_MS without a failure: its pause is over, and
 * the episode with the last one. (Accepting again for a moment, as a few descriptors free up,
 * and failing again is still the same episode, so it is logged once.)
 */
static void
listener_resume(struct listener_sock *ls)
{
    struct listener *l = ls->l;
    long long waited;

    ls->recovering = false;
    ls->backoff_ms = 0;
    if (atomic_fetch_sub(&listener_paused, 1) != 1) {
        return; /* other sockets are still paused: the episode goes on */
    }
    waited = ls->resumed_ms - atomic_load(&listener_paused_at);
    if (atomic_load(&listener_paused_max) > 0) {
        cllog(KB_LOG_WARN, l->cl->name,
              "accepting connections again after %.1f s without descriptors; up to %lld "
              "connection(s) waited in the accept queue meanwhile",
              (double)waited / 1000.0, atomic_load(&listener_paused_max));
    } else {
        cllog(KB_LOG_WARN, l->cl->name,
              "accepting connections again after %.1f s without descriptors",
              (double)waited / 1000.0);
    }
}

/*
 * True when the process has n descriptors free. The two a client needs (its socket and the
 * broker's) must be there before accepting again, or each retry would take a client only to
 * close it when its broker connection fails, with a log line each time.
 */
static bool
listener_fds_available(evutil_socket_t fd, int n)
{
    int got[4];
    int i, k = 0;

    for (i = 0; i < n && i < 4; i++) {
        got[i] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (got[i] < 0) {
            break;
        }
        k++;
    }
    for (i = 0; i < k; i++) {
        close(got[i]);
    }
    return k == n;
}

/* Stops accepting on ls for its next, longer pause (the episode is already counted). */
static void
listener_pause(struct listener_sock *ls)
{
    struct timeval tv;

    evconnlistener_disable(ls->lev);
    ls->recovering = false;
    ls->backoff_ms = ls->backoff_ms == 0                             ? KB_LISTENER_PAUSE_MIN_MS
                     : ls->backoff_ms * 2 > KB_LISTENER_PAUSE_MAX_MS ? KB_LISTENER_PAUSE_MAX_MS
                                                                     : ls->backoff_ms * 2;
    ls->pause_ms = ls->backoff_ms;
    tv.tv_sec = ls->pause_ms / 1000;
    tv.tv_usec = (ls->pause_ms % 1000) * 1000;
    evtimer_add(ls->retry, &tv);
}

static void
listener_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
    struct listener_sock *ls = arg;
    struct listener *l = ls->l;

    (void)lev;
    if (ls->pause_ms) {
        struct timeval tv = {KB_LISTENER_QUIET_MS / 1000, (KB_LISTENER_QUIET_MS % 1000) * 1000};
        ls->pause_ms = 0;
        ls->recovering = true;
        ls->resumed_ms = listener_now_ms();
        evtimer_add(ls->retry, &tv); /* ends the episode unless accept fails again */
    }
    if (!workers_handoff(l->cl->proxy->peers, l->cl->proxy, l->cl, fd, sa, (socklen_t)salen,
                         l->node_id)) {
        bridge_new(l->cl, fd, sa, (socklen_t)salen, l->node_id);
    }
    /* libevent accepts in a loop until the queue is empty. Just back from a pause, stop before
     * the queued clients take the descriptors this one's broker connection needs (it is made
     * later, from the loop): this client's one, and two for the next. */
    if (ls->recovering && !listener_fds_available(evconnlistener_get_fd(ls->lev), 3)) {
        listener_pause(ls);
    }
}

static void
listener_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct listener_sock *ls = arg;
    int waiting = listener_backlog(ls->lev);
    long long max = atomic_load(&listener_paused_max);

    (void)fd;
    (void)what;
    if (ls->recovering) {
        listener_resume(ls);
        return;
    }
    ls->waiting = waiting;
    while (waiting > max && !atomic_compare_exchange_weak(&listener_paused_max, &max, waiting)) {
    }
    if (!listener_fds_available(evconnlistener_get_fd(ls->lev), 2)) {
        listener_pause(ls);
        return;
    }
    /* Still paused (pause_ms set): the next accept ends the pause, the next failure doubles it. */
    evconnlistener_enable(ls->lev);
}

/*
 * accept() failed for a reason other than a retriable one (libevent retries EAGAIN, EINTR and
 * ECONNABORTED itself): mostly EMFILE/ENFILE, out of descriptors until some close. Pause this
 * socket, retry after 100 ms, doubling up to 1 s while the episode lasts.
 */
static void
listener_on_error(struct evconnlistener *lev, void *arg)
{
    struct listener_sock *ls = arg;
    struct listener *l = ls->l;
    int err = EVUTIL_SOCKET_ERROR();
    struct rlimit rl;

    (void)lev;
    if (ls->backoff_ms) {
        listener_pause(ls); /* the same episode: said already */
        return;
    }
    listener_pause(ls);
    if (atomic_fetch_add(&listener_paused, 1) != 0) {
        return; /* another socket started the episode, and said so */
    }
    atomic_store(&listener_paused_at, listener_now_ms());
    atomic_store(&listener_paused_max, 0);
    if ((err == EMFILE || err == ENFILE) && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        cllog(KB_LOG_ERROR, l->cl->name,
              "accept on port %d failed: %s (descriptor limit %llu%s): pausing accepts and "
              "retrying every %d-%d ms; raise the limit (LimitNOFILE= in the systemd unit, "
              "ulimit -n) or lower max_connections",
              l->port, strerror(err), (unsigned long long)rl.rlim_cur,
              err == ENFILE ? ", and the system-wide one" : "", KB_LISTENER_PAUSE_MIN_MS,
              KB_LISTENER_PAUSE_MAX_MS);
    } else {
        cllog(KB_LOG_ERROR, l->cl->name,
              "accept on port %d failed: %s: pausing accepts and retrying every %d-%d ms", l->port,
              strerror(err), KB_LISTENER_PAUSE_MIN_MS, KB_LISTENER_PAUSE_MAX_MS);
    }
}

/* Binds one address of l (port already set in ss). 0 or errno. */
static int
listener_bind(struct listener *l, struct listener_sock *ls, const struct sockaddr *sa,
              socklen_t salen, bool v6only)
{
    struct kb_proxy *p = l->cl->proxy;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    int err = 0;

    ls->l = l;
    memcpy(&ls->addr, sa, salen);
    ls->addrlen = salen;
    if (v6only) {
        flags |= LEV_OPT_BIND_IPV6ONLY; /* its IPv4 twin is bound on its own */
    }
    if (p->reuseport) {
        flags |= LEV_OPT_REUSEABLE_PORT;
        err = listener_claim(ls);
    }
    if (err == 0) {
        ls->lev = evconnlistener_new_bind(p->base, listener_on_accept, ls, flags, -1,
                                          (struct sockaddr *)&ls->addr, (int)ls->addrlen);
        err = ls->lev ? 0 : errno;
    }
    if (err == 0) {
        ls->retry = evtimer_new(p->base, listener_on_retry, ls);
        err = ls->retry ? 0 : ENOMEM;
    }
    if (err != 0) {
        if (ls->lev) {
            evconnlistener_free(ls->lev);
            ls->lev = NULL;
        }
        listener_unclaim(ls);
        return err;
    }
    evconnlistener_set_error_cb(ls->lev, listener_on_error);
    return 0;
}

static void
listener_sock_close(struct listener_sock *ls)
{
    if (ls->backoff_ms) {
        atomic_fetch_sub(&listener_paused, 1); /* it was in an episode */
        ls->pause_ms = 0;
        ls->backoff_ms = 0;
        ls->recovering = false;
    }
    if (ls->retry) {
        event_free(ls->retry);
        ls->retry = NULL;
    }
    if (ls->lev) {
        evconnlistener_free(ls->lev);
        ls->lev = NULL;
    }
    listener_unclaim(ls);
}

/* "127.0.0.1:9092" or "[::1]:9092". */
static void
listener_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
    }
}

/* True when ai repeats an address earlier in the list (a hosts file may name one twice). */
static bool
listener_seen(const struct evutil_addrinfo *first, const struct evutil_addrinfo *ai)
{
    for (; first != ai; first = first->ai_next) {
        if (first->ai_addrlen == ai->ai_addrlen &&
            memcmp(first->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0) {
            return true;
        }
    }
    return false;
}

struct listener *
listener_new(struct kb_cluster *cl, int port, int32_t node_id, char *err, size_t errlen)
{
    struct listener *l = calloc(1, sizeof(*l));
    struct evutil_addrinfo hints, *res = NULL, *ai;
    struct kb_hostport hp = cl->cur->cc->listen;
    char addr[KB_HOST_MAX + 16], one[INET6_ADDRSTRLEN + 16], portstr[16];
    size_t n = 0;
    bool v4 = false, v6 = false;
    int rc, bind_err = 0;

    hp.port = (uint16_t)port;
    conf_hostport_str(&hp, addr, sizeof(addr));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->cl = cl;
    l->node_id = node_id;
    l->port = port;
    /* Every address of the listen host, as `kbridge check` and clients see them: localhost may
     * be 127.0.0.1 and ::1, and a client tries both. Resolved here (not once per cluster) so
     * broker ports opened later follow the same rule; a listen host is a literal or a hosts
     * file name, so this does not wait on DNS in practice. */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = evutil_getaddrinfo(cl->cur->cc->listen.host, portstr, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot listen on %s: cannot resolve '%s': %s", addr,
                 cl->cur->cc->listen.host, evutil_gai_strerror(rc));
        free(l);
        return NULL;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        n++;
        v4 = v4 || ai->ai_family == AF_INET;
        v6 = v6 || ai->ai_family == AF_INET6;
    }
    l->socks = calloc(n, sizeof(*l->socks));
    if (!l->socks) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(struct sockaddr_storage) || listener_seen(res, ai)) {
            continue;
        }
        bind_err = listener_bind(l, &l->socks[l->n_socks], ai->ai_addr, (socklen_t)ai->ai_addrlen,
                                 ai->ai_family == AF_INET6 && v4);
        if (bind_err == 0) {
            l->n_socks++;
            continue;
        }
        listener_addr_str(ai->ai_addr, one, sizeof(one));
        if ((bind_err == EADDRNOTAVAIL || bind_err == EAFNOSUPPORT) && v4 && v6) {
            /* A host with IPv6 (or IPv4) turned off: serve the family it has. */
            cllog(KB_LOG_WARN, cl->name, "not listening on %s (of %s): %s", one, addr,
                  strerror(bind_err));
            continue;
        }
        if (n > 1) {
            snprintf(err, errlen, "cannot listen on %s (%s): %s", addr, one, strerror(bind_err));
        } else {
            snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(bind_err));
        }
        goto fail;
    }
    if (l->n_socks == 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr,
                 strerror(bind_err ? bind_err : EADDRNOTAVAIL));
        goto fail;
    }
    evutil_freeaddrinfo(res);
    return l;
fail:
    evutil_freeaddrinfo(res);
    listener_free(l);
    return NULL;
}

void
listener_free(struct listener *l)
{
    size_t i;

    if (l) {
        for (i = 0; i < l->n_socks; i++) {
            listener_sock_close(&l->socks[i]);
        }
        free(l->socks);
        free(l);
    }
}
