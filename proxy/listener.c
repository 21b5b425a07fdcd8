/*
 * listener.c - evconnlistener wrapper: bind the cluster's listen host at a given port and turn
 * each accepted socket into a bridge. With workers > 1 every worker binds its own socket on
 * each port with SO_REUSEPORT, and the kernel spreads new connections over them.
 */
#include "proxy/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "conf/conf.h"
#include "proxy/bridge.h"
#include "proxy/log.h"
#include "proxy/cluster.h"
#include "proxy/proxy.h"
#include "proxy/settings.h"
#include "proxy/worker.h"

struct listener {
    struct kb_cluster *cl;        /* owner */
    struct evconnlistener *lev;   /* the listening socket */
    int32_t node_id;              /* KB_NODE_BOOTSTRAP or a broker id */
    int port;                     /* local port */
    struct sockaddr_storage addr; /* the address bound */
    socklen_t addrlen;            /* its length */
    bool claimed;                 /* holds a reference in listener_ports */
};

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

/* Takes a reference on l's address; the first one checks nobody else holds it. 0 or errno. */
static int
listener_claim(struct listener *l)
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
listener_unclaim(struct listener *l)
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

static void
listener_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
    struct listener *l = arg;

    (void)lev;
    if (workers_handoff(l->cl->proxy->peers, l->cl->proxy, l->cl, fd, sa, (socklen_t)salen,
                        l->node_id)) {
        return; /* another loop has fewer connections: it serves this one */
    }
    bridge_new(l->cl, fd, sa, (socklen_t)salen, l->node_id);
}

static void
listener_on_error(struct evconnlistener *lev, void *arg)
{
    struct listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();

    (void)lev;
    /* EMFILE/ENFILE: out of descriptors; accept keeps failing until some close. */
    cllog(KB_LOG_ERROR, l->cl->name, "accept on port %d failed: %s", l->port, strerror(err));
}

struct listener *
listener_new(struct kb_cluster *cl, int port, int32_t node_id, char *err, size_t errlen)
{
    struct listener *l = calloc(1, sizeof(*l));
    struct sockaddr_storage ss = cl->cur->listen_ss;
    socklen_t sslen = cl->cur->listen_sslen;
    char addr[KB_HOST_MAX + 16];
    struct kb_hostport hp = cl->cur->cc->listen;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    int claim_err = 0;

    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ss.ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    }
    hp.port = (uint16_t)port;
    l->cl = cl;
    l->node_id = node_id;
    l->port = port;
    l->addr = ss;
    l->addrlen = sslen;
    if (cl->proxy->reuseport) {
        flags |= LEV_OPT_REUSEABLE_PORT;
        claim_err = listener_claim(l);
    }
    if (claim_err == 0) {
        l->lev = evconnlistener_new_bind(cl->proxy->base, listener_on_accept, l, flags, -1,
                                         (struct sockaddr *)&ss, (int)sslen);
        claim_err = l->lev ? 0 : errno;
    }
    if (!l->lev) {
        snprintf(err, errlen, "cannot listen on %s: %s", conf_hostport_str(&hp, addr, sizeof(addr)),
                 strerror(claim_err));
        listener_unclaim(l);
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, listener_on_error);
    return l;
}

void
listener_free(struct listener *l)
{
    if (l) {
        evconnlistener_free(l->lev);
        listener_unclaim(l);
        free(l);
    }
}
