/*
 * bridge_req.c - the request direction of a bridge (client -> broker). Each request's header
 * (and acks for Produce) is read to remember which response to expect; the rest of the frame is
 * moved by length, all the requests one read brought together (bridge_scan_ahead). Requests
 * wait in the bridge's own staging buffer until they fill whole 16 KiB TLS records or end
 * (bridge_feed_tls).
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "kp_api.h"
#include "kp_frame.h"
#include "proxy/bridge_internal.h"
#include "proxy/cluster.h"
#include "proxy/settings.h"

#define KB_HEADER_PEEK 64 /* first guess of how many bytes a request header needs */
/* Top-up read after a full 4 KiB libevent read. A little under 256 KiB: libevent rounds a new
 * chain (data plus its header) up to a power of two, so 256 KiB exactly would allocate 512. */
#define KB_READ_MORE ((256 * 1024) - 256)
#define KB_TLS_RECORD 16384 /* a full TLS record's payload */

/*
 * After a SaslHandshake v0 (pre-KIP-152 clients, e.g. kafka-python 2.0), the client sends raw
 * SASL tokens: a size prefix and the token, no Kafka header. Each is forwarded by length and
 * answered by one raw frame; the first frame that reads as a Kafka request ends the exchange.
 * STEP_DONE with req_remaining set: a token, being forwarded; STEP_DONE with req_remaining 0:
 * a request, to be read as usual.
 */
static enum frame_step
bridge_start_sasl_token(struct bridge *br, struct evbuffer *in, size_t total)
{
    size_t need =
        total < KP_FRAME_PREFIX + KB_HEADER_PEEK ? total : KP_FRAME_PREFIX + KB_HEADER_PEEK;
    const uint8_t *p;

    if (evbuffer_get_length(in) < need) {
        return STEP_WAIT;
    }
    p = evbuffer_pullup(in, (ev_ssize_t)need);
    if (!p) {
        bridge_close(br, KB_LOG_ERROR, "out of memory reading a request header");
        return STEP_CLOSED;
    }
    if (kp_request_plausible(p + KP_FRAME_PREFIX, need - KP_FRAME_PREFIX)) {
        br->sasl_raw = false;
        bridge_log(br, KB_LOG_DEBUG, "SASL (SaslHandshake v0) exchange over; Kafka requests again");
        return STEP_DONE;
    }
    /* Never logged: the token is a credential. */
    bridge_log(br, KB_LOG_DEBUG, "raw SASL token, %zu bytes (SaslHandshake v0)", total);
    if (!inflight_push_kind(&br->inflight, 0, -1, 0, INFLIGHT_RAW_SASL, loopclock_now())) {
        bridge_close(br, KB_LOG_WARN, "client has more than %d requests in flight",
                     KB_INFLIGHT_MAX);
        return STEP_CLOSED;
    }
    br->req_remaining = total;
    return STEP_DONE;
}

/*
 * Counts a request whose header was read, remembers the response it expects, and adds its
 * bytes to those bridge_pump moves on (req_remaining).
 */
static enum frame_step
bridge_record_request(struct bridge *br, const struct kp_request_header *hdr, size_t total,
                      bool expects)
{
    if (log_enabled(KB_LOG_DEBUG)) {
        bridge_log(br, KB_LOG_DEBUG, "request %s v%d correlation id %d, %zu bytes%s",
                   kp_api_name(hdr->api_key), hdr->api_version, (int)hdr->correlation_id, total,
                   expects ? "" : " (acks=0: no response)");
    }
    metrics_count_request(br->cl->metrics, hdr->api_key);
    if (expects && !inflight_push(&br->inflight, hdr->correlation_id, hdr->api_key,
                                  hdr->api_version, loopclock_now())) {
        bridge_close(br, KB_LOG_WARN, "client has more than %d requests in flight",
                     KB_INFLIGHT_MAX);
        return STEP_CLOSED;
    }
    br->req_remaining += total;
    return STEP_DONE;
}

/*
 * After the request at the front of `in` was started: reads the headers of the requests that
 * follow it in `in` too, so that bridge_pump moves them all with one evbuffer_remove_buffer
 * (whole chains, no copy) instead of one partial-chain copy (and often a new chain) per 1 KiB
 * frame. Only ordinary requests whose header is in the first KB_HEADER_PEEK bytes are taken
 * here; anything else (a header not all there yet, a bad size or header, SASL, draining) stops
 * the scan and is met by bridge_start_request at the front of the buffer, as before.
 */
static enum frame_step
bridge_scan_ahead(struct bridge *br, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in), max = br->set->conf->max_frame_bytes;
    uint8_t head[KP_FRAME_PREFIX + KB_HEADER_PEEK];
    struct kp_request_header hdr;
    struct evbuffer_ptr at;
    size_t size, total, got;
    bool expects = true;

    if (br->req_remaining >= avail ||
        evbuffer_ptr_set(in, &at, br->req_remaining, EVBUFFER_PTR_SET) != 0) {
        return STEP_DONE;
    }
    while (!br->draining && !br->reauth_wanted && !br->sasl_raw) {
        got = avail - br->req_remaining;
        got = got < sizeof(head) ? got : sizeof(head);
        if (got < KP_FRAME_PREFIX || evbuffer_copyout_from(in, &at, head, got) != (ev_ssize_t)got ||
            kp_frame_size(head, KP_FRAME_PREFIX, max, &size) != KP_OK) {
            break;
        }
        total = KP_FRAME_PREFIX + size;
        if (got < total && got < sizeof(head)) {
            break; /* the header may not be all there yet */
        }
        got = got < total ? got : total;
        if (kp_request_header_decode(head + KP_FRAME_PREFIX, got - KP_FRAME_PREFIX, &hdr) !=
                KP_OK ||
            kp_request_expects_response(head + KP_FRAME_PREFIX, got - KP_FRAME_PREFIX, &hdr,
                                        &expects) != KP_OK ||
            hdr.api_key == KP_API_SASL_HANDSHAKE || hdr.api_key == KP_API_SASL_AUTHENTICATE) {
            break;
        }
        if (bridge_record_request(br, &hdr, total, expects) == STEP_CLOSED) {
            return STEP_CLOSED;
        }
        if (br->req_remaining >= avail || evbuffer_ptr_set(in, &at, total, EVBUFFER_PTR_ADD) != 0) {
            break; /* this one ends past what has arrived */
        }
    }
    return STEP_DONE;
}

/* Reads the header of the request at the start of in and records it. */
static enum frame_step
bridge_start_request(struct bridge *br, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    size_t max = br->set->conf->max_frame_bytes;
    uint8_t pre[KP_FRAME_PREFIX];
    struct kp_request_header hdr;
    enum kp_status st;
    size_t size, total, need;
    const uint8_t *p;
    bool expects = true;

    if (br->draining || br->reauth_wanted) {
        /* No new request once draining, nor while a re-authentication is due or running. */
        bufferevent_disable(br->client, EV_READ);
        return STEP_WAIT;
    }
    if (avail < KP_FRAME_PREFIX) {
        return STEP_WAIT;
    }
    evbuffer_copyout(in, pre, sizeof(pre));
    st = kp_frame_size(pre, sizeof(pre), max, &size);
    if (st != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(
            br, KB_LOG_WARN, "client sent a request frame with %s size %d%s",
            st == KP_TOO_LARGE ? "a too large" : "an invalid",
            (int)((uint32_t)pre[0] << 24 | (uint32_t)pre[1] << 16 | (uint32_t)pre[2] << 8 | pre[3]),
            st == KP_TOO_LARGE ? " (above max_frame_bytes)" : "");
        return STEP_CLOSED;
    }
    total = KP_FRAME_PREFIX + size;
    if (br->sasl_raw) {
        enum frame_step step = bridge_start_sasl_token(br, in, total);
        if (step != STEP_DONE || br->req_remaining > 0) {
            return step;
        }
    }
    need = total < KP_FRAME_PREFIX + KB_HEADER_PEEK ? total : KP_FRAME_PREFIX + KB_HEADER_PEEK;
    for (;;) {
        if (avail < need) {
            return STEP_WAIT;
        }
        p = evbuffer_pullup(in, (ev_ssize_t)need);
        if (!p) {
            bridge_close(br, KB_LOG_ERROR, "out of memory reading a request header");
            return STEP_CLOSED;
        }
        st = kp_request_header_decode(p + KP_FRAME_PREFIX, need - KP_FRAME_PREFIX, &hdr);
        if (st == KP_OK) {
            st = kp_request_expects_response(p + KP_FRAME_PREFIX, need - KP_FRAME_PREFIX, &hdr,
                                             &expects);
        }
        if (st != KP_INCOMPLETE || need == total) {
            break;
        }
        need = need * 4 < total ? need * 4 : total;
    }
    if (st != KP_OK) {
        br->cl->metrics->protocol_errors++;
        bridge_close(br, KB_LOG_WARN, "client sent a malformed request header (%s)",
                     st == KP_INCOMPLETE ? "frame ends inside it" : kp_status_str(st));
        return STEP_CLOSED;
    }
    if (br->set->cc->sasl_mechanism != KB_SASL_NONE &&
        (hdr.api_key == KP_API_SASL_HANDSHAKE || hdr.api_key == KP_API_SASL_AUTHENTICATE)) {
        return bridge_auth_refuse_client(br, in, total, &hdr);
    }
    if (bridge_record_request(br, &hdr, total, expects) == STEP_CLOSED) {
        return STEP_CLOSED;
    }
    return bridge_scan_ahead(br, in);
}

/*
 * Hands staged request bytes to the broker's bufferevent. The TLS pipe makes full records of
 * whatever it is given and a partial one at the end, so while the last request is still
 * arriving, the bytes past its last full record wait here for the rest: the broker cannot act
 * on part of a request, so holding them delays nothing, and a 1 MiB Produce read in several
 * bursts leaves in full records instead of a partial one per burst.
 */
void
bridge_feed_tls(struct evbuffer *stage, struct evbuffer *out, bool more)
{
    size_t len = evbuffer_get_length(stage);
    size_t hold = more ? len % KB_TLS_RECORD : 0;

    if (len > hold) {
        evbuffer_remove_buffer(stage, out, len - hold);
    }
}

bool
bridge_pump_requests(struct bridge *br)
{
    const struct pump_dir d = {br->client,
                               br->server,
                               &br->req_remaining,
                               &br->bytes_up,
                               &br->cl->metrics->bytes_up,
                               bridge_start_request,
                               br->stage};

    return bridge_pump(br, &d);
}

void
bridge_on_client_read(struct bufferevent *bev, void *arg)
{
    struct bridge *br = arg;

    (void)bev;
    /* libevent 2.1 reads 4 KiB per event (plus a FIONREAD); read on, up to 256 KiB, while the
     * broker side has room: a large Produce costs three system calls per 260 KiB, not per 68. */
    if (br->server && evbuffer_get_length(bufferevent_get_output(br->server)) <
                          br->set->conf->buffer_high_bytes) {
        sockio_read_more(br->client, KB_READ_MORE);
    }
    bridge_pump_requests(br);
}
