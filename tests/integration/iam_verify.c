/*
 * iam_verify.c - MSK-like IAM verification for the test cluster (see iam_verify.h).
 * Both mechanisms reduce to one pre-signed request: the signed query parameters (by their
 * canonical names), the signature, and the host. iv_check() then rebuilds the SigV4 canonical
 * request from scratch (GET, "/", the sorted encoded query, "host:<host>", signed headers
 * "host", the empty-payload hash), derives the signing key of the named test credential and
 * compares signatures in constant time, after the checks MSK makes on the fields.
 */
#include "iam_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define IV_MAX_PARAMS 24   /* more query parameters than any MSK signer sends */
#define IV_MAX_FIELD 4096  /* longest field kept (session tokens run to ~1-2 KiB) */
#define IV_MAX_CANON 16384 /* longest canonical request built */

/* One decoded field: a signed query parameter, or a JSON member. */
struct iv_field {
    char name[64];            /* canonical query name ("X-Amz-Date") or JSON key */
    char value[IV_MAX_FIELD]; /* decoded value */
};

/* A pre-signed request reduced to what the signature covers. */
struct iv_req {
    struct iv_field q[IV_MAX_PARAMS]; /* signed query parameters, canonical names */
    size_t nq;                        /* how many */
    char signature[80];               /* X-Amz-Signature as sent */
    char host[256];                   /* the host the client signed */
};

static void iv_reason(char *reason, size_t rlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
iv_reason(char *reason, size_t rlen, const char *fmt, ...)
{
    va_list ap;

    if (!reason || rlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(reason, rlen, fmt, ap);
    va_end(ap);
}

static const char *
iv_get(const struct iv_req *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->nq; i++) {
        if (strcmp(r->q[i].name, name) == 0) {
            return r->q[i].value;
        }
    }
    return NULL;
}

/* Adds a signed parameter; false when there are too many, a name repeats or a value is long. */
static bool
iv_add(struct iv_req *r, const char *name, const char *value, size_t vlen)
{
    if (r->nq == IV_MAX_PARAMS || strlen(name) >= sizeof(r->q[0].name) || vlen >= IV_MAX_FIELD ||
        iv_get(r, name)) {
        return false;
    }
    snprintf(r->q[r->nq].name, sizeof(r->q[0].name), "%s", name);
    memcpy(r->q[r->nq].value, value, vlen);
    r->q[r->nq].value[vlen] = '\0';
    r->nq++;
    return true;
}

/* ---- SigV4, from the specification ---------------------------------------------------- */

/* Appends to a bounded buffer; *ok turns false (and stays) on overflow. */
static void
iv_put(char *buf, size_t cap, size_t *used, bool *ok, const char *s, size_t n)
{
    if (!*ok || n >= cap - *used) {
        *ok = false;
        return;
    }
    memcpy(buf + *used, s, n);
    *used += n;
    buf[*used] = '\0';
}

/* RFC 3986 unreserved characters stay; every other byte is %XX in upper-case hex. */
static void
iv_put_encoded(char *buf, size_t cap, size_t *used, bool *ok, const char *s)
{
    const char *hex = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (strchr("-_.~", c) || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
            (c >= 'A' && c <= 'Z')) {
            iv_put(buf, cap, used, ok, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 0xf]};
            iv_put(buf, cap, used, ok, e, 3);
        }
    }
}

/* Hex of n bytes into out (2n+1 bytes). */
static void
iv_hex(const unsigned char *in, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", in[i]);
    }
}

/* The signature of the request r for credential secret, over scope date/region/service. */
static bool
iv_signature(const struct iv_req *r, const char *secret, const char *date, const char *region,
             const char *service, const char *amz_date, char out[65])
{
    struct iv_sign_scratch {
        char canon[IV_MAX_CANON];                          /* the canonical request */
        char encq[IV_MAX_PARAMS][2][3 * IV_MAX_FIELD + 1]; /* encoded names and values */
    } *w = malloc(sizeof(*w));
    size_t order[IV_MAX_PARAMS], i, j, used = 0;
    unsigned char digest[SHA256_DIGEST_LENGTH], k[EVP_MAX_MD_SIZE];
    unsigned int klen;
    char hash[65], sts[512], kkey[512];
    bool ok = w != NULL;

    if (!w) {
        return false;
    }
    /* Encode every name and value, then order them: by encoded name, then encoded value. */
    for (i = 0; i < r->nq; i++) {
        size_t u = 0;
        bool fine = true;
        w->encq[i][0][0] = w->encq[i][1][0] = '\0';
        iv_put_encoded(w->encq[i][0], sizeof(w->encq[i][0]), &u, &fine, r->q[i].name);
        u = 0;
        iv_put_encoded(w->encq[i][1], sizeof(w->encq[i][1]), &u, &fine, r->q[i].value);
        if (!fine) {
            goto fail;
        }
        order[i] = i;
    }
    for (i = 1; i < r->nq; i++) {
        size_t cur = order[i];
        for (j = i; j > 0; j--) {
            int c = strcmp(w->encq[order[j - 1]][0], w->encq[cur][0]);
            if (c == 0) {
                c = strcmp(w->encq[order[j - 1]][1], w->encq[cur][1]);
            }
            if (c <= 0) {
                break;
            }
            order[j] = order[j - 1];
        }
        order[j] = cur;
    }

    w->canon[0] = '\0';
    iv_put(w->canon, sizeof(w->canon), &used, &ok, "GET\n/\n", 6);
    for (i = 0; i < r->nq; i++) {
        if (i > 0) {
            iv_put(w->canon, sizeof(w->canon), &used, &ok, "&", 1);
        }
        iv_put(w->canon, sizeof(w->canon), &used, &ok, w->encq[order[i]][0],
               strlen(w->encq[order[i]][0]));
        iv_put(w->canon, sizeof(w->canon), &used, &ok, "=", 1);
        iv_put(w->canon, sizeof(w->canon), &used, &ok, w->encq[order[i]][1],
               strlen(w->encq[order[i]][1]));
    }
    iv_put(w->canon, sizeof(w->canon), &used, &ok, "\nhost:", 6);
    iv_put(w->canon, sizeof(w->canon), &used, &ok, r->host, strlen(r->host));
    /* Empty line after the headers, the signed header list, then SHA-256 of no payload. */
    iv_put(w->canon, sizeof(w->canon), &used, &ok, "\n\nhost\n", 7);
    SHA256((const unsigned char *)"", 0, digest);
    iv_hex(digest, sizeof(digest), hash);
    iv_put(w->canon, sizeof(w->canon), &used, &ok, hash, 64);
    if (!ok) {
        goto fail;
    }

    SHA256((const unsigned char *)w->canon, used, digest);
    iv_hex(digest, sizeof(digest), hash);
    if (snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
                 date, region, service, hash) >= (int)sizeof(sts)) {
        goto fail;
    }
    if (snprintf(kkey, sizeof(kkey), "AWS4%s", secret) >= (int)sizeof(kkey)) {
        goto fail;
    }
    HMAC(EVP_sha256(), kkey, (int)strlen(kkey), (const unsigned char *)date, strlen(date), k,
         &klen);
    OPENSSL_cleanse(kkey, sizeof(kkey));
    HMAC(EVP_sha256(), k, (int)klen, (const unsigned char *)region, strlen(region), k, &klen);
    HMAC(EVP_sha256(), k, (int)klen, (const unsigned char *)service, strlen(service), k, &klen);
    HMAC(EVP_sha256(), k, (int)klen, (const unsigned char *)"aws4_request", 12, k, &klen);
    HMAC(EVP_sha256(), k, (int)klen, (const unsigned char *)sts, strlen(sts), digest, &klen);
    OPENSSL_cleanse(k, sizeof(k));
    iv_hex(digest, 32, out);
    free(w);
    return true;
fail:
    OPENSSL_cleanse(kkey, sizeof(kkey));
    free(w);
    return false;
}

/* The decimal value of n digits at s (already checked to be digits). */
static int
iv_digits(const char *s, int n)
{
    int v = 0;

    while (n-- > 0) {
        v = v * 10 + (*s++ - '0');
    }
    return v;
}

/* "YYYYMMDDTHHMMSSZ" -> time_t; false unless exactly that form. */
static bool
iv_parse_amz_date(const char *s, time_t *t)
{
    struct tm tm;
    int i;

    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z') {
        return false;
    }
    for (i = 0; i < 15; i++) {
        if (i != 8 && (s[i] < '0' || s[i] > '9')) {
            return false;
        }
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = iv_digits(s, 4) - 1900;
    tm.tm_mon = iv_digits(s + 4, 2) - 1;
    tm.tm_mday = iv_digits(s + 6, 2);
    tm.tm_hour = iv_digits(s + 9, 2);
    tm.tm_min = iv_digits(s + 11, 2);
    tm.tm_sec = iv_digits(s + 13, 2);
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60) {
        return false;
    }
    *t = timegm(&tm);
    return true;
}

/* The checks MSK makes, then the signature. r->host is what the client signed. */
static bool
iv_check(const struct iam_verify_policy *pol, const struct iv_req *r, const char *want_host,
         char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen)
{
    const char *action = iv_get(r, "Action"), *alg = iv_get(r, "X-Amz-Algorithm");
    const char *cred = iv_get(r, "X-Amz-Credential"), *amz = iv_get(r, "X-Amz-Date");
    const char *exp = iv_get(r, "X-Amz-Expires"), *sh = iv_get(r, "X-Amz-SignedHeaders");
    const char *tok = iv_get(r, "X-Amz-Security-Token");
    const struct iam_verify_cred *known = NULL;
    char akid[128], cdate[16], cregion[64], cservice[64], cterm[32], sig[65];
    long skew = pol->skew > 0 ? pol->skew : IAM_VERIFY_SKEW_DEFAULT;
    char *end;
    long expires;
    time_t t;
    size_t i;

    if (!action || !alg || !cred || !amz || !exp || !sh || !r->signature[0]) {
        iv_reason(reason, rlen, "missing field: %s",
                  !action ? "action"
                  : !alg  ? "x-amz-algorithm"
                  : !cred ? "x-amz-credential"
                  : !amz  ? "x-amz-date"
                  : !exp  ? "x-amz-expires"
                  : !sh   ? "x-amz-signedheaders"
                          : "x-amz-signature");
        return false;
    }
    if (strcmp(action, "kafka-cluster:Connect") != 0) {
        iv_reason(reason, rlen, "wrong action");
        return false;
    }
    if (strcmp(alg, "AWS4-HMAC-SHA256") != 0) {
        iv_reason(reason, rlen, "unsupported algorithm");
        return false;
    }
    /* <akid>/<yyyymmdd>/<region>/<service>/aws4_request, nothing more. */
    if (sscanf(cred, "%127[^/]/%15[^/]/%63[^/]/%63[^/]/%31s", akid, cdate, cregion, cservice,
               cterm) != 5 ||
        strcmp(cterm, "aws4_request") != 0) {
        iv_reason(reason, rlen, "malformed credential");
        return false;
    }
    if (strcmp(cregion, pol->region) != 0) {
        iv_reason(reason, rlen, "wrong region");
        return false;
    }
    if (strcmp(cservice, "kafka-cluster") != 0) {
        iv_reason(reason, rlen, "wrong service");
        return false;
    }
    /* After the region: a token's host is kafka.<region>.amazonaws.com, so a token for another
     * region is reported as the wrong region rather than the wrong host. */
    if (!want_host || strcasecmp(r->host, want_host) != 0) {
        iv_reason(reason, rlen, "wrong host");
        return false;
    }
    if (!iv_parse_amz_date(amz, &t)) {
        iv_reason(reason, rlen, "malformed date");
        return false;
    }
    if (strncmp(cdate, amz, 8) != 0 || strlen(cdate) != 8) {
        iv_reason(reason, rlen, "credential date does not match x-amz-date");
        return false;
    }
    if (strcmp(sh, "host") != 0) {
        iv_reason(reason, rlen, "signed headers must be host");
        return false;
    }
    expires = strtol(exp, &end, 10);
    if (!*exp || *end || expires < 1 || expires > IAM_VERIFY_EXPIRES_MAX) {
        iv_reason(reason, rlen, "bad expiry");
        return false;
    }
    for (i = 0; i < pol->ncreds; i++) {
        if (strcmp(pol->creds[i].access_key_id, akid) == 0) {
            known = &pol->creds[i];
            break;
        }
    }
    if (!known) {
        iv_reason(reason, rlen, "unknown access key");
        return false;
    }
    if (known->session_token && *known->session_token) {
        if (!tok) {
            iv_reason(reason, rlen, "security token missing");
            return false;
        }
        if (strlen(tok) != strlen(known->session_token) ||
            CRYPTO_memcmp(tok, known->session_token, strlen(tok)) != 0) {
            iv_reason(reason, rlen, "security token mismatch");
            return false;
        }
    } else if (tok) {
        iv_reason(reason, rlen, "unexpected security token");
        return false;
    }
    if (t > pol->now + skew) {
        iv_reason(reason, rlen, "date in the future (clock skew)");
        return false;
    }
    if (pol->now > t + expires) {
        iv_reason(reason, rlen, "signature expired");
        return false;
    }
    if (!iv_signature(r, known->secret, cdate, cregion, cservice, amz, sig)) {
        iv_reason(reason, rlen, "request too large");
        return false;
    }
    if (strlen(r->signature) != 64 || CRYPTO_memcmp(sig, r->signature, 64) != 0) {
        iv_reason(reason, rlen, "signature mismatch");
        return false;
    }
    if (principal && plen > 0) {
        snprintf(principal, plen, "%s", known->principal ? known->principal : known->access_key_id);
    }
    if (expires_at) {
        *expires_at = t + expires;
    }
    return true;
}

/* ---- AWS_MSK_IAM: a flat JSON object of strings ------------------------------------------ */

static const char *
iv_json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

/* A JSON string at p into out (\uXXXX below 0x80 and the short escapes); NULL if malformed. */
static const char *
iv_json_str(const char *p, const char *end, char *out, size_t cap, size_t *olen)
{
    size_t o = 0;

    if (p >= end || *p++ != '"') {
        return NULL;
    }
    while (p < end && *p != '"') {
        char c = *p++;
        if ((unsigned char)c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            if (p >= end) {
                return NULL;
            }
            c = *p++;
            if (c == 'u') {
                char hex[5] = {0};
                long v;
                if (end - p < 4) {
                    return NULL;
                }
                memcpy(hex, p, 4);
                v = strtol(hex, NULL, 16);
                p += 4;
                if (v <= 0 || v >= 0x80) {
                    return NULL;
                }
                c = (char)v;
            } else {
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                const char *at = strchr(from, c);
                if (!at || !c) {
                    return NULL;
                }
                c = to[at - from];
            }
        }
        if (o + 1 >= cap) {
            return NULL;
        }
        out[o++] = c;
    }
    if (p >= end) {
        return NULL;
    }
    out[o] = '\0';
    *olen = o;
    return p + 1;
}

/* JSON keys aws-msk-iam-auth lower-cases, and the query names they were signed under. */
static const char *const iv_signed_keys[][2] = {
    {"action", "Action"},
    {"x-amz-algorithm", "X-Amz-Algorithm"},
    {"x-amz-credential", "X-Amz-Credential"},
    {"x-amz-date", "X-Amz-Date"},
    {"x-amz-expires", "X-Amz-Expires"},
    {"x-amz-security-token", "X-Amz-Security-Token"},
    {"x-amz-signedheaders", "X-Amz-SignedHeaders"},
};

/* Per-call working memory: kbmock may verify on several threads at once. */
struct iv_scratch {
    struct iv_req r;            /* the request being rebuilt */
    char url[4 * IV_MAX_FIELD]; /* a decoded token */
    char key[128];              /* a JSON key or query name */
    char value[IV_MAX_FIELD];   /* a decoded value */
};

static bool
iv_msk_iam(const struct iam_verify_policy *pol, struct iv_scratch *w, const uint8_t *msg,
           size_t len, char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen)
{
    struct iv_req *rp = &w->r;
    char *key = w->key, *value = w->value;
    const char *p = (const char *)msg, *end = p + len;
    char version[32] = "";
    bool have_host = false;
    size_t klen, vlen, i;

    p = iv_json_ws(p, end);
    if (p >= end || *p++ != '{') {
        goto malformed;
    }
    p = iv_json_ws(p, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            p = iv_json_str(iv_json_ws(p, end), end, key, sizeof(w->key), &klen);
            if (!p) {
                goto malformed;
            }
            p = iv_json_ws(p, end);
            if (p >= end || *p++ != ':') {
                goto malformed;
            }
            p = iv_json_str(iv_json_ws(p, end), end, value, sizeof(w->value), &vlen);
            if (!p || strlen(value) != vlen) {
                goto malformed;
            }
            for (i = 0; i < sizeof(iv_signed_keys) / sizeof(iv_signed_keys[0]); i++) {
                if (strcmp(key, iv_signed_keys[i][0]) == 0) {
                    if (!iv_add(rp, iv_signed_keys[i][1], value, vlen)) {
                        goto malformed;
                    }
                }
            }
            if (strcmp(key, "x-amz-signature") == 0) {
                if (rp->signature[0] || vlen >= sizeof(rp->signature)) {
                    goto malformed;
                }
                memcpy(rp->signature, value, vlen + 1);
            } else if (strcmp(key, "host") == 0) {
                if (have_host || vlen >= sizeof(rp->host)) {
                    goto malformed;
                }
                memcpy(rp->host, value, vlen + 1);
                have_host = true;
            } else if (strcmp(key, "version") == 0) {
                snprintf(version, sizeof(version), "%s", value);
            }
            /* Other members (user-agent, unknown ones) are not signed and are ignored. */
            p = iv_json_ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            goto malformed;
        }
    }
    if (iv_json_ws(p, end) != end) {
        goto malformed;
    }
    if (strcmp(version, "2020_10_22") != 0) {
        iv_reason(reason, rlen, "unsupported version");
        return false;
    }
    if (!have_host) {
        iv_reason(reason, rlen, "missing field: host");
        return false;
    }
    return iv_check(pol, rp, pol->host, principal, plen, expires_at, reason, rlen);
malformed:
    iv_reason(reason, rlen, "malformed payload");
    return false;
}

bool
iam_verify_msk_iam(const struct iam_verify_policy *pol, const uint8_t *msg, size_t len,
                   char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen)
{
    struct iv_scratch *w = calloc(1, sizeof(*w));
    bool ok;

    if (!w) {
        iv_reason(reason, rlen, "out of memory");
        return false;
    }
    ok = iv_msk_iam(pol, w, msg, len, principal, plen, expires_at, reason, rlen);
    OPENSSL_cleanse(w, sizeof(*w));
    free(w);
    return ok;
}

/* ---- OAUTHBEARER: a base64url pre-signed URL -------------------------------------------- */

static int
iv_b64url_value(char c)
{
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *at = c ? strchr(abc, c) : NULL;

    return at ? (int)(at - abc) : -1;
}

/* Decodes base64url (no padding, or '=' padding at the very end) into out; false if invalid. */
static bool
iv_b64url_decode(const char *in, size_t len, char *out, size_t cap, size_t *olen)
{
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0;

    while (len > 0 && in[len - 1] == '=') {
        len--;
    }
    for (i = 0; i < len; i++) {
        int v = iv_b64url_value(in[i]);
        if (v < 0) {
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap) {
                return false;
            }
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    if (bits >= 6) {
        return false; /* a lone final character cannot be */
    }
    out[o] = '\0';
    *olen = o;
    return true;
}

/* Percent-decodes s[0..n) into out; false on a bad escape or an embedded NUL. */
static bool
iv_pct_decode(const char *s, size_t n, char *out, size_t cap, size_t *olen)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            char hex[3] = {0};
            char *end;
            long v;
            if (n - i < 3) {
                return false;
            }
            hex[0] = s[i + 1];
            hex[1] = s[i + 2];
            v = strtol(hex, &end, 16);
            if (*end || v == 0) {
                return false;
            }
            c = (char)v;
            i += 2;
        }
        if (o + 1 >= cap) {
            return false;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    *olen = o;
    return true;
}

static bool
iv_token(const struct iam_verify_policy *pol, struct iv_scratch *w, const char *token, size_t len,
         char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen)
{
    struct iv_req *rp = &w->r;
    char *url = w->url, *name = w->key, *value = w->value;
    char want_host[128];
    const char *q, *p, *hend;
    size_t ulen, nlen, vlen;

    if (!iv_b64url_decode(token, len, url, sizeof(w->url), &ulen) || strlen(url) != ulen) {
        iv_reason(reason, rlen, "malformed token");
        return false;
    }
    if (strncmp(url, "https://", 8) != 0) {
        iv_reason(reason, rlen, "malformed token");
        return false;
    }
    hend = url + 8 + strcspn(url + 8, "/?");
    if ((size_t)(hend - url - 8) >= sizeof(rp->host) || strncmp(hend, "/?", 2) != 0) {
        iv_reason(reason, rlen, "malformed token");
        return false;
    }
    memcpy(rp->host, url + 8, (size_t)(hend - url - 8));
    rp->host[hend - url - 8] = '\0';
    for (q = hend + 2; *q; q = *p ? p + 1 : p) {
        const char *eq;
        p = q + strcspn(q, "&");
        eq = memchr(q, '=', (size_t)(p - q));
        if (!eq || !iv_pct_decode(q, (size_t)(eq - q), name, sizeof(w->key), &nlen) ||
            !iv_pct_decode(eq + 1, (size_t)(p - eq - 1), value, sizeof(w->value), &vlen)) {
            iv_reason(reason, rlen, "malformed token");
            return false;
        }
        if (strcmp(name, "X-Amz-Signature") == 0) {
            if (rp->signature[0] || vlen >= sizeof(rp->signature)) {
                iv_reason(reason, rlen, "malformed token");
                return false;
            }
            memcpy(rp->signature, value, vlen + 1);
        } else if (strcmp(name, "User-Agent") == 0) {
            /* Added after signing by every MSK IAM signer: not part of the signature. */
        } else if (!iv_add(rp, name, value, vlen)) {
            iv_reason(reason, rlen, "malformed token");
            return false;
        }
    }
    snprintf(want_host, sizeof(want_host), "kafka.%s.amazonaws.com", pol->region);
    return iv_check(pol, rp, want_host, principal, plen, expires_at, reason, rlen);
}

bool
iam_verify_token(const struct iam_verify_policy *pol, const char *token, size_t len,
                 char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen)
{
    struct iv_scratch *w = calloc(1, sizeof(*w));
    bool ok;

    if (!w) {
        iv_reason(reason, rlen, "out of memory");
        return false;
    }
    ok = iv_token(pol, w, token, len, principal, plen, expires_at, reason, rlen);
    OPENSSL_cleanse(w, sizeof(*w));
    free(w);
    return ok;
}

bool
iam_verify_oauthbearer(const struct iam_verify_policy *pol, const uint8_t *msg, size_t len,
                       char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen)
{
    const char *p = (const char *)msg, *end = p + len, *kv;

    /* gs2-header: "n," or "y," (no channel binding), optional "a=<authzid>", then ",". */
    if (len < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',') {
        iv_reason(reason, rlen, "malformed message");
        return false;
    }
    kv = memchr(p + 2, ',', (size_t)(len - 2));
    if (!kv || kv + 1 >= end || kv[1] != '\x01') {
        iv_reason(reason, rlen, "malformed message");
        return false;
    }
    /* \x01-separated key=value pairs, ending with an empty one. */
    for (kv += 2; kv < end && *kv != '\x01';) {
        const char *sep = memchr(kv, '\x01', (size_t)(end - kv));
        if (!sep) {
            break;
        }
        if (sep - kv > 12 && memcmp(kv, "auth=Bearer ", 12) == 0) {
            return iam_verify_token(pol, kv + 12, (size_t)(sep - kv - 12), principal, plen,
                                    expires_at, reason, rlen);
        }
        kv = sep + 1;
    }
    iv_reason(reason, rlen, "malformed message");
    return false;
}

size_t
iam_verify_server_message(char *out, size_t outlen, const char *request_id)
{
    const char *p;
    int n;

    for (p = request_id; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '-')) {
            return 0;
        }
    }
    n = snprintf(out, outlen, "{\"version\":\"2020_10_22\",\"request-id\":\"%s\"}", request_id);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}
