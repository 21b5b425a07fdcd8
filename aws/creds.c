/*
 * creds.c - the credentials struct, the settings a provider resolves once, and the source
 * chain. Each source says why it gave nothing, so "no credentials" lists every source tried.
 */
#include "aws/creds.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/json.h"
#include "aws/container.h"
#include "aws/gcp.h"
#include "aws/imds.h"
#include "aws/profile.h"
#include "aws/sts.h"

#define AWS_TIMEOUT_MS 10000     /* one STS or metadata call, in total */
#define AWS_TOKEN_FILE_MAX 65536 /* a web identity token is a few KB */

void
aws_creds_clear(struct aws_creds *c)
{
    if (c) {
        OPENSSL_cleanse(c, sizeof(*c));
    }
}

const char *
aws_creds_key_hint(const struct aws_creds *c, char *out, size_t outlen)
{
    size_t n = strlen(c->access_key_id);

    if (n < 12) {
        snprintf(out, outlen, "****");
    } else {
        snprintf(out, outlen, "%.4s****%s", c->access_key_id, c->access_key_id + n - 4);
    }
    return out;
}

bool
aws_parse_time(const char *s, time_t *out)
{
    struct tm tm;
    const char *p;
    char *end;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) {
        return false;
    }
    if (*p == '.') {
        strtoul(p + 1, &end, 10);
        if (end == p + 1) {
            return false;
        }
        p = end;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && strcmp(p, "+0000") != 0) {
        return false;
    }
    t = timegm(&tm);
    if (t == (time_t)-1) {
        return false;
    }
    *out = t;
    return true;
}

/* The first non-empty of a, b, c, strdup'd; NULL when all are empty (or out of memory). */
static char *
aws_pick(const char *a, const char *b, const char *c)
{
    if (a && *a) {
        return strdup(a);
    }
    if (b && *b) {
        return strdup(b);
    }
    return c && *c ? strdup(c) : NULL;
}

/* "kbridge-<host name>", cut to STS's 64 characters and its character set. */
static char *
aws_default_session_name(void)
{
    char host[256] = "", name[65];
    size_t i, o;

    if (gethostname(host, sizeof(host) - 1) != 0) {
        host[0] = '\0';
    }
    o = (size_t)snprintf(name, sizeof(name), "kbridge-");
    for (i = 0; host[i] && o < sizeof(name) - 1; i++) {
        char c = host[i];

        name[o++] = isalnum((unsigned char)c) || strchr("+=,.@_-", c) ? c : '-';
    }
    name[o] = '\0';
    return strdup(name);
}

void
aws_settings_free(struct aws_settings *s)
{
    free(s->cluster);
    free(s->region);
    free(s->role_arn);
    free(s->token_file);
    free(s->session_name);
    free(s->profile);
    free(s->sts_endpoint);
    free(s->ca_file);
    free(s->metadata_host);
    free(s->audience);
    free(s->imds_endpoint);
    free(s->container_relative);
    free(s->container_full);
    memset(s, 0, sizeof(*s));
}

/* NULL-safe strcmp equality. */
static bool
aws_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool
aws_settings_equal(const struct aws_settings *a, const struct aws_settings *b)
{
    return a->mode == b->mode && a->imds_disabled == b->imds_disabled &&
           a->timeout_ms == b->timeout_ms && aws_str_eq(a->region, b->region) &&
           aws_str_eq(a->role_arn, b->role_arn) && aws_str_eq(a->token_file, b->token_file) &&
           aws_str_eq(a->session_name, b->session_name) && aws_str_eq(a->profile, b->profile) &&
           aws_str_eq(a->sts_endpoint, b->sts_endpoint) && aws_str_eq(a->ca_file, b->ca_file) &&
           aws_str_eq(a->metadata_host, b->metadata_host) && aws_str_eq(a->audience, b->audience) &&
           aws_str_eq(a->imds_endpoint, b->imds_endpoint) &&
           aws_str_eq(a->container_relative, b->container_relative) &&
           aws_str_eq(a->container_full, b->container_full);
}

bool
aws_settings_init(struct aws_settings *s, const struct kb_cluster_conf *cc, char *err,
                  size_t errlen)
{
    const char *region = conf_aws_region(cc), *dis = getenv("AWS_EC2_METADATA_DISABLED");
    char sts[512];

    memset(s, 0, sizeof(*s));
    if (!region) {
        snprintf(err, errlen, "no AWS region for [%s]: set aws_region", cc->name);
        return false;
    }
    snprintf(sts, sizeof(sts), "https://sts.%s.amazonaws.com%s", region,
             strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    s->mode = cc->aws_credentials;
    s->timeout_ms = AWS_TIMEOUT_MS;
    s->imds_disabled = dis && strcasecmp(dis, "true") == 0;
    s->cluster = strdup(cc->name);
    s->region = strdup(region);
    /* the gcp mode takes its role from the key only (conf requires it) */
    s->role_arn =
        aws_pick(cc->aws_role_arn, s->mode == KB_AWS_GCP ? NULL : getenv("AWS_ROLE_ARN"), NULL);
    /* a configured role goes with a configured token file: never mix key and environment */
    s->token_file = aws_pick(cc->aws_web_identity_token_file,
                             cc->aws_role_arn ? NULL : getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), NULL);
    s->session_name = aws_pick(cc->aws_role_session_name, getenv("AWS_ROLE_SESSION_NAME"), NULL);
    if (!s->session_name) {
        s->session_name = aws_default_session_name();
    }
    s->profile = aws_pick(cc->aws_profile, getenv("AWS_PROFILE"), "default");
    s->sts_endpoint = aws_pick(cc->aws_sts_endpoint, getenv("AWS_ENDPOINT_URL_STS"), sts);
    s->ca_file = aws_pick(cc->aws_ca_file, getenv("AWS_CA_BUNDLE"), NULL);
    s->metadata_host =
        aws_pick(cc->gcp_metadata_host, getenv("GCE_METADATA_HOST"), AWS_GCP_DEFAULT_METADATA_HOST);
    s->audience = aws_pick(cc->gcp_audience, NULL, AWS_GCP_DEFAULT_AUDIENCE);
    s->imds_endpoint =
        aws_pick(getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), NULL, AWS_IMDS_DEFAULT_ENDPOINT);
    s->container_relative = aws_pick(getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), NULL, NULL);
    s->container_full = aws_pick(getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"), NULL, NULL);
    if (!s->cluster || !s->region || !s->session_name || !s->profile || !s->sts_endpoint ||
        !s->metadata_host || !s->audience || !s->imds_endpoint) {
        aws_settings_free(s);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    /* AWS_ENDPOINT_URL_STS is not checked by conf: hold it to the same rule */
    if (strncasecmp(s->sts_endpoint, "https://", 8) != 0) {
        snprintf(err, errlen,
                 "STS endpoint '%s' (AWS_ENDPOINT_URL_STS) is not https://: STS "
                 "answers carry credentials",
                 s->sts_endpoint);
        aws_settings_free(s);
        return false;
    }
    while (strlen(s->imds_endpoint) > 7 && s->imds_endpoint[strlen(s->imds_endpoint) - 1] == '/') {
        s->imds_endpoint[strlen(s->imds_endpoint) - 1] = '\0';
    }
    return true;
}

/* ---- The sources ---------------------------------------------------------------------------- */

static enum aws_source_result
aws_source_env(struct aws_creds *out, char *why, size_t whylen)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");

    if (!id || !*id) {
        id = getenv("AWS_ACCESS_KEY"); /* the older names the SDKs still read */
    }
    if (!secret || !*secret) {
        secret = getenv("AWS_SECRET_KEY");
    }
    if ((!id || !*id) && (!secret || !*secret)) {
        snprintf(why, whylen, "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY not set");
        return AWS_SOURCE_NONE;
    }
    if (!id || !*id || !secret || !*secret) {
        snprintf(why, whylen,
                 "%s is set but %s is not: set both (and AWS_SESSION_TOKEN for "
                 "temporary credentials)",
                 id && *id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                 id && *id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return AWS_SOURCE_FAILED;
    }
    if (strlen(id) >= sizeof(out->access_key_id) || strlen(secret) >= sizeof(out->secret) ||
        (token && strlen(token) >= sizeof(out->session_token))) {
        snprintf(why, whylen,
                 "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN is "
                 "too long to be one");
        return AWS_SOURCE_FAILED;
    }
    snprintf(out->access_key_id, sizeof(out->access_key_id), "%s", id);
    snprintf(out->secret, sizeof(out->secret), "%s", secret);
    snprintf(out->session_token, sizeof(out->session_token), "%s", token ? token : "");
    out->expiration = 0; /* AWS_CREDENTIAL_EXPIRATION is rare; static until restart or reload */
    return AWS_SOURCE_OK;
}

char *
aws_read_token(const char *path, const char *what, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (!f) {
        snprintf(why, whylen, "cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    buf = malloc(AWS_TOKEN_FILE_MAX + 1);
    n = buf ? fread(buf, 1, AWS_TOKEN_FILE_MAX, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1])) {
        buf[--n] = '\0';
    }
    if (n == 0) {
        snprintf(why, whylen, "%s %s is empty", what, path);
        free(buf);
        return NULL;
    }
    return buf;
}

bool
aws_creds_from_json(const char *json, size_t len, const char *what, struct aws_creds *out,
                    char *err, size_t errlen)
{
    char when[64];

    if (json_get_string(json, len, "AccessKeyId", out->access_key_id, sizeof(out->access_key_id)) !=
            JSON_OK ||
        json_get_string(json, len, "SecretAccessKey", out->secret, sizeof(out->secret)) !=
            JSON_OK ||
        json_get_string(json, len, "Token", out->session_token, sizeof(out->session_token)) !=
            JSON_OK ||
        json_get_string(json, len, "Expiration", when, sizeof(when)) != JSON_OK) {
        snprintf(err, errlen, "%s lack AccessKeyId, SecretAccessKey, Token or Expiration", what);
        return false;
    }
    if (!aws_parse_time(when, &out->expiration)) {
        snprintf(err, errlen, "%s with an unreadable Expiration '%s'", what, when);
        return false;
    }
    return true;
}

void
aws_free_token(char *token)
{
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
}

static enum aws_source_result
aws_source_web_identity(const struct aws_settings *s, struct aws_creds *out, time_t *date,
                        char *why, size_t whylen)
{
    char *token;
    bool ok;

    if (!s->role_arn && !s->token_file) {
        snprintf(why, whylen,
                 "AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE (or aws_role_arn / "
                 "aws_web_identity_token_file) not set");
        return AWS_SOURCE_NONE;
    }
    if (!s->role_arn || !s->token_file) {
        snprintf(why, whylen, "%s is set but no %s: web identity needs both",
                 s->role_arn ? "a role ARN" : "a token file",
                 s->role_arn ? "token file (aws_web_identity_token_file or "
                               "AWS_WEB_IDENTITY_TOKEN_FILE)"
                             : "role ARN (aws_role_arn or AWS_ROLE_ARN)");
        return AWS_SOURCE_FAILED;
    }
    if (!(token = aws_read_token(s->token_file, "the web identity token file", why, whylen))) {
        return AWS_SOURCE_FAILED;
    }
    ok = aws_sts_assume_role_with_web_identity(s, token, out, date, why, whylen);
    aws_free_token(token);
    return ok ? AWS_SOURCE_OK : AWS_SOURCE_FAILED;
}

static bool
aws_fetch_gcp(const struct aws_settings *s, struct aws_creds *out, time_t *date, char *err,
              size_t errlen)
{
    char *token = NULL;
    bool ok;

    if (!s->role_arn) {
        snprintf(err, errlen, "aws_credentials = gcp needs aws_role_arn");
        return false;
    }
    if (!aws_gcp_id_token(s, &token, err, errlen)) {
        return false;
    }
    ok = aws_sts_assume_role_with_web_identity(s, token, out, date, err, errlen);
    aws_free_token(token);
    if (ok) {
        snprintf(out->source, sizeof(out->source), "gcp");
    }
    return ok;
}

bool
aws_creds_fetch(const struct aws_settings *s, struct aws_creds *out, time_t *server_date, char *err,
                size_t errlen)
{
    static const char *const names[] = {"environment", "web-identity", "shared-files", "container",
                                        "imds"};
    char why[5][AWS_ERR_MAX], url[2048];
    enum aws_source_result rc = AWS_SOURCE_NONE;
    size_t i;

    *server_date = 0;
    memset(out, 0, sizeof(*out));
    if (s->mode == KB_AWS_GCP) {
        return aws_fetch_gcp(s, out, server_date, err, errlen);
    }
    for (i = 0; i < 5 && rc == AWS_SOURCE_NONE; i++) {
        why[i][0] = '\0';
        switch (i) {
        case 0:
            rc = aws_source_env(out, why[i], sizeof(why[i]));
            break;
        case 1:
            rc = aws_source_web_identity(s, out, server_date, why[i], sizeof(why[i]));
            break;
        case 2:
            rc = aws_profile_load(s, out, why[i], sizeof(why[i]));
            break;
        case 3:
            rc = aws_container_url(s->container_relative, s->container_full, url, sizeof(url),
                                   why[i], sizeof(why[i]));
            if (rc == AWS_SOURCE_OK && !aws_container_fetch(url, out, why[i], sizeof(why[i]))) {
                rc = AWS_SOURCE_FAILED;
            }
            break;
        default:
            if (s->imds_disabled) {
                snprintf(why[i], sizeof(why[i]), "disabled by AWS_EC2_METADATA_DISABLED");
            } else {
                rc = aws_imds_fetch(s, out, why[i], sizeof(why[i])) ? AWS_SOURCE_OK
                                                                    : AWS_SOURCE_NONE;
            }
            break;
        }
        if (rc == AWS_SOURCE_OK) {
            snprintf(out->source, sizeof(out->source), "%s", names[i]);
            return true;
        }
        if (rc == AWS_SOURCE_FAILED) {
            snprintf(err, errlen, "%s: %s", names[i], why[i]);
            aws_creds_clear(out);
            return false;
        }
    }
    aws_creds_clear(out);
    snprintf(err, errlen,
             "no AWS credentials: environment: %s; web-identity: %s; shared-files: %s; "
             "container: %s; imds: %s. Fix: set one of them up, or use aws_credentials = gcp on "
             "Google Cloud",
             why[0], why[1], why[2], why[3], why[4]);
    return false;
}
