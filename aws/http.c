/*
 * http.c - libcurl easy interface, one handle per exchange: the provider thread makes a call
 * every few minutes, so reuse would save nothing and would keep state (cookies, connections) we
 * do not want between sources. curl_global_init runs once, before the first provider thread.
 */
#include "aws/http.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

static pthread_once_t aws_http_once = PTHREAD_ONCE_INIT;
static CURLcode aws_http_init_rc = CURLE_FAILED_INIT;

static void
aws_http_global_init(void)
{
    aws_http_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
aws_http_on_body(char *data, size_t size, size_t n, void *arg)
{
    struct aws_http_resp *resp = arg;
    size_t len = size * n;
    char *grown;

    if (len > AWS_HTTP_BODY_MAX - resp->len) {
        return 0; /* too large: curl reports a write error */
    }
    grown = malloc(resp->len + len + 1);
    if (!grown) {
        return 0;
    }
    /* copy, then wipe the old buffer: answers carry secrets, realloc could leave copies */
    if (resp->body) {
        memcpy(grown, resp->body, resp->len);
        OPENSSL_cleanse(resp->body, resp->len);
        free(resp->body);
    }
    memcpy(grown + resp->len, data, len);
    resp->len += len;
    grown[resp->len] = '\0';
    resp->body = grown;
    return len;
}

static size_t
aws_http_on_header(char *data, size_t size, size_t n, void *arg)
{
    struct aws_http_resp *resp = arg;
    size_t len = size * n;
    char line[256];
    time_t t;

    if (len > 5 && len < sizeof(line) && strncasecmp(data, "date:", 5) == 0) {
        memcpy(line, data + 5, len - 5);
        line[len - 5] = '\0';
        t = curl_getdate(line, NULL);
        if (t > 0) {
            resp->date = t;
        }
    }
    return len;
}

bool
aws_http_do(const struct aws_http_req *req, struct aws_http_resp *resp, char *err, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *h = NULL;
    CURL *curl = NULL;
    CURLcode rc;
    size_t i;
    bool ok = false;

    memset(resp, 0, sizeof(*resp));
    pthread_once(&aws_http_once, aws_http_global_init);
    if (aws_http_init_rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl initialisation failed: %s",
                 curl_easy_strerror(aws_http_init_rc));
        return false;
    }
    curl = curl_easy_init();
    if (!curl) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (i = 0; req->headers && req->headers[i]; i++) {
        h = curl_slist_append(headers, req->headers[i]);
        if (!h) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        headers = h;
    }
    /* Expect: 100-continue would cost a round trip on every POST */
    if (req->body && !(h = curl_slist_append(headers, "Expect:"))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    headers = req->body ? h : headers;
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* a thread: no SIGALRM for DNS timeouts */
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "kbridge");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, aws_http_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, aws_http_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
    if (req->ca_file) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, req->ca_file);
    }
    if (req->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
    } else if (strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, ""); /* PUT with an empty body */
    }
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s%s%s", curl_easy_strerror(rc), *curl_err ? ": " : "", curl_err);
        goto fail;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body && !(resp->body = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ok = true;
fail:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return ok;
}

void
aws_http_resp_free(struct aws_http_resp *resp)
{
    if (resp->body) {
        OPENSSL_cleanse(resp->body, resp->len);
        free(resp->body);
    }
    memset(resp, 0, sizeof(*resp));
}

char *
aws_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out;

    if (!e) {
        return NULL;
    }
    out = strdup(e); /* curl's allocator and ours may differ */
    OPENSSL_cleanse(e, strlen(e));
    curl_free(e);
    return out;
}
