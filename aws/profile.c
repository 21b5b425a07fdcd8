/*
 * profile.c - the shared credentials and config files, as the AWS CLI and SDKs read them
 * (INI-like: sections, "key = value", '#'/';' comments, indented continuation lines).
 */
#include "aws/profile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define AWS_PROFILE_FILE_MAX (1024 * 1024) /* a shared file larger than this is not one */

/* Copies [a, b) trimmed into out (truncated to outlen - 1). */
static void
aws_profile_copy(const char *a, const char *b, char *out, size_t outlen)
{
    size_t n;

    while (a < b && isspace((unsigned char)*a)) {
        a++;
    }
    while (b > a && isspace((unsigned char)b[-1])) {
        b--;
    }
    n = (size_t)(b - a) < outlen - 1 ? (size_t)(b - a) : outlen - 1;
    memcpy(out, a, n);
    out[n] = '\0';
}

/* Is the section header [a, b) (between the brackets) the profile's? */
static bool
aws_profile_is_section(const char *a, const char *b, const char *profile, bool config_file)
{
    char name[256];

    aws_profile_copy(a, b, name, sizeof(name));
    if (!config_file || strcmp(profile, "default") == 0) {
        if (strcmp(name, profile) == 0) {
            return true;
        }
        if (!config_file) {
            return false;
        }
    }
    if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7])) {
        char *n = name + 8;

        while (isspace((unsigned char)*n)) {
            n++;
        }
        return strcmp(n, profile) == 0;
    }
    return false;
}

void
aws_profile_parse(const char *text, size_t len, const char *profile, bool config_file,
                  struct aws_profile_values *out)
{
    static const char *const unsupported[] = {
        "role_arn",    "source_profile",          "credential_process", "sso_start_url",
        "sso_session", "web_identity_token_file", "credential_source",  NULL};
    const char *p = text, *end = text + len;
    bool in = false;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *a = p, *eq;
        char key[64];
        size_t i;

        eol = eol ? eol : end;
        p = eol < end ? eol + 1 : end;
        if (a < eol && (*a == ' ' || *a == '\t')) {
            continue; /* a nested value (s3 = ...) or continuation: not ours */
        }
        while (a < eol && isspace((unsigned char)*a)) {
            a++;
        }
        if (a == eol || *a == '#' || *a == ';') {
            continue;
        }
        if (*a == '[') {
            const char *close = memchr(a, ']', (size_t)(eol - a));

            in = close && aws_profile_is_section(a + 1, close, profile, config_file);
            out->found = out->found || in;
            continue;
        }
        if (!in || !(eq = memchr(a, '=', (size_t)(eol - a)))) {
            continue;
        }
        aws_profile_copy(a, eq, key, sizeof(key));
        for (i = 0; key[i]; i++) {
            key[i] = (char)tolower((unsigned char)key[i]);
        }
        if (strcmp(key, "aws_access_key_id") == 0) {
            aws_profile_copy(eq + 1, eol, out->creds.access_key_id,
                             sizeof(out->creds.access_key_id));
            out->has_key_id = out->creds.access_key_id[0] != '\0';
        } else if (strcmp(key, "aws_secret_access_key") == 0) {
            aws_profile_copy(eq + 1, eol, out->creds.secret, sizeof(out->creds.secret));
            out->has_secret = out->creds.secret[0] != '\0';
        } else if (strcmp(key, "aws_session_token") == 0 ||
                   strcmp(key, "aws_security_token") == 0) {
            aws_profile_copy(eq + 1, eol, out->creds.session_token,
                             sizeof(out->creds.session_token));
        } else {
            for (i = 0; unsupported[i] && !out->unsupported[0]; i++) {
                if (strcmp(key, unsupported[i]) == 0) {
                    snprintf(out->unsupported, sizeof(out->unsupported), "%s", key);
                }
            }
        }
    }
}

/* Reads a whole file; NULL with *missing when it does not exist, or the error in why. */
static char *
aws_profile_read(const char *path, size_t *len, bool *missing, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t n = 0;

    *missing = false;
    if (!f) {
        *missing = errno == ENOENT || errno == ENOTDIR;
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(AWS_PROFILE_FILE_MAX + 1);
    if (buf) {
        n = fread(buf, 1, AWS_PROFILE_FILE_MAX + 1, f);
    }
    if (!buf || ferror(f) || n > AWS_PROFILE_FILE_MAX) {
        snprintf(why, whylen, "cannot read %s: %s", path,
                 !buf                       ? "out of memory"
                 : n > AWS_PROFILE_FILE_MAX ? "larger than 1 MB"
                                            : "I/O error");
        if (buf) {
            OPENSSL_cleanse(buf, n > AWS_PROFILE_FILE_MAX ? AWS_PROFILE_FILE_MAX : n);
        }
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* One file's say; "found" tells whether the profile appears there. */
static enum aws_source_result
aws_profile_file(const char *path, const char *profile, bool config_file,
                 struct aws_profile_values *v, char *why, size_t whylen)
{
    bool missing;
    size_t len = 0;
    char *text = aws_profile_read(path, &len, &missing, why, whylen);

    memset(v, 0, sizeof(*v));
    if (!text) {
        return missing ? AWS_SOURCE_NONE : AWS_SOURCE_FAILED;
    }
    aws_profile_parse(text, len, profile, config_file, v);
    OPENSSL_cleanse(text, len);
    free(text);
    return AWS_SOURCE_OK;
}

enum aws_source_result
aws_profile_load(const struct aws_settings *s, struct aws_creds *out, char *why, size_t whylen)
{
    const char *home = getenv("HOME"), *env_cred = getenv("AWS_SHARED_CREDENTIALS_FILE");
    const char *env_conf = getenv("AWS_CONFIG_FILE");
    char cred_path[4096], conf_path[4096], w1[1024] = "", w2[1024] = "";
    struct aws_profile_values c, f;
    enum aws_source_result rc = AWS_SOURCE_NONE, r1, r2;

    snprintf(cred_path, sizeof(cred_path), "%s%s",
             env_cred && *env_cred ? env_cred
             : home                ? home
                                   : "",
             env_cred && *env_cred ? "" : "/.aws/credentials");
    snprintf(conf_path, sizeof(conf_path), "%s%s",
             env_conf && *env_conf ? env_conf
             : home                ? home
                                   : "",
             env_conf && *env_conf ? "" : "/.aws/config");
    r1 = aws_profile_file(cred_path, s->profile, false, &c, w1, sizeof(w1));
    r2 = aws_profile_file(conf_path, s->profile, true, &f, w2, sizeof(w2));
    if (r1 == AWS_SOURCE_FAILED || r2 == AWS_SOURCE_FAILED) {
        snprintf(why, whylen, "%s", r1 == AWS_SOURCE_FAILED ? w1 : w2);
        rc = AWS_SOURCE_FAILED;
        goto done;
    }
    if (!c.found && !f.found) {
        snprintf(why, whylen, "no profile '%s' in %s%s or %s%s", s->profile, cred_path,
                 r1 == AWS_SOURCE_NONE ? " (absent)" : "", conf_path,
                 r2 == AWS_SOURCE_NONE ? " (absent)" : "");
        goto done;
    }
    /* the credentials file wins, key by key, as in the SDKs */
    if (!c.has_key_id && f.has_key_id) {
        memcpy(c.creds.access_key_id, f.creds.access_key_id, sizeof(c.creds.access_key_id));
        c.has_key_id = true;
    }
    if (!c.has_secret && f.has_secret) {
        memcpy(c.creds.secret, f.creds.secret, sizeof(c.creds.secret));
        c.has_secret = true;
    }
    if (!c.creds.session_token[0] && f.creds.session_token[0]) {
        memcpy(c.creds.session_token, f.creds.session_token, sizeof(c.creds.session_token));
    }
    if (c.has_key_id && c.has_secret) {
        memcpy(out->access_key_id, c.creds.access_key_id, sizeof(out->access_key_id));
        memcpy(out->secret, c.creds.secret, sizeof(out->secret));
        memcpy(out->session_token, c.creds.session_token, sizeof(out->session_token));
        out->expiration = 0;
        rc = AWS_SOURCE_OK;
    } else if (c.unsupported[0] || f.unsupported[0]) {
        snprintf(why, whylen,
                 "profile '%s' uses %s, which kbridge does not support: give it "
                 "aws_access_key_id and aws_secret_access_key, or use web identity / IMDS / "
                 "aws_credentials = gcp",
                 s->profile, c.unsupported[0] ? c.unsupported : f.unsupported);
        rc = AWS_SOURCE_FAILED;
    } else {
        snprintf(why, whylen, "profile '%s' has %s but not %s", s->profile,
                 c.has_key_id ? "aws_access_key_id" : "aws_secret_access_key",
                 c.has_key_id ? "aws_secret_access_key" : "aws_access_key_id");
        rc = AWS_SOURCE_FAILED;
        if (!c.has_key_id && !c.has_secret) {
            /* e.g. [default] with only region = ...: not a credentials source, go on */
            snprintf(why, whylen, "profile '%s' has no aws_access_key_id / aws_secret_access_key",
                     s->profile);
            rc = AWS_SOURCE_NONE;
        }
    }
done:
    aws_creds_clear(&c.creds);
    aws_creds_clear(&f.creds);
    return rc;
}
