/*
 * sigv4.c - AWS Signature Version 4 (see sigv4.h). The four tasks of AWS's "Create a signed AWS
 * API request" are one function each; sigv4_presign() and sigv4_sign_headers() put them
 * together. Strings are built in an auth_str (auth/str.h).
 */
#include "auth/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/str.h"

static void
sigv4_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static void
sigv4_hmac(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
    unsigned int outlen = 32;

    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen);
}

bool
sigv4_format_date(time_t t, char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1],
                  char date[KB_SIGV4_DATE_LEN + 1])
{
    struct tm tm;
    char buf[32];

    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999) {
        return false;
    }
    if (strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm) != KB_SIGV4_AMZ_DATE_LEN) {
        return false;
    }
    if (amz_date) {
        memcpy(amz_date, buf, KB_SIGV4_AMZ_DATE_LEN + 1);
    }
    if (date) {
        memcpy(date, buf, KB_SIGV4_DATE_LEN);
        date[KB_SIGV4_DATE_LEN] = '\0';
    }
    return true;
}

void
sigv4_sha256_hex(const void *data, size_t len, char hex[KB_SIGV4_HEX_LEN + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];

    SHA256(data, len, md);
    sigv4_hex(md, sizeof(md), hex);
}

static void
sigv4_encode_into(struct auth_str *s, const char *in, size_t len, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            auth_str_add(s, (const char *)&c, 1);
        } else {
            char pct[3] = {'%', digits[c >> 4], digits[c & 15]};
            auth_str_add(s, pct, 3);
        }
    }
}

char *
sigv4_uri_encode(const char *s, size_t len, bool keep_slash)
{
    struct auth_str out = {0};

    sigv4_encode_into(&out, s, len, keep_slash);
    return auth_str_take(&out);
}

/* One encoded query pair, for sorting. */
struct sigv4_pair {
    char *name;  /* URI-encoded name */
    char *value; /* URI-encoded value */
};

static int
sigv4_pair_cmp(const void *a, const void *b)
{
    const struct sigv4_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c ? c : strcmp(x->value, y->value);
}

char *
sigv4_canonical_query(const struct sigv4_param *query, size_t nquery)
{
    struct sigv4_pair *pairs = NULL;
    struct auth_str out = {0};
    char *result = NULL;
    size_t i, made = 0;

    if (nquery == 0) {
        return auth_str_take(&out);
    }
    pairs = calloc(nquery, sizeof(*pairs));
    if (!pairs) {
        goto fail;
    }
    for (i = 0; i < nquery; i++) {
        const char *v = query[i].value ? query[i].value : "";
        pairs[i].name = sigv4_uri_encode(query[i].name, strlen(query[i].name), false);
        pairs[i].value = sigv4_uri_encode(v, strlen(v), false);
        made = i + 1;
        if (!pairs[i].name || !pairs[i].value) {
            goto fail;
        }
    }
    /* Byte order of the encoded strings: AWS sorts by code point, and encoding keeps ASCII. */
    qsort(pairs, nquery, sizeof(*pairs), sigv4_pair_cmp);
    for (i = 0; i < nquery; i++) {
        if (i > 0) {
            auth_str_cat(&out, "&");
        }
        auth_str_cat(&out, pairs[i].name);
        auth_str_cat(&out, "=");
        auth_str_cat(&out, pairs[i].value);
    }
    result = auth_str_take(&out);
fail:
    for (i = 0; pairs && i < made; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
    free(out.p);
    return result;
}

/* One header prepared for the canonical form. */
struct sigv4_hdr {
    char *name;        /* lower-cased name */
    const char *value; /* the caller's value */
    size_t order;      /* position given, so repeated names keep their order */
};

static int
sigv4_hdr_cmp(const void *a, const void *b)
{
    const struct sigv4_hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c) {
        return c;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends value with leading and trailing blanks removed and inner runs of blanks folded. */
static void
sigv4_add_trimmed(struct auth_str *s, const char *value)
{
    const char *p = value ? value : "";
    const char *end = p + strlen(p);
    bool blank = false;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    for (; p < end; p++) {
        if (*p == ' ' || *p == '\t') {
            blank = true;
            continue;
        }
        if (blank) {
            auth_str_add(s, " ", 1);
            blank = false;
        }
        auth_str_add(s, p, 1);
    }
}

char *
sigv4_canonical_request(const struct sigv4_request *req, char **signed_headers)
{
    struct sigv4_hdr *hdrs = NULL;
    struct auth_str out = {0}, sh = {0};
    char *query = NULL, *result = NULL;
    size_t i, k, made = 0;

    if (signed_headers) {
        *signed_headers = NULL;
    }
    if (req->nheaders > 0) {
        hdrs = calloc(req->nheaders, sizeof(*hdrs));
        if (!hdrs) {
            goto fail;
        }
    }
    for (i = 0; i < req->nheaders; i++) {
        size_t n = strlen(req->headers[i].name);
        if (n == 0) {
            goto fail;
        }
        hdrs[i].name = malloc(n + 1);
        if (!hdrs[i].name) {
            goto fail;
        }
        made++;
        for (k = 0; k <= n; k++) {
            char c = req->headers[i].name[k];
            hdrs[i].name[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        hdrs[i].value = req->headers[i].value;
        hdrs[i].order = i;
    }
    if (req->nheaders > 0) {
        qsort(hdrs, req->nheaders, sizeof(*hdrs), sigv4_hdr_cmp);
    }
    query = sigv4_canonical_query(req->query, req->nquery);
    if (!query) {
        goto fail;
    }

    auth_str_cat(&out, req->method);
    auth_str_cat(&out, "\n");
    sigv4_encode_into(&out, req->path, strlen(req->path), true);
    auth_str_cat(&out, "\n");
    auth_str_cat(&out, query);
    auth_str_cat(&out, "\n");
    for (i = 0; i < req->nheaders; i++) {
        bool repeat = i > 0 && strcmp(hdrs[i].name, hdrs[i - 1].name) == 0;
        if (repeat) {
            auth_str_cat(&out, ",");
        } else {
            if (i > 0) {
                auth_str_cat(&out, "\n");
                auth_str_cat(&sh, ";");
            }
            auth_str_cat(&out, hdrs[i].name);
            auth_str_cat(&out, ":");
            auth_str_cat(&sh, hdrs[i].name);
        }
        sigv4_add_trimmed(&out, hdrs[i].value);
    }
    if (req->nheaders > 0) {
        auth_str_cat(&out, "\n");
    }
    auth_str_cat(&out, "\n");
    auth_str_add(&sh, "", 0);
    if (sh.p) {
        auth_str_cat(&out, sh.p);
    }
    auth_str_cat(&out, "\n");
    auth_str_cat(&out, req->payload_hash ? req->payload_hash : KB_SIGV4_EMPTY_SHA256);
    if (out.oom || sh.oom) {
        goto fail;
    }
    result = auth_str_take(&out);
    if (result && signed_headers) {
        *signed_headers = auth_str_take(&sh);
        if (!*signed_headers) {
            free(result);
            result = NULL;
        }
    }
fail:
    for (i = 0; i < made; i++) {
        free(hdrs[i].name);
    }
    free(hdrs);
    free(query);
    free(out.p);
    free(sh.p);
    return result;
}

char *
sigv4_scope(const char *date, const char *region, const char *service)
{
    struct auth_str s = {0};

    auth_str_cat(&s, date);
    auth_str_cat(&s, "/");
    auth_str_cat(&s, region);
    auth_str_cat(&s, "/");
    auth_str_cat(&s, service);
    auth_str_cat(&s, "/aws4_request");
    return auth_str_take(&s);
}

char *
sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical_request)
{
    struct auth_str s = {0};
    char hash[KB_SIGV4_HEX_LEN + 1];

    sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
    auth_str_cat(&s, KB_SIGV4_ALGORITHM "\n");
    auth_str_cat(&s, amz_date);
    auth_str_cat(&s, "\n");
    auth_str_cat(&s, scope);
    auth_str_cat(&s, "\n");
    auth_str_cat(&s, hash);
    return auth_str_take(&s);
}

void
sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                  uint8_t key[32])
{
    struct auth_str k0 = {0};
    uint8_t k[32];

    auth_str_cat(&k0, "AWS4");
    auth_str_cat(&k0, secret);
    if (k0.oom) {
        /* Out of memory for a few dozen bytes: a zero key makes a signature MSK will refuse. */
        memset(key, 0, 32);
        return;
    }
    sigv4_hmac((const uint8_t *)k0.p, k0.len, date, strlen(date), k);
    OPENSSL_cleanse(k0.p, k0.len);
    free(k0.p);
    sigv4_hmac(k, 32, region, strlen(region), k);
    sigv4_hmac(k, 32, service, strlen(service), k);
    sigv4_hmac(k, 32, "aws4_request", 12, key);
    OPENSSL_cleanse(k, sizeof(k));
}

void
sigv4_signature(const uint8_t key[32], const char *string_to_sign, char hex[KB_SIGV4_HEX_LEN + 1])
{
    uint8_t mac[32];

    sigv4_hmac(key, 32, string_to_sign, strlen(string_to_sign), mac);
    sigv4_hex(mac, sizeof(mac), hex);
}

/* The signature over canonical for scope at amz_date, into hex. false when out of memory. */
static bool
sigv4_sign_canonical(const struct sigv4_creds *creds, const char *region, const char *service,
                     const char *amz_date, const char *date, const char *scope,
                     const char *canonical, char hex[KB_SIGV4_HEX_LEN + 1])
{
    uint8_t key[32];
    char *sts = sigv4_string_to_sign(amz_date, scope, canonical);

    if (!sts) {
        return false;
    }
    sigv4_signing_key(creds->secret, date, region, service, key);
    sigv4_signature(key, sts, hex);
    OPENSSL_cleanse(key, sizeof(key));
    free(sts);
    return true;
}

/* Frees a string that may hold the session token (a canonical request or query), wiped. */
static void
sigv4_free_wiped(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static bool
sigv4_check_inputs(const struct sigv4_request *req, const struct sigv4_creds *creds,
                   const char *region, const char *service, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "host") == 0) {
            break;
        }
    }
    if (i == req->nheaders) {
        auth_err(err, errlen, "sigv4: the request has no host header to sign");
        return false;
    }
    if (!creds || !creds->access_key_id || !*creds->access_key_id || !creds->secret ||
        !*creds->secret) {
        auth_err(err, errlen, "sigv4: no access key id or secret access key");
        return false;
    }
    if (!region || !*region || !service || !*service) {
        auth_err(err, errlen, "sigv4: no region or service to sign for");
        return false;
    }
    return true;
}

bool
sigv4_presign(const struct sigv4_request *req, const struct sigv4_creds *creds, const char *region,
              const char *service, time_t now, unsigned expires, struct sigv4_presigned *out,
              char *err, size_t errlen)
{
    struct sigv4_param *q = NULL;
    struct sigv4_request signed_req;
    struct auth_str qs = {0};
    char date[KB_SIGV4_DATE_LEN + 1], expbuf[16];
    char *scope = NULL, *canonical = NULL, *tmp = NULL;
    const char *why = "out of memory"; /* what a jump to fail: reports */
    bool token = creds && creds->session_token && *creds->session_token;
    size_t i, n = 0;

    memset(out, 0, sizeof(*out));
    if (!sigv4_check_inputs(req, creds, region, service, err, errlen)) {
        return false;
    }
    if (expires < 1 || expires > KB_SIGV4_MAX_EXPIRES) {
        auth_err(err, errlen, "sigv4: expiry %u s outside 1..%d", expires, KB_SIGV4_MAX_EXPIRES);
        return false;
    }
    if (!sigv4_format_date(now, out->amz_date, date)) {
        auth_err(err, errlen, "sigv4: time %lld cannot be formatted", (long long)now);
        return false;
    }
    snprintf(expbuf, sizeof(expbuf), "%u", expires);
    scope = sigv4_scope(date, region, service);
    q = calloc(req->nquery + 6, sizeof(*q));
    if (!scope || !q) {
        goto fail;
    }
    for (i = 0; i < req->nquery; i++) {
        if (strncmp(req->query[i].name, "X-Amz-", 6) == 0) {
            auth_err(err, errlen, "sigv4: the query already holds %s", req->query[i].name);
            why = NULL;
            goto fail;
        }
        q[n++] = req->query[i];
    }
    /* The signed headers' names, the way sigv4_canonical_request() will list them. */
    {
        struct sigv4_request hdr_only = *req;
        hdr_only.nquery = 0;
        hdr_only.query = NULL;
        tmp = sigv4_canonical_request(&hdr_only, &out->signed_headers);
        free(tmp);
        tmp = NULL;
        if (!out->signed_headers) {
            goto fail;
        }
    }
    {
        struct auth_str cred = {0};
        auth_str_cat(&cred, creds->access_key_id);
        auth_str_cat(&cred, "/");
        auth_str_cat(&cred, scope);
        out->credential = auth_str_take(&cred);
    }
    out->expires = strdup(expbuf);
    if (!out->credential || !out->expires) {
        goto fail;
    }
    q[n++] = (struct sigv4_param){"X-Amz-Algorithm", KB_SIGV4_ALGORITHM};
    q[n++] = (struct sigv4_param){"X-Amz-Credential", out->credential};
    q[n++] = (struct sigv4_param){"X-Amz-Date", out->amz_date};
    q[n++] = (struct sigv4_param){"X-Amz-Expires", out->expires};
    q[n++] = (struct sigv4_param){"X-Amz-SignedHeaders", out->signed_headers};
    if (token) {
        q[n++] = (struct sigv4_param){"X-Amz-Security-Token", creds->session_token};
    }
    signed_req = *req;
    signed_req.query = q;
    signed_req.nquery = n;
    canonical = sigv4_canonical_request(&signed_req, NULL);
    if (!canonical) {
        goto fail;
    }
    if (!sigv4_sign_canonical(creds, region, service, out->amz_date, date, scope, canonical,
                              out->signature)) {
        goto fail;
    }
    tmp = sigv4_canonical_query(q, n);
    if (!tmp) {
        goto fail;
    }
    auth_str_cat(&qs, tmp);
    auth_str_cat(&qs, "&X-Amz-Signature=");
    auth_str_cat(&qs, out->signature);
    out->query = auth_str_take(&qs);
    if (!out->query) {
        goto fail;
    }
    sigv4_free_wiped(tmp);
    sigv4_free_wiped(canonical);
    free(scope);
    free(q);
    return true;
fail:
    if (why) {
        auth_err(err, errlen, "sigv4: %s", why);
    }
    sigv4_free_wiped(tmp);
    sigv4_free_wiped(canonical);
    free(scope);
    free(q);
    sigv4_free_wiped(qs.p);
    sigv4_presigned_free(out);
    return false;
}

void
sigv4_presigned_free(struct sigv4_presigned *p)
{
    if (!p) {
        return;
    }
    if (p->query) {
        /* It holds the session token, when there is one. */
        OPENSSL_cleanse(p->query, strlen(p->query));
    }
    free(p->credential);
    free(p->signed_headers);
    free(p->expires);
    free(p->query);
    memset(p, 0, sizeof(*p));
}

bool
sigv4_sign_headers(const struct sigv4_request *req, const struct sigv4_creds *creds,
                   const char *region, const char *service, time_t now,
                   char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1], char **authorization, char *err,
                   size_t errlen)
{
    struct sigv4_param *h = NULL;
    struct sigv4_request signed_req;
    struct auth_str auth = {0};
    char date[KB_SIGV4_DATE_LEN + 1], sig[KB_SIGV4_HEX_LEN + 1];
    char *scope = NULL, *canonical = NULL, *signed_headers = NULL;
    const char *why = "out of memory"; /* what a jump to fail: reports */
    bool token = creds && creds->session_token && *creds->session_token;
    size_t i, n = 0;

    *authorization = NULL;
    if (!sigv4_check_inputs(req, creds, region, service, err, errlen)) {
        return false;
    }
    if (!sigv4_format_date(now, amz_date, date)) {
        auth_err(err, errlen, "sigv4: time %lld cannot be formatted", (long long)now);
        return false;
    }
    h = calloc(req->nheaders + 2, sizeof(*h));
    scope = sigv4_scope(date, region, service);
    if (!h || !scope) {
        goto fail;
    }
    for (i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[i].name;
        if (strcasecmp(name, "x-amz-date") == 0 || strcasecmp(name, "x-amz-security-token") == 0 ||
            strcasecmp(name, "authorization") == 0) {
            auth_err(err, errlen, "sigv4: the headers already hold %s", name);
            why = NULL;
            goto fail;
        }
        h[n++] = req->headers[i];
    }
    h[n++] = (struct sigv4_param){"x-amz-date", amz_date};
    if (token) {
        h[n++] = (struct sigv4_param){"x-amz-security-token", creds->session_token};
    }
    signed_req = *req;
    signed_req.headers = h;
    signed_req.nheaders = n;
    canonical = sigv4_canonical_request(&signed_req, &signed_headers);
    if (!canonical) {
        goto fail;
    }
    if (!sigv4_sign_canonical(creds, region, service, amz_date, date, scope, canonical, sig)) {
        goto fail;
    }
    auth_str_cat(&auth, KB_SIGV4_ALGORITHM " Credential=");
    auth_str_cat(&auth, creds->access_key_id);
    auth_str_cat(&auth, "/");
    auth_str_cat(&auth, scope);
    auth_str_cat(&auth, ", SignedHeaders=");
    auth_str_cat(&auth, signed_headers);
    auth_str_cat(&auth, ", Signature=");
    auth_str_cat(&auth, sig);
    *authorization = auth_str_take(&auth);
    if (!*authorization) {
        goto fail;
    }
    free(signed_headers);
    sigv4_free_wiped(canonical);
    free(scope);
    free(h);
    return true;
fail:
    if (why) {
        auth_err(err, errlen, "sigv4: %s", why);
    }
    free(signed_headers);
    sigv4_free_wiped(canonical);
    free(scope);
    free(h);
    free(auth.p);
    return false;
}
