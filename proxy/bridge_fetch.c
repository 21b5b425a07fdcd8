/*
 * bridge_fetch.c - Fetch v16+ responses streamed through (issue 16 item 4). Their only broker
 * addresses are in NodeEndpoints, a top-level tagged field after every topic, so the body is
 * walked by the codec's scanner (kp_fetch_stream.h) as it arrives: each small piece it parses,
 * and each Records value by its length, is moved to the client by evbuffer chains (no copy),
 * like a pass-through response. Only the tail is held and rewritten, to its own length, since
 * the size prefix went out first. Memory per connection stays within the watermarks whatever
 * the response size: bridge_pump() throttles the broker as for any other response.
 *
 * The request stays at the head of the in-flight queue until the tail is out, so nothing that
 * waits for "nothing in flight" (draining, re-authentication, kbridge's own answers, the idle
 * timeout) runs in the middle of a response.
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "kp_api.h"
#include "kp_frame.h"
#include "proxy/bridge_internal.h"
#include "proxy/brokermap.h"
#include "proxy/cluster.h"

/* The response header is peeked from this many bytes at most; a longer one is rewritten whole. */
#define KB_FETCH_HEAD_PEEK 256

enum frame_step
bridge_fetch_start(struct bridge *br, struct evbuffer *in, size_t total,
                   const struct inflight_entry *req, bool *buffered)
{
    uint8_t head[KB_FETCH_HEAD_PEEK];
    size_t n = total < sizeof(head) ? total : sizeof(head), hlen = 0;
    int32_t cid;

    *buffered = false;
    if (evbuffer_get_length(in) < n) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, head, n);
    if (kp_response_header_decode(head + KP_FRAME_PREFIX, n - KP_FRAME_PREFIX, req->api_key,
                                  req->api_version, &cid, &hlen) != KP_OK ||
        kp_fetch_scan_init(&br->fetch, req->api_version, total - KP_FRAME_PREFIX - hlen) != KP_OK) {
        *buffered = true; /* the whole-body path decodes it again and says what is wrong */
        return STEP_DONE;
    }
    metrics_observe(&br->cl->metrics->request_latency, loopclock_now() - req->sent);
    br->fetch_active = true;
    br->resp_remaining = KP_FRAME_PREFIX + hlen;
    return STEP_DONE;
}

/* Ends the stream: the response is through, its request leaves the queue. */
static void
bridge_fetch_done(struct bridge *br, const struct kp_rewrite_stats *stats,
                  const struct kp_fetch_tail_stats *fs)
{
    const struct inflight_entry *req = inflight_peek(&br->inflight);

    br->responses_rewritten++;
    metrics_count_rewrite(br->cl->metrics, KP_API_FETCH, stats->rewritten);
    if (fs->dropped) {
        br->cl->metrics->endpoints_dropped++;
    }
    if (log_enabled(KB_LOG_DEBUG)) {
        bridge_log(br, KB_LOG_DEBUG,
                   "response Fetch v%d correlation id %d: %u addresses, %u rewritten, %u capped "
                   "(streamed%s)",
                   req->api_version, (int)req->correlation_id, stats->addresses, stats->rewritten,
                   stats->capped,
                   fs->dropped  ? "; NodeEndpoints dropped: kbridge's addresses are longer"
                   : fs->padded ? "; padded to the sent size"
                                : "");
    }
    br->fetch_active = false;
    inflight_pop(&br->inflight);
}

/* The tail (top-level tagged fields): held whole, rewritten to its length, queued. */
static enum frame_step
bridge_fetch_tail(struct bridge *br, struct evbuffer *in)
{
    const struct inflight_entry *req = inflight_peek(&br->inflight);
    size_t len = br->fetch.body_len - br->fetch.pos, err_off = 0;
    struct evbuffer *out = bufferevent_get_output(br->client);
    bool current = !cluster_is_stale_for(br->cl, br->set);
    struct brokermap_call call = {.map = br->cl->map, .learn = current};
    struct kp_rewrite_stats stats = {0};
    struct kp_fetch_tail_stats fs = {0};
    const uint8_t *p;
    struct kp_writer w;
    enum kp_status st;
    int rc;

    if (evbuffer_get_length(in) < len) {
        return STEP_WAIT;
    }
    p = evbuffer_pullup(in, (ev_ssize_t)len);
    if (!p) {
        bridge_close(br, KB_LOG_ERROR, "out of memory holding a %zu-byte Fetch tail", len);
        return STEP_CLOSED;
    }
    kp_writer_init(&w);
    st = kp_fetch_tail_rewrite(req->api_version, p, len, brokermap_map, &call, &w, &stats, &fs,
                               &err_off);
    if (st != KP_OK || call.failed) {
        kp_writer_free(&w);
        br->cl->metrics->protocol_errors++;
        return bridge_rewrite_failed(br, req, &call, st, br->fetch.pos + err_off,
                                     br->fetch.body_len);
    }
    if (memcmp(w.buf, p, len) == 0) {
        rc = evbuffer_remove_buffer(in, out, len) == (int)len ? 0 : -1; /* unchanged: no copy */
    } else {
        rc = evbuffer_add(out, w.buf, len);
        evbuffer_drain(in, len);
    }
    kp_writer_free(&w);
    if (rc != 0) {
        bridge_close(br, KB_LOG_ERROR, "out of memory queueing a response");
        return STEP_CLOSED;
    }
    br->bytes_down += len;
    br->cl->metrics->bytes_down += len;
    bridge_fetch_done(br, &stats, &fs);
    return STEP_DONE;
}

enum frame_step
bridge_fetch_step(struct bridge *br, struct evbuffer *in)
{
    uint8_t piece[KP_FETCH_PIECE_MAX];
    size_t left = br->fetch.body_len - br->fetch.pos, avail = evbuffer_get_length(in), n, advance;
    enum kp_status st;

    if (br->fetch.state == KP_FS_TAIL) {
        return bridge_fetch_tail(br, in);
    }
    n = left < sizeof(piece) ? left : sizeof(piece);
    n = avail < n ? avail : n;
    evbuffer_copyout(in, piece, n);
    st = kp_fetch_scan_feed(&br->fetch, piece, n, &advance);
    if (st == KP_INCOMPLETE) {
        return STEP_WAIT;
    }
    if (st != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR,
                     "cannot parse Fetch v%d response (%s at byte %zu of %zu); closing (what came "
                     "before holds no broker address and was passed on)",
                     inflight_peek(&br->inflight)->api_version, kp_status_str(st), br->fetch.pos,
                     br->fetch.body_len);
        return STEP_CLOSED;
    }
    if (advance == 0) {
        return bridge_fetch_tail(br, in); /* reached the tail */
    }
    br->resp_remaining = advance;
    return STEP_DONE;
}
