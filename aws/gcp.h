/*
 * gcp.h - GCP workload identity: a Google-signed ID token for the VM's service account from the
 * GCE metadata server, to exchange at STS (AssumeRoleWithWebIdentity, accounts.google.com).
 */
#ifndef KB_AWS_GCP_H
#define KB_AWS_GCP_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/creds.h"

/*
 * GET http://<s->metadata_host>/computeMetadata/v1/instance/service-accounts/default/identity
 * ?audience=<s->audience>&format=full with "Metadata-Flavor: Google". On success *token is the
 * malloc'd JWT (a secret: wipe it with OPENSSL_cleanse before free). false with the reason.
 */
bool aws_gcp_id_token(const struct aws_settings *s, char **token, char *err,
                      size_t errlen) KB_MUSTCHECK;

/* true when s looks like a JWT: three non-empty base64url parts separated by '.'. */
bool aws_gcp_is_jwt(const char *s);

#endif
