/*
 * sigv4.h - AWS Signature Version 4 (HMAC-SHA256), as pure functions: canonical request, string
 * to sign, signing key, signature, and the two ways kbridge attaches one: query pre-signing
 * (MSK IAM's AWS_MSK_IAM payload and OAUTHBEARER token) and an Authorization header (STS).
 * Time and credentials are inputs; nothing here reads the clock, the environment or a file.
 */
#ifndef KB_AUTH_SIGV4_H
#define KB_AUTH_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KB_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* Hex SHA-256 of zero bytes: the payload hash of a GET (and of MSK IAM's signed request). */
#define KB_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define KB_SIGV4_HEX_LEN 64         /* a SHA-256 or signature in lower-case hex, without the NUL */
#define KB_SIGV4_AMZ_DATE_LEN 16    /* "YYYYMMDDTHHMMSSZ" */
#define KB_SIGV4_DATE_LEN 8         /* "YYYYMMDD" */
#define KB_SIGV4_MAX_EXPIRES 604800 /* SigV4 refuses a pre-signature valid longer than 7 days */

/* One query parameter or header, raw (not URI-encoded); a NULL value is the empty string. */
struct sigv4_param {
    const char *name;  /* query: case kept; header: any case, signed lower-cased */
    const char *value; /* query: raw bytes, encoded here; header: trimmed, runs of spaces folded */
};

/* The part of an HTTP request that SigV4 signs. Every header given is signed. */
struct sigv4_request {
    const char *method; /* "GET", "POST", ... (as given, upper case by convention) */
    const char *path;   /* raw absolute path ("/" or "/a b"); URI-encoded here, '/' kept */
    const struct sigv4_param *query; /* raw query parameters, any order, may be NULL if nquery 0 */
    size_t nquery;                   /* number of query parameters */
    const struct sigv4_param *headers; /* headers to sign; must include "host" */
    size_t nheaders;                   /* number of headers */
    const char *payload_hash;          /* hex SHA-256 of the body, "UNSIGNED-PAYLOAD", or NULL for
                                          the empty body (KB_SIGV4_EMPTY_SHA256) */
};

/* Credentials: borrowed strings; session_token NULL or "" for long-term keys. */
struct sigv4_creds {
    const char *access_key_id; /* "AKIA..." or "ASIA..." */
    const char *secret;        /* the secret access key: never logged */
    const char *session_token; /* temporary credentials' token, or NULL/"" */
};

/* What a query pre-signature added; every string is malloc'd and freed by sigv4_presigned_free().
 */
struct sigv4_presigned {
    char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1]; /* X-Amz-Date, "YYYYMMDDTHHMMSSZ" */
    char signature[KB_SIGV4_HEX_LEN + 1];     /* X-Amz-Signature, lower-case hex */
    char *credential; /* X-Amz-Credential, raw: "<akid>/<date>/<region>/<service>/aws4_request" */
    char *signed_headers; /* X-Amz-SignedHeaders, raw: "host" or "content-type;host" */
    char *expires;        /* X-Amz-Expires, decimal seconds */
    char *query;          /* the whole canonical query, X-Amz-Signature last: append to "?" */
};

/*
 * Formats t (UTC) as "YYYYMMDDTHHMMSSZ" into amz_date and "YYYYMMDD" into date (both
 * NUL-terminated; either may be NULL). Returns false when t is not representable.
 */
bool sigv4_format_date(time_t t, char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1],
                       char date[KB_SIGV4_DATE_LEN + 1]) __attribute__((warn_unused_result));

/* Lower-case hex SHA-256 of data[0..len) into hex (65 bytes with the NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char hex[KB_SIGV4_HEX_LEN + 1]);

/*
 * URI-encodes s[0..len) the AWS way: A-Z a-z 0-9 - _ . ~ kept, '/' kept when keep_slash (paths),
 * every other byte %XX with upper-case hex (so ' ' is %20, never '+'). Returns a malloc'd string,
 * or NULL when out of memory.
 */
char *sigv4_uri_encode(const char *s, size_t len, bool keep_slash);

/*
 * The canonical query string: each name and value URI-encoded, sorted by encoded name then
 * encoded value, joined "n=v&n=v" (a parameter without a value gives "n="). malloc'd, or NULL.
 */
char *sigv4_canonical_query(const struct sigv4_param *query, size_t nquery);

/*
 * The canonical request (Task 1) of req, and in *signed_headers (if not NULL) its SignedHeaders
 * list ("content-type;host;x-amz-date"), both malloc'd. Header names are lower-cased and sorted;
 * repeated names are joined with ',' in the order given. Returns NULL when out of memory or when
 * a header name is empty (then *signed_headers is NULL).
 */
char *sigv4_canonical_request(const struct sigv4_request *req, char **signed_headers);

/* The credential scope "<date>/<region>/<service>/aws4_request", malloc'd, or NULL. */
char *sigv4_scope(const char *date, const char *region, const char *service);

/*
 * The string to sign (Task 2): algorithm, amz_date, scope and the hex SHA-256 of the canonical
 * request, separated by '\n'. malloc'd, or NULL.
 */
char *sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical_request);

/* The signing key (Task 3): HMAC chain over "AWS4" + secret, date, region, service, "aws4_request".
 */
void sigv4_signing_key(const char *secret, const char *date, const char *region,
                       const char *service, uint8_t key[32]);

/* The signature (Task 4): lower-case hex HMAC-SHA256(key, string_to_sign). */
void sigv4_signature(const uint8_t key[32], const char *string_to_sign,
                     char hex[KB_SIGV4_HEX_LEN + 1]);

/*
 * Pre-signs req in its query string: adds X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date
 * (from now), X-Amz-Expires (expires seconds, 1..KB_SIGV4_MAX_EXPIRES), X-Amz-SignedHeaders and,
 * for temporary credentials, X-Amz-Security-Token (signed, as the AWS SDKs do) to req's query,
 * signs, and fills *out (X-Amz-Signature appended last to out->query). req's own query must not
 * already hold X-Amz-* parameters. On failure (bad input, out of memory) returns false with the
 * reason in err and *out zeroed; on success the caller frees *out with sigv4_presigned_free().
 */
bool sigv4_presign(const struct sigv4_request *req, const struct sigv4_creds *creds,
                   const char *region, const char *service, time_t now, unsigned expires,
                   struct sigv4_presigned *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Frees what sigv4_presign() put in p and zeroes it; NULL or a zeroed p is fine. */
void sigv4_presigned_free(struct sigv4_presigned *p);

/*
 * Signs req with headers: X-Amz-Date (from now) and, for temporary credentials,
 * X-Amz-Security-Token are added to req's headers and signed. The caller sends those two headers
 * (amz_date, creds->session_token) and "Authorization: *authorization" (malloc'd, caller frees)
 * with exactly req's method, path, query, headers and body. req's headers must not already hold
 * x-amz-date, x-amz-security-token or authorization. Returns false with the reason in err.
 */
bool sigv4_sign_headers(const struct sigv4_request *req, const struct sigv4_creds *creds,
                        const char *region, const char *service, time_t now,
                        char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1], char **authorization, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

#endif
