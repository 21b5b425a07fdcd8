/*
 * brokermap.c - node id -> upstream address + local listener, learnt from the responses the
 * brokers send (Metadata, FindCoordinator, DescribeCluster, KIP-951 node endpoints).
 */
#include "proxy/brokermap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/cluster.h"
#include "proxy/proxy.h"

struct broker_slot {
    bool known;                  /* an address was seen for this node */
    struct kb_hostport upstream; /* the address the broker advertises */
    struct listener *listener;   /* serves the node to clients; NULL until first seen */
};

struct brokermap {
    int refs;                  /* clusters sharing this map */
    bool retired;              /* listeners closed; open no more */
    struct kb_cluster *cl;     /* the newest cluster using it (settings, accepts) */
    struct broker_slot *slots; /* max_node_id + 1 entries, indexed by node id */
    size_t n_slots;            /* entries in slots */
};

struct brokermap *
brokermap_new(struct kb_cluster *cl)
{
    struct brokermap *m = calloc(1, sizeof(*m));

    if (!m) {
        return NULL;
    }
    m->refs = 1;
    m->cl = cl;
    m->n_slots = (size_t)cl->cc->max_node_id + 1;
    m->slots = calloc(m->n_slots, sizeof(*m->slots));
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

static void
brokermap_close_listeners(struct brokermap *m)
{
    size_t i;

    for (i = 0; i < m->n_slots; i++) {
        listener_free(m->slots[i].listener);
        m->slots[i].listener = NULL;
    }
}

struct brokermap *
brokermap_ref(struct brokermap *m)
{
    m->refs++;
    return m;
}

void
brokermap_unref(struct brokermap *m)
{
    if (!m || --m->refs > 0) {
        return;
    }
    brokermap_close_listeners(m);
    free(m->slots);
    free(m);
}

bool
brokermap_compatible(const struct brokermap *m, const struct kb_cluster_conf *cc)
{
    const struct kb_cluster_conf *old = m->cl->cc;

    return !m->retired && strcmp(old->listen.host, cc->listen.host) == 0 &&
           strcmp(old->advertised_host, cc->advertised_host) == 0 &&
           old->broker_port_base == cc->broker_port_base && old->max_node_id == cc->max_node_id;
}

void
brokermap_adopt(struct brokermap *m, struct kb_cluster *cl)
{
    size_t i;

    m->cl = cl;
    for (i = 0; i < m->n_slots; i++) {
        if (m->slots[i].listener) {
            listener_adopt(m->slots[i].listener, cl);
        }
    }
}

void
brokermap_retire(struct brokermap *m, struct kb_cluster *cl)
{
    if (m->cl == cl) {
        m->retired = true;
        brokermap_close_listeners(m);
    }
}

const struct kb_hostport *
brokermap_upstream(const struct brokermap *m, int32_t node_id)
{
    if (node_id < 0 || (size_t)node_id >= m->n_slots || !m->slots[node_id].known) {
        return NULL;
    }
    return &m->slots[node_id].upstream;
}

/* Records the advertised address of a node; logs when it is new or changed. */
static bool
brokermap_learn(struct brokermap *m, struct brokermap_call *call, int32_t node_id, const char *host,
                size_t host_len, int32_t port)
{
    struct broker_slot *s = &m->slots[node_id];
    struct kb_hostport hp;
    unsigned char tmp[sizeof(struct in6_addr)];
    char a[KB_HOST_MAX + 16], b[KB_HOST_MAX + 16];

    if (host_len == 0 || host_len >= sizeof(hp.host) || port < 1 || port > 65535) {
        snprintf(call->err, sizeof(call->err),
                 "broker %d advertises an unusable address (host of %zu bytes, port %d)",
                 (int)node_id, host_len, (int)port);
        return false;
    }
    memset(&hp, 0, sizeof(hp));
    memcpy(hp.host, host, host_len);
    hp.port = (uint16_t)port;
    hp.is_ip = inet_pton(AF_INET, hp.host, tmp) == 1 || inet_pton(AF_INET6, hp.host, tmp) == 1;
    if (s->known && s->upstream.port == hp.port && strcmp(s->upstream.host, hp.host) == 0) {
        return true;
    }
    if (s->known) {
        char eb[KB_LOG_ESCAPED_MAX(sizeof(b))], ea[KB_LOG_ESCAPED_MAX(sizeof(a))];
        conf_hostport_str(&s->upstream, b, sizeof(b));
        conf_hostport_str(&hp, a, sizeof(a));
        cllog(KB_LOG_INFO, m->cl->cc->name, "broker %d moved from %s to %s", (int)node_id,
              log_escape(b, strlen(b), eb, sizeof(eb)), log_escape(a, strlen(a), ea, sizeof(ea)));
    }
    s->upstream = hp;
    s->known = true;
    return true;
}

bool
brokermap_map(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
              const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    struct brokermap_call *call = arg;
    struct brokermap *m = call->map;
    const struct kb_cluster_conf *cc = m->cl->cc;
    struct broker_slot *s;
    char err[384];

    if (node_id < 0) {
        return false; /* "no node" (e.g. coordinator not available): nothing to reach */
    }
    if ((size_t)node_id >= m->n_slots) {
        call->failed = true;
        snprintf(call->err, sizeof(call->err),
                 "broker node id %d is above max_node_id (%d): raise max_node_id so kbridge can "
                 "serve it at port %d",
                 (int)node_id, cc->max_node_id, cc->broker_port_base + (int)node_id);
        return false;
    }
    if (!brokermap_learn(m, call, node_id, host, host_len, port)) {
        call->failed = true;
        return false;
    }
    s = &m->slots[node_id];
    if (!s->listener && !m->retired) {
        s->listener =
            listener_new(m->cl, cc->broker_port_base + node_id, node_id, err, sizeof(err));
        if (!s->listener) {
            call->failed = true;
            snprintf(call->err, sizeof(call->err), "broker %d: %s", (int)node_id, err);
            return false;
        }
        char eh[KB_LOG_ESCAPED_MAX(sizeof(s->upstream.host))];
        cllog(KB_LOG_INFO, cc->name, "broker %d served at %s:%d -> %s:%d", (int)node_id,
              cc->advertised_host, cc->broker_port_base + (int)node_id,
              log_escape(s->upstream.host, strlen(s->upstream.host), eh, sizeof(eh)),
              s->upstream.port);
    }
    *new_host = cc->advertised_host;
    *new_host_len = strlen(cc->advertised_host);
    *new_port = cc->broker_port_base + node_id;
    return true;
}
