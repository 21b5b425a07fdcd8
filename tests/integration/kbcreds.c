/*
 * kbcreds.c - test tool: runs the AWS credentials provider of one cluster of a kbridge config and
 * prints what it sees, never a secret: the source, a key hint (ASIA****WXYZ), seconds to expiry,
 * the principal, each change of key or state, and how long the getter took at most while fetches
 * ran (it must never wait for the network). The provider's own log lines go to stderr.
 *   kbcreds -c CONFIG [-C CLUSTER] [-t SECONDS] [-w FIRST_WAIT_SECONDS] [-i]
 * -i asks STS who the credentials are (GetCallerIdentity), as `kbridge check` will.
 * Exit 0 when valid credentials are held at the end, 1 when not, 2 on usage or config errors.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/provider.h"
#include "conf/conf.h"
#include "proxy/log.h"

static atomic_bool kbcreds_stop;
static _Atomic long long kbcreds_get_max_us;
static _Atomic unsigned long long kbcreds_gets;

static long long
kbcreds_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* What an event loop would do on every new upstream connection: copy, use, wipe. */
static void *
kbcreds_getter(void *arg)
{
    struct aws_provider *p = arg;
    struct aws_creds c;

    while (!atomic_load(&kbcreds_stop)) {
        long long t0 = kbcreds_now_us(), dt;
        bool ok = aws_provider_get(p, &c);

        dt = kbcreds_now_us() - t0;
        (void)ok;
        aws_creds_clear(&c);
        if (dt > atomic_load(&kbcreds_get_max_us)) {
            atomic_store(&kbcreds_get_max_us, dt);
        }
        atomic_fetch_add(&kbcreds_gets, 1);
        usleep(1000);
    }
    return NULL;
}

static void
kbcreds_print(const char *what, const struct aws_provider_stats *st, struct aws_provider *p)
{
    char reason[AWS_ERR_MAX];

    aws_provider_reason(p, reason, sizeof(reason));
    printf("%s valid=%d source=%s key=%s expires_in=%lld principal=%s refresh_ok=%llu "
           "refresh_failed=%llu skew=%lld reason=%s\n",
           what, st->valid, st->source[0] ? st->source : "-", st->key_hint[0] ? st->key_hint : "-",
           st->seconds_left, st->principal_arn[0] ? st->principal_arn : "-",
           (unsigned long long)st->refresh_ok, (unsigned long long)st->refresh_failed,
           st->clock_skew_s, reason[0] ? reason : "-");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    const char *path = NULL, *name = NULL;
    struct aws_provider_stats st, prev;
    char err[KB_CONF_ERR_MAX + AWS_ERR_MAX];
    const struct kb_cluster_conf *cc = NULL;
    struct aws_provider *p;
    struct kb_conf *conf;
    double seconds = 0, first_wait = 30;
    pthread_t getter;
    long long end;
    int opt, keys = 0;
    bool whoami = false;
    size_t i;

    while ((opt = getopt(argc, argv, "c:C:t:w:i")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            name = optarg;
            break;
        case 't':
            seconds = atof(optarg);
            break;
        case 'w':
            first_wait = atof(optarg);
            break;
        case 'i':
            whoami = true;
            break;
        default:
            fprintf(stderr,
                    "usage: kbcreds -c CONFIG [-C CLUSTER] [-t SECONDS] [-w SECONDS] [-i]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: kbcreds -c CONFIG [-C CLUSTER] [-t SECONDS] [-w SECONDS] [-i]\n");
        return 2;
    }
    log_init(KB_LOG_INFO, KB_LOG_TEXT);
    if (!(conf = conf_load(path, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    for (i = 0; i < conf->n_clusters && !cc; i++) {
        if (!name || strcmp(conf->clusters[i].name, name) == 0) {
            cc = &conf->clusters[i];
        }
    }
    if (!cc) {
        fprintf(stderr, "no cluster [%s] in %s\n", name, path);
        conf_unref(conf);
        return 2;
    }
    if (!(p = aws_provider_new(cc, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        conf_unref(conf);
        return 2;
    }
    pthread_create(&getter, NULL, kbcreds_getter, p);
    if (!aws_provider_wait_first(p, (int)(first_wait * 1000))) {
        printf("first fetch not finished after %.0f s\n", first_wait);
    }
    aws_provider_stats(p, &st);
    kbcreds_print("first", &st, p);
    keys = st.valid;
    prev = st;
    if (whoami) {
        struct aws_provider_whoami w;

        if (aws_provider_whoami(p, 0, &w, err, sizeof(err))) {
            printf("whoami ok source=%s key=%s expiration=%lld arn=%s account=%s skew=%lld\n",
                   w.source, w.key_hint, (long long)w.expiration, w.arn, w.account, w.clock_skew_s);
        } else {
            printf("whoami failed reason=%s\n", err);
        }
        fflush(stdout);
    }
    end = kbcreds_now_us() + (long long)(seconds * 1e6);
    while (kbcreds_now_us() < end) {
        usleep(100000);
        aws_provider_stats(p, &st);
        if (st.valid != prev.valid || strcmp(st.key_hint, prev.key_hint) != 0 ||
            st.refresh_failed != prev.refresh_failed) {
            keys += st.valid && strcmp(st.key_hint, prev.key_hint) != 0;
            kbcreds_print(st.valid != prev.valid                    ? "state"
                          : strcmp(st.key_hint, prev.key_hint) != 0 ? "key"
                                                                    : "failed",
                          &st, p);
        }
        prev = st;
    }
    atomic_store(&kbcreds_stop, true);
    pthread_join(getter, NULL);
    aws_provider_stats(p, &st);
    printf("summary valid=%d keys_seen=%d refresh_ok=%llu refresh_failed=%llu gets=%llu "
           "get_max_us=%lld\n",
           st.valid, keys, (unsigned long long)st.refresh_ok, (unsigned long long)st.refresh_failed,
           (unsigned long long)atomic_load(&kbcreds_gets), atomic_load(&kbcreds_get_max_us));
    aws_provider_free(p);
    conf_unref(conf);
    return st.valid ? 0 : 1;
}
