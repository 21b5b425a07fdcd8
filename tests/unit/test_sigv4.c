/*
 * test_sigv4.c - auth/sigv4.h against AWS's published vectors:
 *  - the IAM ListUsers example of the SigV4 documentation ("Create a signed AWS API request",
 *    https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and the older
 *    general reference pages sigv4-create-canonical-request / sigv4-calculate-signature):
 *    canonical request, its hash, the signing key and the signature;
 *  - cases of AWS's Signature Version 4 test suite (aws-sig-v4-test-suite, as shipped in
 *    @smithy/signature-v4's suite.fixture.js): request, canonical request and signature;
 *  - the S3 query pre-signing example (AmazonS3/latest/API/sigv4-query-string-auth.html).
 * Only the constants are copied; the test suite's files are not in this repository.
 */
#include "auth/sigv4.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME ((time_t)1440938160) /* 20150830T123600Z */
#define EMPTY KB_SIGV4_EMPTY_SHA256
/* tests/integration/iam/ref_sign.py, "test_sigv4 SESSION_TOKEN_SIGNATURE". */
#define SESSION_TOKEN_SIGNATURE "f3a7e994be6a3111789f09e807425486ece466c3e0b74e4f9f8a4cfe299784bd"

static const struct sigv4_creds suite_creds = {SUITE_AKID, SUITE_SECRET, NULL};

/* Signs req with headers at SUITE_TIME and returns the signature part of the Authorization. */
static void
check_suite_signature(const struct sigv4_request *req, const char *region, const char *service,
                      const char *signed_headers, const char *signature)
{
    char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1], err[128] = "", *auth = NULL, want[512];

    CHECK(sigv4_sign_headers(req, &suite_creds, region, service, SUITE_TIME, amz_date, &auth, err,
                             sizeof(err)));
    CHECK(strcmp(amz_date, "20150830T123600Z") == 0);
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/%s/%s/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             region, service, signed_headers, signature);
    CHECK(auth && strcmp(auth, want) == 0);
    if (auth && strcmp(auth, want) != 0) {
        fprintf(stderr, "  got  %s\n  want %s\n", auth, want);
    }
    free(auth);
}

/* The canonical request of req with x-amz-date in its headers equals creq. */
static void
check_canonical(const struct sigv4_request *req, const char *creq)
{
    char *got = sigv4_canonical_request(req, NULL);

    CHECK(got && strcmp(got, creq) == 0);
    if (got && strcmp(got, creq) != 0) {
        fprintf(stderr, "  got:\n%s\n  want:\n%s\n", got, creq);
    }
    free(got);
}

static void
test_sigv4_iam_list_users_example(void)
{
    static const struct sigv4_param q[] = {{"Action", "ListUsers"}, {"Version", "2010-05-08"}};
    static const struct sigv4_param h[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
        {"Host", "iam.amazonaws.com"},
        {"X-Amz-Date", "20150830T123600Z"}};
    static const char creq[] = "GET\n"
                               "/\n"
                               "Action=ListUsers&Version=2010-05-08\n"
                               "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
                               "host:iam.amazonaws.com\n"
                               "x-amz-date:20150830T123600Z\n"
                               "\n"
                               "content-type;host;x-amz-date\n" EMPTY;
    struct sigv4_request req = {"GET", "/", q, 2, h, 3, NULL};
    char hash[KB_SIGV4_HEX_LEN + 1], sig[KB_SIGV4_HEX_LEN + 1], keyhex[65], *sh = NULL;
    char *got, *scope, *sts;
    uint8_t key[32];
    size_t i;

    got = sigv4_canonical_request(&req, &sh);
    CHECK(got && strcmp(got, creq) == 0);
    CHECK(sh && strcmp(sh, "content-type;host;x-amz-date") == 0);
    sigv4_sha256_hex(got ? got : "", got ? strlen(got) : 0, hash);
    CHECK(strcmp(hash, "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59") == 0);

    scope = sigv4_scope("20150830", "us-east-1", "iam");
    CHECK(scope && strcmp(scope, "20150830/us-east-1/iam/aws4_request") == 0);
    sts = sigv4_string_to_sign("20150830T123600Z", scope, got ? got : "");
    CHECK(sts &&
          strcmp(sts, "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                      "20150830/us-east-1/iam/aws4_request\n"
                      "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59") == 0);
    sigv4_signing_key(SUITE_SECRET, "20150830", "us-east-1", "iam", key);
    for (i = 0; i < 32; i++) {
        snprintf(keyhex + 2 * i, 3, "%02x", key[i]);
    }
    CHECK(strcmp(keyhex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9") == 0);
    sigv4_signature(key, sts ? sts : "", sig);
    CHECK(strcmp(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7") == 0);
    free(got);
    free(sh);
    free(scope);
    free(sts);

    /* The same through sigv4_sign_headers(), which adds X-Amz-Date itself. */
    req.nheaders = 2;
    check_suite_signature(&req, "us-east-1", "iam", "content-type;host;x-amz-date",
                          "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

static const struct sigv4_param suite_headers[] = {{"Host", "example.amazonaws.com"},
                                                   {"X-Amz-Date", "20150830T123600Z"}};

static void
test_sigv4_suite_get_vanilla(void)
{
    struct sigv4_request req = {"GET", "/", NULL, 0, suite_headers, 2, NULL};

    check_canonical(&req, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                          "host;x-amz-date\n" EMPTY);
    req.nheaders = 1;
    check_suite_signature(&req, "us-east-1", "service", "host;x-amz-date",
                          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void
test_sigv4_suite_get_vanilla_query_order_key_case(void)
{
    static const struct sigv4_param q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
    struct sigv4_request req = {"GET", "/", q, 2, suite_headers, 2, NULL};

    check_canonical(&req, "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
                          "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY);
    req.nheaders = 1;
    check_suite_signature(&req, "us-east-1", "service", "host;x-amz-date",
                          "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void
test_sigv4_suite_get_vanilla_query_unreserved(void)
{
    static const char unres[] =
        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static const struct sigv4_param q[] = {{unres, unres}};
    struct sigv4_request req = {"GET", "/", q, 1, suite_headers, 2, NULL};
    char creq[512];

    snprintf(creq, sizeof(creq),
             "GET\n/\n%s=%s\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
             "host;x-amz-date\n" EMPTY,
             unres, unres);
    check_canonical(&req, creq);
    req.nheaders = 1;
    check_suite_signature(&req, "us-east-1", "service", "host;x-amz-date",
                          "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

static void
test_sigv4_suite_get_utf8(void)
{
    struct sigv4_request req = {"GET", "/\xe1\x88\xb4", NULL, 0, suite_headers, 2, NULL};

    check_canonical(&req, "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\n"
                          "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY);
    req.nheaders = 1;
    check_suite_signature(&req, "us-east-1", "service", "host;x-amz-date",
                          "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

static void
test_sigv4_suite_get_vanilla_utf8_query(void)
{
    static const struct sigv4_param q[] = {{"\xe1\x88\xb4", "bar"}};
    struct sigv4_request req = {"GET", "/", q, 1, suite_headers, 2, NULL};

    check_canonical(&req, "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\n"
                          "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY);
    req.nheaders = 1;
    check_suite_signature(&req, "us-east-1", "service", "host;x-amz-date",
                          "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

static void
test_sigv4_suite_post_vanilla_query(void)
{
    static const struct sigv4_param q[] = {{"Param1", "value1"}};
    struct sigv4_request req = {"POST", "/", q, 1, suite_headers, 1, NULL};

    check_suite_signature(&req, "us-east-1", "service", "host;x-amz-date",
                          "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

static void
test_sigv4_suite_post_x_www_form_urlencoded(void)
{
    static const struct sigv4_param h[] = {{"Content-Type", "application/x-www-form-urlencoded"},
                                           {"Host", "example.amazonaws.com"},
                                           {"X-Amz-Date", "20150830T123600Z"}};
    char body_hash[KB_SIGV4_HEX_LEN + 1];
    struct sigv4_request req = {"POST", "/", NULL, 0, h, 3, body_hash};

    sigv4_sha256_hex("Param1=value1", 13, body_hash);
    CHECK(strcmp(body_hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e") ==
          0);
    check_canonical(&req, "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
                          "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                          "content-type;host;x-amz-date\n"
                          "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    req.nheaders = 2;
    check_suite_signature(&req, "us-east-1", "service", "content-type;host;x-amz-date",
                          "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

/* S3 "Authenticating Requests: Using Query Parameters": GET examplebucket/test.txt, 86400 s. */
static void
test_sigv4_presign_s3_example(void)
{
    static const struct sigv4_param h[] = {{"host", "examplebucket.s3.amazonaws.com"}};
    static const struct sigv4_creds c = {"AKIAIOSFODNN7EXAMPLE",
                                         "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
    struct sigv4_request req = {"GET", "/test.txt", NULL, 0, h, 1, "UNSIGNED-PAYLOAD"};
    struct sigv4_presigned p;
    char err[128] = "";

    CHECK(sigv4_presign(&req, &c, "us-east-1", "s3", (time_t)1369353600, 86400, &p, err,
                        sizeof(err)));
    CHECK(strcmp(p.signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") ==
          0);
    CHECK(
        p.query &&
        strcmp(p.query,
               "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
               "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
               "X-Amz-SignedHeaders=host&X-Amz-Signature="
               "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") == 0);
    CHECK(p.credential &&
          strcmp(p.credential, "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request") == 0);
    CHECK(p.signed_headers && strcmp(p.signed_headers, "host") == 0);
    CHECK(p.expires && strcmp(p.expires, "86400") == 0);
    CHECK(strcmp(p.amz_date, "20130524T000000Z") == 0);
    sigv4_presigned_free(&p);
    CHECK(p.query == NULL);
}

/*
 * A session token is signed as X-Amz-Security-Token (between X-Amz-Expires and
 * X-Amz-SignedHeaders in the sorted query). Expected signature re-derived with Python's
 * hashlib/hmac from the SigV4 rules (tests/integration/iam/ref_sign.py presign).
 */
static void
test_sigv4_presign_session_token(void)
{
    static const struct sigv4_param q[] = {{"Action", "kafka-cluster:Connect"}};
    static const struct sigv4_param h[] = {{"host", "b-1.example.kafka.us-east-1.amazonaws.com"}};
    static const struct sigv4_creds c = {"ASIAEXAMPLE", SUITE_SECRET, "tok+en/=="};
    struct sigv4_request req = {"GET", "/", q, 1, h, 1, NULL};
    struct sigv4_presigned p;
    char err[128] = "";

    CHECK(sigv4_presign(&req, &c, "us-east-1", "kafka-cluster", SUITE_TIME, 900, &p, err,
                        sizeof(err)));
    CHECK_STR_CONTAINS(p.query, "&X-Amz-Expires=900&X-Amz-Security-Token=tok%2Ben%2F%3D%3D&"
                                "X-Amz-SignedHeaders=host&X-Amz-Signature=");
    CHECK(strncmp(p.query ? p.query : "", "Action=kafka-cluster%3AConnect&X-Amz-Algorithm=", 47) ==
          0);
    CHECK(strcmp(p.signature, SESSION_TOKEN_SIGNATURE) == 0);
    sigv4_presigned_free(&p);
}

static void
test_sigv4_presign_rejects_bad_input(void)
{
    static const struct sigv4_param q[] = {{"X-Amz-Date", "x"}};
    static const struct sigv4_param h[] = {{"host", "h"}};
    static const struct sigv4_creds nosecret = {"AKID", "", NULL};
    struct sigv4_request req = {"GET", "/", NULL, 0, h, 1, NULL};
    struct sigv4_presigned p;
    char err[128];

    CHECK(!sigv4_presign(&req, &nosecret, "us-east-1", "s", SUITE_TIME, 900, &p, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "secret");
    CHECK(
        !sigv4_presign(&req, &suite_creds, "us-east-1", "s", SUITE_TIME, 0, &p, err, sizeof(err)));
    CHECK(!sigv4_presign(&req, &suite_creds, "us-east-1", "s", SUITE_TIME, 604801, &p, err,
                         sizeof(err)));
    CHECK_STR_CONTAINS(err, "expiry");
    CHECK(!sigv4_presign(&req, &suite_creds, "", "s", SUITE_TIME, 900, &p, err, sizeof(err)));
    req.query = q;
    req.nquery = 1;
    CHECK(!sigv4_presign(&req, &suite_creds, "us-east-1", "s", SUITE_TIME, 900, &p, err,
                         sizeof(err)));
    CHECK_STR_CONTAINS(err, "X-Amz-Date");
    CHECK(p.query == NULL && p.credential == NULL);
    req.query = NULL;
    req.nquery = 0;
    req.headers = q; /* no host header */
    CHECK(!sigv4_presign(&req, &suite_creds, "us-east-1", "s", SUITE_TIME, 900, &p, err,
                         sizeof(err)));
    CHECK_STR_CONTAINS(err, "host");
}

/*
 * STS GetCallerIdentity as kbridge check signs it: a form POST with temporary credentials, so
 * X-Amz-Security-Token is a signed header. Expected Authorization from ref_sign.py
 * ("test_sigv4 STS GetCallerIdentity Authorization").
 */
static void
test_sigv4_sign_headers_sts_get_caller_identity(void)
{
    static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";
    static const struct sigv4_param h[] = {
        {"Host", "sts.us-east-1.amazonaws.com"},
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    static const struct sigv4_creds c = {"ASIAEXAMPLE", SUITE_SECRET, "session"};
    char body_hash[KB_SIGV4_HEX_LEN + 1];
    struct sigv4_request req = {"POST", "/", NULL, 0, h, 2, body_hash};
    char amz_date[KB_SIGV4_AMZ_DATE_LEN + 1], err[128] = "", *auth = NULL;
    static const struct sigv4_param dup[] = {{"host", "h"}, {"X-Amz-Date", "x"}};

    sigv4_sha256_hex(body, strlen(body), body_hash);
    CHECK(sigv4_sign_headers(&req, &c, "us-east-1", "sts", SUITE_TIME, amz_date, &auth, err,
                             sizeof(err)));
    CHECK(auth &&
          strcmp(auth, "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20150830/us-east-1/sts/"
                       "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                       "x-amz-security-token, Signature="
                       "71c3cf0a0b5d50fedf7d851c4f98f0d823f5336d614a822f0f39fe170590ff18") == 0);
    CHECK(strcmp(amz_date, "20150830T123600Z") == 0);
    free(auth);

    /* A header sigv4_sign_headers() adds itself is refused rather than signed twice. */
    req.headers = dup;
    CHECK(!sigv4_sign_headers(&req, &c, "us-east-1", "sts", SUITE_TIME, amz_date, &auth, err,
                              sizeof(err)));
    CHECK_STR_CONTAINS(err, "X-Amz-Date");
    CHECK(auth == NULL);
}

/* get-header-value-trim: values trimmed, inner runs of spaces folded (inside quotes too). */
static void
test_sigv4_suite_get_header_value_trim(void)
{
    static const struct sigv4_param h[] = {{"Host", "example.amazonaws.com"},
                                           {"My-Header1", " value1 "},
                                           {"My-Header2", " \"a   b   c\""},
                                           {"X-Amz-Date", "20150830T123600Z"}};
    struct sigv4_request req = {"GET", "/", NULL, 0, h, 4, NULL};

    check_canonical(&req, "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n"
                          "my-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
                          "host;my-header1;my-header2;x-amz-date\n" EMPTY);
    req.nheaders = 3;
    check_suite_signature(&req, "us-east-1", "service", "host;my-header1;my-header2;x-amz-date",
                          "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void
test_sigv4_uri_encode_rules(void)
{
    char *e;

    e = sigv4_uri_encode("a b/c~d*e+f", 11, false);
    CHECK(e && strcmp(e, "a%20b%2Fc~d%2Ae%2Bf") == 0);
    free(e);
    e = sigv4_uri_encode("/a b/", 5, true);
    CHECK(e && strcmp(e, "/a%20b/") == 0);
    free(e);
    e = sigv4_uri_encode("\xc3\xa9:=&", 5, false);
    CHECK(e && strcmp(e, "%C3%A9%3A%3D%26") == 0);
    free(e);
}

static void
test_sigv4_canonical_query_sorts_encoded(void)
{
    /* Sorted by encoded name, then encoded value; '%' (0x25) sorts before letters. */
    static const struct sigv4_param q[] = {
        {"b", "2"}, {"a", "z"}, {"a", "y"}, {"a b", "1"}, {"A", NULL}};
    char *s = sigv4_canonical_query(q, 5);

    CHECK(s && strcmp(s, "A=&a=y&a=z&a%20b=1&b=2") == 0);
    free(s);
    s = sigv4_canonical_query(NULL, 0);
    CHECK(s && strcmp(s, "") == 0);
    free(s);
}

static void
test_sigv4_dates_and_empty_hash(void)
{
    char amz[KB_SIGV4_AMZ_DATE_LEN + 1], d[KB_SIGV4_DATE_LEN + 1], hex[KB_SIGV4_HEX_LEN + 1];

    CHECK(sigv4_format_date(SUITE_TIME, amz, d));
    CHECK(strcmp(amz, "20150830T123600Z") == 0 && strcmp(d, "20150830") == 0);
    CHECK(sigv4_format_date((time_t)0, amz, d) && strcmp(amz, "19700101T000000Z") == 0);
    sigv4_sha256_hex("", 0, hex);
    CHECK(strcmp(hex, KB_SIGV4_EMPTY_SHA256) == 0);
}

int
main(void)
{
    RUN(test_sigv4_iam_list_users_example);
    RUN(test_sigv4_suite_get_vanilla);
    RUN(test_sigv4_suite_get_vanilla_query_order_key_case);
    RUN(test_sigv4_suite_get_vanilla_query_unreserved);
    RUN(test_sigv4_suite_get_utf8);
    RUN(test_sigv4_suite_get_vanilla_utf8_query);
    RUN(test_sigv4_suite_post_vanilla_query);
    RUN(test_sigv4_suite_post_x_www_form_urlencoded);
    RUN(test_sigv4_presign_s3_example);
    RUN(test_sigv4_presign_session_token);
    RUN(test_sigv4_presign_rejects_bad_input);
    RUN(test_sigv4_sign_headers_sts_get_caller_identity);
    RUN(test_sigv4_suite_get_header_value_trim);
    RUN(test_sigv4_uri_encode_rules);
    RUN(test_sigv4_canonical_query_sorts_encoded);
    RUN(test_sigv4_dates_and_empty_hash);
    return TEST_DONE();
}
