/*
 * brokermap.c - node id -> upstream address + local listener, learnt from the responses the
 * brokers send (Metadata, FindCoordinator, DescribeCluster, KIP-951 node endpoints).
 */
#include "proxy/brokermap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/settings.h"

struct broker_slot {
    bool known;                  /* an address was seen for this node */
    struct kb_hostport upstream; /* the address the broker advertises */
    struct listener *listener;   /* serves the node to clients; NULL until opened */
};

struct brokermap {
    struct kb_cluster *cl;     /* owner: its current settings give the local ports */
    struct broker_slot *slots; /* n_slots entries, indexed by node id */
    size_t n_slots;            /* max_node_id + 1 of the settings the map was sized for */
};

static const struct kb_cluster_conf *
brokermap_cc(const struct brokermap *m)
{
    return m->cl->cur->cc;
}

struct brokermap *
brokermap_new(struct kb_cluster *cl)
{
    struct brokermap *m = calloc(1, sizeof(*m));

    if (!m) {
        return NULL;
    }
    m->cl = cl;
    m->n_slots = (size_t)cl->cur->cc->max_node_id + 1;
    m->slots = calloc(m->n_slots, sizeof(*m->slots));
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void
brokermap_close_listeners(struct brokermap *m)
{
    size_t i;

    for (i = 0; i < m->n_slots; i++) {
        listener_free(m->slots[i].listener);
        m->slots[i].listener = NULL;
    }
}

void
brokermap_free(struct brokermap *m)
{
    if (!m) {
        return;
    }
    brokermap_close_listeners(m);
    free(m->slots);
    free(m);
}

void
brokermap_move(struct brokermap *m)
{
    size_t n = (size_t)brokermap_cc(m)->max_node_id + 1;
    struct broker_slot *grown;

    brokermap_close_listeners(m);
    if (n == m->n_slots) {
        return;
    }
    grown = realloc(m->slots, n * sizeof(*grown));
    if (!grown) {
        /* Keep the old size: nodes above the new max_node_id are refused by brokermap_map. */
        cllog(KB_LOG_ERROR, m->cl->name, "out of memory resizing the broker map");
        return;
    }
    if (n > m->n_slots) {
        memset(grown + m->n_slots, 0, (n - m->n_slots) * sizeof(*grown));
    }
    m->slots = grown;
    m->n_slots = n;
}

void
brokermap_forget(struct brokermap *m)
{
    brokermap_close_listeners(m);
    memset(m->slots, 0, m->n_slots * sizeof(*m->slots));
    brokermap_move(m); /* and size it for the new settings */
}

/* Opens node_id's listener; false with the reason in err. */
static bool
brokermap_listen(struct brokermap *m, int32_t node_id, char *err, size_t errlen)
{
    const struct kb_cluster_conf *cc = brokermap_cc(m);
    struct broker_slot *s = &m->slots[node_id];
    char lerr[384], eh[KB_LOG_ESCAPED_MAX(sizeof(s->upstream.host))];

    if (s->listener || !m->cl->live) {
        return true;
    }
    s->listener = listener_new(m->cl, cc->broker_port_base + node_id, node_id, lerr, sizeof(lerr));
    if (!s->listener) {
        snprintf(err, errlen, "broker %d: %s", (int)node_id, lerr);
        return false;
    }
    cllog(KB_LOG_INFO, cc->name, "broker %d served at %s:%d -> %s:%d", (int)node_id,
          cc->advertised_host, cc->broker_port_base + node_id,
          log_escape(s->upstream.host, strlen(s->upstream.host), eh, sizeof(eh)), s->upstream.port);
    return true;
}

void
brokermap_open_listeners(struct brokermap *m)
{
    char err[512];
    size_t i;

    for (i = 0; i < m->n_slots; i++) {
        if (m->slots[i].known && !brokermap_listen(m, (int32_t)i, err, sizeof(err))) {
            cllog(KB_LOG_ERROR, m->cl->name, "%s", err);
        }
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

    if (host_len == 0 || host_len >= sizeof(hp.host) || memchr(host, '\0', host_len) || port < 1 ||
        port > 65535) {
        snprintf(call->err, sizeof(call->err),
                 "broker %d advertises an unusable address (host of %zu bytes, port %d)",
                 (int)node_id, host_len, (int)port);
        return false;
    }
    if (!call->learn) {
        return true;
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
        cllog(KB_LOG_INFO, m->cl->name, "broker %d moved from %s to %s", (int)node_id,
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
    const struct kb_cluster_conf *cc = brokermap_cc(m);

    if (node_id < 0) {
        if (host_len == 0) {
            return false; /* "no node" (e.g. coordinator not available): nothing to reach */
        }
        call->failed = true;
        snprintf(call->err, sizeof(call->err),
                 "a broker entry with node id %d carries an address; kbridge can serve only node "
                 "ids 0..max_node_id (%d), so it is not passed on",
                 (int)node_id, cc->max_node_id);
        return false;
    }
    if ((size_t)node_id >= m->n_slots || node_id > cc->max_node_id) {
        call->failed = true;
        snprintf(call->err, sizeof(call->err),
                 "broker node id %d is above max_node_id (%d): raise max_node_id so kbridge can "
                 "serve it at port %lld",
                 (int)node_id, cc->max_node_id, (long long)cc->broker_port_base + node_id);
        return false;
    }
    if (!brokermap_learn(m, call, node_id, host, host_len, port)) {
        call->failed = true;
        return false;
    }
    if (m->slots[node_id].known && !brokermap_listen(m, node_id, call->err, sizeof(call->err))) {
        call->failed = true;
        return false;
    }
    *new_host = cc->advertised_host;
    *new_host_len = strlen(cc->advertised_host);
    *new_port = cc->broker_port_base + node_id;
    return true;
}
