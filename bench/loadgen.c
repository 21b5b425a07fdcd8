/*
 * loadgen.c - load generator for the side-by-side benchmark (bench/run.sh). Sends pipelined
 * requests to a plaintext proxy or straight to the TLS sink, and checks every response's
 * correlation id and size:
 *   -a produce (default): ProduceRequest frames of SIZE bytes (valid size prefix, filler
 *     records). -V 3 (default): header v1, acks=1, no transactional id. -V 9..11: what modern
 *     clients send: flexible header v2, compact fields, a transactional id, acks=-1.
 *   -a fetch: FetchRequest v12..v17 (-V, default 15; header v2, one topic, one partition) with
 *     MaxBytes = SIZE; the sink answers with a SIZE-byte response (more with NodeEndpoints, which
 *     --ne asks for, v16+), read and discarded in 256 KiB reads. The bytes counted are then the
 *     responses' (the consumer path), not the requests'.
 * Blocking sockets, one thread per connection. Loopback only, bounded in time and count. With
 * --pid, the processes' peak RSS is reset before the load (/proc/PID/clear_refs, "5") and their
 * VmHWM read after it, so hwm_kib is the peak of this run alone.
 *
 *   loadgen throughput -p PORT [--tls --ca FILE] [-a produce|fetch] [-V N] [--ne] -s SIZE
 *                      -c CONNS -d DEPTH -t SECS [--pid PID]...
 *   loadgen latency    -p PORT [--tls --ca FILE] -s SIZE -n COUNT [--max-secs S]
 *   loadgen idle       -p PORT -c CONNS [--pid PID]... [--hold SECS]
 *   loadgen freeport   [-n COUNT]          print a base port with COUNT free ports after it
 *   loadgen waitport   -p PORT [-t SECS]   wait until something accepts on PORT
 *
 * Results are one line: "RESULT key=value ...". Exit status 0 only if every response checked.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LG_HOST "127.0.0.1" /* the only address this tool talks to */
#define LG_SNI "localhost"  /* name the sink's certificate is verified against */
#define LG_CLIENT_ID "kbridge-bench"
#define LG_TOPIC "bench"
#define LG_TXN_ID "kbench-txn"
#define LG_FRAME_OVERHEAD 58     /* bytes of a Produce v3 frame besides the records */
#define LG_RESP_SIZE_V9 11       /* the sink's Produce v9+ answer: cid, tags, [], throttle, tags */
#define LG_FETCH_SLACK 256       /* a Fetch response may differ from SIZE by NodeEndpoints' bytes */
#define LG_SKIP_BUF (256u << 10) /* one read of a large response's body */
#define LG_FRAME_MIN 64
#define LG_FRAME_MAX (64u << 20)
#define LG_CID_OFFSET 8  /* size(4) api_key(2) api_version(2) */
#define LG_RESP_SIZE 12  /* the sink's Produce answer: cid + 8-byte body */
#define LG_RESP_MAX 4096 /* larger responses are an error */
#define LG_DEPTH_MAX 256
#define LG_CONNS_MAX 64 /* throughput connections (threads) */
#define LG_PIDS_MAX 16
#define LG_IO_TIMEOUT_SEC 20 /* any single blocking read/write/connect */
#define LG_IDLE_BATCH 256    /* idle mode: connections opened before reading answers */

/* Command-line settings shared by every mode. */
struct lg_opts {
    int port;              /* target port on LG_HOST */
    bool tls;              /* TLS straight to the sink, else plaintext */
    const char *ca;        /* CA file for --tls */
    size_t size;           /* whole request frame, prefix included (fetch: response size) */
    bool fetch;            /* -a fetch */
    int version;           /* -V: the request's api version */
    bool ne;               /* --ne: ask the sink for NodeEndpoints (Fetch v16+) */
    int conns;             /* connections (throughput: threads; idle: sockets) */
    int depth;             /* requests in flight per connection */
    double secs;           /* throughput: measured seconds */
    double warmup;         /* throughput: seconds before measuring */
    long count;            /* latency: timed requests */
    double max_secs;       /* latency: upper bound on the whole run */
    double hold;           /* idle: seconds to keep connections open after measuring */
    int pids[LG_PIDS_MAX]; /* proxy processes whose CPU and RSS are sampled */
    int n_pids;            /* how many */
};

#define LG_RBUF 16384             /* per-connection read buffer (responses are small) */
#define LG_BATCH_MAX (256u << 10) /* frames up to this many bytes in total go in one write */

/* One connection: a socket, and an SSL on it with --tls, with buffered reads. */
struct lg_conn {
    int fd;                /* connected socket, -1 when closed */
    SSL *ssl;              /* NULL for plaintext */
    uint8_t rbuf[LG_RBUF]; /* bytes read but not yet consumed */
    uint8_t *skipbuf;      /* LG_SKIP_BUF, for large response bodies; allocated on first use */
    _Atomic uint64_t *rx;  /* if set, counts every byte read, as it arrives */
    size_t rpos;           /* first unconsumed byte */
    size_t rlen;           /* end of the bytes read */
};

/* One throughput connection and its thread. */
struct lg_worker {
    const struct lg_opts *o;     /* settings */
    SSL_CTX *ctx;                /* NULL for plaintext */
    int index;                   /* 0.., makes correlation ids distinct per connection */
    pthread_t thread;            /* runs lg_worker_run */
    _Atomic uint64_t completed;  /* requests whose response checked out */
    _Atomic uint64_t resp_bytes; /* response bytes read so far (also of unfinished ones) */
    _Atomic int failed;          /* set once, with err */
    char err[320];               /* why the worker stopped early */
};

static _Atomic int lg_stop; /* throughput: stop sending, collect what is in flight */
/* Minor page faults of the --pid processes at the last lg_proc_sample (main thread only). */
static unsigned long long lg_minflt;

/* ---- helpers ------------------------------------------------------------------------------ */

static double
lg_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lg_sleep(double secs)
{
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void
lg_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
lg_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t
lg_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t
lg_uvarint(uint8_t *p, uint32_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Request header v2 (flexible): api key, version, correlation id 0, client id, no tags. */
static size_t
lg_header_v2(uint8_t *p, int16_t key, int16_t version)
{
    size_t n = 4;

    lg_put16(p + n, (uint16_t)key);
    lg_put16(p + n + 2, (uint16_t)version);
    lg_put32(p + n + 4, 0); /* correlation_id, patched per request */
    lg_put16(p + n + 8, (uint16_t)strlen(LG_CLIENT_ID));
    memcpy(p + n + 10, LG_CLIENT_ID, strlen(LG_CLIENT_ID));
    n += 10 + strlen(LG_CLIENT_ID);
    p[n++] = 0; /* tagged fields */
    return n;
}

/*
 * ProduceRequest v9+ of exactly `size` bytes, as a modern (transactional) client sends it:
 * header v2, TransactionalId, Acks -1, one topic with one partition of filler Records, every
 * string and array compact, empty tagged-field sections.
 */
static uint8_t *
lg_frame_produce_flex(size_t size, int version)
{
    uint8_t *f = malloc(size), uv[8];
    size_t fixed = 4 + 10 + strlen(LG_CLIENT_ID) + 1 + 1 + strlen(LG_TXN_ID) + 2 + 4 + 1 + 1 +
                   strlen(LG_TOPIC) + 1 + 4 + 3,
           rec, n;

    if (!f || size < fixed + 8) {
        free(f);
        return NULL;
    }
    rec = size - fixed - 5;
    while (fixed + lg_uvarint(uv, (uint32_t)rec + 1) + rec < size) {
        rec++;
    }
    n = lg_header_v2(f, 0, (int16_t)version);
    f[n++] = (uint8_t)(strlen(LG_TXN_ID) + 1); /* TransactionalId */
    memcpy(f + n, LG_TXN_ID, strlen(LG_TXN_ID));
    n += strlen(LG_TXN_ID);
    lg_put16(f + n, 0xffff); /* Acks: -1 (all), as transactions require */
    lg_put32(f + n + 2, 30000);
    n += 6;
    f[n++] = 2; /* TopicData: 1 */
    f[n++] = (uint8_t)(strlen(LG_TOPIC) + 1);
    memcpy(f + n, LG_TOPIC, strlen(LG_TOPIC));
    n += strlen(LG_TOPIC);
    f[n++] = 2; /* PartitionData: 1 */
    lg_put32(f + n, 0);
    n += 4;
    n += lg_uvarint(f + n, (uint32_t)rec + 1);
    memset(f + n, 'k', rec);
    n += rec;
    f[n++] = 0; /* partition, topic and request tagged fields */
    f[n++] = 0;
    f[n++] = 0;
    if (n != size) {
        abort();
    }
    lg_put32(f, (uint32_t)(size - 4));
    return f;
}

/* FetchRequest v12..v17 for one partition, MaxBytes = max_bytes; *len = its size. */
static uint8_t *
lg_frame_fetch(size_t max_bytes, int version, bool ne, size_t *len)
{
    uint8_t *f = malloc(256);
    size_t n;

    if (!f) {
        return NULL;
    }
    n = lg_header_v2(f, 1, (int16_t)version);
    if (version < 15) {
        lg_put32(f + n, 0xffffffffu); /* ReplicaId: -1, a consumer */
        n += 4;
    }
    lg_put32(f + n, 500);                     /* MaxWaitMs */
    lg_put32(f + n + 4, 1);                   /* MinBytes */
    lg_put32(f + n + 8, (uint32_t)max_bytes); /* MaxBytes */
    f[n + 12] = 0;                            /* IsolationLevel */
    lg_put32(f + n + 13, 0);                  /* SessionId */
    lg_put32(f + n + 17, 0xffffffffu);        /* SessionEpoch: -1, no fetch session */
    n += 21;
    f[n++] = 2; /* Topics: 1 */
    if (version >= 13) {
        memset(f + n, 0xab, 16); /* TopicId */
        n += 16;
    } else {
        f[n++] = (uint8_t)(strlen(LG_TOPIC) + 1);
        memcpy(f + n, LG_TOPIC, strlen(LG_TOPIC));
        n += strlen(LG_TOPIC);
    }
    f[n++] = 2;                                /* Partitions: 1 */
    lg_put32(f + n, 0);                        /* Partition */
    lg_put32(f + n + 4, 0xffffffffu);          /* CurrentLeaderEpoch */
    memset(f + n + 8, 0, 8);                   /* FetchOffset */
    lg_put32(f + n + 16, 0xffffffffu);         /* LastFetchedEpoch */
    memset(f + n + 20, 0xff, 8);               /* LogStartOffset: -1 */
    lg_put32(f + n + 28, (uint32_t)max_bytes); /* PartitionMaxBytes */
    n += 32;
    f[n++] = 0; /* partition tags */
    f[n++] = 0; /* topic tags */
    f[n++] = 1; /* ForgottenTopicsData: empty */
    if (ne) {
        f[n++] = 3; /* RackId "ne": the sink adds NodeEndpoints */
        f[n++] = 'n';
        f[n++] = 'e';
    } else {
        f[n++] = 1; /* RackId "" */
    }
    f[n++] = 0; /* tagged fields */
    lg_put32(f, (uint32_t)(n - 4));
    *len = n;
    return f;
}

/*
 * ProduceRequest v3 of exactly `size` bytes, prefix included (size >= LG_FRAME_MIN):
 * header v1 (api_key 0, version 3, correlation id, client id), TransactionalId null, Acks 1,
 * TimeoutMs, one topic with one partition whose Records are `size - 58` filler bytes.
 */
static uint8_t *
lg_frame_new(size_t size)
{
    uint8_t *f = malloc(size), *p;
    size_t records = size - LG_FRAME_OVERHEAD;

    if (!f) {
        return NULL;
    }
    p = f;
    lg_put32(p, (uint32_t)(size - 4));
    p += 4;
    lg_put16(p, 0);     /* api_key: Produce */
    lg_put16(p + 2, 3); /* api_version */
    lg_put32(p + 4, 0); /* correlation_id, patched per request */
    lg_put16(p + 8, (uint16_t)strlen(LG_CLIENT_ID));
    memcpy(p + 10, LG_CLIENT_ID, strlen(LG_CLIENT_ID));
    p += 10 + strlen(LG_CLIENT_ID);
    lg_put16(p, 0xffff);    /* TransactionalId: null */
    lg_put16(p + 2, 1);     /* Acks: 1 (a response is expected) */
    lg_put32(p + 4, 30000); /* TimeoutMs */
    lg_put32(p + 8, 1);     /* TopicData: 1 topic */
    lg_put16(p + 12, (uint16_t)strlen(LG_TOPIC));
    memcpy(p + 14, LG_TOPIC, strlen(LG_TOPIC));
    p += 14 + strlen(LG_TOPIC);
    lg_put32(p, 1);                     /* PartitionData: 1 partition */
    lg_put32(p + 4, 0);                 /* Index */
    lg_put32(p + 8, (uint32_t)records); /* Records: bytes */
    p += 12;
    if ((size_t)(p - f) != LG_FRAME_OVERHEAD) {
        abort();
    }
    memset(p, 'k', records);
    return f;
}

/* The request o asks for; *len = its size (o->size, except for Fetch). */
static uint8_t *
lg_request_new(const struct lg_opts *o, size_t *len)
{
    if (o->fetch) {
        return lg_frame_fetch(o->size, o->version, o->ne, len);
    }
    *len = o->size;
    return o->version >= 9 ? lg_frame_produce_flex(o->size, o->version) : lg_frame_new(o->size);
}

/* Resets the processes' peak RSS (VmHWM) to their current RSS; false if the kernel refused. */
static bool
lg_hwm_reset(const struct lg_opts *o)
{
    char path[64];
    bool ok = true;
    int i;

    for (i = 0; i < o->n_pids; i++) {
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/clear_refs", o->pids[i]);
        f = fopen(path, "w");
        ok = f && fputs("5", f) >= 0 && ok;
        if (f && fclose(f) != 0) {
            ok = false;
        }
    }
    return ok;
}

/* Sums VmHWM (KiB) over the processes; -1 if one is gone. */
static long
lg_hwm(const struct lg_opts *o)
{
    char path[64], line[256];
    long sum = 0;
    int i;

    for (i = 0; i < o->n_pids; i++) {
        FILE *f;
        long kib = -1;

        snprintf(path, sizeof(path), "/proc/%d/status", o->pids[i]);
        f = fopen(path, "r");
        if (!f) {
            return -1;
        }
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) {
                break;
            }
        }
        fclose(f);
        if (kib < 0) {
            return -1;
        }
        sum += kib;
    }
    return sum;
}

/* Sums utime+stime (seconds) and VmRSS (KiB) over the given processes; false if one is gone. */
static bool
lg_proc_sample(const struct lg_opts *o, double *cpu, long *rss_kib)
{
    long ticks = sysconf(_SC_CLK_TCK);
    char path[64], line[1024];
    int i;

    *cpu = 0;
    *rss_kib = 0;
    lg_minflt = 0;
    for (i = 0; i < o->n_pids; i++) {
        unsigned long ut = 0, st = 0, mf = 0;
        char *close_paren;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", o->pids[i]);
        f = fopen(path, "r");
        if (!f) {
            return false;
        }
        if (!fgets(line, sizeof(line), f)) {
            fclose(f);
            return false;
        }
        fclose(f);
        close_paren = strrchr(line, ')');
        /* after "pid (comm)": state is field 3, minflt 10, utime 14, stime 15 */
        if (!close_paren || sscanf(close_paren + 2,
                                   "%*c %*d %*d %*d %*d %*d %*u %lu %*u %*u "
                                   "%*u %lu %lu",
                                   &mf, &ut, &st) != 3) {
            return false;
        }
        *cpu += (double)(ut + st) / (double)ticks;
        lg_minflt += mf;
        snprintf(path, sizeof(path), "/proc/%d/status", o->pids[i]);
        f = fopen(path, "r");
        if (!f) {
            return false;
        }
        while (fgets(line, sizeof(line), f)) {
            long kib;

            if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
                *rss_kib += kib;
                break;
            }
        }
        fclose(f);
    }
    return true;
}

/* ---- connections -------------------------------------------------------------------------- */

static SSL_CTX *
lg_ssl_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        fprintf(stderr, "loadgen: cannot set up TLS with CA '%s'\n", ca);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void
lg_conn_close(struct lg_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->skipbuf);
    c->skipbuf = NULL;
}

/* Connects to LG_HOST:port; with ctx, completes a verified TLS handshake. */
static bool
lg_conn_open(struct lg_conn *c, int port, SSL_CTX *ctx, char *err, size_t errlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {LG_IO_TIMEOUT_SEC, 0};
    int one = 1;

    c->ssl = NULL;
    c->skipbuf = NULL;
    c->rx = NULL;
    c->rpos = c->rlen = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return false;
    }
    inet_pton(AF_INET, LG_HOST, &sin.sin_addr);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        snprintf(err, errlen, "connect %s:%d: %s", LG_HOST, port, strerror(errno));
        lg_conn_close(c);
        return false;
    }
    if (!ctx) {
        return true;
    }
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_tlsext_host_name(c->ssl, LG_SNI) != 1 ||
        SSL_set1_host(c->ssl, LG_SNI) != 1 || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_connect(c->ssl) != 1) {
        unsigned long e = ERR_get_error();

        snprintf(err, errlen, "TLS handshake with %s:%d failed: %s", LG_HOST, port,
                 e ? ERR_reason_error_string(e) : "connection closed");
        ERR_clear_error();
        lg_conn_close(c);
        return false;
    }
    return true;
}

static bool
lg_write_all(struct lg_conn *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n;

        if (c->ssl) {
            int chunk = len > (1u << 30) ? 1 << 30 : (int)len;

            n = SSL_write(c->ssl, p, chunk);
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* One read into rbuf (blocking); false on end of stream, error or timeout. */
static bool
lg_fill(struct lg_conn *c)
{
    ssize_t n;

    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    } else if (c->rlen == sizeof(c->rbuf)) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    for (;;) {
        if (c->ssl) {
            n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof(c->rbuf) - c->rlen));
        } else {
            n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
        }
        if (n <= 0) {
            return false;
        }
        c->rlen += (size_t)n;
        if (c->rx) {
            atomic_fetch_add_explicit(c->rx, (uint64_t)n, memory_order_relaxed);
        }
        return true;
    }
}

static bool
lg_read_full(struct lg_conn *c, uint8_t *p, size_t len)
{
    while (len > 0) {
        size_t k;

        if (c->rpos == c->rlen && !lg_fill(c)) {
            return false;
        }
        k = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;
        memcpy(p, c->rbuf + c->rpos, k);
        c->rpos += k;
        p += k;
        len -= k;
    }
    return true;
}

/* Reads and drops len bytes: what is buffered, then big reads straight into skipbuf. */
static bool
lg_skip(struct lg_conn *c, size_t len)
{
    size_t k = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;

    c->rpos += k;
    len -= k;
    if (len > 0 && !c->skipbuf && !(c->skipbuf = malloc(LG_SKIP_BUF))) {
        return false;
    }
    while (len > 0) {
        size_t want = len < LG_SKIP_BUF ? len : LG_SKIP_BUF;
        ssize_t n;

        if (c->ssl) {
            n = SSL_read(c->ssl, c->skipbuf, (int)want);
        } else {
            n = recv(c->fd, c->skipbuf, want, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
        }
        if (n <= 0) {
            return false;
        }
        len -= (size_t)n;
        if (c->rx) {
            atomic_fetch_add_explicit(c->rx, (uint64_t)n, memory_order_relaxed);
        }
    }
    return true;
}

/* True when a whole response is already buffered (reading it will not block). */
static bool
lg_response_buffered(const struct lg_conn *c)
{
    size_t avail = c->rlen - c->rpos;

    return avail >= 4 && avail - 4 >= lg_get32(c->rbuf + c->rpos);
}

/*
 * Reads one response and checks it answers `cid` with the size the sink answers o's request
 * with (Produce: exact; Fetch: SIZE, up to LG_FETCH_SLACK more or less for NodeEndpoints and
 * their rewrite). *bytes = its size, prefix included.
 */
static bool
lg_read_response(struct lg_conn *c, const struct lg_opts *o, int32_t cid, uint64_t *bytes,
                 char *err, size_t errlen)
{
    uint8_t buf[LG_RESP_MAX];
    uint32_t size, want = o->version >= 9 ? LG_RESP_SIZE_V9 : LG_RESP_SIZE;

    if (!lg_read_full(c, buf, 4)) {
        snprintf(err, errlen, "connection closed or timed out waiting for correlation id %d",
                 (int)cid);
        return false;
    }
    size = lg_get32(buf);
    *bytes = (uint64_t)size + 4;
    if (o->fetch) {
        if (size + 4 + LG_FETCH_SLACK < o->size || size + 4 > o->size + LG_FETCH_SLACK) {
            snprintf(err, errlen, "Fetch response of %u bytes, expected about %zu", size + 4,
                     o->size);
            return false;
        }
        if (!lg_read_full(c, buf, 4) || !lg_skip(c, size - 4)) {
            snprintf(err, errlen, "connection closed inside a Fetch response");
            return false;
        }
        if ((int32_t)lg_get32(buf) != cid) {
            snprintf(err, errlen, "response with correlation id %d, expected %d",
                     (int)(int32_t)lg_get32(buf), (int)cid);
            return false;
        }
        return true;
    }
    if (size < 4 || size > sizeof(buf)) {
        snprintf(err, errlen, "response with bad size %u (expected %u)", (unsigned)size,
                 (unsigned)want);
        return false;
    }
    if (!lg_read_full(c, buf, size)) {
        snprintf(err, errlen, "connection closed inside a response");
        return false;
    }
    if ((int32_t)lg_get32(buf) != cid) {
        snprintf(err, errlen, "response with correlation id %d, expected %d",
                 (int)(int32_t)lg_get32(buf), (int)cid);
        return false;
    }
    if (size != want) {
        snprintf(err, errlen, "response size %u, expected %u", (unsigned)size, (unsigned)want);
        return false;
    }
    return true;
}

/* ---- throughput --------------------------------------------------------------------------- */

static void
lg_worker_fail(struct lg_worker *w, const char *why)
{
    snprintf(w->err, sizeof(w->err), "connection %d: %s", w->index, why);
    atomic_store(&w->failed, 1);
    atomic_store(&lg_stop, 1);
}

/*
 * Keeps `depth` requests in flight until lg_stop, then collects the outstanding answers. The
 * requests that fit are sent with one write, and every answer already buffered is taken
 * before sending more, so small frames cost few system calls on the load generator's side.
 */
static void *
lg_worker_run(void *arg)
{
    struct lg_worker *w = arg;
    const struct lg_opts *o = w->o;
    int32_t ring[LG_DEPTH_MAX];
    int head = 0, count = 0, per_write, i, k;
    int32_t next = (int32_t)((uint32_t)w->index << 24) + 1;
    struct lg_conn *c = malloc(sizeof(*c));
    char err[256];
    uint8_t *frames = NULL, *f;
    size_t flen = 0;
    uint64_t got;

    f = lg_request_new(o, &flen);
    per_write = f && flen * (size_t)o->depth <= LG_BATCH_MAX ? o->depth : 1;
    if (c && f) {
        frames = malloc(flen * (size_t)per_write);
    }
    if (!c || !frames) {
        free(c);
        free(f);
        free(frames);
        lg_worker_fail(w, "out of memory");
        return NULL;
    }
    for (i = 0; i < per_write; i++) {
        memcpy(frames + (size_t)i * flen, f, flen);
    }
    free(f);
    if (!lg_conn_open(c, o->port, w->ctx, err, sizeof(err))) {
        free(c);
        free(frames);
        lg_worker_fail(w, err);
        return NULL;
    }
    c->rx = &w->resp_bytes; /* a 50 MiB response counts as it arrives, not when it ends */
    for (;;) {
        while (count < o->depth && !atomic_load_explicit(&lg_stop, memory_order_relaxed)) {
            k = o->depth - count < per_write ? o->depth - count : per_write;
            for (i = 0; i < k; i++) {
                lg_put32(frames + (size_t)i * flen + LG_CID_OFFSET, (uint32_t)next);
                ring[(head + count) % LG_DEPTH_MAX] = next++;
                count++;
            }
            if (!lg_write_all(c, frames, flen * (size_t)k)) {
                lg_worker_fail(w, "write failed (connection closed or timed out)");
                goto out;
            }
        }
        if (count == 0) {
            break;
        }
        do {
            if (!lg_read_response(c, o, ring[head], &got, err, sizeof(err))) {
                lg_worker_fail(w, err);
                goto out;
            }
            head = (head + 1) % LG_DEPTH_MAX;
            count--;
            atomic_fetch_add_explicit(&w->completed, 1, memory_order_relaxed);
        } while (count > 0 && lg_response_buffered(c));
    }
out:
    lg_conn_close(c);
    free(c);
    free(frames);
    return NULL;
}

static uint64_t
lg_completed(struct lg_worker *ws, int n)
{
    uint64_t sum = 0;
    int i;

    for (i = 0; i < n; i++) {
        sum += atomic_load(&ws[i].completed);
    }
    return sum;
}

static uint64_t
lg_resp_bytes(struct lg_worker *ws, int n)
{
    uint64_t sum = 0;
    int i;

    for (i = 0; i < n; i++) {
        sum += atomic_load(&ws[i].resp_bytes);
    }
    return sum;
}

static int
lg_throughput(const struct lg_opts *o, SSL_CTX *ctx)
{
    struct lg_worker *ws = calloc((size_t)o->conns, sizeof(*ws));
    double t0, t1, cpu0 = 0, cpu1 = 0, cpu;
    long rss = 0, rss_max = 0, rss_base = 0, hwm = -1;
    uint64_t c0, c1, b0, b1, bytes;
    unsigned long long mf0 = 0;
    bool procs_ok = true, hwm_ok = false;
    int i, rc = 0;

    if (!ws) {
        return 1;
    }
    if (o->n_pids > 0) {
        hwm_ok = lg_hwm_reset(o);
        procs_ok = lg_proc_sample(o, &cpu0, &rss_base);
    }
    for (i = 0; i < o->conns; i++) {
        ws[i].o = o;
        ws[i].ctx = ctx;
        ws[i].index = i;
        if (pthread_create(&ws[i].thread, NULL, lg_worker_run, &ws[i]) != 0) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            exit(1);
        }
    }
    t0 = lg_now();
    while (lg_now() - t0 < o->warmup && !atomic_load(&lg_stop)) {
        lg_sleep(0.05);
    }
    c0 = lg_completed(ws, o->conns);
    b0 = lg_resp_bytes(ws, o->conns);
    t0 = lg_now();
    if (o->n_pids > 0) {
        procs_ok = lg_proc_sample(o, &cpu0, &rss);
        mf0 = lg_minflt;
    }
    while (lg_now() - t0 < o->secs && !atomic_load(&lg_stop)) {
        lg_sleep(0.1);
        if (o->n_pids > 0 && procs_ok) {
            procs_ok = lg_proc_sample(o, &cpu1, &rss);
            rss_max = rss > rss_max ? rss : rss_max;
        }
    }
    c1 = lg_completed(ws, o->conns);
    b1 = lg_resp_bytes(ws, o->conns);
    t1 = lg_now();
    if (o->n_pids > 0 && procs_ok) {
        procs_ok = lg_proc_sample(o, &cpu1, &rss);
        rss_max = rss > rss_max ? rss : rss_max;
        hwm = lg_hwm(o);
    }
    atomic_store(&lg_stop, 1);
    for (i = 0; i < o->conns; i++) {
        pthread_join(ws[i].thread, NULL);
        if (atomic_load(&ws[i].failed)) {
            fprintf(stderr, "loadgen: %s\n", ws[i].err);
            rc = 1;
        }
    }
    /* the payload direction: request bytes for Produce, response bytes for Fetch */
    bytes = o->fetch ? b1 - b0 : (c1 - c0) * o->size;
    cpu = cpu1 - cpu0;
    printf("RESULT mode=throughput api=%s version=%d ne=%d size=%zu conns=%d depth=%d secs=%.2f "
           "requests=%" PRIu64 " bytes=%" PRIu64 " mbps=%.1f",
           o->fetch ? "fetch" : "produce", o->version, o->ne ? 1 : 0, o->size, o->conns, o->depth,
           t1 - t0, c1 - c0, bytes, (double)bytes / 1e6 / (t1 - t0));
    if (o->n_pids > 0 && procs_ok) {
        printf(" cpu_s=%.2f cpu_s_per_gb=%.2f cpu_util=%.2f rss_kib_max=%ld rss_base_kib=%ld", cpu,
               bytes ? cpu / ((double)bytes / 1e9) : 0.0, cpu / (t1 - t0), rss_max, rss_base);
        if (hwm_ok && hwm >= 0) {
            printf(" hwm_kib=%ld", hwm);
        }
        printf(" minflt_per_gb=%.0f",
               bytes ? (double)(lg_minflt - mf0) / ((double)bytes / 1e9) : 0.0);
    } else if (o->n_pids > 0) {
        printf(" proc=gone");
        rc = 1;
    }
    printf(" errors=%d\n", rc);
    free(ws);
    return rc;
}

/* ---- latency ------------------------------------------------------------------------------ */

static int
lg_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int
lg_latency(const struct lg_opts *o, SSL_CTX *ctx)
{
    long warm = o->count / 10 < 1000 ? o->count / 10 : 1000, i, n = 0;
    double *lat = calloc((size_t)o->count, sizeof(double)), start = lg_now(), sum = 0;
    size_t flen = 0;
    uint8_t *frame = lg_request_new(o, &flen);
    struct lg_conn c;
    char err[256];
    int32_t cid = 1;
    uint64_t got;
    int rc = 0;

    if (!lat || !frame) {
        return 1;
    }
    if (!lg_conn_open(&c, o->port, ctx, err, sizeof(err))) {
        fprintf(stderr, "loadgen: %s\n", err);
        printf("RESULT mode=latency errors=1\n");
        return 1;
    }
    for (i = -warm; i < o->count; i++, cid++) {
        double t0 = lg_now();

        if (lg_now() - start > o->max_secs) {
            fprintf(stderr, "loadgen: latency run stopped at its %.0f s bound\n", o->max_secs);
            break;
        }
        lg_put32(frame + LG_CID_OFFSET, (uint32_t)cid);
        if (!lg_write_all(&c, frame, flen)) {
            snprintf(err, sizeof(err), "write failed");
            rc = 1;
            break;
        }
        if (!lg_read_response(&c, o, cid, &got, err, sizeof(err))) {
            rc = 1;
            break;
        }
        if (i >= 0) {
            lat[n++] = (lg_now() - t0) * 1e6;
        }
    }
    lg_conn_close(&c);
    if (rc) {
        fprintf(stderr, "loadgen: %s\n", err);
    }
    if (n == 0) {
        printf("RESULT mode=latency requests=0 errors=%d\n", rc ? rc : 1);
        return 1;
    }
    for (i = 0; i < n; i++) {
        sum += lat[i];
    }
    qsort(lat, (size_t)n, sizeof(double), lg_cmp_double);
    printf("RESULT mode=latency size=%zu requests=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%d\n",
           o->size, n, lat[n * 50 / 100], lat[n * 90 / 100], lat[n * 99 / 100], lat[n * 999 / 1000],
           lat[n - 1], sum / (double)n, rc);
    free(lat);
    free(frame);
    return rc;
}

/* ---- idle connections --------------------------------------------------------------------- */

/*
 * Opens o->conns plaintext connections, sends one request on each and waits for its answer
 * (so every upstream connection is established), then reports the proxies' RSS growth.
 */
static int
lg_idle(const struct lg_opts *o)
{
    struct lg_conn *cs = calloc((size_t)o->conns, sizeof(*cs));
    uint8_t *frame = lg_frame_new(o->size);
    double cpu, t0 = lg_now(), t_open;
    long rss0 = 0, rss1 = 0, rss2 = 0;
    uint64_t got;
    int opened = 0, answered = 0, i, rc = 0;
    char err[256] = "";

    if (!cs || !frame) {
        return 1;
    }
    if (o->n_pids > 0 && !lg_proc_sample(o, &cpu, &rss0)) {
        fprintf(stderr, "loadgen: cannot read the proxy's /proc entries\n");
        return 1;
    }
    while (opened < o->conns && rc == 0) {
        int batch_end = opened + LG_IDLE_BATCH < o->conns ? opened + LG_IDLE_BATCH : o->conns;

        for (i = opened; i < batch_end; i++) {
            if (!lg_conn_open(&cs[i], o->port, NULL, err, sizeof(err))) {
                rc = 1;
                break;
            }
            lg_put32(frame + LG_CID_OFFSET, (uint32_t)i);
            if (!lg_write_all(&cs[i], frame, o->size)) {
                snprintf(err, sizeof(err), "connection %d: write failed", i);
                lg_conn_close(&cs[i]);
                rc = 1;
                break;
            }
        }
        batch_end = i;
        for (i = opened; i < batch_end; i++) {
            if (!lg_read_response(&cs[i], o, i, &got, err, sizeof(err))) {
                rc = 1;
                break;
            }
            answered++;
        }
        opened = batch_end;
    }
    t_open = lg_now() - t0;
    lg_sleep(1.0); /* let the proxies finish their bookkeeping */
    if (o->n_pids > 0 && !lg_proc_sample(o, &cpu, &rss1)) {
        snprintf(err, sizeof(err), "the proxy exited with %d connections open", opened);
        rc = 1;
    }
    if (rc) {
        fprintf(stderr, "loadgen: after %d connections: %s\n", answered, err);
    }
    if (o->hold > 0) {
        lg_sleep(o->hold);
    }
    for (i = 0; i < opened; i++) {
        lg_conn_close(&cs[i]);
    }
    lg_sleep(1.0); /* the proxies close their side, and free what they will */
    if (o->n_pids == 0 || !lg_proc_sample(o, &cpu, &rss2)) {
        rss2 = -1;
    }
    printf("RESULT mode=idle conns=%d answered=%d open_secs=%.1f rss_before_kib=%ld "
           "rss_after_kib=%ld kib_per_conn=%.1f rss_closed_kib=%ld errors=%d\n",
           opened, answered, t_open, rss0, rss1, answered ? (double)(rss1 - rss0) / answered : 0.0,
           rss2, rc);
    free(cs);
    free(frame);
    return rc;
}

/* ---- ports -------------------------------------------------------------------------------- */

static bool
lg_port_free(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0) {
        return false;
    }
    inet_pton(AF_INET, LG_HOST, &sin.sin_addr);
    ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

/* A base port below the ephemeral range with `count` free ports from it. */
static int
lg_freeport(int count)
{
    int attempt, i;

    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    for (attempt = 0; attempt < 200; attempt++) {
        int base = 20000 + rand() % 12000;

        for (i = 0; i < count && lg_port_free(base + i); i++) {
        }
        if (i == count) {
            printf("%d\n", base);
            return 0;
        }
    }
    fprintf(stderr, "loadgen: no %d free consecutive ports found\n", count);
    return 1;
}

static int
lg_waitport(int port, double secs)
{
    double t0 = lg_now();
    struct lg_conn c;
    char err[256];

    do {
        if (lg_conn_open(&c, port, NULL, err, sizeof(err))) {
            lg_conn_close(&c);
            return 0;
        }
        lg_sleep(0.05);
    } while (lg_now() - t0 < secs);
    fprintf(stderr, "loadgen: nothing accepts on %s:%d after %.0f s (%s)\n", LG_HOST, port, secs,
            err);
    return 1;
}

/* ---- main --------------------------------------------------------------------------------- */

static void
lg_usage(void)
{
    fprintf(stderr,
            "usage: loadgen throughput|latency|idle|freeport|waitport [options]\n"
            "  -p PORT        target 127.0.0.1:PORT\n"
            "  --tls --ca F   TLS (verified, SNI localhost) instead of plaintext\n"
            "  -a API         produce (default) or fetch\n"
            "  -V N           api version: produce 3 (default) or 9..11, fetch 12..17 (15)\n"
            "  --ne           fetch: ask for NodeEndpoints in the response (v16+)\n"
            "  -s BYTES       request frame size, prefix included (default 1024);\n"
            "                 fetch: the response size (MaxBytes)\n"
            "  -c N           connections (default 1)\n"
            "  -d N           requests in flight per connection (default 8)\n"
            "  -t SECS        throughput: measured seconds (default 5); waitport: timeout\n"
            "  -w SECS        throughput: warm-up seconds (default 0.5)\n"
            "  -n N           latency: timed requests (default 20000); freeport: ports\n"
            "  --max-secs S   latency: bound on the run (default 60)\n"
            "  --pid PID      sample this process's CPU and RSS (repeatable)\n"
            "  --hold SECS    idle: keep the connections open this long after measuring\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tls", no_argument, NULL, 'T'},        {"ca", required_argument, NULL, 'A'},
        {"pid", required_argument, NULL, 'P'},  {"max-secs", required_argument, NULL, 'M'},
        {"hold", required_argument, NULL, 'H'}, {"ne", no_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    struct lg_opts o = {.size = 1024,
                        .conns = 1,
                        .depth = 8,
                        .secs = 5,
                        .warmup = 0.5,
                        .count = 20000,
                        .max_secs = 60,
                        .version = -1,
                        .port = 0};
    const char *mode;
    SSL_CTX *ctx = NULL;
    int c, rc;

    if (argc < 2) {
        lg_usage();
        return 2;
    }
    mode = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "p:s:c:d:t:w:n:a:V:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (strcmp(optarg, "fetch") != 0 && strcmp(optarg, "produce") != 0) {
                lg_usage();
                return 2;
            }
            o.fetch = strcmp(optarg, "fetch") == 0;
            break;
        case 'V':
            o.version = atoi(optarg);
            break;
        case 'E':
            o.ne = true;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 's':
            o.size = (size_t)strtoull(optarg, NULL, 10);
            break;
        case 'c':
            o.conns = atoi(optarg);
            break;
        case 'd':
            o.depth = atoi(optarg);
            break;
        case 't':
            o.secs = atof(optarg);
            break;
        case 'w':
            o.warmup = atof(optarg);
            break;
        case 'n':
            o.count = atol(optarg);
            break;
        case 'T':
            o.tls = true;
            break;
        case 'A':
            o.ca = optarg;
            break;
        case 'M':
            o.max_secs = atof(optarg);
            break;
        case 'H':
            o.hold = atof(optarg);
            break;
        case 'P':
            if (o.n_pids == LG_PIDS_MAX) {
                fprintf(stderr, "loadgen: at most %d --pid\n", LG_PIDS_MAX);
                return 2;
            }
            o.pids[o.n_pids++] = atoi(optarg);
            break;
        default:
            lg_usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "freeport") == 0) {
        return lg_freeport(o.count == 20000 ? 1 : (int)o.count);
    }
    if (o.port <= 0 || o.port > 65535) {
        fprintf(stderr, "loadgen: -p PORT is required\n");
        return 2;
    }
    if (strcmp(mode, "waitport") == 0) {
        return lg_waitport(o.port, o.secs);
    }
    if (o.version < 0) {
        o.version = o.fetch ? 15 : 3;
    }
    if ((o.fetch && (o.version < 12 || o.version > 17 || o.size < 256)) ||
        (!o.fetch && o.version != 3 && (o.version < 9 || o.version > 11)) || (o.ne && !o.fetch)) {
        fprintf(stderr, "loadgen: Produce is -V 3 or 9..11, Fetch -V 12..17 (--ne: Fetch only)\n");
        return 2;
    }
    if (o.size < LG_FRAME_MIN || o.size > LG_FRAME_MAX || o.depth < 1 || o.depth > LG_DEPTH_MAX ||
        o.conns < 1 || o.secs <= 0 || o.secs > 600 || o.count < 1 || o.count > 10000000 ||
        o.max_secs <= 0 || o.max_secs > 600 || o.hold < 0 || o.hold > 600) {
        fprintf(stderr, "loadgen: an option is out of range\n");
        return 2;
    }
    if (o.tls) {
        if (!o.ca) {
            fprintf(stderr, "loadgen: --tls needs --ca FILE\n");
            return 2;
        }
        ctx = lg_ssl_ctx(o.ca);
        if (!ctx) {
            return 1;
        }
    }
    if (strcmp(mode, "throughput") == 0) {
        if (o.conns > LG_CONNS_MAX) {
            fprintf(stderr, "loadgen: at most %d throughput connections\n", LG_CONNS_MAX);
            return 2;
        }
        rc = lg_throughput(&o, ctx);
    } else if (strcmp(mode, "latency") == 0) {
        rc = lg_latency(&o, ctx);
    } else if (strcmp(mode, "idle") == 0) {
        if (o.tls || o.fetch || o.version != 3 || o.conns > 100000) {
            fprintf(stderr, "loadgen: idle is plaintext Produce v3, at most 100000 connections\n");
            return 2;
        }
        rc = lg_idle(&o);
    } else {
        lg_usage();
        rc = 2;
    }
    SSL_CTX_free(ctx);
    return rc;
}
