/*
 * kbmock.c - an "MSK-like" TLS Kafka test cluster for kbridge's integration tests and demo.
 * librdkafka's mock cluster speaks only plaintext Kafka. kbmock puts TLS in front of it: at the
 * very addresses the mock advertises (msk mode, as on AWS MSK), on separate ports (front mode,
 * reached through kbridge's connect_to), or not at all (plain mode). Control is by stdin lines.
 * Test code only: the tricks below (taking over the mock's listening sockets) are not for kbridge.
 *
 * msk mode: librdkafka 2.0.2 always binds each mock broker to 127.0.0.1:0 and advertises the
 * port P it got. kbmock finds that listening fd, dup3()s a fresh plaintext listener on port Q
 * onto the same fd number (the mock thread now accepts on Q), round-trips one op through the
 * mock thread so its poll() drops the old socket, then binds its TLS endpoint to P and forwards
 * TLS P -> plaintext Q. Metadata still says P, so every address a client learns is TLS.
 *
 * msk mode with --advertise-host HOST (librdkafka >= 2.12, whose mock can advertise any
 * host:port): no socket tricks. Each broker keeps its own plaintext port Q, kbmock's TLS endpoint
 * gets a free port T, and the mock advertises HOST:T everywhere (Metadata, FindCoordinator, the
 * KIP-951 NodeEndpoints of Produce/Fetch), as MSK advertises b-N.<cluster>...:9094. `down`/`up`
 * act on the TLS endpoint only, as in plain msk mode: the broker stays in Metadata (and keeps
 * its partitions) while its advertised address refuses connections.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* rd_kafka_mock_broker_set_host_port(): --advertise-host (tested with 2.12.0) */
#if defined(RD_KAFKA_VERSION) && RD_KAFKA_VERSION >= 0x020c0000
#define KBM_HAVE_SET_HOST_PORT 1
#else
#define KBM_HAVE_SET_HOST_PORT 0
#endif

#define KBM_MAX_BROKERS 32          /* the mock numbers brokers 1..N */
#define KBM_MAX_TOPICS 32           /* --topic may repeat */
#define KBM_HIGH_WATER (512 * 1024) /* stop reading one side while the other has this queued */
#define KBM_REBIND_MS 5000          /* msk mode: wait this long for the mock to let go of P */
#define KBM_UP_REBIND_MS 2000       /* `up`: wait this long to get a front's port back */

enum kbm_mode {
    KBM_MODE_MSK = 0, /* TLS at the advertised address itself */
    KBM_MODE_FRONT,   /* TLS on a separate port per broker */
    KBM_MODE_PLAIN    /* no TLS at all */
};

/* One --topic NAME:PARTITIONS. */
struct kbm_topic {
    char name[256]; /* topic name */
    int partitions; /* >= 1 */
};

/* Parsed command line. */
struct kbm_opts {
    const char *certs_dir;                   /* --certs */
    const char *cert_name;                   /* --cert (DIR/NAME.pem + DIR/NAME.key) */
    int brokers;                             /* --brokers */
    enum kbm_mode mode;                      /* --mode */
    struct kbm_topic topics[KBM_MAX_TOPICS]; /* --topic, in order */
    int n_topics;                            /* entries in topics */
    int bootstrap_port;                      /* --bootstrap-port, 0 if none */
    const char *advertise_host;              /* --advertise-host (msk mode only), NULL if none */
};

struct kbm;

/* One listening endpoint that forwards each accepted connection to one plaintext mock address. */
struct kbm_front {
    struct kbm *kbm;                /* owner */
    int broker_id;                  /* mock broker behind it (the bootstrap front uses 1) */
    bool is_bootstrap;              /* the --bootstrap-port front */
    bool tls;                       /* false only for the bootstrap front in plain mode */
    struct sockaddr_in listen_addr; /* where clients connect; port filled in once bound */
    struct sockaddr_in target;      /* the mock's plaintext address */
    struct evconnlistener *lev;     /* NULL while the broker is down */
};

/* One accepted client connection and its plaintext leg to the mock. */
struct kbm_conn {
    struct kbm *kbm;              /* owner */
    struct kbm_front *front;      /* the endpoint it arrived on */
    unsigned long id;             /* for the log */
    char peer[64];                /* client ip:port */
    struct bufferevent *client;   /* TLS server side (plain for a plain front); NULL once gone */
    struct bufferevent *upstream; /* to the mock; NULL until the handshake is done or once gone */
    bool handshake_done;          /* counted in tls_handshakes_ok */
    bool draining;                /* one side is gone; close once the other has flushed */
    struct kbm_conn *prev;        /* kbm->conns list */
    struct kbm_conn *next;
};

/* Everything kbmock owns. */
struct kbm {
    struct kbm_opts opts;                           /* command line */
    struct event_base *base;                        /* main loop (the mock runs its own thread) */
    SSL_CTX *ssl_ctx;                               /* server context; NULL in plain mode */
    rd_kafka_t *rk;                                 /* handle the mock cluster hangs off */
    rd_kafka_mock_cluster_t *mock;                  /* librdkafka's mock brokers */
    struct sockaddr_in advertised[KBM_MAX_BROKERS]; /* what the mock advertises, by id-1 */
    struct kbm_front fronts[KBM_MAX_BROKERS + 1];   /* per broker, then maybe the bootstrap one */
    int n_fronts;                                   /* used entries in fronts */
    struct kbm_conn *conns;                         /* live connections */
    unsigned long next_conn_id;                     /* for the log */
    struct event *ev_stdin;                         /* command reader */
    struct evbuffer *stdin_buf;                     /* partial command line */
    struct event *ev_sigterm;                       /* SIGTERM: clean exit */
    struct event *ev_sigint;                        /* SIGINT: clean exit */
    uint64_t hs_ok;                                 /* stats: TLS handshakes completed */
    uint64_t hs_resumed;                            /* stats: ... of them resumed sessions */
    uint64_t hs_failed;                             /* stats: TLS handshakes that failed */
    uint64_t bytes_to_mock; /* stats: bytes forwarded from fronts' clients to the mock */
};

static void kbm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
kbm_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("kbmock: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char *
kbm_addr_str(const struct sockaddr_in *sin, char *out, size_t outlen)
{
    char ip[INET_ADDRSTRLEN];

    if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL) {
        snprintf(ip, sizeof(ip), "?");
    }
    snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
    return out;
}

static void
kbm_loopback(struct sockaddr_in *sin, uint16_t port)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons(port);
}

static void
kbm_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static long
kbm_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- connections ------------------------------------------------------------------------------ */

/* Frees both legs of c and unlinks it. */
static void
conn_free(struct kbm_conn *c)
{
    if (c->client != NULL) {
        bufferevent_free(c->client);
    }
    if (c->upstream != NULL) {
        bufferevent_free(c->upstream);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->kbm->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}

static struct bufferevent *
conn_other(struct kbm_conn *c, struct bufferevent *bev)
{
    return bev == c->client ? c->upstream : c->client;
}

/* Moves what `from` has read into the other leg's output, pausing `from` if that backs up. */
static void
conn_pump(struct kbm_conn *c, struct bufferevent *from)
{
    struct bufferevent *to = conn_other(c, from);
    struct evbuffer *in = bufferevent_get_input(from);
    size_t len = evbuffer_get_length(in);

    if (to == NULL || len == 0) {
        return;
    }
    if (from == c->client) {
        c->kbm->bytes_to_mock += len;
    }
    evbuffer_add_buffer(bufferevent_get_output(to), in);
    if (evbuffer_get_length(bufferevent_get_output(to)) >= KBM_HIGH_WATER) {
        /* the write callback fires once `to` is down to half, and resumes `from` */
        bufferevent_setwatermark(to, EV_WRITE, KBM_HIGH_WATER / 2, 0);
        bufferevent_disable(from, EV_READ);
    }
}

static void
conn_on_read(struct bufferevent *bev, void *arg)
{
    struct kbm_conn *c = arg;

    if (!c->draining) {
        conn_pump(c, bev);
    }
}

static void
conn_on_write(struct bufferevent *bev, void *arg)
{
    struct kbm_conn *c = arg;
    struct bufferevent *other = conn_other(c, bev);

    if (c->draining) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            conn_free(c);
        }
        return;
    }
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (other != NULL) {
        bufferevent_enable(other, EV_READ);
    }
}

/* Drops the leg `dead`; closes c once the other leg has written what it still holds. */
static void
conn_drop_leg(struct kbm_conn *c, struct bufferevent *dead)
{
    struct bufferevent *other = conn_other(c, dead);

    if (dead == c->client) {
        c->client = NULL;
    } else {
        c->upstream = NULL;
    }
    bufferevent_free(dead);
    if (other == NULL || evbuffer_get_length(bufferevent_get_output(other)) == 0) {
        conn_free(c);
        return;
    }
    c->draining = true;
    bufferevent_disable(other, EV_READ);
    bufferevent_setwatermark(other, EV_WRITE, 0, 0);
}

static void
kbm_ssl_error(struct bufferevent *bev, char *out, size_t outlen)
{
    unsigned long e;
    size_t used = 0;

    out[0] = '\0';
    while ((e = bufferevent_get_openssl_error(bev)) != 0) {
        char one[256];

        if (ERR_GET_LIB(e) == 0) {
            continue; /* libevent also queues SSL_get_error() codes here */
        }
        ERR_error_string_n(e, one, sizeof(one));
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "; " : "", one);
        if (used >= outlen) {
            break;
        }
    }
    if (out[0] == '\0') {
        int err = EVUTIL_SOCKET_ERROR();

        snprintf(out, outlen, "%s", err ? evutil_socket_error_to_string(err) : "peer closed");
    }
}

static void conn_on_upstream_event(struct bufferevent *bev, short what, void *arg);

/* The client leg is usable: dial the mock and start forwarding. false if c was freed. */
static bool
conn_start_upstream(struct kbm_conn *c)
{
    struct bufferevent *up;
    char target[64];

    up = bufferevent_socket_new(c->kbm->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (up == NULL) {
        kbm_log("conn #%lu: out of memory", c->id);
        conn_free(c);
        return false;
    }
    c->upstream = up;
    bufferevent_setcb(up, conn_on_read, conn_on_write, conn_on_upstream_event, c);
    if (bufferevent_socket_connect(up, (struct sockaddr *)&c->front->target,
                                   sizeof(c->front->target)) != 0) {
        kbm_log("conn #%lu: connect to mock %s failed", c->id,
                kbm_addr_str(&c->front->target, target, sizeof(target)));
        conn_free(c);
        return false;
    }
    bufferevent_enable(up, EV_READ | EV_WRITE);
    conn_pump(c, c->client);
    return true;
}

static void
conn_on_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct kbm_conn *c = arg;
    char where[64];
    char why[512];

    kbm_addr_str(&c->front->listen_addr, where, sizeof(where));
    if (what & BEV_EVENT_CONNECTED) {
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

        c->handshake_done = true;
        c->kbm->hs_ok++;
        c->kbm->hs_resumed += SSL_session_reused(ssl) ? 1 : 0;
        kbm_log("conn #%lu %s -> %s (broker %d): TLS handshake ok (%s, sni=%s%s)", c->id, c->peer,
                where, c->front->broker_id, SSL_get_version(ssl), sni ? sni : "-",
                SSL_session_reused(ssl) ? ", resumed" : "");
        conn_start_upstream(c);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        return;
    }
    if (!c->handshake_done && c->front->tls) {
        kbm_ssl_error(bev, why, sizeof(why));
        c->kbm->hs_failed++;
        kbm_log("conn #%lu %s -> %s (broker %d): TLS handshake failed: %s", c->id, c->peer, where,
                c->front->broker_id, why);
        conn_free(c);
        return;
    }
    conn_drop_leg(c, bev);
}

static void
conn_on_upstream_event(struct bufferevent *bev, short what, void *arg)
{
    struct kbm_conn *c = arg;
    char target[64];

    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;

        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();

        kbm_log("conn #%lu: mock %s: %s", c->id,
                kbm_addr_str(&c->front->target, target, sizeof(target)),
                evutil_socket_error_to_string(err));
    }
    conn_drop_leg(c, bev);
}

static void
front_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                void *arg)
{
    struct kbm_front *f = arg;
    struct kbm *kbm = f->kbm;
    struct kbm_conn *c;
    char where[64];
    int one = 1;

    (void)lev;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->kbm = kbm;
    c->front = f;
    c->id = ++kbm->next_conn_id;
    if (sa->sa_family == AF_INET && (size_t)salen >= sizeof(struct sockaddr_in)) {
        kbm_addr_str((const struct sockaddr_in *)sa, c->peer, sizeof(c->peer));
    } else {
        snprintf(c->peer, sizeof(c->peer), "?");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (f->tls) {
        SSL *ssl = SSL_new(kbm->ssl_ctx);

        if (ssl == NULL) {
            free(c);
            evutil_closesocket(fd);
            return;
        }
        /* on failure libevent frees ssl but leaves fd open */
        c->client = bufferevent_openssl_socket_new(kbm->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->client != NULL) {
            bufferevent_openssl_set_allow_dirty_shutdown(c->client, 1);
        }
    } else {
        c->client =
            bufferevent_socket_new(kbm->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (c->client == NULL) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->next = kbm->conns;
    if (kbm->conns != NULL) {
        kbm->conns->prev = c;
    }
    kbm->conns = c;
    bufferevent_setcb(c->client, conn_on_read, conn_on_write, conn_on_client_event, c);
    bufferevent_enable(c->client, EV_READ | EV_WRITE);
    if (!f->tls) {
        kbm_log("conn #%lu %s -> %s (broker %d): plaintext", c->id, c->peer,
                kbm_addr_str(&f->listen_addr, where, sizeof(where)), f->broker_id);
        c->handshake_done = true;
        conn_start_upstream(c);
    }
}

/* --- fronts ----------------------------------------------------------------------------------- */

/*
 * Binds f->listen_addr (port 0: any) and starts accepting. Retries EADDRINUSE for up to
 * retry_ms, because in msk mode the mock's poll() may still hold the old socket on that port.
 */
static bool
front_open(struct kbm_front *f, long retry_ms)
{
    long deadline = kbm_now_ms() + retry_ms;
    char where[64];
    int retries = 0;
    int fd = -1;
    int one = 1;

    for (;; retries++) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            kbm_log("socket: %s", strerror(errno));
            return false;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&f->listen_addr, sizeof(f->listen_addr)) == 0) {
            break;
        }
        if (errno != EADDRINUSE || kbm_now_ms() >= deadline) {
            kbm_log("bind %s: %s", kbm_addr_str(&f->listen_addr, where, sizeof(where)),
                    strerror(errno));
            close(fd);
            return false;
        }
        close(fd);
        kbm_sleep_ms(20);
    }
    if (retries > 0) {
        kbm_log("%s: bound after %d retries", kbm_addr_str(&f->listen_addr, where, sizeof(where)),
                retries);
    }
    if (f->listen_addr.sin_port == 0) {
        socklen_t len = sizeof(f->listen_addr);

        if (getsockname(fd, (struct sockaddr *)&f->listen_addr, &len) == -1) {
            kbm_log("getsockname: %s", strerror(errno));
            close(fd);
            return false;
        }
    }
    f->lev = evconnlistener_new(f->kbm->base, front_on_accept, f, LEV_OPT_CLOSE_ON_FREE, 128, fd);
    if (f->lev == NULL) {
        kbm_log("evconnlistener_new failed");
        close(fd);
        return false;
    }
    return true;
}

/* Stops accepting (the port then refuses connections) and drops every connection on f. */
/* Cuts every open connection of f (of every front when f is NULL); returns how many. */
static int
front_drop(struct kbm *kbm, const struct kbm_front *f)
{
    struct kbm_conn *c = kbm->conns;
    int n = 0;

    while (c != NULL) {
        struct kbm_conn *next = c->next;

        if (f == NULL || c->front == f) {
            conn_free(c);
            n++;
        }
        c = next;
    }
    return n;
}

static void
front_close(struct kbm_front *f)
{
    if (f->lev != NULL) {
        evconnlistener_free(f->lev);
        f->lev = NULL;
    }
    front_drop(f->kbm, f);
}

/* --- mock cluster ----------------------------------------------------------------------------- */

/* The fd of this process's listening socket bound to 127.0.0.1:port, or -1. */
static int
find_listen_fd(uint16_t port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int found = -1;

    if (d == NULL) {
        kbm_log("opendir /proc/self/fd: %s", strerror(errno));
        return -1;
    }
    while (found == -1 && (de = readdir(d)) != NULL) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int acc = 0;
        socklen_t acclen = sizeof(acc);
        char *end;
        long fd = strtol(de->d_name, &end, 10);

        if (*end != '\0' || end == de->d_name || fd == dirfd(d) || fd > INT_MAX) {
            continue;
        }
        if (getsockname((int)fd, (struct sockaddr *)&sin, &len) == 0 && sin.sin_family == AF_INET &&
            ntohs(sin.sin_port) == port &&
            getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &acclen) == 0 && acc) {
            found = (int)fd;
        }
    }
    closedir(d);
    return found;
}

/*
 * msk mode: make the mock accept broker `id` on a fresh port Q instead of its advertised port P.
 * A new listening socket on 127.0.0.1:0 is dup'ed onto the fd number the mock polls, so the
 * mock's thread accepts on Q from its next poll() on. Sets *target to 127.0.0.1:Q. P becomes
 * free once the mock's current poll() returns (see kbm_wake_mock()).
 */
static bool
kbm_steal_listener(struct kbm *kbm, int id, struct sockaddr_in *target)
{
    uint16_t port = ntohs(kbm->advertised[id - 1].sin_port);
    int mock_fd = find_listen_fd(port);
    socklen_t len = sizeof(*target);
    int fd;
    int one = 1;

    if (mock_fd == -1) {
        kbm_log("broker %d: cannot find the mock's listening socket on port %u", id, port);
        return false;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        kbm_log("socket: %s", strerror(errno));
        return false;
    }
    kbm_loopback(target, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)target, sizeof(*target)) == -1 || listen(fd, 128) == -1 ||
        getsockname(fd, (struct sockaddr *)target, &len) == -1) {
        kbm_log("broker %d: plaintext listener: %s", id, strerror(errno));
        close(fd);
        return false;
    }
    if (dup3(fd, mock_fd, O_CLOEXEC) == -1) {
        kbm_log("broker %d: dup3: %s", id, strerror(errno));
        close(fd);
        return false;
    }
    close(fd);
    return true;
}

/*
 * Round-trips one op through the mock thread, so its poll() has returned at least once.
 * One op only: back-to-back ops can lose their wake-up in librdkafka 2.0.2 (the mock thread
 * drains the wake-up pipe after serving ops), which costs a full 1 s poll timeout.
 */
static void
kbm_wake_mock(struct kbm *kbm)
{
    rd_kafka_mock_broker_set_rtt(kbm->mock, 1, 0);
}

/* Parses the mock's "127.0.0.1:P1,127.0.0.1:P2,..." (brokers 1..N in order). */
static bool
kbm_parse_bootstraps(struct kbm *kbm, const char *s)
{
    int i;

    for (i = 0; i < kbm->opts.brokers; i++) {
        const char *colon = strchr(s, ':');
        char host[64];
        long port;
        char *end;

        if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) {
            return false;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (port <= 0 || port > 65535 || (*end != ',' && *end != '\0')) {
            return false;
        }
        kbm_loopback(&kbm->advertised[i], (uint16_t)port);
        if (inet_pton(AF_INET, host, &kbm->advertised[i].sin_addr) != 1) {
            return false;
        }
        if (*end == '\0' && i + 1 < kbm->opts.brokers) {
            return false;
        }
        s = end + 1;
    }
    return true;
}

static bool
kbm_start_mock(struct kbm *kbm)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    const char *bootstraps;
    int i;

    /* this handle never connects anywhere; keep its "no bootstrap.servers" warning quiet */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        kbm_log("rdkafka conf: %s", errstr);
    }
    kbm->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (kbm->rk == NULL) {
        kbm_log("rd_kafka_new: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    kbm->mock = rd_kafka_mock_cluster_new(kbm->rk, kbm->opts.brokers);
    if (kbm->mock == NULL) {
        kbm_log("rd_kafka_mock_cluster_new failed");
        return false;
    }
    bootstraps = rd_kafka_mock_cluster_bootstraps(kbm->mock);
    if (!kbm_parse_bootstraps(kbm, bootstraps)) {
        kbm_log("unexpected mock bootstraps '%s'", bootstraps);
        return false;
    }
    for (i = 0; i < kbm->opts.n_topics; i++) {
        const struct kbm_topic *t = &kbm->opts.topics[i];
        int rf = kbm->opts.brokers < 3 ? kbm->opts.brokers : 3;
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(kbm->mock, t->name, t->partitions, rf);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kbm_log("topic %s: %s", t->name, rd_kafka_err2str(err));
            return false;
        }
        kbm_sleep_ms(5); /* let the mock thread drain its wake-up pipe (see kbm_wake_mock()) */
    }
    return true;
}

/* --advertise-host: the mock advertises HOST:T, T being broker N's TLS front (already bound). */
static bool
kbm_advertise(struct kbm *kbm)
{
#if KBM_HAVE_SET_HOST_PORT
    int i;

    for (i = 0; i < kbm->opts.brokers; i++) {
        rd_kafka_mock_broker_set_host_port(kbm->mock, i + 1, kbm->opts.advertise_host,
                                           (int)ntohs(kbm->fronts[i].listen_addr.sin_port));
    }
    return true;
#else
    (void)kbm;
    kbm_log("--advertise-host needs librdkafka >= 2.12 (built against 0x%08x)",
            (unsigned)RD_KAFKA_VERSION);
    return false;
#endif
}

/* Sets up the per-broker fronts (not in plain mode) and the bootstrap front, if asked for. */
static bool
kbm_start_fronts(struct kbm *kbm)
{
    enum kbm_mode mode = kbm->opts.mode;
    int i;

    if (mode != KBM_MODE_PLAIN) {
        for (i = 1; i <= kbm->opts.brokers; i++) {
            struct kbm_front *f = &kbm->fronts[kbm->n_fronts++];

            f->kbm = kbm;
            f->broker_id = i;
            f->tls = true;
            if (mode == KBM_MODE_MSK && kbm->opts.advertise_host != NULL) {
                f->target = kbm->advertised[i - 1]; /* the mock keeps its own port */
                kbm_loopback(&f->listen_addr, 0);
            } else if (mode == KBM_MODE_MSK) {
                if (!kbm_steal_listener(kbm, i, &f->target)) {
                    return false;
                }
                f->listen_addr = kbm->advertised[i - 1];
            } else {
                f->target = kbm->advertised[i - 1];
                kbm_loopback(&f->listen_addr, 0);
            }
        }
        if (mode == KBM_MODE_MSK && kbm->opts.advertise_host == NULL) {
            kbm_wake_mock(kbm);
        }
        for (i = 0; i < kbm->n_fronts; i++) {
            if (!front_open(&kbm->fronts[i], mode == KBM_MODE_MSK ? KBM_REBIND_MS : 0)) {
                return false;
            }
        }
        if (kbm->opts.advertise_host != NULL && !kbm_advertise(kbm)) {
            return false;
        }
    }
    if (kbm->opts.bootstrap_port != 0) {
        struct kbm_front *f = &kbm->fronts[kbm->n_fronts++];

        f->kbm = kbm;
        f->broker_id = 1;
        f->is_bootstrap = true;
        f->tls = mode != KBM_MODE_PLAIN;
        f->target = mode == KBM_MODE_MSK ? kbm->fronts[0].target : kbm->advertised[0];
        kbm_loopback(&f->listen_addr, (uint16_t)kbm->opts.bootstrap_port);
        if (!front_open(f, 0)) {
            return false;
        }
    }
    return true;
}

static SSL_CTX *
kbm_ssl_ctx_new(const struct kbm_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char pem[PATH_MAX];
    char key[PATH_MAX];

    if (ctx == NULL) {
        return NULL;
    }
    snprintf(pem, sizeof(pem), "%s/%s.pem", o->certs_dir, o->cert_name);
    snprintf(key, sizeof(key), "%s/%s.key", o->certs_dir, o->cert_name);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, pem) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char why[256];

        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        kbm_log("certificate %s / %s: %s", pem, key, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* --- commands --------------------------------------------------------------------------------- */

static void
kbm_broker_down(struct kbm *kbm, int id)
{
    int i;

    /*
     * msk mode cannot use rd_kafka_mock_broker_set_down(): librdkafka 2.0.2 re-binds the
     * advertised port at once, which kbmock holds, and aborts. Refusing connections at the
     * advertised address and dropping the open ones is what clients see either way.
     */
    if (kbm->opts.mode != KBM_MODE_MSK) {
        rd_kafka_mock_broker_set_down(kbm->mock, id);
    }
    for (i = 0; i < kbm->n_fronts; i++) {
        if (kbm->fronts[i].broker_id == id) {
            front_close(&kbm->fronts[i]);
        }
    }
}

static bool
kbm_broker_up(struct kbm *kbm, int id)
{
    bool ok = true;
    int i;

    if (kbm->opts.mode != KBM_MODE_MSK) {
        rd_kafka_mock_broker_set_up(kbm->mock, id);
    }
    for (i = 0; i < kbm->n_fronts; i++) {
        if (kbm->fronts[i].broker_id == id && kbm->fronts[i].lev == NULL) {
            ok = front_open(&kbm->fronts[i], KBM_UP_REBIND_MS) && ok;
        }
    }
    return ok;
}

static void
kbm_command(struct kbm *kbm, char *line)
{
    char *argv[5];
    int argc = 0;
    char *save = NULL;
    char *tok;
    long id = 0;

    for (tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 5;
         tok = strtok_r(NULL, " \t\r", &save)) {
        argv[argc++] = tok;
    }
    if (argc == 0) {
        return;
    }
    if ((strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0) && argc == 2) {
        id = strtol(argv[1], NULL, 10);
        if (id < 1 || id > kbm->opts.brokers) {
            printf("ERR no broker %s\n", argv[1]);
            return;
        }
        if (argv[0][0] == 'd') {
            kbm_broker_down(kbm, (int)id);
            printf("OK down %ld\n", id);
        } else if (kbm_broker_up(kbm, (int)id)) {
            printf("OK up %ld\n", id);
        } else {
            printf("ERR up %ld: cannot listen again\n", id);
        }
    } else if (strcmp(argv[0], "leader") == 0 && argc == 4) {
        rd_kafka_resp_err_t err = rd_kafka_mock_partition_set_leader(
            kbm->mock, argv[1], (int32_t)strtol(argv[2], NULL, 10),
            (int32_t)strtol(argv[3], NULL, 10));

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("OK leader %s %s %s\n", argv[1], argv[2], argv[3]);
        } else {
            printf("ERR leader: %s\n", rd_kafka_err2str(err));
        }
    } else if (strcmp(argv[0], "drop") == 0 && argc == 1) {
        printf("OK drop %d\n", front_drop(kbm, NULL)); /* listeners stay up */
    } else if (strcmp(argv[0], "stats") == 0 && argc == 1) {
        printf("STATS tls_handshakes_ok=%llu tls_handshakes_resumed=%llu "
               "tls_handshakes_failed=%llu bytes_to_mock=%llu\n",
               (unsigned long long)kbm->hs_ok, (unsigned long long)kbm->hs_resumed,
               (unsigned long long)kbm->hs_failed, (unsigned long long)kbm->bytes_to_mock);
    } else if (strcmp(argv[0], "quit") == 0 && argc == 1) {
        event_base_loopbreak(kbm->base);
    } else {
        printf("ERR unknown command '%s'\n", argv[0]);
    }
}

static void
kbm_on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct kbm *kbm = arg;
    char *line;
    int n;

    (void)what;
    n = evbuffer_read(kbm->stdin_buf, fd, 4096);
    while ((line = evbuffer_readln(kbm->stdin_buf, NULL, EVBUFFER_EOL_LF)) != NULL) {
        kbm_command(kbm, line);
        free(line);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        kbm_log("stdin closed, exiting");
        event_base_loopbreak(kbm->base);
    }
}

static void
kbm_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct kbm *kbm = arg;

    (void)what;
    kbm_log("signal %d, exiting", (int)sig);
    event_base_loopbreak(kbm->base);
}

/* --- main ------------------------------------------------------------------------------------- */

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: kbmock --certs DIR [--brokers N (default 3)] [--cert NAME (default server)]\n"
            "              [--mode msk|front|plain (default msk)] [--topic NAME:PARTITIONS]...\n"
            "              [--bootstrap-port PORT] [--advertise-host HOST (msk mode, librdkafka\n"
            "              >= 2.12: brokers advertised as HOST:T, T = their TLS port)]\n"
            "stdout: BROKER <id> advertised=H:P tls=H:T|-, BOOTSTRAP <list>, READY\n"
            "stdin:  down ID | up ID | drop | leader TOPIC PARTITION ID | stats | quit\n"
            "        (one reply line each: OK ..., ERR ... or STATS ...)\n");
}

static bool
parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static bool
parse_opts(int argc, char **argv, struct kbm_opts *o)
{
    int i;
    long v;

    o->cert_name = "server";
    o->brokers = 3;
    o->mode = KBM_MODE_MSK;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (val == NULL) {
            fprintf(stderr, "kbmock: %s needs a value\n", a);
            return false;
        }
        i++;
        if (strcmp(a, "--certs") == 0) {
            o->certs_dir = val;
        } else if (strcmp(a, "--cert") == 0) {
            o->cert_name = val;
        } else if (strcmp(a, "--brokers") == 0) {
            if (!parse_int(val, 1, KBM_MAX_BROKERS, &v)) {
                fprintf(stderr, "kbmock: --brokers: 1..%d\n", KBM_MAX_BROKERS);
                return false;
            }
            o->brokers = (int)v;
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(val, "msk") == 0) {
                o->mode = KBM_MODE_MSK;
            } else if (strcmp(val, "front") == 0) {
                o->mode = KBM_MODE_FRONT;
            } else if (strcmp(val, "plain") == 0) {
                o->mode = KBM_MODE_PLAIN;
            } else {
                fprintf(stderr, "kbmock: --mode: msk, front or plain\n");
                return false;
            }
        } else if (strcmp(a, "--topic") == 0) {
            const char *colon = strrchr(val, ':');
            struct kbm_topic *t = &o->topics[o->n_topics];

            if (o->n_topics == KBM_MAX_TOPICS || colon == NULL || colon == val ||
                (size_t)(colon - val) >= sizeof(t->name) || !parse_int(colon + 1, 1, 10000, &v)) {
                fprintf(stderr, "kbmock: --topic NAME:PARTITIONS (at most %d)\n", KBM_MAX_TOPICS);
                return false;
            }
            memcpy(t->name, val, (size_t)(colon - val));
            t->name[colon - val] = '\0';
            t->partitions = (int)v;
            o->n_topics++;
        } else if (strcmp(a, "--advertise-host") == 0) {
            if (*val == '\0' || strlen(val) > 255) {
                fprintf(stderr, "kbmock: --advertise-host: a host name\n");
                return false;
            }
            o->advertise_host = val;
        } else if (strcmp(a, "--bootstrap-port") == 0) {
            if (!parse_int(val, 1, 65535, &v)) {
                fprintf(stderr, "kbmock: --bootstrap-port: 1..65535\n");
                return false;
            }
            o->bootstrap_port = (int)v;
        } else {
            fprintf(stderr, "kbmock: unknown option %s\n", a);
            return false;
        }
    }
    if (o->certs_dir == NULL) {
        fprintf(stderr, "kbmock: --certs DIR is required\n");
        return false;
    }
    if (o->advertise_host != NULL && o->mode != KBM_MODE_MSK) {
        fprintf(stderr, "kbmock: --advertise-host is for msk mode only\n");
        return false;
    }
    if (o->advertise_host != NULL && !KBM_HAVE_SET_HOST_PORT) {
        fprintf(stderr,
                "kbmock: --advertise-host needs librdkafka >= 2.12 (built against 0x%08x)\n",
                (unsigned)RD_KAFKA_VERSION);
        return false;
    }
    return true;
}

static void
kbm_print_ready(struct kbm *kbm)
{
    char adv[300];
    char tls[64];
    int i;

    for (i = 0; i < kbm->opts.brokers; i++) {
        kbm_addr_str(&kbm->advertised[i], adv, sizeof(adv));
        if (kbm->opts.advertise_host != NULL) {
            snprintf(adv, sizeof(adv), "%s:%u", kbm->opts.advertise_host,
                     (unsigned)ntohs(kbm->fronts[i].listen_addr.sin_port));
        }
        if (kbm->opts.mode == KBM_MODE_PLAIN) {
            snprintf(tls, sizeof(tls), "-");
        } else {
            kbm_addr_str(&kbm->fronts[i].listen_addr, tls, sizeof(tls));
        }
        printf("BROKER %d advertised=%s tls=%s\n", i + 1, adv, tls);
    }
    printf("BOOTSTRAP ");
    for (i = 0; i < kbm->opts.brokers; i++) {
        const struct sockaddr_in *sin =
            kbm->opts.mode == KBM_MODE_PLAIN ? &kbm->advertised[i] : &kbm->fronts[i].listen_addr;

        printf("%s%s", i ? "," : "", kbm_addr_str(sin, adv, sizeof(adv)));
    }
    printf("\nREADY\n");
}

/* epoll refuses regular files and /dev/null, and there would be nothing to wait for anyway. */
static bool
kbm_stdin_pollable(void)
{
    struct stat st;

    if (fstat(STDIN_FILENO, &st) == -1) {
        return false;
    }
    return !(S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(STDIN_FILENO)));
}

static void
kbm_free(struct kbm *kbm)
{
    int i;

    for (i = 0; i < kbm->n_fronts; i++) {
        front_close(&kbm->fronts[i]);
    }
    while (kbm->conns != NULL) {
        conn_free(kbm->conns);
    }
    if (kbm->ev_stdin != NULL) {
        event_free(kbm->ev_stdin);
    }
    if (kbm->ev_sigterm != NULL) {
        event_free(kbm->ev_sigterm);
    }
    if (kbm->ev_sigint != NULL) {
        event_free(kbm->ev_sigint);
    }
    if (kbm->stdin_buf != NULL) {
        evbuffer_free(kbm->stdin_buf);
    }
    if (kbm->mock != NULL) {
        rd_kafka_mock_cluster_destroy(kbm->mock);
    }
    if (kbm->rk != NULL) {
        rd_kafka_destroy(kbm->rk);
    }
    if (kbm->ssl_ctx != NULL) {
        SSL_CTX_free(kbm->ssl_ctx);
    }
    if (kbm->base != NULL) {
        event_base_free(kbm->base);
    }
}

int
main(int argc, char **argv)
{
    static struct kbm kbm; /* large; zeroed */
    int rc = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (!parse_opts(argc, argv, &kbm.opts)) {
        usage(stderr);
        return 2;
    }
    kbm.base = event_base_new();
    if (kbm.base == NULL) {
        kbm_log("event_base_new failed");
        goto fail;
    }
    if (kbm.opts.mode != KBM_MODE_PLAIN) {
        kbm.ssl_ctx = kbm_ssl_ctx_new(&kbm.opts);
        if (kbm.ssl_ctx == NULL) {
            goto fail;
        }
    }
    if (!kbm_start_mock(&kbm) || !kbm_start_fronts(&kbm)) {
        goto fail;
    }
    kbm.stdin_buf = evbuffer_new();
    kbm.ev_stdin = event_new(kbm.base, STDIN_FILENO, EV_READ | EV_PERSIST, kbm_on_stdin, &kbm);
    kbm.ev_sigterm = evsignal_new(kbm.base, SIGTERM, kbm_on_signal, &kbm);
    kbm.ev_sigint = evsignal_new(kbm.base, SIGINT, kbm_on_signal, &kbm);
    if (kbm.stdin_buf == NULL || kbm.ev_stdin == NULL || kbm.ev_sigterm == NULL ||
        kbm.ev_sigint == NULL || event_add(kbm.ev_sigterm, NULL) != 0 ||
        event_add(kbm.ev_sigint, NULL) != 0) {
        kbm_log("cannot set up stdin/signal events");
        goto fail;
    }
    kbm_print_ready(&kbm);
    if (!kbm_stdin_pollable() || event_add(kbm.ev_stdin, NULL) != 0) {
        kbm_log("stdin is a file or /dev/null, not a pipe or terminal: treated as EOF, exiting");
    } else {
        event_base_dispatch(kbm.base);
    }
    rc = 0;
fail:
    kbm_free(&kbm);
    libevent_global_shutdown();
    return rc;
}
