/*
 * kp_fetch_stream.c - the streamed FetchResponse walk (a resumable state machine over small
 * pieces) and the same-length rewrite of its tail. The limits checked are those of the
 * whole-body walk in kp_endpoints.c: an array count whose smallest elements do not fit in the
 * rest of the body, a length past the end of the body, a piece cut off by the end of the body
 * are all KP_MALFORMED, as kp_rewrite_response reports them.
 */
#include "kp_fetch_stream.h"

#include <string.h>

#include "kp_internal.h"

#define KP_PART_FIXED (4 + 2 + 8 + 8 + 8) /* Index, ErrorCode, HighWatermark, LSO, LogStart */

enum kp_status
kp_fetch_scan_init(struct kp_fetch_scan *s, int16_t version, size_t body_len)
{
    memset(s, 0, sizeof(*s));
    if (version < 13 || version > 17) {
        return KP_UNSUPPORTED;
    }
    s->version = version;
    s->body_len = body_len;
    s->state = KP_FS_TOP;
    return KP_OK;
}

/* A compact array count whose elements (min bytes each) must fit in the left body bytes. */
static enum kp_status
kp_scan_count(struct kp_reader *r, size_t left, unsigned flags, size_t min, uint32_t *n)
{
    int32_t len;

    KP_TRY(kp_reader_array_len(r, KP_COMPACT | flags, 0, &len));
    if (len > 0 && (uint64_t)len * min > left - r->pos) {
        return KP_MALFORMED;
    }
    *n = len > 0 ? (uint32_t)len : 0;
    return KP_OK;
}

/* A compact nullable Records length; the value itself is passed on unparsed (*skip). */
static enum kp_status
kp_scan_records(struct kp_reader *r, size_t left, size_t *skip)
{
    uint32_t u;

    KP_TRY(kp_reader_uvarint(r, &u));
    if (u > 0 && ((uint64_t)u - 1 > INT32_MAX || (uint64_t)u - 1 > left - r->pos)) {
        return KP_MALFORMED;
    }
    *skip = u > 0 ? (size_t)u - 1 : 0;
    return KP_OK;
}

/* Moves to state, resolving the end of a partition or a topic (no bytes involved). */
static void
kp_scan_goto(struct kp_fetch_scan *s, enum kp_fetch_state state)
{
    if (state == KP_FS_PART_END) {
        if (--s->parts_left > 0) {
            s->state = KP_FS_PART;
            return;
        }
        s->state = KP_FS_TAGS; /* the topic's tag section */
        s->after = KP_FS_TOPIC_END;
        return;
    }
    if (state == KP_FS_TOPIC_END) {
        s->state = --s->topics_left > 0 ? KP_FS_TOPIC : KP_FS_TAIL;
        return;
    }
    s->state = state;
}

/* Enters a tag section inside the topics; after it, the scan goes to after. */
static void
kp_scan_tags(struct kp_fetch_scan *s, enum kp_fetch_state after)
{
    s->state = KP_FS_TAGS;
    s->after = after;
}

/*
 * Parses the piece s->state names from r (left: body bytes from r's start). On KP_OK s holds
 * the next state and *skip the bytes after the piece to pass on unparsed; on failure s is
 * unchanged except for counters the caller restores.
 */
static enum kp_status
kp_scan_piece(struct kp_fetch_scan *s, struct kp_reader *r, size_t left, size_t *skip)
{
    uint32_t tag, size;

    switch (s->state) {
    case KP_FS_TOP:
        KP_TRY(kp_reader_skip(r, 4 + 2 + 4)); /* ThrottleTimeMs, ErrorCode, SessionId */
        KP_TRY(kp_scan_count(r, left, 0, KP_TOPIC_MIN, &s->topics_left));
        s->state = s->topics_left > 0 ? KP_FS_TOPIC : KP_FS_TAIL;
        return KP_OK;
    case KP_FS_TOPIC:
        KP_TRY(kp_reader_uuid(r, NULL)); /* TopicId */
        KP_TRY(kp_scan_count(r, left, 0, KP_FETCH_PARTITION_MIN, &s->parts_left));
        if (s->parts_left > 0) {
            s->state = KP_FS_PART;
        } else {
            kp_scan_tags(s, KP_FS_TOPIC_END);
        }
        return KP_OK;
    case KP_FS_PART:
        KP_TRY(kp_reader_skip(r, KP_PART_FIXED));
        KP_TRY(kp_scan_count(r, left, KP_NULLABLE, KP_ABORTED_TXN_MIN, &s->txns_left));
        s->state = s->txns_left > 0 ? KP_FS_TXN : KP_FS_PART_REST;
        return KP_OK;
    case KP_FS_TXN:
        KP_TRY(kp_reader_skip(r, 8 + 8)); /* ProducerId, FirstOffset */
        kp_scan_tags(s, --s->txns_left > 0 ? KP_FS_TXN : KP_FS_PART_REST);
        return KP_OK;
    case KP_FS_PART_REST:
        KP_TRY(kp_reader_skip(r, 4)); /* PreferredReadReplica (v11+) */
        KP_TRY(kp_scan_records(r, left, skip));
        kp_scan_tags(s, KP_FS_PART_END); /* DivergingEpoch, CurrentLeader, SnapshotId */
        return KP_OK;
    case KP_FS_TAGS:
        KP_TRY(kp_reader_uvarint(r, &s->tags_left));
        if (s->tags_left > (left - r->pos) / 2) {
            return KP_MALFORMED; /* 2 bytes per field at least */
        }
        if (s->tags_left == 0) {
            kp_scan_goto(s, s->after);
        } else {
            s->state = KP_FS_TAG;
        }
        return KP_OK;
    case KP_FS_TAG:
        KP_TRY(kp_reader_uvarint(r, &tag));
        KP_TRY(kp_reader_uvarint(r, &size));
        if (size > left - r->pos) {
            return KP_MALFORMED;
        }
        *skip = size; /* no tag inside the topics carries an address */
        if (--s->tags_left == 0) {
            kp_scan_goto(s, s->after);
        }
        return KP_OK;
    default:
        return KP_MALFORMED; /* KP_FS_TAIL is the caller's; the END states are never current */
    }
}

enum kp_status
kp_fetch_scan_feed(struct kp_fetch_scan *s, const uint8_t *p, size_t n, size_t *advance)
{
    size_t start = s->pos, off = 0, skip = 0, left, view;
    struct kp_fetch_scan next;
    struct kp_reader r;
    enum kp_status st = KP_OK;

    while (s->state != KP_FS_TAIL && skip == 0) {
        left = s->body_len - s->pos;
        view = n - off < left ? n - off : left;
        kp_reader_init(&r, p + off, view);
        next = *s;
        st = kp_scan_piece(&next, &r, left, &skip);
        if (st != KP_OK) {
            break;
        }
        *s = next;
        s->pos += r.pos + skip;
        off += r.pos;
        if (s->state == KP_FS_TAIL && s->pos == s->body_len) {
            st = KP_MALFORMED; /* no top-level tag section */
            break;
        }
    }
    *advance = s->pos - start;
    if (st == KP_INCOMPLETE) {
        if (view == left || view >= KP_FETCH_PIECE_MAX) {
            return KP_MALFORMED; /* the body ends inside the piece (or a piece this long) */
        }
        return *advance > 0 ? KP_OK : KP_INCOMPLETE;
    }
    return st;
}

/* --- the tail ------------------------------------------------------------------------------ */

static size_t
kp_uvarint_len(uint32_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/*
 * Writes a tail of exactly len bytes: the count + 1, fields (flen bytes, count fields), one
 * padding field that makes up the difference, then trail. KP_MALFORMED when no padding field
 * has that size (less than 3 bytes to make up).
 */
static enum kp_status
kp_tail_assemble(struct kp_writer *out, uint32_t count, const uint8_t *fields, size_t flen,
                 const uint8_t *trail, size_t tlen, size_t len)
{
    static const uint8_t zero[256];
    size_t base = kp_uvarint_len(count + 1) + flen + tlen, d, k, s;
    uint32_t tag;

    if (base > len) {
        return KP_MALFORMED;
    }
    d = len - base;
    /* tag 0x3FFF takes 2 bytes, 0x4000 3: one of them gives any d >= 3 exactly */
    for (tag = KP_PAD_TAG; tag <= KP_PAD_TAG + 1; tag++) {
        for (s = 1; s <= 5; s++) {
            if (d < kp_uvarint_len(tag) + s) {
                continue;
            }
            k = d - kp_uvarint_len(tag) - s;
            if (k > UINT32_MAX || kp_uvarint_len((uint32_t)k) != s) {
                continue;
            }
            KP_TRY(kp_writer_uvarint(out, count + 1));
            KP_TRY(kp_writer_raw(out, fields, flen));
            KP_TRY(kp_writer_uvarint(out, tag));
            KP_TRY(kp_writer_uvarint(out, (uint32_t)k));
            for (; k > 0; k -= k < sizeof(zero) ? k : sizeof(zero)) {
                KP_TRY(kp_writer_raw(out, zero, k < sizeof(zero) ? k : sizeof(zero)));
            }
            return kp_writer_raw(out, trail, tlen);
        }
    }
    return KP_MALFORMED;
}

/* The tail with every NodeEndpoints field (tag 0) left out and padding in its place. */
static enum kp_status
kp_tail_drop(const uint8_t *tail, size_t len, struct kp_writer *out)
{
    struct kp_writer fields;
    struct kp_reader r;
    struct kp_view data;
    uint32_t n, i, tag, kept = 0;
    size_t at;
    enum kp_status st;

    kp_writer_init(&fields);
    kp_reader_init(&r, tail, len);
    st = kp_reader_tag_count(&r, &n); /* parsed once already: cannot fail here */
    for (i = 0; st == KP_OK && i < n; i++) {
        at = r.pos;
        st = kp_reader_tag(&r, &tag, &data);
        if (st == KP_OK && tag != 0) {
            kept++;
            st = kp_writer_raw(&fields, tail + at, r.pos - at);
        }
    }
    if (st == KP_OK) {
        st = kp_tail_assemble(out, kept, fields.buf, fields.len, tail + r.pos, len - r.pos, len);
    }
    kp_writer_free(&fields);
    return st;
}

enum kp_status
kp_fetch_tail_rewrite(int16_t version, const uint8_t *tail, size_t len, kp_map_fn map, void *arg,
                      struct kp_writer *out, struct kp_rewrite_stats *stats,
                      struct kp_fetch_tail_stats *fs, size_t *err_offset)
{
    struct kp_rewrite_stats local;
    struct kp_fetch_tail_stats flocal;
    struct kp_writer w;
    struct kp_reader cr;
    struct kp_rw rw;
    size_t out_len = out->len, fields_end = 0, wfields = 0;
    uint32_t count = 0;
    enum kp_status st;

    stats = stats ? stats : &local;
    fs = fs ? fs : &flocal;
    memset(fs, 0, sizeof(*fs));
    kp_writer_init(&w);
    kp_rw_init(&rw, tail, len, map, arg, &w, stats);
    st = kp_endpoints_rewrite_tags(&rw, version >= 16);
    if (st == KP_OK) {
        fields_end = rw.in.pos;
        st = kp_rw_flush(&rw, fields_end);
        wfields = w.len;
    }
    if (st == KP_OK) {
        st = kp_rw_flush(&rw, len); /* bytes after the fields: copied as the whole body does */
    }
    if (st == KP_OK && w.len == len) {
        st = kp_writer_raw(out, w.buf, w.len);
    } else if (st == KP_OK) {
        kp_reader_init(&cr, tail, len);
        st = kp_reader_tag_count(&cr, &count); /* parsed above: cannot fail */
        if (st == KP_OK) {
            st = w.len < len ? kp_tail_assemble(out, count, w.buf + cr.pos, wfields - cr.pos,
                                                tail + fields_end, len - fields_end, len)
                             : KP_MALFORMED;
            fs->padded = st == KP_OK;
        }
        if (st == KP_MALFORMED) { /* longer, or 1-2 bytes short: drop NodeEndpoints */
            out->len = out_len;
            st = kp_tail_drop(tail, len, out);
            fs->padded = fs->dropped = st == KP_OK;
        }
    }
    kp_writer_free(&w);
    rw.out = out; /* on failure, out is set back to its length on entry */
    return kp_rw_end(&rw, st, out_len, err_offset);
}
