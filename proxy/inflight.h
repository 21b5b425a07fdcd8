/*
 * inflight.h - the requests of one bridge still waiting for a response, oldest first.
 * Kafka answers requests on a connection in order, so this is a FIFO ring keyed by
 * correlation id; it grows on demand up to a hard cap (a client cannot make it unbounded).
 */
#ifndef KB_PROXY_INFLIGHT_H
#define KB_PROXY_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KB_INFLIGHT_MAX 65536 /* requests one connection may have outstanding */

/* Who answers a request in flight. */
enum inflight_kind {
    INFLIGHT_BROKER = 0, /* the broker, with a Kafka response */
    INFLIGHT_RAW_SASL,   /* the broker: a raw SASL token after SaslHandshake v0, answered by one
                            frame with no Kafka header */
    INFLIGHT_LOCAL,      /* kbridge itself (a client's own SASL while kbridge authenticates) */
};

struct inflight_entry {
    int32_t correlation_id;  /* from the request header */
    int16_t api_key;         /* request api key */
    int16_t api_version;     /* request api version */
    enum inflight_kind kind; /* who answers it */
    double sent;             /* loopclock_now() when the request was seen (latency metric) */
};

struct inflight {
    struct inflight_entry *ring; /* cap entries, NULL until the first push */
    size_t cap;                  /* allocated entries (power of two) */
    size_t head;                 /* index of the oldest entry */
    size_t count;                /* entries in use */
};

void inflight_init(struct inflight *q);
void inflight_free(struct inflight *q);

/*
 * Appends a request the broker answers. false when the queue is at KB_INFLIGHT_MAX or
 * allocation fails.
 */
bool inflight_push(struct inflight *q, int32_t correlation_id, int16_t api_key, int16_t api_version,
                   double sent) __attribute__((warn_unused_result));

/* inflight_push() for a request of the given kind. */
bool inflight_push_kind(struct inflight *q, int32_t correlation_id, int16_t api_key,
                        int16_t api_version, enum inflight_kind kind, double sent)
    __attribute__((warn_unused_result));

/* The oldest entry, or NULL when empty. Valid until the next push or pop. */
const struct inflight_entry *inflight_peek(const struct inflight *q);

/* Removes the oldest entry (no-op when empty). */
void inflight_pop(struct inflight *q);

#endif
