/*
 * provider.h - one AWS credentials provider per cluster, shared by all workers: a thread that
 * fetches once at start, refreshes ahead of expiry (margin + jitter), single-flight, and keeps
 * the current credentials through refresh failures until they expire. Event-loop threads only
 * ever copy what it holds (aws_provider_get): no network call, no wait beyond a mutex.
 */
#ifndef KB_AWS_PROVIDER_H
#define KB_AWS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws/creds.h"

struct aws_provider;

/* Numbers for metrics, /readyz and `kbridge check`; a snapshot taken under the lock. */
struct aws_provider_stats {
    bool valid;                      /* holds credentials that have not expired */
    bool fetched_once;               /* at least one fetch has finished (either way) */
    time_t expiration;               /* of the current credentials; 0: none or static keys */
    long long seconds_left;          /* until expiration; -1 when none; LLONG_MAX when static */
    uint64_t refresh_ok;             /* fetches that gave credentials (the first one included) */
    uint64_t refresh_failed;         /* fetches that failed */
    long long clock_skew_s;          /* local clock minus the last AWS answer's Date; 0 if none */
    char source[AWS_SOURCE_MAX];     /* of the current credentials, "" when none */
    char principal_arn[AWS_ARN_MAX]; /* assumed-role ARN when known, else "" */
    char key_hint[32];               /* aws_creds_key_hint of the current key, "" when none */
};

/*
 * Starts a provider for cc (settings resolved now, see aws_settings_init) and its thread, which
 * begins the first fetch at once. NULL with the reason in err. Logs state changes (first
 * credentials, refresh failed / recovered, expired) once each, at cluster scope; never a secret.
 */
struct aws_provider *aws_provider_new(const struct kb_cluster_conf *cc, char *err,
                                      size_t errlen) KB_MUSTCHECK;

/*
 * For reload: true when cc resolves to the settings p already works from, so the cluster can keep
 * p (and its credentials, with no new STS call); false means: start a new provider for cc, swap,
 * then free the old one. Always false while p holds keys from the shared files, so a reload
 * re-reads a rotated credentials file.
 */
bool aws_provider_matches(struct aws_provider *p, const struct kb_cluster_conf *cc);

/*
 * Stops the thread (an in-flight fetch finishes first, within its timeout) and wipes. For a sole
 * owner (tools, `kbridge check`); shared providers use aws_provider_ref / aws_provider_release.
 */
void aws_provider_free(struct aws_provider *p); /* NULL is fine */

/* One more reference (aws_provider_new gives the first); any thread. Returns p. */
struct aws_provider *aws_provider_ref(struct aws_provider *p);

/*
 * Drops a reference; any thread, never blocks: at the last one the thread is told to stop and
 * frees the provider itself once an in-flight fetch is over. NULL is fine.
 */
void aws_provider_release(struct aws_provider *p);

/*
 * At process exit, after the last release: waits (blocking) until the threads of released
 * providers have ended, so nothing of theirs outlives main (LeakSanitizer, valgrind). Each
 * thread ends within one fetch's timeout.
 */
void aws_provider_join_released(void);

/*
 * Copies the current credentials into out when they are valid (not expired); thread-safe, never
 * blocks on the network. false (out wiped) when there are none: aws_provider_reason says why.
 * The caller wipes out with aws_creds_clear() when done.
 */
bool aws_provider_get(struct aws_provider *p, struct aws_creds *out) KB_MUSTCHECK;

/*
 * Why there are no valid credentials ("" when there are), for /readyz and logs: the last fetch
 * error, "not fetched yet", or "expired at ... and the refresh failed: ...".
 */
void aws_provider_reason(struct aws_provider *p, char *out, size_t outlen);

void aws_provider_stats(struct aws_provider *p, struct aws_provider_stats *out);

/*
 * Waits up to timeout_ms for the first fetch to finish (for `kbridge check` and tools; never on
 * an event loop). true when it finished, whatever the outcome.
 */
bool aws_provider_wait_first(struct aws_provider *p, int timeout_ms);

/*
 * Asks for a refresh now because a broker refused key_id as expired, if key_id is still the
 * current access key (once a fetch has replaced it, later refusals of it change nothing).
 * Single-flight: a fetch already running is not doubled. Returns at once; true when a fetch
 * was asked for.
 */
bool aws_provider_refresh_stale(struct aws_provider *p, const char *key_id);

/* What `kbridge check` reports about a cluster's credentials; no secret in it. */
struct aws_provider_whoami {
    char source[AWS_SOURCE_MAX]; /* which source gave the credentials */
    char key_hint[32];           /* aws_creds_key_hint */
    time_t expiration;           /* 0: static keys */
    char arn[AWS_ARN_MAX];       /* GetCallerIdentity's Arn: the assumed-role ARN, or the user */
    char account[32];            /* GetCallerIdentity's Account */
    long long clock_skew_s;      /* local clock minus STS's Date */
};

/*
 * Waits up to wait_ms for the first fetch, then asks STS who the current credentials are
 * (GetCallerIdentity, SigV4-signed). Blocking: for `kbridge check` and tools, never an event
 * loop. false with the reason (no valid credentials and why, or STS's error) in err.
 */
bool aws_provider_whoami(struct aws_provider *p, int wait_ms, struct aws_provider_whoami *out,
                         char *err, size_t errlen) KB_MUSTCHECK;

/*
 * When the provider refreshes credentials that expire at expiration, obtained at now: margin
 * before expiry = min(5 min, lifetime / 4), minus a jitter of up to a fifth of the margin (so
 * clusters and restarts spread out). jitter01 is in [0, 1). Pure, for tests.
 */
time_t aws_provider_refresh_at(time_t now, time_t expiration, double jitter01);

#endif
