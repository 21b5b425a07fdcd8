/*
 * cluster.c - build, start and retire the runtime of one cluster section (see cluster.h).
 */
#include "proxy/cluster.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>

#include "conf/conf.h"
#include "proxy/brokermap.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "tls/tlsctx.h"

static bool
cluster_resolve_listen(struct kb_cluster *cl, char *err, size_t errlen)
{
    struct evutil_addrinfo hints, *ai = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", cl->cc->listen.port);
    rc = evutil_getaddrinfo(cl->cc->listen.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "cluster '%s': cannot resolve listen host '%s': %s", cl->cc->name,
                 cl->cc->listen.host, evutil_gai_strerror(rc));
        return false;
    }
    memcpy(&cl->listen_ss, ai->ai_addr, ai->ai_addrlen);
    cl->listen_sslen = (socklen_t)ai->ai_addrlen;
    evutil_freeaddrinfo(ai);
    return true;
}

struct kb_cluster *
cluster_new(struct kb_proxy *p, struct kb_conf *conf, const struct kb_cluster_conf *cc,
            struct kb_cluster *prev, char *err, size_t errlen)
{
    struct kb_cluster *cl = calloc(1, sizeof(*cl));

    if (!cl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cl->refs = 1;
    cl->live = true;
    cl->proxy = p;
    cl->conf = conf_ref(conf);
    cl->cc = cc;
    cl->metrics = metrics_for(p->registry, cc->name);
    if (!cl->metrics) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cc->tls) {
        cl->ssl_ctx = tlsctx_new(conf, cc, err, errlen);
        if (!cl->ssl_ctx) {
            goto fail;
        }
    }
    if (!cluster_resolve_listen(cl, err, errlen)) {
        goto fail;
    }
    if (prev && brokermap_compatible(prev->map, cc)) {
        cl->map = brokermap_ref(prev->map);
    } else {
        cl->map = brokermap_new(cl);
        if (!cl->map) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    return cl;
fail:
    cl->live = false;
    cluster_unref(cl);
    return NULL;
}

/* Says loudly, at every start and reload, every way this cluster is weaker than the defaults. */
static void
cluster_warn_weakened(struct kb_cluster *cl)
{
    const struct kb_cluster_conf *cc = cl->cc;

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
    if (cl->listen_ss.ss_family == AF_INET6
            ? IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&cl->listen_ss)->sin6_addr)
            : ((struct sockaddr_in *)&cl->listen_ss)->sin_addr.s_addr == htonl(INADDR_ANY)) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: listen = %s is a wildcard: plaintext Kafka is served on every "
              "interface, to anyone who can reach this host",
              cc->listen.host);
    }
}

void
cluster_takeover(struct kb_cluster *cl, struct kb_cluster *prev)
{
    brokermap_adopt(cl->map, cl);
    if (prev && prev->bootstrap && prev->listen_sslen == cl->listen_sslen &&
        memcmp(&prev->listen_ss, &cl->listen_ss, cl->listen_sslen) == 0) {
        cl->bootstrap = prev->bootstrap;
        prev->bootstrap = NULL;
        listener_adopt(cl->bootstrap, cl);
    }
}

bool
cluster_listen(struct kb_cluster *cl, char *err, size_t errlen)
{
    const struct kb_cluster_conf *cc = cl->cc;
    char addr[KB_HOST_MAX + 16], lerr[512];

    if (!cl->bootstrap) {
        cl->bootstrap = listener_new(cl, cc->listen.port, KB_NODE_BOOTSTRAP, lerr, sizeof(lerr));
        if (!cl->bootstrap) {
            snprintf(err, errlen, "cluster '%s': %s", cc->name, lerr);
            return false;
        }
    }
    if (cl->proxy->worker_id != 0) {
        return true; /* the leader says it once for every worker */
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
    return true;
}

void
cluster_retire(struct kb_cluster *cl)
{
    cl->live = false;
    listener_free(cl->bootstrap);
    cl->bootstrap = NULL;
    brokermap_retire(cl->map, cl);
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
    listener_free(cl->bootstrap);
    brokermap_unref(cl->map);
    if (cl->ssl_ctx) {
        SSL_CTX_free(cl->ssl_ctx);
    }
    conf_unref(cl->conf);
    free(cl);
}
