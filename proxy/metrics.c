/*
 * metrics.c - the metric registry and its Prometheus text rendering. Every metric is
 * documented in README.md ("Metrics"); keep the two in step.
 */
#include "proxy/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "kp_api.h"
#include "proxy/listener.h"

static const double hist_bounds[KB_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
};

static const char *const fail_names[KB_FAIL_N] = {
    "dns",          "refused",     "timeout", "unreachable",  "connect",   "tls_untrusted",
    "tls_hostname", "tls_expired", "not_tls", "tls_protocol", "tls_other", "auth",
};

double
metrics_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timeval
metrics_timeval_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    return tv;
}

void
metrics_registry_init(struct kb_registry *r, int n_workers)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->started = metrics_now();
    r->n_workers = n_workers;
}

void
metrics_registry_free(struct kb_registry *r)
{
    struct kb_metrics *m, *next;
    size_t i;

    for (m = r->clusters; m; m = next) {
        next = m->next;
        for (i = 0; i < m->n_brokers; i++) {
            free(m->brokers[i]);
        }
        pthread_mutex_destroy(&m->lock);
        free(m->cluster);
        free(m->brokers);
        free(m);
    }
    r->clusters = NULL;
    pthread_mutex_destroy(&r->lock);
}

struct kb_metrics *
metrics_for(struct kb_registry *r, const char *name)
{
    struct kb_metrics *m, **tail = &r->clusters;

    pthread_mutex_lock(&r->lock);
    for (m = r->clusters; m; m = m->next) {
        if (strcmp(m->cluster, name) == 0) {
            pthread_mutex_unlock(&r->lock);
            return m;
        }
        tail = &m->next;
    }
    m = calloc(1, sizeof(*m));
    if (!m || !(m->cluster = strdup(name))) {
        free(m);
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    *tail = m; /* keep file order in the output */
    pthread_mutex_unlock(&r->lock);
    return m;
}

struct kb_broker_metrics *
metrics_broker(struct kb_metrics *m, int32_t node_id)
{
    size_t idx = node_id == KB_NODE_BOOTSTRAP ? 0 : (size_t)node_id + 1;
    static struct kb_broker_metrics sink; /* absorbs counts when growing fails */
    struct kb_broker_metrics *b = &sink;

    pthread_mutex_lock(&m->lock);
    if (idx >= m->n_brokers) {
        size_t n = idx + 8;
        struct kb_broker_metrics **grown = realloc(m->brokers, n * sizeof(*grown));
        if (grown) {
            memset(grown + m->n_brokers, 0, (n - m->n_brokers) * sizeof(*grown));
            m->brokers = grown;
            m->n_brokers = n;
        }
    }
    if (idx < m->n_brokers) {
        if (!m->brokers[idx]) {
            m->brokers[idx] = calloc(1, sizeof(**m->brokers));
        }
        if (m->brokers[idx]) {
            b = m->brokers[idx];
        }
    }
    pthread_mutex_unlock(&m->lock);
    return b;
}

void
metrics_set_error(struct kb_metrics *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pthread_mutex_lock(&m->lock);
    vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
}

void
metrics_get_error(struct kb_metrics *m, char *out, size_t outlen)
{
    pthread_mutex_lock(&m->lock);
    snprintf(out, outlen, "%s", m->last_error);
    pthread_mutex_unlock(&m->lock);
}

static size_t
api_slot(int16_t api_key)
{
    return api_key >= 0 && api_key < KB_METRICS_APIS ? (size_t)api_key : KB_METRICS_APIS;
}

void
metrics_count_request(struct kb_metrics *m, int16_t api_key)
{
    m->requests[api_slot(api_key)]++;
}

void
metrics_count_rewrite(struct kb_metrics *m, int16_t api_key, unsigned addresses)
{
    m->rewritten[api_slot(api_key)]++;
    m->addresses_rewritten += addresses;
}

void
metrics_observe(struct kb_histogram *h, double seconds)
{
    double old;
    size_t i;

    /* One atomic add in the first bucket that holds it; rendering makes them cumulative. */
    for (i = 0; i < KB_HIST_BUCKETS; i++) {
        if (seconds <= hist_bounds[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    /* A CAS loop: `+=` on an _Atomic double would need libatomic's floating-point support. */
    old = atomic_load_explicit(&h->sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum, &old, old + seconds,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* --- rendering ----------------------------------------------------------------------------- */

static void
help(struct evbuffer *out, const char *name, const char *type, const char *text)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void
render_hist(struct evbuffer *out, const char *name, const char *cluster,
            const struct kb_histogram *h)
{
    uint64_t cumulative = 0, count;
    size_t i;

    for (i = 0; i < KB_HIST_BUCKETS; i++) {
        cumulative += h->buckets[i];
        evbuffer_add_printf(out, "%s_bucket{cluster=\"%s\",le=\"%g\"} %llu\n", name, cluster,
                            hist_bounds[i], (unsigned long long)cumulative);
    }
    /* Read after the buckets; another worker may be between its two adds, so never less. */
    count = h->count;
    count = count < cumulative ? cumulative : count;
    evbuffer_add_printf(out, "%s_bucket{cluster=\"%s\",le=\"+Inf\"} %llu\n", name, cluster,
                        (unsigned long long)count);
    evbuffer_add_printf(out, "%s_sum{cluster=\"%s\"} %.6f\n", name, cluster, (double)h->sum);
    evbuffer_add_printf(out, "%s_count{cluster=\"%s\"} %llu\n", name, cluster,
                        (unsigned long long)count);
}

/* One counter or gauge line per cluster; expr reads the cluster's metrics through m_. */
#define RENDER_SIMPLE(out, r, name, type, text, fmt, expr)                                         \
    do {                                                                                           \
        const struct kb_metrics *m_;                                                               \
        help(out, name, type, text);                                                               \
        for (m_ = (r)->clusters; m_; m_ = m_->next) {                                              \
            evbuffer_add_printf(out, name "{cluster=\"%s\"} " fmt "\n", m_->cluster, (expr));      \
        }                                                                                          \
    } while (0)

static void
render_by_api(struct evbuffer *out, const struct kb_registry *r, const char *name, const char *text,
              size_t field_offset)
{
    const struct kb_metrics *m;
    size_t i;

    help(out, name, "counter", text);
    for (m = r->clusters; m; m = m->next) {
        const kb_counter *v = (const kb_counter *)((const char *)m + field_offset);
        for (i = 0; i <= KB_METRICS_APIS; i++) {
            if (v[i]) {
                evbuffer_add_printf(out, "%s{cluster=\"%s\",api=\"%s\"} %llu\n", name, m->cluster,
                                    i < KB_METRICS_APIS ? kp_api_name((int16_t)i) : "other",
                                    (unsigned long long)v[i]);
            }
        }
    }
}

static void
render_brokers(struct evbuffer *out, const struct kb_registry *r, const char *name,
               const char *type, const char *text, bool active)
{
    struct kb_metrics *m;
    size_t i;

    help(out, name, type, text);
    for (m = r->clusters; m; m = m->next) {
        pthread_mutex_lock(&m->lock);
        for (i = 0; i < m->n_brokers; i++) {
            const struct kb_broker_metrics *b = m->brokers[i];
            char broker[24];
            if (!b || (!b->total && !b->active)) {
                continue;
            }
            if (i == 0) {
                strcpy(broker, "bootstrap");
            } else {
                snprintf(broker, sizeof(broker), "%zu", i - 1);
            }
            evbuffer_add_printf(out, "%s{cluster=\"%s\",broker=\"%s\"} %llu\n", name, m->cluster,
                                broker,
                                (unsigned long long)(active ? (uint64_t)b->active : b->total));
        }
        pthread_mutex_unlock(&m->lock);
    }
}

static void
metrics_render_locked(struct kb_registry *r, struct evbuffer *out)
{
    const struct kb_metrics *m;
    size_t i;

    help(out, "kbridge_up", "gauge", "1 while the process serves.");
    evbuffer_add_printf(out, "kbridge_up 1\n");
    help(out, "kbridge_uptime_seconds", "gauge", "Seconds since start.");
    evbuffer_add_printf(out, "kbridge_uptime_seconds %.3f\n", metrics_now() - r->started);
    help(out, "kbridge_config_reloads_total", "counter", "SIGHUP reloads by result.");
    evbuffer_add_printf(out, "kbridge_config_reloads_total{result=\"ok\"} %llu\n",
                        (unsigned long long)r->reloads_ok);
    evbuffer_add_printf(out, "kbridge_config_reloads_total{result=\"failed\"} %llu\n",
                        (unsigned long long)r->reloads_failed);

    RENDER_SIMPLE(out, r, "kbridge_client_connections_active", "gauge",
                  "Client connections open now.", "%lld", (long long)m_->clients_active);
    RENDER_SIMPLE(out, r, "kbridge_client_connections_total", "counter",
                  "Client connections accepted.", "%llu", (unsigned long long)m_->clients_total);
    RENDER_SIMPLE(out, r, "kbridge_client_connections_rejected_total", "counter",
                  "Client connections refused because max_connections was reached.", "%llu",
                  (unsigned long long)m_->clients_rejected);
    render_brokers(out, r, "kbridge_upstream_connections_active", "gauge",
                   "Upstream (TLS) connections open now, by broker.", true);
    render_brokers(out, r, "kbridge_upstream_connections_total", "counter",
                   "Upstream (TLS) connections established, by broker.", false);
    help(out, "kbridge_bytes_total", "counter", "Bytes relayed; up = client to broker.");
    for (m = r->clusters; m; m = m->next) {
        evbuffer_add_printf(out, "kbridge_bytes_total{cluster=\"%s\",direction=\"up\"} %llu\n",
                            m->cluster, (unsigned long long)m->bytes_up);
        evbuffer_add_printf(out, "kbridge_bytes_total{cluster=\"%s\",direction=\"down\"} %llu\n",
                            m->cluster, (unsigned long long)m->bytes_down);
    }
    render_by_api(out, r, "kbridge_requests_total", "Requests forwarded, by API.",
                  offsetof(struct kb_metrics, requests));
    render_by_api(out, r, "kbridge_responses_rewritten_total",
                  "Responses that went through the address rewriter, by API.",
                  offsetof(struct kb_metrics, rewritten));
    RENDER_SIMPLE(out, r, "kbridge_addresses_rewritten_total", "counter",
                  "Broker addresses replaced in responses.", "%llu",
                  (unsigned long long)m_->addresses_rewritten);
    help(out, "kbridge_upstream_failures_total", "counter",
         "Failed upstream connection attempts by reason (DNS, TCP and TLS handshake).");
    for (m = r->clusters; m; m = m->next) {
        for (i = 0; i < KB_FAIL_N; i++) {
            if (m->failures[i]) {
                evbuffer_add_printf(out,
                                    "kbridge_upstream_failures_total{cluster=\"%s\","
                                    "reason=\"%s\"} %llu\n",
                                    m->cluster, fail_names[i], (unsigned long long)m->failures[i]);
            }
        }
    }
    RENDER_SIMPLE(out, r, "kbridge_protocol_errors_total", "counter",
                  "Connections closed for malformed or oversized frames.", "%llu",
                  (unsigned long long)m_->protocol_errors);
    RENDER_SIMPLE(out, r, "kbridge_node_endpoints_dropped_total", "counter",
                  "Streamed Fetch responses whose NodeEndpoints was left out: kbridge's addresses "
                  "are longer than the broker's and the size was already sent.",
                  "%llu", (unsigned long long)m_->endpoints_dropped);
    RENDER_SIMPLE(out, r, "kbridge_reauthentications_total", "counter",
                  "KIP-368 re-authentications of broker connections that succeeded.", "%llu",
                  (unsigned long long)m_->reauths);
    RENDER_SIMPLE(out, r, "kbridge_reauthentication_failures_total", "counter",
                  "KIP-368 re-authentications that failed (the connection was closed).", "%llu",
                  (unsigned long long)m_->reauth_failures);
    RENDER_SIMPLE(out, r, "kbridge_tls_weakened", "gauge",
                  "1 when tls = off or tls_verify is not full for the cluster.", "%d",
                  m_->weakened ? 1 : 0);
    help(out, "kbridge_upstream_connect_seconds", "histogram",
         "Time to connect and complete the TLS handshake with a broker.");
    for (m = r->clusters; m; m = m->next) {
        render_hist(out, "kbridge_upstream_connect_seconds", m->cluster, &m->connect_latency);
    }
    help(out, "kbridge_request_seconds", "histogram",
         "Time from a request being forwarded to its response arriving from the broker.");
    for (m = r->clusters; m; m = m->next) {
        render_hist(out, "kbridge_request_seconds", m->cluster, &m->request_latency);
    }
    help(out, "kbridge_worker_client_connections_total", "counter",
         "Client connections served, by worker (event loop thread; workers = N).");
    for (i = 0; i < (size_t)r->n_workers && i < KB_METRICS_WORKERS; i++) {
        evbuffer_add_printf(out, "kbridge_worker_client_connections_total{worker=\"%zu\"} %llu\n",
                            i, (unsigned long long)r->worker_clients[i]);
    }
    help(out, "kbridge_worker_client_connections_active", "gauge",
         "Client connections open now, by worker (new ones go to the worker with the fewest).");
    for (i = 0; i < (size_t)r->n_workers && i < KB_METRICS_WORKERS; i++) {
        evbuffer_add_printf(out, "kbridge_worker_client_connections_active{worker=\"%zu\"} %lld\n",
                            i, (long long)r->worker_active[i]);
    }
}

void
metrics_render(struct kb_registry *r, struct evbuffer *out)
{
    pthread_mutex_lock(&r->lock);
    metrics_render_locked(r, out);
    pthread_mutex_unlock(&r->lock);
}
