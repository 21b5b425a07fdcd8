/*
 * test_msk_iam.c - auth/msk_iam.h for fixed credentials and a fixed time (20150830T123600Z).
 * The expected payloads, URL and token were computed independently of kbridge's C code by a
 * Python hashlib/hmac re-derivation written from the SigV4 docs and the aws-msk-iam-auth /
 * franz-go / aws-msk-iam-sasl-signer-js sources: tests/integration/iam/ref_sign.py. The genuine
 * npm signers are compared with kbridge's signatures in tests/integration/test_iam_verify.py.
 */
#include "auth/msk_iam.h"

#include <stdlib.h>
#include <string.h>

#include "auth/b64.h"
#include "test.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define NOW ((time_t)1440938160) /* 20150830T123600Z */
#define HOST "b-1.mycluster.abc123.c2.kafka.eu-west-1.amazonaws.com"
#define TOKEN "FwoGZXIvYXdzE+/token=="

static const char payload_long_term[] =
    "{\"action\":\"kafka-cluster:Connect\",\"host\":\"" HOST "\",\"user-agent\":\"kbridge/test\","
    "\"version\":\"2020_10_22\",\"x-amz-algorithm\":\"AWS4-HMAC-SHA256\",\"x-amz-credential\":"
    "\"AKIDEXAMPLE/20150830/eu-west-1/kafka-cluster/aws4_request\",\"x-amz-date\":"
    "\"20150830T123600Z\",\"x-amz-expires\":\"900\",\"x-amz-signature\":"
    "\"bfd10c0c6297188186372a0678cefe6bc226509d4bb96c44c93bd6f7cf5a631a\","
    "\"x-amz-signedheaders\":\"host\"}";

static const char payload_session[] =
    "{\"action\":\"kafka-cluster:Connect\",\"host\":\"" HOST "\",\"user-agent\":\"kbridge/test\","
    "\"version\":\"2020_10_22\",\"x-amz-algorithm\":\"AWS4-HMAC-SHA256\",\"x-amz-credential\":"
    "\"ASIAEXAMPLE/20150830/eu-west-1/kafka-cluster/aws4_request\",\"x-amz-date\":"
    "\"20150830T123600Z\",\"x-amz-expires\":\"900\",\"x-amz-security-token\":\"" TOKEN "\","
    "\"x-amz-signature\":\"0507cf153c8c66b872397110058c4f13709ad986f0e0b3684497517bf9c8de72\","
    "\"x-amz-signedheaders\":\"host\"}";

static const char oauth_url[] =
    "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm="
    "AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20150830%2Feu-west-1%2Fkafka-cluster%2F"
    "aws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-Security-Token="
    "FwoGZXIvYXdzE%2B%2Ftoken%3D%3D&X-Amz-SignedHeaders=host&X-Amz-Signature="
    "9230670e8994f5f512c46a2cab6d6148d7853833ddbd6cf4528cf417c28412f4&User-Agent=kbridge%2Ftest";

static const char oauth_token[] =
    "aHR0cHM6Ly9rYWZrYS5ldS13ZXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0"
    "JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QVNJQUVYQU1QTEUlMkYyMDE1"
    "MDgzMCUyRmV1LXdlc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDE1MDgzMFQx"
    "MjM2MDBaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNlY3VyaXR5LVRva2VuPUZ3b0daWEl2WVhkekUlMkIlMkZ0b2tl"
    "biUzRCUzRCZYLUFtei1TaWduZWRIZWFkZXJzPWhvc3QmWC1BbXotU2lnbmF0dXJlPTkyMzA2NzBlODk5NGY1ZjUxMmM0"
    "NmEyY2FiNmQ2MTQ4ZDc4NTM4MzNkZGJkNmNmNDUyOGNmNDE3YzI4NDEyZjQmVXNlci1BZ2VudD1rYnJpZGdlJTJGdGVz"
    "dA";

static void
test_msk_iam_payload_long_term_credentials(void)
{
    const struct sigv4_creds c = {"AKIDEXAMPLE", SECRET, NULL};
    char err[128] = "", *payload = NULL;
    size_t len = 0;

    CHECK(msk_iam_payload(&c, HOST, "eu-west-1", "kbridge/test", NOW, 0, &payload, &len, err,
                          sizeof(err)));
    CHECK(payload && strcmp(payload, payload_long_term) == 0);
    CHECK_EQ_INT(len, strlen(payload_long_term));
    if (payload && strcmp(payload, payload_long_term) != 0) {
        fprintf(stderr, "  got  %s\n  want %s\n", payload, payload_long_term);
    }
    free(payload);
}

static void
test_msk_iam_payload_session_token(void)
{
    const struct sigv4_creds c = {"ASIAEXAMPLE", SECRET, TOKEN};
    char err[128] = "", *payload = NULL;
    size_t len = 0;

    CHECK(msk_iam_payload(&c, HOST, "eu-west-1", "kbridge/test", NOW, 900, &payload, &len, err,
                          sizeof(err)));
    CHECK(payload && strcmp(payload, payload_session) == 0);
    if (payload && strcmp(payload, payload_session) != 0) {
        fprintf(stderr, "  got  %s\n  want %s\n", payload, payload_session);
    }
    free(payload);
}

static void
test_msk_iam_payload_new_signature_per_time(void)
{
    const struct sigv4_creds c = {"AKIDEXAMPLE", SECRET, NULL};
    char err[128] = "", *a = NULL, *b = NULL;
    size_t la, lb;

    CHECK(msk_iam_payload(&c, HOST, "eu-west-1", "ua", NOW, 0, &a, &la, err, sizeof(err)));
    CHECK(msk_iam_payload(&c, HOST, "eu-west-1", "ua", NOW + 1, 0, &b, &lb, err, sizeof(err)));
    CHECK(a && b && strcmp(a, b) != 0);
    CHECK_STR_CONTAINS(b, "\"x-amz-date\":\"20150830T123601Z\"");
    free(a);
    free(b);
}

static void
test_msk_iam_payload_refuses_bad_input(void)
{
    const struct sigv4_creds c = {"AKIDEXAMPLE", SECRET, NULL};
    const struct sigv4_creds none = {"", "", NULL};
    char err[128] = "", *p = NULL;
    size_t len;

    CHECK(!msk_iam_payload(&c, HOST, "eu-west-1", "ua", NOW, 901, &p, &len, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "expiry");
    CHECK(!msk_iam_payload(&c, "", "eu-west-1", "ua", NOW, 0, &p, &len, err, sizeof(err)));
    CHECK(!msk_iam_payload(&none, HOST, "eu-west-1", "ua", NOW, 0, &p, &len, err, sizeof(err)));
    CHECK(p == NULL);
    CHECK(strstr(err, SECRET) == NULL);
}

static void
test_msk_iam_payload_escapes_json(void)
{
    const struct sigv4_creds c = {"AKIDEXAMPLE", SECRET, NULL};
    char err[128] = "", *p = NULL;
    size_t len;

    CHECK(msk_iam_payload(&c, HOST, "eu-west-1", "a\"b\\c\n", NOW, 0, &p, &len, err, sizeof(err)));
    CHECK_STR_CONTAINS(p, "\"user-agent\":\"a\\\"b\\\\c\\u000a\"");
    free(p);
}

static void
test_msk_iam_token_matches_reference(void)
{
    const struct sigv4_creds c = {"ASIAEXAMPLE", SECRET, TOKEN};
    char err[128] = "", *tok = NULL;
    uint8_t url[1024];
    size_t n = 0, tlen;
    char padded[1200];

    CHECK(msk_iam_token(&c, "eu-west-1", "kbridge/test", NOW, 0, &tok, err, sizeof(err)));
    CHECK(tok && strcmp(tok, oauth_token) == 0);
    CHECK(tok && !strchr(tok, '=') && !strchr(tok, '+') && !strchr(tok, '/'));
    /* Decoding (back to the standard alphabet, padded) gives the reference URL. */
    if (tok) {
        size_t i;
        tlen = strlen(tok);
        for (i = 0; i < tlen && i < sizeof(padded) - 4; i++) {
            padded[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : tok[i];
        }
        while (i % 4) {
            padded[i++] = '=';
        }
        CHECK(b64_decode(padded, i, url, sizeof(url) - 1, &n));
        url[n] = '\0';
        CHECK(strcmp((char *)url, oauth_url) == 0);
    }
    free(tok);
}

static void
test_msk_iam_token_without_user_agent(void)
{
    const struct sigv4_creds c = {"AKIDEXAMPLE", SECRET, NULL};
    char err[128] = "", *tok = NULL, *tok2 = NULL;

    CHECK(msk_iam_token(&c, "us-east-1", NULL, NOW, 0, &tok, err, sizeof(err)));
    CHECK(msk_iam_token(&c, "us-east-1", "x", NOW, 0, &tok2, err, sizeof(err)));
    /* Same signed part; the one with a User-Agent is longer by "&User-Agent=x". */
    CHECK(tok && tok2 && strlen(tok2) > strlen(tok));
    free(tok);
    free(tok2);
    CHECK(!msk_iam_token(&c, "", NULL, NOW, 0, &tok, err, sizeof(err)));
}

static void
test_msk_iam_oauth_message_rfc7628(void)
{
    char *m = NULL;
    size_t len = 0;

    CHECK(msk_iam_oauth_message("abc", &m, &len));
    CHECK_EQ_INT(len, 21);
    CHECK(m && memcmp(m,
                      "n,,\x01"
                      "auth=Bearer abc\x01\x01",
                      21) == 0);
    free(m);
}

static void
test_msk_iam_parse_response(void)
{
    static const char ok[] = "{\"version\":\"2020_10_22\",\"request-id\":\"a1b2-c3\"}";
    static const char spaced[] = " { \"request-id\" : \"x\" , \"version\" : \"2020_10_22\" } ";
    char id[64], err[128];

    CHECK(
        msk_iam_parse_response((const uint8_t *)ok, strlen(ok), id, sizeof(id), err, sizeof(err)));
    CHECK(strcmp(id, "a1b2-c3") == 0);
    CHECK(msk_iam_parse_response((const uint8_t *)spaced, strlen(spaced), id, sizeof(id), err,
                                 sizeof(err)));
    CHECK(strcmp(id, "x") == 0);
    CHECK(!msk_iam_parse_response((const uint8_t *)"{\"version\":\"1\",\"request-id\":\"x\"}", 32,
                                  id, sizeof(id), err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "version");
    CHECK(!msk_iam_parse_response((const uint8_t *)"{\"version\":\"2020_10_22\"}", 24, id,
                                  sizeof(id), err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "request-id");
    CHECK(!msk_iam_parse_response((const uint8_t *)ok, strlen(ok) - 1, id, sizeof(id), err,
                                  sizeof(err)));
    CHECK(!msk_iam_parse_response((const uint8_t *)"", 0, id, sizeof(id), err, sizeof(err)));
}

static void
test_msk_iam_region_from_host(void)
{
    char r[KB_MSK_IAM_REGION_MAX];

    CHECK(msk_iam_region_from_host("b-1.c1.abc.c2.kafka.us-east-1.amazonaws.com", r, sizeof(r)));
    CHECK(strcmp(r, "us-east-1") == 0);
    CHECK(
        msk_iam_region_from_host("b-2-public.c.x.c3.kafka.eu-west-1.amazonaws.com.", r, sizeof(r)));
    CHECK(strcmp(r, "eu-west-1") == 0);
    CHECK(msk_iam_region_from_host("b-1.c.x.kafka.cn-north-1.amazonaws.com.cn", r, sizeof(r)));
    CHECK(strcmp(r, "cn-north-1") == 0);
    CHECK(msk_iam_region_from_host("boot-x.c1.kafka-serverless.ap-south-1.amazonaws.com", r,
                                   sizeof(r)));
    CHECK(strcmp(r, "ap-south-1") == 0);
    CHECK(!msk_iam_region_from_host("sts.us-east-1.amazonaws.com", r, sizeof(r)));
    CHECK(!msk_iam_region_from_host("localhost", r, sizeof(r)));
    CHECK(!msk_iam_region_from_host("amazonaws.com", r, sizeof(r)));
    CHECK(!msk_iam_region_from_host("b-1.kafka.us-east-1.amazonaws.com", r, 4));
}

int
main(void)
{
    RUN(test_msk_iam_payload_long_term_credentials);
    RUN(test_msk_iam_payload_session_token);
    RUN(test_msk_iam_payload_new_signature_per_time);
    RUN(test_msk_iam_payload_refuses_bad_input);
    RUN(test_msk_iam_payload_escapes_json);
    RUN(test_msk_iam_token_matches_reference);
    RUN(test_msk_iam_token_without_user_agent);
    RUN(test_msk_iam_oauth_message_rfc7628);
    RUN(test_msk_iam_parse_response);
    RUN(test_msk_iam_region_from_host);
    return TEST_DONE();
}
