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
 */
typedef bool (*kp_map_fn)(void *arg, int32_t node_id, const char *host, size_t host_len,
                          int32_t port, const char **new_host, size_t *new_host_len,
                          int32_t *new_port);

/* What a rewrite did, for the caller's counters and logs. */
struct kp_rewrite_stats {
    unsigned addresses;  /* broker addresses seen */
    unsigned rewritten;  /* of those, replaced by the map */
    unsigned capped;     /* ApiVersions entries whose MaxVersion was lowered */
};

/*
 * Rewrites a response body (the frame after its size prefix and response header) of
 * (api_key, api_version) into out, which the caller owns (kp_writer_init/kp_writer_free) and
 * which this call appends to. map may be NULL for ApiVersions. stats may be NULL.
 * Returns KP_OK, KP_MALFORMED (with *err_offset = offset in body where decoding failed),
 * KP_UNSUPPORTED for a version the codec does not implement, KP_NOMEM.
 * KP_INCOMPLETE never escapes: a body that ends early is KP_MALFORMED.
 * On failure out holds partial output that the caller discards.
 */
enum kp_status kp_rewrite_response(int16_t api_key, int16_t api_version, const uint8_t *body,
                                   size_t len, kp_map_fn map, void *arg, struct kp_writer *out,
                                   struct kp_rewrite_stats *stats, size_t *err_offset);

#endif
