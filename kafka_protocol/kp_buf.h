/*
 * kp_buf.h - bounds-checked reader and growable writer for Kafka primitive types: big-endian
 * integers, (zigzag) varints, (compact/nullable) strings and bytes, arrays, tagged-field
 * sections and UUIDs. The reader is a view over caller bytes; the writer owns a heap buffer.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_BUF_H
#define KB_KAFKA_PROTOCOL_KP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_status.h"

/* Encoding flags for strings, bytes and arrays (combine with |). */
#define KP_COMPACT 0x1u  /* flexible versions: unsigned varint length + 1, 0 meaning null */
#define KP_NULLABLE 0x2u /* null is allowed (int16/int32 -1, or compact 0) */

#define KP_STRING_MAX 0x7fff /* longest Kafka string, as the Java codec enforces */
#define KP_UUID_LEN 16       /* bytes of a Kafka uuid */

/*
 * A bounds-checked cursor over a caller-owned byte view. Every kp_reader_* call either reads
 * the whole value and advances pos, or fails and leaves pos where it was, so pos is the offset
 * of the value that failed. Failures: KP_INCOMPLETE when the view ends before the value does
 * (a length or count larger than the bytes left counts as such), KP_MALFORMED when the bytes
 * can never be valid (negative length other than null, null where not nullable, varint longer
 * than its type, string longer than KP_STRING_MAX).
 */
struct kp_reader {
    const uint8_t *buf; /* start of the view; not owned */
    size_t len;         /* bytes in the view; reads never go at or past buf + len */
    size_t pos;         /* offset of the next byte to read, 0 <= pos <= len */
};

/* A decoded string or bytes value: a view into the reader's buffer. */
struct kp_view {
    const uint8_t *ptr; /* first byte; NULL when the value is null */
    size_t len;         /* bytes; 0 when null */
    bool null;          /* the wire said null */
};

/* Starts a reader over buf[0..len). buf may be NULL when len is 0. */
void kp_reader_init(struct kp_reader *r, const uint8_t *buf, size_t len);

/* Bytes left to read. */
size_t kp_reader_remaining(const struct kp_reader *r);

/* Advances over n bytes; KP_INCOMPLETE when fewer are left. */
enum kp_status kp_reader_skip(struct kp_reader *r, size_t n);

/* Big-endian fixed-width integers (Kafka int8..int64, uint32; bool is an int8). */
enum kp_status kp_reader_i8(struct kp_reader *r, int8_t *v);
enum kp_status kp_reader_i16(struct kp_reader *r, int16_t *v);
enum kp_status kp_reader_i32(struct kp_reader *r, int32_t *v);
enum kp_status kp_reader_i64(struct kp_reader *r, int64_t *v);
enum kp_status kp_reader_u32(struct kp_reader *r, uint32_t *v);

/*
 * Varints, little-endian base 128. unsigned varint: at most 5 bytes and 32 bits, unsigned
 * varlong: at most 10 bytes and 64 bits; anything longer or wider is KP_MALFORMED.
 * varint/varlong are the zigzag-encoded signed forms.
 */
enum kp_status kp_reader_uvarint(struct kp_reader *r, uint32_t *v);
enum kp_status kp_reader_uvarlong(struct kp_reader *r, uint64_t *v);
enum kp_status kp_reader_varint(struct kp_reader *r, int32_t *v);
enum kp_status kp_reader_varlong(struct kp_reader *r, int64_t *v);

/*
 * A string: int16 length (KP_COMPACT: unsigned varint length + 1) then the bytes. Null
 * (length -1, compact 0) is KP_MALFORMED unless flags has KP_NULLABLE. s may be NULL to skip.
 */
enum kp_status kp_reader_string(struct kp_reader *r, unsigned flags, struct kp_view *s);

/* Bytes (and records): like a string with an int32 length and no KP_STRING_MAX limit. */
enum kp_status kp_reader_bytes(struct kp_reader *r, unsigned flags, struct kp_view *b);

/*
 * An array length: int32 (KP_COMPACT: unsigned varint + 1). *n is the element count, or -1
 * for null (only with KP_NULLABLE). min_elem is the smallest encoded size of one element: a
 * count whose elements cannot fit in the bytes left is KP_INCOMPLETE, so a hostile count never
 * drives a long loop. Pass 0 only for elements that may be empty.
 */
enum kp_status kp_reader_array_len(struct kp_reader *r, unsigned flags, size_t min_elem,
                                   int32_t *n);

/*
 * Skips an array of fixed-size elements (ReplicaNodes: elem_size 4), null included when
 * flags has KP_NULLABLE. elem_size must not be 0.
 */
enum kp_status kp_reader_skip_array(struct kp_reader *r, unsigned flags, size_t elem_size);

/* A 16-byte uuid into id (id may be NULL to skip). */
enum kp_status kp_reader_uuid(struct kp_reader *r, uint8_t id[KP_UUID_LEN]);

/*
 * Tagged fields (flexible versions). A section is an unsigned varint count followed by that
 * many (tag uvarint, size uvarint, size bytes). kp_reader_tag_count reads the count (checked
 * against the bytes left, 2 per field at least), kp_reader_tag one field: *tag and a view of
 * its data. kp_reader_skip_tags reads and skips a whole section.
 */
enum kp_status kp_reader_tag_count(struct kp_reader *r, uint32_t *n);
enum kp_status kp_reader_tag(struct kp_reader *r, uint32_t *tag, struct kp_view *data);
enum kp_status kp_reader_skip_tags(struct kp_reader *r);

/*
 * A growable output buffer owned by the caller. Every kp_writer_* call appends and returns
 * KP_OK, or KP_NOMEM when an allocation fails; after that failed is set and every later write
 * is refused with KP_NOMEM, so a caller may check once at the end.
 */
struct kp_writer {
    uint8_t *buf; /* heap buffer, NULL until the first write */
    size_t len;   /* bytes written */
    size_t cap;   /* bytes allocated */
    bool failed;  /* an allocation failed; further writes are ignored */
};

/* Starts an empty writer (no allocation). */
void kp_writer_init(struct kp_writer *w);

/* Frees the buffer and leaves w empty, as after kp_writer_init. Safe on an empty writer. */
void kp_writer_free(struct kp_writer *w);

/* Makes room for at least extra more bytes without changing len. */
enum kp_status kp_writer_reserve(struct kp_writer *w, size_t extra);

/* Appends n raw bytes from p (p may be NULL when n is 0). */
enum kp_status kp_writer_raw(struct kp_writer *w, const void *p, size_t n);

/* Big-endian fixed-width integers. */
enum kp_status kp_writer_i8(struct kp_writer *w, int8_t v);
enum kp_status kp_writer_i16(struct kp_writer *w, int16_t v);
enum kp_status kp_writer_i32(struct kp_writer *w, int32_t v);
enum kp_status kp_writer_i64(struct kp_writer *w, int64_t v);
enum kp_status kp_writer_u32(struct kp_writer *w, uint32_t v);

/* Varints in their shortest form; varint/varlong zigzag-encode. */
enum kp_status kp_writer_uvarint(struct kp_writer *w, uint32_t v);
enum kp_status kp_writer_uvarlong(struct kp_writer *w, uint64_t v);
enum kp_status kp_writer_varint(struct kp_writer *w, int32_t v);
enum kp_status kp_writer_varlong(struct kp_writer *w, int64_t v);

/*
 * A string of len bytes from s; s == NULL writes null, which needs KP_NULLABLE (else
 * KP_MALFORMED). KP_TOO_LARGE when len > KP_STRING_MAX. Nothing is written on failure.
 */
enum kp_status kp_writer_string(struct kp_writer *w, unsigned flags, const void *s, size_t len);

/* Bytes: like kp_writer_string with an int32 length; KP_TOO_LARGE past INT32_MAX. */
enum kp_status kp_writer_bytes(struct kp_writer *w, unsigned flags, const void *p, size_t len);

/* An array length; n == -1 writes null (needs KP_NULLABLE), other negatives are KP_MALFORMED. */
enum kp_status kp_writer_array_len(struct kp_writer *w, unsigned flags, int32_t n);

/* A 16-byte uuid. */
enum kp_status kp_writer_uuid(struct kp_writer *w, const uint8_t id[KP_UUID_LEN]);

/*
 * One tagged field: tag, size and len bytes of data (the caller writes the section's count
 * with kp_writer_uvarint first). KP_TOO_LARGE when len does not fit an unsigned varint.
 */
enum kp_status kp_writer_tag(struct kp_writer *w, uint32_t tag, const void *data, size_t len);

#endif
