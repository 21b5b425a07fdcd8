/*
 * kp_request.h - the few requests kbridge originates itself (the readiness probe and
 * `kbridge check`): whole frames, size prefix included, written into a caller-owned writer.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_REQUEST_H
#define KB_KAFKA_PROTOCOL_KP_REQUEST_H

#include <stdint.h>

#include "kp_buf.h"
#include "kp_status.h"

/* ApiVersions v0 (no body): the request every broker answers, whatever its version range. */
enum kp_status kp_request_api_versions(struct kp_writer *w, int32_t correlation_id,
                                       const char *client_id);

/*
 * Metadata v1 with an empty topic array: brokers and controller only, no topics, and never
 * auto-creates anything. Decode the answer with kp_rewrite_response(KP_API_METADATA, 1, ...).
 */
enum kp_status kp_request_metadata_brokers(struct kp_writer *w, int32_t correlation_id,
                                           const char *client_id);

#endif
