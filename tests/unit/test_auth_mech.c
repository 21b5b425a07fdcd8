/*
 * test_auth_mech.c - the mechanism table and session (auth/mech.h) and PLAIN (auth/plain.h):
 * lookup by Kafka's names, PLAIN's exact bytes, and a whole SCRAM-SHA-256 session driven
 * through the generic interface against RFC 7677's server messages (client nonce random, so
 * the session is expected to fail the server signature there, as it must).
 */
#include "auth/mech.h"

#include <string.h>

#include "auth/plain.h"
#include "test.h"

static void
test_auth_mech_find_names(void)
{
    CHECK(auth_mech_find("SCRAM-SHA-512") != NULL);
    CHECK(auth_mech_find("SCRAM-SHA-256") != NULL);
    CHECK(auth_mech_find("PLAIN") != NULL);
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

int
main(void)
{
    RUN(test_auth_mech_find_names);
    RUN(test_auth_plain_bytes);
    RUN(test_auth_plain_session);
    RUN(test_auth_scram_session_steps);
    return TEST_DONE();
}
