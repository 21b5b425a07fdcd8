/*
 * check_dial.h - steps 1 and 2 of `kbridge check`: resolve the address kbridge would dial (the
 * connect_to target, if any) and open a TCP connection to it, each failure named with its likely
 * causes: MSK public access, security groups, cluster state, the wrong port.
 */
#ifndef KB_CHECK_CHECK_DIAL_H
#define KB_CHECK_CHECK_DIAL_H

#include "conf/conf.h"
#include "check/check_report.h"

/* MSK's listener ports, for every "wrong port?" hint. */
#define CHECK_MSK_PORTS                                                                            \
    "MSK TLS is 9094, or 9194 with public access (9092 plaintext, 9096/9196 SASL/SCRAM, "          \
    "9098/9198 IAM)"

/*
 * Resolves and connects to name (or its connect_to target) for t, recording a DNS and a TCP
 * step in rep; t->dial is set when connect_to applies. A bootstrap target that is an IP
 * literal under tls_verify = full gets a warning at the DNS step. Each address is given
 * cc->connect_timeout_ms. Returns the connected non-blocking socket (caller closes), or -1
 * after recording the step that failed.
 */
int check_dial_run(struct check_report *rep, struct check_target *t,
                   const struct kb_cluster_conf *cc, const struct kb_hostport *name);

#endif
