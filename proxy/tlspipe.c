/*
 * tlspipe.c - see tlspipe.h. Ownership: the pipe owns the socket, the SSL (which owns the
 * BIO), both pair ends, its two events and the flat output buffer. Before the handshake ends
 * the caller frees it with tlspipe_abort(); after, whoever holds the outer end frees it with
 * tlspipe_bev_free(). The pipe calls out directly only for the handshake's outcome (and
 * returns at once after); everything else reaches the outer end's callbacks deferred, so a
 * callback that frees the bridge never runs inside the pipe's own code.
 */
#include "proxy/tlspipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/err.h>

#include "tls/tlssess.h"

#define TLSPIPE_READ (256u << 10)        /* one recv() per readable socket */
#define TLSPIPE_BATCH (256u << 10)       /* ciphertext made before one send() */
#define TLSPIPE_RECORD 16384             /* TLS's largest record payload */
#define TLSPIPE_FLAT_INITIAL (64u << 10) /* first size of the flat output buffer */
/* evbuffer space reserved per SSL_read batch: a little under 64 KiB, because libevent rounds a
 * new chain (data plus its header) up to a power of two and 64 KiB exactly would allocate 128:
 * a 50 MiB Fetch's peak RSS went from 7.0 to 4.1 MiB with this. */
#define TLSPIPE_RESERVE ((64u << 10) - 256)

struct tlspipe {
    struct event_base *base; /* loop */
    evutil_socket_t fd;      /* the broker socket (owned) */
    SSL *ssl;                /* owned; owns the BIO below */
    struct event *rev;       /* socket readable (persistent) */
    struct event *wev;       /* socket writable: added only while a batch is unsent */
    struct bufferevent *a;   /* outer end, handed out when the handshake succeeds */
    struct bufferevent *b;   /* inner end: its input is to be sent, its output was received */
    uint8_t *out;            /* flat ciphertext buffer, reused for the connection's life */
    size_t out_len;          /* bytes in out */
    size_t out_off;          /* bytes of out already sent */
    size_t out_cap;          /* allocated size of out */
    bool out_failed;         /* growing out failed: the connection is dropped */
    const uint8_t *in;       /* ciphertext being served to SSL (the thread's read buffer) */
    size_t in_len;           /* bytes at in */
    size_t in_off;           /* bytes of in already served */
    bool read_paused;        /* rev removed: the outer end is not reading */
    bool eof;                /* the broker ended: EOF is due once the outer end read all */
    bool dead;               /* failed or ended: no more I/O */
    tlspipe_done_fn done;    /* the handshake's outcome */
    void *arg;               /* its argument */
};

static BIO_METHOD *tlspipe_meth;
static pthread_key_t tlspipe_buf_key;
static pthread_once_t tlspipe_once = PTHREAD_ONCE_INIT;
static bool tlspipe_inited;

/* ---- the BIO: reads from the current recv() buffer, writes to the flat buffer ------------ */

static int
tlspipe_bio_write(BIO *bio, const char *data, int len)
{
    struct tlspipe *p = BIO_get_data(bio);

    BIO_clear_retry_flags(bio);
    if (len <= 0) {
        return 0;
    }
    if (p->out_len + (size_t)len > p->out_cap) {
        size_t cap = p->out_cap ? p->out_cap : TLSPIPE_FLAT_INITIAL;
        uint8_t *np;

        while (cap < p->out_len + (size_t)len) {
            cap *= 2;
        }
        np = realloc(p->out, cap);
        if (!np) {
            p->out_failed = true;
            return -1;
        }
        p->out = np;
        p->out_cap = cap;
    }
    memcpy(p->out + p->out_len, data, (size_t)len);
    p->out_len += (size_t)len;
    return len;
}

static int
tlspipe_bio_read(BIO *bio, char *data, int len)
{
    struct tlspipe *p = BIO_get_data(bio);
    size_t left = p->in_len - p->in_off;
    size_t n = (size_t)len < left ? (size_t)len : left;

    BIO_clear_retry_flags(bio);
    if (len <= 0) {
        return 0;
    }
    if (n == 0) {
        BIO_set_retry_read(bio); /* the socket is read by the pipe, never from inside SSL */
        return -1;
    }
    memcpy(data, p->in + p->in_off, n);
    p->in_off += n;
    return (int)n;
}

static long
tlspipe_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    struct tlspipe *p = BIO_get_data(bio);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the pipe sends the flat buffer once per batch */
    case BIO_CTRL_PENDING:
        return (long)(p->in_len - p->in_off);
    case BIO_CTRL_WPENDING:
        return (long)(p->out_len - p->out_off);
    default:
        return 0;
    }
}

static int
tlspipe_bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static void
tlspipe_buf_free(void *buf)
{
    free(buf);
}

static void
tlspipe_init_once(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kbridge tlspipe");

    if (!m || BIO_meth_set_write(m, tlspipe_bio_write) != 1 ||
        BIO_meth_set_read(m, tlspipe_bio_read) != 1 ||
        BIO_meth_set_ctrl(m, tlspipe_bio_ctrl) != 1 ||
        BIO_meth_set_create(m, tlspipe_bio_create) != 1 ||
        pthread_key_create(&tlspipe_buf_key, tlspipe_buf_free) != 0) {
        BIO_meth_free(m);
        return;
    }
    tlspipe_meth = m;
    tlspipe_inited = true;
}

bool
tlspipe_init(void)
{
    pthread_once(&tlspipe_once, tlspipe_init_once);
    return tlspipe_inited;
}

/* The calling thread's recv() buffer: one per event loop, as every pipe empties it at once. */
static uint8_t *
tlspipe_read_buf(void)
{
    uint8_t *buf = pthread_getspecific(tlspipe_buf_key);

    if (!buf && (buf = malloc(TLSPIPE_READ)) != NULL &&
        pthread_setspecific(tlspipe_buf_key, buf) != 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* ---- failure and end ---------------------------------------------------------------------- */

static void tlspipe_on_b_read(struct bufferevent *b, void *arg);
static void tlspipe_on_b_drained(struct bufferevent *b, void *arg);

/* Stops all I/O. Before the handshake: tells done why. After: an error event on the outer end
 * (deferred; errno is kept for it), after a TLS-level failure without its session. */
static void
tlspipe_fail(struct tlspipe *p, int err, bool tls_level, short dir)
{
    struct tlspipe_fail f;
    unsigned long e;

    p->dead = true;
    event_del(p->rev);
    event_del(p->wev);
    if (!p->a) {
        memset(&f, 0, sizeof(f));
        while ((e = ERR_get_error()) != 0) {
            if (f.n_errs < TLSPIPE_MAX_ERRS) {
                f.errs[f.n_errs++] = e;
            }
        }
        f.sock_err = err;
        p->done(p->arg, NULL, &f); /* may free p */
        return;
    }
    ERR_clear_error();
    if (tls_level) {
        tlssess_forget(p->ssl); /* a fatal alert or a bad record: never resume it */
    }
    EVUTIL_SET_SOCKET_ERROR(err);
    bufferevent_trigger_event(p->a, BEV_EVENT_ERROR | dir, 0);
}

/* The broker ended (a TCP FIN or close_notify): EOF on the outer end once it read it all. */
static void
tlspipe_deliver_eof(struct tlspipe *p)
{
    struct tlspipe_fail f;

    p->eof = true;
    p->dead = true;
    event_del(p->rev);
    event_del(p->wev);
    if (!p->a) {
        memset(&f, 0, sizeof(f));
        f.eof = true;
        p->done(p->arg, NULL, &f); /* may free p */
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(p->b)) == 0) {
        p->eof = false; /* delivered now */
        EVUTIL_SET_SOCKET_ERROR(0);
        bufferevent_flush(p->b, EV_WRITE, BEV_FINISHED); /* EOF | READING, deferred */
    }
}

/* ---- to the broker -------------------------------------------------------------------------- */

/* One send() of the unsent part of the flat buffer. false: the pipe failed. */
static bool
tlspipe_send(struct tlspipe *p)
{
    ssize_t n;

    if (p->out_off == p->out_len) {
        return true;
    }
    n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        tlspipe_fail(p, errno, false, BEV_EVENT_WRITING);
        return false;
    }
    if (n > 0) {
        p->out_off += (size_t)n;
    }
    if (p->out_off == p->out_len) {
        p->out_off = p->out_len = 0; /* reuse from the start */
    }
    return true;
}

/*
 * SSL_writes the pair's plaintext into the flat buffer, up to one batch: whole records straight
 * from a chain that holds them, else 16 KiB gathered from several chains, a partial record
 * only when less than one is queued. false: the pipe failed.
 */
static bool
tlspipe_encrypt_batch(struct tlspipe *p)
{
    struct evbuffer *src = bufferevent_get_input(p->b);
    char rec[TLSPIPE_RECORD];
    struct evbuffer_iovec v;
    size_t len, n;
    const void *data;

    while (p->out_len < TLSPIPE_BATCH && (len = evbuffer_get_length(src)) > 0) {
        evbuffer_peek(src, -1, NULL, &v, 1);
        if (v.iov_len >= TLSPIPE_RECORD) {
            n = v.iov_len < TLSPIPE_BATCH ? v.iov_len : TLSPIPE_BATCH;
            n -= n % TLSPIPE_RECORD;
            data = v.iov_base;
        } else {
            n = len < TLSPIPE_RECORD ? len : TLSPIPE_RECORD;
            evbuffer_copyout(src, rec, n);
            data = rec;
        }
        ERR_clear_error();
        if (SSL_write(p->ssl, data, (int)n) != (int)n || p->out_failed) {
            tlspipe_fail(p, p->out_failed ? ENOMEM : 0, !p->out_failed, BEV_EVENT_WRITING);
            return false;
        }
        evbuffer_drain(src, n);
    }
    return true;
}

/* Sends what the pair holds, batch by batch, until it is empty or the socket is full. */
static void
tlspipe_pump_out(struct tlspipe *p)
{
    struct evbuffer *src = bufferevent_get_input(p->b);

    while (!p->dead && p->out_len == 0 && evbuffer_get_length(src) > 0) {
        if (!tlspipe_encrypt_batch(p) || !tlspipe_send(p)) {
            return;
        }
    }
    if (!p->dead && p->out_len > 0) {
        /* The socket is full: take nothing more from the pair until it drains. */
        bufferevent_disable(p->b, EV_READ);
        event_add(p->wev, NULL);
    }
}

static void
tlspipe_on_b_read(struct bufferevent *b, void *arg)
{
    (void)b;
    tlspipe_pump_out(arg);
}

/* ---- from the broker ------------------------------------------------------------------------ */

/* SSL_reads everything the current buffer holds into the inner end's output. */
static void
tlspipe_decrypt(struct tlspipe *p)
{
    struct evbuffer *dst = bufferevent_get_output(p->b);
    struct evbuffer_iovec v;
    size_t got;
    int r, err;

    for (;;) {
        if (evbuffer_reserve_space(dst, TLSPIPE_RESERVE, &v, 1) < 1) {
            tlspipe_fail(p, ENOMEM, false, BEV_EVENT_READING);
            return;
        }
        got = 0;
        r = 1;
        ERR_clear_error();
        while (got < v.iov_len) {
            r = SSL_read(p->ssl, (char *)v.iov_base + got, (int)(v.iov_len - got));
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
        }
        v.iov_len = got;
        evbuffer_commit_space(dst, &v, 1); /* the pair moves it on if the outer end reads */
        if (r > 0) {
            continue;
        }
        err = SSL_get_error(p->ssl, r);
        if (err == SSL_ERROR_WANT_READ) {
            return; /* the buffer is used up (a partial record waits inside SSL) */
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
            tlspipe_deliver_eof(p);
            return;
        }
        tlspipe_fail(p, err == SSL_ERROR_SYSCALL ? errno : 0, err == SSL_ERROR_SSL,
                     BEV_EVENT_READING);
        return;
    }
}

/* The handshake just succeeded: makes the pair. false: out of memory (reported). */
static bool
tlspipe_ready(struct tlspipe *p)
{
    struct bufferevent *pair[2];

    if (bufferevent_pair_new(p->base, BEV_OPT_DEFER_CALLBACKS, pair) != 0) {
        tlspipe_fail(p, ENOMEM, false, BEV_EVENT_READING);
        return false;
    }
    p->b = pair[1];
    bufferevent_setcb(p->b, tlspipe_on_b_read, tlspipe_on_b_drained, NULL, p);
    bufferevent_enable(p->b, EV_READ | EV_WRITE);
    p->a = pair[0];
    return true;
}

/* While the outer end reads nothing, neither does the socket; resumes once it took it all. */
static void
tlspipe_on_b_drained(struct bufferevent *b, void *arg)
{
    struct tlspipe *p = arg;

    if (evbuffer_get_length(bufferevent_get_output(b)) > 0) {
        return;
    }
    if (p->eof) {
        p->eof = false; /* delivered once */
        EVUTIL_SET_SOCKET_ERROR(0);
        bufferevent_flush(p->b, EV_WRITE, BEV_FINISHED);
        return;
    }
    if (p->read_paused && !p->dead) {
        p->read_paused = false;
        event_add(p->rev, NULL);
    }
}

static void
tlspipe_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct tlspipe *p = arg;
    uint8_t *buf = tlspipe_read_buf();
    bool handshook = p->a != NULL;
    ssize_t n;
    int r;

    (void)what;
    if (!buf) {
        tlspipe_fail(p, ENOMEM, false, BEV_EVENT_READING);
        return;
    }
    n = recv(fd, buf, TLSPIPE_READ, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            tlspipe_fail(p, errno, false, BEV_EVENT_READING);
        }
        return;
    }
    if (n == 0) {
        tlspipe_deliver_eof(p);
        return;
    }
    p->in = buf;
    p->in_len = (size_t)n;
    p->in_off = 0;
    if (!handshook) {
        ERR_clear_error();
        r = SSL_do_handshake(p->ssl);
        if (r != 1) {
            int err = SSL_get_error(p->ssl, r);
            int serr = err == SSL_ERROR_SYSCALL ? errno : 0;

            p->in = NULL;
            /* Our answer (or the alert we raise) first: it is already in the flat buffer. */
            if (!tlspipe_send(p)) {
                return;
            }
            if (err == SSL_ERROR_WANT_READ && !p->out_failed) {
                if (p->out_len > 0) {
                    event_add(p->wev, NULL);
                }
                return;
            }
            tlspipe_fail(p, p->out_failed ? ENOMEM : serr, true, BEV_EVENT_READING);
            return;
        }
        if (!tlspipe_ready(p) || !tlspipe_send(p)) { /* our Finished */
            return;
        }
    }
    tlspipe_decrypt(p); /* after a handshake, what the broker sent behind its Finished */
    p->in = NULL;
    if (!p->dead && evbuffer_get_length(bufferevent_get_output(p->b)) > 0) {
        p->read_paused = true; /* the outer end is not reading */
        event_del(p->rev);
    }
    if (!p->dead) {
        tlspipe_pump_out(p); /* a KeyUpdate answer, or what a busy socket held back */
    }
    if (!handshook) {
        /* Handed out even if the broker already ended: that reaches it as an event. */
        p->done(p->arg, p->a, NULL); /* may free p */
    }
}

static void
tlspipe_on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct tlspipe *p = arg;

    (void)fd;
    (void)what;
    if (!tlspipe_send(p)) {
        return;
    }
    if (p->out_len > 0) {
        return; /* still full */
    }
    event_del(p->wev);
    if (!p->a) {
        return; /* a handshake flight: the answer comes as a readable event */
    }
    bufferevent_enable(p->b, EV_READ); /* the pair moves the outer end's output in */
    tlspipe_pump_out(p);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

struct tlspipe *
tlspipe_start(struct event_base *base, evutil_socket_t fd, SSL *ssl, tlspipe_done_fn done,
              void *arg)
{
    struct tlspipe *p = tlspipe_init() ? calloc(1, sizeof(*p)) : NULL;
    BIO *bio = p ? BIO_new(tlspipe_meth) : NULL;
    int r;

    if (!bio) {
        free(p);
        SSL_free(ssl);
        evutil_closesocket(fd);
        return NULL;
    }
    p->base = base;
    p->fd = fd;
    p->ssl = ssl;
    p->done = done;
    p->arg = arg;
    BIO_set_data(bio, p);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_connect_state(ssl);
    evutil_make_socket_nonblocking(fd);
    p->rev = event_new(base, fd, EV_READ | EV_PERSIST, tlspipe_on_readable, p);
    p->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, tlspipe_on_writable, p);
    if (!p->rev || !p->wev) {
        tlspipe_abort(p);
        return NULL;
    }
    /* The ClientHello goes into the flat buffer now and out when the socket is writable (it
     * is: just connected), so every outcome is reported from the loop. */
    ERR_clear_error();
    r = SSL_do_handshake(ssl);
    if (r == 1 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ || p->out_failed) {
        ERR_clear_error();
        tlspipe_abort(p);
        return NULL;
    }
    event_add(p->rev, NULL);
    event_add(p->wev, NULL);
    return p;
}

void
tlspipe_abort(struct tlspipe *p)
{
    if (!p) {
        return;
    }
    if (p->rev) {
        event_free(p->rev);
    }
    if (p->wev) {
        event_free(p->wev);
    }
    if (p->a) {
        bufferevent_free(p->a);
    }
    if (p->b) {
        bufferevent_free(p->b); /* clears its callbacks: nothing deferred reaches p */
    }
    SSL_free(p->ssl); /* and the BIO */
    evutil_closesocket(p->fd);
    free(p->out);
    free(p);
}

/* The pipe behind an outer end, or NULL. A socket bufferevent has an fd, a pair end does not. */
static struct tlspipe *
tlspipe_of(struct bufferevent *bev)
{
    struct bufferevent *b;
    bufferevent_data_cb rd;
    void *arg;

    if (!bev || bufferevent_getfd(bev) >= 0 || !(b = bufferevent_pair_get_partner(bev))) {
        return NULL;
    }
    bufferevent_getcb(b, &rd, NULL, NULL, &arg);
    return rd == tlspipe_on_b_read ? arg : NULL;
}

void
tlspipe_bev_free(struct bufferevent *bev)
{
    struct tlspipe *p = tlspipe_of(bev);

    if (p) {
        tlspipe_abort(p);
    } else if (bev) {
        bufferevent_free(bev);
    }
}

SSL *
tlspipe_bev_ssl(struct bufferevent *bev)
{
    struct tlspipe *p = tlspipe_of(bev);

    return p ? p->ssl : NULL;
}

size_t
tlspipe_bev_unsent(struct bufferevent *bev)
{
    struct tlspipe *p = tlspipe_of(bev);

    return p ? evbuffer_get_length(bufferevent_get_input(p->b)) + (p->out_len - p->out_off) : 0;
}
