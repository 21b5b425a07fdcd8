/*
 * iam_verify.h - the test cluster's MSK IAM verifier: checks an AWS_MSK_IAM payload or an MSK
 * IAM OAUTHBEARER token the way MSK does (SigV4 signature with a known test credential, host,
 * region, service, action, date, expiry, security token) and names the principal or the reason.
 * Written from the SigV4 specification, independently of kbridge's auth/sigv4.c (a signer and a
 * verifier by one hand can be wrong the same way); it shares only OpenSSL's SHA-256 and HMAC.
 * No kbmock internals: kbmock (or any test tool) links iam_verify.c with -lcrypto.
 */
#ifndef KB_TESTS_INTEGRATION_IAM_VERIFY_H
#define KB_TESTS_INTEGRATION_IAM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define IAM_VERIFY_SKEW_DEFAULT 300  /* seconds a request date may lead "now" (SigV4's 5 min) */
#define IAM_VERIFY_EXPIRES_MAX 900   /* MSK's signers all use 900 s; longer is refused here */
#define IAM_VERIFY_REASON_MAX 160    /* a good size for the reason buffer */
#define IAM_VERIFY_PRINCIPAL_MAX 256 /* a good size for the principal buffer */

/* A test credential the cluster knows. */
struct iam_verify_cred {
    const char *access_key_id; /* "AKIA..." / "ASIA..." */
    const char *secret;        /* its secret access key */
    const char *session_token; /* temporary credentials: the token a request must carry; NULL or
                                  "": long-term, and a request must carry none */
    const char *principal; /* reported on success (e.g. an assumed-role ARN); NULL: the key id */
};

/* What the cluster expects of every authentication. */
struct iam_verify_policy {
    const struct iam_verify_cred *creds; /* known credentials */
    size_t ncreds;                       /* how many */
    const char *host;   /* AWS_MSK_IAM: the broker host name the client must have signed; the
                           token's host is always kafka.<region>.amazonaws.com */
    const char *region; /* the cluster's region, e.g. "eu-west-1" */
    time_t now;         /* the verifier's clock */
    long skew;          /* allowed lead of the request date over now; 0: IAM_VERIFY_SKEW_DEFAULT */
};

/*
 * Verifies an AWS_MSK_IAM client message (aws-msk-iam-auth's JSON, version 2020_10_22).
 * On success returns true with the principal in principal (NUL-terminated, truncated to plen-1)
 * and, in *expires_at, when the signature stops being valid (MSK ends the session there; may be
 * NULL). On failure returns false with a short reason ("signature mismatch", "wrong host", ...)
 * in reason; neither output ever holds a secret, a token or a signature.
 */
bool iam_verify_msk_iam(const struct iam_verify_policy *pol, const uint8_t *msg, size_t len,
                        char *principal, size_t plen, time_t *expires_at, char *reason,
                        size_t rlen);

/*
 * Verifies an OAUTHBEARER client first message (RFC 7628: gs2 header, then "auth=Bearer
 * <token>" among \x01-separated pairs) carrying an MSK IAM token. Outputs as above.
 */
bool iam_verify_oauthbearer(const struct iam_verify_policy *pol, const uint8_t *msg, size_t len,
                            char *principal, size_t plen, time_t *expires_at, char *reason,
                            size_t rlen);

/*
 * Verifies a bare MSK IAM token: base64url (padding optional) of a pre-signed
 * https://kafka.<region>.amazonaws.com/?... URL. Every query parameter except X-Amz-Signature
 * and User-Agent (which the signers add after signing) is part of the signature. Outputs as above.
 */
bool iam_verify_token(const struct iam_verify_policy *pol, const char *token, size_t len,
                      char *principal, size_t plen, time_t *expires_at, char *reason, size_t rlen);

/*
 * MSK's AWS_MSK_IAM server message after a successful authentication, into out:
 * {"version":"2020_10_22","request-id":"<request_id>"} (request_id: letters, digits, '-').
 * Returns its length, or 0 when out is too small or request_id has other characters.
 * (A failure is not a server message: it is SaslAuthenticate error 58 with an error text.)
 */
size_t iam_verify_server_message(char *out, size_t outlen, const char *request_id);

#endif
