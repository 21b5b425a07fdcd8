/*
 * test_aws_parse.c - the pure parts of aws/: STS XML (answers as AWS documents them, errors,
 * entities), IMDS JSON, timestamps, the shared credentials/config files, JWT shape, refresh
 * timing, MSK host names to regions, and settings precedence (keys, then environment).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "aws/container.h"
#include "aws/creds.h"
#include "aws/gcp.h"
#include "auth/json.h"
#include "aws/imds.h"
#include "aws/profile.h"
#include "aws/provider.h"
#include "aws/sts.h"
#include "conf/conf.h"
#include "test.h"

/* AWS STS API reference, AssumeRoleWithWebIdentity, "Example" response (token shortened). */
static const char sts_ok[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A"
    "</SubjectFromWebIdentityToken>\n"
    "    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
    "    <AssumedRoleUser>\n"
    "      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
    "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
    "    </AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\n"
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
    "      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
    "      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
    "    <Provider>www.amazon.com</Provider>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata>\n"
    "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
    "  </ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

static const char sts_denied[] =
    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <Error>\n"
    "    <Type>Sender</Type>\n"
    "    <Code>AccessDenied</Code>\n"
    "    <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>\n"
    "  </Error>\n"
    "  <RequestId>4bd4f8e0-0000-4a4b-9d1b-EXAMPLE</RequestId>\n"
    "</ErrorResponse>\n";

/* EC2 User Guide, "Retrieve security credentials from instance metadata". */
static const char imds_ok[] =
    "{\n"
    "  \"Code\" : \"Success\",\n"
    "  \"LastUpdated\" : \"2012-04-26T16:39:16Z\",\n"
    "  \"Type\" : \"AWS-HMAC\",\n"
    "  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
    "  \"SecretAccessKey\" : \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\n"
    "  \"Token\" : \"token\",\n"
    "  \"Expiration\" : \"2017-05-17T15:09:54Z\"\n"
    "}\n";

static void
test_sts_parse_credentials_aws_example(void)
{
    struct aws_creds c;
    char err[256];

    memset(&c, 0, sizeof(c));
    CHECK(aws_sts_parse_credentials(sts_ok, strlen(sts_ok), &c, err, sizeof(err)));
    CHECK(strcmp(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE") == 0);
    CHECK(strcmp(c.secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY") == 0);
    CHECK(strcmp(c.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE") == 0);
    CHECK_EQ_INT(c.expiration, 1414191623); /* 2014-10-24T23:00:23Z */
    CHECK(strcmp(c.principal_arn,
                 "arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1") == 0);
    aws_creds_clear(&c);
    CHECK(c.secret[0] == '\0' && c.access_key_id[0] == '\0');
}

static void
test_sts_parse_credentials_missing_field(void)
{
    static const char xml[] = "<R><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s"
                              "</SecretAccessKey><Expiration>2014-10-24T23:00:23Z</Expiration>"
                              "</Credentials></R>";
    struct aws_creds c;
    char err[256];

    CHECK(!aws_sts_parse_credentials(xml, strlen(xml), &c, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "Credentials/SessionToken");
    aws_creds_clear(&c);
}

static void
test_sts_parse_credentials_bad_expiration(void)
{
    static const char xml[] = "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s"
                              "</SecretAccessKey><SessionToken>t</SessionToken><Expiration>"
                              "tomorrow</Expiration></Credentials>";
    struct aws_creds c;
    char err[256];

    CHECK(!aws_sts_parse_credentials(xml, strlen(xml), &c, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "unreadable Expiration 'tomorrow'");
    aws_creds_clear(&c);
}

static void
test_sts_parse_error_and_explain(void)
{
    struct aws_sts_error e;
    char out[2048];

    CHECK(aws_sts_parse_error(sts_denied, strlen(sts_denied), &e));
    CHECK(strcmp(e.code, "AccessDenied") == 0);
    CHECK(strcmp(e.message, "Not authorized to perform sts:AssumeRoleWithWebIdentity") == 0);
    aws_sts_explain(&e, 403, "AssumeRoleWithWebIdentity for arn:aws:iam::1:role/r",
                    "sts.amazonaws.com", out, sizeof(out));
    CHECK_STR_CONTAINS(out, "AssumeRoleWithWebIdentity for arn:aws:iam::1:role/r failed: STS "
                            "AccessDenied (HTTP 403): Not authorized to perform "
                            "sts:AssumeRoleWithWebIdentity");
    CHECK_STR_CONTAINS(out, "audience 'sts.amazonaws.com'");
    CHECK_STR_CONTAINS(out, "trust policy");
    CHECK_STR_CONTAINS(out, "accounts.google.com:oaud");
    CHECK(!aws_sts_parse_error(sts_ok, strlen(sts_ok), &e));
}

static void
test_sts_explain_invalid_identity_token(void)
{
    struct aws_sts_error e = {.code = "InvalidIdentityToken",
                              .message = "Incorrect token audience"};
    char out[2048];

    aws_sts_explain(&e, 400, "X", NULL, out, sizeof(out));
    CHECK_STR_CONTAINS(out, "X failed: STS InvalidIdentityToken (HTTP 400): Incorrect token "
                            "audience; STS refused the token itself");
    CHECK_STR_CONTAINS(out, "issuer");
}

static void
test_sts_parse_caller_identity(void)
{
    static const char xml[] =
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <GetCallerIdentityResult>\n"
        "    <Arn>arn:aws:sts::123456789012:assumed-role/my-role-name/my-role-session-name</Arn>\n"
        "    <UserId>ARO123EXAMPLE123:my-role-session-name</UserId>\n"
        "    <Account>123456789012</Account>\n"
        "  </GetCallerIdentityResult>\n"
        "  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>"
        "</ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n";
    char arn[256], account[32];

    CHECK(aws_sts_parse_caller_identity(xml, strlen(xml), arn, sizeof(arn), account,
                                        sizeof(account)));
    CHECK(strcmp(arn, "arn:aws:sts::123456789012:assumed-role/my-role-name/my-role-session-name") ==
          0);
    CHECK(strcmp(account, "123456789012") == 0);
}

static void
test_xml_text_entities_scope_and_limits(void)
{
    static const char xml[] = "<a><Message>x</Message></a><Error a=\"1\"><Message>Role &quot;r"
                              "&quot; &amp; &lt;t&gt; &apos;&#65;&#x42;</Message></Error>";
    char out[64], tiny[4];

    CHECK(aws_xml_text(xml, strlen(xml), "Error", "Message", out, sizeof(out)));
    CHECK(strcmp(out, "Role \"r\" & <t> 'AB") == 0);
    CHECK(aws_xml_text(xml, strlen(xml), NULL, "Message", out, sizeof(out)));
    CHECK(strcmp(out, "x") == 0);
    CHECK(!aws_xml_text(xml, strlen(xml), "Error", "Code", out, sizeof(out)));
    CHECK(!aws_xml_text(xml, strlen(xml), "a", "Message", tiny, sizeof(tiny)) ||
          strlen(tiny) < sizeof(tiny));
    CHECK(!aws_xml_text(xml, strlen(xml), "Error", "Message", tiny, sizeof(tiny)));
    CHECK(!aws_xml_text("<M>&bogus;</M>", 14, NULL, "M", out, sizeof(out)));
    CHECK(!aws_xml_text("<M>open", 7, NULL, "M", out, sizeof(out)));
    CHECK(!aws_xml_text("<M><N>x</N></M>", 15, NULL, "M", out, sizeof(out)));
    /* a prefix of a longer tag is not the tag */
    CHECK(!aws_xml_text("<MessageId>x</MessageId>", 24, NULL, "Message", out, sizeof(out)));
}

static void
test_imds_parse_credentials_aws_example(void)
{
    struct aws_creds c;
    char err[256];

    memset(&c, 0, sizeof(c));
    CHECK(aws_imds_parse_credentials(imds_ok, strlen(imds_ok), &c, err, sizeof(err)));
    CHECK(strcmp(c.access_key_id, "ASIAIOSFODNN7EXAMPLE") == 0);
    CHECK(strcmp(c.secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") == 0);
    CHECK(strcmp(c.session_token, "token") == 0);
    CHECK_EQ_INT(c.expiration, 1495033794); /* 2017-05-17T15:09:54Z */
    aws_creds_clear(&c);
}

static void
test_imds_parse_credentials_failure_code(void)
{
    static const char json[] = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"x\"}";
    struct aws_creds c;
    char err[256];

    CHECK(!aws_imds_parse_credentials(json, strlen(json), &c, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "Code 'AssumeRoleUnauthorizedAccess', not Success");
    aws_creds_clear(&c);
}

static void
test_json_string_escapes_and_types(void)
{
    static const char json[] = "{\"n\": 12, \"b\": true, \"s\": \"a\\\"b\\\\c\\/d\\u0041\\n\","
                               " \"x\": null}";
    char out[32];

    CHECK(json_get_string(json, strlen(json), "s", out, sizeof(out)) == JSON_OK);
    CHECK(strcmp(out, "a\"b\\c/dA\n") == 0);
    CHECK(json_get_string(json, strlen(json), "n", out, sizeof(out)) == JSON_MALFORMED);
    CHECK(json_get_string(json, strlen(json), "missing", out, sizeof(out)) == JSON_ABSENT);
    CHECK(json_get_string("[\"s\"]", 5, "s", out, sizeof(out)) == JSON_MALFORMED);
    CHECK(json_get_string("{\"s\": \"unterminated}", 19, "s", out, sizeof(out)) != JSON_OK);
    CHECK(json_get_string("{\"o\": {\"s\": \"x\"}}", 17, "s", out, sizeof(out)) != JSON_OK);
}

static void
test_parse_time_forms(void)
{
    time_t t = 0;

    CHECK(aws_parse_time("2026-12-01T20:30:00Z", &t));
    CHECK_EQ_INT(t, 1796157000);
    CHECK(aws_parse_time("2026-12-01T20:30:00.123Z", &t));
    CHECK_EQ_INT(t, 1796157000);
    CHECK(aws_parse_time("2026-12-01T20:30:00+00:00", &t));
    CHECK_EQ_INT(t, 1796157000);
    CHECK(!aws_parse_time("2026-12-01T20:30:00+02:00", &t));
    CHECK(!aws_parse_time("2026-12-01 20:30:00Z", &t));
    CHECK(!aws_parse_time("2026-12-01T20:30:00", &t));
    CHECK(!aws_parse_time("", &t));
}

static void
test_profile_credentials_file(void)
{
    static const char text[] = "# comment\n"
                               "[default]\n"
                               "aws_access_key_id = AKIADEFAULT\n"
                               "aws_secret_access_key = defsecret\n"
                               "\n"
                               "[msk]\n"
                               "; another comment\n"
                               "aws_access_key_id=AKIAFIRST\n"
                               "AWS_Access_Key_Id = AKIAMSK  \n"
                               "aws_secret_access_key =  msksecret\n"
                               "aws_session_token = msktoken\n"
                               "s3 =\n"
                               "  max_concurrent_requests = 20\n"
                               "[profile msk]\n"
                               "aws_access_key_id = AKIANOTTHIS\n";
    struct aws_profile_values v;

    aws_profile_parse(text, strlen(text), "msk", false, &v);
    CHECK(v.found && v.has_key_id && v.has_secret);
    CHECK(strcmp(v.creds.access_key_id, "AKIAMSK") == 0); /* the later value wins */
    CHECK(strcmp(v.creds.secret, "msksecret") == 0);
    CHECK(strcmp(v.creds.session_token, "msktoken") == 0);
    CHECK(v.unsupported[0] == '\0');
    aws_creds_clear(&v.creds);
    aws_profile_parse(text, strlen(text), "nope", false, &v);
    CHECK(!v.found && !v.has_key_id);
}

static void
test_profile_config_file(void)
{
    static const char text[] = "[default]\n"
                               "region = eu-west-1\n"
                               "[profile msk]\n"
                               "aws_access_key_id = AKIACONF\n"
                               "aws_secret_access_key = confsecret\n"
                               "[msk]\n"
                               "aws_access_key_id = AKIAWRONGSECTION\n"
                               "[profile chained]\n"
                               "role_arn = arn:aws:iam::123456789012:role/r\n"
                               "source_profile = default\n";
    struct aws_profile_values v;

    aws_profile_parse(text, strlen(text), "msk", true, &v);
    CHECK(v.found && strcmp(v.creds.access_key_id, "AKIACONF") == 0);
    aws_creds_clear(&v.creds);
    aws_profile_parse(text, strlen(text), "default", true, &v);
    CHECK(v.found && !v.has_key_id && !v.has_secret && v.unsupported[0] == '\0');
    aws_profile_parse(text, strlen(text), "chained", true, &v);
    CHECK(v.found && !v.has_key_id && strcmp(v.unsupported, "role_arn") == 0);
}

static void
test_gcp_is_jwt(void)
{
    CHECK(aws_gcp_is_jwt("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln-_"));
    CHECK(!aws_gcp_is_jwt("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0"));
    CHECK(!aws_gcp_is_jwt("a..c"));
    CHECK(!aws_gcp_is_jwt("<html>error</html>"));
    CHECK(!aws_gcp_is_jwt("a.b.c.d"));
    CHECK(!aws_gcp_is_jwt(""));
}

static void
test_provider_refresh_at_margin_and_jitter(void)
{
    /* one hour: 5 min margin, up to 1 min more jitter */
    CHECK_EQ_INT(aws_provider_refresh_at(1000, 1000 + 3600, 0.0), 1000 + 3600 - 300);
    CHECK_EQ_INT(aws_provider_refresh_at(1000, 1000 + 3600, 0.999), 1000 + 3600 - 300 - 59);
    /* short ones: a quarter of the lifetime (20 s -> 5 s before expiry, + up to 1 s) */
    CHECK_EQ_INT(aws_provider_refresh_at(1000, 1020, 0.0), 1015);
    CHECK_EQ_INT(aws_provider_refresh_at(1000, 1020, 0.99), 1015);
    CHECK(aws_provider_refresh_at(1000, 1020, 0.99) >= 1014);
    /* already expired: now */
    CHECK_EQ_INT(aws_provider_refresh_at(1000, 900, 0.5), 1000);
}

static void
test_region_from_msk_hosts(void)
{
    char r[64];

    CHECK(conf_aws_region_from_host("b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com", r,
                                    sizeof(r)));
    CHECK(strcmp(r, "us-east-1") == 0);
    CHECK(conf_aws_region_from_host("b-2-public.demo.x.c3.kafka.cn-north-1.amazonaws.com.cn", r,
                                    sizeof(r)));
    CHECK(strcmp(r, "cn-north-1") == 0);
    CHECK(conf_aws_region_from_host("boot-abc.c1.kafka-serverless.eu-west-1.amazonaws.com", r,
                                    sizeof(r)));
    CHECK(strcmp(r, "eu-west-1") == 0);
    CHECK(!conf_aws_region_from_host("kafka.example.com", r, sizeof(r)));
    CHECK(!conf_aws_region_from_host("b-1.x.kafka.us-east-1.example.com", r, sizeof(r)));
    CHECK(!conf_aws_region_from_host("sts.us-east-1.amazonaws.com", r, sizeof(r)));
    CHECK(!conf_aws_region_from_host("b.kafka.amazonaws.com", r, sizeof(r)));
}

/* The container endpoint: ECS's relative path wins; a FULL_URI in clear only to the machine or
 * the ECS/EKS agents (the SDKs' rule: the answer is credentials); the path is never echoed. */
static void
test_container_url_rules(void)
{
    static const struct {
        const char *uri;
        enum aws_source_result want;
    } full[] = {
        {"http://169.254.170.23/v1/credentials", AWS_SOURCE_OK},
        {"http://[fd00:ec2::23]/v1/credentials", AWS_SOURCE_OK},
        {"http://127.0.0.1:8080/creds", AWS_SOURCE_OK},
        {"http://localhost/creds", AWS_SOURCE_OK},
        {"https://creds.example.com/x", AWS_SOURCE_OK},
        {"http://creds.example.com/x", AWS_SOURCE_FAILED},
        {"http://127.0.0.1.evil.example/x", AWS_SOURCE_FAILED},
        {"http://169.254.170.2.evil/x", AWS_SOURCE_FAILED},
        {"ftp://127.0.0.1/x", AWS_SOURCE_FAILED},
    };
    char url[256], why[512];
    size_t i;

    CHECK(aws_container_url(NULL, NULL, url, sizeof(url), why, sizeof(why)) == AWS_SOURCE_NONE);
    CHECK_STR_CONTAINS(why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    CHECK(aws_container_url("", "", url, sizeof(url), why, sizeof(why)) == AWS_SOURCE_NONE);
    CHECK(aws_container_url("/v2/credentials/5f3c-task", "https://other", url, sizeof(url), why,
                            sizeof(why)) == AWS_SOURCE_OK);
    CHECK(strcmp(url, "http://169.254.170.2/v2/credentials/5f3c-task") == 0);
    CHECK(aws_container_url("v2/x", NULL, url, sizeof(url), why, sizeof(why)) == AWS_SOURCE_FAILED);
    CHECK(strstr(why, "v2/x") == NULL);
    /* FULL_URI alone: what is accepted, what is refused */
    for (i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
        CHECK(aws_container_url(NULL, full[i].uri, url, sizeof(url), why, sizeof(why)) ==
              full[i].want);
        CHECK(full[i].want != AWS_SOURCE_OK || strcmp(url, full[i].uri) == 0);
    }
    CHECK(aws_container_url(NULL, "http://creds.example.com/x", url, sizeof(url), why,
                            sizeof(why)) == AWS_SOURCE_FAILED);
    CHECK_STR_CONTAINS(why, "creds.example.com");
    CHECK_STR_CONTAINS(why, "https://");
}

/* The container JSON (AWS's ECS task IAM role example): no Code field, same four fields. */
static void
test_container_credentials_json(void)
{
    static const char ok[] = "{\"AccessKeyId\": \"ASIAIOSFODNN7EXAMPLE\", \"Expiration\": "
                             "\"2026-12-02T06:00:00Z\", \"RoleArn\": \"arn:aws:iam::123:role/t\", "
                             "\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\", "
                             "\"Token\": \"IQoJb3JpZ2luEXAMPLE\"}";
    struct aws_creds c;
    char err[256];

    memset(&c, 0, sizeof(c));
    CHECK(aws_creds_from_json(ok, strlen(ok), "container credentials", &c, err, sizeof(err)));
    CHECK(strcmp(c.access_key_id, "ASIAIOSFODNN7EXAMPLE") == 0);
    CHECK(strcmp(c.session_token, "IQoJb3JpZ2luEXAMPLE") == 0);
    CHECK(c.expiration > 0);
    CHECK(!aws_creds_from_json("{\"AccessKeyId\": \"A\"}", 20, "container credentials", &c, err,
                               sizeof(err)));
    CHECK_STR_CONTAINS(err, "container credentials lack");
}

static void
test_key_hint_never_the_whole_id(void)
{
    struct aws_creds c = {.access_key_id = "ASIAIOSFODNN7EXAMPLE"};
    char hint[32];

    CHECK(strcmp(aws_creds_key_hint(&c, hint, sizeof(hint)), "ASIA****MPLE") == 0);
    snprintf(c.access_key_id, sizeof(c.access_key_id), "SHORT");
    CHECK(strcmp(aws_creds_key_hint(&c, hint, sizeof(hint)), "****") == 0);
}

static void
test_settings_keys_win_over_environment(void)
{
    struct kb_cluster_conf cc = {.name = "msk", .aws_region = "cn-north-1"};
    struct aws_settings s;
    char err[256];

    setenv("AWS_ROLE_ARN", "arn:aws:iam::111111111111:role/env", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/env/token", 1);
    setenv("AWS_PROFILE", "envprofile", 1);
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ROLE_SESSION_NAME");
    unsetenv("GCE_METADATA_HOST");
    CHECK(aws_settings_init(&s, &cc, err, sizeof(err)));
    CHECK(strcmp(s.role_arn, "arn:aws:iam::111111111111:role/env") == 0);
    CHECK(strcmp(s.token_file, "/env/token") == 0);
    CHECK(strcmp(s.profile, "envprofile") == 0);
    CHECK(strcmp(s.sts_endpoint, "https://sts.cn-north-1.amazonaws.com.cn") == 0);
    CHECK(strncmp(s.session_name, "kbridge-", 8) == 0 && strlen(s.session_name) <= 64);
    CHECK(strcmp(s.metadata_host, "metadata.google.internal") == 0);
    CHECK(strcmp(s.audience, "sts.amazonaws.com") == 0);
    aws_settings_free(&s);

    /* a configured role never pairs with the environment's token file */
    cc.aws_role_arn = "arn:aws:iam::222222222222:role/key";
    cc.aws_profile = "keyprofile";
    CHECK(aws_settings_init(&s, &cc, err, sizeof(err)));
    CHECK(strcmp(s.role_arn, "arn:aws:iam::222222222222:role/key") == 0);
    CHECK(s.token_file == NULL);
    CHECK(strcmp(s.profile, "keyprofile") == 0);
    aws_settings_free(&s);

    setenv("AWS_ENDPOINT_URL_STS", "http://sts.example.com", 1);
    CHECK(!aws_settings_init(&s, &cc, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "is not https://");
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_PROFILE");
}

static void
test_sts_url_parts_host_header_as_sent(void)
{
    char host[128], path[128];

    CHECK(aws_sts_url_parts("https://sts.eu-west-1.amazonaws.com", host, sizeof(host), path,
                            sizeof(path)));
    CHECK(strcmp(host, "sts.eu-west-1.amazonaws.com") == 0 && strcmp(path, "/") == 0);
    CHECK(
        aws_sts_url_parts("https://sts.example.com:443/", host, sizeof(host), path, sizeof(path)));
    CHECK(strcmp(host, "sts.example.com") == 0 && strcmp(path, "/") == 0);
    CHECK(aws_sts_url_parts("https://127.0.0.1:8443/vpce/?x=1", host, sizeof(host), path,
                            sizeof(path)));
    CHECK(strcmp(host, "127.0.0.1:8443") == 0 && strcmp(path, "/vpce/") == 0);
    CHECK(!aws_sts_url_parts("ftp://x", host, sizeof(host), path, sizeof(path)));
    CHECK(!aws_sts_url_parts("https:///", host, sizeof(host), path, sizeof(path)));
}

int
main(void)
{
    RUN(test_sts_parse_credentials_aws_example);
    RUN(test_sts_parse_credentials_missing_field);
    RUN(test_sts_parse_credentials_bad_expiration);
    RUN(test_sts_parse_error_and_explain);
    RUN(test_sts_explain_invalid_identity_token);
    RUN(test_sts_parse_caller_identity);
    RUN(test_xml_text_entities_scope_and_limits);
    RUN(test_imds_parse_credentials_aws_example);
    RUN(test_imds_parse_credentials_failure_code);
    RUN(test_json_string_escapes_and_types);
    RUN(test_parse_time_forms);
    RUN(test_profile_credentials_file);
    RUN(test_profile_config_file);
    RUN(test_gcp_is_jwt);
    RUN(test_provider_refresh_at_margin_and_jitter);
    RUN(test_region_from_msk_hosts);
    RUN(test_container_url_rules);
    RUN(test_container_credentials_json);
    RUN(test_key_hint_never_the_whole_id);
    RUN(test_settings_keys_win_over_environment);
    RUN(test_sts_url_parts_host_header_as_sent);
    return TEST_DONE();
}
