/*
 * check_auth.h - the authentication step of `kbridge check`: with sasl_mechanism set, the SASL
 * exchange the daemon runs with a broker (proxy/sasl_fsm.h, the same state machine), driven
 * here with blocking reads and writes over the verified connection.
 */
#ifndef KB_CHECK_CHECK_AUTH_H
#define KB_CHECK_CHECK_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "check/check_net.h"
#include "check/check_report.h"

/*
 * Authenticates c as the daemon would (ApiVersions v0, SaslHandshake v1 with cc's mechanism,
 * SaslAuthenticate rounds) with cc->sasl_username and the password the snapshot loaded, for the
 * broker host (what a signing mechanism signs). Waits at most cc->connect_timeout_ms in all and
 * accepts answers of at most max_frame bytes. Records one CHECK_STEP_AUTH step with its time:
 * ok names the mechanism, user and session lifetime; a failure is the state machine's sentence
 * (the broker's own message when it refused) with a fix for its cause: the mechanism not enabled
 * on this port (MSK's port for each mechanism), a port without SASL, wrong credentials, a broker
 * that hung up or did not answer. aws: the cluster's credentials provider for AWS_MSK_IAM and
 * OAUTHBEARER (the AWS credentials step started it), else NULL. Never a secret in the report. true
 * when authenticated: c may then carry the Kafka step.
 */
bool check_auth_run(struct check_report *rep, struct check_target *t,
                    const struct kb_cluster_conf *cc, struct aws_provider *aws, const char *host,
                    size_t max_frame, struct check_conn *c);

#endif
