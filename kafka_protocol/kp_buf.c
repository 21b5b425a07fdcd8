/*
 * kp_buf.c - the codec's only code that touches raw bytes: a reader that checks every length
 * against the bytes left before using it (`len > remaining`, never `pos + len > end`) and a
 * writer that grows geometrically and stays failed after the first allocation error.
 */
#include "kp_buf.h"

#include <stdlib.h>
#include <string.h>

#define KP_WRITER_MIN_CAP 256 /* first allocation; most rewritten bodies are a few KiB */

/* ---- Reader ---------------------------------------------------------------------------- */

void
kp_reader_init(struct kp_reader *r, const uint8_t *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->pos = 0;
}

size_t
kp_reader_remaining(const struct kp_reader *r)
{
    return r->len - r->pos;
}

enum kp_status
kp_reader_skip(struct kp_reader *r, size_t n)
{
    if (n > kp_reader_remaining(r)) {
        return KP_INCOMPLETE;
    }
    r->pos += n;
    return KP_OK;
}

/* Reads n <= 8 big-endian bytes into *v. */
static enum kp_status
kp_reader_be(struct kp_reader *r, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;

    if (n > kp_reader_remaining(r)) {
        return KP_INCOMPLETE;
    }
    for (i = 0; i < n; i++) {
        x = (x << 8) | r->buf[r->pos + i];
    }
    r->pos += n;
    *v = x;
    return KP_OK;
}

/*
 * kp_reader_i8, _i16, _i32, _i64 and _u32: a big-endian read of sizeof(type) bytes, converted
 * through the unsigned type of the same width (two's complement on every supported target).
 */
#define KP_READER_INT(name, type, utype)                                                           \
    enum kp_status kp_reader_##name(struct kp_reader *r, type *v)                                  \
    {                                                                                              \
        uint64_t x;                                                                                \
        enum kp_status st = kp_reader_be(r, sizeof(type), &x);                                     \
                                                                                                   \
        if (st == KP_OK) {                                                                         \
            *v = (type)(utype)x;                                                                   \
        }                                                                                          \
        return st;                                                                                 \
    }

KP_READER_INT(i8, int8_t, uint8_t)
KP_READER_INT(i16, int16_t, uint16_t)
KP_READER_INT(i32, int32_t, uint32_t)
KP_READER_INT(i64, int64_t, uint64_t)
KP_READER_INT(u32, uint32_t, uint32_t)

/*
 * Base-128 varint of at most max_bytes bytes whose value must fit in bits bits. The last
 * allowed byte may carry only the bits left over, so a 5-byte uvarint above 2^32 - 1 and an
 * 11-byte varlong are both rejected rather than silently truncated.
 */
static enum kp_status
kp_reader_base128(struct kp_reader *r, unsigned max_bytes, unsigned bits, uint64_t *v)
{
    uint64_t x = 0;
    unsigned i;

    for (i = 0; i < max_bytes; i++) {
        uint8_t b;
        unsigned shift = 7 * i;

        if (i >= kp_reader_remaining(r)) {
            return KP_INCOMPLETE;
        }
        b = r->buf[r->pos + i];
        if (bits - shift < 7 && (b & 0x7f) >> (bits - shift) != 0) {
            return KP_MALFORMED; /* value bits past the type's width */
        }
        x |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            r->pos += i + 1;
            *v = x;
            return KP_OK;
        }
    }
    return KP_MALFORMED; /* continuation bit on the last allowed byte */
}

enum kp_status
kp_reader_uvarint(struct kp_reader *r, uint32_t *v)
{
    uint64_t x;
    enum kp_status st;

    if (r->pos < r->len && r->buf[r->pos] < 0x80) {
        *v = r->buf[r->pos++]; /* one byte: nearly every length, count and tag on the wire */
        return KP_OK;
    }
    st = kp_reader_base128(r, 5, 32, &x);

    if (st == KP_OK) {
        *v = (uint32_t)x;
    }
    return st;
}

enum kp_status
kp_reader_uvarlong(struct kp_reader *r, uint64_t *v)
{
    return kp_reader_base128(r, 10, 64, v);
}

enum kp_status
kp_reader_varint(struct kp_reader *r, int32_t *v)
{
    uint32_t x;
    enum kp_status st = kp_reader_uvarint(r, &x);

    if (st == KP_OK) {
        *v = (int32_t)((x >> 1) ^ (0u - (x & 1u)));
    }
    return st;
}

enum kp_status
kp_reader_varlong(struct kp_reader *r, int64_t *v)
{
    uint64_t x;
    enum kp_status st = kp_reader_uvarlong(r, &x);

    if (st == KP_OK) {
        *v = (int64_t)((x >> 1) ^ (0u - (x & 1u)));
    }
    return st;
}

/*
 * The length prefix shared by strings, bytes and arrays: int16 or int32 (width 2 or 4), or an
 * unsigned varint + 1 with KP_COMPACT. *n is -1 for null. Null without KP_NULLABLE, a negative
 * length other than -1, or a length above max is KP_MALFORMED. Does not advance on failure.
 */
static enum kp_status
kp_reader_length(struct kp_reader *r, unsigned flags, size_t width, int64_t max, int64_t *n)
{
    struct kp_reader save = *r;
    enum kp_status st;
    int64_t len;

    if (flags & KP_COMPACT) {
        uint32_t u;

        st = kp_reader_uvarint(r, &u);
        len = (int64_t)u - 1;
    } else if (width == 2) {
        int16_t s;

        st = kp_reader_i16(r, &s);
        len = s;
    } else {
        int32_t s;

        st = kp_reader_i32(r, &s);
        len = s;
    }
    if (st != KP_OK) {
        return st;
    }
    if (len < -1 || (len == -1 && !(flags & KP_NULLABLE)) || len > max) {
        *r = save;
        return KP_MALFORMED;
    }
    *n = len;
    return KP_OK;
}

/* String or bytes body after its length prefix. */
static enum kp_status
kp_reader_blob(struct kp_reader *r, unsigned flags, size_t width, int64_t max, struct kp_view *out)
{
    size_t start = r->pos;
    int64_t n;
    enum kp_status st = kp_reader_length(r, flags, width, max, &n);
    struct kp_view v = {NULL, 0, true};

    if (st != KP_OK) {
        return st;
    }
    if (n >= 0) {
        if ((uint64_t)n > kp_reader_remaining(r)) {
            r->pos = start;
            return KP_INCOMPLETE;
        }
        v.ptr = r->buf + r->pos;
        v.len = (size_t)n;
        v.null = false;
        r->pos += (size_t)n;
    }
    if (out) {
        *out = v;
    }
    return KP_OK;
}

enum kp_status
kp_reader_string(struct kp_reader *r, unsigned flags, struct kp_view *s)
{
    return kp_reader_blob(r, flags, 2, KP_STRING_MAX, s);
}

enum kp_status
kp_reader_bytes(struct kp_reader *r, unsigned flags, struct kp_view *b)
{
    return kp_reader_blob(r, flags, 4, INT32_MAX, b);
}

enum kp_status
kp_reader_array_len(struct kp_reader *r, unsigned flags, size_t min_elem, int32_t *n)
{
    size_t start = r->pos;
    int64_t len;
    enum kp_status st = kp_reader_length(r, flags, 4, INT32_MAX, &len);

    if (st != KP_OK) {
        return st;
    }
    if (min_elem > UINT32_MAX) {
        min_elem = UINT32_MAX; /* keeps len * min_elem below 2^63 */
    }
    /* a multiplication, not a division: this runs for every array of every body */
    if (len > 0 && (uint64_t)len * min_elem > kp_reader_remaining(r)) {
        r->pos = start;
        return KP_INCOMPLETE;
    }
    *n = (int32_t)len;
    return KP_OK;
}

enum kp_status
kp_reader_skip_array(struct kp_reader *r, unsigned flags, size_t elem_size)
{
    int32_t n;
    enum kp_status st = kp_reader_array_len(r, flags, elem_size, &n);

    if (st == KP_OK && n > 0) {
        r->pos += (size_t)n * elem_size; /* kp_reader_array_len checked it fits */
    }
    return st;
}

enum kp_status
kp_reader_uuid(struct kp_reader *r, uint8_t id[KP_UUID_LEN])
{
    if (KP_UUID_LEN > kp_reader_remaining(r)) {
        return KP_INCOMPLETE;
    }
    if (id) {
        memcpy(id, r->buf + r->pos, KP_UUID_LEN);
    }
    r->pos += KP_UUID_LEN;
    return KP_OK;
}

enum kp_status
kp_reader_tag_count(struct kp_reader *r, uint32_t *n)
{
    size_t start = r->pos;
    uint32_t count;
    enum kp_status st = kp_reader_uvarint(r, &count);

    if (st != KP_OK) {
        return st;
    }
    if (count > kp_reader_remaining(r) / 2) {
        r->pos = start;
        return KP_INCOMPLETE;
    }
    *n = count;
    return KP_OK;
}

enum kp_status
kp_reader_tag(struct kp_reader *r, uint32_t *tag, struct kp_view *data)
{
    size_t start = r->pos;
    uint32_t t, size;
    enum kp_status st = kp_reader_uvarint(r, &t);

    if (st == KP_OK) {
        st = kp_reader_uvarint(r, &size);
    }
    if (st == KP_OK && size > kp_reader_remaining(r)) {
        st = KP_INCOMPLETE;
    }
    if (st != KP_OK) {
        r->pos = start;
        return st;
    }
    *tag = t;
    data->ptr = r->buf + r->pos;
    data->len = size;
    data->null = false;
    r->pos += size;
    return KP_OK;
}

enum kp_status
kp_reader_skip_tags(struct kp_reader *r)
{
    size_t start = r->pos;
    uint32_t n, i, tag;
    struct kp_view data;
    enum kp_status st;

    if (r->pos < r->len && r->buf[r->pos] == 0) {
        r->pos++; /* the usual empty section */
        return KP_OK;
    }
    st = kp_reader_tag_count(r, &n);

    for (i = 0; st == KP_OK && i < n; i++) {
        st = kp_reader_tag(r, &tag, &data);
    }
    if (st != KP_OK) {
        r->pos = start;
    }
    return st;
}

/* ---- Writer ---------------------------------------------------------------------------- */

void
kp_writer_init(struct kp_writer *w)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->failed = false;
}

void
kp_writer_free(struct kp_writer *w)
{
    free(w->buf);
    kp_writer_init(w);
}

enum kp_status
kp_writer_reserve(struct kp_writer *w, size_t extra)
{
    size_t cap;
    uint8_t *p;

    if (w->failed) {
        return KP_NOMEM;
    }
    if (extra <= w->cap - w->len) {
        return KP_OK;
    }
    if (extra > SIZE_MAX / 2 - w->len) {
        w->failed = true;
        return KP_NOMEM;
    }
    cap = w->cap ? w->cap : KP_WRITER_MIN_CAP;
    while (extra > cap - w->len) {
        cap *= 2;
    }
    p = realloc(w->buf, cap);
    if (p == NULL) {
        w->failed = true;
        return KP_NOMEM;
    }
    w->buf = p;
    w->cap = cap;
    return KP_OK;
}

enum kp_status
kp_writer_raw(struct kp_writer *w, const void *p, size_t n)
{
    enum kp_status st = kp_writer_reserve(w, n);

    if (st == KP_OK && n > 0) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
    return st;
}

/* Appends the low n bytes of v, big-endian. */
static enum kp_status
kp_writer_be(struct kp_writer *w, size_t n, uint64_t v)
{
    uint8_t b[8];
    size_t i;

    for (i = 0; i < n; i++) {
        b[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    return kp_writer_raw(w, b, n);
}

enum kp_status
kp_writer_i8(struct kp_writer *w, int8_t v)
{
    return kp_writer_be(w, 1, (uint8_t)v);
}

enum kp_status
kp_writer_i16(struct kp_writer *w, int16_t v)
{
    return kp_writer_be(w, 2, (uint16_t)v);
}

enum kp_status
kp_writer_i32(struct kp_writer *w, int32_t v)
{
    return kp_writer_be(w, 4, (uint32_t)v);
}

enum kp_status
kp_writer_u32(struct kp_writer *w, uint32_t v)
{
    return kp_writer_be(w, 4, v);
}

enum kp_status
kp_writer_i64(struct kp_writer *w, int64_t v)
{
    return kp_writer_be(w, 8, (uint64_t)v);
}

enum kp_status
kp_writer_uvarlong(struct kp_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return kp_writer_raw(w, b, n);
}

enum kp_status
kp_writer_uvarint(struct kp_writer *w, uint32_t v)
{
    return kp_writer_uvarlong(w, v);
}

enum kp_status
kp_writer_varint(struct kp_writer *w, int32_t v)
{
    uint32_t u = (uint32_t)v;

    return kp_writer_uvarint(w, (u << 1) ^ (0u - (u >> 31)));
}

enum kp_status
kp_writer_varlong(struct kp_writer *w, int64_t v)
{
    uint64_t u = (uint64_t)v;

    return kp_writer_uvarlong(w, (u << 1) ^ (0u - (u >> 63)));
}

/*
 * Writes a length prefix (int16 or int32 by width, or compact) for n bytes or elements, n == -1
 * meaning null. Validates against flags and max before writing anything.
 */
static enum kp_status
kp_writer_length(struct kp_writer *w, unsigned flags, size_t width, int64_t max, int64_t n)
{
    if (n < -1 || (n == -1 && !(flags & KP_NULLABLE))) {
        return KP_MALFORMED;
    }
    if (n > max) {
        return KP_TOO_LARGE;
    }
    if (flags & KP_COMPACT) {
        return kp_writer_uvarint(w, (uint32_t)(n + 1));
    }
    if (width == 2) {
        return kp_writer_i16(w, (int16_t)n);
    }
    return kp_writer_i32(w, (int32_t)n);
}

static enum kp_status
kp_writer_blob(struct kp_writer *w, unsigned flags, size_t width, int64_t max, const void *p,
               size_t len)
{
    int64_t n = p ? (len > (size_t)max ? max + 1 : (int64_t)len) : -1;
    enum kp_status st = kp_writer_length(w, flags, width, max, n);

    if (st == KP_OK && p) {
        st = kp_writer_raw(w, p, len);
    }
    return st;
}

enum kp_status
kp_writer_string(struct kp_writer *w, unsigned flags, const void *s, size_t len)
{
    return kp_writer_blob(w, flags, 2, KP_STRING_MAX, s, len);
}

enum kp_status
kp_writer_bytes(struct kp_writer *w, unsigned flags, const void *p, size_t len)
{
    return kp_writer_blob(w, flags, 4, INT32_MAX, p, len);
}

enum kp_status
kp_writer_array_len(struct kp_writer *w, unsigned flags, int32_t n)
{
    return kp_writer_length(w, flags, 4, INT32_MAX, n);
}

enum kp_status
kp_writer_uuid(struct kp_writer *w, const uint8_t id[KP_UUID_LEN])
{
    return kp_writer_raw(w, id, KP_UUID_LEN);
}

enum kp_status
kp_writer_tag(struct kp_writer *w, uint32_t tag, const void *data, size_t len)
{
    enum kp_status st;

    if (len > UINT32_MAX) {
        return KP_TOO_LARGE;
    }
    st = kp_writer_uvarint(w, tag);
    if (st == KP_OK) {
        st = kp_writer_uvarint(w, (uint32_t)len);
    }
    if (st == KP_OK) {
        st = kp_writer_raw(w, data, len);
    }
    return st;
}
