/*
 * msk_iam.h - what kbridge sends to authenticate to Amazon MSK with IAM: the AWS_MSK_IAM SASL
 * payload of aws/aws-msk-iam-auth (version 2020_10_22) and the OAUTHBEARER token of AWS's
 * aws-msk-iam-sasl-signer libraries, both a SigV4 query pre-signature for service
 * "kafka-cluster", action "kafka-cluster:Connect". Pure functions: credentials and time are
 * inputs; a new call (a new signature) is needed per connection and per re-authentication.
 */
#ifndef KB_AUTH_MSK_IAM_H
#define KB_AUTH_MSK_IAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth/sigv4.h"

#define KB_MSK_IAM_VERSION "2020_10_22"           /* AuthenticationRequestParams.VERSION_1 */
#define KB_MSK_IAM_SERVICE "kafka-cluster"        /* the SigV4 signing name */
#define KB_MSK_IAM_ACTION "kafka-cluster:Connect" /* the "Action" query parameter */
#define KB_MSK_IAM_EXPIRES 900                    /* seconds, as every AWS signer uses */
#define KB_MSK_IAM_REGION_MAX 64                  /* "us-east-1", "ap-southeast-4", ... */

/*
 * The AWS_MSK_IAM client message for broker host (the name kbridge dials and verifies, without
 * port) in region, signed with creds at now, valid expires seconds (0: KB_MSK_IAM_EXPIRES; at most
 * KB_MSK_IAM_EXPIRES, shorter when the credentials expire sooner). A compact JSON object with the
 * keys sorted as franz-go (Go's encoding/json) writes them: action, host, user-agent, version,
 * x-amz-algorithm, x-amz-credential, x-amz-date, x-amz-expires, x-amz-security-token (temporary
 * credentials only), x-amz-signature, x-amz-signedheaders; values raw (not URI-encoded), as
 * aws-msk-iam-auth puts them. *payload is malloc'd (NUL-terminated, *len bytes without the NUL);
 * the caller frees it (it holds the session token: OPENSSL_cleanse first). Returns false with
 * the reason in err (no secret in it).
 */
bool msk_iam_payload(const struct sigv4_creds *creds, const char *host, const char *region,
                     const char *user_agent, time_t now, unsigned expires, char **payload,
                     size_t *len, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The MSK IAM OAUTHBEARER token for region, as aws-msk-iam-sasl-signer-go/-python/-js make it:
 * base64url without padding of the pre-signed URL
 * "https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=...
 * &X-Amz-Signature=<hex>&User-Agent=<user_agent>" (host header signed; User-Agent added after
 * signing, as the signers do, and left out when user_agent is NULL or empty). expires as for
 * msk_iam_payload(). *token is malloc'd; the caller frees it. Returns false with the reason.
 */
bool msk_iam_token(const struct sigv4_creds *creds, const char *region, const char *user_agent,
                   time_t now, unsigned expires, char **token, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The RFC 7628 OAUTHBEARER client first message for token: "n,,\x01auth=Bearer <token>\x01\x01".
 * *msg is malloc'd (*len bytes, NUL-terminated); the caller frees it. false when out of memory.
 */
bool msk_iam_oauth_message(const char *token, char **msg, size_t *len)
    __attribute__((warn_unused_result));

/*
 * Parses MSK's AWS_MSK_IAM server message, a JSON object {"version":"2020_10_22",
 * "request-id":"<id>"}: true when version is 2020_10_22 and request-id a string (copied to
 * request_id, truncated to idlen - 1). Otherwise false with the reason in err.
 */
bool msk_iam_parse_response(const uint8_t *buf, size_t len, char *request_id, size_t idlen,
                            char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The region of an MSK broker or bootstrap host name "<...>.kafka.<region>.amazonaws.com"
 * (also "kafka-serverless", and the ".amazonaws.com.cn" partition), into region (NUL-terminated).
 * false when host has no such form or region is too small.
 */
bool msk_iam_region_from_host(const char *host, char *region, size_t len)
    __attribute__((warn_unused_result));

#endif
