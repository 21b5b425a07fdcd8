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
 * reason. Never called for a cluster with tls = off.
 */
SSL_CTX *tlsctx_new(const struct kb_conf *conf, const struct kb_cluster_conf *cc, char *err,
                    size_t errlen);

/* Human name of the trust store in use, e.g. "/etc/ssl/certs (system)" or the CA file path. */
const char *tlsctx_trust_store_name(const struct kb_cluster_conf *cc);

#endif
