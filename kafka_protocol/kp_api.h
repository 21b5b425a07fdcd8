/*
 * kp_api.h - what the codec knows about each Kafka api key: where flexible versions start
 * (from ../shared/kafka-spec), and which responses carry broker addresses.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_API_H
#define KB_KAFKA_PROTOCOL_KP_API_H

#include <stdbool.h>
#include <stdint.h>

#define KP_API_PRODUCE 0
#define KP_API_FETCH 1
#define KP_API_METADATA 3
#define KP_API_FIND_COORDINATOR 10
#define KP_API_SASL_HANDSHAKE 17
#define KP_API_API_VERSIONS 18
#define KP_API_SASL_AUTHENTICATE 36
#define KP_API_DESCRIBE_CLUSTER 60
#define KP_API_SHARE_FETCH 78
#define KP_API_SHARE_ACKNOWLEDGE 79

/* Request header version (0, 1 or 2) for (api_key, api_version); unknown keys: 1. */
int kp_api_request_header_version(int16_t api_key, int16_t api_version);

/* Response header version (0 or 1); ApiVersions is always 0; unknown keys: 0. */
int kp_api_response_header_version(int16_t api_key, int16_t api_version);

/*
 * True when a response to (api_key, api_version) must go through kp_rewrite_response():
 * it may carry broker addresses, or it is an ApiVersions response whose versions are capped.
 * False means: forward by length, never parse past the header.
 */
bool kp_api_response_needs_rewrite(int16_t api_key, int16_t api_version);

/*
 * Highest version of api_key whose response this codec can rewrite, or -1 when the api
 * carries no address (then any version passes through). Used to cap ApiVersions.
 */
int kp_api_max_rewritable_version(int16_t api_key);

/* Short name of an api key ("Metadata"), or "Unknown". */
const char *kp_api_name(int16_t api_key);

#endif
