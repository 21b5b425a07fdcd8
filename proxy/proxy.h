/*
 * proxy.h - the daemon's root object: the event loop, the DNS resolver, the config snapshot
 * and one kb_cluster per configured cluster (its TLS context, listeners and broker map).
 * Everything a callback needs hangs off these two structs and reaches it through void *arg.
 */
#ifndef KB_PROXY_PROXY_H
#define KB_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct bridge;
struct brokermap;
struct event;
struct event_base;
struct evdns_base;
struct kb_conf;
struct kb_cluster_conf;
struct listener;
struct kb_proxy;

/* Runtime state of one [cluster] section. */
struct kb_cluster {
    struct kb_proxy *proxy;            /* owner */
    const struct kb_cluster_conf *cc;  /* settings, inside proxy->conf */
    SSL_CTX *ssl_ctx;                  /* client TLS context; NULL with tls = off */
    struct sockaddr_storage listen_ss; /* resolved listen address (port: bootstrap listener) */
    socklen_t listen_sslen;            /* its length */
    struct listener *bootstrap;        /* the cluster's bootstrap listener */
    struct brokermap *map;             /* node id -> upstream address and local listener */
    struct bridge *bridges;            /* live bridges of this cluster (doubly linked) */
    unsigned conns_active;             /* bridges alive now */
    uint64_t conns_total;              /* bridges ever accepted */
};

struct kb_proxy {
    struct event_base *base;           /* the one event loop */
    struct evdns_base *dns;            /* async resolver for upstream names */
    struct kb_conf *conf;              /* current config snapshot (one reference held) */
    struct kb_cluster *clusters;       /* conf->n_clusters entries */
    size_t n_clusters;                 /* entries in clusters */
    struct event *sig_term;            /* SIGTERM: stop */
    struct event *sig_int;             /* SIGINT: stop */
    struct event *sig_hup;             /* SIGHUP: reload (not yet implemented) */
    uint64_t next_conn_id;             /* connection ids for log lines, from 1 */
    bool stopping;                     /* a stop signal arrived */
};

/*
 * Builds the proxy for conf (takes a reference): TLS contexts, bootstrap listeners, signal
 * handlers. On failure returns NULL with one line in err (e.g. a port already in use).
 */
struct kb_proxy *proxy_new(struct kb_conf *conf, char *err, size_t errlen);

/* Runs the loop until a stop signal. Returns the process exit code. */
int proxy_run(struct kb_proxy *p);

/* Closes every connection and listener and frees p. NULL is fine. */
void proxy_free(struct kb_proxy *p);

#endif
