/*
 * tlsconn.c - one client SSL per upstream connection: SNI and the names the broker's
 * certificate must carry, per tls_verify. IP literals get no SNI (RFC 6066 forbids it) and
 * are checked against IP SANs.
 */
#include "tls/tlsconn.h"

#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "tls/tlserr.h"

/*
 * Sets what ssl checks per tls_verify. full: the certificate must name tls_sni when it is set
 * (it replaces the broker's name: a certificate for the broker's name alone is refused), else
 * the broker's name; a DNS name as a DNS SAN, an IP literal as an IP SAN. The name stays in the
 * SSL's verify parameters, where tlserr_describe() finds it.
 */
static bool
tlsconn_set_verify(SSL *ssl, const struct kb_cluster_conf *cc, const char *name)
{
    const char *expect = cc->tls_sni ? cc->tls_sni : name;

    if (cc->tls_verify == KB_VERIFY_NONE) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        return true;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    if (cc->tls_verify == KB_VERIFY_CHAIN) {
        return true;
    }
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (tlsconn_is_ip_literal(expect)) {
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), expect) == 1;
    }
    return SSL_set1_host(ssl, expect) == 1;
}

SSL *
tlsconn_new(SSL_CTX *ctx, const struct kb_cluster_conf *cc, const char *name, char *err,
            size_t errlen)
{
    const char *sni = cc->tls_sni ? cc->tls_sni : name;
    char why[256];
    SSL *ssl = NULL;

    ERR_clear_error();
    tlserr_format(err, errlen, "%s", "");
    if (!name || !*name) {
        tlserr_format(err, errlen, "no broker host name to verify");
        goto fail;
    }
    ssl = SSL_new(ctx);
    if (!ssl) {
        tlserr_format(err, errlen, "cannot create a TLS connection: %s",
                      tlserr_drain(why, sizeof(why)));
        goto fail;
    }
    SSL_set_connect_state(ssl);
    if (!tlsconn_is_ip_literal(sni) && SSL_set_tlsext_host_name(ssl, sni) != 1) {
        tlserr_format(err, errlen, "cannot send '%s' as SNI: %s", sni,
                      tlserr_drain(why, sizeof(why)));
        goto fail;
    }
    if (!tlsconn_set_verify(ssl, cc, name)) {
        tlserr_format(err, errlen, "cannot verify '%s': %s", sni, tlserr_drain(why, sizeof(why)));
        goto fail;
    }
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

bool
tlsconn_is_ip_literal(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];

    return host && (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1);
}
