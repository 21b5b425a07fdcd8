/*
 * imds.c - IMDSv2 credentials. Timeouts are short (1 s connect, 2 s total per call, as the AWS
 * SDKs use): off EC2 the address does not answer, and the chain should fail fast with
 * "not on EC2?" rather than stall a refresh.
 */
#include "aws/imds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/json.h"
#include "aws/http.h"

#define AWS_IMDS_CONNECT_MS 1000
#define AWS_IMDS_TIMEOUT_MS 2000

bool
aws_imds_parse_credentials(const char *json, size_t len, struct aws_creds *out, char *err,
                           size_t errlen)
{
    char code[64];

    if (json_get_string(json, len, "Code", code, sizeof(code)) != JSON_OK) {
        snprintf(err, errlen, "instance metadata credentials without a Code");
        return false;
    }
    if (strcmp(code, "Success") != 0) {
        snprintf(err, errlen, "instance metadata credentials have Code '%s', not Success", code);
        return false;
    }
    return aws_creds_from_json(json, len, "instance metadata credentials", out, err, errlen);
}

/* One IMDS call; the answer's body in resp. false with the reason (HTTP status included). */
static bool
aws_imds_call(const struct aws_settings *s, const char *method, const char *path,
              const char *header, struct aws_http_resp *resp, char *err, size_t errlen)
{
    const char *headers[] = {header, NULL};
    char url[1024], why[AWS_ERR_MAX];
    struct aws_http_req req = {.method = method,
                               .url = url,
                               .headers = headers,
                               .connect_timeout_ms = AWS_IMDS_CONNECT_MS,
                               .timeout_ms = AWS_IMDS_TIMEOUT_MS};

    snprintf(url, sizeof(url), "%s%s", s->imds_endpoint, path);
    if (!aws_http_do(&req, resp, why, sizeof(why))) {
        snprintf(err, errlen, "%s %s: %s (not on EC2?)", method, url, why);
        return false;
    }
    if (resp->status != 200) {
        snprintf(err, errlen, "%s %s: HTTP %ld%s", method, url, resp->status,
                 resp->status == 404 ? " (no IAM role attached to the instance?)" : "");
        return false;
    }
    return true;
}

bool
aws_imds_fetch(const struct aws_settings *s, struct aws_creds *out, char *err, size_t errlen)
{
    struct aws_http_resp resp = {0};
    char header[256], role[256], path[512];
    size_t n;
    bool ok = false;

    if (!aws_imds_call(s, "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 21600",
                       &resp, err, errlen)) {
        goto fail;
    }
    n = strcspn(resp.body, "\r\n");
    if (n == 0 || n + 32 > sizeof(header)) {
        snprintf(err, errlen, "IMDSv2 gave an empty or oversized session token");
        goto fail;
    }
    snprintf(header, sizeof(header), "X-aws-ec2-metadata-token: %.*s", (int)n, resp.body);
    aws_http_resp_free(&resp);
    if (!aws_imds_call(s, "GET", "/latest/meta-data/iam/security-credentials/", header, &resp, err,
                       errlen)) {
        goto fail;
    }
    n = strcspn(resp.body, "\r\n");
    if (n == 0 || n >= sizeof(role) || strchr(resp.body, '/')) {
        snprintf(err, errlen, "IMDSv2 lists no IAM role: attach an instance profile");
        goto fail;
    }
    memcpy(role, resp.body, n);
    role[n] = '\0';
    aws_http_resp_free(&resp);
    snprintf(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%s", role);
    if (!aws_imds_call(s, "GET", path, header, &resp, err, errlen) ||
        !aws_imds_parse_credentials(resp.body, resp.len, out, err, errlen)) {
        goto fail;
    }
    ok = true;
fail:
    aws_http_resp_free(&resp);
    OPENSSL_cleanse(header, sizeof(header));
    return ok;
}
