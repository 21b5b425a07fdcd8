/*
 * kp_cluster.c - DescribeClusterResponse v0-v1 (always flexible). v1 adds EndpointType between
 * ErrorMessage and ClusterId: 1 lists brokers, 2 controllers. kbridge maps broker addresses
 * only, so a non-empty list of anything but brokers is refused rather than passed on.
 */
#include "kp_internal.h"

#define KP_ENDPOINT_TYPE_BROKERS 1 /* DescribeClusterResponse EndpointType for brokers */

enum kp_status
kp_cluster_rewrite(struct kp_rw *rw, int16_t v)
{
    struct kp_reader *r = &rw->in;
    struct kp_reader peek;
    int8_t endpoint_type = KP_ENDPOINT_TYPE_BROKERS;
    int32_t n;

    KP_TRY(kp_reader_skip(r, 4 + 2));                            /* ThrottleTimeMs, ErrorCode */
    KP_TRY(kp_reader_string(r, KP_COMPACT | KP_NULLABLE, NULL)); /* ErrorMessage */
    if (v >= 1) {
        KP_TRY(kp_reader_i8(r, &endpoint_type));
    }
    KP_TRY(kp_reader_string(r, KP_COMPACT, NULL)); /* ClusterId */
    KP_TRY(kp_reader_skip(r, 4));                  /* ControllerId */
    peek = *r;
    KP_TRY(kp_reader_array_len(&peek, KP_COMPACT, KP_BROKER_MIN, &n));
    if (n > 0 && endpoint_type != KP_ENDPOINT_TYPE_BROKERS) {
        return KP_UNSUPPORTED; /* controller addresses: no mapping for them, never leak them */
    }
    KP_TRY(kp_rw_brokers(rw, KP_COMPACT, true)); /* Brokers */
    KP_TRY(kp_reader_skip(r, 4));                /* ClusterAuthorizedOperations */
    return kp_reader_skip_tags(r);
}
