/*
 * tlsconn.h - one upstream TLS connection: SNI, host name / IP verification per tls_verify.
 */
#ifndef KB_TLS_TLSCONN_H
#define KB_TLS_TLSCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct kb_cluster_conf;

/*
 * Returns a new client SSL (caller owns; normally handed to a bufferevent with
 * BEV_OPT_CLOSE_ON_FREE) for a connection to broker host `name` (the advertised or configured
 * name, not the connect_to target). SNI is tls_sni or name, omitted for IP literals. With
 * tls_verify = full the peer must present tls_sni when it is set, else name: a DNS name as a
 * DNS SAN, an IP literal as an IP SAN (tls_sni replaces name; a certificate for name alone is
 * then refused); chain checks the chain only; none checks nothing.
 * The expected names stay on the SSL, so tlserr_describe() can report them. NULL with the
 * reason in err on failure. Clears the thread's OpenSSL error queue.
 */
SSL *tlsconn_new(SSL_CTX *ctx, const struct kb_cluster_conf *cc, const char *name, char *err,
                 size_t errlen);

/* True when host is an IPv4 or IPv6 literal (no brackets), e.g. "10.0.0.1" or "::1". */
bool tlsconn_is_ip_literal(const char *host);

#endif
