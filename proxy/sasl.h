/*
 * sasl.h - runs the SASL exchange (proxy/sasl_fsm.h) on a connected upstream bufferevent: the
 * thin I/O driver. upstream.c starts it right after the TLS handshake when sasl_mechanism is
 * set; the bridge can start it again on an established connection for KIP-368
 * re-authentication (see sasl_start()).
 */
#ifndef KB_PROXY_SASL_H
#define KB_PROXY_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct kb_cluster_conf;
struct sasl;

/*
 * Fires once per sasl_start() unless cancelled first, from a libevent callback (never from
 * inside sasl_start). ok: authenticated; session_lifetime_ms is the broker's
 * SessionLifetimeMs (0: no expiry) and auth_version the SaslAuthenticate version used (pass it
 * to the next sasl_start on this connection). !ok: why is one sentence starting with
 * SASL_FAIL_PREFIX, naming the mechanism, the broker and, when it refused, its own message.
 * The driver is freed before done is called; bev is the caller's again, with its callbacks
 * cleared (set yours before returning to the loop).
 */
typedef void (*sasl_done_fn)(void *arg, bool ok, int64_t session_lifetime_ms, int auth_version,
                             const char *why);

/*
 * Authenticates bev (connected, TLS verified) with cc's sasl_mechanism: SCRAM/PLAIN with
 * sasl_username and the secret; AWS_MSK_IAM/OAUTHBEARER with a copy of the current credentials
 * of cc->aws_provider (never a network call) and conf_aws_region(cc), signed afresh now. host
 * names the broker in messages and is what AWS_MSK_IAM signs for.
 * auth_version: -1 on a new connection (ApiVersions first), or the version a previous exchange
 * on this connection reported (re-authentication: SaslHandshake first, as KIP-368 wants).
 * timeout_ms bounds the whole exchange; max_frame caps a broker answer.
 *
 * The driver replaces bev's callbacks, enables reading and writing, and never frees bev. For
 * re-authentication the caller first stops forwarding client requests and waits until no
 * response is outstanding (the broker must see no other request during the exchange; our
 * correlation ids start at SASL_CORRELATION_BASE), then calls this; bytes the broker sends
 * after the last SASL answer stay in bev's input buffer for the caller.
 *
 * cc must stay valid until done fires (the bridge's pinned snapshot): the credentials are
 * copied when the exchange starts. Returns NULL with why filled when it cannot start (no
 * mechanism configured, no valid AWS credentials: the provider's reason, out of memory); done
 * will not fire then.
 */
struct sasl *sasl_start(struct bufferevent *bev, const struct kb_cluster_conf *cc, const char *host,
                        int auth_version, int timeout_ms, size_t max_frame, sasl_done_fn done,
                        void *arg, char *why, size_t whylen);

/*
 * Whether cc's mechanism has what it needs to start right now: true without a mechanism or for
 * SCRAM/PLAIN; for the IAM mechanisms, true when the cluster's provider holds valid AWS
 * credentials. false with one sentence starting with SASL_FAIL_PREFIX and the provider's reason
 * in why. Lets a connection fail before dialling when there is nothing to sign with (no TLS
 * handshake wasted, and no back-off: the brokers refused nothing). Thread-safe, never blocks.
 */
bool sasl_ready(const struct kb_cluster_conf *cc, char *why, size_t whylen);

/* Abandons the exchange: done will not fire, bev's callbacks are cleared. NULL is fine. */
void sasl_cancel(struct sasl *s);

#endif
