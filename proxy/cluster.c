/*
 * cluster.c - the long-lived cluster object: create, update in place on reload, open its
 * listeners, retire (see cluster.h).
 */
#include "proxy/cluster.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "proxy/brokermap.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/probe.h"
#include "proxy/proxy.h"
#include "proxy/settings.h"
#include "tls/tlsctx.h"

struct kb_cluster *
cluster_new(struct kb_proxy *p, struct kb_settings *set)
{
    struct kb_cluster *cl = calloc(1, sizeof(*cl));

    if (!cl) {
        settings_unref(set);
        return NULL;
    }
    cl->refs = 1;
    cl->live = true;
    cl->proxy = p;
    cl->cur = set;
    set->upstream_epoch = 1;
    cl->name = strdup(set->cc->name);
    cl->metrics = metrics_for(p->registry, set->cc->name);
    cl->map = cl->name ? brokermap_new(cl) : NULL;
    if (!cl->name || !cl->metrics || !cl->map) {
        cl->live = false;
        cluster_unref(cl);
        return NULL;
    }
    return cl;
}

static bool
cluster_same_listen(const struct kb_settings *a, const struct kb_settings *b)
{
    return a->listen_sslen == b->listen_sslen &&
           memcmp(&a->listen_ss, &b->listen_ss, a->listen_sslen) == 0;
}

void
cluster_update(struct kb_cluster *cl, struct kb_settings *set)
{
    struct kb_settings *old = cl->cur;
    bool same_upstream = settings_same_upstream(old->cc, set->cc);

    cluster_stop_probe(cl); /* cluster_open starts one on the new settings */
    cl->auth_failures = 0;  /* perhaps new credentials: try at once */
    cl->auth_retry_at = 0;
    if (!cluster_same_listen(old, set)) {
        listener_free(cl->bootstrap);
        cl->bootstrap = NULL;
    }
    set->upstream_epoch = same_upstream ? old->upstream_epoch : old->upstream_epoch + 1;
    cl->cur = set;
    if (!same_upstream) {
        /* The brokers learnt so far belong to the cluster the section named before. */
        brokermap_forget(cl->map);
        cl->metrics->last_ready = 0;
        metrics_set_error(cl->metrics, "%s", "");
        if (cl->proxy->worker_id == 0) {
            cllog(KB_LOG_WARN, cl->name,
                  "reload: the section now names other brokers (bootstrap_servers, connect_to, "
                  "tls or tls_sni changed): connections made before are closed once their "
                  "requests in flight are answered, and clients reconnect to the new brokers");
        }
    } else if (!settings_same_broker_ports(old->cc, set->cc)) {
        brokermap_move(cl->map);
    }
    settings_unref(old);
}

/* Says loudly, at every start and reload, every way this cluster is weaker than the defaults. */
static void
cluster_warn_weakened(struct kb_cluster *cl)
{
    const struct kb_cluster_conf *cc = cl->cur->cc;
    char warn[512];

    if (conf_cluster_warning(cc, warn, sizeof(warn))) {
        cllog(KB_LOG_WARN, cc->name, "%s", warn);
    }
    cl->metrics->weakened = !cc->tls || cc->tls_verify != KB_VERIFY_FULL;
    if (!cc->tls) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: tls = off: traffic to the brokers is NOT encrypted (testing only)");
    } else if (cc->tls_verify == KB_VERIFY_NONE) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: tls_verify = none: broker certificates are NOT verified; anyone on the "
              "path can impersonate the brokers");
    } else if (cc->tls_verify == KB_VERIFY_CHAIN) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: tls_verify = chain: broker host names are NOT verified");
    }
    if (cl->cur->listen_ss.ss_family == AF_INET6
            ? IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&cl->cur->listen_ss)->sin6_addr)
            : ((struct sockaddr_in *)&cl->cur->listen_ss)->sin_addr.s_addr == htonl(INADDR_ANY)) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: listen = %s is a wildcard: plaintext Kafka is served on every "
              "interface, to anyone who can reach this host",
              cc->listen.host);
    }
}

bool
cluster_open(struct kb_cluster *cl, char *err, size_t errlen)
{
    const struct kb_cluster_conf *cc = cl->cur->cc;
    char addr[KB_HOST_MAX + 16];
    bool ok = true;

    if (!cl->bootstrap) {
        cl->bootstrap = listener_new(cl, cc->listen.port, KB_NODE_BOOTSTRAP, cl->listen_error,
                                     sizeof(cl->listen_error));
        if (!cl->bootstrap) {
            snprintf(err, errlen, "cluster '%s': %s", cc->name, cl->listen_error);
            ok = false;
        }
    }
    if (cl->bootstrap) {
        cl->listen_error[0] = '\0';
    }
    brokermap_open_listeners(cl->map);
    if (!cl->probe) {
        cl->probe = probe_new(cl);
    }
    if (cl->proxy->worker_id != 0) {
        return ok; /* the leader says it once for every worker */
    }
    cluster_warn_weakened(cl);
    cllog(KB_LOG_INFO, cc->name,
          "listening on %s (bootstrap: %zu server%s, first %s:%u); broker N at %s:%d+N; "
          "tls %s, verify %s, trust store %s",
          conf_hostport_str(&cc->listen, addr, sizeof(addr)), cc->n_bootstrap,
          cc->n_bootstrap == 1 ? "" : "s", cc->bootstrap[0].host, cc->bootstrap[0].port,
          cc->advertised_host, cc->broker_port_base, cc->tls ? "on" : "OFF",
          cc->tls ? conf_tls_verify_str(cc->tls_verify) : "-",
          cc->tls ? tlsctx_trust_store_name(cc) : "-");
    return ok;
}

void
cluster_stop_probe(struct kb_cluster *cl)
{
    probe_free(cl->probe);
    cl->probe = NULL;
}

void
cluster_retire(struct kb_cluster *cl)
{
    cl->live = false;
    cluster_stop_probe(cl);
    listener_free(cl->bootstrap);
    cl->bootstrap = NULL;
    brokermap_close_listeners(cl->map);
}

bool
cluster_is_stale_for(const struct kb_cluster *cl, const struct kb_settings *set)
{
    return !cl->live || set->upstream_epoch != cl->cur->upstream_epoch;
}

void
cluster_probe_settled(struct kb_cluster *cl)
{
    proxy_cluster_settled(cl->proxy);
}

void
cluster_auth_result(struct kb_cluster *cl, bool ok)
{
    double wait;
    int n;

    if (ok) {
        cl->auth_failures = 0;
        cl->auth_retry_at = 0;
        return;
    }
    n = ++cl->auth_failures;
    wait = n > 7 ? KB_AUTH_BACKOFF_MAX_S : (double)(1 << (n - 1));
    if (wait > KB_AUTH_BACKOFF_MAX_S) {
        wait = KB_AUTH_BACKOFF_MAX_S;
    }
    cl->auth_retry_at = metrics_now() + wait;
    cl->metrics->last_ready = 0; /* refused credentials do not fix themselves */
}

double
cluster_auth_wait(const struct kb_cluster *cl)
{
    double left = cl->auth_retry_at - metrics_now();

    return left > 0 ? left : 0;
}

struct kb_cluster *
cluster_ref(struct kb_cluster *cl)
{
    cl->refs++;
    return cl;
}

void
cluster_unref(struct kb_cluster *cl)
{
    if (!cl || --cl->refs > 0) {
        return;
    }
    cluster_stop_probe(cl);
    listener_free(cl->bootstrap);
    brokermap_free(cl->map);
    settings_unref(cl->cur);
    free(cl->name);
    free(cl);
}
