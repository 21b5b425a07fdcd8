/*
 * inflight.c - FIFO ring of outstanding requests for one bridge (see inflight.h).
 */
#include "proxy/inflight.h"

#include <stdlib.h>
#include <string.h>

void
inflight_init(struct inflight *q)
{
    memset(q, 0, sizeof(*q));
}

void
inflight_free(struct inflight *q)
{
    free(q->ring);
    inflight_init(q);
}

static bool
inflight_grow(struct inflight *q)
{
    size_t ncap = q->cap ? q->cap * 2 : 16;
    struct inflight_entry *n;
    size_t i;

    if (ncap > KB_INFLIGHT_MAX) {
        return false;
    }
    n = malloc(ncap * sizeof(*n));
    if (!n) {
        return false;
    }
    for (i = 0; i < q->count; i++) {
        n[i] = q->ring[(q->head + i) & (q->cap - 1)];
    }
    free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return true;
}

bool
inflight_push(struct inflight *q, int32_t correlation_id, int16_t api_key, int16_t api_version,
              double sent)
{
    return inflight_push_kind(q, correlation_id, api_key, api_version, INFLIGHT_BROKER, sent);
}

bool
inflight_push_kind(struct inflight *q, int32_t correlation_id, int16_t api_key, int16_t api_version,
                   enum inflight_kind kind, double sent)
{
    struct inflight_entry *e;

    if (q->count == q->cap && !inflight_grow(q)) {
        return false;
    }
    e = &q->ring[(q->head + q->count) & (q->cap - 1)];
    e->correlation_id = correlation_id;
    e->api_key = api_key;
    e->api_version = api_version;
    e->kind = kind;
    e->sent = sent;
    q->count++;
    return true;
}

const struct inflight_entry *
inflight_peek(const struct inflight *q)
{
    return q->count ? &q->ring[q->head] : NULL;
}

void
inflight_pop(struct inflight *q)
{
    if (q->count) {
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
}
