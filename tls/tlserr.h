/*
 * tlserr.h - turn a failed TLS handshake into one precise sentence for operators:
 * untrusted chain (with issuer), host name mismatch (expected vs names in the certificate),
 * expired / not yet valid, peer is not speaking TLS, protocol version, and so on.
 */
#ifndef KB_TLS_TLSERR_H
#define KB_TLS_TLSERR_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * Describes why the handshake on ssl failed. errs/n_errs are the OpenSSL error codes the caller
 * drained (e.g. from bufferevent_get_openssl_error), oldest first; sock_err is errno or 0.
 * expected is the name that was being verified (may be NULL). Writes one line into out (never
 * truncated mid-UTF-8, always NUL-terminated) and returns out. Never logs.
 * Sentences start with a stable cause keyword tests can match:
 *   "certificate not trusted", "hostname mismatch", "certificate expired",
 *   "certificate not yet valid", "not TLS", "TLS protocol error", "connection closed during
 *   TLS handshake", "TLS handshake failed".
 */
const char *tlserr_describe(SSL *ssl, const unsigned long *errs, size_t n_errs, int sock_err,
                            const char *expected, char *out, size_t outlen);

/* Drains the calling thread's OpenSSL error queue into one line ("; "-joined). Returns out. */
const char *tlserr_drain(char *out, size_t outlen);

#endif
