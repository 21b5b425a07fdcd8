/*
 * msk_iam_mech.h - the two SASL mechanisms that authenticate to Amazon MSK with IAM, on top of
 * the byte-exact signers of msk_iam.h: AWS_MSK_IAM (aws-msk-iam-auth's signed JSON payload) and
 * OAUTHBEARER carrying an MSK IAM token (RFC 7628 client message). Both are one client message:
 * a new signature per exchange, so every connection and every re-authentication signs afresh,
 * valid min(900 s, the credentials' remaining life) as MSK caps a session at both.
 * They read creds->aws_* , aws_region, host (AWS_MSK_IAM signs for it), user_agent and now.
 */
#ifndef KB_AUTH_MSK_IAM_MECH_H
#define KB_AUTH_MSK_IAM_MECH_H

#include "auth/mech.h"

/*
 * The signature lifetime for credentials that expire at expiration, signed at now:
 * KB_MSK_IAM_EXPIRES, or less when the credentials expire sooner; 0 when they have expired.
 * expiration 0 means static keys (no expiry). Pure, for tests.
 */
unsigned msk_iam_mech_expires(time_t now, time_t expiration);

extern const struct auth_mech msk_iam_mech;     /* "AWS_MSK_IAM" */
extern const struct auth_mech oauthbearer_mech; /* "OAUTHBEARER" (MSK IAM token) */

#endif
