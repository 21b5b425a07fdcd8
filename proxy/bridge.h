/*
 * bridge.h - one client <-> broker connection pair. Requests are forwarded as they arrive
 * (tracked by correlation id); responses that may carry broker addresses are rewritten,
 * all others are forwarded by length without being parsed past their header.
 */
#ifndef KB_PROXY_BRIDGE_H
#define KB_PROXY_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

struct kb_cluster;
struct bridge;

/*
 * Takes the accepted client socket fd (closed on any failure) and starts connecting to the
 * upstream of node_id (KB_NODE_BOOTSTRAP: the bootstrap servers in turn).
 */
void bridge_new(struct kb_cluster *cl, evutil_socket_t fd, const struct sockaddr *peer,
                socklen_t peerlen, int32_t node_id);

/* Closes and frees br without a log line (process shutdown). */
void bridge_free(struct bridge *br);

/*
 * True when br should send no more requests: its cluster was retired or now names other brokers
 * than br's settings do (cluster_is_stale_for). A reload drains such bridges.
 */
bool bridge_is_stale(const struct bridge *br);

/* The next bridge in the proxy's list. */
struct bridge *bridge_next(const struct bridge *br);

/*
 * Stop accepting requests on br: the request being received is completed, the responses to
 * everything in flight are delivered, then br closes. May free br at once.
 */
void bridge_drain(struct bridge *br);

#endif
