/*
 * cluster.h - the runtime of one [cluster] section under one config snapshot: its TLS context,
 * resolved listen address, bootstrap listener and broker map. A reload builds new clusters and
 * retires the old ones; a retired cluster lives on (refcounted) until its last bridge closes,
 * so open connections finish on the settings they were accepted under.
 */
#ifndef KB_PROXY_CLUSTER_H
#define KB_PROXY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct brokermap;
struct kb_conf;
struct kb_cluster_conf;
struct kb_metrics;
struct kb_proxy;
struct listener;

struct kb_cluster {
    int refs;                          /* the proxy's while live, plus one per bridge */
    bool live;                         /* serving new connections (not retired) */
    struct kb_proxy *proxy;            /* owner of the event loop and registry */
    struct kb_conf *conf;              /* snapshot this cluster was built from (a reference) */
    const struct kb_cluster_conf *cc;  /* this cluster's section, inside conf */
    SSL_CTX *ssl_ctx;                  /* client TLS context; NULL with tls = off */
    struct sockaddr_storage listen_ss; /* resolved listen address */
    socklen_t listen_sslen;            /* its length */
    struct listener *bootstrap;        /* bootstrap listener; NULL when retired or not bound */
    struct brokermap *map;             /* node id -> upstream + listener (a reference) */
    struct kb_metrics *metrics;        /* counters for this cluster name (owned by registry) */
};

/*
 * Builds the cluster for section cc of conf (takes a conf reference). prev is the live cluster
 * of the same name being replaced, or NULL: its broker map is shared when the listener
 * settings are unchanged. Listens on nothing yet. NULL with one line in err.
 */
struct kb_cluster *cluster_new(struct kb_proxy *p, struct kb_conf *conf,
                               const struct kb_cluster_conf *cc, struct kb_cluster *prev, char *err,
                               size_t errlen);

/*
 * Reload, step 1: takes over what prev (the live cluster of the same name, may be NULL) can
 * hand on: the broker map's listeners when the map is shared, and the bootstrap listener when
 * the listen address is unchanged. Call before retiring prev.
 */
void cluster_takeover(struct kb_cluster *cl, struct kb_cluster *prev);

/*
 * Step 2, after the old clusters are retired: binds the bootstrap listener unless taken over,
 * and logs the cluster's settings (weakened security loudly). false with the reason in err.
 */
bool cluster_listen(struct kb_cluster *cl, char *err, size_t errlen);

/* Stops accepting: closes the bootstrap listener and, unless shared, the broker listeners. */
void cluster_retire(struct kb_cluster *cl);

struct kb_cluster *cluster_ref(struct kb_cluster *cl);
void cluster_unref(struct kb_cluster *cl); /* frees at zero; NULL is fine */

#endif
