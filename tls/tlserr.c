/*
 * tlserr.c - the words for TLS trouble. Classifies a failed handshake from the verify result,
 * the certificates the peer sent, the drained OpenSSL error codes and errno, and formats
 * certificate names, SANs and dates for people. Peer-supplied text is reduced to printable
 * ASCII before it reaches a log line. Never logs, never touches key material.
 */
#include "tls/tlserr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tlsconn.h"
#include "tls/tlsctx.h"
#include "tls/tlssess.h"

#define TLSERR_MAX_SANS 8   /* names listed in a mismatch before "and N more" */
#define TLSERR_NAME_MAX 256 /* a formatted DN or SAN; longer ones are cut */

/* Why a handshake failed, in increasing precedence: the strongest error code decides. */
enum tlserr_cause {
    TLSERR_OTHER = 0, /* "TLS handshake failed: <reason>" */
    TLSERR_RECORD,    /* a bare record layer failure: most likely not TLS */
    TLSERR_EOF,       /* the peer hung up */
    TLSERR_PROTOCOL,  /* an alert or a version the two sides do not share */
    TLSERR_NOT_TLS,   /* the bytes back were not a TLS record */
};

/* An append-only view of a caller's buffer. */
struct tlserr_buf {
    char *out;  /* the caller's buffer, always NUL-terminated when cap > 0 */
    size_t cap; /* its size */
    size_t len; /* bytes used, without the NUL */
    bool cut;   /* something did not fit */
};

/* ---- Internal: text ---------------------------------------------------------------------- */

static void
tlserr_buf_init(struct tlserr_buf *b, char *out, size_t cap)
{
    b->out = out;
    b->cap = cap;
    b->len = 0;
    b->cut = false;
    if (cap > 0) {
        out[0] = '\0';
    }
}

static void __attribute__((format(printf, 2, 0)))
tlserr_buf_vadd(struct tlserr_buf *b, const char *fmt, va_list ap)
{
    size_t avail;
    int n;

    if (b->cap == 0 || b->cut) {
        b->cut = true;
        return;
    }
    avail = b->cap - b->len;
    n = vsnprintf(b->out + b->len, avail, fmt, ap);
    if (n < 0) {
        b->out[b->len] = '\0';
        return;
    }
    if ((size_t)n >= avail) {
        b->len = b->cap - 1;
        b->cut = true;
        return;
    }
    b->len += (size_t)n;
}

static void __attribute__((format(printf, 2, 3)))
tlserr_buf_add(struct tlserr_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tlserr_buf_vadd(b, fmt, ap);
    va_end(ap);
}

/* Finishes b: when it was cut, drops a trailing partial UTF-8 sequence. Returns the text. */
static const char *
tlserr_buf_done(struct tlserr_buf *b)
{
    size_t start = b->len, need;
    unsigned char lead;

    if (!b->cut || b->len == 0) {
        return b->cap > 0 ? b->out : "";
    }
    while (start > 0 && b->len - start < 3 && ((unsigned char)b->out[start - 1] & 0xC0) == 0x80) {
        start--;
    }
    if (start == 0) {
        return b->out;
    }
    start--; /* the lead byte of the last character */
    lead = (unsigned char)b->out[start];
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (b->len - start < need) {
        b->out[start] = '\0';
        b->len = start;
    }
    return b->out;
}

const char *
tlserr_vformat(char *out, size_t outlen, const char *fmt, va_list ap)
{
    struct tlserr_buf b;

    tlserr_buf_init(&b, out, outlen);
    tlserr_buf_vadd(&b, fmt, ap);
    tlserr_buf_done(&b);
    return out;
}

const char *
tlserr_format(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tlserr_vformat(out, outlen, fmt, ap);
    va_end(ap);
    return out;
}

/* Copies peer-supplied bytes as printable ASCII: anything else becomes '?'. */
static const char *
tlserr_clean(const unsigned char *p, int len, char *out, size_t outlen)
{
    size_t i, n = len > 0 ? (size_t)len : 0;

    if (n >= outlen) {
        n = outlen - 1;
    }
    for (i = 0; i < n; i++) {
        out[i] = (p[i] >= 0x20 && p[i] < 0x7F) ? (char)p[i] : '?';
    }
    out[n] = '\0';
    return out;
}

/* "CN=x,O=y" (RFC 2253 order; non-ASCII and control bytes escaped), or "?" without a name. */
static const char *
tlserr_name_str(const X509_NAME *name, char *out, size_t outlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int n = -1;

    if (bio && name && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(bio, out, (int)(outlen - 1));
    }
    BIO_free(bio);
    if (n < 0) {
        return tlserr_format(out, outlen, "?");
    }
    out[n] = '\0';
    if (n == 0) {
        return tlserr_format(out, outlen, "(empty subject)");
    }
    return out;
}

/* "2020-01-01 00:00:00 UTC", or "?" when t does not parse. */
static const char *
tlserr_time_str(const ASN1_TIME *t, char *out, size_t outlen)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        return tlserr_format(out, outlen, "?");
    }
    return out;
}

/* Whole days from now until t (negative when t is past); 0 when t does not parse. */
static int
tlserr_days_until(const ASN1_TIME *t)
{
    int days = 0, secs = 0;

    if (!t || ASN1_TIME_diff(&days, &secs, NULL, t) != 1) {
        return 0;
    }
    return days;
}

/* An IP address OpenSSL printed ("0:0:0:0:0:0:0:1") the way people write it ("::1"). */
static const char *
tlserr_ip_str(const char *asc, char *out, size_t outlen)
{
    unsigned char addr[16];

    if (asc && inet_pton(AF_INET6, asc, addr) == 1 && inet_ntop(AF_INET6, addr, out, outlen)) {
        return out;
    }
    return asc;
}

/* The reason text of one OpenSSL error code; tmp holds it when OpenSSL has no string. */
static const char *
tlserr_reason(unsigned long e, char *tmp, size_t tmplen)
{
    const char *r;

    if (ERR_SYSTEM_ERROR(e)) {
        return strerror(ERR_GET_REASON(e));
    }
    r = ERR_reason_error_string(e);
    return r ? r : tlserr_format(tmp, tmplen, "OpenSSL error %08lX", e);
}

/* ---- Internal: certificates -------------------------------------------------------------- */

/* The certificates the peer sent, leaf first. OpenSSL 3.0 keeps them after a failed verify,
 * when SSL_get0_peer_certificate() is already NULL. */
static X509 *
tlserr_peer_cert(SSL *ssl, bool top)
{
    STACK_OF(X509) *chain = ssl ? SSL_get_peer_cert_chain(ssl) : NULL;
    int n = chain ? sk_X509_num(chain) : 0;

    if (n > 0) {
        return sk_X509_value(chain, top ? n - 1 : 0);
    }
    return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

/* The first certificate, leaf first, that has expired (or is not yet valid). The verified
 * chain comes first because it also holds the trust anchor from the store. */
static X509 *
tlserr_out_of_date(SSL *ssl, bool expired)
{
    STACK_OF(X509) * chains[2] = {SSL_get0_verified_chain(ssl), SSL_get_peer_cert_chain(ssl)};
    size_t c;
    int i;
    X509 *x;

    for (c = 0; c < 2; c++) {
        for (i = 0; chains[c] && i < sk_X509_num(chains[c]); i++) {
            x = sk_X509_value(chains[c], i);
            if (expired ? X509_cmp_current_time(X509_get0_notAfter(x)) < 0
                        : X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
                return x;
            }
        }
    }
    return tlserr_peer_cert(ssl, false);
}

/* Appends the names cert is valid for: "DNS:a, IP:1.2.3.4", or its CN when it has no SAN. */
static void
tlserr_add_names(struct tlserr_buf *b, X509 *cert)
{
    GENERAL_NAMES *gens = cert ? X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL) : NULL;
    const X509_NAME *subj;
    char name[TLSERR_NAME_MAX];
    int i, shown = 0, more = 0, idx;
    const GENERAL_NAME *g;
    const ASN1_STRING *s;

    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS && g->type != GEN_IPADD) {
            continue;
        }
        if (shown == TLSERR_MAX_SANS) {
            more++;
            continue;
        }
        s = g->type == GEN_DNS ? g->d.dNSName : g->d.iPAddress;
        if (g->type == GEN_DNS) {
            tlserr_clean(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), name, sizeof(name));
        } else if ((ASN1_STRING_length(s) != 4 && ASN1_STRING_length(s) != 16) ||
                   !inet_ntop(ASN1_STRING_length(s) == 16 ? AF_INET6 : AF_INET,
                              ASN1_STRING_get0_data(s), name, sizeof(name))) {
            tlserr_format(name, sizeof(name), "(malformed)");
        }
        tlserr_buf_add(b, "%s%s:%s", shown ? ", " : "", g->type == GEN_DNS ? "DNS" : "IP", name);
        shown++;
    }
    GENERAL_NAMES_free(gens);
    if (more) {
        tlserr_buf_add(b, " and %d more", more);
    }
    if (shown) {
        return;
    }
    subj = cert ? X509_get_subject_name(cert) : NULL;
    idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    if (idx < 0) {
        tlserr_buf_add(b, "nothing (no subjectAltName, no CN)");
        return;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    tlserr_buf_add(
        b, "CN=%s (no subjectAltName)",
        tlserr_clean(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), name, sizeof(name)));
}

/*
 * Writes the names ssl was told to expect ("'a' or 'b'") into out; falls back to expected,
 * then to the IP address. Returns whether the expectation is an IP literal.
 */
static bool
tlserr_expected(SSL *ssl, const char *expected, char *out, size_t outlen)
{
    X509_VERIFY_PARAM *param = ssl ? SSL_get0_param(ssl) : NULL;
    char *ip = NULL, tmp[INET6_ADDRSTRLEN];
    struct tlserr_buf b;
    const char *host;
    bool is_ip = false;
    int i;

    tlserr_buf_init(&b, out, outlen);
    for (i = 0; param && (host = X509_VERIFY_PARAM_get0_host(param, i)) != NULL; i++) {
        tlserr_buf_add(&b, "%s'%s'", i ? " or " : "", host);
    }
    if (b.len == 0) {
        ip = (!expected && param) ? X509_VERIFY_PARAM_get1_ip_asc(param) : NULL;
        host = expected ? expected : tlserr_ip_str(ip, tmp, sizeof(tmp));
        is_ip = tlsconn_is_ip_literal(host) || ip != NULL;
        tlserr_buf_add(&b, host ? "'%s'" : "%s", host ? host : "(unknown)");
    }
    OPENSSL_free(ip);
    tlserr_buf_done(&b);
    return is_ip;
}

/* One sentence for a failed certificate verification (verify result vr); returns its class. */
static enum tlserr_class
tlserr_add_verify(struct tlserr_buf *b, SSL *ssl, long vr, const char *expected)
{
    char name[TLSERR_NAME_MAX], when[64], want[2 * TLSERR_NAME_MAX];
    const char *store = tlsctx_trust_store(SSL_get_SSL_CTX(ssl));
    bool is_ip;
    X509 *x;

    switch (vr) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        x = tlserr_peer_cert(ssl, true);
        tlserr_buf_add(b, "certificate not trusted: issuer '%s' is not in the trust store (%s)",
                       tlserr_name_str(x ? X509_get_issuer_name(x) : NULL, name, sizeof(name)),
                       store ? store : "unknown");
        return TLSERR_CLASS_UNTRUSTED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        is_ip = tlserr_expected(ssl, expected, want, sizeof(want));
        tlserr_buf_add(b, "hostname mismatch: expected %s, certificate names ", want);
        tlserr_add_names(b, tlserr_peer_cert(ssl, false));
        if (is_ip) {
            tlserr_buf_add(b, "; MSK certificates name hosts (b-N.<cluster>...amazonaws.com), "
                              "not IP addresses: use the broker's host name in "
                              "bootstrap_servers, or connect_to to dial an IP while verifying "
                              "the name");
        }
        return TLSERR_CLASS_HOSTNAME;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        x = tlserr_out_of_date(ssl, true);
        tlserr_buf_add(b, "certificate expired: '%s' not after %s (%d days ago)",
                       tlserr_name_str(x ? X509_get_subject_name(x) : NULL, name, sizeof(name)),
                       tlserr_time_str(x ? X509_get0_notAfter(x) : NULL, when, sizeof(when)),
                       x ? -tlserr_days_until(X509_get0_notAfter(x)) : 0);
        return TLSERR_CLASS_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        x = tlserr_out_of_date(ssl, false);
        tlserr_buf_add(b,
                       "certificate not yet valid: '%s' not before %s (is this host's clock "
                       "right?)",
                       tlserr_name_str(x ? X509_get_subject_name(x) : NULL, name, sizeof(name)),
                       tlserr_time_str(x ? X509_get0_notBefore(x) : NULL, when, sizeof(when)));
        return TLSERR_CLASS_EXPIRED;
    default:
        x = tlserr_peer_cert(ssl, false);
        tlserr_buf_add(b, "TLS handshake failed: certificate rejected: %s (peer '%s')",
                       X509_verify_cert_error_string(vr),
                       tlserr_name_str(x ? X509_get_subject_name(x) : NULL, name, sizeof(name)));
        return TLSERR_CLASS_OTHER;
    }
}

/* ---- Internal: error codes --------------------------------------------------------------- */

/* True for reasons that mean the two sides share no TLS version. */
static bool
tlserr_is_version(unsigned long e)
{
    int r = ERR_GET_REASON(e);

    return ERR_GET_LIB(e) == ERR_LIB_SSL &&
           (r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION || r == SSL_R_UNSUPPORTED_PROTOCOL ||
            r == SSL_R_VERSION_TOO_LOW || r == SSL_R_WRONG_SSL_VERSION ||
            r == SSL_R_NO_PROTOCOLS_AVAILABLE || r == SSL_R_UNSUPPORTED_SSL_VERSION);
}

static enum tlserr_cause
tlserr_cause_of(unsigned long e)
{
    int r = ERR_GET_REASON(e);

    if (ERR_SYSTEM_ERROR(e)) {
        return (r == ECONNRESET || r == EPIPE) ? TLSERR_EOF : TLSERR_OTHER;
    }
    if (ERR_GET_LIB(e) != ERR_LIB_SSL) {
        return TLSERR_OTHER;
    }
    switch (r) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_UNKNOWN_PROTOCOL:
        return TLSERR_NOT_TLS;
#ifdef SSL_R_RECORD_LAYER_FAILURE /* OpenSSL 3.2+; 3.0 reports the specific reason only */
    case SSL_R_RECORD_LAYER_FAILURE:
        return TLSERR_RECORD;
#endif
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return TLSERR_EOF;
    default:
        break;
    }
    /* Alerts from the peer are SSL_AD_REASON_OFFSET + the alert number. */
    if ((r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256) || tlserr_is_version(e)) {
        return TLSERR_PROTOCOL;
    }
    return TLSERR_OTHER;
}

/* "TLS protocol error: <reason>", with what an operator can do about the common ones. */
static void
tlserr_add_protocol(struct tlserr_buf *b, SSL *ssl, unsigned long e)
{
    char tmp[64];
    int r = ERR_GET_REASON(e);

    tlserr_buf_add(b, "TLS protocol error: %s", tlserr_reason(e, tmp, sizeof(tmp)));
    if (tlserr_is_version(e)) {
        tlserr_buf_add(b, " (the broker offers no TLS version kbridge accepts; kbridge requires "
                          "TLS 1.2 or newer)");
    } else if (r == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
               (r == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE && ssl && !SSL_get_certificate(ssl))) {
        tlserr_buf_add(b, " (the broker may require a client certificate: set tls_cert_file "
                          "and tls_key_file)");
    } else if ((r == SSL_R_TLSV1_ALERT_UNKNOWN_CA || r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) &&
               ssl && SSL_get_certificate(ssl)) {
        tlserr_buf_add(b, " (the broker rejected kbridge's client certificate, tls_cert_file)");
    }
}

/* "connection closed during TLS handshake", with a hint when the peer never said a word. */
static void
tlserr_add_eof(struct tlserr_buf *b, SSL *ssl, int sock_err)
{
    BIO *rbio = ssl ? SSL_get_rbio(ssl) : NULL;

    tlserr_buf_add(b, "connection closed during TLS handshake");
    if (sock_err) {
        tlserr_buf_add(b, " (%s)", strerror(sock_err));
    }
    if (rbio && BIO_number_read(rbio) == 0) {
        tlserr_buf_add(
            b, "; the peer never answered the ClientHello (wrong port? a plaintext "
               "Kafka listener hangs up like this; MSK TLS is 9094, or 9194 with public access)");
    }
}

/* ---- Public ------------------------------------------------------------------------------ */

const char *
tlserr_describe(SSL *ssl, const unsigned long *errs, size_t n_errs, int sock_err,
                const char *expected, char *out, size_t outlen)
{
    enum tlserr_class cls;

    return tlserr_classify(ssl, errs, n_errs, sock_err, expected, out, outlen, &cls);
}

const char *
tlserr_classify(SSL *ssl, const unsigned long *errs, size_t n_errs, int sock_err,
                const char *expected, char *out, size_t outlen, enum tlserr_class *cls)
{
    enum tlserr_cause cause = TLSERR_OTHER, c;
    unsigned long top = 0; /* the error that decides the cause: the oldest of the strongest */
    struct tlserr_buf b;
    char tmp[64];
    long vr;
    size_t i;

    tlserr_buf_init(&b, out, outlen);
    vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
        /* Parsing a malformed peer certificate may queue errors: leave the queue as it was. */
        ERR_set_mark();
        *cls = tlserr_add_verify(&b, ssl, vr, expected);
        ERR_pop_to_mark();
        return tlserr_buf_done(&b);
    }
    for (i = 0; errs && i < n_errs; i++) {
        c = tlserr_cause_of(errs[i]);
        if (i == 0 || c > cause) {
            cause = c;
            top = errs[i];
        }
    }
    if (top == 0 && (sock_err == 0 || sock_err == ECONNRESET || sock_err == EPIPE)) {
        cause = TLSERR_EOF;
    }
    *cls = cause == TLSERR_NOT_TLS || cause == TLSERR_RECORD ? TLSERR_CLASS_NOT_TLS
           : cause == TLSERR_PROTOCOL                        ? TLSERR_CLASS_PROTOCOL
                                                             : TLSERR_CLASS_OTHER;
    switch (cause) {
    case TLSERR_NOT_TLS:
    case TLSERR_RECORD:
        tlserr_buf_add(&b, "not TLS: the peer answered in plaintext (wrong port? MSK TLS is 9094, "
                           "9194 with public access; plaintext 9092; SASL/SCRAM 9096/9196; "
                           "IAM 9098/9198)");
        break;
    case TLSERR_EOF:
        tlserr_add_eof(&b, ssl, sock_err);
        break;
    case TLSERR_PROTOCOL:
        tlserr_add_protocol(&b, ssl, top);
        break;
    default:
        tlserr_buf_add(&b, "TLS handshake failed: %s",
                       top ? tlserr_reason(top, tmp, sizeof(tmp)) : strerror(sock_err));
        break;
    }
    return tlserr_buf_done(&b);
}

const char *
tlserr_describe_session(SSL *ssl, char *out, size_t outlen)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    char subj[TLSERR_NAME_MAX], issuer[TLSERR_NAME_MAX], tmp[INET6_ADDRSTRLEN];
    const char *peername = SSL_get0_peername(ssl);
    struct tlserr_buf b;
    char *ip;
    int days;

    tlserr_buf_init(&b, out, outlen);
    ERR_set_mark();
    ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    tlserr_buf_add(&b, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    if (peer) {
        tlserr_buf_add(&b, ", peer '%s' (issuer '%s')",
                       tlserr_name_str(X509_get_subject_name(peer), subj, sizeof(subj)),
                       tlserr_name_str(X509_get_issuer_name(peer), issuer, sizeof(issuer)));
    } else {
        tlserr_buf_add(&b, ", no peer certificate");
    }
    if (SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE) {
        tlserr_buf_add(&b, ", NOT verified (tls_verify = none)");
    } else if (SSL_session_reused(ssl)) {
        /* No certificate is checked on resumption; the session was made by a handshake that
         * passed the same checks (tlssess.h), for the broker it is keyed by. */
        tlserr_buf_add(&b, ", %s when the session was made",
                       X509_VERIFY_PARAM_get0_host(param, 0) || ip ? "verified" : "chain verified");
    } else if (peername || ip) {
        tlserr_buf_add(&b, ", verified as '%s'",
                       peername ? peername : tlserr_ip_str(ip, tmp, sizeof(tmp)));
    } else {
        tlserr_buf_add(&b, ", chain verified, name not checked");
    }
    if (peer) {
        days = tlserr_days_until(X509_get0_notAfter(peer));
        tlserr_buf_add(&b, days >= 0 ? ", expires in %d days" : ", expired %d days ago",
                       days >= 0 ? days : -days);
    }
    if (SSL_session_reused(ssl)) {
        tlserr_buf_add(&b, ", resumed (session of %s)",
                       tlssess_key(ssl) ? tlssess_key(ssl) : "this broker");
    }
    OPENSSL_free(ip);
    ERR_pop_to_mark();
    return tlserr_buf_done(&b);
}

const char *
tlserr_drain(char *out, size_t outlen)
{
    struct tlserr_buf b;
    const char *data;
    unsigned long e;
    char tmp[64];
    int flags;

    tlserr_buf_init(&b, out, outlen);
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        tlserr_buf_add(&b, "%s%s", b.len ? "; " : "", tlserr_reason(e, tmp, sizeof(tmp)));
        if ((flags & ERR_TXT_STRING) && data && *data) {
            tlserr_buf_add(&b, " (%s)", data);
        }
    }
    return tlserr_buf_done(&b);
}
