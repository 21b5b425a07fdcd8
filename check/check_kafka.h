/*
 * check_kafka.h - step 6 of `kbridge check`: speak Kafka over the verified connection
 * (ApiVersions, then Metadata for brokers only) and list the brokers the cluster advertises.
 */
#ifndef KB_CHECK_CHECK_KAFKA_H
#define KB_CHECK_CHECK_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "check/check_net.h"
#include "check/check_report.h"

/*
 * Sends ApiVersions v0 and then Metadata v1 with an empty topic list (kp_request.h) over c,
 * waiting at most cc->connect_timeout_ms in all and accepting at most max_frame bytes. The
 * brokers come from the codec (kp_rewrite_response() with a map that records and keeps every
 * address) into t->brokers. Records one step: a failure names the request and the cause; a
 * warning lists advertised hosts that do not resolve from here (their connect_to targets when
 * mapped). true unless it failed.
 */
bool check_kafka_run(struct check_report *rep, struct check_target *t,
                     const struct kb_cluster_conf *cc, size_t max_frame, struct check_conn *c);

#endif
