/*
 * fetch_stream_drive.h - drives kp_fetch_scan_feed / kp_fetch_tail_rewrite over a body that
 * "arrives" in pieces, the way proxy/bridge_resp.c does over an evbuffer: it offers at most
 * KP_FETCH_PIECE_MAX bytes of what has arrived, passes *advance bytes on as they are, waits for
 * more on KP_INCOMPLETE, and rewrites the tail once all of it is there. Shared by the
 * differential fuzz harness and the unit tests (static: each includes it once).
 */
#ifndef KB_TESTS_FETCH_STREAM_DRIVE_H
#define KB_TESTS_FETCH_STREAM_DRIVE_H

#include <stdint.h>
#include <stdlib.h>

#include "kp_buf.h"
#include "kp_fetch_stream.h"

/* The next arrival size from *seed (a xorshift state): 1..4096 bytes, mostly short. */
static size_t
drive_chop(uint32_t *seed)
{
    uint32_t x = *seed ? *seed : 0x9e3779b9u;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *seed = x;
    return (x & 3) == 0 ? 1 + (x >> 8) % 4096 : 1 + (x >> 8) % 40;
}

/*
 * Streams body[0..len) of a version FetchResponse into out; arrivals are chopped by seed
 * (0: everything at once). KP_OK or the status that stopped it (out then holds what was passed
 * on before). *passed, when not NULL, is how many bytes went out before the tail.
 */
static enum kp_status
drive_stream(int16_t version, const uint8_t *body, size_t len, uint32_t seed, kp_map_fn map,
             void *arg, struct kp_writer *out, struct kp_rewrite_stats *stats,
             struct kp_fetch_tail_stats *fs, size_t *passed)
{
    struct kp_fetch_scan s;
    size_t have = 0, n, advance;
    enum kp_status st = kp_fetch_scan_init(&s, version, len);

    while (st == KP_OK && s.state != KP_FS_TAIL) {
        if (have == s.pos || (have < len && seed != 0 && have - s.pos < KP_FETCH_PIECE_MAX &&
                              (drive_chop(&seed) & 1))) {
            have += seed ? drive_chop(&seed) : len;
            have = have > len ? len : have;
        }
        n = have - s.pos < KP_FETCH_PIECE_MAX ? have - s.pos : KP_FETCH_PIECE_MAX;
        st = kp_fetch_scan_feed(&s, body + s.pos, n, &advance);
        if (st == KP_INCOMPLETE) {
            if (have == len) {
                abort(); /* all of the body offered: the scanner must decide */
            }
            st = KP_OK;
            have = have + 1 > len ? len : have + 1;
            continue;
        }
        if (st != KP_OK) {
            break;
        }
        if (advance == 0 && s.state != KP_FS_TAIL) {
            abort(); /* KP_OK promises progress */
        }
        if (s.pos > len || kp_writer_raw(out, body + s.pos - advance, advance) != KP_OK) {
            abort();
        }
        have = have < s.pos ? s.pos : have; /* skipped bytes arrived on their way through */
    }
    if (passed) {
        *passed = out->len;
    }
    if (st == KP_OK) {
        st = kp_fetch_tail_rewrite(version, body + s.pos, len - s.pos, map, arg, out, stats, fs,
                                   NULL);
    }
    return st;
}

#endif
