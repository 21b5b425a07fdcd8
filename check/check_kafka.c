/*
 * check_kafka.c - two requests from the codec's kp_request.h (ApiVersions v0, Metadata v1 for
 * no topics) and their answers. The Metadata brokers are read by the codec's own rewriter with
 * a map that keeps every address, so check and the daemon cannot disagree on a response.
 */
#include "check/check_kafka.h"

#include <stdlib.h>
#include <string.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "kp_request.h"
#include "kp_rewrite.h"
#include "check/check_dial.h"
#include "tls/tlsconn.h"
#include "tls/tlserr.h"

#define CHECK_CLIENT_ID "kbridge-check" /* ClientId of both requests */
#define CHECK_CORR_API_VERSIONS 1       /* correlation ids of the two requests */
#define CHECK_CORR_METADATA 2

/* What ApiVersions said. */

/* The map's argument while the brokers are read. */
struct check_kafka_map {
    struct check_target *t; /* where the brokers go */
    bool nomem;             /* a broker could not be recorded */
};

/* ---- Internal ---------------------------------------------------------------------------- */

/*
 * Sends one whole request frame (from kp_request.h) and reads the response to it. On success
 * *resp (caller frees) holds the response after its size prefix, *resp_len its length and
 * *hdr_len the length of its header.
 */
static bool
check_kafka_call(struct check_conn *c, const struct kp_writer *req, int16_t api, int16_t version,
                 int32_t corr, size_t max_frame, long deadline, uint8_t **resp, size_t *resp_len,
                 size_t *hdr_len, char *err, size_t errlen)
{
    uint8_t head[KP_RESPONSE_PEEK];
    enum kp_status st;
    int32_t got = 0;
    size_t size = 0;

    *resp = NULL;
    if (!check_conn_write(c, req->buf, req->len, deadline, err, errlen) ||
        !check_conn_read(c, head, sizeof(head), deadline, err, errlen)) {
        return false;
    }
    st = kp_frame_response_peek(head, sizeof(head), max_frame, &size, &got);
    if (st != KP_OK) {
        tlserr_format(err, errlen,
                      "the answer does not start like a Kafka response (size prefix "
                      "%02x %02x %02x %02x: %s)",
                      head[0], head[1], head[2], head[3], kp_status_str(st));
        return false;
    }
    if (got != corr) {
        tlserr_format(err, errlen, "not a Kafka response (correlation id %d, expected %d)",
                      (int)got, (int)corr);
        return false;
    }
    *resp = malloc(size);
    if (!*resp) {
        tlserr_format(err, errlen, "out of memory for a %zu-byte response", size);
        return false;
    }
    memcpy(*resp, head + KP_FRAME_PREFIX, KP_RESPONSE_PEEK - KP_FRAME_PREFIX);
    if (!check_conn_read(c, *resp + (KP_RESPONSE_PEEK - KP_FRAME_PREFIX),
                         size - (KP_RESPONSE_PEEK - KP_FRAME_PREFIX), deadline, err, errlen)) {
        goto fail;
    }
    st = kp_response_header_decode(*resp, size, api, version, &got, hdr_len);
    if (st != KP_OK) {
        tlserr_format(err, errlen, "not a Kafka response (%s)", kp_status_str(st));
        goto fail;
    }
    *resp_len = size;
    return true;
fail:
    free(*resp);
    *resp = NULL;
    return false;
}

/* kp_map_fn: records the broker and keeps its address. */
static bool
check_kafka_on_broker(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
                      const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    struct check_kafka_map *m = arg;

    (void)new_host;
    (void)new_host_len;
    (void)new_port;
    if (!check_target_add_broker(m->t, node_id, host, host_len, port)) {
        m->nomem = true;
    }
    return false;
}

/* Lists into out the advertised brokers this host cannot resolve ("" when all resolve). */
static void
check_kafka_unresolved(const struct check_target *t, const struct kb_cluster_conf *cc, char *out,
                       size_t outlen)
{
    const struct kb_hostport *dial;
    struct kb_hostport hp;
    struct addrinfo *res;
    size_t i, len = 0;
    int gai;

    out[0] = '\0';
    for (i = 0; i < t->n_brokers && len < outlen; i++) {
        memset(&hp, 0, sizeof(hp));
        tlserr_format(hp.host, sizeof(hp.host), "%s", t->brokers[i].host);
        hp.port = (uint16_t)t->brokers[i].port;
        hp.is_ip = tlsconn_is_ip_literal(hp.host);
        dial = conf_connect_target(cc, &hp);
        gai = check_net_resolve(dial->host, dial->port, &res);
        if (gai == 0) {
            freeaddrinfo(res);
            continue;
        }
        tlserr_format(out + len, outlen - len, "%s'%s' (%s)", len ? ", " : "", dial->host,
                      gai_strerror(gai));
        len += strlen(out + len);
    }
}

/* "1 at b-1:9094, 2 at b-2:9094" */
static const char *
check_kafka_brokers_str(const struct check_target *t, char *out, size_t outlen)
{
    size_t i, len = 0;

    out[0] = '\0';
    for (i = 0; i < t->n_brokers && len < outlen; i++) {
        tlserr_format(out + len, outlen - len, "%s%d at %s%s%s:%d", i ? ", " : "",
                      (int)t->brokers[i].node_id, strchr(t->brokers[i].host, ':') ? "[" : "",
                      t->brokers[i].host, strchr(t->brokers[i].host, ':') ? "]" : "",
                      (int)t->brokers[i].port);
        len += strlen(out + len);
    }
    return out;
}

/* ---- Public ------------------------------------------------------------------------------ */

bool
check_kafka_run(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
                size_t max_frame, struct check_conn *c)
{
    static const char *const fix = "is this a Kafka broker's TLS listener? " CHECK_MSK_PORTS
                                   "; 9096 and 9098 need SASL or IAM authentication first";
    struct check_kafka_map m = {t, false};
    struct kp_api_range apis = {0, 0, -1, -1}, sasl = {0, 0, -1, -1};
    int md_version;
    char err[1024], brokers[1024], unresolved[1024];
    long t0 = check_now_ms(), deadline = t0 + cc->connect_timeout_ms;
    size_t len = 0, hdr = 0, off = 0;
    struct kp_writer req, out;
    uint8_t *resp = NULL;
    enum kp_status st;
    bool ok = false;

    kp_writer_init(&req);
    kp_writer_init(&out);
    if (kp_request_api_versions(&req, CHECK_CORR_API_VERSIONS, CHECK_CLIENT_ID) != KP_OK ||
        !check_kafka_call(c, &req, KP_API_API_VERSIONS, 0, CHECK_CORR_API_VERSIONS, max_frame,
                          deadline, &resp, &len, &hdr, err, sizeof(err))) {
        check_step_add(rep, t, CHECK_STEP_KAFKA, CHECK_FAIL, check_now_ms() - t0, fix,
                       "ApiVersions request failed: %s", req.failed ? "out of memory" : err);
        goto done;
    }
    st = kp_response_api_versions_v0(resp + hdr, len - hdr, KP_API_METADATA, &apis);
    if (st == KP_OK &&
        kp_response_api_versions_v0(resp + hdr, len - hdr, KP_API_SASL_HANDSHAKE, &sasl) != KP_OK) {
        sasl.max = -1;
    }
    free(resp);
    resp = NULL;
    if (st != KP_OK || apis.error != 0) {
        if (st != KP_OK) {
            tlserr_format(err, sizeof(err), "%s", kp_status_str(st));
        } else {
            tlserr_format(err, sizeof(err), "error code %d", apis.error);
        }
        check_step_add(rep, t, CHECK_STEP_KAFKA, CHECK_FAIL, check_now_ms() - t0, fix,
                       "ApiVersions response: %s", err);
        goto done;
    }
    md_version = kp_request_metadata_version(apis.min, apis.max);
    if (md_version < 0) {
        check_step_add(rep, t, CHECK_STEP_KAFKA, CHECK_FAIL, check_now_ms() - t0, NULL,
                       "ApiVersions: the broker serves Metadata v%d-v%d, none of which kbridge's "
                       "check can send (v1-v8)",
                       apis.min, apis.max);
        goto done;
    }
    kp_writer_free(&req);
    if (kp_request_metadata_brokers(&req, (int16_t)md_version, CHECK_CORR_METADATA,
                                    CHECK_CLIENT_ID) != KP_OK ||
        !check_kafka_call(c, &req, KP_API_METADATA, md_version, CHECK_CORR_METADATA, max_frame,
                          deadline, &resp, &len, &hdr, err, sizeof(err))) {
        if (!req.failed && cc->sasl_mechanism == KB_SASL_NONE && sasl.max >= 0) {
            /* What a SASL listener does to a request before authentication: a warning, as
             * kbridge in passthrough works there, with clients that authenticate themselves. */
            ok = check_step_add(
                rep, t, CHECK_STEP_KAFKA, CHECK_WARN, check_now_ms() - t0,
                "to have kbridge authenticate for its clients (and check each broker), set "
                "sasl_mechanism, sasl_username and sasl_password_file; else give every client "
                "its own SASL settings (security.protocol=SASL_PLAINTEXT towards kbridge)",
                "ApiVersions ok (%d APIs, SaslHandshake v%d-v%d), then no answer to Metadata "
                "v%d (%s): this port requires SASL authentication before any other request "
                "(MSK SASL/SCRAM 9096/9196, IAM 9098/9198). sasl_mechanism is not set, so "
                "kbridge passes clients' own SASL through: clients must authenticate "
                "themselves, and the brokers behind this one are not checked",
                (int)apis.n_apis, sasl.min, sasl.max, md_version, err);
            goto done;
        }
        check_step_add(rep, t, CHECK_STEP_KAFKA, CHECK_FAIL, check_now_ms() - t0, fix,
                       "ApiVersions ok (%d APIs), then the Metadata v%d request failed: %s",
                       (int)apis.n_apis, md_version, req.failed ? "out of memory" : err);
        goto done;
    }
    st = kp_rewrite_response(KP_API_METADATA, md_version, resp + hdr, len - hdr,
                             check_kafka_on_broker, &m, &out, NULL, &off);
    if (st != KP_OK || m.nomem || t->n_brokers == 0) {
        check_step_add(rep, t, CHECK_STEP_KAFKA, CHECK_FAIL, check_now_ms() - t0, NULL,
                       "Metadata v%d response: %s (at byte %zu of %zu)", md_version,
                       st != KP_OK ? kp_status_str(st)
                       : m.nomem   ? "out of memory"
                                   : "no brokers listed",
                       off, len - hdr);
        goto done;
    }
    check_kafka_brokers_str(t, brokers, sizeof(brokers));
    check_kafka_unresolved(t, cc, unresolved, sizeof(unresolved));
    ok = check_step_add(rep, t, CHECK_STEP_KAFKA, unresolved[0] ? CHECK_WARN : CHECK_OK,
                        check_now_ms() - t0,
                        "kbridge connects to the addresses brokers advertise: make them resolve "
                        "here, or map each with connect_to = HOST:PORT=REACHABLE_HOST:PORT",
                        "ApiVersions v0: %d APIs (Metadata v%d-v%d); Metadata v%d: %zu broker%s: "
                        "%s%s%s",
                        (int)apis.n_apis, apis.min, apis.max, md_version, t->n_brokers,
                        t->n_brokers == 1 ? "" : "s", brokers,
                        unresolved[0] ? "; advertised hosts that do not resolve from "
                                        "here: "
                                      : "",
                        unresolved);
done:
    free(resp);
    kp_writer_free(&req);
    kp_writer_free(&out);
    return ok;
}
