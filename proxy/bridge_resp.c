/*
 * bridge_resp.c - the response direction of a bridge (broker -> client). Each response is
 * matched to the oldest request in flight by correlation id; responses that may carry broker
 * addresses are buffered whole and rewritten by the codec, except Fetch v16+ which streams
 * (bridge_fetch.c); all others are moved by length (evbuffer chains, no copy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "kp_api.h"
#include "kp_frame.h"
#include "kp_rewrite.h"
#include "proxy/bridge_internal.h"
#include "proxy/brokermap.h"
#include "proxy/cluster.h"
#include "proxy/settings.h"

static void
bridge_free_chunk(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Queues the rewritten frame: new size prefix, the original header, the writer's body (taken). */
static bool
bridge_queue_rewritten(struct evbuffer *out, const uint8_t *hdr, size_t hlen, struct kp_writer *w)
{
    size_t nsize = hlen + w->len;
    uint8_t pre[KP_FRAME_PREFIX] = {(uint8_t)(nsize >> 24), (uint8_t)(nsize >> 16),
                                    (uint8_t)(nsize >> 8), (uint8_t)nsize};

    if (evbuffer_add(out, pre, sizeof(pre)) != 0 || evbuffer_add(out, hdr, hlen) != 0) {
        kp_writer_free(w);
        return false;
    }
    if (w->len == 0) {
        kp_writer_free(w);
        return true;
    }
    /* Hand the writer's buffer to the evbuffer instead of copying it again. */
    if (evbuffer_add_reference(out, w->buf, w->len, bridge_free_chunk, NULL) != 0) {
        kp_writer_free(w);
        return false;
    }
    return true;
}

enum frame_step
bridge_rewrite_failed(struct bridge *br, const struct inflight_entry *req,
                      const struct brokermap_call *call, enum kp_status st, size_t at, size_t size)
{
    if (call->failed) {
        bridge_close(br, KB_LOG_ERROR, "%s v%d response not forwarded: %s",
                     kp_api_name(req->api_key), req->api_version, call->err);
    } else {
        bridge_close(br, KB_LOG_ERROR,
                     "cannot rewrite %s v%d response (%s at byte %zu of %zu); closing rather "
                     "than pass on unrewritten broker addresses",
                     kp_api_name(req->api_key), req->api_version, kp_status_str(st), at, size);
    }
    return STEP_CLOSED;
}

/* Rewrites one whole buffered response frame of `total` bytes into the client's output. */
static enum frame_step
bridge_rewrite_response(struct bridge *br, struct evbuffer *in, size_t total,
                        const struct inflight_entry *req)
{
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)total);
    size_t size = total - KP_FRAME_PREFIX, hlen = 0, err_off = 0, nsize;
    size_t max = br->set->conf->max_frame_bytes;
    bool current = !cluster_is_stale_for(br->cl, br->set);
    struct brokermap_call call = {.map = br->cl->map, .learn = current};
    struct kp_rewrite_stats stats = {0};
    struct kp_writer w;
    enum kp_status st;
    int32_t cid;

    if (!p) {
        bridge_close(br, KB_LOG_ERROR, "out of memory buffering a %zu-byte response", total);
        return STEP_CLOSED;
    }
    kp_writer_init(&w);
    st = kp_response_header_decode(p + KP_FRAME_PREFIX, size, req->api_key, req->api_version, &cid,
                                   &hlen);
    if (st == KP_OK) {
        st = kp_rewrite_response(req->api_key, req->api_version, p + KP_FRAME_PREFIX + hlen,
                                 size - hlen, brokermap_map, &call, &w, &stats, &err_off);
    }
    if (st != KP_OK || call.failed || w.failed) {
        kp_writer_free(&w);
        return bridge_rewrite_failed(br, req, &call, st, err_off, size);
    }
    nsize = hlen + w.len;
    if (nsize > max || nsize > INT32_MAX) {
        kp_writer_free(&w);
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR,
                     "%s v%d response not forwarded: rewritten it would be %zu bytes, above "
                     "max_frame_bytes (%zu); raise max_frame_bytes or shorten advertised_host",
                     kp_api_name(req->api_key), req->api_version, nsize, max);
        return STEP_CLOSED;
    }
    if (!bridge_queue_rewritten(bufferevent_get_output(br->client), p + KP_FRAME_PREFIX, hlen,
                                &w)) {
        bridge_close(br, KB_LOG_ERROR, "out of memory queueing a response");
        return STEP_CLOSED;
    }
    evbuffer_drain(in, total);
    br->bytes_down += KP_FRAME_PREFIX + nsize;
    br->cl->metrics->bytes_down += KP_FRAME_PREFIX + nsize;
    br->responses_rewritten++;
    metrics_count_rewrite(br->cl->metrics, req->api_key, stats.rewritten);
    if (req->api_key == KP_API_METADATA && current) {
        br->cl->metrics->last_ready = metrics_now(); /* a verified Metadata exchange */
    }
    if (log_enabled(KB_LOG_DEBUG)) {
        bridge_log(br, KB_LOG_DEBUG,
                   "response %s v%d correlation id %d: %u addresses, %u rewritten, %u capped",
                   kp_api_name(req->api_key), req->api_version, (int)cid, stats.addresses,
                   stats.rewritten, stats.capped);
    }
    return STEP_DONE;
}

/* The answer to a raw SASL token: one frame with no Kafka header, forwarded by length. */
static enum frame_step
bridge_start_sasl_answer(struct bridge *br, struct evbuffer *in)
{
    uint8_t pre[KP_FRAME_PREFIX];
    size_t size = 0;

    if (evbuffer_get_length(in) < sizeof(pre)) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, pre, sizeof(pre));
    if (kp_frame_size(pre, sizeof(pre), br->set->conf->max_frame_bytes, &size) != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR, "broker sent a SASL token frame with an invalid size");
        return STEP_CLOSED;
    }
    inflight_pop(&br->inflight);
    br->resp_remaining = KP_FRAME_PREFIX + size;
    return STEP_DONE;
}

/*
 * A SaslHandshake v0 answer with no error switches the client to raw SASL tokens (see
 * bridge_start_sasl_token). STEP_WAIT until its error code has arrived.
 */
static enum frame_step
bridge_note_sasl_handshake(struct bridge *br, struct evbuffer *in)
{
    uint8_t head[KP_RESPONSE_PEEK + 2];

    if (evbuffer_get_length(in) < sizeof(head)) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, head, sizeof(head));
    br->sasl_raw = head[KP_RESPONSE_PEEK] == 0 && head[KP_RESPONSE_PEEK + 1] == 0;
    return STEP_DONE;
}

/* Looks at the response starting at in: pass it through by length, or rewrite it whole. */
static enum frame_step
bridge_start_response(struct bridge *br, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    uint8_t head[KP_RESPONSE_PEEK];
    const struct inflight_entry *req;
    struct inflight_entry r;
    size_t size = 0, total;
    enum kp_status st;
    int32_t cid = 0;

    if (!bridge_auth_answer_local(br)) {
        return STEP_CLOSED;
    }
    if (br->fetch_active) {
        return bridge_fetch_step(br, in); /* the rest of a response streaming through */
    }
    req = inflight_peek(&br->inflight);
    if (req && req->kind == INFLIGHT_RAW_SASL) {
        return bridge_start_sasl_answer(br, in);
    }
    if (avail < sizeof(head)) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, head, sizeof(head));
    st = kp_frame_response_peek(head, sizeof(head), br->set->conf->max_frame_bytes, &size, &cid);
    if (st != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR, "broker sent a response frame with %s size",
                     st == KP_TOO_LARGE ? "a size above max_frame_bytes" : "an invalid");
        return STEP_CLOSED;
    }
    total = KP_FRAME_PREFIX + size;
    if (!req || req->correlation_id != cid) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_ERROR,
                     "broker sent a response with correlation id %d, expected %s%d", (int)cid,
                     req ? "" : "none; ", req ? (int)req->correlation_id : 0);
        return STEP_CLOSED;
    }
    if (req->api_key == KP_API_SASL_HANDSHAKE && req->api_version == 0 &&
        bridge_note_sasl_handshake(br, in) == STEP_WAIT) {
        return STEP_WAIT;
    }
    if (!kp_api_response_needs_rewrite(req->api_key, req->api_version)) {
        metrics_observe(&br->cl->metrics->request_latency, loopclock_now() - req->sent);
        inflight_pop(&br->inflight);
        br->resp_remaining = total;
        return STEP_DONE;
    }
    if (req->api_key == KP_API_FETCH) {
        bool buffered;
        enum frame_step step = bridge_fetch_start(br, in, total, req, &buffered);

        if (!buffered) {
            return step;
        }
    }
    if (avail < total) {
        return STEP_WAIT; /* rewriting needs the whole frame */
    }
    r = *req;
    metrics_observe(&br->cl->metrics->request_latency, loopclock_now() - r.sent);
    inflight_pop(&br->inflight);
    return bridge_rewrite_response(br, in, total, &r);
}

bool
bridge_pump_responses(struct bridge *br)
{
    const struct pump_dir d = {br->server,
                               br->client,
                               &br->resp_remaining,
                               &br->bytes_down,
                               &br->cl->metrics->bytes_down,
                               bridge_start_response,
                               NULL};

    if (!bridge_pump(br, &d) || !bridge_auth_answer_local(br) || !bridge_auth_try(br)) {
        return false;
    }
    if (br->draining && br->inflight.count == 0 && br->req_remaining == 0 &&
        br->resp_remaining == 0) {
        bridge_finish(br, "drained: every request in flight was answered");
        return false;
    }
    return true;
}

void
bridge_on_server_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    bridge_pump_responses(arg);
}
