/*
 * check_aws.c - the AWS credentials step: the daemon's own provider (aws/provider.h), started
 * once per cluster, and one signed GetCallerIdentity call, so the report shows the principal
 * MSK will see. Only the source, the key's hint, the expiry, the ARN and the account are
 * printed: aws_provider_whoami hands out nothing secret.
 */
#include "check/check_aws.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/provider.h"
#include "check/check_net.h"
#include "tls/tlserr.h"

#define CHECK_AWS_WAIT_MS 20000 /* first fetch: each source has its own, shorter timeouts */
#define CHECK_AWS_SKEW_MAX 300  /* SigV4 refuses requests more than 5 minutes off */

/* ---- Internal ---------------------------------------------------------------------------- */

/* "2026-12-01 21:30:00 UTC (in 59 min)" or "never (long-term keys)" into out. */
static const char *
check_aws_expiry(time_t expiration, char *out, size_t outlen)
{
    char when[32];
    struct tm tm;
    long long left;

    if (expiration == 0) {
        tlserr_format(out, outlen, "never (long-term keys)");
        return out;
    }
    gmtime_r(&expiration, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    left = (long long)(expiration - time(NULL));
    tlserr_format(out, outlen, "%s (in %lld min; kbridge refreshes ahead of it)", when,
                  left > 0 ? left / 60 : 0);
    return out;
}

/* ---- Public ------------------------------------------------------------------------------ */

bool
check_aws_run(struct check_report *rep, struct check_cluster *cl, const struct kb_cluster_conf *cc,
              struct aws_provider **provider)
{
    static const char *const no_creds_fix =
        "give kbridge credentials from one source: the environment (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), web identity (aws_role_arn and "
        "aws_web_identity_token_file, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), the "
        "shared files (aws_profile, AWS_SHARED_CREDENTIALS_FILE), an EC2 instance profile; on "
        "Dataproc aws_credentials = gcp with aws_role_arn";
    struct aws_provider_stats st;
    struct aws_provider_whoami w;
    char name[CHECK_ADDR_MAX], err[AWS_ERR_MAX], expiry[96];
    struct check_target *t;
    const char *fix;
    long t0 = check_now_ms();

    *provider = NULL;
    tlserr_format(name, sizeof(name), "aws_credentials = %s",
                  cc->aws_credentials == KB_AWS_GCP ? "gcp" : "default");
    t = check_cluster_target(cl, CHECK_ROLE_CONFIG, name, -1);
    if (!t) {
        return false;
    }
    *provider = aws_provider_new(cc, err, sizeof(err));
    if (!*provider) {
        check_step_add(rep, t, CHECK_STEP_AWS_CREDS, CHECK_FAIL, check_now_ms() - t0,
                       "fix the aws_ / gcp_ keys of the cluster (see kbridge.ini(5))", "%s", err);
        return true;
    }
    if (!aws_provider_whoami(*provider, CHECK_AWS_WAIT_MS, &w, err, sizeof(err))) {
        aws_provider_stats(*provider, &st);
        if (!st.valid) {
            fix = cc->aws_credentials == KB_AWS_GCP
                      ? "on GCP: the VM's service account must reach the metadata server "
                        "(gcp_metadata_host), and the role's trust policy must allow "
                        "accounts.google.com with this token's audience (gcp_audience) and the "
                        "service account's unique id as subject"
                      : no_creds_fix;
        } else {
            fix = "STS refused the credentials (wrong, revoked or for another partition): check "
                  "the keys and aws_region / aws_sts_endpoint";
        }
        check_step_add(rep, t, CHECK_STEP_AWS_CREDS, CHECK_FAIL, check_now_ms() - t0, fix, "%s%s%s",
                       st.valid                      ? "STS GetCallerIdentity failed: "
                       : strncmp(err, "no ", 3) == 0 ? "" /* "no AWS credentials: ..." */
                                                     : "no valid credentials: ",
                       err,
                       st.clock_skew_s > CHECK_AWS_SKEW_MAX || st.clock_skew_s < -CHECK_AWS_SKEW_MAX
                           ? " (the local clock is off AWS's by more than 5 minutes: fix NTP)"
                           : "");
        return true;
    }
    check_aws_expiry(w.expiration, expiry, sizeof(expiry));
    if (w.clock_skew_s > CHECK_AWS_SKEW_MAX || w.clock_skew_s < -CHECK_AWS_SKEW_MAX) {
        check_step_add(rep, t, CHECK_STEP_AWS_CREDS, CHECK_WARN, check_now_ms() - t0,
                       "synchronise the clock (NTP, chrony): SigV4 signatures, MSK IAM's "
                       "included, fail beyond 5 minutes",
                       "source %s, key %s, expires %s; %s (account %s); clock skew: the local "
                       "clock is %lld s off STS's Date",
                       w.source, w.key_hint, expiry, w.arn, w.account, w.clock_skew_s);
        return true;
    }
    check_step_add(rep, t, CHECK_STEP_AWS_CREDS, CHECK_OK, check_now_ms() - t0, NULL,
                   "source %s, key %s, expires %s; STS GetCallerIdentity: %s (account %s)",
                   w.source, w.key_hint, expiry, w.arn, w.account);
    return true;
}
