/*
 * test_aws_conf.c - the aws_* / gcp_* keys through conf_load(): when the credentials layer is on,
 * the region taken from MSK host names, and provider settings that survive a reload unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/creds.h"
#include "aws/provider.h"
#include "conf/conf.h"
#include "test.h"

/* Writes text to a temporary file and loads it; NULL with err filled on failure. */
static struct kb_conf *
load(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/test_aws_conf_XXXXXX";
    int fd = mkstemp(path);
    struct kb_conf *c;
    FILE *f;

    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        snprintf(err, errlen, "mkstemp failed");
        return NULL;
    }
    fputs(text, f);
    fclose(f);
    c = conf_load(path, err, errlen);
    unlink(path);
    return c;
}

static void
test_aws_off_without_keys_but_region_known(void)
{
    char err[KB_CONF_ERR_MAX];
    struct kb_conf *c =
        load("[msk]\nbootstrap_servers = b-1.x.y.c2.kafka.ap-south-1.amazonaws.com:9098\n", err,
             sizeof(err));

    CHECK(c != NULL);
    if (c) {
        CHECK(!c->clusters[0].aws_used);
        CHECK(c->clusters[0].aws_credentials == KB_AWS_UNSET);
        CHECK(conf_aws_region(&c->clusters[0]) &&
              strcmp(conf_aws_region(&c->clusters[0]), "ap-south-1") == 0);
        conf_unref(c);
    }
}

static void
test_aws_on_with_any_key_and_key_region_wins(void)
{
    char err[KB_CONF_ERR_MAX];
    struct kb_conf *c = load("[msk]\nbootstrap_servers = b-1.x.y.c2.kafka.ap-south-1.amazonaws.com:"
                             "9098\naws_region = eu-central-1\naws_profile = msk\n",
                             err, sizeof(err));

    CHECK(c != NULL);
    if (c) {
        CHECK(c->clusters[0].aws_used);
        CHECK(strcmp(conf_aws_region(&c->clusters[0]), "eu-central-1") == 0);
        CHECK(strcmp(conf_aws_credentials_str(c->clusters[0].aws_credentials), "") == 0);
        conf_unref(c);
    }
}

static void
test_aws_region_required_only_when_on(void)
{
    char err[KB_CONF_ERR_MAX];
    struct kb_conf *c = load("[plain]\nbootstrap_servers = k.example.com:9093\n", err, sizeof(err));

    CHECK(c != NULL && conf_aws_region(&c->clusters[0]) == NULL);
    conf_unref(c);
    c = load("[plain]\nbootstrap_servers = k.example.com:9093\n\naws_credentials = default\n", err,
             sizeof(err));
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err, ":4: no AWS region for [plain]: set aws_region");
}

static void
test_aws_enum_message_lists_values(void)
{
    char err[KB_CONF_ERR_MAX];
    struct kb_conf *c = load("[msk]\nbootstrap_servers = b-1.x.y.c2.kafka.ap-south-1.amazonaws.com:"
                             "9098\naws_credentials = azure\n",
                             err, sizeof(err));

    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err,
                       "invalid aws_credentials 'azure' in [msk]: expected one of default|gcp");
}

static void
test_provider_matches_on_reload(void)
{
    char err[KB_CONF_ERR_MAX];
    const char *base = "[msk]\nbootstrap_servers = b-1.x.y.c2.kafka.ap-south-1.amazonaws.com:9098\n"
                       "aws_credentials = default\naws_role_session_name = one\n";
    struct kb_conf *a, *b, *d;
    struct aws_provider *p;

    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", "/nonexistent", 1);
    a = load(base, err, sizeof(err));
    b = load(base, err, sizeof(err));
    d = load("[msk]\nbootstrap_servers = b-1.x.y.c2.kafka.ap-south-1.amazonaws.com:9098\n"
             "aws_credentials = default\naws_role_session_name = two\n",
             err, sizeof(err));
    CHECK(a && b && d);
    if (a && b && d) {
        p = aws_provider_new(&a->clusters[0], err, sizeof(err));
        CHECK(p != NULL);
        if (p) {
            CHECK(aws_provider_matches(p, &b->clusters[0]));
            CHECK(!aws_provider_matches(p, &d->clusters[0]));
            aws_provider_free(p);
        }
    }
    conf_unref(a);
    conf_unref(b);
    conf_unref(d);
}

static void
test_provider_rereads_shared_files_on_reload(void)
{
    char err[KB_CONF_ERR_MAX], path[] = "/tmp/test_aws_creds_XXXXXX";
    const char *text = "[msk]\nbootstrap_servers = b-1.x.y.c2.kafka.ap-south-1.amazonaws.com:9098\n"
                       "aws_credentials = default\n";
    struct aws_provider_stats st;
    struct kb_conf *a = load(text, err, sizeof(err));
    struct aws_provider *p;
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    CHECK(a && f);
    if (!a || !f) {
        conf_unref(a);
        return;
    }
    fputs("[default]\naws_access_key_id = AKIAI44QH8DHBEXAMPLE\n"
          "aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY\n",
          f);
    fclose(f);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_PROFILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    p = aws_provider_new(&a->clusters[0], err, sizeof(err));
    CHECK(p != NULL);
    if (p) {
        CHECK(aws_provider_wait_first(p, 5000));
        aws_provider_stats(p, &st);
        CHECK(st.valid && strcmp(st.source, "shared-files") == 0);
        CHECK(!aws_provider_matches(p, &a->clusters[0]));
        aws_provider_free(p);
    }
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unlink(path);
    conf_unref(a);
}

int
main(void)
{
    RUN(test_aws_off_without_keys_but_region_known);
    RUN(test_aws_on_with_any_key_and_key_region_wins);
    RUN(test_aws_region_required_only_when_on);
    RUN(test_aws_enum_message_lists_values);
    RUN(test_provider_matches_on_reload);
    RUN(test_provider_rereads_shared_files_on_reload);
    return TEST_DONE();
}
