/*
 * imds.h - EC2 instance metadata, IMDSv2 only (session token first: IMDSv1 is off on new
 * instances and SSRF-prone). The JSON parser is pure; aws_imds_fetch does the HTTP calls.
 */
#ifndef KB_AWS_IMDS_H
#define KB_AWS_IMDS_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/creds.h"

/*
 * The security-credentials document of a role: Code must be "Success"; AccessKeyId,
 * SecretAccessKey, Token and Expiration into out (source left as is). false with the reason.
 */
bool aws_imds_parse_credentials(const char *json, size_t len, struct aws_creds *out, char *err,
                                size_t errlen) KB_MUSTCHECK;

/*
 * PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds), GET
 * /latest/meta-data/iam/security-credentials/ for the role name, then GET .../<role>.
 * false with the reason in err.
 */
bool aws_imds_fetch(const struct aws_settings *s, struct aws_creds *out, char *err,
                    size_t errlen) KB_MUSTCHECK;

#endif
