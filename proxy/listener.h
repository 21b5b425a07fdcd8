/*
 * listener.h - one listening socket of a cluster: its bootstrap port, or the port of one broker
 * (node N at broker_port_base + N). Each accepted client becomes a bridge to that upstream.
 */
#ifndef KB_PROXY_LISTENER_H
#define KB_PROXY_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct kb_cluster;
struct listener;

#define KB_NODE_BOOTSTRAP (-1) /* node_id of a bootstrap listener */

/*
 * Listens on the listen address of cl's current settings with the given port; cl owns the
 * listener and outlives it. node_id is KB_NODE_BOOTSTRAP
 * or a broker id. NULL with "listen on 127.0.0.1:9094: Address already in use" in err.
 */
struct listener *listener_new(struct kb_cluster *cl, int port, int32_t node_id, char *err,
                              size_t errlen);

void listener_free(struct listener *l); /* NULL is fine */

#endif
