/*
 * check.c - `kbridge check`: the command line, and the order of things. Per cluster: the TLS
 * context (trust store), then every bootstrap server, then every broker the Metadata answers
 * name that was not checked yet, then (--produce-test) kbridge's own listener. Each target runs
 * its steps in order and stops at the first failure; the report says which and why.
 */
#include "check/check.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "aws/provider.h"
#include "conf/conf.h"
#include "check/check_auth.h"
#include "check/check_aws.h"
#include "check/check_dial.h"
#include "check/check_kafka.h"
#include "check/check_net.h"
#include "check/check_produce.h"
#include "check/check_report.h"
#include "check/check_tls.h"
#include "proxy/log.h"
#include "tls/tlsconn.h"
#include "tls/tlsctx.h"
#include "tls/tlserr.h"

#define CHECK_DEFAULT_CONFIG "/etc/kbridge/kbridge.ini"

/* The command line. */
struct check_opts {
    const char *path;    /* -c */
    char **flags;        /* configuration flags (conf_load_flags), instead of -c */
    int n_flags;         /* tokens in flags; 0 = use path */
    char **rest;         /* argv without the flags, for getopt */
    const char *cluster; /* --cluster, NULL for all */
    bool json;           /* --json */
    const char *topic;   /* --produce-test, NULL when not asked for */
};

/* What every target of one cluster is checked with. */
struct check_job {
    struct check_report *rep;         /* where findings go */
    struct check_cluster *cl;         /* the cluster's records */
    const struct kb_conf *conf;       /* the snapshot */
    const struct kb_cluster_conf *cc; /* the cluster's settings */
    SSL_CTX *ctx;                     /* its TLS context, NULL with tls = off */
    struct aws_provider *aws;         /* its AWS credentials (cc->aws_used), else NULL */
};

/* ---- Internal ---------------------------------------------------------------------------- */

static void
check_usage(FILE *out)
{
    fprintf(out,
            "usage: kbridge check [-c FILE] [--cluster NAME] [--json] [--produce-test TOPIC]\n"
            "       kbridge check --bootstrap-servers HOST:PORT[,...] [--KEY VALUE...] [...]\n"
            "\n"
            "Checks every bootstrap server and every broker of each cluster, step by step:\n"
            "DNS, TCP connect, TLS handshake, certificate chain, host name, SASL authentication\n"
            "(with sasl_mechanism), Kafka ApiVersions and Metadata; and once per cluster the\n"
            "AWS credentials (source, expiry, STS GetCallerIdentity) when it uses them. Each\n"
            "failure is named with its likely cause and a fix.\n"
            "\n"
            "  -c, --config FILE        configuration file (default " CHECK_DEFAULT_CONFIG ")\n"
            "  --KEY VALUE              instead of -c: one cluster from flags, as for kbridge\n"
            "                           itself (--bootstrap-servers, --tls-ca-file, ...)\n"
            "      --cluster NAME       check this cluster only\n"
            "      --json               print one JSON document instead of one line per step\n"
            "      --produce-test TOPIC also produce one message to TOPIC through the running\n"
            "                           kbridge's own listener and consume it back\n"
            "  -h, --help               this text\n"
            "\n"
            "Exit status: 0 every step passed, 1 a step failed, 2 usage or configuration error.\n");
}

/* Parses argv (argv[0] is "check"). Returns -1 to go on, else the exit code. */
static int
check_parse(int argc, char **argv, struct check_opts *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"cluster", required_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},         {"produce-test", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    static const char *const own[] = {"config", "cluster", "json", "produce-test", "help", NULL};
    bool has_path = false;
    int c, n_rest;

    memset(o, 0, sizeof(*o));
    o->path = CHECK_DEFAULT_CONFIG;
    o->rest = calloc((size_t)argc + 1, sizeof(*o->rest));
    o->flags = calloc((size_t)argc + 1, sizeof(*o->flags));
    if (!o->rest || !o->flags) {
        fprintf(stderr, "kbridge check: out of memory\n");
        return 1;
    }
    /* Configuration flags go to conf_load_flags(), the rest to getopt. */
    conf_split_args(argc, argv, own, o->rest, &n_rest, o->flags, &o->n_flags);
    optind = 1;
    opterr = 0; /* getopt would name the program "check" */
    while ((c = getopt_long(n_rest, o->rest, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->path = optarg;
            has_path = true;
            break;
        case 'C':
            o->cluster = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'p':
            o->topic = optarg;
            break;
        case 'h':
            check_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "kbridge check: unknown option or missing value: %s\n",
                    o->rest[optind - 1]);
            check_usage(stderr);
            return 2;
        }
    }
    if (optind < n_rest) {
        fprintf(stderr, "kbridge check: unexpected argument '%s'\n", o->rest[optind]);
        check_usage(stderr);
        return 2;
    }
    if (has_path && o->n_flags > 0) {
        fprintf(stderr, "kbridge check: %s: give either -c FILE or configuration flags, not both\n",
                o->flags[0]);
        return 2;
    }
    if (o->n_flags > 0) {
        o->path = "command line";
    }
    if (o->topic && !*o->topic) {
        fprintf(stderr, "kbridge check: --produce-test needs a topic name\n");
        return 2;
    }
    return -1;
}

/*
 * Runs steps 1-6 (7) against name for t. With sasl_mechanism set, the SASL exchange comes right
 * after TLS on the same connection and the Kafka step after it: a SASL broker allows only
 * ApiVersions before authentication and closes on Metadata.
 */
static void
check_target_run(struct check_job *job, struct check_target *t, const struct kb_hostport *name)
{
    struct check_conn conn = {-1, NULL};

    conn.fd = check_dial_run(job->rep, t, job->cc, name);
    if (conn.fd < 0) {
        return;
    }
    if (!job->cc->tls) {
        check_step_add(job->rep, t, CHECK_STEP_TLS, CHECK_WARN, 0,
                       "set tls = on: MSK's TLS listener is port 9094",
                       "tls = off: plaintext to the broker, for tests only");
    } else if (!check_tls_run(job->rep, t, job->cc, job->ctx, name, &conn)) {
        check_conn_close(&conn);
        return;
    }
    if (job->cc->sasl_mechanism != KB_SASL_NONE &&
        !check_auth_run(job->rep, t, job->cc, job->aws, name->host, job->conf->max_frame_bytes,
                        &conn)) {
        check_conn_close(&conn);
        return;
    }
    check_kafka_run(job->rep, t, job->cc, job->conf->max_frame_bytes, &conn);
    check_conn_close(&conn);
}

/*
 * Checks broker b, found in a Metadata response, unless its address was checked already (then
 * that target learns the broker's id). false when out of memory.
 */
static bool
check_broker(struct check_job *job, const struct check_broker *b)
{
    bool valid_port = b->port >= 1 && b->port <= 65535;
    char addr[CHECK_ADDR_MAX];
    struct kb_hostport hp;
    struct check_target *t;

    memset(&hp, 0, sizeof(hp));
    tlserr_format(hp.host, sizeof(hp.host), "%s", b->host);
    hp.is_ip = tlsconn_is_ip_literal(hp.host);
    hp.port = valid_port ? (uint16_t)b->port : 0;
    if (valid_port) {
        conf_hostport_str(&hp, addr, sizeof(addr));
    } else {
        tlserr_format(addr, sizeof(addr), "%s:%d", b->host, (int)b->port);
    }
    t = check_cluster_find(job->cl, addr);
    if (t) {
        if (t->node_id < 0) {
            t->node_id = b->node_id;
        }
        return true;
    }
    t = check_cluster_target(job->cl, CHECK_ROLE_BROKER, addr, b->node_id);
    if (!t) {
        return false;
    }
    if (!valid_port) {
        check_step_add(job->rep, t, CHECK_STEP_DNS, CHECK_FAIL, 0, NULL,
                       "the cluster advertises port %d, which is not a TCP port", (int)b->port);
        return true;
    }
    check_target_run(job, t, &hp);
    return true;
}

/*
 * Builds the cluster's TLS context into job->ctx as the daemon does, and records it as the
 * trust store step: a CA file that is missing, unreadable or not PEM is named here. *usable is
 * false when it failed. Nothing to do with tls = off. false when out of memory.
 */
static bool
check_trust_store(struct check_job *job, bool *usable)
{
    const struct kb_cluster_conf *cc = job->cc;
    char err[KB_CONF_ERR_MAX];
    struct check_target *t;

    *usable = true;
    if (!cc->tls) {
        return true;
    }
    t = check_cluster_target(job->cl, CHECK_ROLE_CONFIG, tlsctx_trust_store_name(cc), -1);
    if (!t) {
        return false;
    }
    job->ctx = tlsctx_new(job->conf, cc, err, sizeof(err));
    if (!job->ctx) {
        *usable = false;
        job->rep->config_error = true;
        check_step_add(job->rep, t, CHECK_STEP_TRUST_STORE, CHECK_FAIL, 0,
                       "tls_ca_file must be a readable PEM bundle ('-----BEGIN CERTIFICATE-----' "
                       "blocks), or empty for the system store; tls_cert_file and tls_key_file "
                       "a matching PEM certificate and unencrypted key",
                       "%s", err);
        return true;
    }
    check_step_add(
        job->rep, t, CHECK_STEP_TRUST_STORE, CHECK_OK, 0, NULL, "%s loaded; tls_verify = %s%s%s",
        cc->tls_ca_file ? "tls_ca_file" : "system store", conf_tls_verify_str(cc->tls_verify),
        cc->tls_cert_file ? "; client certificate " : "",
        cc->tls_cert_file ? cc->tls_cert_file : "");
    return true;
}

/* Everything for one cluster. false when out of memory. */
static bool
check_cluster_run(struct check_report *rep, const struct kb_conf *conf,
                  const struct kb_cluster_conf *cc, const char *topic)
{
    struct check_job job = {rep, NULL, conf, cc, NULL, NULL};
    char addr[CHECK_ADDR_MAX];
    struct check_target *t;
    bool usable, ok;
    size_t i, j;

    job.cl = check_report_cluster(rep, cc->name);
    if (!job.cl) {
        return false;
    }
    ok = check_trust_store(&job, &usable);
    if (!ok || !usable) {
        return ok;
    }
    /* Before the brokers: an IAM mechanism signs with these credentials. */
    if (cc->aws_used && !check_aws_run(rep, job.cl, cc, &job.aws)) {
        aws_provider_free(job.aws);
        SSL_CTX_free(job.ctx);
        return false;
    }
    for (i = 0; i < cc->n_bootstrap && ok; i++) {
        conf_hostport_str(&cc->bootstrap[i], addr, sizeof(addr));
        if (check_cluster_find(job.cl, addr)) {
            continue;
        }
        t = check_cluster_target(job.cl, CHECK_ROLE_BOOTSTRAP, addr, -1);
        ok = t != NULL;
        if (t) {
            check_target_run(&job, t, &cc->bootstrap[i]);
        }
    }
    /* Targets added here are visited too, so brokers only another broker knows are checked. */
    for (i = 0; i < job.cl->n_targets && ok; i++) {
        for (j = 0; j < job.cl->targets[i]->n_brokers && ok; j++) {
            ok = check_broker(&job, &job.cl->targets[i]->brokers[j]);
        }
    }
    if (topic && ok) {
        check_produce_run(rep, job.cl, cc, topic);
    }
    aws_provider_free(job.aws);
    SSL_CTX_free(job.ctx);
    return ok;
}

/* ---- Public ------------------------------------------------------------------------------ */

int
check_main(int argc, char **argv)
{
    struct check_report rep;
    struct check_opts o;
    struct kb_conf *conf;
    bool found = false, oom = false;
    int rc;
    size_t i;

    rc = check_parse(argc, argv, &o);
    if (rc >= 0) {
        free(o.rest);
        free(o.flags);
        return rc;
    }
    /* A peer that hangs up mid-write must be an error code, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    /* The report names every finding itself; the daemon's INFO and WARN lines (the credentials
     * provider's, say) would only interleave with it on a terminal. Errors still print. */
    log_init(KB_LOG_ERROR, KB_LOG_TEXT);
    check_report_init(&rep, stdout, o.json, o.topic != NULL);
    conf = o.n_flags > 0 ? conf_load_flags(o.n_flags, o.flags, rep.error, sizeof(rep.error))
                         : conf_load(o.path, rep.error, sizeof(rep.error));
    free(o.rest);
    free(o.flags);
    /* Text lines are numbered as they are printed: know now whether step 6 authenticates. */
    for (i = 0; conf && i < conf->n_clusters; i++) {
        if ((!o.cluster || strcmp(o.cluster, conf->clusters[i].name) == 0) &&
            conf->clusters[i].sasl_mechanism != KB_SASL_NONE) {
            check_report_with_auth(&rep);
        }
    }
    for (i = 0; conf && i < conf->n_clusters; i++) {
        if (o.cluster && strcmp(o.cluster, conf->clusters[i].name) != 0) {
            continue;
        }
        found = true;
        if (!check_cluster_run(&rep, conf, &conf->clusters[i], o.topic)) {
            fprintf(stderr, "kbridge check: out of memory\n");
            oom = true;
            break;
        }
    }
    if (conf && !found) {
        tlserr_format(rep.error, sizeof(rep.error), "%s: no cluster section named '%s'", o.path,
                      o.cluster);
    }
    if (rep.error[0]) {
        fprintf(stderr, "%s\n", rep.error);
    }
    if (rep.json || !rep.error[0]) {
        check_report_finish(&rep);
    }
    rc = check_report_exit_code(&rep);
    if (oom && rc == 0) {
        rc = 1;
    }
    check_report_free(&rep);
    conf_unref(conf);
    return rc;
}
