/*
 * gcp.c - the GCE metadata server's identity endpoint. Plain HTTP on the link-local address by
 * design (the metadata server has no TLS); the Metadata-Flavor header is what it requires to
 * answer, and what it answers with.
 */
#include "aws/gcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aws/http.h"

#define AWS_GCP_CONNECT_MS 2000

bool
aws_gcp_is_jwt(const char *s)
{
    int parts = 0;
    size_t n;

    for (;;) {
        n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=");
        if (n == 0) {
            return false;
        }
        parts++;
        s += n;
        if (*s != '.') {
            return *s == '\0' && parts == 3;
        }
        s++;
    }
}

bool
aws_gcp_id_token(const struct aws_settings *s, char **token, char *err, size_t errlen)
{
    static const char *const headers[] = {"Metadata-Flavor: Google", NULL};
    struct aws_http_resp resp = {0};
    char *aud = aws_http_escape(s->audience), url[2048], why[AWS_ERR_MAX];
    struct aws_http_req req = {.method = "GET",
                               .url = url,
                               .headers = headers,
                               .connect_timeout_ms = AWS_GCP_CONNECT_MS,
                               .timeout_ms = s->timeout_ms};
    size_t n;
    bool ok = false;

    *token = NULL;
    if (!aud) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    snprintf(url, sizeof(url),
             "http://%s/computeMetadata/v1/instance/service-accounts/default/identity"
             "?audience=%s&format=full",
             s->metadata_host, aud);
    free(aud);
    if (!aws_http_do(&req, &resp, why, sizeof(why))) {
        snprintf(err, errlen,
                 "GCE metadata server at %s unreachable: %s (not on GCE/Dataproc? "
                 "set gcp_metadata_host or GCE_METADATA_HOST)",
                 s->metadata_host, why);
        goto fail;
    }
    if (resp.status != 200) {
        snprintf(err, errlen, "GCE metadata server at %s answered HTTP %ld for an ID token%s",
                 s->metadata_host, resp.status,
                 resp.status == 404 ? " (no service account attached to the VM?)" : "");
        goto fail;
    }
    n = strcspn(resp.body, "\r\n");
    resp.body[n] = '\0';
    if (!aws_gcp_is_jwt(resp.body)) {
        snprintf(err, errlen,
                 "GCE metadata server at %s answered something that is not an ID "
                 "token (a JWT)",
                 s->metadata_host);
        goto fail;
    }
    if (!(*token = strdup(resp.body))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ok = true;
fail:
    aws_http_resp_free(&resp);
    return ok;
}
