/*
 * proxy.h - the daemon's root object: the event loop, the DNS resolver, the current config
 * snapshot, the live clusters, every bridge, the metric registry and the admin endpoint.
 * Everything a callback needs hangs off this struct or a kb_cluster and reaches it through
 * void *arg. Reload (SIGHUP) is build, validate, swap; stop (SIGTERM) is a bounded drain.
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
struct evbuffer;
struct evdns_base;
struct kb_cluster;
struct kb_conf;
struct probe;

struct kb_proxy {
    struct event_base *base;      /* the one event loop */
    struct evdns_base *dns;       /* async resolver for upstream names */
    char *path;                   /* config file, read again on SIGHUP */
    struct kb_conf *conf;         /* current snapshot (one reference held) */
    struct kb_cluster **clusters; /* live clusters, conf->n_clusters entries */
    size_t n_clusters;            /* entries in clusters */
    struct evbuffer *stage;       /* bridges' request staging buffer, empty between calls */
    struct bridge *bridges;       /* every open bridge, of live and retired clusters */
    size_t n_bridges;             /* entries in bridges */
    struct kb_registry registry;  /* metrics */
    struct admin *admin;          /* admin HTTP endpoint, NULL when off */
    struct probe **probes;        /* one readiness probe per live cluster */
    struct event *sig_term;       /* SIGTERM: drain and stop */
    struct event *sig_int;        /* SIGINT: drain and stop */
    struct event *sig_hup;        /* SIGHUP: reload */
    struct event *drain_timer;    /* bounds the drain; NULL unless draining */
    uint64_t next_conn_id;        /* connection ids for log lines, from 1 */
    bool draining;                /* a stop signal arrived: accept nothing new */
};

/*
 * Builds the proxy for conf (takes a reference), loaded from path: clusters, listeners, the
 * admin endpoint, signal handlers. NULL with one line in err (e.g. a port already in use).
 */
struct kb_proxy *proxy_new(const char *path, struct kb_conf *conf, char *err, size_t errlen);

/* Runs the loop until stopped and drained. Returns the process exit code. */
int proxy_run(struct kb_proxy *p);

/* Called by a bridge as it closes, so a drain can finish when the last one is gone. */
void proxy_bridge_closed(struct kb_proxy *p);

/* Closes every connection and listener and frees p. NULL is fine. */
void proxy_free(struct kb_proxy *p);

#endif
