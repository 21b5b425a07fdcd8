/*
 * conf.h - kbridge configuration: one [global] section and one section per cluster.
 * conf_load() parses, fills defaults, validates, and returns a refcounted, read-only snapshot.
 * Nothing else in kbridge is shared mutable state (the project style guide, convention 7).
 */
#ifndef KB_CONF_CONF_H
#define KB_CONF_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KB_HOST_MAX 256      /* a DNS name is at most 253 bytes */
#define KB_CONF_ERR_MAX 1024 /* a good size for conf_load()'s err buffer */

enum kb_log_level { KB_LOG_ERROR = 0, KB_LOG_WARN, KB_LOG_INFO, KB_LOG_DEBUG };
enum kb_log_format { KB_LOG_TEXT = 0, KB_LOG_JSON };
enum kb_tls_verify { KB_VERIFY_FULL = 0, KB_VERIFY_CHAIN, KB_VERIFY_NONE };
/* sasl_mechanism; names as Kafka spells them (conf_sasl_mechanism_str, auth_mech_find). */
enum kb_sasl_mechanism {
    KB_SASL_NONE = 0, /* unset: kbridge does not authenticate, clients' SASL passes through */
    KB_SASL_SCRAM_SHA_512,
    KB_SASL_SCRAM_SHA_256,
    KB_SASL_PLAIN,
    KB_SASL_AWS_MSK_IAM, /* signed with AWS credentials (aws_* keys), no user name or password */
    KB_SASL_OAUTHBEARER  /* an MSK IAM token (RFC 7628), signed like AWS_MSK_IAM */
};

/* True for the mechanisms that sign with the AWS credentials layer instead of a password. */
#define KB_SASL_IS_IAM(m) ((m) == KB_SASL_AWS_MSK_IAM || (m) == KB_SASL_OAUTHBEARER)

struct secret;
/* aws_credentials: where the AWS credentials for IAM authentication come from (aws/creds.h). */
enum kb_aws_credentials {
    KB_AWS_UNSET = 0, /* not set: the chain below if an IAM mechanism needs credentials */
    KB_AWS_DEFAULT,   /* the AWS SDK chain: env, web identity, shared files, IMDSv2 */
    KB_AWS_GCP        /* a Google ID token from the GCE metadata server, exchanged at STS */
};

/* A parsed "host:port" or "[v6]:port". */
struct kb_hostport {
    char host[KB_HOST_MAX]; /* without brackets, NUL-terminated */
    uint16_t port;          /* 1..65535 */
    bool is_ip;             /* host is an IPv4 or IPv6 literal */
};

/* One connect_to entry: dial `to` when asked for `from`, but verify `from`'s name. */
struct kb_connect_to {
    struct kb_hostport from; /* the address as configured or advertised */
    struct kb_hostport to;   /* where to actually connect */
};

/* One [cluster] section, fully defaulted and validated. */
struct kb_cluster_conf {
    char *name;                       /* section name */
    int line;                         /* line of the section header */
    struct kb_hostport *bootstrap;    /* bootstrap_servers, in order */
    size_t n_bootstrap;               /* >= 1 */
    struct kb_hostport listen;        /* bootstrap listener (default 127.0.0.1:9092) */
    char *advertised_host;            /* told to clients (default: listen host) */
    int broker_port_base;             /* node N is served at base+N (default listen port + 1) */
    int max_node_id;                  /* highest node id kbridge serves (default 99) */
    bool tls;                         /* tls = on|off (default on) */
    enum kb_tls_verify tls_verify;    /* default full */
    char *tls_ca_file;                /* NULL: the system trust store */
    char *tls_cert_file;              /* NULL unless mTLS */
    char *tls_key_file;               /* NULL unless mTLS */
    char *tls_sni;                    /* NULL: the broker's host name */
    struct kb_connect_to *connect_to; /* may be NULL */
    size_t n_connect_to;              /* entries in connect_to */
    int connect_timeout_ms;           /* DNS + TCP connect, default 10000 */
    int tls_handshake_timeout_ms;     /* TLS handshake after TCP connect, default 10000 */
    int idle_timeout_ms;              /* close a client silent this long with nothing in flight;
                                         0 = never; default 600000 */
    int max_connections;              /* client connections at once, default 1024 */
    int line_tls_ca_file;             /* line of each TLS file key, 0 if unset: for later errors */
    int line_tls_cert_file;
    int line_tls_key_file;
    enum kb_sasl_mechanism sasl_mechanism; /* default KB_SASL_NONE (passthrough) */
    char *sasl_username;                   /* effective user: the key, or the JSON file's */
    char *sasl_password_file;              /* path, printed by conf_dump (never the password) */
    struct secret *sasl_secret;            /* loaded at conf_load, wiped when the snapshot is
                                              freed; NULL unless sasl_mechanism is set */
    /* The AWS credentials layer (aws/creds.h); no key holds a secret, only where to find one. */
    bool aws_used;                           /* aws_credentials or another aws_ / gcp_ key set */
    int line_aws;                            /* line of aws_credentials, else the section's */
    enum kb_aws_credentials aws_credentials; /* default KB_AWS_UNSET (means the SDK chain) */
    /* The cluster's credentials provider, for the IAM mechanisms: attached by the proxy right
       after loading, before the snapshot is shared (a reload that aws_provider_matches() attaches
       the same provider to the new snapshot, so each snapshot holds one reference). Released
       with aws_provider_release when the snapshot is freed, so a replaced provider lives until
       the last connection pinning an older snapshot is gone. NULL: none (no IAM mechanism, or
       --check-config / tools that do not sign). */
    struct aws_provider *aws_provider;
    void (*aws_provider_release)(struct aws_provider *p); /* drops that reference */
    char *aws_region;                  /* the key, else from the bootstrap hosts; NULL: neither */
    char *aws_role_arn;                /* web identity / gcp: the role to assume; NULL if unset */
    char *aws_web_identity_token_file; /* web identity token path; NULL: AWS_WEB_IDENTITY_TOKEN_FILE
                                        */
    char *aws_role_session_name;       /* NULL: derived from the host name (aws/creds.c) */
    char *aws_profile;                 /* shared-file profile; NULL: AWS_PROFILE or "default" */
    char *aws_sts_endpoint;  /* https://... ; NULL: AWS_ENDPOINT_URL_STS or the regional one */
    char *aws_ca_file;       /* CA bundle for STS; NULL: AWS_CA_BUNDLE or the system store */
    char *gcp_metadata_host; /* host[:port]; NULL: GCE_METADATA_HOST or metadata.google.internal */
    char *gcp_audience;      /* ID token audience; NULL: "sts.amazonaws.com" */
};

/* A whole configuration snapshot. Read-only once returned by conf_load(). */
struct kb_conf {
    atomic_int refcount;              /* conf_ref/conf_unref (any thread); freed at zero */
    char *path;                       /* the file it was loaded from, or "command line" */
    bool from_flags;                  /* built by conf_load_flags(): there is no file to reload */
    enum kb_log_level log_level;      /* default info */
    enum kb_log_format log_format;    /* default text */
    bool has_admin;                   /* admin_listen set */
    struct kb_hostport admin_listen;  /* when has_admin */
    size_t max_frame_bytes;           /* default 104857600 */
    int drain_timeout_ms;             /* SIGTERM: time in-flight requests get to finish (30000) */
    size_t buffer_high_bytes;         /* stop reading a side when its peer has this queued */
    size_t buffer_low_bytes;          /* resume once the queue drains to this (< high) */
    int workers;                      /* event loops (threads), default 1 */
    struct kb_cluster_conf *clusters; /* array, in file order */
    size_t n_clusters;                /* >= 1 */
};

/*
 * Loads and validates path. On success returns a snapshot with refcount 1. On failure returns
 * NULL and writes one line "PATH:LINE: message" (LINE omitted when the error has no line, e.g.
 * the file cannot be opened) into err.
 * An empty value means the key's default. With tls = off the tls_* keys are parsed but not
 * checked further. TLS files are only opened to see that they are readable (relative paths are
 * relative to the working directory); tlsctx parses them. Never logs, never exits. Not
 * thread-safe: it briefly sets inih's global ini_max_line (see conf.c). With sasl_mechanism set
 * it reads sasl_password_file into the snapshot (see conf/secret.h), so a reload re-reads it.
 */
struct kb_conf *conf_load(const char *path, char *err, size_t errlen);

/*
 * Builds the same snapshot as conf_load() from command-line flags instead of a file: one
 * cluster section (named by --name, default "kbridge") and [global]. args are the flag tokens in
 * order, each "--KEY=VALUE" or "--KEY" followed by its VALUE token, KEY being any key of
 * docs/config.md with '-' for '_' (--bootstrap-servers, --log-level, ...). Every value goes
 * through the INI handler, then the same defaults and validation, so errors carry the INI
 * wording behind a "command line: --FLAG VALUE: " prefix instead of "PATH:LINE: ". The result has
 * path "command line" and from_flags set. NULL with one line in err on failure.
 */
struct kb_conf *conf_load_flags(int nargs, char *const *args, char *err, size_t errlen);

/*
 * Splits argv[1..argc-1] for a command that also takes configuration flags: every token that
 * starts with "--" and is not one of own (NULL-terminated long option names, without "--";
 * "--NAME=VALUE" forms match too) goes to flags, with the token after it when it has no '=';
 * everything else goes to rest, after rest[0] = argv[0]. rest and flags must have room for argc
 * pointers; they point into argv. Sets *n_rest and *n_flags.
 */
void conf_split_args(int argc, char **argv, const char *const *own, char **rest, int *n_rest,
                     char **flags, int *n_flags);

/* References are counted without locks: take and drop them on the event-loop thread. */
struct kb_conf *conf_ref(struct kb_conf *conf); /* returns conf */
void conf_unref(struct kb_conf *conf);          /* NULL is fine */

/*
 * Prints the effective configuration (every key, defaults included) as INI to out, starting
 * with a comment line naming conf->path. conf_load() accepts the output again.
 */
void conf_dump(const struct kb_conf *conf, FILE *out);

/*
 * For reload: true when fresh differs from old in something that needs a restart (a [global]
 * key that is not reloadable: admin_listen, workers), with one line such as "admin_listen in
 * [global] changed from '' to '127.0.0.1:9644'" in why. Clusters may be added, removed and changed
 * (listeners included) on reload. false when fresh can replace old as it is.
 */
bool conf_needs_restart(const struct kb_conf *old, const struct kb_conf *fresh, char *why,
                        size_t whylen);

/* Parses "host:port" / "[v6]:port" into hp. false with a reason in err on failure. */
bool conf_parse_hostport(const char *s, struct kb_hostport *hp, char *err, size_t errlen);

/* Formats hp as host:port ([v6]:port) into out; returns out. */
const char *conf_hostport_str(const struct kb_hostport *hp, char *out, size_t outlen);

/*
 * The connect_to target for from (host compared case-insensitively, port exactly), or from
 * itself when there is none.
 */
const struct kb_hostport *conf_connect_target(const struct kb_cluster_conf *cc,
                                              const struct kb_hostport *from);

const char *conf_log_level_str(enum kb_log_level l);
const char *conf_tls_verify_str(enum kb_tls_verify v);
const char *conf_sasl_mechanism_str(enum kb_sasl_mechanism m); /* "" for KB_SASL_NONE */

/*
 * The warning an operator should see for cc at start-up and reload (kbridge logs it, conf_dump
 * prints it as a comment): today only a sasl_password_file readable by group or others.
 * false, out untouched, when there is none.
 */
bool conf_cluster_warning(const struct kb_cluster_conf *cc, char *out, size_t outlen);
const char *conf_aws_credentials_str(enum kb_aws_credentials c);

/*
 * The AWS region of cc: aws_region, else the region in a bootstrap host
 * "*.kafka.<region>.amazonaws.com" (or ".amazonaws.com.cn", or MSK Serverless's
 * "*.kafka-serverless.<region>..."). NULL when neither gives one; conf_load() already refused that
 * when cc->aws_used.
 */
const char *conf_aws_region(const struct kb_cluster_conf *cc);

/*
 * The region in an MSK broker host name as above, written into out (NUL-terminated); false when
 * host is not one.
 */
bool conf_aws_region_from_host(const char *host, char *out, size_t outlen);

#endif
