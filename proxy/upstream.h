/*
 * upstream.h - one outgoing connection to a broker, in up to four phases: DNS, TCP connect, TLS
 * handshake (skipped with tls = off), SASL authentication (only with sasl_mechanism set; see
 * proxy/sasl.h). Each failure is classified into one sentence an operator can act on
 * ("connection refused ...", "hostname mismatch: ...", "authentication failed (...): ...").
 */
#ifndef KB_PROXY_UPSTREAM_H
#define KB_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "proxy/metrics.h"

struct bufferevent;
struct event_base;
struct evdns_base;
struct kb_cluster_conf;
struct kb_hostport;
struct upstream;

/*
 * Called once per upstream_connect(), unless cancelled first. On success bev is the connected
 * (and verified) bufferevent, now owned by the callee, with no callbacks set, and why is NULL.
 * On failure bev is NULL, why is the cause and reason its class, decided where the failure
 * happened (kbridge_upstream_failures_total's reason label); on success reason is KB_FAIL_N.
 */
typedef void (*upstream_done_fn)(void *arg, struct bufferevent *bev, enum kb_fail_reason reason,
                                 const char *why);

/*
 * Starts connecting to `name` (the broker's advertised or configured address: the name used
 * for SNI and verification) by dialling conf_connect_target(cc, name). ctx is NULL when
 * tls = off. Returns NULL only when allocation fails. The attempt is freed when done fires.
 */
struct upstream *upstream_connect(struct event_base *base, struct evdns_base *dns,
                                  const struct kb_cluster_conf *cc, SSL_CTX *ctx,
                                  const struct kb_hostport *name, upstream_done_fn done, void *arg);

#define KB_SASL_MAX_FRAME (1u << 20) /* largest SASL answer accepted from a broker */

/*
 * With sasl_mechanism set, called once right before a successful done, with the terms of the
 * session just established: session_lifetime_ms (0: no expiry; re-authenticate before it ends,
 * KIP-368) and the SaslAuthenticate version to pass to sasl_start() for that. Optional: call
 * right after upstream_connect().
 */
typedef void (*upstream_auth_fn)(void *arg, int64_t session_lifetime_ms, int auth_version);
void upstream_set_auth_cb(struct upstream *u, upstream_auth_fn auth);

/* Abandons an attempt: done will not be called. NULL is fine. */
void upstream_cancel(struct upstream *u);

/* Builds, once, what every event loop's TLS pipes share (the BIO method, the per-thread read
 * buffer's key). Call on the leader's thread before any worker thread starts. */
bool upstream_threads_prepare(void);

/* Frees a bufferevent done delivered (with the TLS pipe behind it). NULL is fine. */
void upstream_bev_free(struct bufferevent *bev);

/* Request bytes the TLS pipe behind bev took and has not written to the socket (0: tls = off). */
size_t upstream_unsent(struct bufferevent *bev);

/* One-line description of the TLS session on a connected bev ("TLSv1.3 ... peer ..."). */
const char *upstream_describe(struct bufferevent *bev, char *out, size_t outlen);

#endif
