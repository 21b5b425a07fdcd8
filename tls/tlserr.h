/*
 * tlserr.h - turn TLS state into one precise sentence for operators: a failed handshake
 * (untrusted chain with issuer, host name mismatch, expired, not TLS, protocol version, ...),
 * an established session (for the "connected" log line), or the OpenSSL error queue.
 * Never logs; every function writes into a caller buffer.
 */
#ifndef KB_TLS_TLSERR_H
#define KB_TLS_TLSERR_H

#include <stdarg.h>
#include <stddef.h>

#include <openssl/ssl.h>

/*
 * Describes why the handshake on ssl failed. errs/n_errs are the OpenSSL error codes the caller
 * drained (e.g. from bufferevent_get_openssl_error), oldest first; sock_err is errno or 0.
 * expected is the name that was being verified (may be NULL); the names tlsconn_new() set on
 * ssl take precedence, as they also cover tls_sni. ssl may be NULL (then only errs and sock_err
 * count). Writes one line into out (never truncated mid-UTF-8, always NUL-terminated) and
 * returns out. Never logs; changes neither ssl nor the thread's OpenSSL error queue.
 * Sentences start with a stable cause keyword tests can match:
 *   "certificate not trusted", "hostname mismatch", "certificate expired",
 *   "certificate not yet valid", "not TLS", "TLS protocol error", "connection closed during
 *   TLS handshake", "TLS handshake failed".
 */
const char *tlserr_describe(SSL *ssl, const unsigned long *errs, size_t n_errs, int sock_err,
                            const char *expected, char *out, size_t outlen);

/* What kind of failure tlserr_classify() found: decided where the sentence is chosen. */
enum tlserr_class {
    TLSERR_CLASS_OTHER = 0, /* "TLS handshake failed", "connection closed during TLS handshake" */
    TLSERR_CLASS_UNTRUSTED, /* "certificate not trusted" */
    TLSERR_CLASS_HOSTNAME,  /* "hostname mismatch" */
    TLSERR_CLASS_EXPIRED,   /* "certificate expired", "certificate not yet valid" */
    TLSERR_CLASS_NOT_TLS,   /* "not TLS" */
    TLSERR_CLASS_PROTOCOL,  /* "TLS protocol error" */
};

/* tlserr_describe(), and the class of the failure it describes in *cls. */
const char *tlserr_classify(SSL *ssl, const unsigned long *errs, size_t n_errs, int sock_err,
                            const char *expected, char *out, size_t outlen, enum tlserr_class *cls);

/*
 * Describes an established session on ssl for the "connected" log line, e.g.
 * "TLSv1.3 TLS_AES_256_GCM_SHA384, peer 'CN=localhost,O=x' (issuer 'CN=x CA,O=x'), verified as
 * 'localhost', expires in 364 days". Says "NOT verified" with tls_verify = none. Same buffer
 * rules as tlserr_describe(); returns out.
 */
const char *tlserr_describe_session(SSL *ssl, char *out, size_t outlen);

/* Drains the calling thread's OpenSSL error queue into one line ("; "-joined). Returns out. */
const char *tlserr_drain(char *out, size_t outlen);

/*
 * snprintf into out that, when it has to cut, cuts at a UTF-8 character boundary. outlen 0
 * writes nothing. Returns out. Shared by tls/ for every message it builds.
 */
const char *tlserr_format(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *tlserr_vformat(char *out, size_t outlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
