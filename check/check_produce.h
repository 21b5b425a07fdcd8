/*
 * check_produce.h - step 7 of `kbridge check --produce-test TOPIC`: one message end to end
 * through a running kbridge, with a real client (librdkafka).
 */
#ifndef KB_CHECK_CHECK_PRODUCE_H
#define KB_CHECK_CHECK_PRODUCE_H

#include <stdbool.h>

#include "conf/conf.h"
#include "check/check_report.h"

/*
 * Adds a listener target to cl for kbridge's bootstrap listener as clients see it
 * (advertised_host:listen port) and checks, in order: it resolves and accepts TCP (a clear
 * failure when kbridge is not running); one message with a unique payload can be produced to
 * topic (partition chosen by the client, acks=all); the same message is consumed back from the
 * partition and offset its delivery report gave. Each step reports its timing. Each client wait
 * is bounded (15 s). true when every step passed.
 */
bool check_produce_run(struct check_report *rep, struct check_cluster *cl,
                       const struct kb_cluster_conf *cc, const char *topic);

#endif
