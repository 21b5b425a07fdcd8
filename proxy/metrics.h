/*
 * metrics.h - counters, gauges and histograms per cluster name, rendered in the Prometheus
 * text format by metrics_render(). A cluster's metrics outlive reloads (they are keyed by the
 * section name and owned by the registry), so counters never go backwards.
 *
 * With workers > 1 every event loop thread updates the same metrics: counters and gauges are
 * C11 atomics (plain ++ and += on them are atomic), and what can grow or hold text (the list
 * of clusters, the per-broker table, last_error) is guarded by a mutex.
 */
#ifndef KB_PROXY_METRICS_H
#define KB_PROXY_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

struct evbuffer;

#define KB_METRICS_APIS 128   /* api keys counted individually; higher ones share "other" */
#define KB_HIST_BUCKETS 12    /* latency histogram buckets (plus +Inf) */
#define KB_METRICS_WORKERS 64 /* the most workers = N allows */

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
    KB_FAIL_AUTH, /* SASL: refused credentials or mechanism, a bad SASL answer, a timeout */
    KB_FAIL_N
};

typedef _Atomic uint64_t kb_counter;
typedef _Atomic int64_t kb_gauge;

struct kb_histogram {
    kb_counter
        buckets[KB_HIST_BUCKETS]; /* observations in (bound i-1, bound i]; shown cumulative */
    kb_counter count;             /* observations */
    _Atomic double sum;           /* seconds */
};

/* Per-broker upstream connection counts; index 0 is the bootstrap servers, N+1 is node N. */
struct kb_broker_metrics {
    kb_gauge active;  /* upstream connections open now */
    kb_counter total; /* upstream connections ever established */
};

struct kb_metrics {
    char *cluster;                             /* section name (label) */
    kb_gauge clients_active;                   /* client connections open now */
    kb_counter clients_total;                  /* client connections accepted */
    kb_counter clients_rejected;               /* refused at accept (limits) */
    pthread_mutex_t lock;                      /* guards brokers, n_brokers and last_error */
    struct kb_broker_metrics **brokers;        /* n_brokers entries, grown on demand; entries
                                                  never move once made */
    size_t n_brokers;                          /* entries in brokers */
    kb_counter bytes_up;                       /* client -> broker */
    kb_counter bytes_down;                     /* broker -> client */
    kb_counter requests[KB_METRICS_APIS + 1];  /* by api key; [KB_METRICS_APIS] = other */
    kb_counter rewritten[KB_METRICS_APIS + 1]; /* responses rewritten, by api key */
    kb_counter addresses_rewritten;            /* broker addresses replaced */
    kb_counter failures[KB_FAIL_N];            /* upstream connect failures by reason */
    kb_counter protocol_errors;                /* connections closed for bad frames */
    kb_counter endpoints_dropped;              /* streamed Fetch NodeEndpoints left out: the
                                                  rewrite would not fit the sent size */
    kb_counter reauths;                        /* KIP-368 re-authentications that succeeded */
    kb_counter reauth_failures;                /* ... that failed (the connection closed) */
    struct kb_histogram connect_latency;       /* upstream connect + TLS handshake */
    struct kb_histogram request_latency;       /* request forwarded -> response seen */
    atomic_bool weakened;                      /* tls off or tls_verify != full (gauge) */
    _Atomic double last_ready;                 /* monotonic time of the last verified Metadata */
    char last_error[1400];                     /* latest upstream failure, for /readyz (lock) */
    struct kb_metrics *next;                   /* registry list */
};

/* The set of per-cluster metrics plus process-wide ones. */
struct kb_registry {
    pthread_mutex_t lock;        /* guards the clusters list */
    struct kb_metrics *clusters; /* one per cluster name ever configured */
    uint64_t reloads_ok;         /* successful SIGHUP reloads (main thread only) */
    uint64_t reloads_failed;     /* rejected reloads (main thread only) */
    double started;              /* monotonic start time */
    int n_workers;               /* event loops (workers = N) */
    kb_counter worker_clients[KB_METRICS_WORKERS]; /* clients accepted, by worker */
    kb_gauge worker_active[KB_METRICS_WORKERS];    /* client connections open, by worker */
    kb_counter next_conn_id; /* connection ids for log lines, unique across workers */
};

/* An empty registry for n_workers event loops. */
void metrics_registry_init(struct kb_registry *r, int n_workers);
void metrics_registry_free(struct kb_registry *r);

/* The metrics of cluster `name`, created on first use. NULL only when out of memory. */
struct kb_metrics *metrics_for(struct kb_registry *r, const char *name);

/* Connection counts of node_id (KB_NODE_BOOTSTRAP for the bootstrap servers); never NULL
 * unless out of memory. */
struct kb_broker_metrics *metrics_broker(struct kb_metrics *m, int32_t node_id);

void metrics_count_request(struct kb_metrics *m, int16_t api_key);
void metrics_count_rewrite(struct kb_metrics *m, int16_t api_key, unsigned addresses);
void metrics_observe(struct kb_histogram *h, double seconds);

/* Records the latest upstream failure ("" clears it), and copies it out, under m's lock. */
void metrics_set_error(struct kb_metrics *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void metrics_get_error(struct kb_metrics *m, char *out, size_t outlen);

/* Monotonic clock in seconds. */
double metrics_now(void);

/* A timeval of ms milliseconds, for libevent timers. */
struct timeval metrics_timeval_ms(int ms);

/* Appends every metric in the Prometheus text exposition format (0.0.4) to out. */
void metrics_render(struct kb_registry *r, struct evbuffer *out);

#endif
