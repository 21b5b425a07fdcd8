/*
 * worker.c - the extra event loops of workers = N (see worker.h). The leader talks to each
 * worker through a pipe of one-byte commands; a reload's snapshot waits in a mutex-guarded
 * slot. Each worker thread writes its id to the leader's pipe when its loop has ended, so the
 * leader's loop (and a drain) can tell when every worker is done. Every loop, the leader's
 * included, has an inbox of accepted connections handed over by another loop (balancing).
 */
#include "proxy/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "proxy/bridge.h"
#include "proxy/brokermap.h"
#include "proxy/cluster.h"
#include "proxy/listener.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/upstream.h"

#define WORKER_CMD_RELOAD 'R' /* apply the snapshot in the slot */
#define WORKER_CMD_DRAIN 'D'  /* stop accepting, finish what is in flight */
#define WORKER_CMD_STOP 'S'   /* close everything now */
#define WORKER_CMD_TAKE 'T'   /* serve the connections in the inbox */

/* An accepted client connection on its way to another loop. */
struct worker_handoff {
    evutil_socket_t fd;           /* the client socket (the receiver owns it) */
    struct sockaddr_storage peer; /* the client's address */
    socklen_t peerlen;            /* its length */
    int32_t node_id;              /* KB_NODE_BOOTSTRAP or the broker the port serves */
    char *cluster;                /* the cluster section the listener belongs to */
    struct kb_hostport upstream;  /* node_id's broker as the sender knows it */
    bool has_upstream;            /* upstream is set */
};

struct worker {
    struct workers *set;          /* owner */
    struct kb_proxy *p;           /* this worker's proxy; used by its thread only */
    int id;                       /* 1..N-1 */
    pthread_t thread;             /* runs p's loop */
    bool started;                 /* thread was created (and must be joined) */
    bool ended;                   /* the leader heard that the thread's loop ended */
    int cmd[2];                   /* pipe: leader writes [1], the worker's loop reads [0] */
    struct event *cmd_ev;         /* read event on cmd[0], on p->base */
    pthread_mutex_t lock;         /* guards reload and the inbox */
    struct kb_conf *reload;       /* snapshot waiting to be applied (a reference), or NULL */
    struct worker_handoff *inbox; /* n_inbox connections handed to this loop */
    size_t n_inbox;               /* entries in inbox */
};

struct workers {
    struct kb_proxy *leader; /* worker 0 */
    struct worker lead;      /* the leader's own inbox (its thread is the main one) */
    struct worker *w;        /* n entries: workers 1..n */
    size_t n;                /* leader->conf->workers - 1 */
    size_t running;          /* threads the leader has not yet heard end */
    int done[2];             /* pipe: worker threads write their id, the leader reads [0] */
    struct event *done_ev;   /* read event on done[0], on the leader's base */
    atomic_bool closing;     /* draining or stopping: no more hand-overs */
};

/* The inbox of loop id (0: the leader). */
static struct worker *
workers_slot(struct workers *ws, int id)
{
    return id == 0 ? &ws->lead : &ws->w[id - 1];
}

static bool
worker_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0;
}

static void
worker_close_pipe(int fds[2])
{
    if (fds[0] >= 0) {
        close(fds[0]);
    }
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    fds[0] = fds[1] = -1;
}

/* Writes one byte to a pipe: 1, or what write() returned. */
static ssize_t
worker_write_byte(int fd, char c)
{
    ssize_t n;

    do {
        n = write(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Sends one command byte; the pipe holds 64 KiB of them, far more than can ever be pending. */
static void
worker_send(struct worker *w, char cmd)
{
    ssize_t n = worker_write_byte(w->cmd[1], cmd);

    if (n != 1) {
        log_error("worker %d: cannot send it a command: %s", w->id,
                  n < 0 ? strerror(errno) : "short write");
    }
}

/* Takes the inbox out from under the lock; the caller owns the entries. */
static struct worker_handoff *
worker_inbox_take(struct worker *w, size_t *n)
{
    struct worker_handoff *in;

    pthread_mutex_lock(&w->lock);
    in = w->inbox;
    *n = w->n_inbox;
    w->inbox = NULL;
    w->n_inbox = 0;
    pthread_mutex_unlock(&w->lock);
    return in;
}

/* In the receiving loop's thread: serve the connections handed to it. */
static void
worker_take(struct worker *w)
{
    struct kb_proxy *p = w->p;
    struct worker_handoff *in, *h;
    struct kb_cluster *cl;
    size_t n, i;

    in = worker_inbox_take(w, &n);
    for (i = 0; i < n; i++) {
        h = &in[i];
        p->registry->worker_active[w->id]--; /* the sender's reservation: bridge_new counts */
        cl = p->draining ? NULL : proxy_cluster(p, h->cluster);
        if (!cl) {
            /* Only while a reload removes the cluster or kbridge stops: the client retries. */
            cllog(KB_LOG_INFO, h->cluster,
                  "worker %d: closed a connection handed over as the "
                  "cluster went away (reload or stop)",
                  w->id);
            evutil_closesocket(h->fd);
        } else {
            if (h->node_id != KB_NODE_BOOTSTRAP && h->has_upstream &&
                !brokermap_upstream(cl->map, h->node_id)) {
                /* This loop has not seen the broker yet: learn it from the sender. */
                struct brokermap_call call = {.map = cl->map, .learn = true};
                const char *nh;
                size_t nl;
                int32_t np;
                brokermap_map(&call, h->node_id, h->upstream.host, strlen(h->upstream.host),
                              h->upstream.port, &nh, &nl, &np);
            }
            bridge_new(cl, h->fd, (const struct sockaddr *)&h->peer, h->peerlen, h->node_id);
        }
        free(h->cluster);
    }
    free(in);
}

bool
workers_handoff(struct workers *ws, struct kb_proxy *from, struct kb_cluster *cl,
                evutil_socket_t fd, const struct sockaddr *peer, socklen_t peerlen, int32_t node_id)
{
    struct kb_registry *r = from->registry;
    int me = from->worker_id, best = me, i;
    struct worker_handoff h, *grown;
    const struct kb_hostport *up;
    struct worker *to;

    if (!ws || from->draining || atomic_load(&ws->closing) || peerlen > sizeof(h.peer)) {
        return false;
    }
    for (i = 0; i <= (int)ws->n && i < KB_METRICS_WORKERS; i++) {
        if (r->worker_active[i] < r->worker_active[best]) {
            best = i;
        }
    }
    if (best == me) {
        return false; /* no loop has fewer connections than this one */
    }
    memset(&h, 0, sizeof(h));
    h.fd = fd;
    memcpy(&h.peer, peer, peerlen);
    h.peerlen = peerlen;
    h.node_id = node_id;
    h.cluster = strdup(cl->name);
    up = node_id == KB_NODE_BOOTSTRAP ? NULL : brokermap_upstream(cl->map, node_id);
    if (up) {
        h.upstream = *up;
        h.has_upstream = true;
    }
    to = workers_slot(ws, best);
    pthread_mutex_lock(&to->lock);
    grown = h.cluster ? realloc(to->inbox, (to->n_inbox + 1) * sizeof(*grown)) : NULL;
    if (grown) {
        to->inbox = grown;
        to->inbox[to->n_inbox++] = h;
    }
    pthread_mutex_unlock(&to->lock);
    if (!grown) {
        free(h.cluster);
        return false; /* out of memory: serve it here */
    }
    r->worker_active[best]++; /* reserved now, so the next accept anywhere counts it */
    worker_send(to, WORKER_CMD_TAKE);
    return true;
}

/* In the worker's thread: run every command the leader sent. */
static void
worker_on_cmd(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct kb_conf *conf;
    char cmds[64];
    ssize_t n, i;

    (void)what;
    while ((n = read(fd, cmds, sizeof(cmds))) > 0) {
        for (i = 0; i < n; i++) {
            switch (cmds[i]) {
            case WORKER_CMD_RELOAD:
                pthread_mutex_lock(&w->lock);
                conf = w->reload;
                w->reload = NULL;
                pthread_mutex_unlock(&w->lock);
                if (conf) {
                    proxy_worker_reload(w->p, conf);
                    conf_unref(conf);
                }
                break;
            case WORKER_CMD_DRAIN:
                proxy_start_drain(w->p);
                break;
            case WORKER_CMD_TAKE:
                worker_take(w);
                break;
            default:
                proxy_stop_now(w->p);
                break;
            }
        }
    }
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    proxy_run(w->p);
    worker_write_byte(w->set->done[1], (char)w->id);
    return NULL;
}

/* In the leader's thread: worker threads whose loops ended. */
static void
workers_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct workers *ws = arg;
    unsigned char ids[64];
    ssize_t n, i;

    (void)what;
    while ((n = read(fd, ids, sizeof(ids))) > 0) {
        for (i = 0; i < n; i++) {
            if (ids[i] >= 1 && ids[i] <= ws->n && !ws->w[ids[i] - 1].ended) {
                ws->w[ids[i] - 1].ended = true;
                ws->running--;
            }
        }
    }
    if (!ws->leader->draining && ws->running < ws->n) {
        log_error("a worker's event loop ended unexpectedly; stopping");
        ws->leader->failed = true;
        proxy_stop_now(ws->leader);
        return;
    }
    proxy_bridge_closed(ws->leader);
}

/* Sets up loop id's command pipe and inbox on p's base; w owns p from here on. */
static bool
worker_inbox_open(struct workers *ws, struct worker *w, int id, struct kb_proxy *p, char *err,
                  size_t errlen)
{
    w->set = ws;
    w->id = id;
    w->p = p;
    pthread_mutex_init(&w->lock, NULL);
    if (!worker_pipe(w->cmd)) {
        snprintf(err, errlen, "cannot set up worker %d: %s", id, strerror(errno));
        return false;
    }
    w->cmd_ev = event_new(p->base, w->cmd[0], EV_READ | EV_PERSIST, worker_on_cmd, w);
    if (!w->cmd_ev || event_add(w->cmd_ev, NULL) != 0) {
        snprintf(err, errlen, "cannot set up worker %d: out of memory", id);
        return false;
    }
    return true;
}

/* Closes loop w's pipe, inbox (connections still in it are closed) and, except for the
 * leader's, its proxy. */
static void
worker_inbox_close(struct worker *w, bool free_proxy)
{
    struct worker_handoff *in;
    size_t n, i;

    if (w->cmd_ev) {
        event_free(w->cmd_ev);
        w->cmd_ev = NULL;
    }
    if (free_proxy) {
        proxy_free(w->p);
    }
    w->p = NULL;
    worker_close_pipe(w->cmd);
    conf_unref(w->reload);
    w->reload = NULL;
    if (w->set) {
        in = worker_inbox_take(w, &n);
        for (i = 0; i < n; i++) {
            evutil_closesocket(in[i].fd);
            free(in[i].cluster);
        }
        free(in);
        pthread_mutex_destroy(&w->lock);
        w->set = NULL;
    }
}

struct workers *
workers_start(struct kb_proxy *leader, char *err, size_t errlen)
{
    struct workers *ws = calloc(1, sizeof(*ws));
    sigset_t all, old;
    size_t i;
    int rc;

    if (!ws) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ws->leader = leader;
    ws->n = (size_t)leader->conf->workers - 1;
    ws->done[0] = ws->done[1] = -1;
    ws->lead.cmd[0] = ws->lead.cmd[1] = -1;
    ws->w = calloc(ws->n, sizeof(*ws->w));
    if (!ws->w || !worker_pipe(ws->done)) {
        snprintf(err, errlen, "cannot set up workers: %s", strerror(errno));
        goto fail;
    }
    for (i = 0; i < ws->n; i++) {
        ws->w[i].cmd[0] = ws->w[i].cmd[1] = -1;
    }
    ws->done_ev = event_new(leader->base, ws->done[0], EV_READ | EV_PERSIST, workers_on_done, ws);
    if (!ws->done_ev || event_add(ws->done_ev, NULL) != 0 ||
        !worker_inbox_open(ws, &ws->lead, 0, leader, err, errlen)) {
        snprintf(err, errlen, "cannot set up workers: out of memory");
        goto fail;
    }
    /* Build every worker before any thread runs: a port or file problem fails start-up. */
    for (i = 0; i < ws->n; i++) {
        struct kb_proxy *wp = proxy_new_worker(leader, (int)i + 1, err, errlen);
        if (!wp) {
            goto fail;
        }
        if (!worker_inbox_open(ws, &ws->w[i], (int)i + 1, wp, err, errlen)) {
            goto fail;
        }
        wp->peers = ws;
    }
    leader->peers = ws;
    if (!upstream_threads_prepare()) {
        snprintf(err, errlen, "cannot set up workers: out of memory");
        goto fail;
    }
    /* Signals go to the leader's thread only (its libevent signal events). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (i = 0; i < ws->n; i++) {
        rc = pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]);
        if (rc != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            snprintf(err, errlen, "cannot start worker %zu: %s", i + 1, strerror(rc));
            goto fail;
        }
        ws->w[i].started = true;
        ws->running++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    log_info("%zu more worker%s started: %d event loops share every listening port "
             "(SO_REUSEPORT)",
             ws->n, ws->n == 1 ? "" : "s", leader->conf->workers);
    return ws;
fail:
    workers_free(ws);
    return NULL;
}

void
workers_reload(struct workers *ws, struct kb_conf *conf)
{
    struct kb_conf *old;
    size_t i;

    for (i = 0; ws && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        pthread_mutex_lock(&w->lock);
        old = w->reload;
        w->reload = conf_ref(conf);
        pthread_mutex_unlock(&w->lock);
        conf_unref(old); /* a reload it never got to: the newer one replaces it */
        worker_send(w, WORKER_CMD_RELOAD);
    }
}

/* Ends hand-overs and sends cmd to every worker thread still running. */
static void
workers_tell_all(struct workers *ws, char cmd)
{
    size_t i;

    if (!ws) {
        return;
    }
    atomic_store(&ws->closing, true);
    for (i = 0; ws->w && i < ws->n; i++) {
        if (ws->w[i].started && !ws->w[i].ended) {
            worker_send(&ws->w[i], cmd);
        }
    }
}

void
workers_drain(struct workers *ws)
{
    workers_tell_all(ws, WORKER_CMD_DRAIN);
}

void
workers_stop(struct workers *ws)
{
    workers_tell_all(ws, WORKER_CMD_STOP);
}

size_t
workers_running(const struct workers *ws)
{
    return ws ? ws->running : 0;
}

void
workers_free(struct workers *ws)
{
    size_t i;

    if (!ws) {
        return;
    }
    workers_stop(ws);
    /* Join every thread before freeing any: a worker still running may hand a connection to
     * another one's inbox (workers_handoff), which must still be there. */
    for (i = 0; ws->w && i < ws->n; i++) {
        if (ws->w[i].started) {
            pthread_join(ws->w[i].thread, NULL);
        }
    }
    for (i = 0; ws->w && i < ws->n; i++) {
        /* Every thread has ended (or never ran): their proxies are ours to free now. */
        worker_inbox_close(&ws->w[i], true);
    }
    worker_inbox_close(&ws->lead, false);
    if (ws->done_ev) {
        event_free(ws->done_ev);
    }
    worker_close_pipe(ws->done);
    free(ws->w);
    free(ws);
}
