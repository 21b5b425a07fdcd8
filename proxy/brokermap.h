/*
 * brokermap.h - what kbridge knows of a cluster's brokers: node id -> the address the broker
 * advertises (where kbridge connects), and the local listener that serves it to clients at
 * advertised_host:broker_port_base+N. Supplies the codec's rewrite callback.
 */
#ifndef KB_PROXY_BROKERMAP_H
#define KB_PROXY_BROKERMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct kb_cluster;
struct brokermap;

/* Per-rewrite state handed to brokermap_map() as its void *arg. */
struct brokermap_call {
    struct brokermap *map; /* the cluster's map */
    bool failed;           /* a broker could not be mapped: the response must not go out */
    char err[512];         /* why, when failed */
};

/* A new, empty map serving for cl (refcount 1). NULL when out of memory. */
struct brokermap *brokermap_new(struct kb_cluster *cl);
struct brokermap *brokermap_ref(struct brokermap *m);
void brokermap_unref(struct brokermap *m); /* at zero closes the listeners; NULL is fine */

/* True when a cluster configured as cc can keep using m (same listener settings). */
bool brokermap_compatible(const struct brokermap *m, const struct kb_cluster_conf *cc);

/* Makes cl the cluster that m's listeners accept for (reload). */
void brokermap_adopt(struct brokermap *m, struct kb_cluster *cl);

/*
 * cl stops serving: when m still serves for cl (no newer cluster adopted it), its listeners
 * close and it opens no more. Rewriting still works, so no address ever leaks.
 */
void brokermap_retire(struct brokermap *m, struct kb_cluster *cl);

/* The upstream address of node_id, or NULL when it was never seen. */
const struct kb_hostport *brokermap_upstream(const struct brokermap *m, int32_t node_id);

/*
 * kp_map_fn: records node_id -> host:port, opens the node's listener the first time, and
 * replies with advertised_host:broker_port_base+node_id. Entries without a node (node_id < 0,
 * e.g. "coordinator not available") are left as they are. A node above max_node_id, or a
 * listener that cannot be opened, sets call->failed (the caller closes the connection rather
 * than let a real broker address reach the client).
 */
bool brokermap_map(void *call, int32_t node_id, const char *host, size_t host_len, int32_t port,
                   const char **new_host, size_t *new_host_len, int32_t *new_port);

#endif
