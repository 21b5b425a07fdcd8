/*
 * listener.c - evconnlistener wrapper: bind the cluster's listen host at a given port and turn
 * each accepted socket into a bridge.
 */
#include "proxy/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/listener.h>

#include "conf/conf.h"
#include "proxy/bridge.h"
#include "proxy/log.h"
#include "proxy/cluster.h"
#include "proxy/proxy.h"

struct listener {
    struct kb_cluster *cl;      /* owner */
    struct evconnlistener *lev; /* the listening socket */
    int32_t node_id;            /* KB_NODE_BOOTSTRAP or a broker id */
    int port;                   /* local port */
};

static void
listener_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
    struct listener *l = arg;

    (void)lev;
    bridge_new(l->cl, fd, sa, (socklen_t)salen, l->node_id);
}

static void
listener_on_error(struct evconnlistener *lev, void *arg)
{
    struct listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();

    (void)lev;
    /* EMFILE/ENFILE: out of descriptors; accept keeps failing until some close. */
    cllog(KB_LOG_ERROR, l->cl->cc->name, "accept on port %d failed: %s", l->port, strerror(err));
}

struct listener *
listener_new(struct kb_cluster *cl, int port, int32_t node_id, char *err, size_t errlen)
{
    struct listener *l = calloc(1, sizeof(*l));
    struct sockaddr_storage ss = cl->listen_ss;
    char addr[KB_HOST_MAX + 16];
    struct kb_hostport hp = cl->cc->listen;

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
    l->lev =
        evconnlistener_new_bind(cl->proxy->base, listener_on_accept, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                -1, (struct sockaddr *)&ss, (int)cl->listen_sslen);
    if (!l->lev) {
        snprintf(err, errlen, "cannot listen on %s: %s", conf_hostport_str(&hp, addr, sizeof(addr)),
                 strerror(errno));
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, listener_on_error);
    return l;
}

void
listener_adopt(struct listener *l, struct kb_cluster *cl)
{
    l->cl = cl;
}

void
listener_free(struct listener *l)
{
    if (l) {
        evconnlistener_free(l->lev);
        free(l);
    }
}
