/*
 * kp_fetch_stream.h - a FetchResponse body (v13-v17, flexible with topic ids) walked as its bytes
 * arrive, so a proxy can pass topics and records on while they stream and hold only the tail:
 * the top-level tagged fields where NodeEndpoints (tag 0, KIP-951) lives, after every topic.
 *
 * The scanner validates what the whole-body rewriter (kp_rewrite_response) validates, piece by
 * piece: each piece (a header of the body, a topic, a partition, an aborted transaction, a
 * tagged field's tag and size) is parsed from at most KP_FETCH_PIECE_MAX contiguous bytes; a
 * Records value or a tagged field's data of length L is "pass L bytes on unparsed". Nothing is
 * copied or kept between calls but a few counters.
 *
 * The tail is rewritten by kp_fetch_tail_rewrite to exactly its original length, because the
 * frame's size prefix went out first. A shorter NodeEndpoints is padded with one unknown tagged
 * field (tag KP_PAD_TAG, or KP_PAD_TAG + 1 where only a 3-byte tag makes the length exact; zero
 * data) that clients skip: Java keeps it in _unknownTaggedFields, librdkafka skips unknown tags.
 * A NodeEndpoints that would grow is dropped and the tail padded instead: it is only a hint (a
 * client without it refreshes Metadata), and an upstream address never reaches the client.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_FETCH_STREAM_H
#define KB_KAFKA_PROTOCOL_KP_FETCH_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_buf.h"
#include "kp_rewrite.h"
#include "kp_status.h"

/* The most bytes one piece needs; a caller offers min(this, bytes left in the body) or more. */
#define KP_FETCH_PIECE_MAX 64

/* The padding field's tag: far above any tag FetchResponse defines (0 is NodeEndpoints). */
#define KP_PAD_TAG 0x3FFFu

/* Where a scan is. */
enum kp_fetch_state {
    KP_FS_TOP,       /* ThrottleTimeMs, ErrorCode, SessionId, the topics count */
    KP_FS_TOPIC,     /* TopicId, the partitions count */
    KP_FS_PART,      /* a partition up to its AbortedTransactions count */
    KP_FS_TXN,       /* ProducerId, FirstOffset of one aborted transaction */
    KP_FS_PART_REST, /* PreferredReadReplica, the Records length */
    KP_FS_TAGS,      /* the count of a tag section inside the topics */
    KP_FS_TAG,       /* one tagged field's tag and size */
    KP_FS_TAIL,      /* the top-level tagged fields: rewrite with kp_fetch_tail_rewrite */
    KP_FS_PART_END,  /* (only ever in after) a partition's tag section is done */
    KP_FS_TOPIC_END  /* (only ever in after) a topic's tag section is done */
};

/* One scan in progress; the caller owns it (no allocation). */
struct kp_fetch_scan {
    int16_t version;           /* 13..17 */
    size_t body_len;           /* the body: the frame after its size prefix and header */
    size_t pos;                /* body bytes accounted for (parsed, or passed on unparsed) */
    enum kp_fetch_state state; /* the next piece */
    enum kp_fetch_state after; /* where a tag section inside the topics returns to */
    uint32_t topics_left;      /* topics not finished, the current one included */
    uint32_t parts_left;       /* partitions of the current topic not finished */
    uint32_t txns_left;        /* aborted transactions of the current partition still to read */
    uint32_t tags_left;        /* fields of the current tag section still to read */
};

/* Starts a scan of a body of body_len bytes. KP_UNSUPPORTED outside v13-v17. */
enum kp_status kp_fetch_scan_init(struct kp_fetch_scan *s, int16_t version, size_t body_len);

/*
 * Parses pieces from p[0..n), the body bytes at offset s->pos. *advance is how many body bytes
 * may now be passed on as they are: every piece parsed, and all of a Records value or tag data
 * met (passed unparsed, so *advance can exceed n). It stops after such a value, when the next
 * piece is not all in p, or in KP_FS_TAIL (then body_len - pos bytes are the tail).
 * KP_OK: *advance > 0, or the scan is in KP_FS_TAIL. KP_INCOMPLETE: offer more bytes (only
 * when n < KP_FETCH_PIECE_MAX and p does not reach the end of the body). KP_MALFORMED: the body
 * is not a valid FetchResponse; the piece that failed starts at body offset s->pos.
 */
enum kp_status kp_fetch_scan_feed(struct kp_fetch_scan *s, const uint8_t *p, size_t n,
                                  size_t *advance);

/* What kp_fetch_tail_rewrite did beyond the addresses. */
struct kp_fetch_tail_stats {
    bool padded;  /* a padding field was added */
    bool dropped; /* NodeEndpoints was dropped: rewritten it would not fit */
};

/*
 * Rewrites the tail of a version FetchResponse (its top-level tagged fields and any bytes after
 * them) of len bytes into out (appended), exactly len bytes long. When the rewrite keeps the
 * length the bytes are kp_rewrite_response's. map, arg, stats as in kp_rewrite_response; fs may
 * be NULL. KP_MALFORMED (at *err_offset in the tail) as kp_rewrite_response fails, KP_TOO_LARGE,
 * KP_NOMEM; on failure out->len is what it was.
 */
enum kp_status kp_fetch_tail_rewrite(int16_t version, const uint8_t *tail, size_t len,
                                     kp_map_fn map, void *arg, struct kp_writer *out,
                                     struct kp_rewrite_stats *stats, struct kp_fetch_tail_stats *fs,
                                     size_t *err_offset);

#endif
