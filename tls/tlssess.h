/*
 * tlssess.h - TLS session resumption to brokers: the session (or TLS 1.3 ticket) a broker
 * issues is kept per broker address and offered on the next connection to the same address,
 * so reconnects and new client connections skip the certificate exchange and its checks.
 */
#ifndef KB_TLS_TLSSESS_H
#define KB_TLS_TLSSESS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#define TLSSESS_MAX 256 /* broker addresses remembered per context; the oldest goes first */

/*
 * Turns resumption on for ctx (a client context): sessions are cached in ctx, the newest one
 * per key. A session is only ever made by a handshake that passed ctx's verification, and only
 * offered again under the same key in the same ctx (same trust store and tls_verify), so a
 * resumed connection is to the broker that was verified. false when OpenSSL fails.
 */
bool tlssess_enable(SSL_CTX *ctx);

/*
 * Before the handshake: offers the cached session for key (the broker's "host:port" as
 * verified) on ssl, and files the session the broker issues on ssl under key. A context
 * without tlssess_enable(), or no usable session, means a full handshake. false only when
 * out of memory (ssl still works, without resumption).
 */
bool tlssess_offer(SSL *ssl, const char *key);

/*
 * ssl failed at the TLS level (a fatal alert, a bad record): the session cached under its key
 * is dropped, so the next connection to that broker makes a full, verified handshake.
 */
void tlssess_forget(SSL *ssl);

/* The key ssl was offered under, or NULL. */
const char *tlssess_key(SSL *ssl);

#endif
