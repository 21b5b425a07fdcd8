/*
 * check_aws.h - the AWS credentials step of `kbridge check`, for a cluster that uses the AWS
 * credentials layer (cc->aws_used): which source gave credentials, when they expire, and who
 * they are by STS GetCallerIdentity.
 */
#ifndef KB_CHECK_CHECK_AWS_H
#define KB_CHECK_CHECK_AWS_H

#include <stdbool.h>

#include "conf/conf.h"
#include "check/check_report.h"

struct aws_provider;

/*
 * Starts cc's credentials provider as the daemon does (aws_provider_new), waits for its first
 * fetch and asks STS who the credentials are (aws_provider_whoami: blocking, fine here). Records
 * one CHECK_STEP_AWS_CREDS step on a config target of cl named after the source setting: ok
 * with the source, the key's hint, the expiry and the ARN and account; a warning for a clock off
 * by more than SigV4's 5 minutes; a failure with the cause (no credentials: every source tried
 * and why; STS's own code and message with the trust-policy hint; an unusable setting) and a
 * fix. Never a secret, token or signature. *provider is the running provider for later steps
 * (caller frees with aws_provider_free), NULL when it could not start. false when out of memory.
 */
bool check_aws_run(struct check_report *rep, struct check_cluster *cl,
                   const struct kb_cluster_conf *cc, struct aws_provider **provider);

#endif
