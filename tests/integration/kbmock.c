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
 *
 * SASL (--sasl-mechanisms, issue 14): librdkafka's mock has none, so the fronts enforce it the
 * way Kafka's SaslServerAuthenticator does. Such a front no longer pumps bytes blindly: it frames
 * each request, answers SaslHandshake/SaslAuthenticate (and raw tokens after a v0 handshake)
 * itself with kbmock_sasl.c, forwards the rest, and frames the mock's responses to keep a FIFO
 * of what is outstanding (answers made here wait for it, so responses stay in order) and to add
 * the SASL APIs to ApiVersions. Without SASL options nothing of this runs.
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

#include "kbmock_sasl.h"
#include "kp_buf.h"

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
#define KBM_INFLIGHT_MAX 1024       /* framed fronts: requests awaiting the mock's response */
#define KBM_FRAME_MAX (100 * 1024 * 1024) /* framed fronts: a bigger size prefix closes */

/* Kafka api keys and error codes kbmock's SASL layer handles itself. */
#define KBM_API_PRODUCE 0
#define KBM_API_SASL_HANDSHAKE 17
#define KBM_API_API_VERSIONS 18
#define KBM_API_SASL_AUTHENTICATE 36
#define KBM_ERR_UNSUPPORTED_SASL_MECHANISM 33
#define KBM_ERR_ILLEGAL_SASL_STATE 34
#define KBM_ERR_SASL_AUTHENTICATION_FAILED 58

enum kbm_mode {
    KBM_MODE_MSK = 0, /* TLS at the advertised address itself */
    KBM_MODE_FRONT,   /* TLS on a separate port per broker */
    KBM_MODE_PLAIN    /* no TLS at all */
};

/*
 * How a front treats the Kafka stream. RAW is what kbmock always did (bytes pumped, nothing
 * parsed) and stays the default; the other two frame every request and response.
 */
enum kbm_front_sasl {
    KBM_FRONT_RAW = 0, /* no SASL options given: byte pump */
    KBM_FRONT_NOSASL,  /* --sasl-off ID: a Kafka listener without SASL (Sasl* -> error 34) */
    KBM_FRONT_SASL     /* SASL enforced as SaslServerAuthenticator does */
};

/* Where a connection on a SASL front stands. */
enum kbm_auth_state {
    KBM_AUTH_NONE = 0, /* nothing yet: ApiVersions and SaslHandshake allowed */
    KBM_AUTH_V1,       /* SaslHandshake v1 done: SaslAuthenticate frames expected */
    KBM_AUTH_RAW,      /* SaslHandshake v0 done: raw length-prefixed tokens expected */
    KBM_AUTH_DONE,     /* authenticated: requests go to the mock until the session ends */
    KBM_AUTH_REAUTH    /* authenticated, re-authentication handshake done (KIP-368) */
};

/* One request forwarded to the mock and not answered yet (framed fronts). */
struct kbm_req {
    int16_t api_key;     /* request api key */
    int16_t api_version; /* request version: the response's layout */
    int32_t corr;        /* correlation id, for the log */
    bool drop;           /* Produce acks=0: Kafka sends no response, so the mock's is dropped */
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
    bool sasl_on;                            /* --sasl-mechanisms given: framed fronts */
    struct kbm_sasl_conf sasl;               /* --sasl-* */
    bool sasl_off[KBM_MAX_BROKERS + 1];      /* --sasl-off ID: broker ID's front, 0: bootstrap */
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
    enum kbm_front_sasl sasl;       /* how the stream is treated */
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
    enum kbm_auth_state auth;     /* SASL fronts: authentication state */
    struct kbm_sasl_exchange sx;  /* SASL fronts: the exchange under way */
    enum kbm_sasl_mech mech;      /* mechanism of the current session (re-auth must keep it) */
    char principal[KBM_SASL_NAME_MAX]; /* user of the current session (re-auth must keep it) */
    long session_end_ms;               /* kbm_now_ms() at which the session expires; 0: never */
    struct kbm_req inflight[KBM_INFLIGHT_MAX]; /* framed fronts: forwarded, unanswered, FIFO */
    int inflight_head;                         /* index of the oldest entry */
    int inflight_n;                            /* entries in use */
    struct kbm_conn *prev;                     /* kbm->conns list */
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
    uint64_t sasl_auths;    /* stats: successful first authentications (any handshake version) */
    uint64_t sasl_v0_auths; /* stats: ... of them with raw tokens after SaslHandshake v0 */
    uint64_t sasl_reauths;  /* stats: successful KIP-368 re-authentications */
    uint64_t sasl_failures; /* stats: refused authentications (credentials, mechanism, state) */
    uint64_t sasl_expired_closes; /* stats: connections closed for a request after session end */
    uint64_t sasl_unauth_closes;  /* stats: connections closed for a request before auth */
    uint64_t sasl_nonce_quirks;   /* stats: SCRAM exchanges that repeated the client nonce */
    uint64_t iam_auths;           /* stats: IAM (AWS_MSK_IAM/OAUTHBEARER) successes, re-auth too */
    uint64_t iam_failures;        /* stats: IAM refusals */
    char iam_keys[256][128];      /* distinct access key ids that authenticated (test keys) */
    int n_iam_keys;               /* entries in iam_keys; stats: iam_keys_seen */
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
    kbm_sasl_exchange_clear(&c->sx);
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

static bool conn_client_frames(struct kbm_conn *c);
static bool conn_upstream_frames(struct kbm_conn *c);

static void
conn_on_read(struct bufferevent *bev, void *arg)
{
    struct kbm_conn *c = arg;

    if (c->draining) {
        return;
    }
    if (c->front->sasl == KBM_FRONT_RAW) {
        conn_pump(c, bev);
    } else if (bev == c->client) {
        (void)conn_client_frames(c);
    } else {
        (void)conn_upstream_frames(c);
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
        /* framed fronts may hold whole frames that were read before the pause */
        if (c->front->sasl != KBM_FRONT_RAW && bev == c->upstream) {
            (void)conn_client_frames(c);
        } else if (c->front->sasl != KBM_FRONT_RAW) {
            (void)conn_upstream_frames(c);
        }
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

/* --- framed fronts: Kafka requests seen one by one, SASL answered here ------------------------ */

static const char *
kbm_api_name(int16_t key)
{
    switch (key) {
    case KBM_API_PRODUCE:
        return "Produce";
    case 1:
        return "Fetch";
    case 3:
        return "Metadata";
    case 10:
        return "FindCoordinator";
    case KBM_API_SASL_HANDSHAKE:
        return "SaslHandshake";
    case KBM_API_API_VERSIONS:
        return "ApiVersions";
    case KBM_API_SASL_AUTHENTICATE:
        return "SaslAuthenticate";
    default:
        return "request";
    }
}

/* Closes c once the client has been sent what is queued for it (an error response). */
static void
conn_close_after_flush(struct kbm_conn *c)
{
    if (c->upstream != NULL) {
        conn_drop_leg(c, c->upstream); /* frees c at once if nothing is queued */
        return;
    }
    if (c->client == NULL || evbuffer_get_length(bufferevent_get_output(c->client)) == 0) {
        conn_free(c);
        return;
    }
    c->draining = true;
    bufferevent_disable(c->client, EV_READ);
    bufferevent_setwatermark(c->client, EV_WRITE, 0, 0);
}

/* Queues one response frame (size prefix + w's bytes) for the client; false when out of memory. */
static bool
conn_send_frame(struct kbm_conn *c, const struct kp_writer *w)
{
    uint8_t size[4];
    struct evbuffer *out = bufferevent_get_output(c->client);

    if (w->failed) {
        return false;
    }
    size[0] = (uint8_t)(w->len >> 24);
    size[1] = (uint8_t)(w->len >> 16);
    size[2] = (uint8_t)(w->len >> 8);
    size[3] = (uint8_t)w->len;
    return evbuffer_add(out, size, 4) == 0 && evbuffer_add(out, w->buf, w->len) == 0;
}

/* SaslHandshake response (v0 and v1 are alike): error, then the enabled mechanisms. */
static bool
conn_send_handshake(struct kbm_conn *c, int32_t corr, int16_t error, bool list)
{
    const struct kbm_sasl_conf *sc = &c->kbm->opts.sasl;
    struct kp_writer w;
    int32_t n = 0;
    int i;
    bool ok;

    for (i = 0; list && i < KBM_SASL_N_MECHS; i++) {
        n += sc->enabled[i] ? 1 : 0;
    }
    kp_writer_init(&w);
    kp_writer_i32(&w, corr);
    kp_writer_i16(&w, error);
    kp_writer_array_len(&w, 0, n);
    for (i = 0; list && i < KBM_SASL_N_MECHS; i++) {
        if (sc->enabled[i]) {
            const char *name = kbm_sasl_mech_name((enum kbm_sasl_mech)i);

            kp_writer_string(&w, 0, name, strlen(name));
        }
    }
    ok = conn_send_frame(c, &w);
    kp_writer_free(&w);
    return ok;
}

/* SaslAuthenticate response v0-v2 (v2 flexible: header and body tagged fields, compact types). */
static bool
conn_send_authenticate(struct kbm_conn *c, int32_t corr, int16_t version, int16_t error,
                       const char *message, const uint8_t *token, size_t token_len,
                       int64_t session_ms)
{
    unsigned flex = version >= 2 ? KP_COMPACT : 0;
    struct kp_writer w;
    bool ok;

    kp_writer_init(&w);
    kp_writer_i32(&w, corr);
    if (flex) {
        kp_writer_uvarint(&w, 0);
    }
    kp_writer_i16(&w, error);
    kp_writer_string(&w, flex | KP_NULLABLE, message, message ? strlen(message) : 0);
    kp_writer_bytes(&w, flex, token_len ? token : (const uint8_t *)"", token_len);
    if (version >= 1) {
        kp_writer_i64(&w, session_ms);
    }
    if (flex) {
        kp_writer_uvarint(&w, 0);
    }
    ok = conn_send_frame(c, &w);
    kp_writer_free(&w);
    return ok;
}

/* A raw SASL token frame (after SaslHandshake v0): size prefix and the token, no Kafka header. */
static bool
conn_send_raw_token(struct kbm_conn *c, const uint8_t *token, size_t len)
{
    struct kp_writer w;
    bool ok;

    kp_writer_init(&w);
    kp_writer_raw(&w, token, len);
    ok = conn_send_frame(c, &w);
    kp_writer_free(&w);
    return ok;
}

/* A session starts (or, re-authenticated, starts again) now. */
static void
conn_session_start(struct kbm_conn *c, bool reauth, bool raw)
{
    struct kbm *kbm = c->kbm;

    int64_t life = kbm_sasl_session_ms(&kbm->opts.sasl, &c->sx);
    int i;

    c->mech = c->sx.mech;
    snprintf(c->principal, sizeof(c->principal), "%s", c->sx.principal);
    c->session_end_ms = life > 0 ? kbm_now_ms() + life : 0;
    if (KBM_SASL_IS_IAM(c->mech)) {
        kbm->iam_auths++;
        for (i = 0; i < kbm->n_iam_keys && strcmp(kbm->iam_keys[i], c->sx.iam_key_id) != 0; i++) {
        }
        if (i == kbm->n_iam_keys && i < (int)(sizeof(kbm->iam_keys) / sizeof(kbm->iam_keys[0]))) {
            snprintf(kbm->iam_keys[kbm->n_iam_keys++], sizeof(kbm->iam_keys[0]), "%s",
                     c->sx.iam_key_id);
        }
    }
    c->auth = KBM_AUTH_DONE;
    if (reauth) {
        kbm->sasl_reauths++;
    } else {
        kbm->sasl_auths++;
        kbm->sasl_v0_auths += raw ? 1 : 0;
    }
    kbm->sasl_nonce_quirks += c->sx.nonce_quirk ? 1 : 0;
    kbm_log("conn #%lu: %s %s as '%s'%s%s", c->id, reauth ? "re-authenticated" : "authenticated",
            kbm_sasl_mech_name(c->mech), c->principal, raw ? " (SaslHandshake v0, raw tokens)" : "",
            c->sx.nonce_quirk ? " (client-final repeated the client nonce: tolerated)" : "");
    kbm_sasl_exchange_clear(&c->sx);
}

/* Logs a refused authentication, counts it; the caller closes. */
static void
conn_auth_failed(struct kbm_conn *c, const char *why)
{
    c->kbm->sasl_failures++;
    c->kbm->iam_failures += KBM_SASL_IS_IAM(c->sx.mech) ? 1 : 0;
    kbm_log("conn #%lu: authentication failed (%s): %s", c->id, kbm_sasl_mech_name(c->sx.mech),
            why);
    kbm_sasl_exchange_clear(&c->sx);
}

/*
 * SaslHandshake on a SASL front. Returns false when c is gone or closing.
 */
static bool
conn_on_handshake(struct kbm_conn *c, int16_t version, int32_t corr, struct kp_reader *r)
{
    const struct kbm_sasl_conf *sc = &c->kbm->opts.sasl;
    struct kp_view mech_name;
    enum kbm_sasl_mech mech;

    if (version > 1 || (version == 1 && sc->v0_only)) {
        /* a broker that does not know the version cannot answer it; Kafka closes */
        kbm_log("conn #%lu: SaslHandshake v%d not offered: closing", c->id, version);
        conn_free(c);
        return false;
    }
    if (kp_reader_string(r, 0, &mech_name) != KP_OK) {
        kbm_log("conn #%lu: malformed SaslHandshake: closing", c->id);
        conn_free(c);
        return false;
    }
    if (c->auth == KBM_AUTH_V1 || c->auth == KBM_AUTH_REAUTH ||
        (c->auth == KBM_AUTH_DONE && version == 0)) {
        /* a second handshake, or a re-authentication without SaslAuthenticate v1+ (KIP-368) */
        kbm_log("conn #%lu: SaslHandshake v%d out of order: ILLEGAL_SASL_STATE, closing", c->id,
                version);
        c->kbm->sasl_failures++;
        if (conn_send_handshake(c, corr, KBM_ERR_ILLEGAL_SASL_STATE, true)) {
            conn_close_after_flush(c);
        } else {
            conn_free(c);
        }
        return false;
    }
    if (!kbm_sasl_mech_parse((const char *)mech_name.ptr, mech_name.len, &mech) ||
        !sc->enabled[mech] || (c->auth == KBM_AUTH_DONE && mech != c->mech)) {
        kbm_log("conn #%lu: SaslHandshake v%d mechanism '%.*s' %s: UNSUPPORTED_SASL_MECHANISM, "
                "closing",
                c->id, version, (int)(mech_name.len < 64 ? mech_name.len : 64),
                mech_name.ptr ? (const char *)mech_name.ptr : "",
                c->auth == KBM_AUTH_DONE ? "differs from the session's" : "not enabled");
        c->kbm->sasl_failures++;
        if (conn_send_handshake(c, corr, KBM_ERR_UNSUPPORTED_SASL_MECHANISM, true)) {
            conn_close_after_flush(c);
        } else {
            conn_free(c);
        }
        return false;
    }
    kbm_sasl_exchange_init(&c->sx, mech, c->auth == KBM_AUTH_DONE);
    kbm_log("conn #%lu: SaslHandshake v%d %s%s", c->id, version, kbm_sasl_mech_name(mech),
            c->auth == KBM_AUTH_DONE ? " (re-authentication)" : "");
    c->auth = c->auth == KBM_AUTH_DONE ? KBM_AUTH_REAUTH
              : version == 0           ? KBM_AUTH_RAW
                                       : KBM_AUTH_V1;
    if (!conn_send_handshake(c, corr, 0, true)) {
        conn_free(c);
        return false;
    }
    return true;
}

/* SaslAuthenticate on a SASL front. Returns false when c is gone or closing. */
static bool
conn_on_authenticate(struct kbm_conn *c, int16_t version, int32_t corr, struct kp_reader *r)
{
    const struct kbm_sasl_conf *sc = &c->kbm->opts.sasl;
    struct kp_view in;
    uint8_t out[KBM_SASL_TOKEN_MAX];
    size_t out_len = 0;
    char err[256];
    char why[256];
    bool reauth = c->auth == KBM_AUTH_REAUTH;
    enum kbm_sasl_result res;
    int64_t session_ms;

    if (version > 2 || sc->v0_only) {
        kbm_log("conn #%lu: SaslAuthenticate v%d not offered: closing", c->id, version);
        conn_free(c);
        return false;
    }
    if (c->auth != KBM_AUTH_V1 && c->auth != KBM_AUTH_REAUTH) {
        snprintf(err, sizeof(err),
                 "Unexpected SaslAuthenticate request without a SaslHandshake "
                 "v1 before it");
        kbm_log("conn #%lu: %s: ILLEGAL_SASL_STATE, closing", c->id, err);
        c->kbm->sasl_failures++;
        if (conn_send_authenticate(c, corr, version, KBM_ERR_ILLEGAL_SASL_STATE, err, NULL, 0, 0)) {
            conn_close_after_flush(c);
        } else {
            conn_free(c);
        }
        return false;
    }
    if (kp_reader_bytes(r, version >= 2 ? KP_COMPACT : 0, &in) != KP_OK) {
        kbm_log("conn #%lu: malformed SaslAuthenticate: closing", c->id);
        conn_free(c);
        return false;
    }
    res = kbm_sasl_exchange_step(sc, &c->sx, in.ptr, in.len, out, sizeof(out), &out_len, err,
                                 sizeof(err), why, sizeof(why));
    if (res == KBM_SASL_OK && reauth && strcmp(c->sx.principal, c->principal) != 0) {
        snprintf(why, sizeof(why), "re-authentication as '%.64s', the session is '%.64s'",
                 c->sx.principal, c->principal);
        snprintf(err, sizeof(err),
                 "Cannot change principals during re-authentication from User:%.64s: User:%.64s",
                 c->principal, c->sx.principal);
        res = KBM_SASL_FAILED;
    }
    if (res == KBM_SASL_CONTINUE && c->sx.mech == KBM_SASL_OAUTHBEARER) {
        /* RFC 7628: the refusal is an error JSON first; the failure comes after the %x01 */
        kbm_log("conn #%lu: OAUTHBEARER token refused (%s): error JSON sent, waiting for %%x01",
                c->id, why);
    }
    if (res == KBM_SASL_FAILED) {
        conn_auth_failed(c, why);
        if (conn_send_authenticate(c, corr, version, KBM_ERR_SASL_AUTHENTICATION_FAILED, err, NULL,
                                   0, 0)) {
            conn_close_after_flush(c);
        } else {
            conn_free(c);
        }
        return false;
    }
    session_ms = res == KBM_SASL_OK ? kbm_sasl_session_ms(sc, &c->sx) : 0;
    if (res == KBM_SASL_OK) {
        conn_session_start(c, reauth, false);
    }
    if (!conn_send_authenticate(c, corr, version, 0, NULL, out, out_len, session_ms)) {
        conn_free(c);
        return false;
    }
    return true;
}

/* One raw token after SaslHandshake v0. Kafka closes without a word when it fails. */
static bool
conn_on_raw_token(struct kbm_conn *c, const uint8_t *token, size_t len)
{
    const struct kbm_sasl_conf *sc = &c->kbm->opts.sasl;
    uint8_t out[KBM_SASL_TOKEN_MAX];
    size_t out_len = 0;
    char err[256];
    char why[256];
    enum kbm_sasl_result res;

    res = kbm_sasl_exchange_step(sc, &c->sx, token, len, out, sizeof(out), &out_len, err,
                                 sizeof(err), why, sizeof(why));
    if (res == KBM_SASL_FAILED) {
        conn_auth_failed(c, why);
        conn_free(c);
        return false;
    }
    if (res == KBM_SASL_OK) {
        conn_session_start(c, false, true);
    }
    /* PLAIN's success is an empty token: a zero size prefix, which kafka-python waits for */
    if (!conn_send_raw_token(c, out, out_len)) {
        conn_free(c);
        return false;
    }
    return true;
}

/* SaslHandshake / SaslAuthenticate on a front without SASL, answered as KafkaApis does. */
static bool
conn_on_sasl_without_sasl(struct kbm_conn *c, int16_t key, int16_t version, int32_t corr)
{
    bool ok;

    kbm_log("conn #%lu: %s v%d on a listener without SASL: ILLEGAL_SASL_STATE", c->id,
            kbm_api_name(key), version);
    if (key == KBM_API_SASL_HANDSHAKE) {
        ok = conn_send_handshake(c, corr, KBM_ERR_ILLEGAL_SASL_STATE, false);
    } else {
        ok = conn_send_authenticate(c, corr, version > 2 ? 2 : version, KBM_ERR_ILLEGAL_SASL_STATE,
                                    "SaslAuthenticate request received after successful "
                                    "authentication",
                                    NULL, 0, 0);
    }
    if (!ok) {
        conn_free(c);
    }
    return ok;
}

/*
 * Whether a Produce request expects a response: not with acks=0. Unparseable: assume it does.
 * librdkafka's mock answers acks=0 all the same; framed fronts drop that answer, as Kafka
 * would never send it, and so that SASL answers made here stay in order behind it.
 */
static bool
produce_expects_response(int16_t version, struct kp_reader *r)
{
    int16_t acks = -1;

    if (version >= 3 &&
        kp_reader_string(r, (version >= 9 ? KP_COMPACT : 0) | KP_NULLABLE, NULL) != KP_OK) {
        return true;
    }
    return kp_reader_i16(r, &acks) != KP_OK || acks != 0;
}

/* Whether the request header of (key, version) is v2 (flexible), for the APIs looked into. */
static bool
request_header_flexible(int16_t key, int16_t version)
{
    return (key == KBM_API_PRODUCE && version >= 9) ||
           (key == KBM_API_SASL_AUTHENTICATE && version >= 2) ||
           (key == KBM_API_API_VERSIONS && version >= 3);
}

static bool conn_client_frames(struct kbm_conn *c);

/*
 * Handles every complete request in the client's input: forwards it to the mock, answers it
 * here (SASL), or closes. A request answered here waits until the mock has answered every
 * request before it, so responses stay in request order. false when c was freed.
 */
static bool
conn_client_frames(struct kbm_conn *c)
{
    struct kbm *kbm = c->kbm;

    while (!c->draining && c->client != NULL && c->upstream != NULL) {
        struct evbuffer *in = bufferevent_get_input(c->client);
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[4];
        uint32_t size;
        const uint8_t *frame;
        struct kp_reader r;
        int16_t key;
        int16_t version;
        int32_t corr;
        bool local;
        bool drop = false;

        if (avail < 4) {
            break;
        }
        evbuffer_copyout(in, hdr, 4);
        size = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (size > KBM_FRAME_MAX) {
            kbm_log("conn #%lu: frame size %u: closing", c->id, (unsigned)size);
            conn_free(c);
            return false;
        }
        if (avail < 4 + (size_t)size) {
            break;
        }
        frame = evbuffer_pullup(in, 4 + (ssize_t)size);
        if (frame == NULL) {
            conn_free(c);
            return false;
        }
        if (c->auth == KBM_AUTH_RAW) {
            uint8_t token[KBM_SASL_TOKEN_MAX];

            if (c->inflight_n > 0) {
                break;
            }
            if (size > sizeof(token)) {
                kbm_log("conn #%lu: raw SASL token of %u bytes: closing", c->id, (unsigned)size);
                conn_auth_failed(c, "raw token too long");
                conn_free(c);
                return false;
            }
            memcpy(token, frame + 4, size);
            evbuffer_drain(in, 4 + (size_t)size);
            if (!conn_on_raw_token(c, token, size)) {
                return false;
            }
            OPENSSL_cleanse(token, sizeof(token));
            continue;
        }
        kp_reader_init(&r, frame + 4, size);
        if (kp_reader_i16(&r, &key) != KP_OK || kp_reader_i16(&r, &version) != KP_OK ||
            kp_reader_i32(&r, &corr) != KP_OK || kp_reader_string(&r, KP_NULLABLE, NULL) != KP_OK ||
            (request_header_flexible(key, version) && kp_reader_skip_tags(&r) != KP_OK)) {
            kbm_log("conn #%lu: malformed request header: closing", c->id);
            conn_free(c);
            return false;
        }
        local = key == KBM_API_SASL_HANDSHAKE || key == KBM_API_SASL_AUTHENTICATE;
        if (local && c->inflight_n > 0) {
            break; /* conn_upstream_frames() calls again once the mock has caught up */
        }
        if (!local && c->front->sasl == KBM_FRONT_SASL) {
            bool allowed_before = key == KBM_API_API_VERSIONS && c->auth == KBM_AUTH_NONE;

            if (c->auth != KBM_AUTH_DONE && !allowed_before) {
                kbm->sasl_unauth_closes++;
                kbm_log("conn #%lu: %s (key %d) v%d before authentication: closing", c->id,
                        kbm_api_name(key), key, version);
                conn_free(c);
                return false;
            }
            if (c->auth == KBM_AUTH_DONE && c->session_end_ms != 0 &&
                kbm_now_ms() >= c->session_end_ms) {
                kbm->sasl_expired_closes++;
                kbm_log("conn #%lu: %s (key %d) v%d after the session of '%s' expired %ld ms "
                        "ago: closing",
                        c->id, kbm_api_name(key), key, version, c->principal,
                        kbm_now_ms() - c->session_end_ms);
                conn_free(c);
                return false;
            }
        }
        if (local) {
            uint8_t copy[KBM_SASL_TOKEN_MAX + 512];
            bool ok;

            if (size > sizeof(copy)) {
                kbm_log("conn #%lu: %s of %u bytes: closing", c->id, kbm_api_name(key),
                        (unsigned)size);
                conn_free(c);
                return false;
            }
            memcpy(copy, frame + 4, size);
            evbuffer_drain(in, 4 + (size_t)size);
            r.buf = copy; /* same offsets, stable bytes */
            if (c->front->sasl == KBM_FRONT_NOSASL) {
                ok = conn_on_sasl_without_sasl(c, key, version, corr);
            } else if (key == KBM_API_SASL_HANDSHAKE) {
                ok = conn_on_handshake(c, version, corr, &r);
            } else {
                ok = conn_on_authenticate(c, version, corr, &r);
            }
            if (!ok) {
                return false;
            }
            OPENSSL_cleanse(copy, sizeof(copy));
            continue;
        }
        if (key == KBM_API_PRODUCE) {
            drop = !produce_expects_response(version, &r);
        }
        if (c->inflight_n == KBM_INFLIGHT_MAX) {
            break; /* resumed as responses come back */
        }
        c->inflight[(c->inflight_head + c->inflight_n) % KBM_INFLIGHT_MAX] =
            (struct kbm_req){key, version, corr, drop};
        c->inflight_n++;
        kbm->bytes_to_mock += 4 + (size_t)size;
        evbuffer_remove_buffer(in, bufferevent_get_output(c->upstream), 4 + (size_t)size);
        if (evbuffer_get_length(bufferevent_get_output(c->upstream)) >= KBM_HIGH_WATER) {
            bufferevent_setwatermark(c->upstream, EV_WRITE, KBM_HIGH_WATER / 2, 0);
            bufferevent_disable(c->client, EV_READ);
            break; /* conn_on_write() resumes */
        }
    }
    return true;
}

/*
 * Adds SaslHandshake and SaslAuthenticate to the mock's ApiVersions response (librdkafka's mock
 * has neither), as a Kafka broker lists them: v0-1 and v0-2, or v0 only and no SaslAuthenticate
 * with --sasl-handshake-v0-only. The response header is v0 for every version; v3+ bodies are
 * flexible. Anything not understood goes to the client unchanged.
 */
static bool
conn_send_api_versions(struct kbm_conn *c, int16_t version, const uint8_t *body, size_t len)
{
    unsigned flex = version >= 3 ? KP_COMPACT : 0;
    bool v0_only = c->kbm->opts.sasl.v0_only;
    struct kp_reader r;
    struct kp_writer w;
    int32_t corr;
    int16_t error;
    int32_t n;
    int32_t i;
    int32_t kept = 0;
    size_t entries_at;
    bool ok;

    kp_reader_init(&r, body, len);
    if (kp_reader_i32(&r, &corr) != KP_OK || kp_reader_i16(&r, &error) != KP_OK || error != 0 ||
        kp_reader_array_len(&r, flex, 6, &n) != KP_OK) {
        goto verbatim;
    }
    /* first pass: validate and count the entries kept */
    entries_at = r.pos;
    for (i = 0; i < n; i++) {
        int16_t key;

        if (kp_reader_i16(&r, &key) != KP_OK || kp_reader_skip(&r, 4) != KP_OK ||
            (flex && kp_reader_skip_tags(&r) != KP_OK)) {
            goto verbatim;
        }
        kept += key != KBM_API_SASL_HANDSHAKE && key != KBM_API_SASL_AUTHENTICATE;
    }
    kp_writer_init(&w);
    kp_writer_i32(&w, corr);
    kp_writer_i16(&w, error);
    kp_writer_array_len(&w, flex, kept + (v0_only ? 1 : 2));
    r.pos = entries_at;
    for (i = 0; i < n; i++) {
        size_t at = r.pos;
        int16_t key = 0;

        (void)kp_reader_i16(&r, &key);
        (void)kp_reader_skip(&r, 4);
        if (flex) {
            (void)kp_reader_skip_tags(&r);
        }
        if (key != KBM_API_SASL_HANDSHAKE && key != KBM_API_SASL_AUTHENTICATE) {
            kp_writer_raw(&w, body + at, r.pos - at);
        }
    }
    kp_writer_i16(&w, KBM_API_SASL_HANDSHAKE);
    kp_writer_i16(&w, 0);
    kp_writer_i16(&w, v0_only ? 0 : 1);
    if (flex) {
        kp_writer_uvarint(&w, 0);
    }
    if (!v0_only) {
        kp_writer_i16(&w, KBM_API_SASL_AUTHENTICATE);
        kp_writer_i16(&w, 0);
        kp_writer_i16(&w, 2);
        if (flex) {
            kp_writer_uvarint(&w, 0);
        }
    }
    kp_writer_raw(&w, body + r.pos, len - r.pos); /* throttle time, tagged fields */
    ok = conn_send_frame(c, &w);
    kp_writer_free(&w);
    return ok;
verbatim : {
    struct kp_writer v;

    kp_writer_init(&v);
    kp_writer_raw(&v, body, len);
    ok = conn_send_frame(c, &v);
    kp_writer_free(&v);
    return ok;
}
}

/* Moves every complete response from the mock to the client. false when c was freed. */
static bool
conn_upstream_frames(struct kbm_conn *c)
{
    bool answered = false;

    while (!c->draining && c->client != NULL && c->upstream != NULL) {
        struct evbuffer *in = bufferevent_get_input(c->upstream);
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[4];
        uint32_t size;
        struct kbm_req q = {-1, 0, 0, false};

        if (avail < 4) {
            break;
        }
        evbuffer_copyout(in, hdr, 4);
        size = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (size > KBM_FRAME_MAX) {
            kbm_log("conn #%lu: mock sent frame size %u: closing", c->id, (unsigned)size);
            conn_free(c);
            return false;
        }
        if (avail < 4 + (size_t)size) {
            break;
        }
        if (c->inflight_n > 0) {
            q = c->inflight[c->inflight_head];
            c->inflight_head = (c->inflight_head + 1) % KBM_INFLIGHT_MAX;
            c->inflight_n--;
            answered = true;
        }
        if (q.drop) {
            evbuffer_drain(in, 4 + (size_t)size);
        } else if (q.api_key == KBM_API_API_VERSIONS) {
            const uint8_t *frame = evbuffer_pullup(in, 4 + (ssize_t)size);

            if (frame == NULL || !conn_send_api_versions(c, q.api_version, frame + 4, size)) {
                conn_free(c);
                return false;
            }
            evbuffer_drain(in, 4 + (size_t)size);
        } else {
            evbuffer_remove_buffer(in, bufferevent_get_output(c->client), 4 + (size_t)size);
        }
        if (evbuffer_get_length(bufferevent_get_output(c->client)) >= KBM_HIGH_WATER) {
            bufferevent_setwatermark(c->client, EV_WRITE, KBM_HIGH_WATER / 2, 0);
            bufferevent_disable(c->upstream, EV_READ);
            break;
        }
    }
    if (answered && c->client != NULL &&
        evbuffer_get_length(bufferevent_get_input(c->client)) > 0) {
        return conn_client_frames(c);
    }
    return true;
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
    if (c->front->sasl != KBM_FRONT_RAW) {
        return conn_client_frames(c);
    }
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

/* How front `id` (a broker id; 0: the bootstrap front) treats SASL. */
static enum kbm_front_sasl
kbm_front_sasl_mode(const struct kbm *kbm, int id)
{
    if (!kbm->opts.sasl_on) {
        return KBM_FRONT_RAW;
    }
    return kbm->opts.sasl_off[id] ? KBM_FRONT_NOSASL : KBM_FRONT_SASL;
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
            f->sasl = kbm_front_sasl_mode(kbm, i);
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
        f->sasl = kbm_front_sasl_mode(kbm, 0);
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
               "tls_handshakes_failed=%llu bytes_to_mock=%llu sasl_auths=%llu sasl_v0_auths=%llu "
               "sasl_reauths=%llu sasl_failures=%llu sasl_expired_closes=%llu "
               "sasl_unauth_closes=%llu sasl_nonce_quirks=%llu iam_auths=%llu iam_failures=%llu "
               "iam_keys_seen=%d\n",
               (unsigned long long)kbm->hs_ok, (unsigned long long)kbm->hs_resumed,
               (unsigned long long)kbm->hs_failed, (unsigned long long)kbm->bytes_to_mock,
               (unsigned long long)kbm->sasl_auths, (unsigned long long)kbm->sasl_v0_auths,
               (unsigned long long)kbm->sasl_reauths, (unsigned long long)kbm->sasl_failures,
               (unsigned long long)kbm->sasl_expired_closes,
               (unsigned long long)kbm->sasl_unauth_closes,
               (unsigned long long)kbm->sasl_nonce_quirks, (unsigned long long)kbm->iam_auths,
               (unsigned long long)kbm->iam_failures, kbm->n_iam_keys);
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
    fprintf(
        out,
        "usage: kbmock --certs DIR [--brokers N (default 3)] [--cert NAME (default server)]\n"
        "              [--mode msk|front|plain (default msk)] [--topic NAME:PARTITIONS]...\n"
        "              [--bootstrap-port PORT] [--advertise-host HOST (msk mode, librdkafka\n"
        "              >= 2.12: brokers advertised as HOST:T, T = their TLS port)]\n"
        "stdout: BROKER <id> advertised=H:P tls=H:T|-, BOOTSTRAP <list>, READY\n"
        "              [--sasl-mechanisms LIST (comma-separated: PLAIN, SCRAM-SHA-256,\n"
        "              SCRAM-SHA-512, AWS_MSK_IAM, OAUTHBEARER; enforces SASL on every front)]\n"
        "              [--sasl-user NAME:PASS]... [--iam-credentials FILE (lines KEY_ID SECRET\n"
        "              [TOKEN|- [EXPIRES_EPOCH [PRINCIPAL]]], re-read per IAM authentication)]\n"
        "              [--iam-region R (default eu-west-1)] [--iam-host H (the host AWS_MSK_IAM\n"
        "              must sign; default --advertise-host or 127.0.0.1)]\n"
        "              [--sasl-session-ms N] [--sasl-handshake-v0-only] [--sasl-strict-nonce]\n"
        "              [--sasl-off ID|bootstrap]... (that front: a Kafka port without SASL)\n"
        "stdout: BROKER <id> advertised=H:P tls=H:T|-, BOOTSTRAP <list>, READY\n"
        "stdin:  down ID | up ID | drop | leader TOPIC PARTITION ID | stats | quit\n"
        "        (one reply line each: OK ..., ERR ... or STATS ...)\n"
        "stats:  tls_handshakes_ok/_resumed/_failed, bytes_to_mock, and with SASL:\n"
        "        sasl_auths (first authentications; sasl_v0_auths of them with raw tokens),\n"
        "        sasl_reauths (KIP-368), sasl_failures (refused: credentials, mechanism,\n"
        "        state), sasl_expired_closes (request after the session ended),\n"
        "        sasl_unauth_closes (request before authentication), sasl_nonce_quirks\n"
        "        (SCRAM client-final that repeated the client nonce, librdkafka < 2.6.1),\n"
        "        iam_auths / iam_failures (IAM, re-authentications included), iam_keys_seen\n"
        "        (distinct access key ids that authenticated)\n");
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

/* "SCRAM-SHA-512,PLAIN": enables each; false for an unknown name or an empty list. */
static bool
parse_mechanisms(const char *list, struct kbm_sasl_conf *sc)
{
    const char *p = list;
    bool any = false;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        enum kbm_sasl_mech m;

        if (!kbm_sasl_mech_parse(p, len, &m)) {
            return false;
        }
        sc->enabled[m] = true;
        any = true;
        p += len + (comma ? 1 : 0);
    }
    return any;
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
        if (strcmp(a, "--sasl-handshake-v0-only") == 0) {
            o->sasl.v0_only = true;
            continue;
        }
        if (strcmp(a, "--sasl-strict-nonce") == 0) {
            o->sasl.strict_nonce = true;
            continue;
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
        } else if (strcmp(a, "--sasl-mechanisms") == 0) {
            if (!parse_mechanisms(val, &o->sasl)) {
                fprintf(stderr, "kbmock: --sasl-mechanisms: comma-separated PLAIN, SCRAM-SHA-256, "
                                "SCRAM-SHA-512, AWS_MSK_IAM, OAUTHBEARER\n");
                return false;
            }
            o->sasl_on = true;
        } else if (strcmp(a, "--sasl-user") == 0) {
            char err[128];

            if (!kbm_sasl_conf_add_user(&o->sasl, val, err, sizeof(err))) {
                fprintf(stderr, "kbmock: --sasl-user NAME:PASSWORD: %s\n", err);
                return false;
            }
        } else if (strcmp(a, "--iam-credentials") == 0) {
            o->sasl.iam_file = val;
        } else if (strcmp(a, "--iam-region") == 0) {
            o->sasl.iam_region = val;
        } else if (strcmp(a, "--iam-host") == 0) {
            o->sasl.iam_host = val;
        } else if (strcmp(a, "--sasl-session-ms") == 0) {
            if (!parse_int(val, 0, 86400000L, &v)) {
                fprintf(stderr, "kbmock: --sasl-session-ms: 0..86400000\n");
                return false;
            }
            o->sasl.session_ms = v;
        } else if (strcmp(a, "--sasl-off") == 0) {
            if (strcmp(val, "bootstrap") == 0) {
                o->sasl_off[0] = true;
            } else if (parse_int(val, 1, KBM_MAX_BROKERS, &v)) {
                o->sasl_off[v] = true;
            } else {
                fprintf(stderr, "kbmock: --sasl-off: a broker id or 'bootstrap'\n");
                return false;
            }
        } else {
            fprintf(stderr, "kbmock: unknown option %s\n", a);
            return false;
        }
    }
    if (o->certs_dir == NULL) {
        fprintf(stderr, "kbmock: --certs DIR is required\n");
        return false;
    }
    if (o->sasl_on && o->mode == KBM_MODE_PLAIN) {
        fprintf(stderr, "kbmock: SASL needs TLS fronts (msk or front mode)\n");
        return false;
    }
    if ((o->sasl.enabled[KBM_SASL_AWS_MSK_IAM] || o->sasl.enabled[KBM_SASL_OAUTHBEARER]) &&
        !o->sasl.iam_file) {
        fprintf(stderr, "kbmock: AWS_MSK_IAM / OAUTHBEARER need --iam-credentials FILE\n");
        return false;
    }
    if (!o->sasl.iam_host) {
        o->sasl.iam_host = o->advertise_host ? o->advertise_host : "127.0.0.1";
    }
    if (o->sasl_on && o->sasl.n_users == 0 && !o->sasl.iam_file) {
        fprintf(stderr, "kbmock: --sasl-mechanisms needs at least one --sasl-user\n");
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
