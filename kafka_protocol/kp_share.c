/*
 * kp_share.c - ShareFetchResponse and ShareAcknowledgeResponse v0 (KIP-932, flexible). Their
 * NodeEndpoints is a regular field after Responses, not a tagged one, so it is rewritten in
 * place with the same broker-entry walker as Metadata and DescribeCluster.
 */
#include "kp_internal.h"

#define KP_SHARE_ACK_PARTITION_MIN 17   /* up to CurrentLeader and the tag sections */
#define KP_SHARE_FETCH_PARTITION_MIN 22 /* plus the acknowledge error, Records, AcquiredRecords */
#define KP_ACQUIRED_RECORDS_MIN 18      /* FirstOffset, LastOffset, DeliveryCount */

/* PartitionIndex, ErrorCode, ErrorMessage: how both PartitionData structs begin. */
static enum kp_status
kp_share_partition_head(struct kp_reader *r)
{
    KP_TRY(kp_reader_skip(r, 4 + 2));
    return kp_reader_string(r, KP_COMPACT | KP_NULLABLE, NULL);
}

/* CurrentLeader: LeaderIdAndEpoch, a regular struct with its own tag section. */
static enum kp_status
kp_share_leader(struct kp_reader *r)
{
    KP_TRY(kp_reader_skip(r, 4 + 4)); /* LeaderId, LeaderEpoch */
    return kp_reader_skip_tags(r);
}

/* ShareFetchResponse PartitionData. */
static enum kp_status
kp_share_fetch_partition(struct kp_reader *r, int16_t v, unsigned flex)
{
    int32_t n, i;

    (void)v;
    KP_TRY(kp_share_partition_head(r));
    KP_TRY(kp_reader_skip(r, 2));                          /* AcknowledgeErrorCode */
    KP_TRY(kp_reader_string(r, flex | KP_NULLABLE, NULL)); /* AcknowledgeErrorMessage */
    KP_TRY(kp_share_leader(r));
    KP_TRY(kp_reader_bytes(r, flex | KP_NULLABLE, NULL)); /* Records: skipped by length */
    KP_TRY(kp_reader_array_len(r, flex, KP_ACQUIRED_RECORDS_MIN, &n)); /* AcquiredRecords */
    for (i = 0; i < n; i++) {
        KP_TRY(kp_reader_skip(r, 8 + 8 + 2));
        KP_TRY(kp_reader_skip_tags(r));
    }
    return kp_reader_skip_tags(r);
}

/* ShareAcknowledgeResponse PartitionData. */
static enum kp_status
kp_share_ack_partition(struct kp_reader *r, int16_t v, unsigned flex)
{
    (void)v;
    (void)flex;
    KP_TRY(kp_share_partition_head(r));
    KP_TRY(kp_share_leader(r));
    return kp_reader_skip_tags(r);
}

/* The layout both responses share, around their own PartitionData. */
static enum kp_status
kp_share_rewrite(struct kp_rw *rw, int16_t v, size_t partition_min, kp_partition_fn partition)
{
    struct kp_reader *r = &rw->in;

    KP_TRY(kp_reader_skip(r, 4 + 2));                            /* ThrottleTimeMs, ErrorCode */
    KP_TRY(kp_reader_string(r, KP_COMPACT | KP_NULLABLE, NULL)); /* ErrorMessage */
    KP_TRY(kp_skip_topics(r, v, KP_COMPACT, true, partition_min, partition)); /* Responses */
    KP_TRY(kp_rw_brokers(rw, KP_COMPACT, true));                              /* NodeEndpoints */
    return kp_reader_skip_tags(r);
}

enum kp_status
kp_share_fetch_rewrite(struct kp_rw *rw, int16_t v)
{
    return kp_share_rewrite(rw, v, KP_SHARE_FETCH_PARTITION_MIN, kp_share_fetch_partition);
}

enum kp_status
kp_share_acknowledge_rewrite(struct kp_rw *rw, int16_t v)
{
    return kp_share_rewrite(rw, v, KP_SHARE_ACK_PARTITION_MIN, kp_share_ack_partition);
}
