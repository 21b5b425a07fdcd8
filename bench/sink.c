/*
 * sink.c - TLS stand-in for a Kafka broker in the side-by-side benchmark (bench/run.sh).
 * Terminates TLS on 127.0.0.1:PORT (one epoll thread, non-blocking OpenSSL) and answers every
 * request frame once it has been read whole: Produce with a 12-byte response, ApiVersions
 * (Produce, Metadata v0-v8, ApiVersions v0-v3) and Metadata v0-v8 with one broker (node 0 =
 * localhost:PORT), so kbridge's readiness probe succeeds; anything else with a bare error code.
 * Request bodies are counted and discarded, never buffered.
 *
 *   sink -p PORT --cert FILE --key FILE [--max-secs S]
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
    int16_t api_key;       /* current request */
    int16_t api_version;   /* current request */
    int32_t cid;           /* current request */
    uint8_t *out;          /* responses not yet written */
    size_t out_len;        /* bytes in out */
    size_t out_off;        /* bytes of out already written */
    size_t out_cap;        /* allocated size of out */
    uint32_t events;       /* epoll interest registered now */
};

/* Process-wide state. */
struct sink {
    int ep;                         /* epoll instance */
    int lfd;                        /* listening socket */
    bool listen_paused;             /* out of descriptors: accept again later */
    int port;                       /* our port, advertised in Metadata */
    SSL_CTX *ctx;                   /* server context */
    uint8_t *rbuf;                  /* one shared read buffer */
    unsigned long accepted;         /* connections accepted */
    unsigned long handshake_failed; /* TLS handshakes that failed */
    unsigned long open_now;         /* connections open */
    unsigned long open_max;         /* most connections open at once */
    unsigned long long frames;      /* requests answered */
    unsigned long long bytes_in;    /* request bytes read */
};

static volatile sig_atomic_t sink_stop;

static void
sink_on_signal(int sig)
{
    (void)sig;
    sink_stop = 1;
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

/* Appends the answer to the request whose header is in c. */
static bool
sink_respond(struct sink *s, struct sink_conn *c)
{
    static const char host[] = "localhost";
    uint8_t r[128];
    size_t n = 4;
    int16_t v = c->api_version;

    sink_put32(r + n, (uint32_t)c->cid);
    n += 4;
    if (c->api_key == 0) {
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
        static const int16_t keys[][3] = {{0, 0, 8}, {3, 0, 8}, {18, 0, 3}};
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
    sink_put32(r, (uint32_t)(n - 4));
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
    return true;
}

/* Takes n request bytes: headers are collected, bodies skipped, whole requests answered. */
static bool
sink_consume(struct sink *s, struct sink_conn *c, const uint8_t *p, size_t n)
{
    s->bytes_in += n;
    while (n > 0) {
        if (c->in_body) {
            size_t k = n < c->skip ? n : c->skip;

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
sink_flush(struct sink_conn *c, bool *want_out)
{
    *want_out = false;
    while (c->out_off < c->out_len) {
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));

        if (n > 0) {
            c->out_off += (size_t)n;
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
    return true;
}

/* Reads and answers everything available, then flushes. Closes c on failure or end. */
static void
sink_serve(struct sink *s, struct sink_conn *c)
{
    bool want_out = false, read_wants_out = false;

    for (;;) {
        int n, e;

        if (c->out_len - c->out_off > SINK_OUT_CAP) {
            if (!sink_flush(c, &want_out)) {
                sink_close(s, c);
                return;
            }
            if (c->out_len - c->out_off > SINK_OUT_CAP) {
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
    if (!sink_flush(c, &want_out)) {
        sink_close(s, c);
        return;
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
        default:
            fprintf(stderr, "usage: sink -p PORT --cert FILE --key FILE [--max-secs S]\n");
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
    s.ctx = sink_ctx(cert, key);
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
