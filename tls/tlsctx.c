/*
 * tlsctx.c - one client SSL_CTX per cluster: TLS 1.2 minimum, the trust store, the verify mode
 * and the optional client certificate. Each file is opened by hand first so a missing or
 * unreadable file gets the OS reason, and a file without PEM in it gets plain words instead of
 * an OpenSSL code: kbridge's answer to Java's "Failed to load SSL keystore".
 */
#include "tls/tlsctx.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "conf/conf.h"
#include "tls/tlserr.h"
#include "tls/tlssess.h"

#define TLSCTX_STORE_MAX 600 /* "system: FILE, DIR" */

/* The files a context loads; indexes tlsctx_files[]. */
enum tlsctx_file { TLSCTX_CA = 0, TLSCTX_CERT, TLSCTX_KEY };

/* How each file is named in messages. */
static const struct {
    const char *key;  /* the config key */
    const char *what; /* what it holds */
    const char *none; /* what is missing when OpenSSL finds no PEM in it */
    const char *pem;  /* what a good file contains */
} tlsctx_files[] = {
    [TLSCTX_CA] = {"tls_ca_file", "the trust store", "no certificates found in file",
                   "PEM '-----BEGIN CERTIFICATE-----' blocks"},
    [TLSCTX_CERT] = {"tls_cert_file", "the client certificate", "no certificate found in file",
                     "PEM '-----BEGIN CERTIFICATE-----' blocks"},
    [TLSCTX_KEY] = {"tls_key_file", "the private key", "no private key found in file",
                    "a PEM '-----BEGIN PRIVATE KEY-----' block"},
};

/* What error messages need while one context is built. */
struct tlsctx_job {
    const struct kb_conf *conf;       /* for the config path */
    const struct kb_cluster_conf *cc; /* for the cluster name, file paths and lines */
    char *err;                        /* the caller's buffer */
    size_t errlen;                    /* its size */
    int encrypted;                    /* set by the passphrase callback: the key is encrypted */
};

static CRYPTO_ONCE tlsctx_once = CRYPTO_ONCE_STATIC_INIT;
static int tlsctx_ex_index = -1;                  /* SSL_CTX ex_data: trust store name */
static char tlsctx_system_name[TLSCTX_STORE_MAX]; /* the system store, named at first use */

/* ---- Internal ---------------------------------------------------------------------------- */

static void
tlsctx_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_free(ptr);
}

/* The system store's file and directory, honouring SSL_CERT_FILE / SSL_CERT_DIR as OpenSSL
 * does (SSL_CERT_DIR may be a ':'-separated list). */
static void
tlsctx_system_paths(const char **file, const char **dirs)
{
    *file = getenv(X509_get_default_cert_file_env());
    *dirs = getenv(X509_get_default_cert_dir_env());
    if (!*file) {
        *file = X509_get_default_cert_file();
    }
    if (!*dirs) {
        *dirs = X509_get_default_cert_dir();
    }
}

static void
tlsctx_init_once(void)
{
    const char *file, *dirs;

    tlsctx_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tlsctx_ex_free);
    tlsctx_system_paths(&file, &dirs);
    tlserr_format(tlsctx_system_name, sizeof(tlsctx_system_name), "system: %s, %s", file, dirs);
}

static bool
tlsctx_init(void)
{
    return CRYPTO_THREAD_run_once(&tlsctx_once, tlsctx_init_once) == 1 && tlsctx_ex_index >= 0;
}

/* Writes "PATH:LINE: cluster 'NAME': <message>" into job->err; line 0 means the section's. */
static void __attribute__((format(printf, 3, 4)))
tlsctx_fail(const struct tlsctx_job *job, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    tlserr_vformat(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tlserr_format(job->err, job->errlen, "%s:%d: cluster '%s': %s",
                  job->conf && job->conf->path ? job->conf->path : "(config)",
                  line > 0 ? line : job->cc->line, job->cc->name ? job->cc->name : "?", msg);
}

/* PEM callback: never prompt (kbridge runs unattended); just note the key is encrypted. */
static int
tlsctx_on_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    if (arg) {
        ((struct tlsctx_job *)arg)->encrypted = 1;
    }
    return -1;
}

/* What a file that is clearly not PEM looks like, from its first bytes; NULL otherwise. */
static const char *
tlsctx_sniff(const unsigned char *head, size_t n)
{
    if (n >= 4 &&
        (memcmp(head, "\xFE\xED\xFE\xED", 4) == 0 || memcmp(head, "\xCE\xCE\xCE\xCE", 4) == 0)) {
        return "it is a Java keystore (JKS), not PEM; export PEM with keytool -exportcert -rfc, "
               "or convert via PKCS#12 with openssl pkcs12";
    }
    if (n >= 1 && head[0] == 0x30) {
        return "it is binary DER or PKCS#12, not PEM; convert it with openssl x509 -inform der "
               "or openssl pkcs12";
    }
    return NULL;
}

/*
 * Opens path and reads its first bytes, so a missing, unreadable or empty file (or a
 * directory) gets the OS reason before OpenSSL sees it. On success *hint says what the file
 * looks like when it is clearly not PEM (NULL otherwise).
 */
static bool
tlsctx_check_file(const char *path, const char **hint, char *why, size_t whylen)
{
    unsigned char head[4];
    FILE *f = fopen(path, "rb");
    size_t n;
    int e;

    if (!f) {
        tlserr_format(why, whylen, "cannot open: %s", strerror(errno));
        return false;
    }
    errno = 0;
    n = fread(head, 1, sizeof(head), f);
    e = ferror(f) ? errno : 0;
    fclose(f);
    if (e) {
        tlserr_format(why, whylen, "cannot read: %s", strerror(e));
        return false;
    }
    if (n == 0) {
        tlserr_format(why, whylen, "the file is empty");
        return false;
    }
    *hint = tlsctx_sniff(head, n);
    return true;
}

/* True when OpenSSL's first error says the file held no PEM object of the wanted kind. */
static bool
tlsctx_is_no_pem(unsigned long e)
{
    int lib = ERR_GET_LIB(e), r = ERR_GET_REASON(e);

    return (lib == ERR_LIB_X509 && r == X509_R_NO_CERTIFICATE_OR_CRL_FOUND) ||
           (lib == ERR_LIB_PEM && r == PEM_R_NO_START_LINE) ||
           (lib == ERR_LIB_OSSL_DECODER && r == ERR_R_UNSUPPORTED);
}

/* Loads one file into ctx; on failure writes why into job->err. */
static bool
tlsctx_load(SSL_CTX *ctx, struct tlsctx_job *job, enum tlsctx_file which)
{
    const struct kb_cluster_conf *cc = job->cc;
    const char *key = tlsctx_files[which].key, *hint = NULL, *path;
    char why[512];
    unsigned long e;
    int line, ok;

    if (which == TLSCTX_CA) {
        path = cc->tls_ca_file;
        line = cc->line_tls_ca_file;
    } else if (which == TLSCTX_CERT || !cc->tls_key_file) {
        /* Without tls_key_file the key is expected in the certificate file. */
        path = cc->tls_cert_file;
        line = cc->line_tls_cert_file;
        key = tlsctx_files[TLSCTX_CERT].key;
    } else {
        path = cc->tls_key_file;
        line = cc->line_tls_key_file;
    }
    if (!tlsctx_check_file(path, &hint, why, sizeof(why))) {
        tlsctx_fail(job, line, "%s '%s': %s", key, path, why);
        return false;
    }
    job->encrypted = 0;
    SSL_CTX_set_default_passwd_cb_userdata(ctx, job);
    if (which == TLSCTX_CA) {
        ok = SSL_CTX_load_verify_locations(ctx, path, NULL);
    } else if (which == TLSCTX_CERT) {
        ok = SSL_CTX_use_certificate_chain_file(ctx, path);
    } else {
        ok = SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
    }
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (ok == 1) {
        return true;
    }
    e = ERR_peek_error();
    if (which == TLSCTX_KEY && job->encrypted) {
        tlsctx_fail(job, line,
                    "%s '%s': the key is encrypted with a passphrase; kbridge needs an "
                    "unencrypted key (openssl pkey -in KEY -out NEW_KEY)",
                    key, path);
    } else if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        tlsctx_fail(job, line, "%s '%s': key does not match certificate (tls_cert_file '%s')", key,
                    path, cc->tls_cert_file);
    } else if (tlsctx_is_no_pem(e)) {
        tlsctx_fail(job, line, "%s '%s': failed to load %s: %s (%s%s)", key, path,
                    tlsctx_files[which].what, tlsctx_files[which].none, hint ? "" : "expected ",
                    hint ? hint : tlsctx_files[which].pem);
    } else {
        tlsctx_fail(job, line, "%s '%s': failed to load %s: %s", key, path,
                    tlsctx_files[which].what, tlserr_drain(why, sizeof(why)));
    }
    return false;
}

/* True when dir exists and holds at least one entry besides . and .. */
static bool
tlsctx_dir_has_entries(const char *dir, size_t len)
{
    char path[4096];
    struct dirent *d;
    bool found = false;
    DIR *dp;

    if (len == 0 || len >= sizeof(path)) {
        return false;
    }
    memcpy(path, dir, len);
    path[len] = '\0';
    dp = opendir(path);
    while (dp && !found && (d = readdir(dp)) != NULL) {
        found = strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
    }
    if (dp) {
        closedir(dp);
    }
    return found;
}

/* True when the system store has a readable bundle file or a non-empty directory. */
static bool
tlsctx_system_store_exists(char *why, size_t whylen)
{
    const char *file, *dirs, *p, *end;

    tlsctx_system_paths(&file, &dirs);
    if (access(file, R_OK) == 0) {
        return true;
    }
    for (p = dirs; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ':');
        end = end ? end : p + strlen(p);
        if (tlsctx_dir_has_entries(p, (size_t)(end - p))) {
            return true;
        }
    }
    tlserr_format(why, whylen,
                  "no system trust store: neither %s nor %s holds certificates "
                  "(install ca-certificates, or set tls_ca_file)",
                  file, dirs);
    return false;
}

/* ---- Public ------------------------------------------------------------------------------ */

SSL_CTX *
tlsctx_new(const struct kb_conf *conf, const struct kb_cluster_conf *cc, char *err, size_t errlen)
{
    struct tlsctx_job job = {conf, cc, err, errlen, 0};
    SSL_CTX *ctx = NULL;
    char *store = NULL;
    char why[512];

    ERR_clear_error();
    tlserr_format(err, errlen, "%s", "");
    if (!tlsctx_init()) {
        tlsctx_fail(&job, 0, "cannot initialise OpenSSL: %s", tlserr_drain(why, sizeof(why)));
        goto fail;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tlsctx_fail(&job, 0, "cannot create a TLS context: %s", tlserr_drain(why, sizeof(why)));
        goto fail;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!tlssess_enable(ctx)) {
        tlsctx_fail(&job, 0, "cannot set up TLS session resumption: out of memory");
        goto fail;
    }
    SSL_CTX_set_verify(ctx, cc->tls_verify == KB_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                       NULL);
    SSL_CTX_set_default_passwd_cb(ctx, tlsctx_on_passphrase);
    if (cc->tls_ca_file) {
        if (!tlsctx_load(ctx, &job, TLSCTX_CA)) {
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tlsctx_fail(&job, 0, "cannot load the system trust store: %s",
                    tlserr_drain(why, sizeof(why)));
        goto fail;
    } else if (cc->tls_verify != KB_VERIFY_NONE && !tlsctx_system_store_exists(why, sizeof(why))) {
        tlsctx_fail(&job, 0, "%s", why);
        goto fail;
    }
    if (cc->tls_key_file && !cc->tls_cert_file) {
        tlsctx_fail(&job, cc->line_tls_key_file, "tls_key_file is set but tls_cert_file is not");
        goto fail;
    }
    if (cc->tls_cert_file) {
        if (!tlsctx_load(ctx, &job, TLSCTX_CERT) || !tlsctx_load(ctx, &job, TLSCTX_KEY)) {
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            tlsctx_fail(&job, cc->tls_key_file ? cc->line_tls_key_file : cc->line_tls_cert_file,
                        "%s '%s': key does not match certificate (tls_cert_file '%s')",
                        cc->tls_key_file ? "tls_key_file" : "tls_cert_file",
                        cc->tls_key_file ? cc->tls_key_file : cc->tls_cert_file, cc->tls_cert_file);
            goto fail;
        }
    }
    store = OPENSSL_strdup(tlsctx_trust_store_name(cc));
    if (!store || SSL_CTX_set_ex_data(ctx, tlsctx_ex_index, store) != 1) {
        tlsctx_fail(&job, 0, "out of memory");
        goto fail;
    }
    return ctx;
fail:
    OPENSSL_free(store);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

const char *
tlsctx_trust_store_name(const struct kb_cluster_conf *cc)
{
    if (cc->tls_ca_file) {
        return cc->tls_ca_file;
    }
    return tlsctx_init() ? tlsctx_system_name : "system";
}

const char *
tlsctx_trust_store(const SSL_CTX *ctx)
{
    if (!ctx || !tlsctx_init()) {
        return NULL;
    }
    return SSL_CTX_get_ex_data(ctx, tlsctx_ex_index);
}
