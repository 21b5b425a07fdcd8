/*
 * provider.c - the credentials thread. All state is under one mutex; the thread drops it only
 * around aws_creds_fetch(), so getters never wait for the network. Each transition (first
 * credentials, refresh failing with a new reason, recovered, expired, clock skew) logs once.
 */
#include "aws/provider.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aws/sts.h"
#include "proxy/log.h"

#define AWS_REFRESH_MARGIN_MAX 300 /* refresh at most 5 min before expiry... */
#define AWS_BACKOFF_MAX 60         /* retry a failed fetch at most a minute later */
#define AWS_SKEW_MAX 300           /* SigV4 refuses requests dated more than 5 min off */

struct aws_provider {
    pthread_mutex_t lock; /* guards everything below but settings */
    pthread_cond_t cond;  /* wakes the thread (stop, refresh_stale) and first-fetch waiters */
    pthread_t thread;     /* the fetcher */
    struct aws_settings settings;  /* resolved at creation; read-only afterwards */
    struct aws_creds creds;        /* the current credentials when has_creds */
    bool has_creds;                /* creds holds something (maybe expired) */
    bool expired_logged;           /* "expired" was logged for the current creds */
    bool failing;                  /* the last fetch failed */
    bool fetched_once;             /* a fetch has finished */
    bool stop;                     /* aws_provider_free asked the thread to end */
    struct aws_released *released; /* set by aws_provider_release, with detached */
    bool detached;                 /* the last reference went (aws_provider_release): the
                                      thread frees the provider when it ends */
    atomic_int refs;               /* aws_provider_ref / aws_provider_release */
    bool force;                    /* aws_provider_refresh_stale asked for a fetch */
    bool fetching;                 /* a fetch is running (the lock is not held meanwhile) */
    bool skew_logged;              /* the current clock skew was logged */
    uint64_t ok;                   /* fetches that gave credentials */
    uint64_t failed;               /* fetches that failed */
    long long skew;                /* local clock minus the last AWS Date, seconds */
    time_t refresh_at;             /* next fetch; 0 = at once */
    unsigned backoff;              /* seconds before the next retry after a failure */
    unsigned seed;                 /* rand_r state for the jitter */
    char reason[AWS_ERR_MAX];      /* the last fetch error, "" after a success */
};

/* "2026-12-01T20:30:00Z" */
static const char *
aws_time_str(time_t t, char *out, size_t outlen)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, outlen, "%lld", (long long)t);
    }
    return out;
}

time_t
aws_provider_refresh_at(time_t now, time_t expiration, double jitter01)
{
    long long life = (long long)(expiration - now), margin, jitter;

    if (life <= 0) {
        return now;
    }
    margin = life / 4 < AWS_REFRESH_MARGIN_MAX ? life / 4 : AWS_REFRESH_MARGIN_MAX;
    jitter = (long long)((double)margin / 5 * jitter01);
    return expiration - (time_t)(margin + jitter);
}

/* Logs the first success, a recovery, or a routine refresh. Called with the lock held. */
static void
aws_provider_log_ok(struct aws_provider *p, const struct aws_creds *c, bool first)
{
    char hint[32], when[32];
    const char *what = p->failing ? "AWS credentials recovered"
                       : first    ? "AWS credentials"
                                  : "AWS credentials refreshed";

    aws_creds_key_hint(c, hint, sizeof(hint));
    if (c->expiration) {
        aws_time_str(c->expiration, when, sizeof(when));
    } else {
        snprintf(when, sizeof(when), "never (static keys)");
    }
    cllog(KB_LOG_INFO, p->settings.cluster, "%s from %s: key %s%s%s, expire %s", what, c->source,
          hint, c->principal_arn[0] ? ", principal " : "", c->principal_arn, when);
}

/* Notes a fetch's outcome. Called with the lock held; fresh is wiped by the caller. */
static void
aws_provider_settle(struct aws_provider *p, bool ok, struct aws_creds *fresh, const char *err,
                    time_t now)
{
    char when[32], msg[AWS_ERR_MAX + 256];
    bool valid = p->has_creds && (!p->creds.expiration || now < p->creds.expiration);

    p->fetched_once = true;
    if (ok) {
        aws_provider_log_ok(p, fresh, !p->has_creds);
        aws_creds_clear(&p->creds);
        p->creds = *fresh;
        p->has_creds = true;
        p->failing = false;
        p->expired_logged = false;
        p->reason[0] = '\0';
        p->ok++;
        p->backoff = 0;
        p->refresh_at =
            fresh->expiration
                ? aws_provider_refresh_at(now, fresh->expiration,
                                          (double)rand_r(&p->seed) / ((double)RAND_MAX + 1))
                : (time_t)LLONG_MAX;
        return;
    }
    p->failed++;
    snprintf(msg, sizeof(msg), "%s", err);
    if (p->skew > AWS_SKEW_MAX || p->skew < -AWS_SKEW_MAX) {
        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                 " (the local clock is %lld s off AWS's: fix NTP)", p->skew);
    }
    if (!p->failing || strcmp(msg, p->reason) != 0) {
        if (valid && p->creds.expiration) {
            cllog(KB_LOG_WARN, p->settings.cluster,
                  "AWS credentials refresh failed, keeping the current ones until %s: %s",
                  aws_time_str(p->creds.expiration, when, sizeof(when)), msg);
        } else {
            cllog(KB_LOG_ERROR, p->settings.cluster, "AWS credentials fetch failed, none valid: %s",
                  msg);
        }
    }
    snprintf(p->reason, sizeof(p->reason), "%s", msg);
    p->failing = true;
    p->backoff = p->backoff ? p->backoff * 2 : 1;
    p->backoff = p->backoff > AWS_BACKOFF_MAX ? AWS_BACKOFF_MAX : p->backoff;
    p->refresh_at = now + (time_t)p->backoff;
}

/* Compares the local clock with an AWS answer's Date. Called with the lock held. */
static void
aws_provider_check_skew(struct aws_provider *p, time_t date, time_t now)
{
    char when[32];
    bool off;

    if (!date) {
        return;
    }
    p->skew = (long long)(now - date);
    off = p->skew > AWS_SKEW_MAX || p->skew < -AWS_SKEW_MAX;
    if (off && !p->skew_logged) {
        cllog(KB_LOG_WARN, p->settings.cluster,
              "clock skew: the local clock is %lld s %s AWS's (Date %s); SigV4 signatures fail "
              "beyond 5 minutes, so MSK will refuse IAM authentication: fix NTP",
              p->skew < 0 ? -p->skew : p->skew, p->skew > 0 ? "ahead of" : "behind",
              aws_time_str(date, when, sizeof(when)));
    } else if (!off && p->skew_logged) {
        cllog(KB_LOG_INFO, p->settings.cluster, "clock skew against AWS back within 5 minutes");
    }
    p->skew_logged = off;
}

/*
 * Threads of released providers: joinable, joined as soon as they say they are done (at the
 * next release, never waiting) and all of them at exit (aws_provider_join_released).
 */
struct aws_released {
    pthread_t thread; /* the provider's thread */
    atomic_bool done; /* it has freed its provider and is returning */
};
static pthread_mutex_t aws_released_lock = PTHREAD_MUTEX_INITIALIZER;
static struct aws_released **aws_released;      /* n_aws_released entries */
static struct aws_released aws_released_orphan; /* for a thread detached when out of memory */
static size_t n_aws_released;

/* Joins the released threads that are done (all of them when wait_all). Lock held. */
static void
aws_released_reap(bool wait_all)
{
    size_t i = 0;

    while (i < n_aws_released) {
        struct aws_released *r = aws_released[i];
        if (wait_all || atomic_load(&r->done)) {
            pthread_join(r->thread, NULL);
            free(r);
            aws_released[i] = aws_released[--n_aws_released];
        } else {
            i++;
        }
    }
    if (n_aws_released == 0) {
        free(aws_released);
        aws_released = NULL;
    }
}

void
aws_provider_join_released(void)
{
    pthread_mutex_lock(&aws_released_lock);
    aws_released_reap(true);
    pthread_mutex_unlock(&aws_released_lock);
}

/* Frees what the provider holds; its thread has ended (or is the caller, released). */
static void
aws_provider_destroy(struct aws_provider *p)
{
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    aws_settings_free(&p->settings);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}

static void *
aws_provider_main(void *arg)
{
    struct aws_provider *p = arg;
    struct aws_released *released;
    bool detached;
    struct aws_creds fresh;
    char err[AWS_ERR_MAX], when[32];
    time_t now, date, wake;
    struct timespec ts;
    bool ok;

    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        now = time(NULL);
        if (p->has_creds && p->creds.expiration && now >= p->creds.expiration &&
            !p->expired_logged) {
            cllog(KB_LOG_ERROR, p->settings.cluster,
                  "AWS credentials from %s expired at %s and were not refreshed: %s",
                  p->creds.source, aws_time_str(p->creds.expiration, when, sizeof(when)),
                  p->reason[0] ? p->reason : "no refresh has finished");
            p->expired_logged = true;
        }
        if (p->force || now >= p->refresh_at) {
            p->force = false;
            p->fetching = true;
            pthread_mutex_unlock(&p->lock);
            ok = aws_creds_fetch(&p->settings, &fresh, &date, err, sizeof(err));
            now = time(NULL);
            pthread_mutex_lock(&p->lock);
            p->fetching = false;
            aws_provider_check_skew(p, date, now);
            aws_provider_settle(p, ok, &fresh, err, now);
            aws_creds_clear(&fresh);
            pthread_cond_broadcast(&p->cond);
            continue;
        }
        wake = p->refresh_at;
        if (p->has_creds && p->creds.expiration && !p->expired_logged &&
            p->creds.expiration < wake) {
            wake = p->creds.expiration;
        }
        if (wake > now + 3600) {
            wake = now + 3600; /* static keys never refresh: just wake up now and then */
        }
        ts.tv_sec = wake;
        ts.tv_nsec = 0;
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    detached = p->detached; /* set together with stop, under the lock */
    released = p->released;
    pthread_mutex_unlock(&p->lock);
    if (detached) {
        aws_provider_destroy(p);
        atomic_store(&released->done, true);
    }
    return NULL;
}

struct aws_provider *
aws_provider_new(const struct kb_cluster_conf *cc, char *err, size_t errlen)
{
    struct aws_provider *p = calloc(1, sizeof(*p));
    int rc;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!aws_settings_init(&p->settings, cc, err, errlen)) {
        free(p);
        return NULL;
    }
    p->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)p;
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    rc = pthread_create(&p->thread, NULL, aws_provider_main, p);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the AWS credentials thread: %s", strerror(rc));
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        aws_settings_free(&p->settings);
        free(p);
        return NULL;
    }
    return p;
}

bool
aws_provider_matches(struct aws_provider *p, const struct kb_cluster_conf *cc)
{
    struct aws_settings fresh;
    char err[AWS_ERR_MAX];
    bool same;

    if (!aws_settings_init(&fresh, cc, err, sizeof(err))) {
        return false;
    }
    same = aws_settings_equal(&p->settings, &fresh);
    aws_settings_free(&fresh);
    /* keys from the shared files never expire: a reload is how an operator makes kbridge re-read
     * a rotated ~/.aws/credentials */
    pthread_mutex_lock(&p->lock);
    same = same && !(p->has_creds && strcmp(p->creds.source, "shared-files") == 0);
    pthread_mutex_unlock(&p->lock);
    return same;
}

void
aws_provider_free(struct aws_provider *p)
{
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    aws_provider_destroy(p);
}

struct aws_provider *
aws_provider_ref(struct aws_provider *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void
aws_provider_release(struct aws_provider *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) {
        return;
    }
    /* No waiting join: the last reference may go on an event-loop thread, and an in-flight
     * fetch can take its whole timeout. The thread sees stop, finishes and frees the provider
     * itself; its handle is joined once it is done, or at exit. */
    struct aws_released *r = calloc(1, sizeof(*r)), **grown;
    pthread_t thread = p->thread;

    pthread_mutex_lock(&aws_released_lock);
    aws_released_reap(false);
    grown = r ? realloc(aws_released, (n_aws_released + 1) * sizeof(*grown)) : NULL;
    if (grown) {
        aws_released = grown;
        r->thread = thread;
        atomic_init(&r->done, false);
        aws_released[n_aws_released++] = r;
    }
    pthread_mutex_unlock(&aws_released_lock);
    if (!grown) {
        free(r);
        pthread_detach(thread); /* out of memory: let it end on its own */
        r = NULL;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    p->detached = true;
    p->released = r ? r : &aws_released_orphan;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Called with the lock held. */
static bool
aws_provider_valid(const struct aws_provider *p, time_t now)
{
    return p->has_creds && (!p->creds.expiration || now < p->creds.expiration);
}

bool
aws_provider_get(struct aws_provider *p, struct aws_creds *out)
{
    bool ok;

    pthread_mutex_lock(&p->lock);
    ok = aws_provider_valid(p, time(NULL));
    if (ok) {
        *out = p->creds;
    }
    pthread_mutex_unlock(&p->lock);
    if (!ok) {
        aws_creds_clear(out);
    }
    return ok;
}

void
aws_provider_reason(struct aws_provider *p, char *out, size_t outlen)
{
    char when[32];

    pthread_mutex_lock(&p->lock);
    if (aws_provider_valid(p, time(NULL))) {
        snprintf(out, outlen, "%s", "");
    } else if (!p->fetched_once) {
        snprintf(out, outlen, "AWS credentials not fetched yet");
    } else if (p->has_creds) {
        snprintf(out, outlen, "AWS credentials from %s expired at %s; refresh failing: %s",
                 p->creds.source, aws_time_str(p->creds.expiration, when, sizeof(when)),
                 p->reason[0] ? p->reason : "no refresh has finished yet");
    } else {
        snprintf(out, outlen, "%s", p->reason);
    }
    pthread_mutex_unlock(&p->lock);
}

void
aws_provider_stats(struct aws_provider *p, struct aws_provider_stats *out)
{
    time_t now = time(NULL);

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&p->lock);
    out->valid = aws_provider_valid(p, now);
    out->fetched_once = p->fetched_once;
    out->refresh_ok = p->ok;
    out->refresh_failed = p->failed;
    out->clock_skew_s = p->skew;
    out->seconds_left = -1;
    if (out->valid) {
        out->expiration = p->creds.expiration;
        out->seconds_left =
            p->creds.expiration ? (long long)(p->creds.expiration - now) : LLONG_MAX;
        snprintf(out->source, sizeof(out->source), "%s", p->creds.source);
        snprintf(out->principal_arn, sizeof(out->principal_arn), "%s", p->creds.principal_arn);
        aws_creds_key_hint(&p->creds, out->key_hint, sizeof(out->key_hint));
    }
    pthread_mutex_unlock(&p->lock);
}

bool
aws_provider_wait_first(struct aws_provider *p, int timeout_ms)
{
    struct timespec ts;
    bool done;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->fetched_once) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT) {
            break;
        }
    }
    done = p->fetched_once;
    pthread_mutex_unlock(&p->lock);
    return done;
}

bool
aws_provider_refresh_stale(struct aws_provider *p, const char *key_id)
{
    bool ask;

    pthread_mutex_lock(&p->lock);
    ask = p->has_creds && !p->force && !p->fetching && strcmp(p->creds.access_key_id, key_id) == 0;
    if (ask) {
        p->force = true;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return ask;
}

bool
aws_provider_whoami(struct aws_provider *p, int wait_ms, struct aws_provider_whoami *out, char *err,
                    size_t errlen)
{
    struct aws_creds c;
    time_t date = 0;
    bool ok;

    memset(out, 0, sizeof(*out));
    aws_provider_wait_first(p, wait_ms);
    if (!aws_provider_get(p, &c)) {
        aws_provider_reason(p, err, errlen);
        return false;
    }
    snprintf(out->source, sizeof(out->source), "%s", c.source);
    aws_creds_key_hint(&c, out->key_hint, sizeof(out->key_hint));
    out->expiration = c.expiration;
    /* settings are read-only once the provider runs: safe to share with its thread */
    ok = aws_sts_get_caller_identity(&p->settings, &c, out->arn, sizeof(out->arn), out->account,
                                     sizeof(out->account), &date, err, errlen);
    aws_creds_clear(&c);
    out->clock_skew_s = date ? (long long)(time(NULL) - date) : 0;
    return ok;
}
