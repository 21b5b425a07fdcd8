/*
 * test_auth_mech.c - the mechanism table and session (auth/mech.h) and PLAIN (auth/plain.h):
 * lookup by Kafka's names, PLAIN's exact bytes, and a whole SCRAM-SHA-256 session driven
 * through the generic interface against RFC 7677's server messages (client nonce random, so
 * the session is expected to fail the server signature there, as it must). AWS_MSK_IAM and
 * OAUTHBEARER through the same interface: exactly msk_iam.h's bytes, the signature lifetime,
 * MSK's answer, RFC 7628's error-then-%x01 turn, expired credentials.
 */
#include "auth/mech.h"

#include <stdlib.h>
#include <string.h>

#include "auth/msk_iam.h"
#include "auth/msk_iam_mech.h"
#include "auth/plain.h"
#include "test.h"

static void
test_auth_mech_find_names(void)
{
    CHECK(auth_mech_find("SCRAM-SHA-512") != NULL);
    CHECK(auth_mech_find("SCRAM-SHA-256") != NULL);
    CHECK(auth_mech_find("PLAIN") != NULL);
    CHECK(auth_mech_find("AWS_MSK_IAM") != NULL);
    CHECK(auth_mech_find("OAUTHBEARER") != NULL);
    CHECK(auth_mech_find("plain") == NULL); /* Kafka's names are case-sensitive */
    CHECK(auth_mech_find("GSSAPI") == NULL);
    CHECK(auth_mech_find("") == NULL);
    CHECK_STR_CONTAINS(auth_mech_names(), "SCRAM-SHA-512");
    CHECK_STR_CONTAINS(auth_mech_names(), "PLAIN");
}

static void
test_auth_plain_bytes(void)
{
    static const uint8_t want[] = {0, 'b', 'o', 'b', 0, 'p', '=', ',', 'w'};
    struct auth_buf out = {0};
    char err[128];

    CHECK(plain_message("bob", "p=,w", &out, err, sizeof(err)));
    CHECK(out.len == sizeof(want) && memcmp(out.data, want, sizeof(want)) == 0);
    CHECK(!plain_message("", "pw", &out, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, "user name");
    CHECK(out.data == NULL);
    auth_buf_free(&out);
}

static void
test_auth_plain_session(void)
{
    struct auth_creds c = {.username = "bob", .password = "pw", .host = "b-1"};
    struct auth_buf first = {0}, out = {0};
    struct auth_session *s;
    bool done = false;
    char err[128];

    s = auth_session_new(auth_mech_find("PLAIN"), &c, &first, err, sizeof(err));
    CHECK(s != NULL);
    CHECK_EQ_INT(first.len, 7);
    CHECK(strcmp(auth_session_mech(s), "PLAIN") == 0);
    CHECK(auth_session_step(s, NULL, 0, &out, &done, err, sizeof(err)));
    CHECK(done);
    CHECK(out.data == NULL);
    auth_session_free(s);
    /* a broker that answers PLAIN with bytes is not speaking PLAIN */
    s = auth_session_new(auth_mech_find("PLAIN"), &c, &first, err, sizeof(err));
    CHECK(!auth_session_step(s, (const uint8_t *)"x", 1, &out, &done, err, sizeof(err)));
    CHECK(!done);
    CHECK_STR_CONTAINS(err, "unexpected bytes");
    auth_session_free(s);
    auth_buf_free(&first);
}

static void
test_auth_scram_session_steps(void)
{
    struct auth_creds c = {.username = "user", .password = "pencil", .host = "b-1"};
    struct auth_buf first = {0}, out = {0};
    struct auth_session *s;
    char err[256], sf[256];
    bool done = true;

    s = auth_session_new(auth_mech_find("SCRAM-SHA-256"), &c, &first, err, sizeof(err));
    CHECK(s != NULL);
    CHECK(first.len > 12 && memcmp(first.data, "n,,n=user,r=", 12) == 0);
    /* a server-first extending our random nonce */
    snprintf(sf, sizeof(sf), "r=%.*sSRV,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", (int)(first.len - 12),
             (const char *)first.data + 12);
    CHECK(auth_session_step(s, (const uint8_t *)sf, strlen(sf), &out, &done, err, sizeof(err)));
    CHECK(!done);
    CHECK(out.len > 9 && memcmp(out.data, "c=biws,r=", 9) == 0);
    /* the RFC's signature belongs to another nonce: the exchange fails, named */
    CHECK(!auth_session_step(s, (const uint8_t *)"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                             46, &out, &done, err, sizeof(err)));
    CHECK(!done);
    CHECK_STR_CONTAINS(err, "server signature does not match");
    CHECK(out.data == NULL);
    auth_session_free(s);
    auth_buf_free(&first);
    /* an empty user fails at the start, with nothing to free */
    c.username = "";
    CHECK(auth_session_new(auth_mech_find("SCRAM-SHA-512"), &c, &first, err, sizeof(err)) == NULL);
    CHECK(first.data == NULL);
}

/* The fixed IAM inputs: temporary credentials, a time, a host, a region. */
static struct auth_creds
iam_creds(time_t expiration)
{
    struct auth_creds c = {0};

    c.host = "b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com";
    c.aws_key_id = "ASIAKBUNITTEST000001";
    c.aws_secret = "unitTestSecretKey/0123456789abcdefghijkl";
    c.aws_session_token = "IQoJb3JpZ2luX2VjUNITTOKEN";
    c.aws_expiration = expiration;
    c.aws_region = "eu-west-1";
    c.user_agent = "kbridge/test";
    c.now = 1440938160; /* 20150830T123600Z */
    return c;
}

static void
test_auth_iam_expires(void)
{
    CHECK(msk_iam_mech_expires(1000, 0) == KB_MSK_IAM_EXPIRES);
    CHECK(msk_iam_mech_expires(1000, 1000 + 5000) == KB_MSK_IAM_EXPIRES);
    CHECK(msk_iam_mech_expires(1000, 1000 + 20) == 20);
    CHECK(msk_iam_mech_expires(1000, 1000) == 0);
    CHECK(msk_iam_mech_expires(1000, 999) == 0);
}

static void
test_auth_iam_session(void)
{
    const struct auth_mech *m = auth_mech_find("AWS_MSK_IAM");
    struct auth_creds c = iam_creds(1440938160 + 60);
    struct sigv4_creds sc = {c.aws_key_id, c.aws_secret, c.aws_session_token};
    struct auth_buf first = {0}, out = {0};
    struct auth_session *s;
    char err[256], *want = NULL;
    size_t want_len = 0;
    bool done = false;
    static const char answer[] = "{\"version\":\"2020_10_22\",\"request-id\":\"abc-123\"}";

    CHECK(m != NULL);
    s = m ? auth_session_new(m, &c, &first, err, sizeof(err)) : NULL;
    CHECK(s != NULL);
    /* the session's message is msk_iam_payload's, valid 60 s: the credentials' remaining life */
    CHECK(msk_iam_payload(&sc, c.host, c.aws_region, c.user_agent, c.now, 60, &want, &want_len, err,
                          sizeof(err)));
    CHECK(first.len == want_len && want && memcmp(first.data, want, want_len) == 0);
    CHECK_STR_CONTAINS(want ? want : "", "\"x-amz-expires\":\"60\"");
    free(want);
    CHECK(s && auth_session_step(s, (const uint8_t *)answer, strlen(answer), &out, &done, err,
                                 sizeof(err)));
    CHECK(done && out.len == 0);
    auth_session_free(s);
    auth_buf_free(&first);

    /* a server message that is not MSK's fails the exchange */
    s = m ? auth_session_new(m, &c, &first, err, sizeof(err)) : NULL;
    CHECK(s && !auth_session_step(s, (const uint8_t *)"{}", 2, &out, &done, err, sizeof(err)));
    auth_session_free(s);
    auth_buf_free(&first);

    /* expired credentials: no message, a reason without the secret */
    c = iam_creds(1440938160 - 5);
    CHECK(m && auth_session_new(m, &c, &first, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "expired");
    CHECK(strstr(err, c.aws_secret) == NULL);
}

static void
test_auth_oauthbearer_session(void)
{
    const struct auth_mech *m = auth_mech_find("OAUTHBEARER");
    struct auth_creds c = iam_creds(0);
    struct sigv4_creds sc = {c.aws_key_id, c.aws_secret, c.aws_session_token};
    struct auth_buf first = {0}, out = {0};
    struct auth_session *s;
    char err[256], *token = NULL, *msg = NULL;
    size_t msg_len = 0;
    bool done = false;
    static const char error_json[] = "{\"status\":\"invalid_token\"}";

    CHECK(m != NULL);
    s = m ? auth_session_new(m, &c, &first, err, sizeof(err)) : NULL;
    CHECK(s != NULL);
    CHECK(msk_iam_token(&sc, c.aws_region, c.user_agent, c.now, KB_MSK_IAM_EXPIRES, &token, err,
                        sizeof(err)));
    CHECK(token && msk_iam_oauth_message(token, &msg, &msg_len));
    CHECK(first.len == msg_len && msg && memcmp(first.data, msg, msg_len) == 0);
    free(token);
    free(msg);
    /* success: an empty server message */
    CHECK(s && auth_session_step(s, (const uint8_t *)"", 0, &out, &done, err, sizeof(err)));
    CHECK(done);
    auth_session_free(s);
    auth_buf_free(&first);

    /* RFC 7628 failure: the error JSON is answered with %x01, and is not the end */
    s = m ? auth_session_new(m, &c, &first, err, sizeof(err)) : NULL;
    done = true;
    CHECK(s && auth_session_step(s, (const uint8_t *)error_json, strlen(error_json), &out, &done,
                                 err, sizeof(err)));
    CHECK(!done && out.len == 1 && out.data && out.data[0] == 0x01);
    auth_buf_free(&out);
    /* a broker that then does not fail the exchange is wrong */
    CHECK(s && !auth_session_step(s, (const uint8_t *)"", 0, &out, &done, err, sizeof(err)));
    auth_session_free(s);
    auth_buf_free(&first);

    /* no credentials at all */
    c.aws_key_id = NULL;
    CHECK(m && auth_session_new(m, &c, &first, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "AWS credentials");
}

int
main(void)
{
    RUN(test_auth_mech_find_names);
    RUN(test_auth_plain_bytes);
    RUN(test_auth_plain_session);
    RUN(test_auth_scram_session_steps);
    RUN(test_auth_iam_expires);
    RUN(test_auth_iam_session);
    RUN(test_auth_oauthbearer_session);
    return TEST_DONE();
}
