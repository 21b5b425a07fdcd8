/*
 * kp_rewrite.c - the rewrite entry point (version checks, dispatch to the per-API walkers) and
 * the pieces every walker shares: the lazy span copy, the NodeId/Host/Port rewriter and the
 * broker-entry array that Metadata, DescribeCluster and NodeEndpoints have in common.
 */
#include "kp_rewrite.h"

#include <string.h>

#include "kp_api.h"
#include "kp_internal.h"

enum kp_status
kp_rw_flush(struct kp_rw *rw, size_t upto)
{
    enum kp_status st = KP_OK;

    if (upto > rw->copied) {
        st = kp_writer_raw(rw->out, rw->in.buf + rw->copied, upto - rw->copied);
        rw->copied = upto;
    }
    return st;
}

void
kp_rw_init(struct kp_rw *rw, const uint8_t *body, size_t len, kp_map_fn map, void *arg,
           struct kp_writer *out, struct kp_rewrite_stats *stats)
{
    memset(stats, 0, sizeof(*stats));
    kp_reader_init(&rw->in, body, len);
    rw->out = out;
    rw->copied = 0;
    rw->map = map;
    rw->arg = arg;
    rw->stats = stats;
}

enum kp_status
kp_rw_end(struct kp_rw *rw, enum kp_status st, size_t out_len, size_t *err_offset)
{
    if (st == KP_INCOMPLETE) {
        st = KP_MALFORMED;
    }
    if (st != KP_OK) {
        if (err_offset) {
            *err_offset = rw->in.pos;
        }
        rw->out->len = out_len;
    }
    return st;
}

enum kp_status
kp_rw_address(struct kp_rw *rw, unsigned flex)
{
    struct kp_reader *r = &rw->in;
    int32_t node_id, port, new_port;
    struct kp_view host;
    size_t host_at, end;
    const char *new_host;
    size_t new_len;

    KP_TRY(kp_reader_i32(r, &node_id));
    host_at = r->pos;
    KP_TRY(kp_reader_string(r, flex, &host));
    KP_TRY(kp_reader_i32(r, &port));
    end = r->pos;
    rw->stats->addresses++;
    if (rw->map == NULL) {
        return KP_OK;
    }
    new_host = (const char *)host.ptr;
    new_len = host.len;
    new_port = port;
    if (!rw->map(rw->arg, node_id, (const char *)host.ptr, host.len, port, &new_host, &new_len,
                 &new_port)) {
        return KP_OK;
    }
    rw->stats->rewritten++;
    KP_TRY(kp_rw_flush(rw, host_at));
    rw->copied = end;
    r->pos = host_at; /* a write that fails is reported at the host the map replaced */
    KP_TRY(kp_writer_string(rw->out, flex, new_host, new_len));
    KP_TRY(kp_writer_i32(rw->out, new_port));
    r->pos = end;
    return KP_OK;
}

enum kp_status
kp_rw_brokers(struct kp_rw *rw, unsigned flex, bool has_rack)
{
    int32_t n, i;

    KP_TRY(kp_reader_array_len(&rw->in, flex, KP_BROKER_MIN, &n));
    for (i = 0; i < n; i++) {
        KP_TRY(kp_rw_address(rw, flex));
        if (has_rack) {
            KP_TRY(kp_reader_string(&rw->in, flex | KP_NULLABLE, NULL)); /* Rack */
        }
        KP_TRY(kp_skip_tags(&rw->in, flex));
    }
    return KP_OK;
}

enum kp_status
kp_skip_tags(struct kp_reader *r, unsigned flex)
{
    return (flex & KP_COMPACT) ? kp_reader_skip_tags(r) : KP_OK;
}

enum kp_status
kp_skip_topics(struct kp_reader *r, int16_t version, unsigned flex, bool by_id,
               size_t partition_min, kp_partition_fn partition)
{
    int32_t topics, partitions, i, j;

    KP_TRY(kp_reader_array_len(r, flex, KP_TOPIC_MIN, &topics));
    for (i = 0; i < topics; i++) {
        if (by_id) {
            KP_TRY(kp_reader_uuid(r, NULL));
        } else {
            KP_TRY(kp_reader_string(r, flex, NULL));
        }
        KP_TRY(kp_reader_array_len(r, flex, partition_min, &partitions));
        for (j = 0; j < partitions; j++) {
            KP_TRY(partition(r, version, flex));
        }
        KP_TRY(kp_skip_tags(r, flex));
    }
    return KP_OK;
}

/* Runs the walker for (api_key, api_version) over rw->in. */
static enum kp_status
kp_rewrite_dispatch(struct kp_rw *rw, int16_t api_key, int16_t api_version)
{
    int max = kp_api_max_rewritable_version(api_key);

    if (api_key == KP_API_API_VERSIONS) {
        return kp_apiversions_rewrite(rw, api_version);
    }
    if (max < 0) {
        return KP_OK; /* no address in this api: copied as it is */
    }
    if (api_version < 0 || api_version > max) {
        return KP_UNSUPPORTED;
    }
    switch (api_key) {
    case KP_API_PRODUCE:
        return kp_produce_rewrite(rw, api_version);
    case KP_API_FETCH:
        return kp_fetch_rewrite(rw, api_version);
    case KP_API_METADATA:
        return kp_metadata_rewrite(rw, api_version);
    case KP_API_FIND_COORDINATOR:
        return kp_coordinator_rewrite(rw, api_version);
    case KP_API_DESCRIBE_CLUSTER:
        return kp_cluster_rewrite(rw, api_version);
    case KP_API_SHARE_FETCH:
        return kp_share_fetch_rewrite(rw, api_version);
    case KP_API_SHARE_ACKNOWLEDGE:
        return kp_share_acknowledge_rewrite(rw, api_version);
    default:
        return KP_UNSUPPORTED; /* in the cap table but not here: a codec bug, refuse */
    }
}

enum kp_status
kp_rewrite_response(int16_t api_key, int16_t api_version, const uint8_t *body, size_t len,
                    kp_map_fn map, void *arg, struct kp_writer *out, struct kp_rewrite_stats *stats,
                    size_t *err_offset)
{
    struct kp_rewrite_stats local;
    struct kp_rw rw;
    size_t out_len = out->len;
    enum kp_status st;

    if (stats == NULL) {
        stats = &local;
    }
    kp_rw_init(&rw, body, len, map, arg, out, stats);

    /* A rewritten body is about as long as the original: one allocation in the common case. */
    st = kp_writer_reserve(out, len + 64);
    if (st == KP_OK) {
        st = kp_rewrite_dispatch(&rw, api_key, api_version);
    }
    if (st == KP_OK) {
        st = kp_rw_flush(&rw, len); /* what is left, trailing bytes included */
    }
    return kp_rw_end(&rw, st, out_len, err_offset);
}
