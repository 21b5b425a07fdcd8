/*
 * cluster.h - the long-lived runtime of one [cluster] section, by name: its bootstrap listener,
 * broker map (with the broker listeners), metrics and readiness probe, and a pointer to its
 * current settings snapshot (settings.h). It lives from the first configuration that names the
 * section to the reload that drops it and the close of its last connection; a reload that keeps
 * the section updates it in place. Bridges pin the settings they were accepted under and hold a
 * reference on the cluster, never the other way round.
 */
#ifndef KB_PROXY_CLUSTER_H
#define KB_PROXY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct brokermap;
struct kb_metrics;
struct kb_proxy;
struct kb_settings;
struct listener;
struct probe;

struct kb_cluster {
    int refs;                   /* the proxy's while live, plus one per bridge */
    bool live;                  /* its section is in the current configuration */
    char *name;                 /* section name (owned) */
    struct kb_proxy *proxy;     /* owner of the event loop and registry */
    struct kb_settings *cur;    /* current settings: new connections pin these (a reference) */
    struct listener *bootstrap; /* bootstrap listener; NULL when retired or it could not bind */
    char listen_error[512];     /* why the bootstrap listener is not open; "" when it is */
    struct brokermap *map;      /* node id -> upstream + broker listener (owned) */
    struct kb_metrics *metrics; /* counters for this cluster name (owned by the registry) */
    struct probe *probe;        /* readiness probe (owned); NULL when retired or stopped */
    int auth_failures;          /* SASL authentications refused in a row */
    double auth_retry_at;       /* monotonic time before which no new broker connection is
                                   made after a refused authentication (back-off) */
};

/*
 * A new live cluster serving set (takes the reference): no listener bound yet (cluster_open).
 * NULL when out of memory (set is released).
 */
struct kb_cluster *cluster_new(struct kb_proxy *p, struct kb_settings *set);

/*
 * Reload, step 1, for a cluster whose section is still configured: makes set (takes the
 * reference) the current settings. When set names other brokers than the current settings
 * (settings_same_upstream), every learnt broker address is forgotten and the upstream epoch
 * moves on, so connections accepted before can be told apart (cluster_is_stale_for). When the
 * listen address or the broker ports change, the listeners concerned are closed here; step 2
 * (cluster_open) opens them at their new place. Never fails.
 */
void cluster_update(struct kb_cluster *cl, struct kb_settings *set);

/*
 * Step 2 (and start-up): binds whatever listener is not open yet (the bootstrap listener, the
 * broker listeners of known nodes), starts the readiness probe, and logs the cluster's settings
 * (weakened security loudly). false when the bootstrap listener cannot be bound, with the reason
 * in err and in cl->listen_error (/readyz reports it); the cluster stays live either way.
 */
bool cluster_open(struct kb_cluster *cl, char *err, size_t errlen);

/* The section is gone (reload) or kbridge stops: closes every listener, stops the probe. */
void cluster_retire(struct kb_cluster *cl);

/* Stops the readiness probe (drain) without closing listeners. */
void cluster_stop_probe(struct kb_cluster *cl);

/*
 * True when a connection accepted under set should no longer send requests: the cluster was
 * retired, or its section now names other brokers (a reload changed the upstream epoch).
 */
bool cluster_is_stale_for(const struct kb_cluster *cl, const struct kb_settings *set);

/* The readiness probe finished its first round (ok or not): start-up can report ready. */
void cluster_probe_settled(struct kb_cluster *cl);

/*
 * Records the outcome of a SASL authentication with one of cl's brokers. A refusal backs off
 * new broker connections (1 s, doubling, at most KB_AUTH_BACKOFF_MAX_S) so kbridge does not
 * hammer a broker with credentials it refuses, and makes the cluster not ready at once; a
 * success ends the back-off. A reload of the section ends it too.
 */
void cluster_auth_result(struct kb_cluster *cl, bool ok);

#define KB_AUTH_BACKOFF_MAX_S 60

/* Seconds left of the authentication back-off; 0 when a connection may be tried. */
double cluster_auth_wait(const struct kb_cluster *cl);

struct kb_cluster *cluster_ref(struct kb_cluster *cl);
void cluster_unref(struct kb_cluster *cl); /* frees at zero; NULL is fine */

#endif
