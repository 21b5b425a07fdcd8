/*
 * msk_iam.c - the AWS_MSK_IAM payload, the MSK IAM OAUTHBEARER token and MSK's IAM server
 * message (see msk_iam.h). References read to get the bytes right: aws/aws-msk-iam-auth
 * (AWS4SignedPayloadGenerator, AuthenticationRequestParams, AuthenticationResponse),
 * twmb/franz-go pkg/sasl/aws, aws-msk-iam-sasl-signer-js getMSKAuthToken.
 */
#include "auth/msk_iam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/b64.h"
#include "auth/json.h"
#include "auth/str.h"

/* Appends "key":"value" with value escaped as JSON requires (quote, backslash, controls). */
static void
msk_iam_json_pair(struct auth_str *s, const char *key, const char *value, bool first)
{
    const unsigned char *p;

    auth_str_cat(s, first ? "\"" : ",\"");
    auth_str_cat(s, key);
    auth_str_cat(s, "\":\"");
    for (p = (const unsigned char *)value; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            auth_str_add(s, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            auth_str_add(s, esc, 6);
        } else {
            auth_str_add(s, (const char *)p, 1);
        }
    }
    auth_str_cat(s, "\"");
}

/* The pre-signature of GET / with Action=kafka-cluster:Connect and the host header signed. */
static bool
msk_iam_presign(const struct sigv4_creds *creds, const char *host, const char *region, time_t now,
                unsigned expires, struct sigv4_presigned *p, char *err, size_t errlen)
{
    const struct sigv4_param query[] = {{"Action", KB_MSK_IAM_ACTION}};
    const struct sigv4_param headers[] = {{"host", host}};
    struct sigv4_request req = {"GET", "/", query, 1, headers, 1, NULL};

    if (expires == 0) {
        expires = KB_MSK_IAM_EXPIRES;
    }
    if (expires > KB_MSK_IAM_EXPIRES) {
        auth_err(err, errlen, "msk iam: expiry %u s is above MSK's %d s", expires,
                 KB_MSK_IAM_EXPIRES);
        return false;
    }
    if (!host || !*host || !region || !*region) {
        auth_err(err, errlen, "msk iam: no broker host or region to sign for");
        return false;
    }
    return sigv4_presign(&req, creds, region, KB_MSK_IAM_SERVICE, now, expires, p, err, errlen);
}

bool
msk_iam_payload(const struct sigv4_creds *creds, const char *host, const char *region,
                const char *user_agent, time_t now, unsigned expires, char **payload, size_t *len,
                char *err, size_t errlen)
{
    struct sigv4_presigned p;
    struct auth_str s = {0};
    bool token = creds && creds->session_token && *creds->session_token;

    *payload = NULL;
    *len = 0;
    if (!msk_iam_presign(creds, host, region, now, expires, &p, err, errlen)) {
        return false;
    }
    /* Sorted keys, as franz-go's json.Marshal of its map writes them. */
    auth_str_cat(&s, "{");
    msk_iam_json_pair(&s, "action", KB_MSK_IAM_ACTION, true);
    msk_iam_json_pair(&s, "host", host, false);
    msk_iam_json_pair(&s, "user-agent", user_agent ? user_agent : "", false);
    msk_iam_json_pair(&s, "version", KB_MSK_IAM_VERSION, false);
    msk_iam_json_pair(&s, "x-amz-algorithm", KB_SIGV4_ALGORITHM, false);
    msk_iam_json_pair(&s, "x-amz-credential", p.credential, false);
    msk_iam_json_pair(&s, "x-amz-date", p.amz_date, false);
    msk_iam_json_pair(&s, "x-amz-expires", p.expires, false);
    if (token) {
        msk_iam_json_pair(&s, "x-amz-security-token", creds->session_token, false);
    }
    msk_iam_json_pair(&s, "x-amz-signature", p.signature, false);
    msk_iam_json_pair(&s, "x-amz-signedheaders", p.signed_headers, false);
    auth_str_cat(&s, "}");
    sigv4_presigned_free(&p);
    if (s.oom) {
        auth_str_wipe(&s);
        auth_err(err, errlen, "msk iam: out of memory");
        return false;
    }
    *payload = s.p;
    *len = s.len;
    return true;
}

bool
msk_iam_token(const struct sigv4_creds *creds, const char *region, const char *user_agent,
              time_t now, unsigned expires, char **token, char *err, size_t errlen)
{
    struct sigv4_presigned p;
    struct auth_str url = {0};
    char host[KB_MSK_IAM_REGION_MAX + 32];
    char *ua = NULL, *out = NULL;
    size_t outlen;

    *token = NULL;
    if (!region || !*region || strlen(region) >= KB_MSK_IAM_REGION_MAX) {
        auth_err(err, errlen, "msk iam: no region (or one too long) to sign for");
        return false;
    }
    snprintf(host, sizeof(host), "kafka.%s.amazonaws.com", region);
    if (!msk_iam_presign(creds, host, region, now, expires, &p, err, errlen)) {
        return false;
    }
    auth_str_cat(&url, "https://");
    auth_str_cat(&url, host);
    auth_str_cat(&url, "/?");
    auth_str_cat(&url, p.query);
    sigv4_presigned_free(&p);
    if (user_agent && *user_agent) {
        ua = sigv4_uri_encode(user_agent, strlen(user_agent), false);
        if (!ua) {
            url.oom = true;
        } else {
            auth_str_cat(&url, "&User-Agent=");
            auth_str_cat(&url, ua);
        }
    }
    if (!url.oom) {
        outlen = KB_B64_ENCODED_MAX(url.len);
        out = malloc(outlen);
    }
    if (!out) {
        auth_str_wipe(&url);
        free(ua);
        auth_err(err, errlen, "msk iam: out of memory");
        return false;
    }
    if (b64_encode((const uint8_t *)url.p, url.len, true, out, outlen) == 0 && url.len > 0) {
        OPENSSL_cleanse(out, outlen);
        free(out);
        auth_str_wipe(&url);
        free(ua);
        auth_err(err, errlen, "msk iam: base64url failed");
        return false;
    }
    auth_str_wipe(&url);
    free(ua);
    *token = out;
    return true;
}

bool
msk_iam_oauth_message(const char *token, char **msg, size_t *len)
{
    struct auth_str s = {0};

    *msg = NULL;
    *len = 0;
    /* RFC 7628 section 3.1: gs2-header "n,," then kvsep-separated pairs, ending kvsep kvsep. */
    auth_str_cat(&s, "n,,\x01"
                     "auth=Bearer ");
    auth_str_cat(&s, token);
    auth_str_cat(&s, "\x01\x01");
    if (s.oom) {
        auth_str_wipe(&s);
        return false;
    }
    *msg = s.p;
    *len = s.len;
    return true;
}

bool
msk_iam_parse_response(const uint8_t *buf, size_t len, char *request_id, size_t idlen, char *err,
                       size_t errlen)
{
    const char *json = (const char *)buf;
    char version[64], id[256];
    enum json_result rv = json_get_string(json, len, "version", version, sizeof(version));
    enum json_result ri = json_get_string(json, len, "request-id", id, sizeof(id));

    if (idlen > 0) {
        request_id[0] = '\0';
    }
    if (rv == JSON_MALFORMED || ri == JSON_MALFORMED) {
        auth_err(err, errlen, "msk iam: the server message is malformed JSON");
        return false;
    }
    if (rv == JSON_OK && strcmp(version, KB_MSK_IAM_VERSION) != 0) {
        auth_err(err, errlen, "msk iam: the server answered version '%.32s', not %s", version,
                 KB_MSK_IAM_VERSION);
        return false;
    }
    if (rv != JSON_OK || ri != JSON_OK) {
        auth_err(err, errlen, "msk iam: the server message lacks %s",
                 rv == JSON_OK ? "request-id" : "version");
        return false;
    }
    if (idlen > 0) {
        snprintf(request_id, idlen, "%s", id);
    }
    return true;
}

bool
msk_iam_region_from_host(const char *host, char *region, size_t len)
{
    static const char *const suffixes[] = {".amazonaws.com", ".amazonaws.com.cn"};
    size_t hlen = strlen(host), i;

    /* A trailing dot (fully qualified) names the same host. */
    if (hlen > 0 && host[hlen - 1] == '.') {
        hlen--;
    }
    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t slen = strlen(suffixes[i]);
        const char *r, *rend, *svc;
        if (hlen <= slen || strncasecmp(host + hlen - slen, suffixes[i], slen) != 0) {
            continue;
        }
        rend = host + hlen - slen;
        for (r = rend; r > host && r[-1] != '.'; r--) {
        }
        if (r == rend || r == host) {
            return false;
        }
        /* The label before the region must be the service: kafka or kafka-serverless. */
        for (svc = r - 1; svc > host && svc[-1] != '.'; svc--) {
        }
        if (!((r - 1 - svc == 5 && strncasecmp(svc, "kafka", 5) == 0) ||
              (r - 1 - svc == 16 && strncasecmp(svc, "kafka-serverless", 16) == 0))) {
            return false;
        }
        if ((size_t)(rend - r) >= len) {
            return false;
        }
        memcpy(region, r, (size_t)(rend - r));
        region[rend - r] = '\0';
        for (i = 0; region[i]; i++) {
            if (region[i] >= 'A' && region[i] <= 'Z') {
                region[i] = (char)(region[i] - 'A' + 'a');
            }
        }
        return true;
    }
    return false;
}
