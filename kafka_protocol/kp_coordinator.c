/*
 * kp_coordinator.c - FindCoordinatorResponse v0-v6 (flexible from v3): one NodeId/Host/Port
 * up to v3, then from v4 (KIP-699, batched lookups) a Coordinators array with one address per
 * key. Error entries (node -1, host "", port -1) go to the map like any other.
 */
#include "kp_internal.h"

/* Smallest encoded Coordinator: Key, NodeId, Host, Port, ErrorCode, ErrorMessage, tags. */
#define KP_COORDINATOR_MIN 14

enum kp_status
kp_coordinator_rewrite(struct kp_rw *rw, int16_t v)
{
    struct kp_reader *r = &rw->in;
    unsigned flex = v >= 3 ? KP_COMPACT : 0;
    int32_t n, i;

    if (v >= 1) {
        KP_TRY(kp_reader_skip(r, 4)); /* ThrottleTimeMs */
    }
    if (v <= 3) {
        KP_TRY(kp_reader_skip(r, 2)); /* ErrorCode */
        if (v >= 1) {
            KP_TRY(kp_reader_string(r, flex | KP_NULLABLE, NULL)); /* ErrorMessage */
        }
        KP_TRY(kp_rw_address(rw, flex)); /* NodeId, Host, Port */
        return kp_skip_tags(r, flex);
    }
    KP_TRY(kp_reader_array_len(r, flex, KP_COORDINATOR_MIN, &n));
    for (i = 0; i < n; i++) {
        KP_TRY(kp_reader_string(r, flex, NULL));               /* Key */
        KP_TRY(kp_rw_address(rw, flex));                       /* NodeId, Host, Port */
        KP_TRY(kp_reader_skip(r, 2));                          /* ErrorCode */
        KP_TRY(kp_reader_string(r, flex | KP_NULLABLE, NULL)); /* ErrorMessage */
        KP_TRY(kp_skip_tags(r, flex));
    }
    return kp_skip_tags(r, flex);
}
