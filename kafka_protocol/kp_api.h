/*
 * kp_api.h - what the codec knows about each Kafka api key: where flexible versions start
 * (../shared/kafka-spec, and for the other keys the apache/kafka commit it was copied from),
 * and which responses carry broker addresses.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_API_H
#define KB_KAFKA_PROTOCOL_KP_API_H

#include <stdbool.h>
#include <stdint.h>

#define KP_API_PRODUCE 0
#define KP_API_FETCH 1
#define KP_API_METADATA 3
#define KP_API_CONTROLLED_SHUTDOWN 7
#define KP_API_FIND_COORDINATOR 10
#define KP_API_SASL_HANDSHAKE 17
#define KP_API_API_VERSIONS 18
#define KP_API_SASL_AUTHENTICATE 36
#define KP_API_DESCRIBE_CLUSTER 60
#define KP_API_SHARE_FETCH 78
#define KP_API_SHARE_ACKNOWLEDGE 79

/*
 * True when (api_key, api_version) uses the flexible encoding (compact strings and arrays,
 * tagged fields): api_version at or above the key's first flexible version in the spec.
 * Unknown keys and keys with no flexible version: false.
 */
bool kp_api_is_flexible(int16_t api_key, int16_t api_version);

/*
 * Request header version (0, 1 or 2) for (api_key, api_version); unknown keys: 1.
 * ControlledShutdown v0 is the one request with header v0.
 */
int kp_api_request_header_version(int16_t api_key, int16_t api_version);

/* Response header version (0 or 1); ApiVersions is always 0; unknown keys: 0. */
int kp_api_response_header_version(int16_t api_key, int16_t api_version);

/*
 * True when a response to (api_key, api_version) must go through kp_rewrite_response():
 * it may carry broker addresses, or it is an ApiVersions response whose versions are capped.
 * That is Metadata, FindCoordinator, DescribeCluster, ApiVersions, ShareFetch and
 * ShareAcknowledge at every version, Produce v10+ and Fetch v16+ (NodeEndpoints). Versions
 * above what the codec implements are true too: kp_rewrite_response() then answers
 * KP_UNSUPPORTED, and the caller must refuse the response rather than leak an address.
 * False means: forward by length, never parse past the header.
 */
bool kp_api_response_needs_rewrite(int16_t api_key, int16_t api_version);

/*
 * Highest version of api_key whose response this codec can rewrite, or -1 when the api
 * carries no address (then any version passes through). Used to cap ApiVersions:
 * Metadata 12, FindCoordinator 6, DescribeCluster 1, Produce 11, Fetch 17, ShareFetch 0,
 * ShareAcknowledge 0 (the versions in ../shared/kafka-spec). ApiVersions itself is -1: it
 * carries no address, and kp_rewrite_response() parses ApiVersions v0-v4.
 */
int kp_api_max_rewritable_version(int16_t api_key);

/* True for every api key in the spec (0-87), false otherwise. */
bool kp_api_known(int16_t api_key);

/* Short name of an api key ("Metadata"), for every key in the spec (0-87), or "Unknown". */
const char *kp_api_name(int16_t api_key);

#endif
