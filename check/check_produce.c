/*
 * check_produce.c - the end-to-end step: what a real client (librdkafka, as in kcat and
 * confluent-kafka) sees through kbridge. librdkafka's own log is kept quiet; its error callback,
 * served on this thread by rd_kafka_poll(), supplies the last client-side error for a failure.
 */
#include "check/check_produce.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "check/check_dial.h"
#include "check/check_net.h"
#include "tls/tlsconn.h"
#include "tls/tlserr.h"

#define CHECK_PRODUCE_WAIT_MS 15000 /* the longest wait for a delivery report or the message */
#define CHECK_PRODUCE_POLL_MS 50    /* one rd_kafka_poll / consumer_poll slice */
#define CHECK_STR_(x) #x
#define CHECK_STR(x) CHECK_STR_(x) /* a number macro as a string, for librdkafka settings */

/* What the clients reported. */
struct check_produce_state {
    bool delivered;          /* the delivery report arrived */
    rd_kafka_resp_err_t err; /* its error */
    int32_t partition;       /* where the message went */
    int64_t offset;          /* at which offset */
    char last_error[512];    /* the client's latest error callback, "" when none */
};

/* ---- Internal ---------------------------------------------------------------------------- */

static void
check_produce_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct check_produce_state *s = opaque;

    (void)rk;
    tlserr_format(s->last_error, sizeof(s->last_error), "%s: %s",
                  rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void
check_produce_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* Called from librdkafka's threads: keep quiet here, errors come via the error callback. */
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void
check_produce_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct check_produce_state *s = opaque;

    (void)rk;
    s->delivered = true;
    s->err = m->err;
    s->partition = m->partition;
    s->offset = m->offset;
}

/*
 * A producer or consumer of bootstrap, quiet, reporting into s. A consumer needs a group.id to
 * assign partitions, even one that never joins: pass a fresh one. NULL with the reason in err.
 */
static rd_kafka_t *
check_produce_client(rd_kafka_type_t type, const char *bootstrap, const char *group,
                     struct check_produce_state *s, char *err, size_t errlen)
{
    static const struct {
        rd_kafka_type_t type; /* which client the setting is for */
        const char *key;      /* librdkafka property */
        const char *value;    /* its value */
    } settings[] = {
        {RD_KAFKA_PRODUCER, "client.id", "kbridge-check"},
        {RD_KAFKA_PRODUCER, "acks", "all"},
        {RD_KAFKA_PRODUCER, "linger.ms", "0"},
        {RD_KAFKA_PRODUCER, "message.timeout.ms", CHECK_STR(CHECK_PRODUCE_WAIT_MS)},
        {RD_KAFKA_CONSUMER, "client.id", "kbridge-check"},
        {RD_KAFKA_CONSUMER, "enable.auto.commit", "false"},
        {RD_KAFKA_CONSUMER, "enable.partition.eof", "false"},
        {RD_KAFKA_CONSUMER, "fetch.wait.max.ms", "100"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    size_t i;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, errlen) != RD_KAFKA_CONF_OK ||
        (group && rd_kafka_conf_set(conf, "group.id", group, err, errlen) != RD_KAFKA_CONF_OK)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (settings[i].type == type && rd_kafka_conf_set(conf, settings[i].key, settings[i].value,
                                                          err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_error_cb(conf, check_produce_on_error);
    rd_kafka_conf_set_log_cb(conf, check_produce_on_log);
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, check_produce_on_delivery);
    }
    rk = rd_kafka_new(type, conf, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Produces payload to topic and waits for its delivery report. Records the produce step. */
static bool
check_produce_send(struct check_report *rep, struct check_target *t, const char *topic,
                   const char *payload, struct check_produce_state *s)
{
    long t0 = check_now_ms(), deadline = t0 + CHECK_PRODUCE_WAIT_MS + 1000;
    rd_kafka_resp_err_t err;
    const char *fix = NULL;
    char why[256];
    rd_kafka_t *rk;

    rk = check_produce_client(RD_KAFKA_PRODUCER, t->address, NULL, s, why, sizeof(why));
    if (!rk) {
        return check_step_add(rep, t, CHECK_STEP_PRODUCE, CHECK_FAIL, 0, NULL,
                              "cannot create a producer: %s", why);
    }
    err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) {
        s->delivered = true;
        s->err = err;
    }
    while (!s->delivered && check_now_ms() < deadline) {
        rd_kafka_poll(rk, CHECK_PRODUCE_POLL_MS);
    }
    rd_kafka_destroy(rk);
    if (s->delivered && !s->err) {
        return check_step_add(rep, t, CHECK_STEP_PRODUCE, CHECK_OK, check_now_ms() - t0, NULL,
                              "1 message (%zu bytes) to '%s' partition %d at offset %lld, "
                              "delivered in %ld ms",
                              strlen(payload), topic, (int)s->partition, (long long)s->offset,
                              check_now_ms() - t0);
    }
    if (s->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        s->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        fix = "create the topic first (MSK does not create topics on first use by default), or "
              "name an existing one";
    } else {
        fix = "kbridge accepted the connection but the message did not get through: its log "
              "names the cause of each upstream failure; run kbridge check without "
              "--produce-test to test the brokers directly";
    }
    return check_step_add(rep, t, CHECK_STEP_PRODUCE, CHECK_FAIL, check_now_ms() - t0, fix,
                          "%s to '%s'%s%s",
                          s->delivered ? rd_kafka_err2str(s->err) : "no delivery report in time",
                          topic, s->last_error[0] ? "; last client error: " : "", s->last_error);
}

/* Consumes from the partition and offset in s until payload shows up. Records the step. */
static bool
check_produce_receive(struct check_report *rep, struct check_target *t, const char *topic,
                      const char *payload, struct check_produce_state *s, long sent_at)
{
    long t0 = check_now_ms(), deadline = t0 + CHECK_PRODUCE_WAIT_MS;
    rd_kafka_topic_partition_list_t *parts;
    size_t len = strlen(payload);
    rd_kafka_resp_err_t err;
    rd_kafka_message_t *m;
    bool found = false;
    char why[256];
    rd_kafka_t *rk;

    s->last_error[0] = '\0';
    /* The payload is unique to this run, and so a good group name: nothing is committed. */
    rk = check_produce_client(RD_KAFKA_CONSUMER, t->address, payload, s, why, sizeof(why));
    if (!rk) {
        return check_step_add(rep, t, CHECK_STEP_CONSUME, CHECK_FAIL, 0, NULL,
                              "cannot create a consumer: %s", why);
    }
    rd_kafka_poll_set_consumer(rk);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, s->partition)->offset = s->offset;
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        tlserr_format(s->last_error, sizeof(s->last_error), "assign: %s", rd_kafka_err2str(err));
        deadline = t0;
    }
    while (!found && check_now_ms() < deadline) {
        m = rd_kafka_consumer_poll(rk, CHECK_PRODUCE_POLL_MS);
        if (!m) {
            continue;
        }
        if (m->err) {
            tlserr_format(s->last_error, sizeof(s->last_error), "%s", rd_kafka_message_errstr(m));
        } else {
            found = m->len == len && memcmp(m->payload, payload, len) == 0;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (found) {
        return check_step_add(rep, t, CHECK_STEP_CONSUME, CHECK_OK, check_now_ms() - t0, NULL,
                              "read it back from partition %d offset %lld in %ld ms (%ld ms from "
                              "produce to consume)",
                              (int)s->partition, (long long)s->offset, check_now_ms() - t0,
                              check_now_ms() - sent_at);
    }
    return check_step_add(rep, t, CHECK_STEP_CONSUME, CHECK_FAIL, check_now_ms() - t0,
                          "kbridge's log names the cause of each upstream failure (Fetch may go "
                          "to another broker than Produce did)",
                          "the message did not come back from '%s' partition %d offset %lld "
                          "within %d ms%s%s",
                          topic, (int)s->partition, (long long)s->offset, CHECK_PRODUCE_WAIT_MS,
                          s->last_error[0] ? "; last client error: " : "", s->last_error);
}

/* ---- Public ------------------------------------------------------------------------------ */

bool
check_produce_run(struct check_report *rep, struct check_cluster *cl,
                  const struct kb_cluster_conf *cc, const char *topic)
{
    struct check_produce_state s;
    char addr[CHECK_ADDR_MAX], payload[128];
    struct kb_hostport hp;
    struct check_target *t;
    struct timespec now;
    long sent_at;
    int fd;

    memset(&hp, 0, sizeof(hp));
    tlserr_format(hp.host, sizeof(hp.host), "%s", cc->advertised_host);
    hp.port = cc->listen.port;
    hp.is_ip = tlsconn_is_ip_literal(hp.host);
    t = check_cluster_target(cl, CHECK_ROLE_LISTENER, conf_hostport_str(&hp, addr, sizeof(addr)),
                             -1);
    if (!t) {
        return false;
    }
    fd = check_dial_run(rep, t, cc, &hp);
    if (fd < 0) {
        return false;
    }
    close(fd);
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(payload, sizeof(payload), "kbridge check %lld.%09ld pid %d", (long long)now.tv_sec,
             now.tv_nsec, (int)getpid());
    memset(&s, 0, sizeof(s));
    sent_at = check_now_ms();
    return check_produce_send(rep, t, topic, payload, &s) &&
           check_produce_receive(rep, t, topic, payload, &s, sent_at);
}
