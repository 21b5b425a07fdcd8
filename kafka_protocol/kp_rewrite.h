/*
 * kp_rewrite.h - the one entry point of the address rewriter: (api, version, response body,
 * map callback) -> new response body. Every byte the rewrite does not change is copied
 * verbatim: unknown tagged fields, fields the proxy does not touch, and trailing bytes.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_REWRITE_H
#define KB_KAFKA_PROTOCOL_KP_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_buf.h"
#include "kp_status.h"

/*
 * Maps one broker address. node_id is the broker's id (-1 where the wire has none), host is a
 * view of host_len bytes (not NUL-terminated). To replace the address, set *new_host,
 * *new_host_len and *new_port and return true; *new_host must stay valid until
 * kp_rewrite_response() returns. Return false to keep the address as it is.
 * On entry *new_host, *new_host_len and *new_port hold the current address, so a map may set
 * only what it changes. It is called for every address, error entries too (FindCoordinator
 * COORDINATOR_NOT_AVAILABLE: node -1, host "", port -1). A *new_host of NULL, or longer than
 * KP_STRING_MAX, fails the rewrite (KP_MALFORMED, KP_TOO_LARGE).
 */
typedef bool (*kp_map_fn)(void *arg, int32_t node_id, const char *host, size_t host_len,
                          int32_t port, const char **new_host, size_t *new_host_len,
                          int32_t *new_port);

/* What a rewrite did, for the caller's counters and logs. */
struct kp_rewrite_stats {
    unsigned addresses;  /* broker addresses seen */
    unsigned rewritten;  /* of those, replaced by the map */
    unsigned capped;     /* ApiVersions entries whose MaxVersion was lowered */
    unsigned uncappable; /* ApiVersions entries left as they are: MinVersion above the cap */
};

/*
 * Rewrites a response body (the frame after its size prefix and response header) of
 * (api_key, api_version) into out, which the caller owns (kp_writer_init/kp_writer_free) and
 * which this call appends to. map may be NULL (every address kept). stats may be NULL; when
 * given it is reset, then filled. err_offset may be NULL.
 *
 * The whole body is validated against the spec, but only addresses (and ApiVersions
 * MaxVersion) change: every other byte is copied verbatim, unknown tagged fields and bytes
 * after the end of the known body included. What is parsed:
 *   Metadata v0-12, FindCoordinator v0-6, DescribeCluster v0-1, Produce v0-11 and Fetch v0-17
 *   (NodeEndpoints from v10 / v16), ShareFetch and ShareAcknowledge v0 (NodeEndpoints is a
 *   regular field there), ApiVersions v0-4: MaxVersion of each api above
 *   kp_api_max_rewritable_version() is lowered to it (stats->capped), unless its MinVersion is
 *   above that too (left alone, stats->uncappable). An ApiVersions body whose ErrorCode is
 *   UNSUPPORTED_VERSION (35) is copied unparsed whatever the version: it is the broker's v0
 *   fallback answer. Any other api key carries no address and is copied unparsed.
 *
 * Returns KP_OK, KP_MALFORMED (with *err_offset = offset in body where decoding failed),
 * KP_UNSUPPORTED for a version the codec does not implement, or a DescribeCluster v1 that
 * lists controllers (EndpointType != 1) rather than brokers, KP_TOO_LARGE for a mapped host
 * longer than a Kafka string, KP_NOMEM. KP_INCOMPLETE never escapes: a body that ends early is
 * KP_MALFORMED. On failure out->len is restored to what it was on entry.
 */
enum kp_status kp_rewrite_response(int16_t api_key, int16_t api_version, const uint8_t *body,
                                   size_t len, kp_map_fn map, void *arg, struct kp_writer *out,
                                   struct kp_rewrite_stats *stats, size_t *err_offset);

#endif
