/*
 * worker.h - the extra event loops of `workers = N` (N > 1). Each worker is a whole kb_proxy
 * of its own (event loop, resolver, clusters, TLS contexts, broker maps, bridges) running in
 * its own thread; its listeners share the leader's ports through SO_REUSEPORT, so the kernel
 * spreads new connections over the loops. Nothing of a worker's proxy is touched by another
 * thread: the leader (worker 0: signals, admin, probes) sends it commands through a pipe, and
 * the only state they share is the metrics registry and the refcounted config snapshot.
 */
#ifndef KB_PROXY_WORKER_H
#define KB_PROXY_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

struct kb_cluster;
struct kb_conf;
struct kb_proxy;
struct workers;

/*
 * Builds workers 1..leader->conf->workers-1 from the leader's snapshot in the calling thread
 * (so a port in use or a bad TLS file fails start-up with one line in err), then starts one
 * thread each. NULL with the reason in err. Call before the leader's loop runs.
 */
struct workers *workers_start(struct kb_proxy *leader, char *err, size_t errlen);

/* Each worker applies conf (a reference is taken per worker) in its own thread. */
void workers_reload(struct workers *w, struct kb_conf *conf);

/* Each worker stops accepting and drains (drain_timeout_ms bounds it), then its thread ends. */
void workers_drain(struct workers *w);

/* Each worker closes everything now and its thread ends. */
void workers_stop(struct workers *w);

/*
 * Worker threads not yet ended, as the leader has been told; the leader's loop hears of each
 * end and calls proxy_bridge_closed(), so a drain finishes once all loops are done. NULL: 0.
 */
size_t workers_running(const struct workers *w);

/*
 * Balancing: called by loop `from` with a client it just accepted on a listener of cl for
 * node_id. SO_REUSEPORT hashes each new connection to a loop, so a few long-lived Kafka
 * connections often land in one; when another loop has fewer open client connections, the
 * client goes to the loop with the fewest (it owns fd from then on) and this returns true.
 * false: serve it here (no other loop has fewer, draining, or out of memory).
 */
bool workers_handoff(struct workers *ws, struct kb_proxy *from, struct kb_cluster *cl,
                     evutil_socket_t fd, const struct sockaddr *peer, socklen_t peerlen,
                     int32_t node_id);

/* Stops what still runs, waits for every thread and frees them. NULL is fine. */
void workers_free(struct workers *w);

#endif
