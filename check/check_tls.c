/*
 * check_tls.c - the TLS steps of `kbridge check`. The daemon aborts a handshake at the first
 * verification error; check instead lets a verify callback note the first chain error and the
 * first name mismatch and finishes the handshake, so it can say both what the peer is and which
 * of the two checks fails. Every sentence about a failure comes from tlserr_describe(): the
 * noted error is put back as the SSL's verify result for it to read.
 */
#include "check/check_tls.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "check/check_dial.h"
#include "tls/tlsconn.h"
#include "tls/tlsctx.h"
#include "tls/tlserr.h"

#define CHECK_TLS_ERRS 8 /* OpenSSL error codes kept from a failed handshake */

/* What one handshake found. */
struct check_tls_result {
    long chain_err;                     /* first chain error, X509_V_OK when none */
    long name_err;                      /* first host name / IP mismatch, X509_V_OK when none */
    bool done;                          /* the handshake completed */
    bool timed_out;                     /* tls_handshake_timeout_ms ran out */
    unsigned long errs[CHECK_TLS_ERRS]; /* OpenSSL errors of a failed handshake, oldest first */
    size_t n_errs;                      /* entries in errs */
    int sock_err;                       /* errno of a failed handshake, 0 when none */
};

/* Hints keyed by the cause keyword tlserr_describe() starts its sentence with. */
static const struct {
    const char *keyword; /* start of the sentence */
    const char *fix;     /* what to do */
} check_tls_fixes[] = {
    {"not TLS", "point kbridge at the TLS port: " CHECK_MSK_PORTS},
    {"connection closed during TLS handshake",
     "the peer hung up on the TLS ClientHello: the wrong port (" CHECK_MSK_PORTS "), or a proxy "
     "or firewall in between that does not pass TLS"},
    {"certificate not trusted",
     "set tls_ca_file to a PEM bundle holding the CA that issued the broker's certificate, or "
     "leave it empty for the system store (MSK certificates chain to Amazon's public CAs, which "
     "Debian's ca-certificates package has)"},
    {"hostname mismatch",
     "name the broker in bootstrap_servers as its certificate does (MSK: "
     "b-N.<cluster>...amazonaws.com, not an IP or an alias); to reach it at another address "
     "keep the name and add connect_to = NAME:PORT=ADDRESS:PORT"},
    {"certificate expired",
     "a certificate in the broker's chain is out of date: renew it (MSK renews its own, so "
     "check this host's clock)"},
    {"certificate not yet valid", "check this host's clock (is NTP running?)"},
};

/* ---- Internal ---------------------------------------------------------------------------- */

static const char *
check_tls_fix(const char *why)
{
    size_t i;

    for (i = 0; i < sizeof(check_tls_fixes) / sizeof(check_tls_fixes[0]); i++) {
        if (strncmp(why, check_tls_fixes[i].keyword, strlen(check_tls_fixes[i].keyword)) == 0) {
            return check_tls_fixes[i].fix;
        }
    }
    return NULL;
}

/*
 * Verify callback: notes the first error of each kind and lets the handshake go on. Safe
 * because check sends no application data until steps 4 and 5 have passed, and it puts the
 * normal callback back once the handshake is over.
 */
static int
check_tls_on_verify(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct check_tls_result *res = ssl ? SSL_get_app_data(ssl) : NULL;
    int e = X509_STORE_CTX_get_error(store);

    if (ok || !res) {
        return ok;
    }
    if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        if (res->name_err == X509_V_OK) {
            res->name_err = e;
        }
    } else if (res->chain_err == X509_V_OK) {
        res->chain_err = e;
    }
    return 1;
}

/* Drives SSL_connect on the non-blocking fd until it completes, fails or deadline passes. */
static void
check_tls_handshake(SSL *ssl, int fd, long deadline, struct check_tls_result *res)
{
    unsigned long e;
    int r, kind, err, w;

    for (;;) {
        ERR_clear_error();
        errno = 0;
        r = SSL_connect(ssl);
        err = errno;
        if (r == 1) {
            res->done = true;
            return;
        }
        kind = SSL_get_error(ssl, r);
        if (kind != SSL_ERROR_WANT_READ && kind != SSL_ERROR_WANT_WRITE) {
            res->sock_err = kind == SSL_ERROR_SYSCALL ? err : 0;
            break;
        }
        w = check_net_wait(fd, kind == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (w <= 0) {
            res->timed_out = w == 0;
            res->sock_err = w < 0 ? errno : 0;
            break;
        }
    }
    while ((e = ERR_get_error()) != 0) {
        if (res->n_errs < CHECK_TLS_ERRS) {
            res->errs[res->n_errs++] = e;
        }
    }
}

/* Reads everything written to bio into out (NUL-terminated) and frees bio. */
static const char *
check_tls_bio_text(BIO *bio, char *out, size_t outlen)
{
    int n = bio ? BIO_read(bio, out, (int)outlen - 1) : -1;

    out[n > 0 ? n : 0] = '\0';
    BIO_free(bio);
    return out;
}

/*
 * Step 3's finding: "TLSv1.3 TLS_AES_256_GCM_SHA384, SNI 'x', peer chain: [0] 'CN=..' issued
 * by 'CN=..', expires 2035-01-01 (in 3650 days)". Names are RFC 2253 with
 * non-ASCII escaped, as in tlserr's sentences.
 */
static const char *
check_tls_session(SSL *ssl, char *out, size_t outlen)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    BIO *bio = BIO_new(BIO_s_mem());
    int i, days, secs;
    char when[32];
    struct tm tm;
    X509 *x;

    if (!bio) {
        return tlserr_format(out, outlen, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    }
    BIO_printf(bio, "%s %s, %s%s%s, peer chain:", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
               sni ? "SNI '" : "no SNI (IP literal)", sni ? sni : "", sni ? "'" : "");
    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        x = sk_X509_value(chain, i);
        BIO_printf(bio, "%s [%d] '", i ? ";" : "", i);
        X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
        BIO_puts(bio, "' issued by '");
        X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253);
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
            strftime(when, sizeof(when), "%Y-%m-%d", &tm) == 0) {
            tlserr_format(when, sizeof(when), "?");
        }
        BIO_printf(bio, "', expires %s", when);
        if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1) {
            BIO_printf(bio, days >= 0 ? " (in %d days)" : " (%d days ago)",
                       days >= 0 ? days : -days);
        }
    }
    if (!chain || sk_X509_num(chain) == 0) {
        BIO_puts(bio, " none");
    }
    return check_tls_bio_text(bio, out, outlen);
}

/* tlserr_describe()'s sentence for verification error vr, as if the handshake had stopped. */
static const char *
check_tls_describe_verify(SSL *ssl, long vr, const char *name, char *out, size_t outlen)
{
    long saved = SSL_get_verify_result(ssl);
    int mode = SSL_get_verify_mode(ssl);

    /* tlserr ignores the verify result under SSL_VERIFY_NONE: describe as if it were on. */
    SSL_set_verify(ssl, SSL_VERIFY_PEER, SSL_get_verify_callback(ssl));
    SSL_set_verify_result(ssl, vr);
    tlserr_describe(ssl, NULL, 0, 0, name, out, outlen);
    SSL_set_verify_result(ssl, saved);
    SSL_set_verify(ssl, mode, SSL_get_verify_callback(ssl));
    return out;
}

/* Step 3 failed: the cause, in the daemon's words. */
static void
check_tls_fail(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
               SSL *ssl, const struct check_tls_result *res, const char *name, long t0)
{
    const char *dial = t->dial[0] ? t->dial : t->address;
    bool silent = BIO_number_read(SSL_get_rbio(ssl)) == 0;
    char why[1024];

    if (res->timed_out && silent) {
        tlserr_format(why, sizeof(why),
                      "not TLS? the TLS handshake with %s timed out after %d "
                      "ms: the peer accepted TCP but never answered the ClientHello (a plaintext "
                      "Kafka listener waits like this)",
                      dial, cc->tls_handshake_timeout_ms);
    } else if (res->timed_out) {
        tlserr_format(why, sizeof(why),
                      "TLS handshake with %s timed out after %d ms: the peer "
                      "stopped answering halfway",
                      dial, cc->tls_handshake_timeout_ms);
    } else if (res->n_errs == 0 && silent) {
        tlserr_format(why, sizeof(why),
                      "not TLS: %s closed the connection without answering "
                      "the TLS ClientHello (a plaintext Kafka listener hangs up like this)",
                      dial);
    } else {
        /* Verification never stops the handshake here (steps 4 and 5 report it). */
        SSL_set_verify_result(ssl, X509_V_OK);
        tlserr_describe(ssl, res->errs, res->n_errs, res->sock_err, name, why, sizeof(why));
    }
    check_step_add(rep, t, CHECK_STEP_TLS, CHECK_FAIL, check_now_ms() - t0, check_tls_fix(why),
                   "%s", why);
}

/* Step 4: the chain against the trust store. */
static bool
check_tls_chain(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
                SSL *ssl, const struct check_tls_result *res, const char *name)
{
    const char *store = tlsctx_trust_store(SSL_get_SSL_CTX(ssl));
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    char why[1024], anchor[512];
    BIO *bio;

    if (!store) {
        store = tlsctx_trust_store_name(cc);
    }
    if (res->chain_err != X509_V_OK) {
        check_tls_describe_verify(ssl, res->chain_err, name, why, sizeof(why));
    }
    if (cc->tls_verify == KB_VERIFY_NONE) {
        return check_step_add(rep, t, CHECK_STEP_CHAIN, CHECK_WARN, 0,
                              "set tls_verify = full: anyone on the path can impersonate the "
                              "broker now",
                              "NOT verified (tls_verify = none); verification would %s%s",
                              res->chain_err == X509_V_OK ? "pass against " : "fail: ",
                              res->chain_err == X509_V_OK ? store : why);
    }
    if (res->chain_err != X509_V_OK) {
        return check_step_add(rep, t, CHECK_STEP_CHAIN, CHECK_FAIL, 0, check_tls_fix(why), "%s",
                              why);
    }
    bio = BIO_new(BIO_s_mem());
    if (bio && chain && sk_X509_num(chain) > 0) {
        X509_NAME_print_ex(bio, X509_get_subject_name(sk_X509_value(chain, sk_X509_num(chain) - 1)),
                           0, XN_FLAG_RFC2253);
    }
    check_tls_bio_text(bio, anchor, sizeof(anchor));
    return check_step_add(rep, t, CHECK_STEP_CHAIN, CHECK_OK, 0, NULL,
                          "trusted: a chain of %d certificate%s up to '%s', from the trust store "
                          "(%s)",
                          chain ? sk_X509_num(chain) : 0,
                          chain && sk_X509_num(chain) == 1 ? "" : "s", anchor, store);
}

/* Step 5: the expected name against the certificate. */
static bool
check_tls_hostname(struct check_report *rep, struct check_target *t,
                   const struct kb_cluster_conf *cc, SSL *ssl, const struct check_tls_result *res,
                   const char *name)
{
    const char *peername = SSL_get0_peername(ssl);
    char why[1024];

    if (cc->tls_verify != KB_VERIFY_FULL) {
        return check_step_add(rep, t, CHECK_STEP_HOSTNAME, CHECK_WARN, 0,
                              cc->tls_verify == KB_VERIFY_CHAIN
                                  ? "set tls_verify = full: without the name check any "
                                    "certificate from a trusted CA is accepted"
                                  : "set tls_verify = full",
                              "not checked (tls_verify = %s)", conf_tls_verify_str(cc->tls_verify));
    }
    if (res->name_err != X509_V_OK) {
        check_tls_describe_verify(ssl, res->name_err, name, why, sizeof(why));
        return check_step_add(rep, t, CHECK_STEP_HOSTNAME, CHECK_FAIL, 0, check_tls_fix(why), "%s",
                              why);
    }
    if (peername) {
        return check_step_add(rep, t, CHECK_STEP_HOSTNAME, CHECK_OK, 0, NULL,
                              "expected '%s'%s%s%s: the certificate names '%s'", name,
                              cc->tls_sni ? " (tls_sni '" : "", cc->tls_sni ? cc->tls_sni : "",
                              cc->tls_sni ? "')" : "", peername);
    }
    return check_step_add(rep, t, CHECK_STEP_HOSTNAME, CHECK_OK, 0, NULL,
                          "expected IP %s: the certificate carries it as an IP subjectAltName",
                          name);
}

/* ---- Public ------------------------------------------------------------------------------ */

bool
check_tls_run(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
              SSL_CTX *ctx, const struct kb_hostport *name, struct check_conn *c)
{
    struct check_tls_result res;
    char detail[CHECK_DETAIL_MAX];
    long t0 = check_now_ms();
    SSL *ssl;

    memset(&res, 0, sizeof(res));
    ssl = tlsconn_new(ctx, cc, name->host, detail, sizeof(detail));
    if (!ssl) {
        return check_step_add(rep, t, CHECK_STEP_TLS, CHECK_FAIL, 0, NULL, "TLS setup failed: %s",
                              detail);
    }
    if (SSL_set_fd(ssl, c->fd) != 1) {
        tlserr_drain(detail, sizeof(detail));
        SSL_free(ssl);
        return check_step_add(rep, t, CHECK_STEP_TLS, CHECK_FAIL, 0, NULL, "TLS setup failed: %s",
                              detail);
    }
    SSL_set_app_data(ssl, &res);
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl), check_tls_on_verify);
    check_tls_handshake(ssl, c->fd, t0 + cc->tls_handshake_timeout_ms, &res);
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl), NULL);
    SSL_set_app_data(ssl, NULL);
    if (!res.done) {
        check_tls_fail(rep, t, cc, ssl, &res, name->host, t0);
        SSL_free(ssl);
        return false;
    }
    check_step_add(rep, t, CHECK_STEP_TLS, CHECK_OK, check_now_ms() - t0, NULL, "%s",
                   check_tls_session(ssl, detail, sizeof(detail)));
    if (!check_tls_chain(rep, t, cc, ssl, &res, name->host) ||
        !check_tls_hostname(rep, t, cc, ssl, &res, name->host)) {
        SSL_free(ssl);
        return false;
    }
    c->ssl = ssl;
    return true;
}
