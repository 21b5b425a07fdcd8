/*
 * http.h - one blocking HTTP(S) exchange with libcurl, for the credentials sources only (the
 * provider thread, never an event loop). TLS is verified against the system store or ca_file;
 * HTTPS_PROXY / NO_PROXY from the environment are honoured (libcurl's own handling, left on).
 */
#ifndef KB_AWS_HTTP_H
#define KB_AWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/creds.h"

#define AWS_HTTP_BODY_MAX (1024 * 1024) /* an STS or metadata answer is a few KB */

struct aws_http_req {
    const char *method;         /* "GET", "PUT" or "POST" */
    const char *url;            /* http:// or https:// only; redirects are not followed */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* request body or NULL */
    const char *ca_file;        /* NULL: the system trust store */
    long connect_timeout_ms;    /* DNS + TCP + TLS */
    long timeout_ms;            /* the whole exchange */
};

struct aws_http_resp {
    long status; /* HTTP status code */
    char *body;  /* NUL-terminated, malloc'd; may hold credentials: wiped by resp_free */
    size_t len;  /* bytes in body */
    time_t date; /* the answer's Date header, 0 if none */
};

/*
 * Performs req. true when an HTTP answer arrived (any status: the caller reads errors from the
 * body), with resp filled; false with the transport failure (DNS, refused, timeout, TLS
 * verification...) in err. Free resp with aws_http_resp_free() in both cases.
 */
bool aws_http_do(const struct aws_http_req *req, struct aws_http_resp *resp, char *err,
                 size_t errlen) KB_MUSTCHECK;
void aws_http_resp_free(struct aws_http_resp *resp); /* wipes and frees the body; zeroes resp */

/* URL-encodes s (RFC 3986 unreserved kept) into a malloc'd string, NULL when out of memory. */
char *aws_http_escape(const char *s);

#endif
