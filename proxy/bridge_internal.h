/*
 * bridge_internal.h - what the three parts of a bridge share: bridge.c (life cycle: accept,
 * connect, flow control, endings), bridge_req.c (client -> broker) and bridge_resp.c
 * (broker -> client). Nothing outside those three files includes it.
 */
#ifndef KB_PROXY_BRIDGE_INTERNAL_H
#define KB_PROXY_BRIDGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "kp_fetch_stream.h"
#include "proxy/inflight.h"
#include "proxy/log.h"
#include "proxy/loopclock.h"
#include "proxy/metrics.h"
#include "proxy/sockio.h"

struct brokermap_call;
struct bufferevent;
struct evbuffer;
struct event;
struct kb_cluster;
struct kb_settings;
struct kp_request_header;
struct sasl;
struct upstream;

/* What a frame step did: the frame was taken, more bytes are needed, or the bridge is gone. */
enum frame_step { STEP_DONE, STEP_WAIT, STEP_CLOSED };

struct bridge {
    struct kb_cluster *cl;        /* the cluster (a reference): map, metrics, proxy */
    struct kb_settings *set;      /* the settings it was accepted under (a reference) */
    uint64_t id;                  /* connection id, "C#id" in logs */
    int32_t node_id;              /* KB_NODE_BOOTSTRAP or the broker this serves */
    char prefix[112];             /* "C#12 127.0.0.1:50412 node 2" or "... bootstrap" */
    struct bufferevent *client;   /* the plaintext client; NULL once it has gone */
    struct bufferevent *server;   /* the broker; NULL until connected */
    struct upstream *connecting;  /* attempt under way, or NULL */
    size_t next_bootstrap;        /* index of the next bootstrap server to try */
    struct kb_hostport upstream;  /* the broker's name (for SNI, verification and logs) */
    struct inflight inflight;     /* requests waiting for their response */
    struct evbuffer *stage;       /* this bridge's requests, joined into full TLS records */
    size_t req_remaining;         /* bytes still to forward of the current request and of
                                     whole ones read ahead (bridge_scan_ahead) */
    size_t resp_remaining;        /* bytes of the current pass-through response to forward */
    struct kp_fetch_scan fetch;   /* the Fetch response streaming through (bridge_fetch.c) */
    bool fetch_active;            /* fetch is in use; its request stays at the inflight head */
    uint64_t bytes_up;            /* client -> broker, queued */
    uint64_t bytes_down;          /* broker -> client, queued */
    uint64_t responses_rewritten; /* responses that went through the codec */
    double connect_started;       /* monotonic time the upstream attempt began */
    bool draining;                /* finish what is in flight, accept no new request */
    bool sasl_raw;                /* after a SaslHandshake v0: client frames are raw SASL
                                     tokens until one reads as a Kafka request */
    int64_t session_ms;           /* kbridge's SASL session with the broker; 0: no expiry */
    int auth_version;             /* SaslAuthenticate version that session used */
    struct event *reauth_timer;   /* fires before the session ends (bridge_auth.c) */
    bool reauth_wanted;           /* re-authenticate once nothing is in flight */
    struct sasl *sasl;            /* a re-authentication under way, or NULL */
    struct event *linger;         /* set while flushing one side before closing */
    double linger_deadline;       /* when flushing to the broker gives up */
    char finish_why[320];         /* why we are closing once the flush is done */
    struct bridge *prev;          /* proxy list */
    struct bridge *next;          /* proxy list */
};

/* Logs with the bridge's cluster and prefix. */
void bridge_log(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...) KB_PRINTF(3, 4);

/* Logs why and frees the pair. Callers return at once: br is gone. */
void bridge_close(struct bridge *br, enum kb_log_level lvl, const char *fmt, ...) KB_PRINTF(3, 4);

/*
 * Closes once everything queued for the client is written (bounded): reads stop on both sides
 * now. why is logged at the close. br may be freed before this returns.
 */
void bridge_finish(struct bridge *br, const char *why);

/* One direction of a bridge, for bridge_pump(). */
struct pump_dir {
    struct bufferevent *from; /* read side */
    struct bufferevent *to;   /* write side */
    size_t *remaining;        /* bytes of the current frame still to move */
    uint64_t *bytes;          /* this bridge's byte counter */
    kb_counter *metric;       /* the cluster's byte counter */
    enum frame_step (*start)(struct bridge *, struct evbuffer *); /* look at a new frame */
    struct evbuffer *stage; /* requests: collects the frames, then they go out in records */
};

/*
 * Moves every complete-enough frame from d->from to d->to (through d->stage when set): start()
 * looks at each new frame (and may consume it whole, e.g. a rewritten response); the rest of a
 * frame is moved by length. Then throttles d->from if d->to is too full. false when the bridge
 * was closed (its stage went with it: nothing staged outlives the bridge it came from).
 */
bool bridge_pump(struct bridge *br, const struct pump_dir *d);

/*
 * bridge_req.c: hands the staged requests to the broker's output; with more (the last request
 * in stage is incomplete) the bytes past its last full TLS record stay staged, else all go.
 */
void bridge_feed_tls(struct evbuffer *stage, struct evbuffer *out, bool more);

/* bridge_req.c: forwards every request byte available. false when the bridge was closed. */
bool bridge_pump_requests(struct bridge *br);
void bridge_on_client_read(struct bufferevent *bev, void *arg);

/*
 * bridge_resp.c: closes the bridge for a response the rewriter refused: the map's own reason
 * (call->failed), else where the codec stopped (st at byte `at` of `size`). STEP_CLOSED.
 */
enum frame_step bridge_rewrite_failed(struct bridge *br, const struct inflight_entry *req,
                                      const struct brokermap_call *call, enum kp_status st,
                                      size_t at, size_t size);

/*
 * bridge_fetch.c: starts streaming the Fetch v16+ response of total bytes at the start of in
 * (req: its request, left at the head of the in-flight queue until the response is through).
 * STEP_DONE: streaming, the prefix and header are in resp_remaining; STEP_WAIT: the header is
 * not all there; *buffered set instead when the response is better rewritten whole (a header
 * too long to peek, a version the scanner lacks): the caller does that.
 */
enum frame_step bridge_fetch_start(struct bridge *br, struct evbuffer *in, size_t total,
                                   const struct inflight_entry *req, bool *buffered);

/*
 * bridge_fetch.c: the next step of the response streaming through: a piece parsed and passed on
 * (resp_remaining), or the tail rewritten and queued (then the request leaves the queue).
 */
enum frame_step bridge_fetch_step(struct bridge *br, struct evbuffer *in);

/* bridge_resp.c: forwards every complete response available. false when closed. */
bool bridge_pump_responses(struct bridge *br);
void bridge_on_server_read(struct bufferevent *bev, void *arg);

/* bridge.c: the bridge's own callbacks on the broker side again (after a re-authentication). */
void bridge_server_resume(struct bridge *br);

/* bridge_auth.c: upstream_auth_fn, the session terms of a new broker connection. */
void bridge_auth_on_session(void *arg, int64_t session_lifetime_ms, int auth_version);

/* bridge_auth.c: arms re-authentication before the session ends (no-op without a lifetime). */
void bridge_auth_schedule(struct bridge *br);

/*
 * bridge_auth.c: starts the re-authentication that is due once nothing is in flight. false
 * when the bridge was closed.
 */
bool bridge_auth_try(struct bridge *br);

/* bridge_auth.c: cancels a re-authentication and frees its timer. */
void bridge_auth_free(struct bridge *br);

/*
 * bridge_auth.c: the client sent SaslHandshake/SaslAuthenticate while kbridge authenticates
 * for it: the frame (total bytes at the start of in) is dropped, never forwarded, and kbridge
 * answers in order with an error telling the client to remove its SASL settings.
 */
enum frame_step bridge_auth_refuse_client(struct bridge *br, struct evbuffer *in, size_t total,
                                          const struct kp_request_header *hdr);

/*
 * bridge_auth.c: writes kbridge's own answers that are due (at the head of the in-flight queue,
 * between broker responses). false when the bridge was closed.
 */
bool bridge_auth_answer_local(struct bridge *br);

#endif
