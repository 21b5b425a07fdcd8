/*
 * proxy.h - the daemon's root object: the event loop, the DNS resolver, the current config
 * snapshot, the live clusters, every bridge, the metric registry and the admin endpoint.
 * Everything a callback needs hangs off this struct or a kb_cluster and reaches it through
 * void *arg. Reload (SIGHUP) is build, validate, swap; stop (SIGTERM) is a bounded drain.
 * With workers = N there is one kb_proxy per event loop thread (worker.h); each is used only
 * by its own thread.
 */
#ifndef KB_PROXY_PROXY_H
#define KB_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/metrics.h"

struct admin;
struct bridge;
struct event;
struct event_base;
struct evdns_base;
struct kb_cluster;
struct kb_conf;

struct kb_proxy {
    struct event_base *base;         /* this worker's event loop */
    struct evdns_base *dns;          /* async resolver for upstream names */
    char *path;                      /* config file, read again on SIGHUP */
    struct kb_conf *conf;            /* current snapshot (one reference held) */
    struct kb_cluster **clusters;    /* live clusters, conf->n_clusters entries */
    size_t n_clusters;               /* entries in clusters */
    struct bridge *bridges;          /* every open bridge, of live and retired clusters */
    size_t n_bridges;                /* entries in bridges */
    struct kb_registry *registry;    /* metrics: the leader's own_registry, shared by all */
    struct kb_registry own_registry; /* leader only: the registry itself */
    int worker_id;                   /* 0: the leader (signals, admin, probes); else 1..N-1 */
    bool reuseport;                  /* workers > 1: listeners share their ports (SO_REUSEPORT) */
    struct workers *workers;         /* leader with workers > 1: the other loops; else NULL */
    struct workers *peers;           /* workers > 1: every loop's inbox (not owned); else NULL */
    struct admin *admin;             /* admin HTTP endpoint, NULL when off (leader only) */
    size_t unsettled;                /* leader at start: clusters whose first probe is running */
    bool announced;                  /* leader: "kbridge ready" was logged */
    struct event *ready_timer;       /* leader: bounds the wait for the first probes */
    struct event *sig_term;          /* SIGTERM: drain and stop (leader only) */
    struct event *sig_int;           /* SIGINT: drain and stop (leader only) */
    struct event *sig_hup;           /* SIGHUP: reload (leader only) */
    struct event *drain_timer;       /* bounds the drain; NULL unless draining */
    bool draining;                   /* a stop signal arrived: accept nothing new */
    bool failed;                     /* a worker's loop ended on its own: exit 1 */
};

/* An event loop as kbridge runs them (the epoll changelist on); NULL when out of memory. */
struct event_base *proxy_base_new(void);

/*
 * Builds the proxy for conf (takes a reference), loaded from path: clusters, listeners, the
 * admin endpoint, signal handlers, and with workers = N the other N-1 loops (worker.h).
 * NULL with one line in err (e.g. a port already in use).
 */
struct kb_proxy *proxy_new(const char *path, struct kb_conf *conf, char *err, size_t errlen);

/*
 * Builds worker id (>= 1) of leader from the leader's snapshot: its own loop, resolver and
 * clusters, listening on the same ports; no admin, signals or probes. NULL with err.
 */
struct kb_proxy *proxy_new_worker(struct kb_proxy *leader, int id, char *err, size_t errlen);

/* The live cluster of section name, or NULL. */
struct kb_cluster *proxy_cluster(struct kb_proxy *p, const char *name);

/* Runs the loop until stopped and drained. Returns the process exit code. */
int proxy_run(struct kb_proxy *p);

/* A worker's commands, run in the worker's own thread (worker.c): apply conf, drain, stop. */
void proxy_worker_reload(struct kb_proxy *p, struct kb_conf *conf);
void proxy_start_drain(struct kb_proxy *p);
void proxy_stop_now(struct kb_proxy *p);

/*
 * A cluster's first readiness probe ended: once every cluster's has (or after a bound), the
 * leader logs "kbridge ready", with the broker listeners of every node it learnt already open.
 */
void proxy_cluster_settled(struct kb_proxy *p);

/*
 * Called by a bridge as it closes (and on the leader when a worker thread ends), so a drain
 * can finish when the last connection of every loop is gone.
 */
void proxy_bridge_closed(struct kb_proxy *p);

/* Closes every connection and listener (and, on the leader, the workers) and frees p. */
void proxy_free(struct kb_proxy *p);

#endif
