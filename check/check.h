/*
 * check.h - `kbridge check`: walks every bootstrap server and every broker of each cluster
 * through DNS, TCP, TLS, chain, host name, SASL authentication (with sasl_mechanism) and Kafka,
 * checks a cluster's AWS credentials when it uses them, and says which step fails and how to
 * fix it. Optionally produces and consumes one message through kbridge's own listener.
 */
#ifndef KB_CHECK_CHECK_H
#define KB_CHECK_CHECK_H

/*
 * Runs `kbridge check`. argv[0] is "check" (main passes argc - 1, argv + 1); the options are
 * [-c FILE] [--cluster NAME] [--json] [--produce-test TOPIC] [-h]. Prints the report on stdout
 * (one line per step, or one JSON document with --json). Returns the process exit code: 0 when
 * every step passed (warnings included), 1 when one failed, 2 for a usage or configuration
 * error (conf_load()'s "FILE:LINE: ..." line on stderr, or a TLS file tlsctx_new() rejects).
 * Blocking: each network wait is bounded by the cluster's connect_timeout_ms (DNS aside, which
 * getaddrinfo bounds) or, for the TLS handshake, tls_handshake_timeout_ms; the AWS credentials
 * step waits up to 20 s for the provider's first fetch (each source has its own timeouts).
 */
int check_main(int argc, char **argv);

#endif
