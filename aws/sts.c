/*
 * sts.c - STS's query API: form-encoded POST in, XML out. The XML is read with a tiny tag
 * finder, not a parser: STS answers are flat, machine-written and small, and only a handful of
 * leaf elements matter. Anything unexpected is an error, never a guess.
 */
#include "aws/sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/sigv4.h"
#include "aws/http.h"

/* The first "<tag>" (or "<tag " with attributes) in [p, end): its content start, NULL if none. */
static const char *
aws_xml_open(const char *p, const char *end, const char *tag)
{
    size_t tl = strlen(tag);

    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        const char *gt;

        if (!lt || (size_t)(end - lt) < tl + 2) {
            return NULL;
        }
        if (strncmp(lt + 1, tag, tl) == 0 && (lt[tl + 1] == '>' || lt[tl + 1] == ' ')) {
            gt = memchr(lt, '>', (size_t)(end - lt));
            if (!gt || gt[-1] == '/') {
                return NULL; /* <tag/>: empty, treated as absent */
            }
            return gt + 1;
        }
        p = lt + 1;
    }
    return NULL;
}

/* The matching "</tag>" in [p, end), NULL if none. */
static const char *
aws_xml_close(const char *p, const char *end, const char *tag)
{
    size_t tl = strlen(tag);

    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));

        if (!lt || (size_t)(end - lt) < tl + 3) {
            return NULL;
        }
        if (lt[1] == '/' && strncmp(lt + 2, tag, tl) == 0 && lt[tl + 2] == '>') {
            return lt;
        }
        p = lt + 1;
    }
    return NULL;
}

/* Decodes XML character data [p, end) into out; false on a bad entity or overflow. */
static bool
aws_xml_decode(const char *p, const char *end, char *out, size_t outlen)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0, i;

    while (p < end) {
        char c = *p++;

        if (c == '<') {
            return false; /* a child element: not a leaf */
        }
        if (c == '&') {
            bool found = false;

            for (i = 0; i < sizeof(ents) / sizeof(ents[0]) && !found; i++) {
                size_t n = strlen(ents[i].name);

                if ((size_t)(end - p) >= n && strncmp(p, ents[i].name, n) == 0) {
                    c = ents[i].c;
                    p += n;
                    found = true;
                }
            }
            if (!found && p < end && *p == '#') {
                char *stop;
                long v = p[1] == 'x' ? strtol(p + 2, &stop, 16) : strtol(p + 1, &stop, 10);

                if (stop >= end || *stop != ';' || v <= 0 || v > 0x7f) {
                    return false; /* STS writes ASCII; anything else is not worth decoding */
                }
                c = (char)v;
                p = stop + 1;
                found = true;
            }
            if (!found) {
                return false;
            }
        }
        if (o + 1 >= outlen) {
            return false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

bool
aws_xml_text(const char *xml, size_t len, const char *scope, const char *tag, char *out,
             size_t outlen)
{
    const char *p = xml, *end = xml + len, *a, *b;

    if (outlen == 0) {
        return false;
    }
    out[0] = '\0';
    if (scope) {
        if (!(p = aws_xml_open(xml, end, scope)) || !(end = aws_xml_close(p, end, scope))) {
            return false;
        }
    }
    if (!(a = aws_xml_open(p, end, tag)) || !(b = aws_xml_close(a, end, tag))) {
        return false;
    }
    /* trim the whitespace a pretty-printer may add */
    while (a < b && (*a == ' ' || *a == '\n' || *a == '\r' || *a == '\t')) {
        a++;
    }
    while (b > a && (b[-1] == ' ' || b[-1] == '\n' || b[-1] == '\r' || b[-1] == '\t')) {
        b--;
    }
    return aws_xml_decode(a, b, out, outlen);
}

bool
aws_sts_parse_credentials(const char *xml, size_t len, struct aws_creds *out, char *err,
                          size_t errlen)
{
    char when[64];
    const char *missing = NULL;

    if (!aws_xml_text(xml, len, "Credentials", "AccessKeyId", out->access_key_id,
                      sizeof(out->access_key_id))) {
        missing = "Credentials/AccessKeyId";
    } else if (!aws_xml_text(xml, len, "Credentials", "SecretAccessKey", out->secret,
                             sizeof(out->secret))) {
        missing = "Credentials/SecretAccessKey";
    } else if (!aws_xml_text(xml, len, "Credentials", "SessionToken", out->session_token,
                             sizeof(out->session_token))) {
        missing = "Credentials/SessionToken";
    } else if (!aws_xml_text(xml, len, "Credentials", "Expiration", when, sizeof(when))) {
        missing = "Credentials/Expiration";
    }
    if (missing) {
        snprintf(err, errlen, "STS answer without a valid %s", missing);
        return false;
    }
    if (!aws_parse_time(when, &out->expiration)) {
        snprintf(err, errlen, "STS answer with an unreadable Expiration '%s'", when);
        return false;
    }
    if (!aws_xml_text(xml, len, "AssumedRoleUser", "Arn", out->principal_arn,
                      sizeof(out->principal_arn))) {
        out->principal_arn[0] = '\0';
    }
    return true;
}

bool
aws_sts_parse_error(const char *xml, size_t len, struct aws_sts_error *e)
{
    memset(e, 0, sizeof(*e));
    if (!aws_xml_text(xml, len, "Error", "Code", e->code, sizeof(e->code))) {
        return false;
    }
    if (!aws_xml_text(xml, len, "Error", "Message", e->message, sizeof(e->message))) {
        e->message[0] = '\0';
    }
    return true;
}

bool
aws_sts_parse_caller_identity(const char *xml, size_t len, char *arn, size_t arnlen, char *account,
                              size_t accountlen)
{
    return aws_xml_text(xml, len, "GetCallerIdentityResult", "Arn", arn, arnlen) &&
           aws_xml_text(xml, len, "GetCallerIdentityResult", "Account", account, accountlen);
}

void
aws_sts_explain(const struct aws_sts_error *e, long status, const char *what, const char *audience,
                char *out, size_t outlen)
{
    const char *hint = "";
    char aud[512] = "";

    if (audience) {
        snprintf(aud, sizeof(aud), " (kbridge asked for audience '%s')", audience);
    }
    if (strcmp(e->code, "AccessDenied") == 0) {
        hint = "; fix the role's trust policy: it must allow sts:AssumeRoleWithWebIdentity for "
               "the token's issuer (Federated: accounts.google.com, or the OIDC provider's ARN), "
               "and its conditions must match the token's audience and subject (for Google: "
               "accounts.google.com:aud = the service account's unique id, "
               "accounts.google.com:oaud = the audience); check aws_role_arn too";
    } else if (strcmp(e->code, "InvalidIdentityToken") == 0) {
        hint = "; STS refused the token itself: check that its issuer is trusted (an IAM OIDC "
               "provider for EKS/other issuers; built in for accounts.google.com), that its "
               "audience is one the provider lists, and that the clock is right";
    } else if (strcmp(e->code, "ExpiredTokenException") == 0) {
        hint = "; the web identity token has expired: the file must be refreshed by its "
               "issuer (EKS rotates it), or check the clock";
    } else if (strcmp(e->code, "RegionDisabledException") == 0) {
        hint = "; activate STS in this region (IAM > Account settings) or set aws_sts_endpoint";
    } else if (strcmp(e->code, "IDPCommunicationError") == 0) {
        hint = "; STS could not reach the identity provider: kbridge retries";
    }
    snprintf(out, outlen, "%s failed: STS %s (HTTP %ld): %s%s%s", what, e->code, status,
             e->message[0] ? e->message : "(no message)",
             strcmp(e->code, "AccessDenied") == 0 || strcmp(e->code, "InvalidIdentityToken") == 0
                 ? aud
                 : "",
             hint);
}

bool
aws_sts_assume_role_with_web_identity(const struct aws_settings *s, const char *token,
                                      struct aws_creds *out, time_t *date, char *err, size_t errlen)
{
    static const char *const headers[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL};
    struct aws_http_req req = {.method = "POST",
                               .url = s->sts_endpoint,
                               .headers = headers,
                               .ca_file = s->ca_file,
                               .connect_timeout_ms = s->timeout_ms,
                               .timeout_ms = s->timeout_ms};
    struct aws_http_resp resp = {0};
    char *role = aws_http_escape(s->role_arn), *name = aws_http_escape(s->session_name);
    char *tok = aws_http_escape(token), *body = NULL;
    char what[AWS_ARN_MAX + 64], why[AWS_ERR_MAX];
    struct aws_sts_error e;
    size_t n;
    bool ok = false;

    *date = 0;
    snprintf(what, sizeof(what), "AssumeRoleWithWebIdentity for %s", s->role_arn);
    if (!role || !name || !tok) {
        snprintf(err, errlen, "%s: out of memory", what);
        goto fail;
    }
    n = strlen(role) + strlen(name) + strlen(tok) + 128;
    if (!(body = malloc(n))) {
        snprintf(err, errlen, "%s: out of memory", what);
        goto fail;
    }
    snprintf(body, n,
             "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s"
             "&WebIdentityToken=%s",
             role, name, tok);
    req.body = body;
    if (!aws_http_do(&req, &resp, why, sizeof(why))) {
        snprintf(err, errlen, "%s: STS at %s unreachable: %s", what, s->sts_endpoint, why);
        goto fail;
    }
    *date = resp.date;
    if (resp.status != 200) {
        if (aws_sts_parse_error(resp.body, resp.len, &e)) {
            aws_sts_explain(&e, resp.status, what, s->mode == KB_AWS_GCP ? s->audience : NULL, err,
                            errlen);
        } else {
            snprintf(err, errlen,
                     "%s: STS at %s answered HTTP %ld without an STS error (is it "
                     "STS? check aws_sts_endpoint / AWS_ENDPOINT_URL_STS)",
                     what, s->sts_endpoint, resp.status);
        }
        goto fail;
    }
    if (!aws_sts_parse_credentials(resp.body, resp.len, out, why, sizeof(why))) {
        snprintf(err, errlen, "%s: %s", what, why);
        goto fail;
    }
    ok = true;
fail:
    aws_http_resp_free(&resp);
    if (tok) {
        OPENSSL_cleanse(tok, strlen(tok));
    }
    if (body) {
        OPENSSL_cleanse(body, strlen(body));
    }
    free(role);
    free(name);
    free(tok);
    free(body);
    return ok;
}

bool
aws_sts_url_parts(const char *url, char *host, size_t hostlen, char *path, size_t pathlen)
{
    const char *h, *slash;
    size_t n;
    bool tls = strncasecmp(url, "https://", 8) == 0;

    if (!tls && strncasecmp(url, "http://", 7) != 0) {
        return false;
    }
    h = url + (tls ? 8 : 7);
    slash = strpbrk(h, "/?#");
    n = slash ? (size_t)(slash - h) : strlen(h);
    if (n == 0 || n >= hostlen) {
        return false;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    if ((tls && n > 4 && strcmp(host + n - 4, ":443") == 0) ||
        (!tls && n > 3 && strcmp(host + n - 3, ":80") == 0)) {
        host[n - (tls ? 4 : 3)] = '\0';
    }
    snprintf(path, pathlen, "%s", slash && *slash == '/' ? slash : "/");
    path[strcspn(path, "?#")] = '\0';
    return true;
}

bool
aws_sts_get_caller_identity(const struct aws_settings *s, const struct aws_creds *c, char *arn,
                            size_t arnlen, char *account, size_t accountlen, time_t *date,
                            char *err, size_t errlen)
{
    static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";
    static const char ctype[] = "application/x-www-form-urlencoded; charset=utf-8";
    char host[512], path[512], hash[KB_SIGV4_HEX_LEN + 1], amz_date[KB_SIGV4_AMZ_DATE_LEN + 1];
    char h_date[64], *h_token = NULL, *h_auth = NULL, *authorization = NULL, why[AWS_ERR_MAX];
    char h_ctype[128];
    const char *headers[5];
    struct sigv4_param sh[2] = {{"host", host}, {"content-type", ctype}};
    struct sigv4_request sreq = {.method = "POST", .headers = sh, .nheaders = 2};
    struct sigv4_creds sc = {c->access_key_id, c->secret, c->session_token};
    struct aws_http_req req = {.method = "POST",
                               .url = s->sts_endpoint,
                               .headers = headers,
                               .body = body,
                               .ca_file = s->ca_file,
                               .connect_timeout_ms = s->timeout_ms,
                               .timeout_ms = s->timeout_ms};
    struct aws_http_resp resp = {0};
    struct aws_sts_error e;
    size_t n = 0;
    bool ok = false;

    *date = 0;
    if (!aws_sts_url_parts(s->sts_endpoint, host, sizeof(host), path, sizeof(path))) {
        snprintf(err, errlen, "GetCallerIdentity: bad STS endpoint '%s'", s->sts_endpoint);
        return false;
    }
    sreq.path = path;
    sigv4_sha256_hex(body, strlen(body), hash);
    sreq.payload_hash = hash;
    if (!sigv4_sign_headers(&sreq, &sc, s->region, "sts", time(NULL), amz_date, &authorization, why,
                            sizeof(why))) {
        snprintf(err, errlen, "GetCallerIdentity: cannot sign: %s", why);
        return false;
    }
    snprintf(h_ctype, sizeof(h_ctype), "Content-Type: %s", ctype);
    snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", amz_date);
    headers[n++] = h_ctype;
    headers[n++] = h_date;
    if (asprintf(&h_auth, "Authorization: %s", authorization) < 0) {
        h_auth = NULL;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    headers[n++] = h_auth;
    if (c->session_token[0]) {
        if (asprintf(&h_token, "X-Amz-Security-Token: %s", c->session_token) < 0) {
            h_token = NULL;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        headers[n++] = h_token;
    }
    headers[n] = NULL;
    if (!aws_http_do(&req, &resp, why, sizeof(why))) {
        snprintf(err, errlen, "GetCallerIdentity: STS at %s unreachable: %s", s->sts_endpoint, why);
        goto fail;
    }
    *date = resp.date;
    if (resp.status != 200) {
        if (aws_sts_parse_error(resp.body, resp.len, &e)) {
            snprintf(err, errlen, "GetCallerIdentity failed: STS %s (HTTP %ld): %s%s", e.code,
                     resp.status, e.message,
                     strcmp(e.code, "SignatureDoesNotMatch") == 0
                         ? "; if the message says the signature expired, fix the clock (NTP)"
                         : "");
        } else {
            snprintf(err, errlen, "GetCallerIdentity: STS at %s answered HTTP %ld", s->sts_endpoint,
                     resp.status);
        }
        goto fail;
    }
    if (!aws_sts_parse_caller_identity(resp.body, resp.len, arn, arnlen, account, accountlen)) {
        snprintf(err, errlen, "GetCallerIdentity: STS answer without Arn and Account");
        goto fail;
    }
    ok = true;
fail:
    aws_http_resp_free(&resp);
    if (h_token) {
        OPENSSL_cleanse(h_token, strlen(h_token));
    }
    free(h_token);
    free(h_auth);
    free(authorization);
    return ok;
}
