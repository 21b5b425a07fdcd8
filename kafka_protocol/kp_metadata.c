/*
 * kp_metadata.c - MetadataResponse v0-v12 (flexible from v9). Only Brokers carry addresses,
 * but the topics are walked to the end too, so a damaged body is refused and the top-level
 * tagged fields (and any bytes after them) are found and copied verbatim.
 */
#include "kp_internal.h"

/* Smallest encoded topic and partition entries, to bound hostile array counts. */
#define KP_METADATA_TOPIC_MIN 5      /* ErrorCode, 1-byte compact Name, empty Partitions... */
#define KP_METADATA_PARTITION_MIN 12 /* ErrorCode, PartitionIndex, LeaderId, 2 empty arrays */

/* MetadataResponsePartition. */
static enum kp_status
kp_metadata_partition(struct kp_reader *r, int16_t v, unsigned flex)
{
    KP_TRY(kp_reader_skip(r, 2 + 4 + 4)); /* ErrorCode, PartitionIndex, LeaderId */
    if (v >= 7) {
        KP_TRY(kp_reader_skip(r, 4)); /* LeaderEpoch */
    }
    KP_TRY(kp_reader_skip_array(r, flex, 4)); /* ReplicaNodes */
    KP_TRY(kp_reader_skip_array(r, flex, 4)); /* IsrNodes */
    if (v >= 5) {
        KP_TRY(kp_reader_skip_array(r, flex, 4)); /* OfflineReplicas */
    }
    return kp_skip_tags(r, flex);
}

/* MetadataResponseTopic. */
static enum kp_status
kp_metadata_topic(struct kp_reader *r, int16_t v, unsigned flex)
{
    int32_t n, i;

    KP_TRY(kp_reader_skip(r, 2)); /* ErrorCode */
    /* Name: nullable from v12 (topics queried by id that do not exist) */
    KP_TRY(kp_reader_string(r, flex | (v >= 12 ? KP_NULLABLE : 0), NULL));
    if (v >= 10) {
        KP_TRY(kp_reader_uuid(r, NULL)); /* TopicId */
    }
    if (v >= 1) {
        KP_TRY(kp_reader_skip(r, 1)); /* IsInternal */
    }
    KP_TRY(kp_reader_array_len(r, flex, KP_METADATA_PARTITION_MIN, &n));
    for (i = 0; i < n; i++) {
        KP_TRY(kp_metadata_partition(r, v, flex));
    }
    if (v >= 8) {
        KP_TRY(kp_reader_skip(r, 4)); /* TopicAuthorizedOperations */
    }
    return kp_skip_tags(r, flex);
}

enum kp_status
kp_metadata_rewrite(struct kp_rw *rw, int16_t v)
{
    struct kp_reader *r = &rw->in;
    unsigned flex = v >= 9 ? KP_COMPACT : 0;
    int32_t n, i;

    if (v >= 3) {
        KP_TRY(kp_reader_skip(r, 4)); /* ThrottleTimeMs */
    }
    KP_TRY(kp_rw_brokers(rw, flex, v >= 1)); /* Brokers; Rack from v1 */
    if (v >= 2) {
        KP_TRY(kp_reader_string(r, flex | KP_NULLABLE, NULL)); /* ClusterId */
    }
    if (v >= 1) {
        KP_TRY(kp_reader_skip(r, 4)); /* ControllerId */
    }
    KP_TRY(kp_reader_array_len(r, flex, KP_METADATA_TOPIC_MIN, &n));
    for (i = 0; i < n; i++) {
        KP_TRY(kp_metadata_topic(r, v, flex));
    }
    if (v >= 8 && v <= 10) {
        KP_TRY(kp_reader_skip(r, 4)); /* ClusterAuthorizedOperations */
    }
    return kp_skip_tags(r, flex);
}
