/*
 * kp_request.h - the few requests kbridge originates itself (the readiness probe and
 * `kbridge check`): whole frames, size prefix included, written into a caller-owned writer,
 * and the one answer it needs to read first (ApiVersions v0, to pick a Metadata version).
 */
#ifndef KB_KAFKA_PROTOCOL_KP_REQUEST_H
#define KB_KAFKA_PROTOCOL_KP_REQUEST_H

#include <stdint.h>

#include "kp_buf.h"
#include "kp_status.h"

/* ApiVersions v0 (no body): the request every broker answers, whatever its version range. */
enum kp_status kp_request_api_versions(struct kp_writer *w, int32_t correlation_id,
                                       const char *client_id);

/* What an ApiVersions v0 response body says about one api key. */
struct kp_api_range {
    int16_t error;  /* ErrorCode of the response */
    int32_t n_apis; /* entries in ApiKeys */
    int16_t min;    /* MinVersion of the key asked for, -1 when not listed */
    int16_t max;    /* MaxVersion of the key asked for, -1 when not listed */
};

/*
 * Reads an ApiVersions v0 response body (after the response header) and fills out for
 * api_key. KP_OK also when error != 0 (then the entries are not read). KP_MALFORMED otherwise.
 */
enum kp_status kp_response_api_versions_v0(const uint8_t *body, size_t len, int16_t api_key,
                                           struct kp_api_range *out);

/*
 * The Metadata version to send a broker serving [min, max]: the highest up to v4 (the oldest
 * Kafka 4 serves; Debian's mock serves only up to v2), never below min, and within v1-v8 (the
 * versions kp_request_metadata_brokers() writes). -1 when there is none.
 */
int kp_request_metadata_version(int16_t min, int16_t max);

/*
 * Metadata (version 1-8, non-flexible) with an empty topic array, AllowAutoTopicCreation
 * false (v4+) and no authorized-operations (v8): brokers and controller only, never creates
 * anything. Decode the answer with kp_rewrite_response(KP_API_METADATA, version, ...).
 * KP_UNSUPPORTED for another version.
 */
enum kp_status kp_request_metadata_brokers(struct kp_writer *w, int16_t version,
                                           int32_t correlation_id, const char *client_id);

#endif
