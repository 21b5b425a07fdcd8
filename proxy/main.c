/*
 * main.c - command line, logging set-up, and the run loop. Exit codes: 0 clean stop,
 * 1 runtime failure (e.g. a port in use), 2 configuration error (printed as FILE:LINE: ...).
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/ssl.h>

#include "aws/provider.h"
#include "conf/conf.h"
#include "check/check.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "tls/tlsctx.h"

#include "proxy/version.h"
#define KB_DEFAULT_CONFIG "/etc/kbridge/kbridge.ini"

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: kbridge [-c FILE] [--check-config | --print-config]\n"
            "       kbridge --bootstrap-servers HOST:PORT[,HOST:PORT...] [--KEY VALUE...]\n"
            "               [--check-config | --print-config]\n"
            "       kbridge check [-c FILE | --bootstrap-servers ... [--KEY VALUE...]] [--cluster "
            "NAME]\n"
            "                     [--json] [--produce-test TOPIC]\n"
            "       kbridge --version | --help\n"
            "\n"
            "Plaintext Kafka on localhost in, verified TLS to the brokers out; every broker\n"
            "address in responses is rewritten so clients only ever connect through kbridge.\n"
            "\n"
            "  -c, --config FILE   configuration file (default " KB_DEFAULT_CONFIG ")\n"
            "      --check-config  validate FILE (including TLS files), print the effective\n"
            "                      configuration, exit 0 if valid, 2 if not\n"
            "      --print-config  print the configuration as an INI file (defaults filled in)\n"
            "                      and exit 0, 2 if it is invalid\n"
            "  --KEY VALUE         without -c: one cluster from flags, one per config key with\n"
            "                      '-' for '_' (--listen, --broker-port-base, --tls-ca-file,\n"
            "                      --log-level, --admin-listen, ...; --name sets the section\n"
            "                      name, default kbridge); same defaults and checks as the file\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this text\n"
            "\n"
            "kbridge check runs DNS, TCP, TLS, chain, host name and Kafka checks against every\n"
            "bootstrap server and broker, and says what is wrong and how to fix it (exit 0 ok,\n"
            "1 a check failed, 2 configuration error). See kbridge check --help.\n"
            "\n"
            "Signals: SIGHUP reloads FILE (an invalid file is rejected, the old config keeps\n"
            "serving; a configuration from flags stays as it is); SIGTERM/SIGINT stop\n"
            "accepting, let requests in flight finish within drain_timeout_ms, then exit 0\n"
            "(a second signal exits at once).\n");
}

/* Builds every cluster's TLS context once, to surface certificate/key errors as config errors. */
static int
check_tls(const struct kb_conf *conf)
{
    char err[1024];
    size_t i;

    for (i = 0; i < conf->n_clusters; i++) {
        SSL_CTX *ctx;
        if (!conf->clusters[i].tls) {
            continue;
        }
        ctx = tlsctx_new(conf, &conf->clusters[i], err, sizeof(err));
        if (!ctx) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        SSL_CTX_free(ctx);
    }
    return 0;
}

/*
 * Descriptors conf can need at once: each client is two (its socket and the broker's), each
 * worker binds every cluster port (bootstrap + max_node_id + 1 broker ports), plus the admin
 * endpoint's connections (admin.c caps them at 32) and the fixed ones (stdio, epoll, DNS,
 * worker pipes). Counted once per listen address family, as localhost may be 127.0.0.1 and ::1.
 */
static unsigned long long
nofile_needed(const struct kb_conf *conf)
{
    unsigned long long n = 32 + 4ULL * (unsigned)conf->workers + (conf->has_admin ? 33 : 0);
    size_t i;

    for (i = 0; i < conf->n_clusters; i++) {
        const struct kb_cluster_conf *cc = &conf->clusters[i];
        n += 2ULL * (unsigned)cc->max_connections +
             2ULL * (unsigned)conf->workers * ((unsigned)cc->max_node_id + 2);
    }
    return n;
}

/*
 * Out of descriptors, new clients wait (listener.c pauses accepting) and broker connections
 * fail. So at start the soft RLIMIT_NOFILE is raised, up to the hard limit, to what the
 * configuration needs, and if even the hard limit is too low that is said once, with the
 * numbers. A reload that raises max_connections is not checked again.
 */
static void
check_nofile(const struct kb_conf *conf)
{
    unsigned long long need = nofile_needed(conf);
    struct rlimit rl;
    rlim_t want;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        return;
    }
    want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? (rlim_t)need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            log_info("raised the open file limit (RLIMIT_NOFILE) from %llu to %llu for "
                     "max_connections",
                     (unsigned long long)rl.rlim_cur, (unsigned long long)want);
            rl.rlim_cur = want;
        }
    }
    if (rl.rlim_cur < need) {
        log_warn("open file limit (RLIMIT_NOFILE) is %llu (hard %llu), but the configured "
                 "max_connections, ports and workers need about %llu: clients will wait when "
                 "descriptors run out; raise LimitNOFILE= (systemd) or ulimit -n, or lower "
                 "max_connections",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, need);
    }
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'C'},
        {"print-config", no_argument, NULL, 'P'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    static const char *const own[] = {"config",  "check-config", "print-config",
                                      "version", "help",         NULL};
    const char *path = KB_DEFAULT_CONFIG;
    bool check_only = false, print_only = false, has_path = false;
    struct kb_conf *conf;
    struct kb_proxy *proxy;
    char err[1024];
    char **rest, **flags;
    int c, rc, n_rest, n_flags;

    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        return check_main(argc - 1, argv + 1); /* argv[0] becomes "check" */
    }
    /* Configuration flags (--bootstrap-servers ...) go to conf_load_flags(), the rest to getopt. */
    rest = calloc((size_t)argc + 1, sizeof(*rest));
    flags = calloc((size_t)argc + 1, sizeof(*flags));
    if (!rest || !flags) {
        fprintf(stderr, "kbridge: out of memory\n");
        return 1;
    }
    conf_split_args(argc, argv, own, rest, &n_rest, flags, &n_flags);
    rc = -1; /* set: exit with it once the argument arrays are freed */
    while (rc < 0 && (c = getopt_long(n_rest, rest, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            has_path = true;
            break;
        case 'C':
            check_only = true;
            break;
        case 'P':
            print_only = true;
            break;
        case 'V':
            printf("kbridge %s (%s)\n", KB_VERSION, OpenSSL_version(OPENSSL_VERSION));
            rc = 0;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            break;
        default:
            usage(stderr);
            rc = 2;
            break;
        }
    }
    if (rc < 0 && optind < n_rest) {
        fprintf(stderr, "kbridge: unexpected argument '%s'\n", rest[optind]);
        usage(stderr);
        rc = 2;
    }
    if (rc < 0 && has_path && n_flags > 0) {
        fprintf(stderr, "kbridge: %s: give either -c FILE or configuration flags, not both\n",
                flags[0]);
        rc = 2;
    }
    conf = rc >= 0       ? NULL
           : n_flags > 0 ? conf_load_flags(n_flags, flags, err, sizeof(err))
                         : conf_load(path, err, sizeof(err));
    free(rest);
    free(flags);
    if (rc >= 0) {
        return rc;
    }
    if (!conf) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (print_only) {
        conf_dump(conf, stdout);
        conf_unref(conf);
        return 0;
    }
    if (check_only) {
        rc = check_tls(conf);
        if (rc == 0) {
            conf_dump(conf, stdout);
        }
        conf_unref(conf);
        return rc;
    }
    path = n_flags > 0 ? "command line" : path;

    signal(SIGPIPE, SIG_IGN);
    /* Relaying churns through 64-256 KiB buffers. By default glibc hands freed memory at the top
     * of the heap back to the kernel past 128-256 KiB and faults it in again moments later:
     * about 9,500 page faults per 2 GB relayed in 1 MiB frames (bench/), against 60 with this.
     * Free memory kept for reuse is capped at 32 MiB; memory in use is not affected. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    log_init(conf->log_level, conf->log_format);
    log_info("kbridge %s starting with %s", KB_VERSION, path);
    check_nofile(conf);
    proxy = proxy_new(path, conf, err, sizeof(err));
    conf_unref(conf);
    if (!proxy) {
        log_error("cannot start: %s", err);
        /* A TLS file problem is a config error; anything else (a busy port) is a runtime one. */
        return strstr(err, path) == err ? 2 : 1;
    }
    rc = proxy_run(proxy);
    proxy_free(proxy);
    aws_provider_join_released(); /* the credentials threads of the last snapshots */
    log_info("kbridge stopped");
    return rc;
}
