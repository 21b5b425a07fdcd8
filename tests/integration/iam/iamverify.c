/*
 * iamverify.c - test CLI around tests/integration/iam_verify.c: reads an AWS_MSK_IAM payload,
 * an OAUTHBEARER client message or a bare token on stdin and prints "OK <principal>" (exit 0)
 * or "FAIL <reason>" (exit 1); 2 for usage errors. For AWS_MSK_IAM, the server message MSK would
 * answer goes to stderr. Known credentials come from a file, one per
 * line: "<access key id> <secret> [<session token>|-] [<principal>]" (# comments).
 *
 *   iamverify --mech aws_msk_iam|oauthbearer|token --creds FILE --region R [--host H]
 *             [--now EPOCH] [--skew SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iam_verify.h"

#define IAMVERIFY_MAX_CREDS 16
#define IAMVERIFY_MAX_INPUT (1 << 20)

static char *
iamverify_dup_field(char **line)
{
    char *f = strtok_r(NULL, " \t\r\n", line);

    return f ? strdup(f) : NULL;
}

int
main(int argc, char **argv)
{
    static struct iam_verify_cred creds[IAMVERIFY_MAX_CREDS];
    static unsigned char input[IAMVERIFY_MAX_INPUT];
    struct iam_verify_policy pol = {0};
    const char *mech = NULL, *creds_path = NULL;
    char principal[IAM_VERIFY_PRINCIPAL_MAX], reason[IAM_VERIFY_REASON_MAX], line[8192];
    size_t n = 0, len;
    time_t expires_at = 0;
    FILE *f;
    bool ok;
    int i;

    pol.now = time(NULL);
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mech") == 0) {
            mech = argv[i + 1];
        } else if (strcmp(argv[i], "--creds") == 0) {
            creds_path = argv[i + 1];
        } else if (strcmp(argv[i], "--region") == 0) {
            pol.region = argv[i + 1];
        } else if (strcmp(argv[i], "--host") == 0) {
            pol.host = argv[i + 1];
        } else if (strcmp(argv[i], "--now") == 0) {
            pol.now = (time_t)strtoll(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--skew") == 0) {
            pol.skew = strtol(argv[i + 1], NULL, 10);
        } else {
            break;
        }
    }
    if (i != argc || !mech || !creds_path || !pol.region) {
        fprintf(stderr, "usage: iamverify --mech aws_msk_iam|oauthbearer|token --creds FILE "
                        "--region R [--host H] [--now EPOCH] [--skew S] < input\n");
        return 2;
    }
    f = fopen(creds_path, "r");
    if (!f) {
        fprintf(stderr, "iamverify: cannot open %s\n", creds_path);
        return 2;
    }
    while (n < IAMVERIFY_MAX_CREDS && fgets(line, sizeof(line), f)) {
        char *save = NULL, *first = strtok_r(line, " \t\r\n", &save);
        if (!first || first[0] == '#') {
            continue;
        }
        creds[n].access_key_id = strdup(first);
        creds[n].secret = iamverify_dup_field(&save);
        creds[n].session_token = iamverify_dup_field(&save);
        creds[n].principal = iamverify_dup_field(&save);
        if (creds[n].session_token && strcmp(creds[n].session_token, "-") == 0) {
            free((char *)creds[n].session_token); /* "-": long-term credentials, no token */
            creds[n].session_token = NULL;
        }
        if (!creds[n].secret) {
            fprintf(stderr, "iamverify: %s: a line without a secret\n", creds_path);
            fclose(f);
            return 2;
        }
        n++;
    }
    fclose(f);
    pol.creds = creds;
    pol.ncreds = n;

    len = fread(input, 1, sizeof(input), stdin);
    if (strcmp(mech, "aws_msk_iam") == 0) {
        ok = iam_verify_msk_iam(&pol, input, len, principal, sizeof(principal), &expires_at, reason,
                                sizeof(reason));
    } else if (strcmp(mech, "oauthbearer") == 0) {
        ok = iam_verify_oauthbearer(&pol, input, len, principal, sizeof(principal), &expires_at,
                                    reason, sizeof(reason));
    } else if (strcmp(mech, "token") == 0) {
        while (len > 0 && (input[len - 1] == '\n' || input[len - 1] == '\r')) {
            len--;
        }
        ok = iam_verify_token(&pol, (const char *)input, len, principal, sizeof(principal),
                              &expires_at, reason, sizeof(reason));
    } else {
        fprintf(stderr, "iamverify: unknown --mech %s\n", mech);
        return 2;
    }
    if (ok) {
        char answer[128];
        /* What the cluster sends back (AWS_MSK_IAM); its request-id is this process's id. */
        snprintf(line, sizeof(line), "kbtest-%ld", (long)getpid());
        if (strcmp(mech, "aws_msk_iam") == 0 &&
            iam_verify_server_message(answer, sizeof(answer), line) > 0) {
            fprintf(stderr, "%s\n", answer);
        }
        printf("OK %s expires_in=%lld\n", principal, (long long)(expires_at - pol.now));
        return 0;
    }
    printf("FAIL %s\n", reason);
    return 1;
}
