/*
 * proxy.c - the root object: start-up from a config snapshot, SIGHUP reload (build every new
 * cluster first; only when all are built, hand listeners over and retire the old clusters),
 * and SIGTERM/SIGINT drain (stop accepting, let in-flight requests finish, then exit).
 */
#include "proxy/proxy.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "aws/provider.h"
#include "conf/conf.h"
#include "proxy/admin.h"
#include "proxy/bridge.h"
#include "proxy/cluster.h"
#include "proxy/log.h"
#include "proxy/loopclock.h"
#include "proxy/settings.h"
#include "proxy/worker.h"

#define KB_READY_WAIT_MS 3000 /* longest start-up waits for the first probes before "ready" */

/* " (worker 2)" for log lines of a worker other than the leader, else "". */
static const char *
proxy_worker_str(const struct kb_proxy *p)
{
    static _Thread_local char buf[24];

    if (p->worker_id == 0) {
        return "";
    }
    snprintf(buf, sizeof(buf), " (worker %d)", p->worker_id);
    return buf;
}

struct kb_cluster *
proxy_cluster(struct kb_proxy *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n_clusters; i++) {
        if (strcmp(p->clusters[i]->name, name) == 0) {
            return p->clusters[i];
        }
    }
    return NULL;
}

/* The section of conf named name, or NULL. */
static const struct kb_cluster_conf *
proxy_section(const struct kb_conf *conf, const char *name)
{
    size_t i;

    for (i = 0; i < conf->n_clusters; i++) {
        if (strcmp(conf->clusters[i].name, name) == 0) {
            return &conf->clusters[i];
        }
    }
    return NULL;
}

/*
 * After a reload: connections whose cluster is gone or now names other brokers finish what is
 * in flight and close, so no request reaches a cluster the configuration no longer names.
 */
static void
proxy_drain_stale(struct kb_proxy *p)
{
    struct bridge *br, *next;

    for (br = p->bridges; br; br = next) {
        next = bridge_next(br);
        if (bridge_is_stale(br)) {
            bridge_drain(br); /* may free br */
        }
    }
}

/*
 * Applies conf: one settings snapshot per section, then the clusters. All or nothing up to the
 * swap: when a snapshot cannot be built (a TLS file) the running clusters are untouched and err
 * says why. Then clusters whose section is gone are retired, the others updated in place, new
 * ones created, and every listener not open yet is bound (after the old ones closed, so ports
 * can move between clusters). A listener that cannot be bound fails start-up, but on reload
 * only costs that cluster its bootstrap listener (/readyz says so).
 */
static bool
proxy_apply(struct kb_proxy *p, struct kb_conf *conf, bool starting, char *err, size_t errlen)
{
    size_t n = conf->n_clusters, i;
    struct kb_settings **sets = calloc(n ? n : 1, sizeof(*sets));
    struct kb_cluster **fresh = calloc(n ? n : 1, sizeof(*fresh));
    bool listening = true, ok = false;
    char lerr[640];

    if (!sets || !fresh) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        sets[i] = settings_new(conf, &conf->clusters[i], err, errlen);
        if (!sets[i]) {
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        if (!proxy_cluster(p, conf->clusters[i].name)) {
            fresh[i] = cluster_new(p, sets[i]); /* takes sets[i], also on failure */
            sets[i] = NULL;
            if (!fresh[i]) {
                snprintf(err, errlen, "out of memory");
                goto done;
            }
        }
    }
    /* Past this point nothing can fail as a whole: swap. */
    for (i = 0; i < p->n_clusters; i++) {
        if (!proxy_section(conf, p->clusters[i]->name)) {
            cluster_retire(p->clusters[i]);
            cluster_unref(p->clusters[i]);
        }
    }
    for (i = 0; i < n; i++) {
        if (!fresh[i]) {
            fresh[i] = proxy_cluster(p, conf->clusters[i].name); /* the proxy's reference moves */
            cluster_update(fresh[i], sets[i]);
            sets[i] = NULL;
        }
    }
    free(p->clusters);
    p->clusters = fresh;
    p->n_clusters = n;
    fresh = NULL;
    conf_unref(p->conf);
    p->conf = conf_ref(conf);
    for (i = 0; i < p->n_clusters; i++) {
        if (!cluster_open(p->clusters[i], lerr, sizeof(lerr))) {
            if (starting) {
                snprintf(err, errlen, "%s", lerr);
                goto done;
            }
            log_error("%s; the cluster's other listeners still serve", lerr);
            listening = false;
        }
    }
    proxy_drain_stale(p);
    if (!listening) {
        log_error("reload applied, but not every listener could be opened");
    }
    ok = true;
done:
    for (i = 0; sets && i < n; i++) {
        settings_unref(sets[i]);
    }
    for (i = 0; fresh && i < n; i++) {
        if (fresh[i] && fresh[i] != proxy_cluster(p, fresh[i]->name)) {
            cluster_retire(fresh[i]);
            cluster_unref(fresh[i]);
        }
    }
    free(sets);
    free(fresh);
    return ok;
}

/*
 * Gives every IAM cluster of conf (fresh from conf_load, not yet shared) its credentials
 * provider, before any worker or connection sees conf: the provider old's same-named section
 * holds when aws_provider_matches() (a reload then keeps the credentials, with no new STS call),
 * else a new one whose thread starts fetching at once. Each snapshot holds one reference,
 * dropped when the snapshot is freed; so a replaced provider lives on while connections pin the
 * older snapshot, and a shared one is never stopped. Called on the leader only: one provider per
 * cluster for all workers. Never a network call. false with the reason in err.
 */
static bool
proxy_attach_aws(struct kb_conf *conf, const struct kb_conf *old, char *err, size_t errlen)
{
    size_t i, j;

    for (i = 0; i < conf->n_clusters; i++) {
        struct kb_cluster_conf *cc = &conf->clusters[i];
        struct aws_provider *prev = NULL;

        if (!KB_SASL_IS_IAM(cc->sasl_mechanism) || cc->aws_provider) {
            continue;
        }
        for (j = 0; old && j < old->n_clusters; j++) {
            if (strcmp(old->clusters[j].name, cc->name) == 0) {
                prev = old->clusters[j].aws_provider;
            }
        }
        if (prev && aws_provider_matches(prev, cc)) {
            cc->aws_provider = aws_provider_ref(prev);
        } else {
            char why[AWS_ERR_MAX];

            if (!(cc->aws_provider = aws_provider_new(cc, why, sizeof(why)))) {
                snprintf(err, errlen, "[%s]: cannot start the AWS credentials provider: %s",
                         cc->name, why);
                return false;
            }
        }
        cc->aws_provider_release = aws_provider_release;
    }
    return true;
}

/* Reads /etc/resolv.conf and /etc/hosts again (reload), so a changed resolver takes effect. */
static void
proxy_reload_dns(struct kb_proxy *p)
{
    evdns_base_clear_nameservers_and_suspend(p->dns);
    if (evdns_base_resolv_conf_parse(p->dns, DNS_OPTIONS_ALL, "/etc/resolv.conf") != 0 &&
        p->worker_id == 0) {
        log_warn("reload: no DNS servers in /etc/resolv.conf; only /etc/hosts names resolve");
    }
    evdns_base_set_option(p->dns, "timeout:", "3");
    evdns_base_set_option(p->dns, "attempts:", "2");
    evdns_base_resume(p->dns);
    evdns_base_clear_host_addresses(p->dns);
    evdns_base_load_hosts(p->dns, NULL);
}

/* Reloads the config file: the new config serves new connections, or the old one stays. */
static void
proxy_reload(struct kb_proxy *p)
{
    char err[KB_CONF_ERR_MAX], why[512];
    struct kb_conf *conf;

    if (p->draining) {
        log_warn("reload ignored: draining");
        return;
    }
    if (p->conf->from_flags) {
        log_warn("reload ignored: the configuration came from command-line flags, not a file; "
                 "restart kbridge with new flags (or use -c FILE) to change it");
        return;
    }
    log_info("reloading %s", p->path);
    conf = conf_load(p->path, err, sizeof(err));
    if (!conf) {
        p->registry->reloads_failed++;
        log_error("reload rejected, keeping the running configuration: %s", err);
        return;
    }
    if (!proxy_attach_aws(conf, p->conf, err, sizeof(err))) {
        p->registry->reloads_failed++;
        log_error("reload rejected, keeping the running configuration: %s", err);
        conf_unref(conf);
        return;
    }
    if (conf_needs_restart(p->conf, conf, why, sizeof(why))) {
        log_warn("reload: %s: that takes effect at the next restart", why);
    }
    proxy_reload_dns(p);
    if (!proxy_apply(p, conf, false, err, sizeof(err))) {
        p->registry->reloads_failed++;
        log_error("reload rejected, keeping the running configuration: %s", err);
        conf_unref(conf);
        return;
    }
    log_init(conf->log_level, conf->log_format);
    workers_reload(p->workers, conf); /* the leader built it, so the workers can too */
    p->registry->reloads_ok++;
    log_info("configuration reloaded: %zu cluster%s; open connections keep their settings",
             p->n_clusters, p->n_clusters == 1 ? "" : "s");
    conf_unref(conf);
}

void
proxy_worker_reload(struct kb_proxy *p, struct kb_conf *conf)
{
    char err[KB_CONF_ERR_MAX];

    if (p->draining) {
        return;
    }
    proxy_reload_dns(p);
    if (!proxy_apply(p, conf, false, err, sizeof(err))) {
        /* The leader applied this snapshot, so only a file changed in between gets here. */
        log_error("worker %d: reload failed, it keeps serving the previous configuration: %s",
                  p->worker_id, err);
    }
}

/* --- stopping ------------------------------------------------------------------------------ */

static void
proxy_on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct kb_proxy *p = arg;

    (void)fd;
    (void)what;
    if (p->n_bridges > 0) {
        log_warn("drain_timeout_ms (%d) reached with %zu connection%s still open%s; closing "
                 "them",
                 p->conf->drain_timeout_ms, p->n_bridges, p->n_bridges == 1 ? "" : "s",
                 proxy_worker_str(p));
    }
    proxy_stop_now(p);
}

void
proxy_stop_now(struct kb_proxy *p)
{
    workers_stop(p->workers);
    event_base_loopexit(p->base, NULL);
}

void
proxy_bridge_closed(struct kb_proxy *p)
{
    if (p->draining && p->n_bridges == 0 && workers_running(p->workers) == 0) {
        log_info("drained: every connection finished%s", proxy_worker_str(p));
        event_base_loopexit(p->base, NULL);
    }
}

void
proxy_start_drain(struct kb_proxy *p)
{
    struct timeval tv;
    struct bridge *br, *next;
    size_t i;

    if (p->draining) {
        return;
    }
    p->draining = true;
    workers_drain(p->workers);
    for (i = 0; i < p->n_clusters; i++) {
        cluster_retire(p->clusters[i]);
    }
    if (p->n_bridges == 0 && workers_running(p->workers) == 0) {
        event_base_loopexit(p->base, NULL);
        return;
    }
    if (p->n_bridges > 0) {
        log_info("draining %zu connection%s%s (up to %d ms)", p->n_bridges,
                 p->n_bridges == 1 ? "" : "s", proxy_worker_str(p), p->conf->drain_timeout_ms);
    }
    tv = metrics_timeval_ms(p->conf->drain_timeout_ms);
    p->drain_timer = evtimer_new(p->base, proxy_on_drain_timeout, p);
    if (p->drain_timer) {
        evtimer_add(p->drain_timer, &tv);
    }
    for (br = p->bridges; br; br = next) {
        next = bridge_next(br);
        bridge_drain(br); /* may free br */
    }
}

static void
proxy_on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct kb_proxy *p = arg;
    const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";

    (void)what;
    if (p->draining) {
        log_warn("received %s again: stopping now", name);
        proxy_stop_now(p);
        return;
    }
    log_info("received %s: no new connections; letting requests in flight finish", name);
    proxy_start_drain(p);
}

static void
proxy_on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    proxy_reload(arg);
}

/* --- life cycle ---------------------------------------------------------------------------- */

/*
 * The event loop. The epoll changelist folds the add/remove pairs a bufferevent makes around
 * every write that completes at once into nothing, instead of two epoll_ctl calls per write.
 */
struct event_base *
proxy_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (!cfg) {
        return NULL;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

/*
 * The part of start-up every worker does: its own loop and resolver, then the clusters of conf
 * with their listeners.
 */
static struct kb_proxy *
proxy_build(const char *path, struct kb_conf *conf, struct kb_proxy *leader, int id, char *err,
            size_t errlen)
{
    struct kb_proxy *p = calloc(1, sizeof(*p));

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->worker_id = id;
    p->reuseport = conf->workers > 1;
    if (leader) {
        p->registry = leader->registry;
    } else {
        p->registry = &p->own_registry;
        metrics_registry_init(p->registry, conf->workers);
    }
    p->conf = conf_ref(conf);
    p->path = strdup(path);
    p->base = proxy_base_new();
    if (!p->path || !p->base) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    p->dns = evdns_base_new(p->base,
                            EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!p->dns) {
        /* No usable /etc/resolv.conf: names from /etc/hosts and IP literals still work. */
        p->dns = evdns_base_new(p->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (id == 0) {
            log_warn("no DNS servers configured (/etc/resolv.conf); only /etc/hosts names "
                     "resolve");
        }
    }
    if (!p->dns) {
        snprintf(err, errlen, "cannot create the DNS resolver");
        goto fail;
    }
    evdns_base_set_option(p->dns, "timeout:", "3");
    evdns_base_set_option(p->dns, "attempts:", "2");
    evdns_base_load_hosts(p->dns, NULL);
    p->unsettled = conf->n_clusters;
    if (!proxy_apply(p, conf, true, err, errlen)) {
        goto fail;
    }
    return p;
fail:
    proxy_free(p);
    return NULL;
}

struct kb_proxy *
proxy_new(const char *path, struct kb_conf *conf, char *err, size_t errlen)
{
    struct kb_proxy *p;

    if (!proxy_attach_aws(conf, NULL, err, errlen)) {
        return NULL;
    }
    p = proxy_build(path, conf, NULL, 0, err, errlen);
    if (!p) {
        return NULL;
    }
    if (conf->has_admin) {
        p->admin = admin_new(p, err, errlen);
        if (!p->admin) {
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
    if (conf->workers > 1) {
        p->workers = workers_start(p, err, errlen);
        if (!p->workers) {
            goto fail;
        }
    }
    return p;
fail:
    proxy_free(p);
    return NULL;
}

struct kb_proxy *
proxy_new_worker(struct kb_proxy *leader, int id, char *err, size_t errlen)
{
    return proxy_build(leader->path, leader->conf, leader, id, err, errlen);
}

static void
proxy_announce_ready(struct kb_proxy *p)
{
    if (p->announced) {
        return;
    }
    p->announced = true;
    log_info("kbridge ready: %zu cluster%s, %d worker%s", p->n_clusters,
             p->n_clusters == 1 ? "" : "s", p->conf->workers, p->conf->workers == 1 ? "" : "s");
}

void
proxy_cluster_settled(struct kb_proxy *p)
{
    if (p->worker_id == 0 && !p->announced && p->unsettled > 0 && --p->unsettled == 0) {
        proxy_announce_ready(p);
    }
}

static void
proxy_on_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    proxy_announce_ready(arg);
}

int
proxy_run(struct kb_proxy *p)
{
    /* Ready once the first probes have learnt the brokers (their listeners are then open for
     * clients that kept metadata across a restart), or after KB_READY_WAIT_MS at the latest. */
    if (p->worker_id == 0 && !p->announced) {
        struct timeval tv = metrics_timeval_ms(KB_READY_WAIT_MS);
        p->ready_timer = evtimer_new(p->base, proxy_on_ready_timeout, p);
        if (!p->ready_timer || evtimer_add(p->ready_timer, &tv) != 0) {
            proxy_announce_ready(p);
        }
    }
    /* One clock read per wakeup for the request latency metric (loopclock.h). */
    if (loopclock_run(p->base) < 0) {
        log_error("event loop failed%s", proxy_worker_str(p));
        return 1;
    }
    return p->failed ? 1 : 0;
}

static void
proxy_free_event(struct event *ev)
{
    if (ev) {
        event_free(ev);
    }
}

void
proxy_free(struct kb_proxy *p)
{
    size_t i;

    if (!p) {
        return;
    }
    workers_free(p->workers); /* first: they share the registry freed below */
    while (p->bridges) {
        bridge_free(p->bridges);
    }
    for (i = 0; i < p->n_clusters; i++) {
        cluster_retire(p->clusters[i]);
        cluster_unref(p->clusters[i]);
    }
    free(p->clusters);
    admin_free(p->admin);
    proxy_free_event(p->sig_term);
    proxy_free_event(p->sig_int);
    proxy_free_event(p->sig_hup);
    proxy_free_event(p->drain_timer);
    proxy_free_event(p->ready_timer);
    if (p->dns) {
        evdns_base_free(p->dns, 0);
    }
    if (p->base) {
        event_base_free(p->base);
    }
    if (p->registry == &p->own_registry) {
        metrics_registry_free(&p->own_registry);
    }
    conf_unref(p->conf);
    free(p->path);
    free(p);
}
