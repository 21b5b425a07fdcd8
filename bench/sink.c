/*
 * sink.c - TLS stand-in for a Kafka broker in the side-by-side benchmark (bench/run.sh).
 * Terminates TLS on 127.0.0.1:PORT (one epoll thread, non-blocking OpenSSL) and answers every
 * request frame once it has been read whole: Produce v0-v8 with a 12-byte response and v9-v11
 * with an 11-byte flexible one; Fetch v12-v17 with a response of MaxBytes bytes (one topic, one
 * partition whose Records are filler), carrying the NodeEndpoints tagged field (v16+, node 0 =
 * localhost:PORT) when the request's RackId is "ne"; ApiVersions (Produce v0-v11, Fetch v0-v17,
 * Metadata v0-v8, ApiVersions v0-v3) and Metadata v0-v8 with one broker (node 0 =
 * localhost:PORT), so kbridge's readiness probe succeeds; anything else with a bare error code.
 * Request bodies are counted and discarded, never buffered (Fetch bodies, small, are parsed).
 * A Fetch response body is built once per (version, size, NodeEndpoints) and shared by every
 * connection: only its size and correlation id are written per response.
 *
 * It counts what every path sends it: plaintext bytes in and out, and TLS records in and out
 * (OpenSSL's message callback sees every record header), with how many are full 16 KiB records.
 * On SIGUSR1 it writes them to the --stats file (written whole, then renamed) as one line
 * "STATS seq=N bytes_in=... bytes_out=... rec_in=... rec_in_full=... rec_out=... rec_out_full=..."
 *
 *   sink -p PORT --cert FILE --key FILE [--max-secs S] [--stats FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
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
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SINK_HOST "127.0.0.1"
#define SINK_HDR 12                 /* size(4) api_key(2) api_version(2) correlation_id(4) */
#define SINK_FRAME_MAX (128u << 20) /* larger requests close the connection */
#define SINK_OUT_CAP (256u << 10)   /* stop reading while this much output is queued */
#define SINK_READ_BUF (256u << 10)
#define SINK_EVENTS 256
#define SINK_BODY_MAX 4096 /* a Fetch request body; larger ones are answered with an error */
#define SINK_TMPL_MAX 16   /* distinct Fetch response bodies kept */
/* A TLS 1.3 AES-GCM record carrying 16 KiB of data: 16384 + content type + 16-byte tag. */
#define SINK_FULL_RECORD (16384 + 17)

/* A prebuilt Fetch response body (after size and correlation id), shared by all connections. */
struct sink_tmpl {
    int16_t version; /* Fetch version it answers */
    bool ne;         /* carries NodeEndpoints */
    uint32_t size;   /* the MaxBytes it was built for */
    uint8_t *p;      /* the body */
    size_t len;      /* its length */
};

/* A shared body to send after out[0 .. at) (a Fetch response's bulk). */
struct sink_ext {
    size_t at;        /* offset in out where it goes */
    const uint8_t *p; /* the bytes (a template's) */
    size_t len;       /* how many */
    size_t off;       /* already written */
};

/* One client connection (a proxy's upstream connection, or loadgen with --tls). */
struct sink_conn {
    int fd;                /* the socket */
    SSL *ssl;              /* server-side TLS */
    bool open;             /* handshake done */
    bool read_paused;      /* output above SINK_OUT_CAP */
    bool in_body;          /* inside a request body (skip > 0 or answer pending) */
    uint8_t hdr[SINK_HDR]; /* the current request's header, as it arrives */
    size_t hdr_len;        /* bytes of it so far */
    size_t skip;           /* body bytes of the current request still to discard */
    size_t skip_total;     /* the current request's body size */
    int16_t api_key;       /* current request */
    int16_t api_version;   /* current request */
    int32_t cid;           /* current request */
    uint8_t *out;          /* responses not yet written */
    size_t out_len;        /* bytes in out */
    size_t out_off;        /* bytes of out already written */
    size_t out_cap;        /* allocated size of out */
    uint32_t events;       /* epoll interest registered now */
    uint8_t *body;         /* a Fetch request's body (SINK_BODY_MAX), allocated on first use */
    size_t body_len;       /* bytes of it so far */
    struct sink_ext *ext;  /* shared bodies queued behind out, in order */
    size_t ext_head;       /* first not yet written */
    size_t ext_n;          /* entries used */
    size_t ext_cap;        /* entries allocated */
    size_t ext_left;       /* bytes of them still to write */
};

/* Process-wide state. */
struct sink {
    int ep;                               /* epoll instance */
    int lfd;                              /* listening socket */
    bool listen_paused;                   /* out of descriptors: accept again later */
    int port;                             /* our port, advertised in Metadata */
    SSL_CTX *ctx;                         /* server context */
    uint8_t *rbuf;                        /* one shared read buffer */
    unsigned long accepted;               /* connections accepted */
    unsigned long handshake_failed;       /* TLS handshakes that failed */
    unsigned long open_now;               /* connections open */
    unsigned long open_max;               /* most connections open at once */
    unsigned long long frames;            /* requests answered */
    unsigned long long bytes_in;          /* request bytes read */
    unsigned long long bytes_out;         /* response bytes written */
    unsigned long long rec_in;            /* TLS records received */
    unsigned long long rec_in_full;       /* of which SINK_FULL_RECORD or larger */
    unsigned long long rec_out;           /* TLS records sent */
    unsigned long long rec_out_full;      /* of which SINK_FULL_RECORD or larger */
    unsigned long stats_seq;              /* --stats snapshots written */
    const char *stats_path;               /* --stats FILE, or NULL */
    struct sink_tmpl tmpl[SINK_TMPL_MAX]; /* Fetch response bodies built so far */
    int n_tmpl;                           /* how many */
};

static volatile sig_atomic_t sink_stop;
static volatile sig_atomic_t sink_dump; /* SIGUSR1: write the --stats file */

static void
sink_on_signal(int sig)
{
    (void)sig;
    sink_stop = 1;
}

static void
sink_on_usr1(int sig)
{
    (void)sig;
    sink_dump = 1;
}

/* Every record header, read or written, passes here (OpenSSL's message callback). */
static void
sink_on_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
            void *arg)
{
    struct sink *s = arg;
    const uint8_t *h = buf;
    size_t rlen;

    (void)version;
    (void)ssl;
    if (content_type != SSL3_RT_HEADER || len < 5) {
        return;
    }
    rlen = (size_t)h[3] << 8 | h[4];
    if (write_p) {
        s->rec_out++;
        s->rec_out_full += rlen >= SINK_FULL_RECORD;
    } else {
        s->rec_in++;
        s->rec_in_full += rlen >= SINK_FULL_RECORD;
    }
}

static void
sink_write_stats(struct sink *s)
{
    char tmp[4096];
    FILE *f;

    if (!s->stats_path || snprintf(tmp, sizeof(tmp), "%s.tmp", s->stats_path) >= (int)sizeof(tmp)) {
        return;
    }
    f = fopen(tmp, "w");
    if (!f) {
        return;
    }
    fprintf(f,
            "STATS seq=%lu bytes_in=%llu bytes_out=%llu rec_in=%llu rec_in_full=%llu rec_out=%llu "
            "rec_out_full=%llu frames=%llu\n",
            ++s->stats_seq, s->bytes_in, s->bytes_out, s->rec_in, s->rec_in_full, s->rec_out,
            s->rec_out_full, s->frames);
    if (fclose(f) == 0) {
        rename(tmp, s->stats_path);
    }
}

static void
sink_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
sink_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
sink_close(struct sink *s, struct sink_conn *c)
{
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    SSL_free(c->ssl);
    close(c->fd);
    free(c->out);
    free(c->body);
    free(c->ext);
    free(c);
    s->open_now--;
}

static void
sink_interest(struct sink *s, struct sink_conn *c, uint32_t want)
{
    struct epoll_event ev = {.events = want, .data.ptr = c};

    if (want != c->events) {
        epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->events = want;
    }
}

static size_t
sink_uvarint(uint8_t *p, uint32_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A bounds-checked cursor over a Fetch request. */
struct sink_rd {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* end of the input */
    bool bad;           /* read past the end, or a malformed value */
};

static void
sink_rd_skip(struct sink_rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return;
    }
    r->p += n;
}

static uint32_t
sink_rd_u32(struct sink_rd *r)
{
    uint32_t v;

    if (r->bad || r->end - r->p < 4) {
        r->bad = true;
        return 0;
    }
    v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    return v;
}

static uint32_t
sink_rd_uvarint(struct sink_rd *r)
{
    uint32_t v = 0;
    int shift;

    for (shift = 0; shift < 35; shift += 7) {
        if (r->bad || r->p == r->end) {
            r->bad = true;
            return 0;
        }
        v |= (uint32_t)(*r->p & 0x7f) << shift;
        if (!(*r->p++ & 0x80)) {
            return v;
        }
    }
    r->bad = true;
    return 0;
}

static void
sink_rd_tags(struct sink_rd *r)
{
    uint32_t n = sink_rd_uvarint(r), i;

    for (i = 0; i < n && !r->bad; i++) {
        sink_rd_uvarint(r);
        sink_rd_skip(r, sink_rd_uvarint(r));
    }
}

/*
 * Reads a Fetch v12+ request (header v2 after the correlation id, then the body) for what the
 * answer depends on: MaxBytes, and whether RackId is "ne" (answer with NodeEndpoints).
 */
static bool
sink_parse_fetch(const uint8_t *p, size_t len, int16_t v, uint32_t *max_bytes, bool *ne)
{
    struct sink_rd r = {.p = p, .end = p + len};
    uint32_t n, i, k, rack;
    uint16_t client_id;

    if (len < 2) {
        return false;
    }
    client_id = (uint16_t)(p[0] << 8 | p[1]);
    sink_rd_skip(&r, 2 + (client_id == 0xffff ? 0 : client_id));
    sink_rd_tags(&r);
    if (v < 15) {
        sink_rd_skip(&r, 4); /* ReplicaId */
    }
    sink_rd_skip(&r, 8); /* MaxWaitMs, MinBytes */
    *max_bytes = sink_rd_u32(&r);
    sink_rd_skip(&r, 1 + 8); /* IsolationLevel, SessionId, SessionEpoch */
    n = sink_rd_uvarint(&r);
    for (i = 0; n > 0 && i < n - 1 && !r.bad; i++) {
        sink_rd_skip(&r, v >= 13 ? 16 : sink_rd_uvarint(&r) - 1); /* TopicId, or Topic */
        k = sink_rd_uvarint(&r);
        for (; k > 1 && !r.bad; k--) {
            sink_rd_skip(&r, 32); /* one FetchPartition */
            sink_rd_tags(&r);
        }
        sink_rd_tags(&r);
    }
    n = sink_rd_uvarint(&r); /* ForgottenTopicsData */
    for (i = 0; n > 0 && i < n - 1 && !r.bad; i++) {
        sink_rd_skip(&r, v >= 13 ? 16 : sink_rd_uvarint(&r) - 1);
        k = sink_rd_uvarint(&r);
        sink_rd_skip(&r, k > 0 ? (k - 1) * 4 : 0);
        sink_rd_tags(&r);
    }
    rack = sink_rd_uvarint(&r);
    *ne = !r.bad && rack == 3 && r.end - r.p >= 2 && memcmp(r.p, "ne", 2) == 0;
    return !r.bad;
}

/*
 * The Fetch v12+ response body (after size and correlation id) whose whole frame, prefix
 * included, is `size` bytes without NodeEndpoints: one topic, one partition, filler Records.
 * Built once, then shared.
 */
static const struct sink_tmpl *
sink_fetch_tmpl(struct sink *s, int16_t v, uint32_t size, bool ne)
{
    static const char host[] = "localhost";
    struct sink_tmpl *t;
    uint8_t ep[64], scratch[8], *p;
    size_t fixed, rec, ep_len = 0, n;
    int i;

    ne = ne && v >= 16;
    for (i = 0; i < s->n_tmpl; i++) {
        t = &s->tmpl[i];
        if (t->version == v && t->size == size && t->ne == ne) {
            return t;
        }
    }
    if (s->n_tmpl == SINK_TMPL_MAX || size < 256) {
        return NULL;
    }
    if (ne) {
        /* NodeEndpoints: one node, 0 = localhost:PORT, no rack */
        ep[ep_len++] = 2;
        sink_put32(ep + ep_len, 0);
        ep_len += 4;
        ep[ep_len++] = (uint8_t)(sizeof(host));
        memcpy(ep + ep_len, host, sizeof(host) - 1);
        ep_len += sizeof(host) - 1;
        sink_put32(ep + ep_len, (uint32_t)s->port);
        ep_len += 4;
        ep[ep_len++] = 0; /* Rack: null */
        ep[ep_len++] = 0; /* tagged fields */
    }
    /* header tags, throttle, error, session, topics[1], topic id, partitions[1], index, error,
       three offsets, aborted (null), preferred replica, | records |, partition and topic tags */
    fixed = 1 + 4 + 2 + 4 + 1 + 16 + 1 + 4 + 2 + 24 + 1 + 4 + 1 + 1;
    rec = size - 8 - fixed - 1 - 5;
    while (8 + fixed + sink_uvarint(scratch, (uint32_t)rec + 1) + rec + 1 < size) {
        rec++;
    }
    t = &s->tmpl[s->n_tmpl];
    t->len = size - 8 + (ne ? 2 + ep_len : 0); /* the tag section grows by count + tag + size */
    t->p = malloc(t->len);
    if (!t->p) {
        return NULL;
    }
    p = t->p;
    n = 0;
    p[n++] = 0;           /* response header tagged fields */
    memset(p + n, 0, 10); /* ThrottleTimeMs, ErrorCode, SessionId */
    n += 10;
    p[n++] = 2;              /* Responses: 1 */
    memset(p + n, 0xab, 16); /* TopicId */
    n += 16;
    p[n++] = 2;          /* Partitions: 1 */
    memset(p + n, 0, 6); /* PartitionIndex, ErrorCode */
    n += 6;
    memset(p + n, 0, 24); /* HighWatermark, LastStableOffset, LogStartOffset */
    n += 24;
    p[n++] = 0;                     /* AbortedTransactions: null */
    sink_put32(p + n, 0xffffffffu); /* PreferredReadReplica: -1 */
    n += 4;
    n += sink_uvarint(p + n, (uint32_t)rec + 1);
    memset(p + n, 'k', rec);
    n += rec;
    p[n++] = 0; /* partition tagged fields */
    p[n++] = 0; /* topic tagged fields */
    if (ne) {
        p[n++] = 1;               /* one tagged field */
        p[n++] = 0;               /* tag 0: NodeEndpoints */
        p[n++] = (uint8_t)ep_len; /* its size */
        memcpy(p + n, ep, ep_len);
        n += ep_len;
    } else {
        p[n++] = 0;
    }
    if (n != t->len) {
        abort();
    }
    t->version = v;
    t->size = size;
    t->ne = ne;
    s->n_tmpl++;
    return t;
}

/* Queues a shared body behind what out holds now. */
static bool
sink_queue_ext(struct sink_conn *c, const uint8_t *p, size_t len)
{
    if (c->ext_n == c->ext_cap) {
        size_t cap = c->ext_cap ? c->ext_cap * 2 : 16;
        struct sink_ext *e = realloc(c->ext, cap * sizeof(*e));

        if (!e) {
            return false;
        }
        c->ext = e;
        c->ext_cap = cap;
    }
    c->ext[c->ext_n++] = (struct sink_ext){.at = c->out_len, .p = p, .len = len};
    c->ext_left += len;
    return true;
}

/* Appends the answer to the request whose header is in c. */
static bool
sink_respond(struct sink *s, struct sink_conn *c)
{
    static const char host[] = "localhost";
    uint8_t r[128];
    size_t n = 4;
    int16_t v = c->api_version;
    const struct sink_tmpl *t = NULL;

    sink_put32(r + n, (uint32_t)c->cid);
    n += 4;
    if (c->api_key == 1 && v >= 12 && v <= 17) {
        uint32_t max_bytes = 0;
        bool ne = false;

        if (c->body_len < c->skip_total ||
            !sink_parse_fetch(c->body, c->body_len, v, &max_bytes, &ne) ||
            !(t = sink_fetch_tmpl(s, v, max_bytes, ne))) {
            fprintf(stderr, "sink: Fetch v%d request not understood (MaxBytes %u); closing\n",
                    (int)v, (unsigned)max_bytes);
            return false;
        }
        sink_put32(r, (uint32_t)(4 + t->len)); /* correlation id + the shared body */
    } else if (c->api_key == 0 && v >= 9) {
        /* ProduceResponse v9+: header v1 (tags), Responses [] (compact), ThrottleTimeMs, tags */
        r[n++] = 0;
        r[n++] = 1;
        sink_put32(r + n, 0);
        n += 4;
        r[n++] = 0;
    } else if (c->api_key == 0) {
        /* ProduceResponse v0-v8 shape: Responses [] (empty), ThrottleTimeMs 0 (v1+) */
        sink_put32(r + n, 0);
        sink_put32(r + n + 4, 0);
        n += 8;
    } else if (c->api_key == 3 && v >= 0 && v <= 8) {
        /* MetadataResponse v0-v8 (not flexible): one broker, no topics */
        if (v >= 3) {
            sink_put32(r + n, 0); /* ThrottleTimeMs */
            n += 4;
        }
        sink_put32(r + n, 1);     /* Brokers: 1 */
        sink_put32(r + n + 4, 0); /* NodeId 0 */
        sink_put16(r + n + 8, sizeof(host) - 1);
        memcpy(r + n + 10, host, sizeof(host) - 1);
        n += 10 + sizeof(host) - 1;
        sink_put32(r + n, (uint32_t)s->port); /* Port */
        n += 4;
        if (v >= 1) {
            sink_put16(r + n, 0xffff); /* Rack: null */
            n += 2;
        }
        if (v >= 2) {
            sink_put16(r + n, 0xffff); /* ClusterId: null */
            n += 2;
        }
        if (v >= 1) {
            sink_put32(r + n, 0); /* ControllerId */
            n += 4;
        }
        sink_put32(r + n, 0); /* Topics: 0 */
        n += 4;
        if (v >= 8) {
            sink_put32(r + n, 0x80000000u); /* ClusterAuthorizedOperations */
            n += 4;
        }
    } else if (c->api_key == 18 && v >= 0) {
        /* ApiVersionsResponse: what this sink answers properly; v3+ has a flexible body */
        static const int16_t keys[][3] = {{0, 0, 11}, {1, 0, 17}, {3, 0, 8}, {18, 0, 3}};
        size_t i;

        sink_put16(r + n, 0); /* ErrorCode */
        n += 2;
        if (v >= 3) {
            r[n++] = (uint8_t)(sizeof(keys) / sizeof(keys[0]) + 1); /* compact array */
        } else {
            sink_put32(r + n, sizeof(keys) / sizeof(keys[0]));
            n += 4;
        }
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            sink_put16(r + n, (uint16_t)keys[i][0]);
            sink_put16(r + n + 2, (uint16_t)keys[i][1]);
            sink_put16(r + n + 4, (uint16_t)keys[i][2]);
            n += 6;
            if (v >= 3) {
                r[n++] = 0; /* tagged fields */
            }
        }
        if (v >= 1) {
            sink_put32(r + n, 0); /* ThrottleTimeMs */
            n += 4;
        }
        if (v >= 3) {
            r[n++] = 0; /* tagged fields */
        }
    } else {
        sink_put16(r + n, 35); /* UNSUPPORTED_VERSION, nothing else */
        n += 2;
    }
    if (!t) {
        sink_put32(r, (uint32_t)(n - 4));
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
        uint8_t *p;

        while (cap < c->out_len + n) {
            cap *= 2;
        }
        p = realloc(c->out, cap);
        if (!p) {
            return false;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, r, n);
    c->out_len += n;
    s->frames++;
    return !t || sink_queue_ext(c, t->p, t->len);
}

/* Takes n request bytes: headers are collected, bodies skipped, whole requests answered. */
static bool
sink_consume(struct sink *s, struct sink_conn *c, const uint8_t *p, size_t n)
{
    s->bytes_in += n;
    while (n > 0) {
        if (c->in_body) {
            size_t k = n < c->skip ? n : c->skip;

            if (c->api_key == 1 && c->body_len + k <= SINK_BODY_MAX) {
                memcpy(c->body + c->body_len, p, k);
                c->body_len += k;
            }
            c->skip -= k;
            p += k;
            n -= k;
        } else {
            size_t k = SINK_HDR - c->hdr_len;
            uint32_t size;

            k = n < k ? n : k;
            memcpy(c->hdr + c->hdr_len, p, k);
            c->hdr_len += k;
            p += k;
            n -= k;
            if (c->hdr_len < SINK_HDR) {
                break;
            }
            size = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                   (uint32_t)c->hdr[2] << 8 | c->hdr[3];
            if (size < SINK_HDR - 4 || size > SINK_FRAME_MAX) {
                fprintf(stderr, "sink: request frame with bad size %u; closing\n", (unsigned)size);
                return false;
            }
            c->api_key = (int16_t)(c->hdr[4] << 8 | c->hdr[5]);
            c->api_version = (int16_t)(c->hdr[6] << 8 | c->hdr[7]);
            c->cid = (int32_t)((uint32_t)c->hdr[8] << 24 | (uint32_t)c->hdr[9] << 16 |
                               (uint32_t)c->hdr[10] << 8 | c->hdr[11]);
            c->skip = size - (SINK_HDR - 4);
            c->skip_total = c->skip;
            c->body_len = 0;
            if (c->api_key == 1 && !c->body && !(c->body = malloc(SINK_BODY_MAX))) {
                return false;
            }
            c->hdr_len = 0;
            c->in_body = true;
        }
        if (c->in_body && c->skip == 0) {
            c->in_body = false;
            if (!sink_respond(s, c)) {
                return false;
            }
        }
    }
    return true;
}

/* Writes what is queued. false: the connection failed. *want_out: wait for writability. */
static bool
sink_flush(struct sink *s, struct sink_conn *c, bool *want_out)
{
    *want_out = false;
    while (c->out_off < c->out_len || c->ext_head < c->ext_n) {
        struct sink_ext *e = c->ext_head < c->ext_n ? &c->ext[c->ext_head] : NULL;
        size_t end = e ? e->at : c->out_len, want;
        const uint8_t *from;
        int n;

        if (e && e->at == c->out_off) {
            from = e->p + e->off;
            want = e->len - e->off;
        } else {
            from = c->out + c->out_off;
            want = end - c->out_off;
        }
        n = SSL_write(c->ssl, from, want > (1u << 30) ? 1 << 30 : (int)want);
        if (n > 0) {
            s->bytes_out += (size_t)n;
            if (e && e->at == c->out_off) {
                e->off += (size_t)n;
                c->ext_left -= (size_t)n;
                c->ext_head += e->off == e->len;
            } else {
                c->out_off += (size_t)n;
            }
            continue;
        }
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_WRITE:
            *want_out = true;
            return true;
        case SSL_ERROR_WANT_READ:
            return true;
        default:
            ERR_clear_error();
            return false;
        }
    }
    c->out_off = c->out_len = 0;
    c->ext_head = c->ext_n = 0;
    return true;
}

/* Reads and answers everything available, then flushes. Closes c on failure or end. */
static void
sink_serve(struct sink *s, struct sink_conn *c)
{
    bool want_out = false, read_wants_out = false;

again:
    for (;;) {
        int n, e;

        if (c->out_len - c->out_off + c->ext_left > SINK_OUT_CAP) {
            if (!sink_flush(s, c, &want_out)) {
                sink_close(s, c);
                return;
            }
            if (c->out_len - c->out_off + c->ext_left > SINK_OUT_CAP) {
                c->read_paused = true;
                break;
            }
        }
        c->read_paused = false;
        n = SSL_read(c->ssl, s->rbuf, SINK_READ_BUF);
        if (n > 0) {
            if (!sink_consume(s, c, s->rbuf, (size_t)n)) {
                sink_close(s, c);
                return;
            }
            continue;
        }
        e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            read_wants_out = true;
            break;
        }
        ERR_clear_error();
        sink_close(s, c); /* close_notify, EOF or an error */
        return;
    }
    if (!sink_flush(s, c, &want_out)) {
        sink_close(s, c);
        return;
    }
    if (c->read_paused && c->out_len - c->out_off + c->ext_left <= SINK_OUT_CAP) {
        /* the flush drained it below the cap: without this, a connection whose output went out
           whole here would wait for neither input nor output, and stall (a 50 MiB response) */
        goto again;
    }
    sink_interest(s, c,
                  (c->read_paused ? 0 : EPOLLIN) | (want_out || read_wants_out ? EPOLLOUT : 0));
}

static void
sink_handshake(struct sink *s, struct sink_conn *c)
{
    int r = SSL_accept(c->ssl);

    if (r == 1) {
        c->open = true;
        sink_serve(s, c); /* a TLS 1.3 client may have sent its first request already */
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        sink_interest(s, c, EPOLLIN);
        break;
    case SSL_ERROR_WANT_WRITE:
        sink_interest(s, c, EPOLLOUT);
        break;
    default:
        if (BIO_number_read(SSL_get_rbio(c->ssl)) == 0) {
            ERR_clear_error(); /* a bare TCP connect (a port check), not a TLS client */
            sink_close(s, c);
            break;
        }
        if (s->handshake_failed++ < 3) {
            fprintf(stderr, "sink: TLS handshake failed: ");
            ERR_print_errors_fp(stderr);
            fprintf(stderr, "\n");
        }
        ERR_clear_error();
        sink_close(s, c);
        break;
    }
}

static void
sink_accept(struct sink *s)
{
    for (;;) {
        struct epoll_event ev;
        struct sink_conn *c;
        int one = 1;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                fprintf(stderr, "sink: out of file descriptors with %lu open; raise ulimit -n\n",
                        s->open_now);
                epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
                s->listen_paused = true;
            }
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (!c || !(c->ssl = SSL_new(s->ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
            if (c) {
                SSL_free(c->ssl);
            }
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        SSL_set_accept_state(c->ssl);
        c->events = EPOLLIN;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            SSL_free(c->ssl);
            free(c);
            close(fd);
            continue;
        }
        s->accepted++;
        s->open_now++;
        s->open_max = s->open_now > s->open_max ? s->open_now : s->open_max;
    }
}

static SSL_CTX *
sink_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "sink: cannot load %s / %s\n", cert, key);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

static int
sink_listen(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    inet_pton(AF_INET, SINK_HOST, &sin.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "sink: cannot listen on %s:%d: %s\n", SINK_HOST, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cert", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'K'},
        {"max-secs", required_argument, NULL, 'M'},
        {"stats", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    struct sink s = {.ep = -1, .lfd = -1};
    struct epoll_event evs[SINK_EVENTS], lev = {.events = EPOLLIN, .data.ptr = NULL};
    const char *cert = NULL, *key = NULL;
    double max_secs = 900;
    time_t started = time(NULL);
    int c;

    while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            s.port = atoi(optarg);
            break;
        case 'C':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        case 'M':
            max_secs = atof(optarg);
            break;
        case 'S':
            s.stats_path = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: sink -p PORT --cert FILE --key FILE [--max-secs S] [--stats FILE]\n");
            return 2;
        }
    }
    if (s.port <= 0 || s.port > 65535 || !cert || !key || max_secs <= 0) {
        fprintf(stderr, "usage: sink -p PORT --cert FILE --key FILE [--max-secs S]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, sink_on_signal);
    signal(SIGINT, sink_on_signal);
    signal(SIGUSR1, sink_on_usr1);
    s.ctx = sink_ctx(cert, key);
    if (s.ctx) {
        SSL_CTX_set_msg_callback(s.ctx, sink_on_msg);
        SSL_CTX_set_msg_callback_arg(s.ctx, &s);
    }
    s.rbuf = malloc(SINK_READ_BUF);
    s.lfd = sink_listen(s.port);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!s.ctx || !s.rbuf || s.lfd < 0 || s.ep < 0 ||
        epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev) != 0) {
        return 1;
    }
    fprintf(stderr, "sink: listening on %s:%d\n", SINK_HOST, s.port);
    while (!sink_stop && difftime(time(NULL), started) < max_secs) {
        int n = epoll_wait(s.ep, evs, SINK_EVENTS, 100), i;

        if (n < 0 && errno != EINTR) {
            perror("sink: epoll_wait");
            return 1;
        }
        if (sink_dump) {
            sink_dump = 0;
            sink_write_stats(&s);
        }
        if (n <= 0 && s.listen_paused) {
            s.listen_paused = epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev) != 0;
        }
        for (i = 0; i < n; i++) {
            struct sink_conn *conn = evs[i].data.ptr;

            if (!conn) {
                sink_accept(&s);
            } else if (!conn->open) {
                sink_handshake(&s, conn);
            } else {
                sink_serve(&s, conn);
            }
        }
    }
    fprintf(stderr,
            "sink: exiting: %lu connections accepted (at most %lu at once), %lu TLS handshakes "
            "failed, %llu requests answered, %llu bytes read\n",
            s.accepted, s.open_max, s.handshake_failed, s.frames, s.bytes_in);
    return 0;
}
