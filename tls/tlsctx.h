/*
 * tlsctx.h - build one client SSL_CTX per cluster from a config snapshot: TLS 1.2+, the trust
 * store (tls_ca_file or the system store), verification mode, optional client certificate.
 * Reload builds a new context and swaps it in only when complete (pgbouncer sbuf_tls_setup).
 */
#ifndef KB_TLS_TLSCTX_H
#define KB_TLS_TLSCTX_H

#include <stddef.h>

#include <openssl/ssl.h>

struct kb_conf;
struct kb_cluster_conf;

/*
 * Returns a new SSL_CTX (caller frees with SSL_CTX_free) or NULL with one line in err of the
 * form "PATH:LINE: cluster 'NAME': tls_key_file '/x': key does not match certificate
 * (tls_cert_file '/y')", naming the file, the key's line in conf->path, and the OpenSSL or OS
 * reason. A CA file that holds no PEM certificate (the "Failed to load SSL keystore" case)
 * says so. With the system store and tls_verify != none, a missing or empty system store is
 * an error too. Never called for a cluster with tls = off. Never prompts for a passphrase.
 * Clears the thread's OpenSSL error queue.
 */
SSL_CTX *tlsctx_new(const struct kb_conf *conf, const struct kb_cluster_conf *cc, char *err,
                    size_t errlen);

/*
 * Human name of the trust store in use: the tls_ca_file path, or for the system store
 * "system: FILE, DIR" (SSL_CERT_FILE / SSL_CERT_DIR as they were at the first call).
 */
const char *tlsctx_trust_store_name(const struct kb_cluster_conf *cc);

/* The trust store name recorded on a context made by tlsctx_new(); NULL for other contexts. */
const char *tlsctx_trust_store(const SSL_CTX *ctx);

#endif
