/*
 * container.c - see container.h. The answer is the same JSON as IMDS's, without its Code
 * field; an error answer carries {"code", "message"}, and its message is quoted.
 */
#include "aws/container.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/json.h"
#include "aws/http.h"

#define AWS_CONTAINER_CONNECT_MS 2000
#define AWS_CONTAINER_TIMEOUT_MS 5000

/* Hosts an http:// FULL_URI may name: the answer is credentials, so only the machine itself and
 * the link-local agents of ECS and EKS Pod Identity. */
static bool
aws_container_clear_ok(const char *host, size_t len)
{
    static const char *const allowed[] = {"localhost", "[::1]", "169.254.170.2", "169.254.170.23",
                                          "[fd00:ec2::23]"};
    size_t i;

    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (strlen(allowed[i]) == len && strncasecmp(host, allowed[i], len) == 0) {
            return true;
        }
    }
    if (len < 5 || strncmp(host, "127.", 4) != 0) {
        return false;
    }
    return strspn(host, "0123456789.") >= len; /* 127.0.0.0/8, written as an address */
}

enum aws_source_result
aws_container_url(const char *relative, const char *full, char *url, size_t urllen, char *why,
                  size_t whylen)
{
    const char *host;
    size_t hlen;

    if (relative && *relative) {
        if (relative[0] != '/') {
            snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with '/'");
            return AWS_SOURCE_FAILED;
        }
        snprintf(url, urllen, "%s%s", AWS_CONTAINER_ECS_HOST, relative);
        return AWS_SOURCE_OK;
    }
    if (!full || !*full) {
        snprintf(why, whylen,
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / AWS_CONTAINER_CREDENTIALS_FULL_URI "
                 "not set");
        return AWS_SOURCE_NONE;
    }
    if (strncasecmp(full, "https://", 8) == 0) {
        snprintf(url, urllen, "%s", full);
        return AWS_SOURCE_OK;
    }
    if (strncasecmp(full, "http://", 7) != 0) {
        snprintf(why, whylen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
        return AWS_SOURCE_FAILED;
    }
    host = full + 7;
    hlen = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/?#");
    if (!aws_container_clear_ok(host, hlen)) {
        snprintf(why, whylen,
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI sends credentials in clear to %.*s, which is "
                 "not loopback or the ECS/EKS agent: use https://",
                 (int)hlen, host);
        return AWS_SOURCE_FAILED;
    }
    snprintf(url, urllen, "%s", full);
    return AWS_SOURCE_OK;
}

/* "Authorization: <token>" from the token file (preferred: EKS rotates it) or the variable; ""
 * when neither is set. false with why for an unreadable file or a token with a line break. */
static bool
aws_container_auth(char **header, char *why, size_t whylen)
{
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *var = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *token = NULL;
    size_t n;

    *header = NULL;
    if (file && *file) {
        if (!(token =
                  aws_read_token(file, "the container authorization token file", why, whylen))) {
            return false;
        }
    } else if (var && *var) {
        token = strdup(var);
    } else {
        return true;
    }
    if (!token) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    if (strpbrk(token, "\r\n")) {
        snprintf(why, whylen, "the container authorization token contains a line break");
        aws_free_token(token);
        return false;
    }
    n = strlen(token) + sizeof("Authorization: ");
    if ((*header = malloc(n))) {
        snprintf(*header, n, "Authorization: %s", token);
    } else {
        snprintf(why, whylen, "out of memory");
    }
    aws_free_token(token);
    return *header != NULL;
}

/* scheme://host[:port] of url: the path may hold the ECS task's credentials id, never shown. */
static int
aws_container_origin_len(const char *url)
{
    const char *host = strstr(url, "://");

    return host ? (int)(host + 3 - url + strcspn(host + 3, "/?#")) : (int)strlen(url);
}

bool
aws_container_fetch(const char *url, struct aws_creds *out, char *why, size_t whylen)
{
    const char *headers[2] = {NULL, NULL};
    struct aws_http_resp resp = {0};
    struct aws_http_req req = {.method = "GET",
                               .url = url,
                               .headers = headers,
                               .connect_timeout_ms = AWS_CONTAINER_CONNECT_MS,
                               .timeout_ms = AWS_CONTAINER_TIMEOUT_MS};
    char *auth = NULL, err[AWS_ERR_MAX], msg[512];
    bool ok = false;

    if (!aws_container_auth(&auth, why, whylen)) {
        return false;
    }
    headers[0] = auth;
    if (!aws_http_do(&req, &resp, err, sizeof(err))) {
        snprintf(why, whylen, "GET %.*s/...: %s (is the ECS/EKS credentials agent running?)",
                 aws_container_origin_len(url), url, err);
    } else if (resp.status != 200) {
        if (json_get_string(resp.body, resp.len, "message", msg, sizeof(msg)) != JSON_OK &&
            json_get_string(resp.body, resp.len, "Message", msg, sizeof(msg)) != JSON_OK) {
            msg[0] = '\0';
        }
        snprintf(why, whylen, "GET %.*s/...: HTTP %ld%s%s%s", aws_container_origin_len(url), url,
                 resp.status, *msg ? " (" : "", msg, *msg ? ")" : "");
    } else {
        ok = aws_creds_from_json(resp.body, resp.len, "container credentials", out, why, whylen);
    }
    aws_http_resp_free(&resp);
    if (auth) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    return ok;
}
