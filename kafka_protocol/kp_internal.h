/*
 * kp_internal.h - shared by the per-API rewriters inside the codec only (proxy/ never includes
 * it). A rewrite walks the body with a reader and copies unchanged spans to the output lazily:
 * bytes before `copied` are already in the output (or were replaced), the rest is copied later.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_INTERNAL_H
#define KB_KAFKA_PROTOCOL_KP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_buf.h"
#include "kp_rewrite.h"
#include "kp_status.h"

/* Evaluates a kp_status expression and returns it from the calling function unless KP_OK. */
#define KP_TRY(expr)                                                                               \
    do {                                                                                           \
        enum kp_status kp_try_st_ = (expr);                                                        \
        if (kp_try_st_ != KP_OK) {                                                                 \
            return kp_try_st_;                                                                     \
        }                                                                                          \
    } while (0)

/* Smallest encoded broker entry (NodeId, a 1-byte compact Host, Port): bounds array counts. */
#define KP_BROKER_MIN 9

/* Smallest encoded topic: 1-byte compact name, empty compact partitions, empty tag section. */
#define KP_TOPIC_MIN 3

/* Smallest FetchResponse partition (PartitionIndex, ErrorCode, HighWatermark, Records) and
 * aborted transaction (ProducerId, FirstOffset): shared by the whole-body and streamed walks. */
#define KP_FETCH_PARTITION_MIN 15
#define KP_ABORTED_TXN_MIN 16

/* ApiVersions error code for a request version the broker does not support. */
#define KP_ERR_UNSUPPORTED_VERSION 35

/* One rewrite in progress. */
struct kp_rw {
    struct kp_reader in;            /* the body; positions are offsets in the whole body */
    struct kp_writer *out;          /* the caller's output */
    size_t copied;                  /* in.buf[0..copied) is already in out or was replaced */
    kp_map_fn map;                  /* the caller's address map, NULL to keep every address */
    void *arg;                      /* map's argument */
    struct kp_rewrite_stats *stats; /* counters, never NULL inside the codec */
};

/* Starts a rewrite of body[0..len) into out; stats (never NULL) is reset. */
void kp_rw_init(struct kp_rw *rw, const uint8_t *body, size_t len, kp_map_fn map, void *arg,
                struct kp_writer *out, struct kp_rewrite_stats *stats);

/*
 * Ends a rewrite that returned st: KP_INCOMPLETE becomes KP_MALFORMED (a body that ends early),
 * and on failure *err_offset (when not NULL) is where the reader stopped and rw->out->len is
 * set back to out_len. Returns the final status.
 */
enum kp_status kp_rw_end(struct kp_rw *rw, enum kp_status st, size_t out_len, size_t *err_offset);

/* Appends in.buf[copied..upto) to out and moves copied to upto (no-op when upto <= copied). */
enum kp_status kp_rw_flush(struct kp_rw *rw, size_t upto);

/*
 * NodeId (int32), Host (string; compact when flex is KP_COMPACT), Port (int32): reads them,
 * calls the map, and when it answers true writes the new host and port in place of the old.
 */
enum kp_status kp_rw_address(struct kp_rw *rw, unsigned flex);

/*
 * An array of broker entries: NodeId, Host, Port, then Rack (nullable string) when has_rack,
 * then a tagged-field section when flex. Metadata and DescribeCluster Brokers and every
 * NodeEndpoints array have this layout.
 */
enum kp_status kp_rw_brokers(struct kp_rw *rw, unsigned flex, bool has_rack);

/* Skips a tagged-field section when flex is KP_COMPACT; no-op otherwise. */
enum kp_status kp_skip_tags(struct kp_reader *r, unsigned flex);

/* Reads one partition entry of a response's topics array (nothing in it is rewritten). */
typedef enum kp_status (*kp_partition_fn)(struct kp_reader *r, int16_t version, unsigned flex);

/*
 * Skips a topics array whose entries are: the topic's name (string) or, when by_id, its
 * TopicId (uuid); then an array of partitions, each read by partition (at least
 * partition_min bytes encoded); then a tag section when flex. Produce, Fetch, ShareFetch and
 * ShareAcknowledge responses all have this shape.
 */
enum kp_status kp_skip_topics(struct kp_reader *r, int16_t version, unsigned flex, bool by_id,
                              size_t partition_min, kp_partition_fn partition);

/*
 * The top-level tagged fields of Produce and Fetch responses. When has_endpoints, tag 0 is
 * NodeEndpoints: rewritten, and its size re-encoded when an address changed. Other tags are
 * copied verbatim.
 */
enum kp_status kp_endpoints_rewrite_tags(struct kp_rw *rw, bool has_endpoints);

/* Per-API body walkers; version is already checked against the implemented range. */
enum kp_status kp_metadata_rewrite(struct kp_rw *rw, int16_t version);
enum kp_status kp_coordinator_rewrite(struct kp_rw *rw, int16_t version);
enum kp_status kp_cluster_rewrite(struct kp_rw *rw, int16_t version);
enum kp_status kp_produce_rewrite(struct kp_rw *rw, int16_t version);
enum kp_status kp_fetch_rewrite(struct kp_rw *rw, int16_t version);
enum kp_status kp_share_fetch_rewrite(struct kp_rw *rw, int16_t version);
enum kp_status kp_share_acknowledge_rewrite(struct kp_rw *rw, int16_t version);

/*
 * Frames the codec writes itself (kp_request.c, kp_sasl.c): a size prefix placeholder and the
 * request header for (api_key, version) - v1, or v2 with an empty tagged-field section - at
 * *start; kp_frame_end() patches the prefix once the frame is complete (KP_NOMEM when the writer
 * failed).
 */
enum kp_status kp_request_frame_begin(struct kp_writer *w, int16_t api_key, int16_t version,
                                      int32_t correlation_id, const char *client_id, size_t *start);
enum kp_status kp_frame_end(struct kp_writer *w, size_t start);

/* ApiVersions: checks the version itself, after the error-35 passthrough. */
enum kp_status kp_apiversions_rewrite(struct kp_rw *rw, int16_t version);

#endif
