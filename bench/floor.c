/*
 * floor.c - the physical floor of the side-by-side benchmark (bench/run.sh, issue 16): the
 * simplest correct plaintext -> verified TLS relay, to measure every proxy against. One thread
 * per client connection; each thread relays both directions of its pair with poll(2):
 *   client -> broker: read() up to 256 KiB, SSL_write() all of it into one flat, reused buffer
 *     through a custom BIO (full 16 KiB records, a partial one only at the end of a read), then
 *     one write() of that buffer to the broker socket (the rest later, when it is writable);
 *   broker -> client: SSL_read() until OpenSSL wants more (read-ahead into a 256 KiB buffer:
 *     one read() per batch of records), one write() of what was read.
 * A side is read only while the other side's output is empty, so memory stays at 3 x 256 KiB
 * per connection. The broker's certificate and host name are verified against --ca (SNI and
 * name "localhost"). No Kafka parsing and no address rewriting: it is a floor, not a proxy.
 *
 *   floor -p LISTEN_PORT -u BROKER_PORT --ca FILE [--max-secs S]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
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
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define FLOOR_HOST "127.0.0.1"
#define FLOOR_SNI "localhost"           /* the name the broker's certificate must carry */
#define FLOOR_READ (256u << 10)         /* one read() from the client, one SSL_read() batch */
#define FLOOR_HANDSHAKE_MS 10000        /* bound on the TLS handshake */
#define FLOOR_STACK (256u << 10)        /* per-connection thread stack */
#define FLOOR_FLAT_INITIAL (320u << 10) /* 256 KiB of plaintext is ~16 records + overhead */

/* The flat output buffer behind the custom write BIO: ciphertext waiting for the socket. */
struct floor_flat {
    uint8_t *p;  /* buffer, reused for the life of the connection */
    size_t len;  /* bytes in it */
    size_t off;  /* bytes of it already written to the socket */
    size_t cap;  /* allocated size */
    bool failed; /* an allocation failed: the connection is dropped */
};

/* One client connection and its broker connection; owned by its thread. */
struct floor_conn {
    int cfd;                /* plaintext client */
    int ufd;                /* broker (TLS) */
    SSL *ssl;               /* client-side TLS to the broker */
    struct floor_flat flat; /* ciphertext to the broker */
    uint8_t *in;            /* plaintext read from the client (FLOOR_READ) */
    uint8_t *down;          /* plaintext from the broker for the client (FLOOR_READ) */
    size_t down_len;        /* bytes in down */
    size_t down_off;        /* bytes of down already written to the client */
};

/* Process-wide settings. */
struct floor {
    SSL_CTX *ctx;       /* verifying client context */
    BIO_METHOD *meth;   /* the flat-buffer write BIO */
    int broker_port;    /* the sink, on FLOOR_HOST */
    _Atomic long conns; /* open connections (for the exit line) */
};

static struct floor floor_g;
static volatile sig_atomic_t floor_stop;

static void
floor_on_signal(int sig)
{
    (void)sig;
    floor_stop = 1;
}

/* ---- the custom BIO: SSL_write's records are appended to one flat buffer ------------------ */

static int
floor_bio_write(BIO *b, const char *data, int len)
{
    struct floor_flat *f = BIO_get_data(b);

    if (len <= 0) {
        return 0;
    }
    if (f->len + (size_t)len > f->cap) {
        size_t cap = f->cap ? f->cap : FLOOR_FLAT_INITIAL;
        uint8_t *p;

        while (cap < f->len + (size_t)len) {
            cap *= 2;
        }
        p = realloc(f->p, cap);
        if (!p) {
            f->failed = true;
            return -1;
        }
        f->p = p;
        f->cap = cap;
    }
    memcpy(f->p + f->len, data, (size_t)len);
    f->len += (size_t)len;
    return len;
}

static long
floor_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct floor_flat *f = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the relay loop sends the buffer: one write() per client read */
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING:
        return (long)(f->len - f->off);
    default:
        return 0;
    }
}

static int
floor_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *
floor_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "floor flat");

    if (!m || BIO_meth_set_write(m, floor_bio_write) != 1 ||
        BIO_meth_set_ctrl(m, floor_bio_ctrl) != 1 ||
        BIO_meth_set_create(m, floor_bio_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---- one connection ----------------------------------------------------------------------- */

/* One write() of what the flat buffer holds. false: the broker connection failed. */
static bool
floor_send_flat(struct floor_conn *c)
{
    struct floor_flat *f = &c->flat;
    ssize_t n;

    if (f->off == f->len) {
        return true;
    }
    n = send(c->ufd, f->p + f->off, f->len - f->off, MSG_NOSIGNAL);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR;
    }
    f->off += (size_t)n;
    if (f->off == f->len) {
        f->off = f->len = 0; /* reuse from the start */
    }
    return true;
}

/* One write() of what is waiting for the client. false: the client went away. */
static bool
floor_send_down(struct floor_conn *c)
{
    ssize_t n;

    if (c->down_off == c->down_len) {
        return true;
    }
    n = send(c->cfd, c->down + c->down_off, c->down_len - c->down_off, MSG_NOSIGNAL);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR;
    }
    c->down_off += (size_t)n;
    if (c->down_off == c->down_len) {
        c->down_off = c->down_len = 0;
    }
    return true;
}

/* Waits until fd has `ev`, within ms. */
static bool
floor_wait(int fd, short ev, int ms)
{
    struct pollfd p = {.fd = fd, .events = ev};

    return poll(&p, 1, ms) == 1 && !(p.revents & POLLNVAL);
}

/* Prints the TLS failure in one line: the verification result if that was the cause. */
static void
floor_tls_error(const struct floor_conn *c, const char *what)
{
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_last_error();

    if (v != X509_V_OK) {
        fprintf(stderr, "floor: %s: certificate not verified: %s\n", what,
                X509_verify_cert_error_string(v));
    } else {
        fprintf(stderr, "floor: %s: %s\n", what, e ? ERR_reason_error_string(e) : "closed");
    }
    ERR_clear_error();
}

/* Connects to the broker and completes a verified handshake (non-blocking, bounded). */
static bool
floor_connect(struct floor_conn *c)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)floor_g.broker_port)};
    int one = 1, r;
    BIO *rb, *wb;
    struct timespec t0, t1;

    c->ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->ufd < 0) {
        return false;
    }
    inet_pton(AF_INET, FLOOR_HOST, &sin.sin_addr);
    setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->ufd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        fprintf(stderr, "floor: connect to the broker: %s\n", strerror(errno));
        return false;
    }
    fcntl(c->ufd, F_SETFL, fcntl(c->ufd, F_GETFL) | O_NONBLOCK);
    c->ssl = SSL_new(floor_g.ctx);
    rb = BIO_new_socket(c->ufd, BIO_NOCLOSE);
    wb = BIO_new(floor_g.meth);
    if (!c->ssl || !rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        return false;
    }
    BIO_set_data(wb, &c->flat);
    SSL_set_bio(c->ssl, rb, wb);
    if (SSL_set_tlsext_host_name(c->ssl, FLOOR_SNI) != 1 || SSL_set1_host(c->ssl, FLOOR_SNI) != 1) {
        return false;
    }
    SSL_set_connect_state(c->ssl);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int ms;

        r = SSL_connect(c->ssl);
        /* each flight is in the flat buffer: send all of it before waiting for the answer */
        while (c->flat.off < c->flat.len) {
            if (!floor_send_flat(c) ||
                (c->flat.off < c->flat.len && !floor_wait(c->ufd, POLLOUT, FLOOR_HANDSHAKE_MS))) {
                fprintf(stderr, "floor: TLS handshake: broker connection failed\n");
                return false;
            }
        }
        if (r == 1) {
            return true;
        }
        if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ || c->flat.failed) {
            floor_tls_error(c, "TLS handshake with the broker failed");
            return false;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = FLOOR_HANDSHAKE_MS -
             (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (ms <= 0 || !floor_wait(c->ufd, POLLIN, ms)) {
            fprintf(stderr, "floor: TLS handshake with the broker timed out\n");
            return false;
        }
    }
}

/* Client bytes -> records in the flat buffer -> one write(). false: end or failure. */
static bool
floor_upstream(struct floor_conn *c)
{
    ssize_t n = recv(c->cfd, c->in, FLOOR_READ, 0);
    int w;

    if (n == 0) {
        return false;
    }
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR;
    }
    /* the BIO takes everything, so one SSL_write consumes the whole read */
    w = SSL_write(c->ssl, c->in, (int)n);
    if (w != (int)n || c->flat.failed) {
        floor_tls_error(c, "SSL_write");
        return false;
    }
    return floor_send_flat(c);
}

/* Broker records -> plaintext -> one write() to the client. false: end or failure. */
static bool
floor_downstream(struct floor_conn *c)
{
    while (c->down_len < FLOOR_READ) {
        int n = SSL_read(c->ssl, c->down + c->down_len, (int)(FLOOR_READ - c->down_len));

        if (n > 0) {
            c->down_len += (size_t)n;
            continue;
        }
        if (SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ) {
            break;
        }
        if (SSL_get_error(c->ssl, n) != SSL_ERROR_ZERO_RETURN) {
            floor_tls_error(c, "SSL_read");
        }
        return false;
    }
    /* a post-handshake message (a KeyUpdate) may have queued a record to the broker */
    return floor_send_flat(c) && floor_send_down(c);
}

static void
floor_relay(struct floor_conn *c)
{
    fcntl(c->cfd, F_SETFL, fcntl(c->cfd, F_GETFL) | O_NONBLOCK);
    while (!floor_stop) {
        struct pollfd p[2] = {{.fd = c->cfd}, {.fd = c->ufd}};
        bool up_busy = c->flat.off < c->flat.len, down_busy = c->down_off < c->down_len;
        /* records OpenSSL already decrypted-ahead are not signalled by the socket */
        bool tls_pending = !down_busy && SSL_has_pending(c->ssl);
        int r;

        p[0].events = (short)((up_busy ? 0 : POLLIN) | (down_busy ? POLLOUT : 0));
        p[1].events = (short)((down_busy ? 0 : POLLIN) | (up_busy ? POLLOUT : 0));
        r = poll(p, 2, tls_pending ? 0 : 500);
        if (r < 0 && errno != EINTR) {
            return;
        }
        if ((p[0].revents | p[1].revents) & (POLLERR | POLLNVAL)) {
            return;
        }
        if ((p[1].revents & POLLOUT) && !floor_send_flat(c)) {
            return;
        }
        if ((p[0].revents & POLLOUT) && !floor_send_down(c)) {
            return;
        }
        if ((p[0].revents & (POLLIN | POLLHUP)) && c->flat.off == c->flat.len &&
            !floor_upstream(c)) {
            return;
        }
        if (((p[1].revents & (POLLIN | POLLHUP)) || tls_pending) && c->down_off == c->down_len &&
            !floor_downstream(c)) {
            return;
        }
    }
}

static void *
floor_conn_run(void *arg)
{
    struct floor_conn *c = arg;

    c->in = malloc(FLOOR_READ);
    c->down = malloc(FLOOR_READ);
    if (c->in && c->down && floor_connect(c)) {
        floor_relay(c);
    }
    SSL_free(c->ssl); /* frees both BIOs */
    if (c->ufd >= 0) {
        close(c->ufd);
    }
    close(c->cfd);
    free(c->flat.p);
    free(c->in);
    free(c->down);
    free(c);
    floor_g.conns--;
    return NULL;
}

/* ---- setup -------------------------------------------------------------------------------- */

static SSL_CTX *
floor_ctx(const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        fprintf(stderr, "floor: cannot load the CA file '%s'\n", ca);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* big reads downstream too: one read() takes every record there is, up to 256 KiB, instead
       of a 5-byte header read and a body read per record */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, FLOOR_READ);
    return ctx;
}

static int
floor_listen(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    inet_pton(AF_INET, FLOOR_HOST, &sin.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "floor: cannot listen on %s:%d: %s\n", FLOOR_HOST, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'A'},
        {"max-secs", required_argument, NULL, 'M'},
        {NULL, 0, NULL, 0},
    };
    const char *ca = NULL;
    double max_secs = 900;
    time_t started = time(NULL);
    pthread_attr_t attr;
    int port = 0, lfd, c;

    while ((c = getopt_long(argc, argv, "p:u:", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'u':
            floor_g.broker_port = atoi(optarg);
            break;
        case 'A':
            ca = optarg;
            break;
        case 'M':
            max_secs = atof(optarg);
            break;
        default:
            fprintf(stderr, "usage: floor -p PORT -u BROKER_PORT --ca FILE [--max-secs S]\n");
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || floor_g.broker_port <= 0 || floor_g.broker_port > 65535 ||
        !ca || max_secs <= 0) {
        fprintf(stderr, "usage: floor -p PORT -u BROKER_PORT --ca FILE [--max-secs S]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, floor_on_signal);
    signal(SIGINT, floor_on_signal);
    floor_g.ctx = floor_ctx(ca);
    floor_g.meth = floor_bio_method();
    lfd = floor_listen(port);
    if (!floor_g.ctx || !floor_g.meth || lfd < 0) {
        return 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, FLOOR_STACK);
    fprintf(stderr, "floor: listening on %s:%d, relaying to %s:%d\n", FLOOR_HOST, port, FLOOR_HOST,
            floor_g.broker_port);
    while (!floor_stop && difftime(time(NULL), started) < max_secs) {
        struct floor_conn *conn;
        pthread_t t;
        int one = 1, fd;

        if (!floor_wait(lfd, POLLIN, 200)) {
            continue;
        }
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn = calloc(1, sizeof(*conn));
        if (!conn) {
            close(fd);
            continue;
        }
        conn->cfd = fd;
        conn->ufd = -1;
        floor_g.conns++;
        if (pthread_create(&t, &attr, floor_conn_run, conn) != 0) {
            floor_g.conns--;
            close(fd);
            free(conn);
        }
    }
    fprintf(stderr, "floor: exiting with %ld connections open\n", (long)floor_g.conns);
    return 0;
}
