/*
 * brokermap.h - what one cluster knows of its brokers: node id -> the address the broker
 * advertises (where kbridge connects), and the local listener that serves it to clients at
 * advertised_host:broker_port_base+N under the cluster's current settings. Owned by its cluster
 * (cluster.h) and as long-lived; supplies the codec's rewrite callback.
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
    bool learn;            /* record the addresses seen (false: a connection to brokers the
                              section no longer names; its answers are rewritten, not learnt) */
    bool failed;           /* a broker could not be mapped: the response must not go out */
    char err[512];         /* why, when failed */
};

/* A new, empty map for cl, sized for cl's current max_node_id. NULL when out of memory. */
struct brokermap *brokermap_new(struct kb_cluster *cl);
void brokermap_free(struct brokermap *m); /* closes the listeners; NULL is fine */

/* Closes every broker listener (the cluster is retired, or its ports move). */
void brokermap_close_listeners(struct brokermap *m);

/*
 * The broker ports changed (listen host, advertised_host, broker_port_base or max_node_id):
 * closes every listener and keeps the learnt addresses that still fit max_node_id;
 * brokermap_open_listeners() then serves them at their new ports.
 */
void brokermap_move(struct brokermap *m);

/* The cluster now names other brokers: closes every listener and forgets every address. */
void brokermap_forget(struct brokermap *m);

/*
 * Opens the listener of every known node that has none (while the cluster is live). A port
 * that cannot be bound is logged; the node is tried again the next time it is seen.
 */
void brokermap_open_listeners(struct brokermap *m);

/* The upstream address of node_id, or NULL when it is not known. */
const struct kb_hostport *brokermap_upstream(const struct brokermap *m, int32_t node_id);

/*
 * kp_map_fn: records node_id -> host:port (when call->learn), opens the node's listener the
 * first time, and replies with advertised_host:broker_port_base+node_id of the cluster's current
 * settings. An entry with no node and no address (node_id < 0 with an empty host, e.g.
 * "coordinator not available") is left as it is. A negative node id that carries an address, a
 * node above max_node_id, an unusable address, or a listener that cannot be opened sets
 * call->failed: the caller closes the connection rather than let a real broker address reach
 * the client.
 */
bool brokermap_map(void *call, int32_t node_id, const char *host, size_t host_len, int32_t port,
                   const char **new_host, size_t *new_host_len, int32_t *new_port);

#endif
