/*
 * metrics.h - counters, gauges and histograms per cluster name, rendered in the Prometheus
 * text format by metrics_render(). A cluster's metrics outlive reloads (they are keyed by the
 * section name and owned by the registry), so counters never go backwards.
 */
#ifndef KB_PROXY_METRICS_H
#define KB_PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

struct evbuffer;

#define KB_METRICS_APIS 128 /* api keys counted individually; higher ones share "other" */
#define KB_HIST_BUCKETS 12  /* latency histogram buckets (plus +Inf) */

/* Why an upstream connection attempt failed; one label value each. */
enum kb_fail_reason {
    KB_FAIL_DNS = 0,
    KB_FAIL_REFUSED,
    KB_FAIL_TIMEOUT,
    KB_FAIL_UNREACHABLE,
    KB_FAIL_CONNECT,
    KB_FAIL_TLS_UNTRUSTED,
    KB_FAIL_TLS_HOSTNAME,
    KB_FAIL_TLS_EXPIRED,
    KB_FAIL_NOT_TLS,
    KB_FAIL_TLS_PROTOCOL,
    KB_FAIL_TLS_OTHER,
    KB_FAIL_N
};

struct kb_histogram {
    uint64_t buckets[KB_HIST_BUCKETS]; /* count of observations <= each bound */
    uint64_t count;                    /* observations */
    double sum;                        /* seconds */
};

/* Per-broker upstream connection counts; index 0 is the bootstrap servers, N+1 is node N. */
struct kb_broker_metrics {
    int64_t active; /* upstream connections open now */
    uint64_t total; /* upstream connections ever established */
};

struct kb_metrics {
    char *cluster;                           /* section name (label) */
    int64_t clients_active;                  /* client connections open now */
    uint64_t clients_total;                  /* client connections accepted */
    uint64_t clients_rejected;               /* refused at accept (limits) */
    struct kb_broker_metrics *brokers;       /* n_brokers entries, grown on demand */
    size_t n_brokers;                        /* entries in brokers */
    uint64_t bytes_up;                       /* client -> broker */
    uint64_t bytes_down;                     /* broker -> client */
    uint64_t requests[KB_METRICS_APIS + 1];  /* by api key; [KB_METRICS_APIS] = other */
    uint64_t rewritten[KB_METRICS_APIS + 1]; /* responses rewritten, by api key */
    uint64_t addresses_rewritten;            /* broker addresses replaced */
    uint64_t failures[KB_FAIL_N];            /* upstream connect failures by reason */
    uint64_t protocol_errors;                /* connections closed for bad frames */
    struct kb_histogram connect_latency;     /* upstream connect + TLS handshake */
    struct kb_histogram request_latency;     /* request forwarded -> response seen */
    bool weakened;                           /* tls off or tls_verify != full (gauge) */
    double last_ready;                       /* monotonic time of the last verified Metadata */
    char last_error[1400];                   /* latest upstream failure, for /readyz */
    struct kb_metrics *next;                 /* registry list */
};

/* The set of per-cluster metrics plus process-wide ones. */
struct kb_registry {
    struct kb_metrics *clusters; /* one per cluster name ever configured */
    uint64_t reloads_ok;         /* successful SIGHUP reloads */
    uint64_t reloads_failed;     /* rejected reloads */
    double started;              /* monotonic start time */
};

void metrics_registry_init(struct kb_registry *r);
void metrics_registry_free(struct kb_registry *r);

/* The metrics of cluster `name`, created on first use. NULL only when out of memory. */
struct kb_metrics *metrics_for(struct kb_registry *r, const char *name);

/* Connection counts of node_id (KB_NODE_BOOTSTRAP for the bootstrap servers); never NULL
 * unless out of memory. */
struct kb_broker_metrics *metrics_broker(struct kb_metrics *m, int32_t node_id);

void metrics_count_request(struct kb_metrics *m, int16_t api_key);
void metrics_count_rewrite(struct kb_metrics *m, int16_t api_key, unsigned addresses);
void metrics_observe(struct kb_histogram *h, double seconds);

/* Classifies an upstream failure sentence (upstream.c / tlserr.c wording) into a reason. */
enum kb_fail_reason metrics_fail_reason(const char *why);

/* Monotonic clock in seconds. */
double metrics_now(void);

/* A timeval of ms milliseconds, for libevent timers. */
struct timeval metrics_timeval_ms(int ms);

/* Appends every metric in the Prometheus text exposition format (0.0.4) to out. */
void metrics_render(const struct kb_registry *r, struct evbuffer *out);

#endif
