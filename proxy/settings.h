/*
 * settings.h - an immutable snapshot of one cluster section as one configuration generation has
 * it: the section (inside its refcounted kb_conf), the TLS context built from it, and which
 * brokers it reaches (its upstream epoch). A reload builds new snapshots; every connection pins
 * the snapshot it was accepted under, so it finishes on those settings (pgbouncer's split of
 * config from pool: the cluster object in cluster.h is the long-lived pool).
 */
#ifndef KB_PROXY_SETTINGS_H
#define KB_PROXY_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct kb_conf;
struct kb_cluster_conf;

struct kb_settings {
    int refs;                          /* the cluster's while current, one per bridge or probe;
                                          taken and dropped on the owning event-loop thread */
    struct kb_conf *conf;              /* the configuration generation (a reference) */
    const struct kb_cluster_conf *cc;  /* this section, inside conf */
    SSL_CTX *ssl_ctx;                  /* client TLS context; NULL with tls = off */
    struct sockaddr_storage listen_ss; /* the listen host, resolved (its first address) */
    socklen_t listen_sslen;            /* its length */
    uint64_t upstream_epoch;           /* changes when the section names other brokers */
};

/*
 * Builds the snapshot of section cc of conf (takes a conf reference), resolves the listen host
 * and builds the SSL_CTX. refs = 1, upstream_epoch 0 (the cluster sets it). NULL with one line in
 * err (a TLS file problem names its FILE:LINE).
 */
struct kb_settings *settings_new(struct kb_conf *conf, const struct kb_cluster_conf *cc, char *err,
                                 size_t errlen);

struct kb_settings *settings_ref(struct kb_settings *s); /* returns s */
void settings_unref(struct kb_settings *s);              /* frees at zero; NULL is fine */

/*
 * True when a and b reach the same brokers the same way: bootstrap_servers (as a set),
 * connect_to, tls on/off and tls_sni. When they differ, data a connection made under a would
 * send no longer goes where the configuration says.
 */
bool settings_same_upstream(const struct kb_cluster_conf *a, const struct kb_cluster_conf *b);

/*
 * True when a and b serve brokers on the same local ports: listen host, advertised_host,
 * broker_port_base and max_node_id.
 */
bool settings_same_broker_ports(const struct kb_cluster_conf *a, const struct kb_cluster_conf *b);

#endif
