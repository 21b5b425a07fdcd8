/*
 * test_conf.c - conf/: values and defaults, host:port parsing, connect_to lookup, the dump
 * round-trip, refcounting, reload checks and error messages with line numbers, plus every
 * tests/conf bad_*.ini and good_*.ini case in-process. Run from the repo root, or pass the
 * tests/conf directory as argv[1].
 */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/secret.h"
#include "test.h"

static char tmp_dir[] = "/tmp/kbridge-test-conf-XXXXXX"; /* fixtures written by the tests */
static const char *conf_dir = "tests/conf";              /* the data-driven cases */

/* Writes text to tmp_dir/name; returns the path in a static buffer. */
static const char *
write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* Loads text written to tmp_dir/name; err gets the message on failure. */
static struct kb_conf *
load_text(const char *name, const char *text, char *err)
{
    return conf_load(write_file(name, text), err, KB_CONF_ERR_MAX);
}

/* Loads text that must fail, and checks the message contains want and is one line. */
static void
check_error(const char *text, const char *want)
{
    char err[KB_CONF_ERR_MAX] = "";
    struct kb_conf *c = load_text("err.ini", text, err);

    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err, want);
    CHECK(strchr(err, '\n') == NULL);
    conf_unref(c);
}

/* Loads a file that must load: a name under conf_dir, or a path with a '/'. */
static struct kb_conf *
load_good(const char *name)
{
    char err[KB_CONF_ERR_MAX] = "", path[512];
    struct kb_conf *c;

    snprintf(path, sizeof(path), "%s/%s", conf_dir, name);
    c = conf_load(strchr(name, '/') ? name : path, err, sizeof(err));
    CHECK_STR_CONTAINS(c ? "loaded" : err, "loaded");
    return c;
}

static void
test_conf_defaults(void)
{
    struct kb_conf *c = load_good("good_minimal.ini");
    const struct kb_cluster_conf *cc;

    if (!c) {
        return;
    }
    CHECK_EQ_INT(c->refcount, 1);
    CHECK_STR_CONTAINS(c->path, "good_minimal.ini");
    CHECK_EQ_INT(c->log_level, KB_LOG_INFO);
    CHECK_EQ_INT(c->log_format, KB_LOG_TEXT);
    CHECK(!c->has_admin);
    CHECK_EQ_INT(c->max_frame_bytes, 104857600);
    CHECK_EQ_INT(c->n_clusters, 1);
    cc = &c->clusters[0];
    CHECK(strcmp(cc->name, "msk") == 0);
    CHECK_EQ_INT(cc->line, 2);
    CHECK_EQ_INT(cc->n_bootstrap, 1);
    CHECK(strcmp(cc->bootstrap[0].host, "b-1.example.com") == 0);
    CHECK_EQ_INT(cc->bootstrap[0].port, 9094);
    CHECK(!cc->bootstrap[0].is_ip);
    CHECK(strcmp(cc->listen.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cc->listen.port, 9092);
    CHECK(cc->listen.is_ip);
    CHECK(strcmp(cc->advertised_host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cc->broker_port_base, 9093);
    CHECK_EQ_INT(cc->max_node_id, 99);
    CHECK(cc->tls);
    CHECK_EQ_INT(cc->tls_verify, KB_VERIFY_FULL);
    CHECK(!cc->tls_ca_file && !cc->tls_cert_file && !cc->tls_key_file && !cc->tls_sni);
    CHECK(!cc->connect_to);
    CHECK_EQ_INT(cc->n_connect_to, 0);
    CHECK_EQ_INT(cc->connect_timeout_ms, 10000);
    CHECK_EQ_INT(cc->line_tls_ca_file + cc->line_tls_cert_file + cc->line_tls_key_file, 0);
    conf_unref(c);
}

static void
test_conf_full_values(void)
{
    struct kb_conf *c = load_good("good_full.ini");
    const struct kb_cluster_conf *cc;
    char buf[300];

    if (!c) {
        return;
    }
    CHECK_EQ_INT(c->log_level, KB_LOG_DEBUG);
    CHECK_EQ_INT(c->log_format, KB_LOG_JSON);
    CHECK(c->has_admin);
    CHECK(strcmp(conf_hostport_str(&c->admin_listen, buf, sizeof(buf)), "127.0.0.1:9644") == 0);
    CHECK_EQ_INT(c->max_frame_bytes, 1048576);
    cc = &c->clusters[0];
    CHECK(strcmp(cc->name, "msk-prod") == 0);
    CHECK_EQ_INT(cc->line, 8);
    CHECK_EQ_INT(cc->n_bootstrap, 3);
    CHECK(strcmp(cc->bootstrap[1].host, "b-2.example.com") == 0);
    CHECK(strcmp(cc->bootstrap[2].host, "b-3.example.com") == 0);
    CHECK_EQ_INT(cc->listen.port, 19092);
    CHECK(strcmp(cc->advertised_host, "localhost") == 0);
    CHECK_EQ_INT(cc->broker_port_base, 19100);
    CHECK_EQ_INT(cc->max_node_id, 9);
    CHECK(strcmp(cc->tls_ca_file, "/etc/ssl/certs/ca-certificates.crt") == 0);
    CHECK_EQ_INT(cc->line_tls_ca_file, 15);
    CHECK_EQ_INT(cc->line_tls_cert_file, 17); /* set, to nothing */
    CHECK(!cc->tls_cert_file && !cc->tls_key_file);
    CHECK(strcmp(cc->tls_sni, "kafka.example.com") == 0);
    CHECK_EQ_INT(cc->n_connect_to, 2);
    CHECK_EQ_INT(cc->connect_timeout_ms, 2500);
    conf_unref(c);
}

static void
test_conf_ipv6(void)
{
    char buf[300];
    struct kb_conf *c = load_good("good_ipv6.ini");
    const struct kb_cluster_conf *cc;

    if (!c) {
        return;
    }
    cc = &c->clusters[0];
    CHECK(strcmp(cc->bootstrap[0].host, "::1") == 0);
    CHECK(cc->bootstrap[0].is_ip);
    CHECK(strcmp(conf_hostport_str(&cc->bootstrap[1], buf, sizeof(buf)), "[2001:db8::10]:9094") ==
          0);
    CHECK(strcmp(conf_hostport_str(&cc->listen, buf, sizeof(buf)), "[::1]:9092") == 0);
    CHECK(strcmp(cc->advertised_host, "::1") == 0);
    CHECK_EQ_INT(cc->broker_port_base, 9093);
    conf_unref(c);
}

static void
test_conf_hostport_parse(void)
{
    static const struct {
        const char *in;   /* input */
        const char *host; /* expected host, or NULL when it must fail */
        int port;         /* expected port */
        int is_ip;        /* expected is_ip */
        const char *why;  /* failure reason substring */
    } cases[] = {
        {"b-1.x.kafka.ap-south-1.amazonaws.com:9094", "b-1.x.kafka.ap-south-1.amazonaws.com", 9094,
         0, NULL},
        {"127.0.0.1:1", "127.0.0.1", 1, 1, NULL},
        {"[::1]:65535", "::1", 65535, 1, NULL},
        {"[fe80::1:2]:9094", "fe80::1:2", 9094, 1, NULL},
        {"localhost:9092", "localhost", 9092, 0, NULL},
        {"host", NULL, 0, 0, "missing port: expected host:port"},
        {"host:", NULL, 0, 0, "missing port number after ':'"},
        {"host:0", NULL, 0, 0, "port '0': out of range 1..65535"},
        {"host:65536", NULL, 0, 0, "port '65536': out of range 1..65535"},
        {"host:99999999999999999999", NULL, 0, 0, "out of range 1..65535"},
        {"host:9o92", NULL, 0, 0, "port '9o92': not a whole number"},
        {"host:-1", NULL, 0, 0, "port '-1': out of range"},
        {"host:+1", NULL, 0, 0, "not a whole number"},
        {":9092", NULL, 0, 0, "empty host"},
        {"::1:9094", NULL, 0, 0, "an IPv6 address goes in brackets: write [::1]:9094"},
        {"2001:db8::1:9094", NULL, 0, 0, "write [2001:db8::1]:9094"},
        {"fe80::1", NULL, 0, 0, "missing port: write the IPv6 address in brackets"},
        {"a:b:c", NULL, 0, 0, "more than one ':'"},
        {"[::1]", NULL, 0, 0, "missing port: expected [v6]:port"},
        {"[::1]9094", NULL, 0, 0, "expected ':port' after ']'"},
        {"[::1:9094", NULL, 0, 0, "missing ']'"},
        {"[example.com]:9094", NULL, 0, 0, "'example.com' is not an IPv6 address"},
        {"bad host:9094", NULL, 0, 0, "invalid character ' ' in host 'bad host'"},
    };
    char why[256], big[400];
    struct kb_hostport hp;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool ok = conf_parse_hostport(cases[i].in, &hp, why, sizeof(why));

        if (cases[i].host) {
            CHECK(ok);
            CHECK(ok && strcmp(hp.host, cases[i].host) == 0);
            CHECK_EQ_INT(ok ? hp.port : -1, cases[i].port);
            CHECK_EQ_INT(ok ? hp.is_ip : -1, cases[i].is_ip);
        } else {
            CHECK(!ok);
            CHECK_STR_CONTAINS(why, cases[i].why);
        }
    }
    memset(big, 'a', 300);
    strcpy(big + 300, ":9094");
    CHECK(!conf_parse_hostport(big, &hp, why, sizeof(why)));
    CHECK_STR_CONTAINS(why, "longer than 255 characters");
}

static void
test_conf_hostport_str(void)
{
    struct kb_hostport v4 = {"10.0.0.1", 9092, true}, v6 = {"::1", 9094, true};
    char buf[300], tiny[6];

    CHECK(strcmp(conf_hostport_str(&v4, buf, sizeof(buf)), "10.0.0.1:9092") == 0);
    CHECK(strcmp(conf_hostport_str(&v6, buf, sizeof(buf)), "[::1]:9094") == 0);
    CHECK(strcmp(conf_hostport_str(&v4, tiny, sizeof(tiny)), "10.0.") == 0);
}

static void
test_conf_connect_target(void)
{
    char buf[300];
    struct kb_conf *c = load_good("good_full.ini");
    struct kb_hostport b1 = {"B-1.EXAMPLE.COM", 9094, false};
    struct kb_hostport b2 = {"b-2.example.com", 9094, false};
    struct kb_hostport b3 = {"b-3.example.com", 9094, false};
    struct kb_hostport b1x = {"b-1.example.com", 9095, false};

    if (!c) {
        return;
    }
    CHECK(strcmp(conf_hostport_str(conf_connect_target(&c->clusters[0], &b1), buf, sizeof(buf)),
                 "127.0.0.1:29094") == 0);
    CHECK(strcmp(conf_hostport_str(conf_connect_target(&c->clusters[0], &b2), buf, sizeof(buf)),
                 "[::1]:29094") == 0);
    CHECK(conf_connect_target(&c->clusters[0], &b3) == &b3);
    CHECK(conf_connect_target(&c->clusters[0], &b1x) == &b1x);
    conf_unref(c);
}

/* Dumps c into tmp_dir/name and returns the text after the first (path) line; caller frees. */
static char *
dump_text(const struct kb_conf *c, const char *name)
{
    const char *path = write_file(name, "");
    FILE *f = fopen(path, "w");
    char *text = calloc(1, 65536), *nl;
    size_t n;

    if (!f || !text) {
        free(text);
        if (f) {
            fclose(f);
        }
        return NULL;
    }
    conf_dump(c, f);
    fclose(f);
    f = fopen(path, "r");
    n = f ? fread(text, 1, 65535, f) : 0;
    text[n] = '\0';
    if (f) {
        fclose(f);
    }
    nl = strchr(text, '\n');
    memmove(text, nl ? nl + 1 : text, strlen(nl ? nl + 1 : text) + 1);
    return text;
}

/* Load, dump, load the dump, dump again: both dumps must match. */
static void
check_roundtrip(const char *path)
{
    char dumped[512];
    struct kb_conf *a = load_good(path), *b;
    char *ta, *tb;

    if (!a) {
        return;
    }
    ta = dump_text(a, "dump1.ini");
    snprintf(dumped, sizeof(dumped), "%s/dump1.ini", tmp_dir);
    b = load_good(dumped);
    tb = b ? dump_text(b, "dump2.ini") : NULL;
    CHECK(ta && tb && strcmp(ta, tb) == 0);
    CHECK_STR_CONTAINS(ta, "\n[global]\n");
    CHECK_STR_CONTAINS(ta, "tls_verify = ");
    free(ta);
    free(tb);
    conf_unref(a);
    conf_unref(b);
}

/* The IAM mechanisms: any case, no user name, the AWS layer on, the region from the host. */
static void
test_conf_iam(void)
{
    struct kb_conf *c = load_good("good_iam_msk.ini");

    CHECK(c != NULL);
    if (c) {
        CHECK(c->clusters[0].sasl_mechanism == KB_SASL_AWS_MSK_IAM);
        CHECK(c->clusters[0].aws_used);
        CHECK(c->clusters[0].sasl_secret == NULL);
        CHECK(strcmp(conf_aws_region(&c->clusters[0]), "eu-west-1") == 0);
        CHECK(c->clusters[0].aws_provider == NULL);
        conf_unref(c);
    }
    c = load_good("good_iam_oauthbearer.ini");
    CHECK(c != NULL);
    if (c) {
        CHECK(c->clusters[0].sasl_mechanism == KB_SASL_OAUTHBEARER);
        CHECK(strcmp(conf_sasl_mechanism_str(c->clusters[0].sasl_mechanism), "OAUTHBEARER") == 0);
        CHECK(strcmp(conf_aws_region(&c->clusters[0]), "us-east-1") == 0);
        conf_unref(c);
    }
}

static void
test_conf_dump_roundtrip(void)
{
    static const char *const names[] = {
        "good_minimal.ini",      "good_full.ini",           "good_ipv6.ini",
        "good_two_clusters.ini", "good_tls_off.ini",        "good_comments.ini",
        "good_long_line.ini",    "good_sasl_scram.ini",     "good_sasl_json.ini",
        "good_iam_msk.ini",      "good_iam_oauthbearer.ini"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        check_roundtrip(names[i]);
    }
    check_roundtrip("conf/kbridge.ini");
    check_roundtrip("examples/msk.ini");
}

static void
test_conf_dump_format(void)
{
    struct kb_conf *c = load_good("good_full.ini");
    char *t = c ? dump_text(c, "dump.ini") : NULL;

    CHECK(t != NULL);
    CHECK_STR_CONTAINS(t, "[global]\nadmin_listen = 127.0.0.1:9644\nbuffer_high_bytes = 1048576\n"
                          "buffer_low_bytes = 262144\ndrain_timeout_ms = 30000\n"
                          "log_format = json\n"
                          "log_level = debug\nmax_frame_bytes = 1048576\n");
    CHECK_STR_CONTAINS(t, "bootstrap_servers = b-1.example.com:9094,b-2.example.com:9094,"
                          "b-3.example.com:9094\n");
    CHECK_STR_CONTAINS(t, "connect_to = b-1.example.com:9094=127.0.0.1:29094,"
                          "b-2.example.com:9094=[::1]:29094\n");
    CHECK_STR_CONTAINS(t, "tls = on\ntls_ca_file = /etc/ssl/certs/ca-certificates.crt\n"
                          "tls_cert_file =\n");
    free(t);
    conf_unref(c);
}

static void
test_conf_refcount(void)
{
    struct kb_conf *c = load_good("good_two_clusters.ini");

    if (!c) {
        return;
    }
    CHECK(conf_ref(c) == c);
    CHECK_EQ_INT(c->refcount, 2);
    conf_unref(c);
    CHECK_EQ_INT(c->refcount, 1);
    conf_unref(c); /* freed: ASan reports a leak or a use-after-free otherwise */
    conf_unref(NULL);
}

static void
test_conf_error_lines(void)
{
    char err[KB_CONF_ERR_MAX] = "", path[512];
    struct kb_conf *c;

    check_error("[global]\n\n; comment\nlog_level = info\n\n[a]\nbootstrap_servers = x:1\n"
                "listen = 127.0.0.1:9092\n\n[b]\nbootstrap_servers = y:1\nlisten = 127.0.0.1:9192\n"
                "connect_timeout = 5000\n",
                "err.ini:13: unknown key 'connect_timeout' in [b] (did you mean "
                "'connect_timeout_ms'?)");
    check_error("[msk]\nbootstrap.servers = x:1\n",
                "err.ini:2: unknown key 'bootstrap.servers' in [msk] (did you mean "
                "'bootstrap_servers'?)");
    check_error("[msk]\nbootstrap_servers = x:1\nListen = 127.0.0.1:9000\n",
                "err.ini:3: unknown key 'Listen' in [msk] (did you mean 'listen'?)");
    check_error("[msk]\nbootstrap_servers = x:1\nlisten_port = 9000\n",
                "err.ini:3: unknown key 'listen_port' in [msk] (did you mean 'listen'?)");
    check_error("[a]\nbootstrap_servers = x:1\n[b]\n",
                "err.ini:3: cluster [b] has no bootstrap_servers");
    check_error("[msk]\nbootstrap_servers = x:1\nmax_node_id = 65535\n",
                "err.ini:3: invalid max_node_id '65535' in [msk]: out of range 0..65534");
    check_error("[msk]\nbootstrap_servers = x:1\nlisten = 127.0.0.1:65535\n",
                "err.ini:3: broker_port_base 65536 + max_node_id 99 in [msk] puts node-id ports "
                "above 65535");
    check_error("[msk]\nbootstrap_servers = x:1\nmax_node_id = 0\nlisten = 127.0.0.1:9092\n"
                "broker_port_base = 9092\n",
                "err.ini:5: port clash between broker ports 9092 of [msk] and listen port 9092");
    check_error("[msk]\nbootstrap_servers = x:1\nmax_node_id = 65000\n",
                "err.ini:3: broker_port_base 9093 + max_node_id 65000");
    check_error("[global]\nadmin_listen = 127.0.0.1:9092\n[msk]\nbootstrap_servers = x:1\n"
                "listen = 127.0.0.1:9092\n",
                "err.ini:5: port clash between listen port 9092 of [msk] and admin_listen port "
                "9092 in [global] (line 2)");
    check_error("[abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd]\n",
                "err.ini:1: invalid section name");
    check_error("[]\n", "err.ini:1: invalid section name '[]'");
    check_error("[msk] x\n", "err.ini:1: unexpected text ' x' after section header");
    check_error("\x01\n", "err.ini:1: expected 'key = value' or '[section]'");

    snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmp_dir);
    c = conf_load(path, err, sizeof(err));
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err, "does-not-exist.ini: cannot open: No such file or directory");
    CHECK(strstr(err, ".ini:") == NULL || strstr(err, ".ini: ") != NULL);
    c = conf_load(tmp_dir, err, sizeof(err));
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err, ": cannot read: Is a directory");
}

static void
test_conf_line_too_long(void)
{
    size_t n = 4200, i;
    char *text = malloc(n + 64);

    if (!text) {
        return;
    }
    strcpy(text, "[msk]\nbootstrap_servers = ");
    for (i = strlen(text); i < n; i++) {
        text[i] = 'a';
    }
    strcpy(text + n, ":9094\n");
    check_error(text, "err.ini:2: line too long (4199 characters, at most 4096)");
    free(text);
}

static void
test_conf_nul_byte(void)
{
    static const char text[] = "[msk]\nbootstrap_servers = x:1\nlisten = a\0b\n";
    char err[KB_CONF_ERR_MAX] = "";
    const char *path = write_file("err.ini", "");
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    if (!f) {
        return;
    }
    fwrite(text, 1, sizeof(text) - 1, f);
    fclose(f);
    CHECK(conf_load(path, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "err.ini:3: NUL byte in line");
}

static void
test_conf_small_err_buffer(void)
{
    char err[12];
    struct kb_conf *c;

    memset(err, 'x', sizeof(err));
    c = conf_load("/nonexistent/kbridge.ini", err, sizeof(err));
    CHECK(c == NULL);
    CHECK(strcmp(err, "/nonexisten") == 0);
    CHECK(conf_load("/nonexistent/kbridge.ini", NULL, 0) == NULL);
}

static void
test_conf_mtls_files(void)
{
    char err[KB_CONF_ERR_MAX] = "", text[1200], cert[512], key[512];
    struct kb_conf *c;

    snprintf(cert, sizeof(cert), "%s", write_file("client.pem", "not parsed by conf/\n"));
    snprintf(key, sizeof(key), "%s", write_file("client.key", "not parsed by conf/\n"));
    snprintf(text, sizeof(text),
             "[msk]\nbootstrap_servers = x:1\ntls_cert_file = %s\n"
             "tls_key_file = %s\n",
             cert, key);
    c = load_text("mtls.ini", text, err);
    CHECK(c != NULL);
    if (c) {
        CHECK(strcmp(c->clusters[0].tls_cert_file, cert) == 0);
        CHECK(strcmp(c->clusters[0].tls_key_file, key) == 0);
        CHECK_EQ_INT(c->clusters[0].line_tls_cert_file, 3);
        CHECK_EQ_INT(c->clusters[0].line_tls_key_file, 4);
    }
    conf_unref(c);
    if (geteuid() != 0) { /* root reads anything */
        chmod(key, 0);
        c = load_text("mtls.ini", text, err);
        CHECK(c == NULL);
        CHECK_STR_CONTAINS(err, "mtls.ini:4: cannot read tls_key_file");
        CHECK_STR_CONTAINS(err, "Permission denied");
        conf_unref(c);
    }
}

static void
test_conf_tls_off(void)
{
    struct kb_conf *c = load_good("good_tls_off.ini");

    if (!c) {
        return;
    }
    CHECK(!c->clusters[0].tls);
    CHECK_EQ_INT(c->clusters[0].tls_verify, KB_VERIFY_NONE);
    CHECK(c->clusters[0].tls_cert_file != NULL);
    CHECK(c->clusters[0].tls_key_file == NULL);
    conf_unref(c);
}

static void
test_conf_comments_and_empty_values(void)
{
    struct kb_conf *c = load_good("good_comments.ini");
    const struct kb_cluster_conf *cc;

    if (!c) {
        return;
    }
    cc = &c->clusters[0];
    CHECK_EQ_INT(c->log_level, KB_LOG_WARN);
    CHECK_EQ_INT(c->log_format, KB_LOG_TEXT);
    CHECK(strcmp(cc->name, "msk") == 0);
    CHECK_EQ_INT(cc->line, 6);
    CHECK(strcmp(cc->bootstrap[0].host, "b-1.example.com") == 0);
    CHECK_EQ_INT(cc->tls_verify, KB_VERIFY_CHAIN);
    CHECK(cc->tls_ca_file == NULL);
    CHECK(strcmp(cc->advertised_host, "127.0.0.1") == 0);
    CHECK_EQ_INT(cc->broker_port_base, 9093);
    CHECK_EQ_INT(cc->n_connect_to, 0);
    conf_unref(c);
}

static void
test_conf_needs_restart(void)
{
    const char *base = "[global]\nlog_level = info\n[msk]\nbootstrap_servers = x:1\n";
    char err[KB_CONF_ERR_MAX] = "", why[256] = "";
    struct kb_conf *old = load_text("old.ini", base, err), *fresh;

    CHECK(old != NULL);
    if (!old) {
        return;
    }
    fresh = load_text("new.ini",
                      "[global]\nlog_level = debug\n[msk]\nbootstrap_servers = y:2\n"
                      "tls_verify = chain\n",
                      err);
    CHECK(fresh && !conf_needs_restart(old, fresh, why, sizeof(why)));
    conf_unref(fresh);
    /* Listener settings and the set of clusters are reloadable. */
    fresh = load_text("new.ini",
                      "[msk]\nbootstrap_servers = x:1\nlisten = 127.0.0.1:9000\n"
                      "broker_port_base = 9093\n[b]\nbootstrap_servers = x:1\n"
                      "listen = 127.0.0.1:9500\n",
                      err);
    CHECK(fresh && !conf_needs_restart(old, fresh, why, sizeof(why)));
    conf_unref(fresh);
    fresh = load_text("new.ini",
                      "[global]\nadmin_listen = 127.0.0.1:9644\n[msk]\n"
                      "bootstrap_servers = x:1\n",
                      err);
    CHECK(fresh && conf_needs_restart(old, fresh, why, sizeof(why)));
    CHECK_STR_CONTAINS(why, "admin_listen in [global] changed from '' to '127.0.0.1:9644'");
    conf_unref(fresh);
    conf_unref(old);
}

static void
test_conf_many_clusters(void)
{
    char text[4096], err[KB_CONF_ERR_MAX] = "", why[256] = "";
    struct kb_conf *c;
    size_t used = 0, i;

    for (i = 0; i < 20; i++) {
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "[c%zu]\nbootstrap_servers = b-%zu.example.com:9094\n"
                                 "listen = 127.0.0.1:%zu\nmax_node_id = 9\n",
                                 i, i, 10000 + i * 20);
    }
    c = load_text("many.ini", text, err);
    CHECK_STR_CONTAINS(c ? "loaded" : err, "loaded");
    if (!c) {
        return;
    }
    CHECK_EQ_INT(c->n_clusters, 20);
    CHECK(strcmp(c->clusters[19].name, "c19") == 0);
    CHECK_EQ_INT(c->clusters[19].line, 77);
    CHECK_EQ_INT(c->clusters[19].broker_port_base, 10381);
    CHECK(!conf_needs_restart(c, c, why, sizeof(why)));
    conf_unref(c);
}

static void
test_conf_enum_names(void)
{
    CHECK(strcmp(conf_log_level_str(KB_LOG_ERROR), "error") == 0);
    CHECK(strcmp(conf_log_level_str(KB_LOG_DEBUG), "debug") == 0);
    CHECK(strcmp(conf_log_level_str((enum kb_log_level)42), "?") == 0);
    CHECK(strcmp(conf_tls_verify_str(KB_VERIFY_CHAIN), "chain") == 0);
    CHECK(strcmp(conf_tls_verify_str((enum kb_tls_verify)7), "?") == 0);
}

/* Every tests/conf/NAME.ini with the prefix: bad ones must fail with their "; expect:" line. */
static int
check_fixtures(const char *prefix)
{
    char err[KB_CONF_ERR_MAX], path[1024], first[512];
    DIR *d = opendir(conf_dir);
    struct dirent *e;
    int n = 0;

    CHECK(d != NULL);
    while (d && (e = readdir(d))) {
        struct kb_conf *c;
        FILE *f;
        char *nl;

        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || !strstr(e->d_name, ".ini")) {
            continue;
        }
        n++;
        snprintf(path, sizeof(path), "%s/%s", conf_dir, e->d_name);
        err[0] = '\0';
        c = conf_load(path, err, sizeof(err));
        if (strcmp(prefix, "good_") == 0) {
            CHECK_STR_CONTAINS(c ? e->d_name : err, e->d_name);
            conf_unref(c);
            continue;
        }
        CHECK(c == NULL);
        conf_unref(c);
        f = fopen(path, "r");
        first[0] = '\0';
        if (f && !fgets(first, sizeof(first), f)) {
            first[0] = '\0';
        }
        if (f) {
            fclose(f);
        }
        nl = strchr(first, '\n');
        if (nl) {
            *nl = '\0';
        }
        CHECK(strncmp(first, "; expect: ", 10) == 0);
        CHECK_STR_CONTAINS(err, first + 10);
        CHECK(strncmp(err, path, strlen(path)) == 0 && strchr(err, '\n') == NULL);
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void
test_conf_bad_files(void)
{
    CHECK(check_fixtures("bad_") >= 25);
}

static void
test_conf_good_files(void)
{
    struct kb_conf *c;

    CHECK(check_fixtures("good_") >= 5);
    conf_unref(load_good("conf/kbridge.ini"));
    c = load_good("examples/msk.ini");
    if (!c) {
        return;
    }
    CHECK(strcmp(c->clusters[0].name, "msk-prod") == 0);
    CHECK_EQ_INT(c->clusters[0].n_bootstrap, 3);
    CHECK(strcmp(c->clusters[0].bootstrap[2].host,
                 "b-3.ecommercekafka.13b4qv.c2.kafka.ap-south-1.amazonaws.com") == 0);
    CHECK_EQ_INT(c->clusters[0].listen.port, 9092);
    CHECK(c->clusters[0].tls && c->clusters[0].tls_ca_file == NULL);
    CHECK_EQ_INT(c->clusters[0].tls_verify, KB_VERIFY_FULL);
    conf_unref(c);
}

/* Removes the fixtures this run wrote. */
static void
cleanup_tmp(void)
{
    static const char *const names[] = {"err.ini",    "dump1.ini",  "dump2.ini", "dump.ini",
                                        "client.pem", "client.key", "mtls.ini",  "old.ini",
                                        "new.ini",    "many.ini"};
    char path[512];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

/* A cluster with SASL, its password file written to tmp_dir with mode. */
static struct kb_conf *
load_sasl(const char *mech, const char *user_line, const char *secret_text, mode_t mode, char *err)
{
    char text[2048], pw[512];

    snprintf(pw, sizeof(pw), "%s", write_file("pw", secret_text));
    chmod(pw, mode);
    snprintf(text, sizeof(text),
             "[msk]\nbootstrap_servers = b-1.example.com:9096\nsasl_mechanism = %s\n%s"
             "sasl_password_file = %s\n",
             mech, user_line, pw);
    return load_text("sasl.ini", text, err);
}

static void
test_conf_sasl_values(void)
{
    char err[KB_CONF_ERR_MAX] = "";
    struct kb_conf *c =
        load_sasl("SCRAM-SHA-512", "sasl_username = kb\n", "kbsecret-1\nignored\n", 0600, err);
    const struct kb_cluster_conf *cc = c ? &c->clusters[0] : NULL;
    char warn[512];

    CHECK_STR_CONTAINS(c ? "loaded" : err, "loaded");
    if (!cc) {
        return;
    }
    CHECK_EQ_INT(cc->sasl_mechanism, KB_SASL_SCRAM_SHA_512);
    CHECK(strcmp(conf_sasl_mechanism_str(cc->sasl_mechanism), "SCRAM-SHA-512") == 0);
    CHECK(strcmp(cc->sasl_username, "kb") == 0);
    CHECK(cc->sasl_secret && strcmp(cc->sasl_secret->password, "kbsecret-1") == 0);
    CHECK(cc->sasl_secret && cc->sasl_secret->username == NULL);
    CHECK(!conf_cluster_warning(cc, warn, sizeof(warn)));
    conf_unref(c);
    /* mechanism names are matched without case and printed as Kafka spells them */
    c = load_sasl("plain", "sasl_username = kb\n", "kbsecret-2\r\n", 0400, err);
    CHECK(c && c->clusters[0].sasl_mechanism == KB_SASL_PLAIN);
    CHECK(c && strcmp(c->clusters[0].sasl_secret->password, "kbsecret-2") == 0);
    conf_unref(c);
    /* no sasl keys: passthrough, nothing loaded */
    c = load_good("good_minimal.ini");
    CHECK(c && c->clusters[0].sasl_mechanism == KB_SASL_NONE && !c->clusters[0].sasl_secret);
    conf_unref(c);
}

static void
test_conf_sasl_json_form(void)
{
    char err[KB_CONF_ERR_MAX] = "";
    struct kb_conf *c =
        load_sasl("SCRAM-SHA-256", "",
                  " {\"arn\": \"x\\/y\", \"username\":\"al\\u0069ce\",\n \"password\" : "
                  "\"kbsecret-\\\"q\\\\\\u00e9\\ud83d\\ude00\\t\"}\n",
                  0600, err);

    CHECK_STR_CONTAINS(c ? "loaded" : err, "loaded");
    if (!c) {
        return;
    }
    CHECK(strcmp(c->clusters[0].sasl_username, "alice") == 0);
    CHECK(strcmp(c->clusters[0].sasl_secret->password,
                 "kbsecret-\"q\\\xc3\xa9\xf0\x9f\x98\x80\t") == 0);
    conf_unref(c);
    /* the same user in both places is fine */
    c = load_sasl("SCRAM-SHA-256", "sasl_username = alice\n",
                  "{\"username\": \"alice\", \"password\": \"kbsecret\"}", 0600, err);
    CHECK(c != NULL);
    conf_unref(c);
}

static void
test_conf_sasl_json_refused(void)
{
    static const struct {
        const char *json;
        const char *why;
    } cases[] = {
        {"{\"password\": \"a\", \"password\": \"b\"}", "duplicate key \"password\""},
        {"{\"password\": \"a\\x\"}", "unknown escape at offset 15"},
        {"{\"password\": \"a\\u12\"}", "bad \\u escape"},
        {"{\"password\": \"a\\ud83d\"}", "unpaired surrogate"},
        {"{\"password\": \"a\\ude00\"}", "unpaired surrogate"},
        {"{\"password\": \"a\\u0000\"}", "NUL in \\u escape"},
        {"{\"password\": \"a\tb\"}", "control character in a string at offset 15"},
        {"{\"password\": \"kbsecret\"} x", "unexpected bytes after the JSON object"},
        {"{\"password\": \"kbsecret", "unterminated string"},
        {"{\"password\": 12}", "expected a string at offset 13"},
        {"{\"password\" \"x\"}", "expected ':'"},
        {"{\"password\": \"x\" \"y\": \"z\"}", "expected ',' or '}'"},
        {"{}", "no non-empty \"password\""},
        {"{\"password\": \"\"}", "no non-empty \"password\""},
        {"{\"username\": \"\", \"password\": \"kbsecret\"}", "empty \"username\""},
        {"{\"username\": \"a\\nb\", \"password\": \"kbsecret\"}", "control character"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[KB_CONF_ERR_MAX] = "";
        struct kb_conf *c = load_sasl("SCRAM-SHA-512", "", cases[i].json, 0600, err);

        CHECK(c == NULL);
        CHECK_STR_CONTAINS(err, cases[i].why);
        CHECK(strstr(err, "kbsecret") == NULL);
        CHECK_STR_CONTAINS(err, "sasl.ini:4: ");
        CHECK_STR_CONTAINS(err, "sasl_password_file '");
        conf_unref(c);
    }
}

static void
test_conf_sasl_warning_and_dump(void)
{
    char err[KB_CONF_ERR_MAX] = "", warn[512] = "";
    struct kb_conf *c =
        load_sasl("SCRAM-SHA-512", "sasl_username = kb\n", "kbsecret-dump\n", 0640, err);
    char *t = c ? dump_text(c, "dump.ini") : NULL;

    CHECK(c != NULL);
    if (!c) {
        return;
    }
    CHECK(conf_cluster_warning(&c->clusters[0], warn, sizeof(warn)));
    CHECK_STR_CONTAINS(warn, "readable by group or others (mode 640)");
    CHECK(t != NULL);
    CHECK_STR_CONTAINS(t, "sasl_mechanism = SCRAM-SHA-512\nsasl_password_file = ");
    CHECK_STR_CONTAINS(t, "sasl_username = kb\n");
    CHECK_STR_CONTAINS(t, "; warning: sasl_password_file");
    CHECK(t && strstr(t, "kbsecret") == NULL);
    free(t);
    conf_unref(c);
}

static void
test_conf_sasl_reloadable(void)
{
    char err[KB_CONF_ERR_MAX] = "", why[512] = "";
    struct kb_conf *a = load_good("good_minimal.ini");
    struct kb_conf *b = load_sasl("PLAIN", "sasl_username = kb\n", "kbsecret\n", 0600, err);

    CHECK(a && b);
    if (a && b) {
        CHECK(!conf_needs_restart(a, b, why, sizeof(why)));
        CHECK(!conf_needs_restart(b, a, why, sizeof(why)));
    }
    conf_unref(a);
    conf_unref(b);
}

static void
test_conf_secret_load_direct(void)
{
    char err[256] = "";
    struct secret *s;
    char big[KB_SECRET_FILE_MAX + 2];

    CHECK(secret_load(tmp_dir, err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "not a regular file");
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(secret_load(write_file("big", big), err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "larger than 65536 bytes");
    big[KB_SECRET_FILE_MAX] = '\0'; /* exactly the limit is fine */
    s = secret_load(write_file("big", big), err, sizeof(err));
    CHECK(s && strlen(s->password) == KB_SECRET_FILE_MAX);
    secret_free(s);
    s = secret_load(write_file("pw0", "no newline"), err, sizeof(err));
    CHECK(s && strcmp(s->password, "no newline") == 0);
    /* on pages of its own (kept out of core dumps), not on the heap */
    CHECK(s && s->map_len > 0 && (uintptr_t)s->password % (uintptr_t)sysconf(_SC_PAGESIZE) == 0);
    secret_free(s);
    CHECK(secret_load(write_file("pw1", "\n"), err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "the first line (the password) is empty");
    CHECK(secret_load(write_file("pw2", ""), err, sizeof(err)) == NULL);
    secret_free(NULL);
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        conf_dir = argv[1];
    }
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_conf_defaults);
    RUN(test_conf_full_values);
    RUN(test_conf_ipv6);
    RUN(test_conf_hostport_parse);
    RUN(test_conf_hostport_str);
    RUN(test_conf_connect_target);
    RUN(test_conf_iam);
    RUN(test_conf_dump_roundtrip);
    RUN(test_conf_dump_format);
    RUN(test_conf_refcount);
    RUN(test_conf_error_lines);
    RUN(test_conf_line_too_long);
    RUN(test_conf_nul_byte);
    RUN(test_conf_small_err_buffer);
    RUN(test_conf_mtls_files);
    RUN(test_conf_tls_off);
    RUN(test_conf_comments_and_empty_values);
    RUN(test_conf_needs_restart);
    RUN(test_conf_many_clusters);
    RUN(test_conf_enum_names);
    RUN(test_conf_bad_files);
    RUN(test_conf_good_files);
    RUN(test_conf_sasl_values);
    RUN(test_conf_sasl_json_form);
    RUN(test_conf_sasl_json_refused);
    RUN(test_conf_sasl_warning_and_dump);
    RUN(test_conf_sasl_reloadable);
    RUN(test_conf_secret_load_direct);
    cleanup_tmp();
    return TEST_DONE();
}
