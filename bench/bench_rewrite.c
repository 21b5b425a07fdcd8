/*
 * bench_rewrite.c - how long the proxy spends in the codec per response: a Metadata v12
 * rewrite of a 150-topic, 5-broker cluster (fresh writer per op, as the proxy does, and a
 * reused one), and the pass-through decision for a response that carries no address.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "kp_rewrite.h"

#define BENCH_TOPICS 150
#define BENCH_PARTITIONS 3
#define BENCH_BROKERS 5
#define BENCH_TARGET_NS 20000.0 /* budget per Metadata rewrite */

static double
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A MetadataResponse v12 body as an MSK cluster would send it. */
static void
bench_build_metadata(struct kp_writer *w)
{
    char name[64];
    uint8_t id[KP_UUID_LEN];
    int b, t, p, r;

    kp_writer_i32(w, 0); /* ThrottleTimeMs */
    kp_writer_array_len(w, KP_COMPACT, BENCH_BROKERS);
    for (b = 1; b <= BENCH_BROKERS; b++) {
        int n = snprintf(name, sizeof(name),
                         "b-%d.ecommercekafka.13b4qv.c2.kafka.ap-south-1.amazonaws.com", b);

        kp_writer_i32(w, b);
        kp_writer_string(w, KP_COMPACT, name, (size_t)n);
        kp_writer_i32(w, 9094);
        kp_writer_string(w, KP_COMPACT, "aps1-az1", 8);
        kp_writer_uvarint(w, 0);
    }
    kp_writer_string(w, KP_COMPACT | KP_NULLABLE, "mskcluster-0123456789", 21);
    kp_writer_i32(w, 1); /* ControllerId */
    kp_writer_array_len(w, KP_COMPACT, BENCH_TOPICS);
    for (t = 0; t < BENCH_TOPICS; t++) {
        int n = snprintf(name, sizeof(name), "service.events.topic-%03d", t);

        kp_writer_i16(w, 0);
        kp_writer_string(w, KP_COMPACT | KP_NULLABLE, name, (size_t)n);
        memset(id, t + 1, sizeof(id));
        kp_writer_uuid(w, id);
        kp_writer_i8(w, 0);
        kp_writer_array_len(w, KP_COMPACT, BENCH_PARTITIONS);
        for (p = 0; p < BENCH_PARTITIONS; p++) {
            kp_writer_i16(w, 0);
            kp_writer_i32(w, p);
            kp_writer_i32(w, 1 + (t + p) % BENCH_BROKERS);
            kp_writer_i32(w, 7);
            for (r = 0; r < 2; r++) { /* ReplicaNodes, IsrNodes */
                kp_writer_array_len(w, KP_COMPACT, 3);
                kp_writer_i32(w, 1 + (t + p) % BENCH_BROKERS);
                kp_writer_i32(w, 1 + (t + p + 1) % BENCH_BROKERS);
                kp_writer_i32(w, 1 + (t + p + 2) % BENCH_BROKERS);
            }
            kp_writer_array_len(w, KP_COMPACT, 0); /* OfflineReplicas */
            kp_writer_uvarint(w, 0);
        }
        kp_writer_i32(w, INT32_MIN);
        kp_writer_uvarint(w, 0);
    }
    kp_writer_uvarint(w, 0);
}

/* The proxy's side of the map: one local listener per upstream broker, found by node id. */
struct bench_listener {
    char host[32]; /* advertised local host */
    int32_t port;  /* its port */
};

static bool
bench_map(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
          const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    const struct bench_listener *listeners = arg;

    if (node_id < 1 || node_id > BENCH_BROKERS || host_len == 0 || port < 0 || !host) {
        return false;
    }
    *new_host = listeners[node_id - 1].host;
    *new_host_len = strlen(listeners[node_id - 1].host);
    *new_port = listeners[node_id - 1].port;
    return true;
}

/* ns per Metadata rewrite; reuse: one writer for all ops instead of one per op. */
static double
bench_rewrite(const struct kp_writer *in, const struct bench_listener *listeners, long iters,
              bool reuse, size_t *out_len)
{
    struct kp_writer out;
    double start;
    long i;

    kp_writer_init(&out);
    start = bench_now_ns();
    for (i = 0; i < iters; i++) {
        if (!reuse) {
            kp_writer_init(&out);
        }
        out.len = 0;
        if (kp_rewrite_response(KP_API_METADATA, 12, in->buf, in->len, bench_map, (void *)listeners,
                                &out, NULL, NULL) != KP_OK) {
            fprintf(stderr, "rewrite failed\n");
            exit(1);
        }
        *out_len = out.len;
        if (!reuse) {
            kp_writer_free(&out);
        }
    }
    start = (bench_now_ns() - start) / (double)iters;
    kp_writer_free(&out);
    return start;
}

/* ns per pass-through decision on a Fetch v12 response frame: size, header, needs_rewrite. */
static double
bench_passthrough(long iters)
{
    static const uint8_t frame[] = {0, 0, 0, 9, 0, 0, 0, 42, 0, 0, 0, 0, 0};
    volatile unsigned forwarded = 0;
    double start;
    long i;

    start = bench_now_ns();
    for (i = 0; i < iters; i++) {
        size_t size, hlen;
        int32_t id;
        int16_t version = (int16_t)(12 + (i & 3)); /* as the in-flight table would give it */

        if (kp_frame_size(frame, sizeof(frame), 1 << 20, &size) == KP_OK &&
            kp_response_header_decode(frame + 4, size, KP_API_FETCH, version, &id, &hlen) ==
                KP_OK &&
            !kp_api_response_needs_rewrite(KP_API_FETCH, version)) {
            forwarded = forwarded + 1;
        }
    }
    start = (bench_now_ns() - start) / (double)iters;
    if (forwarded != (unsigned)iters) {
        fprintf(stderr, "pass-through decision wrong\n");
        exit(1);
    }
    return start;
}

int
main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    struct bench_listener listeners[BENCH_BROKERS];
    struct kp_writer in;
    size_t out_len = 0;
    double fresh, reused, pass;
    int b;

    if (iters <= 0) {
        iters = 20000;
    }
    for (b = 0; b < BENCH_BROKERS; b++) {
        snprintf(listeners[b].host, sizeof(listeners[b].host), "kbridge.local");
        listeners[b].port = 19093 + b;
    }
    kp_writer_init(&in);
    bench_build_metadata(&in);
    bench_rewrite(&in, listeners, iters / 10 + 1, false, &out_len); /* warm up */
    fresh = bench_rewrite(&in, listeners, iters, false, &out_len);
    reused = bench_rewrite(&in, listeners, iters, true, &out_len);
    pass = bench_passthrough(iters * 100);
    printf("metadata v12: %d topics x %d partitions, %d brokers, %zu -> %zu bytes\n", BENCH_TOPICS,
           BENCH_PARTITIONS, BENCH_BROKERS, in.len, out_len);
    printf("rewrite (fresh writer):  %8.0f ns/op  (target <= %.0f)%s\n", fresh, BENCH_TARGET_NS,
           fresh <= BENCH_TARGET_NS ? "" : "  OVER BUDGET");
    printf("rewrite (reused writer): %8.0f ns/op\n", reused);
    printf("pass-through decision:   %8.1f ns/op  (Fetch v12: size + header + needs_rewrite)\n",
           pass);
    kp_writer_free(&in);
    return 0;
}
