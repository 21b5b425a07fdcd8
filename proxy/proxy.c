/*
 * proxy.c - build the runtime from a config snapshot (TLS context, listen address and
 * bootstrap listener per cluster), run the loop, and tear everything down on a stop signal.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "conf/conf.h"
#include "proxy/bridge.h"
#include "proxy/brokermap.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "tls/tlsctx.h"

/* Says loudly, once per start, every way this config is weaker than the defaults. */
static void
proxy_warn_weakened(const struct kb_cluster_conf *cc)
{
    if (!cc->tls) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: tls = off: traffic to the brokers is NOT encrypted (testing only)");
        return;
    }
    if (cc->tls_verify == KB_VERIFY_NONE) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: tls_verify = none: broker certificates are NOT verified; anyone on the "
              "path can impersonate the brokers");
    } else if (cc->tls_verify == KB_VERIFY_CHAIN) {
        cllog(KB_LOG_WARN, cc->name,
              "SECURITY: tls_verify = chain: broker host names are NOT verified");
    }
}

static bool
proxy_resolve_listen(struct kb_cluster *cl, char *err, size_t errlen)
{
    struct evutil_addrinfo hints, *ai = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
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

static bool
proxy_cluster_start(struct kb_proxy *p, struct kb_cluster *cl, const struct kb_cluster_conf *cc,
                    char *err, size_t errlen)
{
    char lerr[512], addr[KB_HOST_MAX + 16];

    cl->proxy = p;
    cl->cc = cc;
    if (cc->tls) {
        cl->ssl_ctx = tlsctx_new(p->conf, cc, err, errlen);
        if (!cl->ssl_ctx) {
            return false;
        }
    }
    if (!proxy_resolve_listen(cl, err, errlen)) {
        return false;
    }
    cl->map = brokermap_new(cl);
    if (!cl->map) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    cl->bootstrap = listener_new(cl, cc->listen.port, KB_NODE_BOOTSTRAP, lerr, sizeof(lerr));
    if (!cl->bootstrap) {
        snprintf(err, errlen, "cluster '%s': %s", cc->name, lerr);
        return false;
    }
    proxy_warn_weakened(cc);
    cllog(KB_LOG_INFO, cc->name,
          "listening on %s (bootstrap, %zu server%s, first %s:%u); brokers at %s:%d+id; "
          "tls %s, verify %s, trust store %s",
          conf_hostport_str(&cc->listen, addr, sizeof(addr)), cc->n_bootstrap,
          cc->n_bootstrap == 1 ? "" : "s", cc->bootstrap[0].host, cc->bootstrap[0].port,
          cc->advertised_host, cc->broker_port_base, cc->tls ? "on" : "OFF",
          cc->tls ? conf_tls_verify_str(cc->tls_verify) : "-",
          cc->tls ? tlsctx_trust_store_name(cc) : "-");
    return true;
}

static void
proxy_on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct kb_proxy *p = arg;

    (void)what;
    log_info("received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    p->stopping = true;
    event_base_loopexit(p->base, NULL);
}

static void
proxy_on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_warn("received SIGHUP: configuration reload is not implemented yet; keeping the "
             "current configuration");
}

struct kb_proxy *
proxy_new(struct kb_conf *conf, char *err, size_t errlen)
{
    struct kb_proxy *p = calloc(1, sizeof(*p));
    size_t i;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->conf = conf_ref(conf);
    p->base = event_base_new();
    if (!p->base) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                         EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!p->dns) {
        /* No usable /etc/resolv.conf: names from /etc/hosts and IP literals still work. */
        p->dns = evdns_base_new(p->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        log_warn("no DNS servers configured (/etc/resolv.conf); only /etc/hosts names resolve");
    }
    if (!p->dns) {
        snprintf(err, errlen, "cannot create the DNS resolver");
        goto fail;
    }
    evdns_base_set_option(p->dns, "timeout:", "3");
    evdns_base_set_option(p->dns, "attempts:", "2");
    evdns_base_load_hosts(p->dns, NULL);
    p->clusters = calloc(conf->n_clusters, sizeof(*p->clusters));
    if (!p->clusters) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    p->n_clusters = conf->n_clusters;
    for (i = 0; i < conf->n_clusters; i++) {
        if (!proxy_cluster_start(p, &p->clusters[i], &conf->clusters[i], err, errlen)) {
            goto fail;
        }
    }
    p->sig_term = evsignal_new(p->base, SIGTERM, proxy_on_stop, p);
    p->sig_int = evsignal_new(p->base, SIGINT, proxy_on_stop, p);
    p->sig_hup = evsignal_new(p->base, SIGHUP, proxy_on_hup, p);
    if (!p->sig_term || !p->sig_int || !p->sig_hup || evsignal_add(p->sig_term, NULL) ||
        evsignal_add(p->sig_int, NULL) || evsignal_add(p->sig_hup, NULL)) {
        snprintf(err, errlen, "cannot install signal handlers");
        goto fail;
    }
    return p;
fail:
    proxy_free(p);
    return NULL;
}

int
proxy_run(struct kb_proxy *p)
{
    log_info("kbridge ready: %zu cluster%s", p->n_clusters, p->n_clusters == 1 ? "" : "s");
    if (event_base_dispatch(p->base) < 0) {
        log_error("event loop failed");
        return 1;
    }
    return 0;
}

void
proxy_free(struct kb_proxy *p)
{
    size_t i;

    if (!p) {
        return;
    }
    for (i = 0; i < p->n_clusters; i++) {
        struct kb_cluster *cl = &p->clusters[i];
        while (cl->bridges) {
            bridge_free(cl->bridges);
        }
        listener_free(cl->bootstrap);
        brokermap_free(cl->map);
        if (cl->ssl_ctx) {
            SSL_CTX_free(cl->ssl_ctx);
        }
    }
    free(p->clusters);
    if (p->sig_term) {
        event_free(p->sig_term);
    }
    if (p->sig_int) {
        event_free(p->sig_int);
    }
    if (p->sig_hup) {
        event_free(p->sig_hup);
    }
    if (p->dns) {
        evdns_base_free(p->dns, 0);
    }
    if (p->base) {
        event_base_free(p->base);
    }
    conf_unref(p->conf);
    free(p);
}
