/*
 * test_kp_buf.c - the reader and writer of kp_buf.h: every primitive round-trips, every
 * failure leaves the reader where it was, hostile lengths and over-long varints are refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kp_buf.h"
#include "test.h"

/* A reader over a byte-array literal. */
#define READER(r, ...)                                                                             \
    static const uint8_t r##_bytes[] = {__VA_ARGS__};                                              \
    struct kp_reader r;                                                                            \
    kp_reader_init(&r, r##_bytes, sizeof(r##_bytes))

static void
test_kp_buf_reader_ints_are_big_endian(void)
{
    READER(r, 0xff, 0x12, 0x34, 0x80, 0x00, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
           0x08, 0xff, 0xff, 0xff, 0xfe);
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint32_t u32;

    CHECK_EQ_INT(kp_reader_i8(&r, &i8), KP_OK);
    CHECK_EQ_INT(i8, -1);
    CHECK_EQ_INT(kp_reader_i16(&r, &i16), KP_OK);
    CHECK_EQ_INT(i16, 0x1234);
    CHECK_EQ_INT(kp_reader_i32(&r, &i32), KP_OK);
    CHECK_EQ_INT(i32, INT32_MIN + 1);
    CHECK_EQ_INT(kp_reader_i64(&r, &i64), KP_OK);
    CHECK_EQ_INT(i64, 0x0102030405060708LL);
    CHECK_EQ_INT(kp_reader_u32(&r, &u32), KP_OK);
    CHECK_EQ_INT(u32, 0xfffffffeu);
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
    CHECK_EQ_INT(kp_reader_i8(&r, &i8), KP_INCOMPLETE);
}

static void
test_kp_buf_reader_short_read_keeps_position(void)
{
    READER(r, 0x01, 0x02, 0x03);
    int32_t i32;
    int64_t i64;

    CHECK_EQ_INT(kp_reader_skip(&r, 1), KP_OK);
    CHECK_EQ_INT(kp_reader_i32(&r, &i32), KP_INCOMPLETE);
    CHECK_EQ_INT(r.pos, 1);
    CHECK_EQ_INT(kp_reader_i64(&r, &i64), KP_INCOMPLETE);
    CHECK_EQ_INT(kp_reader_skip(&r, 3), KP_INCOMPLETE);
    CHECK_EQ_INT(kp_reader_skip(&r, SIZE_MAX), KP_INCOMPLETE);
    CHECK_EQ_INT(r.pos, 1);
    CHECK_EQ_INT(kp_reader_skip(&r, 2), KP_OK);
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
}

static void
test_kp_buf_empty_reader(void)
{
    struct kp_reader r;
    uint32_t u;

    kp_reader_init(&r, NULL, 5); /* NULL buffer: treated as empty whatever len says */
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
    CHECK_EQ_INT(kp_reader_uvarint(&r, &u), KP_INCOMPLETE);
    CHECK_EQ_INT(kp_reader_skip(&r, 0), KP_OK);
}

static void
test_kp_buf_uvarint_values(void)
{
    READER(r, 0x00, 0x7f, 0x80, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f);
    uint32_t v;

    CHECK_EQ_INT(kp_reader_uvarint(&r, &v), KP_OK);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(kp_reader_uvarint(&r, &v), KP_OK);
    CHECK_EQ_INT(v, 127);
    CHECK_EQ_INT(kp_reader_uvarint(&r, &v), KP_OK);
    CHECK_EQ_INT(v, 128);
    CHECK_EQ_INT(kp_reader_uvarint(&r, &v), KP_OK);
    CHECK_EQ_INT(v, 300);
    CHECK_EQ_INT(kp_reader_uvarint(&r, &v), KP_OK);
    CHECK_EQ_INT(v, UINT32_MAX);
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
}

static void
test_kp_buf_uvarint_overflow_is_malformed(void)
{
    READER(five_cont, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01); /* 5 continuation bytes */
    READER(wide, 0xff, 0xff, 0xff, 0xff, 0x1f);            /* 33 bits */
    READER(short_read, 0xff, 0xff);
    uint32_t v;
    int32_t s;

    CHECK_EQ_INT(kp_reader_uvarint(&five_cont, &v), KP_MALFORMED);
    CHECK_EQ_INT(five_cont.pos, 0);
    CHECK_EQ_INT(kp_reader_varint(&five_cont, &s), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_uvarint(&wide, &v), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_uvarint(&short_read, &v), KP_INCOMPLETE);
    CHECK_EQ_INT(short_read.pos, 0);
}

static void
test_kp_buf_uvarlong_overflow_is_malformed(void)
{
    READER(max, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    READER(ten_cont, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00);
    READER(wide, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02);
    uint64_t v;
    int64_t s;

    CHECK_EQ_INT(kp_reader_uvarlong(&max, &v), KP_OK);
    CHECK(v == UINT64_MAX);
    CHECK_EQ_INT(kp_reader_uvarlong(&ten_cont, &v), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_varlong(&ten_cont, &s), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_uvarlong(&wide, &v), KP_MALFORMED);
    CHECK_EQ_INT(wide.pos, 0);
}

static void
test_kp_buf_varint_zigzag_round_trip(void)
{
    const int32_t i32s[] = {0, -1, 1, -64, 64, INT32_MIN, INT32_MAX};
    const int64_t i64s[] = {0, -1, 1, INT64_MIN, INT64_MAX, -1234567890123LL};
    struct kp_writer w;
    struct kp_reader r;
    size_t i;

    kp_writer_init(&w);
    for (i = 0; i < sizeof(i32s) / sizeof(i32s[0]); i++) {
        CHECK_EQ_INT(kp_writer_varint(&w, i32s[i]), KP_OK);
    }
    for (i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++) {
        CHECK_EQ_INT(kp_writer_varlong(&w, i64s[i]), KP_OK);
    }
    CHECK_EQ_INT(w.buf[0], 0x00); /* zigzag: 0 -> 0, -1 -> 1, 1 -> 2 */
    CHECK_EQ_INT(w.buf[1], 0x01);
    CHECK_EQ_INT(w.buf[2], 0x02);
    kp_reader_init(&r, w.buf, w.len);
    for (i = 0; i < sizeof(i32s) / sizeof(i32s[0]); i++) {
        int32_t v = 0;

        CHECK_EQ_INT(kp_reader_varint(&r, &v), KP_OK);
        CHECK_EQ_INT(v, i32s[i]);
    }
    for (i = 0; i < sizeof(i64s) / sizeof(i64s[0]); i++) {
        int64_t v = 0;

        CHECK_EQ_INT(kp_reader_varlong(&r, &v), KP_OK);
        CHECK(v == i64s[i]);
    }
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
    kp_writer_free(&w);
}

static void
test_kp_buf_strings(void)
{
    READER(r, 0x00, 0x02, 'h', 'i', 0xff, 0xff, 0x03, 'y', 'o', 0x00, 0x01);
    struct kp_view s;

    CHECK_EQ_INT(kp_reader_string(&r, 0, &s), KP_OK);
    CHECK(s.len == 2 && !s.null && memcmp(s.ptr, "hi", 2) == 0);
    CHECK_EQ_INT(kp_reader_string(&r, 0, &s), KP_MALFORMED); /* null, not nullable */
    CHECK_EQ_INT(r.pos, 4);
    CHECK_EQ_INT(kp_reader_string(&r, KP_NULLABLE, &s), KP_OK);
    CHECK(s.null && s.ptr == NULL && s.len == 0);
    CHECK_EQ_INT(kp_reader_string(&r, KP_COMPACT, &s), KP_OK);
    CHECK(s.len == 2 && memcmp(s.ptr, "yo", 2) == 0);
    CHECK_EQ_INT(kp_reader_string(&r, KP_COMPACT, &s), KP_MALFORMED); /* compact null */
    CHECK_EQ_INT(kp_reader_string(&r, KP_COMPACT | KP_NULLABLE, &s), KP_OK);
    CHECK(s.null);
    CHECK_EQ_INT(kp_reader_string(&r, KP_COMPACT, NULL), KP_OK); /* skip "" */
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
}

static void
test_kp_buf_bad_string_lengths(void)
{
    READER(neg, 0xff, 0xfe, 'a');               /* -2 */
    READER(past_end, 0x00, 0x05, 'a', 'b');     /* 5 > 2 left */
    READER(compact_past_end, 0x06, 'a');        /* compact 5 > 1 left */
    READER(compact_too_long, 0x81, 0x80, 0x02); /* compact length 32768 */
    READER(compact_overflow, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f);
    struct kp_view s;

    CHECK_EQ_INT(kp_reader_string(&neg, KP_NULLABLE, &s), KP_MALFORMED);
    CHECK_EQ_INT(neg.pos, 0);
    CHECK_EQ_INT(kp_reader_string(&past_end, 0, &s), KP_INCOMPLETE);
    CHECK_EQ_INT(past_end.pos, 0);
    CHECK_EQ_INT(kp_reader_string(&compact_past_end, KP_COMPACT, &s), KP_INCOMPLETE);
    CHECK_EQ_INT(compact_past_end.pos, 0);
    CHECK_EQ_INT(kp_reader_string(&compact_too_long, KP_COMPACT, &s), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_string(&compact_overflow, KP_COMPACT, &s), KP_MALFORMED);
}

static void
test_kp_buf_bytes(void)
{
    READER(r, 0x00, 0x00, 0x00, 0x03, 1, 2, 3, 0xff, 0xff, 0xff, 0xff, 0x02, 9, 0x7f, 0xff, 0xff,
           0xff);
    struct kp_view b;

    CHECK_EQ_INT(kp_reader_bytes(&r, 0, &b), KP_OK);
    CHECK(b.len == 3 && b.ptr[2] == 3);
    CHECK_EQ_INT(kp_reader_bytes(&r, KP_NULLABLE, &b), KP_OK);
    CHECK(b.null);
    CHECK_EQ_INT(kp_reader_bytes(&r, KP_COMPACT, &b), KP_OK);
    CHECK(b.len == 1 && b.ptr[0] == 9);
    CHECK_EQ_INT(kp_reader_bytes(&r, 0, &b), KP_INCOMPLETE); /* INT32_MAX bytes: not there */
    CHECK_EQ_INT(kp_reader_remaining(&r), 4);
}

static void
test_kp_buf_array_lengths(void)
{
    READER(neg, 0xff, 0xff, 0xff, 0xfe);
    READER(null, 0xff, 0xff, 0xff, 0xff);
    READER(huge, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0);
    READER(fits, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0);
    READER(compact_huge, 0xff, 0xff, 0xff, 0xff, 0x0f);
    int32_t n = 7;

    CHECK_EQ_INT(kp_reader_array_len(&neg, KP_NULLABLE, 4, &n), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_array_len(&null, 0, 4, &n), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_array_len(&null, KP_NULLABLE, 4, &n), KP_OK);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(kp_reader_array_len(&huge, 0, 1, &n), KP_INCOMPLETE);
    CHECK_EQ_INT(huge.pos, 0);
    CHECK_EQ_INT(kp_reader_array_len(&fits, 0, 4, &n), KP_OK);
    CHECK_EQ_INT(n, 2);
    fits.pos = 0;
    CHECK_EQ_INT(kp_reader_array_len(&fits, 0, 5, &n), KP_INCOMPLETE); /* 2 * 5 > 8 */
    CHECK_EQ_INT(kp_reader_array_len(&compact_huge, KP_COMPACT, 1, &n), KP_MALFORMED);
}

static void
test_kp_buf_compact_array_zero_is_null(void)
{
    READER(r, 0x00, 0x01, 0x03, 0xaa, 0xbb);
    int32_t n;

    CHECK_EQ_INT(kp_reader_array_len(&r, KP_COMPACT, 1, &n), KP_MALFORMED);
    CHECK_EQ_INT(kp_reader_array_len(&r, KP_COMPACT | KP_NULLABLE, 1, &n), KP_OK);
    CHECK_EQ_INT(n, -1);
    CHECK_EQ_INT(kp_reader_array_len(&r, KP_COMPACT, 1, &n), KP_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(kp_reader_array_len(&r, KP_COMPACT, 1, &n), KP_OK);
    CHECK_EQ_INT(n, 2);
}

static void
test_kp_buf_skip_array(void)
{
    READER(r, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 9, 9);
    READER(huge, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0);

    CHECK_EQ_INT(kp_reader_skip_array(&r, KP_COMPACT, 4), KP_OK); /* two int32 */
    CHECK_EQ_INT(r.pos, 9);
    CHECK_EQ_INT(kp_reader_skip_array(&r, KP_COMPACT, 4), KP_MALFORMED); /* compact null */
    CHECK_EQ_INT(kp_reader_skip_array(&r, KP_COMPACT | KP_NULLABLE, 4), KP_OK);
    CHECK_EQ_INT(kp_reader_skip_array(&r, 0, 4), KP_MALFORMED); /* int32 null */
    CHECK_EQ_INT(r.pos, 10);
    CHECK_EQ_INT(kp_reader_skip_array(&r, KP_NULLABLE, 4), KP_OK);
    CHECK_EQ_INT(kp_reader_skip_array(&r, 0, 1), KP_INCOMPLETE); /* 9 elements, 1 byte left */
    CHECK_EQ_INT(r.pos, 14);
    CHECK_EQ_INT(kp_reader_skip_array(&huge, 0, 4), KP_INCOMPLETE);
    CHECK_EQ_INT(huge.pos, 0);
}

static void
test_kp_buf_uuid(void)
{
    READER(r, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17);
    uint8_t id[KP_UUID_LEN];

    CHECK_EQ_INT(kp_reader_uuid(&r, id), KP_OK);
    CHECK(id[0] == 1 && id[15] == 16);
    CHECK_EQ_INT(kp_reader_uuid(&r, NULL), KP_INCOMPLETE);
    CHECK_EQ_INT(r.pos, 16);
}

static void
test_kp_buf_tags(void)
{
    READER(r, 0x02, 0x00, 0x02, 0xaa, 0xbb, 0x81, 0x01, 0x00, 0x07);
    uint32_t n, tag;
    struct kp_view data;

    CHECK_EQ_INT(kp_reader_tag_count(&r, &n), KP_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(kp_reader_tag(&r, &tag, &data), KP_OK);
    CHECK(tag == 0 && data.len == 2 && data.ptr[1] == 0xbb);
    CHECK_EQ_INT(kp_reader_tag(&r, &tag, &data), KP_OK);
    CHECK(tag == 129 && data.len == 0);
    CHECK_EQ_INT(kp_reader_i8(&r, &(int8_t){0}), KP_OK);
    r.pos = 0;
    CHECK_EQ_INT(kp_reader_skip_tags(&r), KP_OK);
    CHECK_EQ_INT(r.pos, 8);
}

static void
test_kp_buf_bad_tags(void)
{
    READER(data_past_end, 0x01, 0x05, 0x03, 0xaa);
    READER(count_past_end, 0x7f, 0x00, 0x00);
    READER(tag_overflow, 0x01, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00);

    CHECK_EQ_INT(kp_reader_skip_tags(&data_past_end), KP_INCOMPLETE);
    CHECK_EQ_INT(data_past_end.pos, 0);
    CHECK_EQ_INT(kp_reader_skip_tags(&count_past_end), KP_INCOMPLETE);
    CHECK_EQ_INT(kp_reader_skip_tags(&tag_overflow), KP_MALFORMED);
    CHECK_EQ_INT(tag_overflow.pos, 0);
}

static void
test_kp_buf_writer_round_trip(void)
{
    static const uint8_t id[KP_UUID_LEN] = {0xde, 0xad, [15] = 0xef};
    struct kp_writer w;
    struct kp_reader r;
    struct kp_view s;
    int8_t i8;
    int16_t i16;
    int32_t i32, n;
    int64_t i64;
    uint32_t u32, tag;
    uint8_t got[KP_UUID_LEN];

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_writer_i8(&w, -5), KP_OK);
    CHECK_EQ_INT(kp_writer_i16(&w, -300), KP_OK);
    CHECK_EQ_INT(kp_writer_i32(&w, INT32_MIN), KP_OK);
    CHECK_EQ_INT(kp_writer_i64(&w, INT64_MIN + 7), KP_OK);
    CHECK_EQ_INT(kp_writer_u32(&w, 0xcafebabe), KP_OK);
    CHECK_EQ_INT(kp_writer_string(&w, 0, "abc", 3), KP_OK);
    CHECK_EQ_INT(kp_writer_string(&w, KP_COMPACT | KP_NULLABLE, NULL, 0), KP_OK);
    CHECK_EQ_INT(kp_writer_bytes(&w, KP_COMPACT, "\x01\x02", 2), KP_OK);
    CHECK_EQ_INT(kp_writer_array_len(&w, KP_NULLABLE, -1), KP_OK);
    CHECK_EQ_INT(kp_writer_array_len(&w, KP_COMPACT, 200), KP_OK);
    CHECK_EQ_INT(kp_writer_uuid(&w, id), KP_OK);
    CHECK_EQ_INT(kp_writer_uvarint(&w, 1), KP_OK);
    CHECK_EQ_INT(kp_writer_tag(&w, 3, "xy", 2), KP_OK);

    kp_reader_init(&r, w.buf, w.len);
    CHECK(kp_reader_i8(&r, &i8) == KP_OK && i8 == -5);
    CHECK(kp_reader_i16(&r, &i16) == KP_OK && i16 == -300);
    CHECK(kp_reader_i32(&r, &i32) == KP_OK && i32 == INT32_MIN);
    CHECK(kp_reader_i64(&r, &i64) == KP_OK && i64 == INT64_MIN + 7);
    CHECK(kp_reader_u32(&r, &u32) == KP_OK && u32 == 0xcafebabe);
    CHECK(kp_reader_string(&r, 0, &s) == KP_OK && s.len == 3 && memcmp(s.ptr, "abc", 3) == 0);
    CHECK(kp_reader_string(&r, KP_COMPACT | KP_NULLABLE, &s) == KP_OK && s.null);
    CHECK(kp_reader_bytes(&r, KP_COMPACT, &s) == KP_OK && s.len == 2 && s.ptr[1] == 2);
    CHECK(kp_reader_array_len(&r, KP_NULLABLE, 0, &n) == KP_OK && n == -1);
    CHECK(kp_reader_array_len(&r, KP_COMPACT, 0, &n) == KP_OK && n == 200);
    CHECK(kp_reader_uuid(&r, got) == KP_OK && memcmp(got, id, KP_UUID_LEN) == 0);
    CHECK(kp_reader_tag_count(&r, &u32) == KP_OK && u32 == 1);
    CHECK(kp_reader_tag(&r, &tag, &s) == KP_OK && tag == 3 && s.len == 2);
    CHECK_EQ_INT(kp_reader_remaining(&r), 0);
    kp_writer_free(&w);
    CHECK(w.buf == NULL && w.len == 0 && w.cap == 0);
}

static void
test_kp_buf_writer_refuses_bad_values(void)
{
    struct kp_writer w;
    char *big = malloc(KP_STRING_MAX + 1);

    kp_writer_init(&w);
    memset(big, 'x', KP_STRING_MAX + 1);
    CHECK_EQ_INT(kp_writer_string(&w, 0, NULL, 0), KP_MALFORMED);
    CHECK_EQ_INT(kp_writer_string(&w, KP_COMPACT, big, KP_STRING_MAX + 1), KP_TOO_LARGE);
    CHECK_EQ_INT(kp_writer_array_len(&w, KP_NULLABLE, -2), KP_MALFORMED);
    CHECK_EQ_INT(kp_writer_array_len(&w, 0, -1), KP_MALFORMED);
    CHECK_EQ_INT(w.len, 0); /* nothing written by a refused call */
    CHECK_EQ_INT(kp_writer_string(&w, KP_COMPACT, big, KP_STRING_MAX), KP_OK);
    CHECK_EQ_INT(w.len, 3 + KP_STRING_MAX); /* 32768 as a uvarint is 3 bytes */
    kp_writer_free(&w);
    free(big);
}

static void
test_kp_buf_writer_grows_and_stays_failed(void)
{
    struct kp_writer w;
    int i;

    kp_writer_init(&w);
    for (i = 0; i < 10000; i++) {
        CHECK_EQ_INT(kp_writer_i32(&w, i), KP_OK);
    }
    CHECK_EQ_INT(w.len, 40000);
    CHECK(w.cap >= w.len);
    CHECK(w.buf[39999] == (uint8_t)9999);
    CHECK_EQ_INT(kp_writer_reserve(&w, SIZE_MAX - 10), KP_NOMEM);
    CHECK(w.failed);
    CHECK_EQ_INT(kp_writer_i8(&w, 1), KP_NOMEM);
    CHECK_EQ_INT(w.len, 40000);
    kp_writer_free(&w);
    CHECK(!w.failed);
}

static void
test_kp_buf_writer_varints_are_shortest(void)
{
    struct kp_writer w;

    kp_writer_init(&w);
    CHECK_EQ_INT(kp_writer_uvarint(&w, 127), KP_OK);
    CHECK_EQ_INT(w.len, 1);
    CHECK_EQ_INT(kp_writer_uvarint(&w, 128), KP_OK);
    CHECK_EQ_INT(w.len, 3);
    CHECK_EQ_INT(kp_writer_uvarint(&w, UINT32_MAX), KP_OK);
    CHECK_EQ_INT(w.len, 8);
    CHECK_EQ_INT(kp_writer_uvarlong(&w, UINT64_MAX), KP_OK);
    CHECK_EQ_INT(w.len, 18);
    kp_writer_free(&w);
}

int
main(void)
{
    RUN(test_kp_buf_reader_ints_are_big_endian);
    RUN(test_kp_buf_reader_short_read_keeps_position);
    RUN(test_kp_buf_empty_reader);
    RUN(test_kp_buf_uvarint_values);
    RUN(test_kp_buf_uvarint_overflow_is_malformed);
    RUN(test_kp_buf_uvarlong_overflow_is_malformed);
    RUN(test_kp_buf_varint_zigzag_round_trip);
    RUN(test_kp_buf_strings);
    RUN(test_kp_buf_bad_string_lengths);
    RUN(test_kp_buf_bytes);
    RUN(test_kp_buf_array_lengths);
    RUN(test_kp_buf_compact_array_zero_is_null);
    RUN(test_kp_buf_skip_array);
    RUN(test_kp_buf_uuid);
    RUN(test_kp_buf_tags);
    RUN(test_kp_buf_bad_tags);
    RUN(test_kp_buf_writer_round_trip);
    RUN(test_kp_buf_writer_refuses_bad_values);
    RUN(test_kp_buf_writer_grows_and_stays_failed);
    RUN(test_kp_buf_writer_varints_are_shortest);
    return TEST_DONE();
}
