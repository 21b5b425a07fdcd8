/*
 * check_report.h - the records `kbridge check` fills (cluster -> target -> step) and the two ways
 * it prints them: one line per step as it happens, or one JSON document at the end. Both are
 * driven by the same records, so they cannot disagree.
 */
#ifndef KB_CHECK_CHECK_REPORT_H
#define KB_CHECK_CHECK_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/conf.h"

#define CHECK_DETAIL_MAX 2048            /* one step's finding */
#define CHECK_FIX_MAX 768                /* one step's hint */
#define CHECK_STEPS_MAX 8                /* steps one target can have */
#define CHECK_ADDR_MAX (KB_HOST_MAX + 8) /* "host:port" / "[v6]:port" */

/* The steps, in the order they run. The JSON name and the printed label live in check_report.c. */
enum check_step_id {
    CHECK_STEP_TRUST_STORE = 0, /* the cluster's TLS context: trust store and client cert */
    CHECK_STEP_AWS_CREDS,       /* the cluster's AWS credentials and who they are (aws_used) */
    CHECK_STEP_DNS,             /* 1: getaddrinfo of the address dialled */
    CHECK_STEP_TCP,             /* 2: TCP connect, bounded by connect_timeout_ms */
    CHECK_STEP_TLS,             /* 3: TLS handshake: protocol, cipher, peer chain */
    CHECK_STEP_CHAIN,           /* 4: chain against the trust store */
    CHECK_STEP_HOSTNAME,        /* 5: the expected name against the certificate's names */
    CHECK_STEP_AUTH,            /* 6 with sasl_mechanism: the SASL exchange kbridge runs */
    CHECK_STEP_KAFKA,           /* 6 (7 after auth): ApiVersions and Metadata */
    CHECK_STEP_PRODUCE,         /* 7 (8): one message produced through kbridge */
    CHECK_STEP_CONSUME          /* 7 (8): the same message consumed back */
};

enum check_verdict {
    CHECK_OK = 0, /* passed */
    CHECK_WARN,   /* passed, with something the operator should know (still exit 0) */
    CHECK_FAIL    /* failed: the target's chain of steps stops here */
};

enum check_role {
    CHECK_ROLE_CONFIG = 0, /* the cluster's TLS settings, not a network address */
    CHECK_ROLE_BOOTSTRAP,  /* a bootstrap_servers entry */
    CHECK_ROLE_BROKER,     /* a broker found in a Metadata response */
    CHECK_ROLE_LISTENER    /* kbridge's own bootstrap listener (--produce-test) */
};

/* One step's outcome. */
struct check_step {
    enum check_step_id id;         /* which step */
    enum check_verdict verdict;    /* ok, warning or failure */
    long ms;                       /* how long it took */
    char detail[CHECK_DETAIL_MAX]; /* what was found, or the cause of the failure */
    char fix[CHECK_FIX_MAX];       /* what to do about a warning or failure; "" when nothing */
};

/* One broker as a Metadata response advertised it (host reduced to printable ASCII). */
struct check_broker {
    int32_t node_id;        /* the broker's id */
    char host[KB_HOST_MAX]; /* advertised host */
    int32_t port;           /* advertised port */
};

/* One address (or the config) and the steps run against it. */
struct check_target {
    const char *cluster;          /* the cluster's name (the conf snapshot owns it) */
    enum check_role role;         /* why it is checked */
    char address[CHECK_ADDR_MAX]; /* host:port checked and verified; the trust store for config */
    char dial[CHECK_ADDR_MAX];    /* the connect_to target dialled instead, "" when none */
    int32_t node_id;              /* broker id, -1 when unknown */
    struct check_step steps[CHECK_STEPS_MAX]; /* in the order they ran */
    size_t n_steps;                           /* used entries in steps */
    struct check_broker *brokers;             /* brokers its Metadata response listed (owned) */
    size_t n_brokers;                         /* entries in brokers */
    bool failed;                              /* a step failed */
};

/* One cluster's targets, in the order they were checked. */
struct check_cluster {
    const char *name;              /* section name (the conf snapshot owns it) */
    struct check_target **targets; /* owned */
    size_t n_targets;              /* used entries */
    size_t cap;                    /* allocated entries */
};

/* The whole run. */
struct check_report {
    FILE *out;                      /* where the report goes (stdout) */
    bool json;                      /* print one JSON document at the end, nothing before */
    int n_numbered;                 /* steps shown as "n/N": 6, or 7 with --produce-test */
    bool auth;                      /* a cluster authenticates: step 6 is authentication, and
                                       the later steps and n_numbered count one more */
    bool config_error;              /* a cluster's TLS files were rejected: exit 2 */
    char error[KB_CONF_ERR_MAX];    /* a failure that stopped the run (bad config), "" if none */
    struct check_cluster *clusters; /* owned */
    size_t n_clusters;              /* used entries */
    size_t cap;                     /* allocated entries */
};

/* Starts an empty report that prints to out. */
void check_report_init(struct check_report *rep, FILE *out, bool json, bool produce_test);

/*
 * Numbers an authentication step in the text output (call before any step is recorded, once
 * the configuration says a cluster sets sasl_mechanism).
 */
void check_report_with_auth(struct check_report *rep);

/* Frees every record. */
void check_report_free(struct check_report *rep);

/* Appends a cluster named name (not copied). NULL when out of memory. */
struct check_cluster *check_report_cluster(struct check_report *rep, const char *name);

/*
 * Appends a target to cl: address is copied, node_id is -1 when unknown. NULL when out of
 * memory. The target belongs to cl.
 */
struct check_target *check_cluster_target(struct check_cluster *cl, enum check_role role,
                                          const char *address, int32_t node_id);

/* The network target of cl whose address is address (host compared case-insensitively). */
struct check_target *check_cluster_find(const struct check_cluster *cl, const char *address);

/*
 * Records one step of t and, in text mode, prints its line (and its fix line when the verdict
 * is not ok) at once. fix may be NULL. Returns false when verdict is CHECK_FAIL, so callers can
 * write `if (!check_step_add(...)) return false;`.
 */
bool check_step_add(struct check_report *rep, struct check_target *t, enum check_step_id id,
                    enum check_verdict verdict, long ms, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/*
 * Records a broker from t's Metadata response; host is a view of host_len wire bytes, kept as
 * printable ASCII. false when out of memory.
 */
bool check_target_add_broker(struct check_target *t, int32_t node_id, const char *host,
                             size_t host_len, int32_t port);

/* Prints the end of the report: the JSON document, or one summary line in text mode. */
void check_report_finish(const struct check_report *rep);

/* The exit code the report calls for: 2 for a config error, 1 if a step failed, else 0. */
int check_report_exit_code(const struct check_report *rep);

#endif
