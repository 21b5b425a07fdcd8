/*
 * iamsign.c - test CLI around kbridge's own signer (auth/msk_iam.c), so the integration test
 * can put kbridge's signatures through the same verifier as the genuine npm signers':
 *
 *   iamsign payload <region> <host>   the AWS_MSK_IAM client message
 *   iamsign token <region>            the OAUTHBEARER token
 *   iamsign message <region>          the OAUTHBEARER client message (RFC 7628)
 *
 * Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional); the
 * time from KB_FIXED_TIME (epoch seconds) or the clock. Output on stdout, no newline added.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/msk_iam.h"

#define IAMSIGN_USER_AGENT "kbridge/iamsign"

int
main(int argc, char **argv)
{
    struct sigv4_creds c = {getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"),
                            getenv("AWS_SESSION_TOKEN")};
    const char *fixed = getenv("KB_FIXED_TIME");
    time_t now = fixed ? (time_t)strtoll(fixed, NULL, 10) : time(NULL);
    char err[256] = "", *out = NULL, *tok = NULL;
    size_t len = 0;
    bool ok = false;

    if (argc == 4 && strcmp(argv[1], "payload") == 0) {
        ok = msk_iam_payload(&c, argv[3], argv[2], IAMSIGN_USER_AGENT, now, 0, &out, &len, err,
                             sizeof(err));
    } else if (argc == 3 && strcmp(argv[1], "token") == 0) {
        ok = msk_iam_token(&c, argv[2], IAMSIGN_USER_AGENT, now, 0, &out, err, sizeof(err));
        len = out ? strlen(out) : 0;
    } else if (argc == 3 && strcmp(argv[1], "message") == 0) {
        ok = msk_iam_token(&c, argv[2], IAMSIGN_USER_AGENT, now, 0, &tok, err, sizeof(err));
        if (ok) {
            ok = msk_iam_oauth_message(tok, &out, &len);
            snprintf(err, sizeof(err), "out of memory");
        }
        free(tok);
    } else {
        fprintf(stderr, "usage: iamsign payload <region> <host> | token <region> | "
                        "message <region>\n");
        return 2;
    }
    if (!ok) {
        fprintf(stderr, "iamsign: %s\n", err);
        return 1;
    }
    fwrite(out, 1, len, stdout);
    free(out);
    return 0;
}
