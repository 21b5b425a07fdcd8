/*
 * creds.h - AWS credentials for IAM authentication: the one struct that holds them (wiped with
 * OPENSSL_cleanse whenever it is replaced or dropped), the settings a cluster's provider works
 * from, and the source chain (AWS SDK order, or GCP workload identity). Fetching blocks: only
 * the provider thread (aws/provider.h) calls aws_creds_fetch().
 */
#ifndef KB_AWS_CREDS_H
#define KB_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf/conf.h"

#define KB_MUSTCHECK __attribute__((warn_unused_result))

#define AWS_KEY_ID_MAX 128 /* access key ids are 16..128 characters */
#define AWS_SECRET_MAX 128 /* secret access keys are 40 today */
#define AWS_TOKEN_MAX 8192 /* session tokens have no documented maximum; seen up to ~2 KB */
#define AWS_ARN_MAX 2048   /* IAM's limit for an ARN */
#define AWS_SOURCE_MAX 32  /* "environment", "web-identity", ... */
#define AWS_ERR_MAX 2048   /* a good size for the err buffers of this layer */

/* One set of AWS credentials. The only place kbridge keeps AWS secrets. */
struct aws_creds {
    char access_key_id[AWS_KEY_ID_MAX]; /* AKIA... (long-term) or ASIA... (temporary) */
    char secret[AWS_SECRET_MAX];        /* secret access key: never logged or printed */
    char session_token[AWS_TOKEN_MAX];  /* "" for long-term keys: never logged or printed */
    time_t expiration;                  /* 0: does not expire (static keys) */
    char source[AWS_SOURCE_MAX];        /* which source gave them (aws_creds_fetch) */
    char principal_arn[AWS_ARN_MAX];    /* assumed-role ARN when the source says it, else "" */
};

/* The result of one source of the chain. */
enum aws_source_result {
    AWS_SOURCE_OK,    /* out is filled */
    AWS_SOURCE_NONE,  /* not set up here: why says so, the chain goes on */
    AWS_SOURCE_FAILED /* set up but broken: why says how to fix it, the chain stops */
};

/* Where a cluster's credentials come from: conf keys and the environment, resolved once. */
struct aws_settings {
    char *cluster;                /* section name, for log lines */
    enum kb_aws_credentials mode; /* KB_AWS_UNSET behaves as KB_AWS_DEFAULT */
    char *region;                 /* for the STS endpoint; never NULL */
    char *role_arn;               /* aws_role_arn, else AWS_ROLE_ARN; NULL if neither */
    char *token_file;         /* aws_web_identity_token_file, else AWS_WEB_IDENTITY_TOKEN_FILE */
    char *session_name;       /* aws_role_session_name, AWS_ROLE_SESSION_NAME, or derived */
    char *profile;            /* aws_profile, else AWS_PROFILE, else "default" */
    char *sts_endpoint;       /* aws_sts_endpoint, AWS_ENDPOINT_URL_STS, or regional */
    char *ca_file;            /* aws_ca_file, else AWS_CA_BUNDLE; NULL: system store */
    char *metadata_host;      /* gcp_metadata_host, GCE_METADATA_HOST, or the default */
    char *audience;           /* gcp_audience or AWS_GCP_DEFAULT_AUDIENCE */
    char *imds_endpoint;      /* AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254 */
    bool imds_disabled;       /* AWS_EC2_METADATA_DISABLED=true */
    char *container_relative; /* AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or NULL (ECS) */
    char *container_full;     /* AWS_CONTAINER_CREDENTIALS_FULL_URI or NULL (EKS Pod Identity) */
    int timeout_ms;           /* each HTTPS call to STS or the metadata server, in total */
};

/*
 * The default Google ID token audience. AWS does not check it for accounts.google.com (a
 * built-in provider needs no registered client id): the role's trust policy compares it through
 * the key accounts.google.com:oaud, while accounts.google.com:aud is the service account's
 * unique id (the token's azp). "sts.amazonaws.com" is the audience AWS itself uses for web
 * identity tokens meant for STS (EKS IRSA), so one trust-policy pattern covers both.
 */
#define AWS_GCP_DEFAULT_AUDIENCE "sts.amazonaws.com"
#define AWS_GCP_DEFAULT_METADATA_HOST "metadata.google.internal"
#define AWS_IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"

/* Wipes every byte of c (OPENSSL_cleanse). NULL is fine. */
void aws_creds_clear(struct aws_creds *c);

/* "ASIA****WXYZ": enough to tell keys apart in logs and output, never the whole id. */
const char *aws_creds_key_hint(const struct aws_creds *c, char *out, size_t outlen);

/*
 * Fills s from cc and the environment (read now, not later). cc must have an AWS region
 * (conf_aws_region); the role session name defaults to "kbridge-" + the host name, so it is
 * stable across refreshes and restarts (MSK re-authentication must present the same principal).
 * false with the reason in err; s is then empty. Free with aws_settings_free().
 */
bool aws_settings_init(struct aws_settings *s, const struct kb_cluster_conf *cc, char *err,
                       size_t errlen) KB_MUSTCHECK;
void aws_settings_free(struct aws_settings *s); /* zeroes s; an empty s is fine */

/* true when a and b would fetch the same credentials (every field equal, cluster name aside). */
bool aws_settings_equal(const struct aws_settings *a, const struct aws_settings *b);

/*
 * One pass over the sources (blocking; on the provider thread only). KB_AWS_DEFAULT: the
 * environment, web identity, the shared files, IMDSv2, in that order; a source that is not set
 * up is skipped with its reason, and a source that is set up but fails ends the chain with its
 * error (so an STS AccessDenied is not hidden behind "no IMDS here"). KB_AWS_GCP: the GCE
 * metadata server's ID token, then STS AssumeRoleWithWebIdentity. On success fills out. On
 * failure writes the cause and the fix into err, naming each source tried and why it gave
 * nothing. *server_date gets the Date of the last AWS answer (0 if none), for clock skew.
 */
bool aws_creds_fetch(const struct aws_settings *s, struct aws_creds *out, time_t *server_date,
                     char *err, size_t errlen) KB_MUSTCHECK;

/*
 * Parses an ISO 8601 UTC time as AWS writes it ("2026-12-01T20:30:00Z", with optional
 * fractional seconds, "+00:00" accepted for Z). false when s is not one.
 */
bool aws_parse_time(const char *s, time_t *out) KB_MUSTCHECK;

/*
 * Reads a token file (re-read on every fetch: EKS rotates them), trailing white space cut;
 * NULL with "cannot read <what> <path>: ..." or "<what> <path> is empty" in why. Free with
 * aws_free_token(), which wipes it.
 */
char *aws_read_token(const char *path, const char *what, char *why, size_t whylen);
void aws_free_token(char *token); /* NULL is fine */

/*
 * The credentials JSON that IMDS and the container endpoints return: AccessKeyId,
 * SecretAccessKey, Token and Expiration into out (source left as is); what names the source in
 * the reason when one is missing ("instance metadata credentials").
 */
bool aws_creds_from_json(const char *json, size_t len, const char *what, struct aws_creds *out,
                         char *err, size_t errlen) KB_MUSTCHECK;

#endif
