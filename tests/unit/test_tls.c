/*
 * test_tls.c - tls/ against real handshakes: a server thread on loopback TCP runs OpenSSL with
 * a chosen certificate from the test PKI (tests/integration/gen_certs.sh, dir $KB_TEST_CERTS)
 * or misbehaves on purpose, and each failure must come back as its one precise sentence.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "test.h"
#include "tls/tlsconn.h"
#include "tls/tlsctx.h"
#include "tls/tlserr.h"

#define TEST_PATH_MAX 512
#define TEST_WAIT_MS 5000 /* the server gives up on a silent client after this */

static const char *test_dir; /* $KB_TEST_CERTS */
static struct kb_conf test_conf = {.path = "/etc/kbridge/test.ini"};

/* How the server thread treats its one connection. */
enum test_mode {
    TEST_TLS = 0,    /* TLS with cert, answers "ok" */
    TEST_TLS11,      /* TLS 1.0-1.1 only */
    TEST_MTLS,       /* TLS that requires a client certificate from ca.pem */
    TEST_BYTES,      /* reads the ClientHello, answers bytes in plaintext */
    TEST_CLOSE,      /* accepts and closes at once */
    TEST_READ_CLOSE, /* reads the ClientHello, then closes */
};

/* One handshake: the server, how the client is configured, and what it must report. */
struct test_case {
    const char *what;          /* names the case in failure output */
    enum test_mode mode;       /* what the server does */
    const char *cert;          /* its certificate: base name in test_dir, e.g. "server" */
    const char *bytes;         /* TEST_BYTES: its plaintext answer */
    size_t n_bytes;            /* length of bytes */
    enum kb_tls_verify verify; /* the client's tls_verify */
    const char *sni;           /* the client's tls_sni, or NULL */
    bool system_store;         /* no tls_ca_file: the system store */
    bool client_cert;          /* tls_cert_file/tls_key_file = client.pem/client.key */
    const char *name;          /* the broker name the client verifies */
    bool ok;                   /* the handshake must succeed */
    const char *expect[4];     /* substrings the sentence must contain, NULL-ended */
    const char *absent;        /* a substring it must not contain, or NULL */
    const char *sni_seen;      /* the SNI the server must see ("" none), NULL: any */
    const char *client_seen;   /* a substring of the client subject the server saw, or NULL */
};

/* What one handshake produced, on both sides. */
struct test_result {
    bool ok;               /* handshake done and the server's "ok" read */
    char text[1024];       /* tlserr_describe_session() when ok, tlserr_classify() otherwise */
    enum tlserr_class cls; /* tlserr_classify()'s class when not ok */
    bool accepted;         /* the server completed its side of the handshake */
    char sni[256];         /* SNI the server received, "" for none */
    char client_cn[256];   /* the client certificate's subject as the server saw it */
};

/* One single-connection server on 127.0.0.1. */
struct test_server {
    const struct test_case *c; /* what to do */
    struct test_result *res;   /* where the server side records what it saw */
    int listen_fd;             /* bound and listening */
    uint16_t port;             /* where */
    pthread_t thread;          /* runs test_server_main */
};

/* One kb_cluster_conf with room for its paths. */
struct test_cluster {
    struct kb_cluster_conf cc; /* what tls/ reads */
    char ca[TEST_PATH_MAX];    /* tls_ca_file */
    char cert[TEST_PATH_MAX];  /* tls_cert_file */
    char key[TEST_PATH_MAX];   /* tls_key_file */
};

/* ---- Helpers ----------------------------------------------------------------------------- */

static char *
test_path(char *out, const char *file)
{
    snprintf(out, TEST_PATH_MAX, "%s/%s", test_dir, file);
    return out;
}

/* file as given when absolute, else relative to test_dir; NULL stays NULL. */
static char *
test_file(char *out, const char *file)
{
    if (!file) {
        return NULL;
    }
    return file[0] == '/' ? strncpy(out, file, TEST_PATH_MAX - 1) : test_path(out, file);
}

/*
 * A cluster "msk" at line 10 with tls_ca_file = ca.pem and tls_verify = full. The TLS file keys
 * sit at lines 12 (CA), 13 (cert) and 14 (key).
 */
static void
test_cluster_init(struct test_cluster *tc)
{
    memset(tc, 0, sizeof(*tc));
    tc->cc.name = "msk";
    tc->cc.line = 10;
    tc->cc.tls = true;
    tc->cc.tls_verify = KB_VERIFY_FULL;
    tc->cc.tls_ca_file = test_path(tc->ca, "ca.pem");
    tc->cc.line_tls_ca_file = 12;
    tc->cc.line_tls_cert_file = 13;
    tc->cc.line_tls_key_file = 14;
}

/* Sets tls_cert_file and tls_key_file (NULL: unset). */
static void
test_cluster_client_cert(struct test_cluster *tc, const char *cert, const char *key)
{
    tc->cc.tls_cert_file = test_file(tc->cert, cert);
    tc->cc.tls_key_file = test_file(tc->key, key);
}

static SSL_CTX *
test_server_ctx(const struct test_server *srv)
{
    char path[TEST_PATH_MAX];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    snprintf(path, sizeof(path), "%s/%s.pem", test_dir, srv->c->cert);
    SSL_CTX_use_certificate_chain_file(ctx, path);
    snprintf(path, sizeof(path), "%s/%s.key", test_dir, srv->c->cert);
    SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
    if (srv->c->mode == TEST_TLS11) {
        /* OpenSSL 3 offers nothing below TLS 1.2 above security level 0. */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
    }
    if (srv->c->mode == TEST_MTLS) {
        SSL_CTX_load_verify_locations(ctx, test_path(path, "ca.pem"), NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

/* TLS modes: handshake, record what the client sent, say "ok", wait for the client to go. */
static void
test_server_tls(struct test_server *srv, int fd)
{
    SSL_CTX *ctx = test_server_ctx(srv);
    SSL *ssl = SSL_new(ctx);
    const char *sni;
    X509 *peer;
    char buf[16];

    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        srv->res->accepted = true;
        sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(srv->res->sni, sizeof(srv->res->sni), "%s", sni ? sni : "");
        peer = SSL_get0_peer_certificate(ssl);
        if (peer) {
            X509_NAME_oneline(X509_get_subject_name(peer), srv->res->client_cn,
                              sizeof(srv->res->client_cn));
        }
        if (SSL_write(ssl, "ok", 2) == 2) {
            while (SSL_read(ssl, buf, sizeof(buf)) > 0) {
            }
        }
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
}

static void *
test_server_main(void *arg)
{
    struct test_server *srv = arg;
    struct timeval tv = {TEST_WAIT_MS / 1000, 0};
    struct pollfd pfd = {srv->listen_fd, POLLIN, 0};
    char buf[4096];
    int fd;

    if (poll(&pfd, 1, TEST_WAIT_MS) != 1 || (fd = accept(srv->listen_fd, NULL, NULL)) < 0) {
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    switch (srv->c->mode) {
    case TEST_BYTES:
        if (read(fd, buf, sizeof(buf)) > 0 && write(fd, srv->c->bytes, srv->c->n_bytes) > 0) {
            /* Let the client read the answer before the connection goes. */
            shutdown(fd, SHUT_WR);
            while (read(fd, buf, sizeof(buf)) > 0) {
            }
        }
        break;
    case TEST_READ_CLOSE:
        if (read(fd, buf, sizeof(buf)) < 0) {
            break;
        }
        break;
    case TEST_CLOSE:
        break;
    default:
        test_server_tls(srv, fd);
        break;
    }
    close(fd);
    return NULL;
}

static bool
test_server_start(struct test_server *srv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);

    srv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv->listen_fd < 0 || bind(srv->listen_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(srv->listen_fd, 1) != 0 ||
        getsockname(srv->listen_fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("test server");
        if (srv->listen_fd >= 0) {
            close(srv->listen_fd);
        }
        return false;
    }
    srv->port = ntohs(sin.sin_port);
    return pthread_create(&srv->thread, NULL, test_server_main, srv) == 0;
}

static void
test_server_stop(struct test_server *srv)
{
    pthread_join(srv->thread, NULL);
    close(srv->listen_fd);
}

/* Connects with tlsconn_new(ctx, cc, name), handshakes, reads "ok"; describes what happened. */

/* The class tlserr_classify() reports agrees with the cause its sentence names (metrics count
 * by class, operators read the sentence). */
static void
test_check_class(const struct test_result *res)
{
    static const struct {
        const char *prefix;
        enum tlserr_class cls;
    } want[] = {
        {"certificate not trusted", TLSERR_CLASS_UNTRUSTED},
        {"hostname mismatch", TLSERR_CLASS_HOSTNAME},
        {"certificate expired", TLSERR_CLASS_EXPIRED},
        {"certificate not yet valid", TLSERR_CLASS_EXPIRED},
        {"not TLS", TLSERR_CLASS_NOT_TLS},
        {"TLS protocol error", TLSERR_CLASS_PROTOCOL},
        {"TLS handshake failed", TLSERR_CLASS_OTHER},
        {"connection closed during TLS handshake", TLSERR_CLASS_OTHER},
    };
    size_t i;

    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strncmp(res->text, want[i].prefix, strlen(want[i].prefix)) == 0) {
            CHECK_EQ_INT(res->cls, want[i].cls);
            return;
        }
    }
    CHECK(!"a failure sentence with no known cause keyword");
}

static void
test_client(SSL_CTX *ctx, const struct kb_cluster_conf *cc, const char *name, uint16_t port,
            struct test_result *res)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    unsigned long errs[8], e;
    int fd = socket(AF_INET, SOCK_STREAM, 0), r, sock_err = 0;
    char buf[3] = "";
    size_t n = 0;
    SSL *ssl = tlsconn_new(ctx, cc, name, res->text, sizeof(res->text));

    if (!ssl || fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        fprintf(stderr, "test client: %s %s\n", res->text, strerror(errno));
        goto done;
    }
    SSL_set_fd(ssl, fd);
    errno = 0;
    r = SSL_connect(ssl);
    if (r == 1) {
        r = SSL_read(ssl, buf, 2);
    }
    if (r <= 0 && SSL_get_error(ssl, r) == SSL_ERROR_SYSCALL) {
        sock_err = errno;
    }
    res->ok = r == 2 && memcmp(buf, "ok", 2) == 0;
    if (res->ok) {
        tlserr_describe_session(ssl, res->text, sizeof(res->text));
        SSL_shutdown(ssl);
    } else {
        while ((e = ERR_get_error()) != 0) {
            if (n < sizeof(errs) / sizeof(errs[0])) {
                errs[n++] = e;
            }
        }
        tlserr_classify(ssl, errs, n, sock_err, NULL, res->text, sizeof(res->text), &res->cls);
        test_check_class(res);
    }
    CHECK(ERR_peek_error() == 0); /* describing leaves the queue as it found it */
    if (getenv("KB_TEST_VERBOSE")) {
        fprintf(stderr, "  %s: %s\n", name, res->text);
    }
done:
    SSL_free(ssl);
    if (fd >= 0) {
        close(fd);
    }
}

/* Runs case c: starts its server, connects as its client, checks ok and expect[]. */
static void
test_run(const struct test_case *c, struct test_result *res)
{
    struct test_server srv = {.c = c, .res = res};
    struct test_cluster tc;
    SSL_CTX *ctx;
    size_t i;

    memset(res, 0, sizeof(*res));
    test_cluster_init(&tc);
    tc.cc.tls_verify = c->verify;
    tc.cc.tls_sni = (char *)c->sni;
    tc.cc.tls_ca_file = c->system_store ? NULL : tc.cc.tls_ca_file;
    if (c->client_cert) {
        test_cluster_client_cert(&tc, "client.pem", "client.key");
    }
    ctx = tlsctx_new(&test_conf, &tc.cc, res->text, sizeof(res->text));
    CHECK(ctx != NULL);
    if (ctx && test_server_start(&srv)) {
        test_client(ctx, &tc.cc, c->name, srv.port, res);
        test_server_stop(&srv);
        CHECK_EQ_INT(res->ok, c->ok);
        /* A client that gives up leaves the server's side of the handshake unfinished. */
        CHECK_EQ_INT(res->accepted, c->ok);
        for (i = 0; i < sizeof(c->expect) / sizeof(c->expect[0]) && c->expect[i]; i++) {
            CHECK_STR_CONTAINS(res->text, c->expect[i]);
        }
        CHECK(!c->absent || !strstr(res->text, c->absent));
        CHECK(!c->sni_seen || strcmp(res->sni, c->sni_seen) == 0);
        CHECK(!c->client_seen || strstr(res->client_cn, c->client_seen));
    } else {
        test_checks_failed++;
    }
    SSL_CTX_free(ctx);
    if (test_checks_failed) {
        fprintf(stderr, "  in case %s: %s\n", c->what ? c->what : c->name, res->text);
    }
}

/* Expects tlsctx_new() to fail for tc; leaves the reason in err. */
static void
test_ctx_fails(const struct test_cluster *tc, char *err, size_t errlen)
{
    SSL_CTX *ctx = tlsctx_new(&test_conf, &tc->cc, err, errlen);

    CHECK(ctx == NULL);
    SSL_CTX_free(ctx);
    if (getenv("KB_TEST_VERBOSE")) {
        fprintf(stderr, "  tlsctx_new: %s\n", err);
    }
    CHECK(ERR_peek_error() == 0);
}

static bool
test_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int need;

    while (*p) {
        need = *p < 0x80 ? 0 : *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : -1;
        if (need < 0) {
            return false;
        }
        for (p++; need > 0; need--, p++) {
            if ((*p & 0xC0) != 0x80) {
                return false;
            }
        }
    }
    return true;
}

/* ---- Handshakes ------------------------------------------------------------------------- */

static void
test_tls_system_store_from_env(void)
{
    static const struct test_case c = {.what = "system_store_from_env",
                                       .cert = "server",
                                       .system_store = true,
                                       .name = "localhost",
                                       .ok = true};
    char ca[TEST_PATH_MAX];
    struct test_result res;

    setenv("SSL_CERT_FILE", test_path(ca, "ca.pem"), 1);
    setenv("SSL_CERT_DIR", "/nonexistent/kbridge-certs", 1);
    test_run(&c, &res);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
}

static const char test_http[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
/* A Kafka response frame: size 10, correlation id 1, error code 35, empty array. */
static const char test_kafka[] = "\0\0\0\x0a\0\0\0\x01\0\x23\0\0\0\0";

static const struct test_case test_table[] = {
    {.what = "verifies_host_name",
     .cert = "server",
     .name = "localhost",
     .ok = true,
     .sni_seen = "localhost",
     .expect = {"TLSv1.3 ", "peer 'CN=localhost,O=kbridge tests'",
                "(issuer 'CN=kbridge test CA,O=kbridge tests'), verified as 'localhost'",
                "expires in "}},
    {.what = "verifies_ipv4_literal_without_sni",
     .cert = "server",
     .name = "127.0.0.1",
     .ok = true,
     .sni_seen = "",
     .expect = {"verified as '127.0.0.1'"}},
    {.what = "verifies_ipv6_literal_without_sni",
     .cert = "server",
     .name = "::1",
     .ok = true,
     .sni_seen = "",
     .expect = {"verified as '::1'"}},
    /* Dialled by IP, but the broker is known as localhost: SNI and verification use tls_sni. */
    {.what = "sni_names_the_certificate",
     .cert = "server",
     .sni = "localhost",
     .name = "10.1.2.3",
     .ok = true,
     .sni_seen = "localhost",
     .expect = {"verified as 'localhost'"}},
    /* tls_sni replaces the verified name: a certificate for the broker's name alone (server
     * names localhost) must not pass when tls_sni names another host. */
    {.what = "sni_replaces_the_broker_name",
     .cert = "server",
     .sni = "other.example.com",
     .name = "localhost",
     .expect = {"hostname mismatch: expected 'other.example.com'"}},
    {.what = "client_certificate",
     .mode = TEST_MTLS,
     .cert = "server",
     .client_cert = true,
     .name = "localhost",
     .ok = true,
     .client_seen = "CN=kbridge client"},
    {.what = "hostname_mismatch",
     .cert = "wronghost",
     .name = "localhost",
     .absent = "MSK",
     .expect = {"hostname mismatch: expected 'localhost', certificate names "
                "DNS:wrong.example.com"}},
    {.what = "ip_mismatch_explains_msk",
     .cert = "wronghost",
     .name = "127.0.0.1",
     .expect = {"hostname mismatch: expected '127.0.0.1'", "DNS:wrong.example.com",
                "MSK certificates name hosts", "connect_to"}},
    {.what = "untrusted_names_issuer_and_store",
     .cert = "untrusted",
     .name = "localhost",
     .expect = {"certificate not trusted: issuer 'CN=some other CA", "is not in the trust store (",
                "/ca.pem)"}},
    {.what = "self_signed_not_trusted",
     .cert = "other-ca",
     .name = "localhost",
     .expect = {"certificate not trusted: issuer 'CN=some other CA,O=kbridge tests' is not in "
                "the trust store"}},
    {.what = "expired",
     .cert = "expired",
     .name = "localhost",
     .expect = {"certificate expired: 'CN=localhost,O=kbridge tests' not after "
                "2020-01-01 00:00:00 UTC"}},
    {.what = "chain_skips_name",
     .cert = "wronghost",
     .verify = KB_VERIFY_CHAIN,
     .name = "localhost",
     .ok = true,
     .expect = {"chain verified, name not checked"}},
    {.what = "chain_checks_trust",
     .cert = "untrusted",
     .verify = KB_VERIFY_CHAIN,
     .name = "localhost",
     .expect = {"certificate not trusted"}},
    {.what = "none_accepts_anything",
     .cert = "untrusted",
     .verify = KB_VERIFY_NONE,
     .name = "wrong.example.org",
     .ok = true,
     .expect = {"NOT verified (tls_verify = none)"}},
    {.what = "http_answer_is_not_tls",
     .mode = TEST_BYTES,
     .bytes = test_http,
     .n_bytes = sizeof(test_http) - 1,
     .name = "localhost",
     .expect = {"not TLS: the peer answered in plaintext",
                "MSK TLS is 9094, 9194 with public access; plaintext 9092"}},
    {.what = "kafka_frame_is_not_tls",
     .mode = TEST_BYTES,
     .bytes = test_kafka,
     .n_bytes = sizeof(test_kafka) - 1,
     .name = "localhost",
     .expect = {"not TLS"}},
    {.what = "closed_at_once",
     .mode = TEST_CLOSE,
     .name = "localhost",
     .expect = {"connection closed during TLS handshake", "never answered the ClientHello"}},
    {.what = "closed_after_client_hello",
     .mode = TEST_READ_CLOSE,
     .name = "localhost",
     .expect = {"connection closed during TLS handshake"}},
    {.what = "refuses_tls11",
     .mode = TEST_TLS11,
     .cert = "server",
     .name = "localhost",
     .expect = {"TLS protocol error: ", "requires TLS 1.2 or newer"}},
    {.what = "missing_client_certificate",
     .mode = TEST_MTLS,
     .cert = "server",
     .name = "localhost",
     .expect = {"TLS protocol error: ", "set tls_cert_file and tls_key_file"}},
};
static size_t test_table_at; /* the entry test_tls_table_case runs */

/* Runs test_table[test_table_at]; main() RUNs it once per entry. */
static void
test_tls_table_case(void)
{
    struct test_result res;

    test_run(&test_table[test_table_at], &res);
}

/* ---- tlsctx_new() errors ----------------------------------------------------------------- */

/* A tlsctx_new() that must fail: files are relative to test_dir unless absolute. */
struct test_ctx_case {
    const char *what;      /* names the case in failure output */
    const char *ca;        /* tls_ca_file (line 12); NULL: ca.pem */
    const char *cert;      /* tls_cert_file (line 13), or NULL */
    const char *key;       /* tls_key_file (line 14), or NULL */
    const char *expect[3]; /* substrings of the error, NULL-ended */
};

static const struct test_ctx_case test_ctx_table[] = {
    {.what = "missing_ca_file",
     .ca = "/nonexistent/ca.pem",
     .expect = {"/etc/kbridge/test.ini:12: cluster 'msk': tls_ca_file '/nonexistent/ca.pem': "
                "cannot open: No such file or directory"}},
    {.what = "ca_file_is_a_directory",
     .ca = ".",
     .expect = {"/etc/kbridge/test.ini:12: cluster 'msk': tls_ca_file '", "Is a directory"}},
    {.what = "garbage_ca_file",
     .ca = "garbage.pem",
     .expect = {"/etc/kbridge/test.ini:12: cluster 'msk': tls_ca_file '",
                "garbage.pem': failed to load the trust store: no certificates found in file "
                "(expected PEM"}},
    {.what = "key_mismatch",
     .cert = "client.pem",
     .key = "other.key",
     .expect = {"/etc/kbridge/test.ini:14: cluster 'msk': tls_key_file '",
                "other.key': key does not match certificate (tls_cert_file '", "client.pem')"}},
    {.what = "missing_key",
     .cert = "client.pem",
     .key = "nonexistent.key",
     .expect = {"test.ini:14: cluster 'msk': tls_key_file '", "No such file or directory"}},
    {.what = "garbage_cert",
     .cert = "garbage.pem",
     .key = "client.key",
     .expect = {"test.ini:13: cluster 'msk': tls_cert_file '",
                "failed to load the client certificate: no certificate found"}},
    {.what = "key_without_cert",
     .key = "client.key",
     .expect = {"test.ini:14: cluster 'msk': tls_key_file is set but tls_cert_file is not"}},
};
static size_t test_ctx_table_at; /* the entry test_tlsctx_table_case runs */

/* Runs test_ctx_table[test_ctx_table_at]; main() RUNs it once per entry. */
static void
test_tlsctx_table_case(void)
{
    const struct test_ctx_case *c = &test_ctx_table[test_ctx_table_at];
    struct test_cluster tc;
    char err[512];
    size_t i;

    test_cluster_init(&tc);
    test_cluster_client_cert(&tc, c->cert, c->key);
    if (c->ca) {
        tc.cc.tls_ca_file = test_file(tc.ca, c->ca);
    }
    test_ctx_fails(&tc, err, sizeof(err));
    for (i = 0; i < sizeof(c->expect) / sizeof(c->expect[0]) && c->expect[i]; i++) {
        CHECK_STR_CONTAINS(err, c->expect[i]);
    }
    if (test_checks_failed) {
        fprintf(stderr, "  in case %s\n", c->what);
    }
}

static void
test_tlsctx_java_keystore_ca_file(void)
{
    char path[] = "/tmp/kbridge-test-jks-XXXXXX";
    struct test_cluster tc;
    char err[512];
    int fd = mkstemp(path);

    CHECK(fd >= 0 && write(fd, "\xFE\xED\xFE\xED\0\0\0\x02", 8) == 8);
    close(fd);
    test_cluster_init(&tc);
    tc.cc.tls_ca_file = path;
    test_ctx_fails(&tc, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "no certificates found in file (it is a Java keystore (JKS), not PEM");
    unlink(path);
}

static void
test_tlsctx_encrypted_key_never_prompts(void)
{
    char path[] = "/tmp/kbridge-test-key-XXXXXX", src[TEST_PATH_MAX];
    struct test_cluster tc;
    EVP_PKEY *pkey = NULL;
    FILE *f = fopen(test_path(src, "client.key"), "r");
    char err[512];
    int fd = mkstemp(path);

    if (f) {
        pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(pkey && f);
    if (pkey && f) {
        CHECK(PEM_write_PrivateKey(f, pkey, EVP_aes_128_cbc(), (unsigned char *)"secret", 6, NULL,
                                   NULL) == 1);
    }
    if (f) {
        fclose(f);
    }
    EVP_PKEY_free(pkey);
    test_cluster_init(&tc);
    test_cluster_client_cert(&tc, "client.pem", path);
    test_ctx_fails(&tc, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "test.ini:14: ");
    CHECK_STR_CONTAINS(err, "the key is encrypted with a passphrase");
    CHECK(!strstr(err, "secret"));
    unlink(path);
}

static void
test_tlsctx_missing_system_store(void)
{
    struct test_cluster tc;
    char err[512];

    test_cluster_init(&tc);
    tc.cc.tls_ca_file = NULL;
    setenv("SSL_CERT_FILE", "/nonexistent/kbridge-ca.pem", 1);
    setenv("SSL_CERT_DIR", "/nonexistent/kbridge-certs:/nonexistent/more", 1);
    test_ctx_fails(&tc, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "/etc/kbridge/test.ini:10: cluster 'msk': no system trust store");
    CHECK_STR_CONTAINS(err, "/nonexistent/kbridge-ca.pem");
    tc.cc.tls_verify = KB_VERIFY_NONE;
    SSL_CTX_free(tlsctx_new(&test_conf, &tc.cc, err, sizeof(err)));
    CHECK_EQ_INT(err[0], '\0');
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
}

static void
test_tlsctx_trust_store_names(void)
{
    struct test_cluster tc;
    char err[512];
    SSL_CTX *ctx;

    test_cluster_init(&tc);
    CHECK(strcmp(tlsctx_trust_store_name(&tc.cc), tc.ca) == 0);
    ctx = tlsctx_new(&test_conf, &tc.cc, err, sizeof(err));
    CHECK(ctx && strcmp(tlsctx_trust_store(ctx), tc.ca) == 0);
    SSL_CTX_free(ctx);
    tc.cc.tls_ca_file = NULL;
    CHECK(strncmp(tlsctx_trust_store_name(&tc.cc), "system: ", 8) == 0);
    ctx = SSL_CTX_new(TLS_client_method());
    CHECK(tlsctx_trust_store(ctx) == NULL);
    SSL_CTX_free(ctx);
}

/* ---- Text rules -------------------------------------------------------------------------- */

static void
test_tlserr_classifies_without_ssl(void)
{
    unsigned long not_tls = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER);
    unsigned long alert = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
    unsigned long both[2] = {alert, not_tls};
    char out[512];

    CHECK_STR_CONTAINS(tlserr_describe(NULL, &not_tls, 1, 0, NULL, out, sizeof(out)), "not TLS");
    CHECK_STR_CONTAINS(tlserr_describe(NULL, both, 2, 0, NULL, out, sizeof(out)), "not TLS");
    CHECK_STR_CONTAINS(tlserr_describe(NULL, &alert, 1, 0, NULL, out, sizeof(out)),
                       "TLS protocol error: tlsv1 alert protocol version");
    CHECK_STR_CONTAINS(tlserr_describe(NULL, NULL, 0, ECONNRESET, NULL, out, sizeof(out)),
                       "connection closed during TLS handshake (Connection reset by peer)");
    CHECK_STR_CONTAINS(tlserr_describe(NULL, NULL, 0, ETIMEDOUT, NULL, out, sizeof(out)),
                       "TLS handshake failed: Connection timed out");
}

static void
test_tlserr_cuts_at_utf8_boundary(void)
{
    struct test_cluster tc;
    char out[6], err[64];
    size_t len;

    CHECK(strcmp(tlserr_format(out, sizeof(out), "%s", "abcd\xC3\xA9"), "abcd") == 0);
    CHECK(strcmp(tlserr_format(out, sizeof(out), "%s", "ab\xE2\x82\xAC!"), "ab\xE2\x82\xAC") == 0);
    CHECK(strcmp(tlserr_format(out, 1, "%s", "abc"), "") == 0);
    CHECK(tlserr_format(NULL, 0, "%s", "abc") == NULL);
    /* A config path in UTF-8 cut anywhere stays valid UTF-8. */
    test_cluster_init(&tc);
    tc.cc.tls_ca_file = "/nonexistent/\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";
    for (len = 1; len <= sizeof(err); len++) {
        SSL_CTX_free(tlsctx_new(&test_conf, &tc.cc, err, len));
        CHECK(strlen(err) < len && test_utf8_valid(err));
    }
}

static void
test_tlserr_drain_empties_queue(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char out[512];

    CHECK(SSL_CTX_load_verify_locations(ctx, "/nonexistent/ca.pem", NULL) != 1);
    CHECK_STR_CONTAINS(tlserr_drain(out, sizeof(out)), "/nonexistent/ca.pem");
    CHECK_STR_CONTAINS(out, "; ");
    CHECK(ERR_peek_error() == 0);
    CHECK_STR_CONTAINS(tlserr_drain(out, sizeof(out)), "");
    CHECK_EQ_INT(out[0], '\0');
    SSL_CTX_free(ctx);
}

static void
test_tlsconn_ip_literals(void)
{
    CHECK(tlsconn_is_ip_literal("127.0.0.1"));
    CHECK(tlsconn_is_ip_literal("::1"));
    CHECK(tlsconn_is_ip_literal("fe80::1"));
    CHECK(!tlsconn_is_ip_literal("localhost"));
    CHECK(!tlsconn_is_ip_literal("b-1.msk.abc123.c2.kafka.eu-west-1.amazonaws.com"));
    CHECK(!tlsconn_is_ip_literal("[::1]"));
    CHECK(!tlsconn_is_ip_literal(NULL));
}

int
main(void)
{
    test_dir = getenv("KB_TEST_CERTS");
    if (!test_dir) {
        test_dir = "build/certs";
    }
    /* A peer that hangs up must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    RUN(test_tls_system_store_from_env);
    for (test_table_at = 0; test_table_at < sizeof(test_table) / sizeof(test_table[0]);
         test_table_at++) {
        RUN(test_tls_table_case);
    }
    for (test_ctx_table_at = 0;
         test_ctx_table_at < sizeof(test_ctx_table) / sizeof(test_ctx_table[0]);
         test_ctx_table_at++) {
        RUN(test_tlsctx_table_case);
    }
    RUN(test_tlsctx_java_keystore_ca_file);
    RUN(test_tlsctx_encrypted_key_never_prompts);
    RUN(test_tlsctx_missing_system_store);
    RUN(test_tlsctx_trust_store_names);
    RUN(test_tlserr_classifies_without_ssl);
    RUN(test_tlserr_cuts_at_utf8_boundary);
    RUN(test_tlserr_drain_empties_queue);
    RUN(test_tlsconn_ip_literals);
    return TEST_DONE();
}
