/*
 * kp_endpoints.c - the NodeEndpoints tagged field (tag 0) of ProduceResponse v10+ and
 * FetchResponse v16+ (KIP-951), and the walks through those responses that reach it: every
 * topic and partition is read, records are skipped by their length and never parsed.
 */
#include "kp_internal.h"

#define KP_PRODUCE_PARTITION_MIN 14 /* Index, ErrorCode, BaseOffset */
#define KP_RECORD_ERROR_MIN 5       /* BatchIndex, 1-byte compact null message */

/*
 * Walks one NodeEndpoints array whose field ends at end, writing into sub->out only once the
 * map replaced an address (then the rest of the field follows, so sub->out is the new data).
 */
static enum kp_status
kp_endpoints_array(struct kp_rw *sub, size_t end)
{
    KP_TRY(kp_rw_brokers(sub, KP_COMPACT, true));
    if (sub->in.pos != end) {
        return KP_MALFORMED; /* the field's size covers more than the array */
    }
    return sub->out->len > 0 ? kp_rw_flush(sub, end) : KP_OK;
}

/* Writes tag, the new size and data in place of the field at rw->in.buf[field_at..end). */
static enum kp_status
kp_endpoints_replace(struct kp_rw *rw, size_t field_at, size_t end, uint32_t tag,
                     const struct kp_writer *data)
{
    KP_TRY(kp_rw_flush(rw, field_at));
    rw->copied = end;
    return kp_writer_tag(rw->out, tag, data->buf, data->len);
}

/*
 * One NodeEndpoints field: its tag starts at field_at, its data is the view just read (the
 * reader is at its end). The array is rewritten into a scratch writer first: when an address
 * changed the field's size changes with it, so the field is written again, new size first.
 */
static enum kp_status
kp_endpoints_field(struct kp_rw *rw, size_t field_at, uint32_t tag, const struct kp_view *data)
{
    struct kp_writer scratch;
    struct kp_rw sub = *rw;
    size_t end = rw->in.pos;
    enum kp_status st;

    kp_writer_init(&scratch);
    sub.in.len = end; /* the array may not run past its field */
    sub.in.pos = end - data->len;
    sub.copied = sub.in.pos;
    sub.out = &scratch;
    st = kp_endpoints_array(&sub, end);
    if (st == KP_OK && scratch.len > 0) {
        st = kp_endpoints_replace(rw, field_at, end, tag, &scratch);
    } else if (st != KP_OK) {
        rw->in.pos = sub.in.pos; /* report the offset inside the field */
    }
    kp_writer_free(&scratch);
    return st;
}

enum kp_status
kp_endpoints_rewrite_tags(struct kp_rw *rw, bool has_endpoints)
{
    struct kp_reader *r = &rw->in;
    uint32_t n, i, tag;
    struct kp_view data;
    size_t field_at;

    KP_TRY(kp_reader_tag_count(r, &n));
    for (i = 0; i < n; i++) {
        field_at = r->pos;
        KP_TRY(kp_reader_tag(r, &tag, &data));
        if (has_endpoints && tag == 0) {
            KP_TRY(kp_endpoints_field(rw, field_at, tag, &data));
        }
    }
    return KP_OK;
}

/* ProduceResponse PartitionProduceResponse. */
static enum kp_status
kp_produce_partition(struct kp_reader *r, int16_t v, unsigned flex)
{
    int32_t n, i;

    KP_TRY(kp_reader_skip(r, 4 + 2 + 8)); /* Index, ErrorCode, BaseOffset */
    if (v >= 2) {
        KP_TRY(kp_reader_skip(r, 8)); /* LogAppendTimeMs */
    }
    if (v >= 5) {
        KP_TRY(kp_reader_skip(r, 8)); /* LogStartOffset */
    }
    if (v >= 8) {
        KP_TRY(kp_reader_array_len(r, flex, KP_RECORD_ERROR_MIN, &n)); /* RecordErrors */
        for (i = 0; i < n; i++) {
            KP_TRY(kp_reader_skip(r, 4));                          /* BatchIndex */
            KP_TRY(kp_reader_string(r, flex | KP_NULLABLE, NULL)); /* BatchIndexErrorMessage */
            KP_TRY(kp_skip_tags(r, flex));
        }
        KP_TRY(kp_reader_string(r, flex | KP_NULLABLE, NULL)); /* ErrorMessage */
    }
    return kp_skip_tags(r, flex); /* CurrentLeader is tag 0 here: no address */
}

enum kp_status
kp_produce_rewrite(struct kp_rw *rw, int16_t v)
{
    unsigned flex = v >= 9 ? KP_COMPACT : 0;

    KP_TRY(kp_skip_topics(&rw->in, v, flex, false, KP_PRODUCE_PARTITION_MIN,
                          kp_produce_partition)); /* Responses */
    if (v >= 1) {
        KP_TRY(kp_reader_skip(&rw->in, 4)); /* ThrottleTimeMs */
    }
    return flex ? kp_endpoints_rewrite_tags(rw, v >= 10) : KP_OK;
}

/* FetchResponse PartitionData. */
static enum kp_status
kp_fetch_partition(struct kp_reader *r, int16_t v, unsigned flex)
{
    int32_t n, i;

    KP_TRY(kp_reader_skip(r, 4 + 2 + 8)); /* PartitionIndex, ErrorCode, HighWatermark */
    if (v >= 4) {
        KP_TRY(kp_reader_skip(r, 8)); /* LastStableOffset */
    }
    if (v >= 5) {
        KP_TRY(kp_reader_skip(r, 8)); /* LogStartOffset */
    }
    if (v >= 4) {
        KP_TRY(kp_reader_array_len(r, flex | KP_NULLABLE, KP_ABORTED_TXN_MIN, &n));
        for (i = 0; i < n; i++) { /* AbortedTransactions: ProducerId, FirstOffset */
            KP_TRY(kp_reader_skip(r, 8 + 8));
            KP_TRY(kp_skip_tags(r, flex));
        }
    }
    if (v >= 11) {
        KP_TRY(kp_reader_skip(r, 4)); /* PreferredReadReplica */
    }
    KP_TRY(kp_reader_bytes(r, flex | KP_NULLABLE, NULL)); /* Records: skipped by length */
    return kp_skip_tags(r, flex); /* DivergingEpoch, CurrentLeader, SnapshotId: no address */
}

enum kp_status
kp_fetch_rewrite(struct kp_rw *rw, int16_t v)
{
    unsigned flex = v >= 12 ? KP_COMPACT : 0;

    if (v >= 1) {
        KP_TRY(kp_reader_skip(&rw->in, 4)); /* ThrottleTimeMs */
    }
    if (v >= 7) {
        KP_TRY(kp_reader_skip(&rw->in, 2 + 4)); /* ErrorCode, SessionId */
    }
    /* Responses: Topic name up to v12, TopicId from v13 */
    KP_TRY(kp_skip_topics(&rw->in, v, flex, v >= 13, KP_FETCH_PARTITION_MIN, kp_fetch_partition));
    return flex ? kp_endpoints_rewrite_tags(rw, v >= 16) : KP_OK;
}
