/*
 * check_tls.h - steps 3 to 5 of `kbridge check`: the TLS handshake, the certificate chain
 * against the trust store, and the broker's name against the certificate, each its own verdict.
 */
#ifndef KB_CHECK_CHECK_TLS_H
#define KB_CHECK_CHECK_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "check/check_net.h"
#include "check/check_report.h"

/*
 * Runs the handshake on the connected socket c->fd with an SSL from tlsconn_new(ctx, cc,
 * name->host) (so SNI and the expected names are exactly the daemon's), within
 * cc->tls_handshake_timeout_ms. Verification problems are collected instead of aborting the
 * handshake, then reported as step 4 (chain) and step 5 (host name) in tlserr_describe()'s
 * words; nothing is sent to a peer that failed either. Records steps 3-5 in rep, stopping at the
 * first failure. true when all passed: c->ssl is then the session (owned by c) and verifies
 * normally from then on.
 */
bool check_tls_run(struct check_report *rep, struct check_target *t,
                   const struct kb_cluster_conf *cc, SSL_CTX *ctx, const struct kb_hostport *name,
                   struct check_conn *c);

#endif
