/*
 * check_auth.c - drives proxy/sasl_fsm (the daemon's own SASL state machine) over blocking
 * check_conn I/O, so `kbridge check` tests exactly the exchange kbridge runs, and names each way
 * it fails. Request frames carry secrets (a PLAIN password, a SCRAM proof): they are wiped once
 * written.
 */
#include "check/check_auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/mech.h"
#include "aws/creds.h"
#include "aws/provider.h"
#include "conf/secret.h"
#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "kp_sasl.h"
#include "proxy/sasl_fsm.h"
#include "tls/tlserr.h"

#define CHECK_AUTH_CLIENT_ID "kbridge-check" /* ClientId of the exchange's requests */

/* ---- Internal ---------------------------------------------------------------------------- */

/* Wipes what w wrote (it may hold a password or a proof) and frees it. */
static void
check_auth_wipe(struct kp_writer *w)
{
    if (w->buf) {
        OPENSSL_cleanse(w->buf, w->cap);
    }
    kp_writer_free(w);
    kp_writer_init(w);
}

/* Where MSK serves mech: the hint every "wrong port" fix starts with. */
static const char *
check_auth_msk_port(const char *mech)
{
    if (strncmp(mech, "SCRAM-", 6) == 0) {
        return "MSK serves SASL/SCRAM on port 9096, or 9196 with public access";
    }
    if (strcmp(mech, "AWS_MSK_IAM") == 0 || strcmp(mech, "OAUTHBEARER") == 0) {
        return "MSK serves IAM on port 9098, or 9198 with public access";
    }
    return "MSK does not offer PLAIN (SCRAM is 9096/9196, IAM 9098/9198)";
}

/*
 * Reads one whole response frame (after its size prefix) into *frame (caller frees). false with
 * the reason in err.
 */
static bool
check_auth_read_frame(struct check_conn *c, size_t max_frame, long deadline, uint8_t **frame,
                      size_t *len, char *err, size_t errlen)
{
    uint8_t prefix[KP_FRAME_PREFIX];
    uint32_t size;

    *frame = NULL;
    if (!check_conn_read(c, prefix, sizeof(prefix), deadline, err, errlen)) {
        return false;
    }
    size = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 | (uint32_t)prefix[2] << 8 |
           (uint32_t)prefix[3];
    if (size < 4 || size > max_frame) {
        tlserr_format(err, errlen,
                      "the answer does not start like a Kafka response (size %u; at most %zu)",
                      (unsigned)size, max_frame);
        return false;
    }
    *frame = malloc(size);
    if (!*frame) {
        tlserr_format(err, errlen, "out of memory for a %u-byte answer", (unsigned)size);
        return false;
    }
    if (!check_conn_read(c, *frame, size, deadline, err, errlen)) {
        free(*frame);
        *frame = NULL;
        return false;
    }
    *len = size;
    return true;
}

/* The fix for a failure the broker answered with code (0: not the broker's refusal). */
static const char *
check_auth_fix(const char *mech, int16_t code, char *out, size_t outlen)
{
    switch (code) {
    case KP_ERR_UNSUPPORTED_SASL_MECHANISM:
        tlserr_format(out, outlen,
                      "%s not enabled on this port: %s (9094/9194 is TLS only, no SASL); use "
                      "that port, enable %s on the cluster, or set sasl_mechanism to one this "
                      "port offers",
                      mech, check_auth_msk_port(mech), mech);
        return out;
    case KP_ERR_ILLEGAL_SASL_STATE:
        tlserr_format(out, outlen,
                      "this port takes no SASL: for a TLS-only port (MSK 9094/9194) remove "
                      "sasl_mechanism, else use the SASL port: %s",
                      check_auth_msk_port(mech));
        return out;
    case KP_ERR_SASL_AUTHENTICATION_FAILED:
        if (strcmp(mech, "AWS_MSK_IAM") == 0 || strcmp(mech, "OAUTHBEARER") == 0) {
            tlserr_format(out, outlen,
                          "MSK refused the signed request: the principal of the AWS credentials "
                          "step needs an IAM policy allowing kafka-cluster:Connect on this "
                          "cluster's ARN (and the topic and group actions the clients use); "
                          "check aws_region and this host's clock too (SigV4 allows 5 minutes)");
            return out;
        }
        tlserr_format(out, outlen,
                      "check sasl_username and the password in sasl_password_file; on MSK the "
                      "user is an AWS Secrets Manager secret named AmazonMSK_... associated "
                      "with the cluster (aws kafka list-scram-secrets), its JSON can be the "
                      "file as it is");
        return out;
    default:
        return NULL;
    }
}

/* ---- Public ------------------------------------------------------------------------------ */

bool
check_auth_run(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
               struct aws_provider *aws, const char *host, size_t max_frame, struct check_conn *c)
{
    bool iam = KB_SASL_IS_IAM(cc->sasl_mechanism);
    struct aws_creds *ac = NULL;
    const char *name = conf_sasl_mechanism_str(cc->sasl_mechanism);
    const struct auth_mech *mech = auth_mech_find(name);
    long t0 = check_now_ms(), deadline = t0 + cc->connect_timeout_ms;
    enum sasl_fsm_result r = SASL_FSM_FAIL;
    enum sasl_fsm_state sent = SASL_FSM_API_VERSIONS;
    char why[1024], err[512], fix[CHECK_FIX_MAX];
    struct auth_creds creds;
    struct sasl_fsm *f = NULL;
    struct kp_writer out;
    uint8_t *frame = NULL;
    size_t len = 0;
    bool ok = false;

    kp_writer_init(&out);
    if (!mech || (iam ? !aws : !cc->sasl_username || !cc->sasl_secret)) {
        check_step_add(rep, t, CHECK_STEP_AUTH, CHECK_FAIL, 0,
                       iam ? "see the AWS credentials step above"
                           : "set sasl_mechanism, sasl_username and sasl_password_file",
                       "sasl_mechanism = %s has no usable credentials in [%s]", name, cc->name);
        return false;
    }
    if (iam && (!(ac = malloc(sizeof(*ac))) || !aws_provider_get(aws, ac))) {
        free(ac);
        check_step_add(rep, t, CHECK_STEP_AUTH, CHECK_FAIL, 0, "see the AWS credentials step above",
                       "%s: no valid AWS credentials to sign with for [%s]", name, cc->name);
        return false;
    }
    sasl_fsm_creds(&creds, cc, host, ac);
    f = sasl_fsm_new(mech, &creds, CHECK_AUTH_CLIENT_ID, -1, why, sizeof(why));
    if (!f) {
        if (ac) {
            OPENSSL_cleanse(ac, sizeof(*ac));
            free(ac);
        }
        check_step_add(rep, t, CHECK_STEP_AUTH, CHECK_FAIL, check_now_ms() - t0, NULL, "%s", why);
        return false;
    }
    r = sasl_fsm_start(f, &out, why, sizeof(why));
    if (ac) {
        OPENSSL_cleanse(ac, sizeof(*ac)); /* signed: the first message holds what it needs */
        free(ac);
        ac = NULL;
    }
    while (r == SASL_FSM_SEND) {
        sent = sasl_fsm_state(f);
        if (!check_conn_write(c, out.buf, out.len, deadline, err, sizeof(err)) ||
            !check_auth_read_frame(c, max_frame, deadline, &frame, &len, err, sizeof(err))) {
            const char *api = kp_api_name(sent == SASL_FSM_API_VERSIONS ? KP_API_API_VERSIONS
                                          : sent == SASL_FSM_HANDSHAKE  ? KP_API_SASL_HANDSHAKE
                                                                        : KP_API_SASL_AUTHENTICATE);

            check_auth_wipe(&out);
            tlserr_format(fix, sizeof(fix),
                          "a broker that hangs up on %s or never answers it takes no SASL on "
                          "this port (a TLS-only port, MSK 9094/9194?), or is not Kafka: %s",
                          api, check_auth_msk_port(mech->name));
            check_step_add(rep, t, CHECK_STEP_AUTH, CHECK_FAIL, check_now_ms() - t0, fix,
                           SASL_FAIL_PREFIX " (%s): %s after %s was sent", mech->name, err, api);
            goto done;
        }
        check_auth_wipe(&out);
        r = sasl_fsm_on_response(f, frame, len, &out, why, sizeof(why));
        OPENSSL_cleanse(frame, len); /* a SCRAM server message is no secret, but cheap */
        free(frame);
        frame = NULL;
    }
    check_auth_wipe(&out);
    if (r == SASL_FSM_FAIL) {
        check_step_add(rep, t, CHECK_STEP_AUTH, CHECK_FAIL, check_now_ms() - t0,
                       check_auth_fix(mech->name, sasl_fsm_broker_error(f), fix, sizeof(fix)), "%s",
                       why);
        goto done;
    }
    if (sasl_fsm_session_lifetime_ms(f) > 0) {
        tlserr_format(err, sizeof(err), "%lld ms: kbridge re-authenticates before it ends",
                      (long long)sasl_fsm_session_lifetime_ms(f));
    } else {
        tlserr_format(err, sizeof(err), "none");
    }
    ok = check_step_add(rep, t, CHECK_STEP_AUTH, CHECK_OK, check_now_ms() - t0, NULL,
                        "%s as '%s' in %ld ms (SaslAuthenticate v%d; session lifetime %s)",
                        mech->name, iam ? "the AWS credentials above" : cc->sasl_username,
                        check_now_ms() - t0, sasl_fsm_auth_version(f), err);
done:
    sasl_fsm_free(f);
    return ok;
}
