/*
 * worker.c - the extra event loops of workers = N (see worker.h). The leader talks to each
 * worker through a pipe of one-byte commands; a reload's snapshot waits in a mutex-guarded
 * slot. Each worker thread writes its id to the leader's pipe when its loop has ended, so the
 * leader's loop (and a drain) can tell when every worker is done.
 */
#include "proxy/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "proxy/log.h"
#include "proxy/proxy.h"

#define WORKER_CMD_RELOAD 'R' /* apply the snapshot in the slot */
#define WORKER_CMD_DRAIN 'D'  /* stop accepting, finish what is in flight */
#define WORKER_CMD_STOP 'S'   /* close everything now */

struct worker {
    struct workers *set;    /* owner */
    struct kb_proxy *p;     /* this worker's proxy; used by its thread only */
    int id;                 /* 1..N-1 */
    pthread_t thread;       /* runs p's loop */
    bool started;           /* thread was created (and must be joined) */
    bool ended;             /* the leader heard that the thread's loop ended */
    int cmd[2];             /* pipe: leader writes [1], the worker's loop reads [0] */
    struct event *cmd_ev;   /* read event on cmd[0], on p->base */
    pthread_mutex_t lock;   /* guards reload */
    struct kb_conf *reload; /* snapshot waiting to be applied (a reference), or NULL */
};

struct workers {
    struct kb_proxy *leader; /* worker 0 */
    struct worker *w;        /* n entries: workers 1..n */
    size_t n;                /* leader->conf->workers - 1 */
    size_t running;          /* threads the leader has not yet heard end */
    int done[2];             /* pipe: worker threads write their id, the leader reads [0] */
    struct event *done_ev;   /* read event on done[0], on the leader's base */
};

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

/* Sends one command byte; the pipe holds 64 KiB of them, far more than can ever be pending. */
static void
worker_send(struct worker *w, char cmd)
{
    ssize_t n;

    do {
        n = write(w->cmd[1], &cmd, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        log_error("worker %d: cannot send it a command: %s", w->id,
                  n < 0 ? strerror(errno) : "short write");
    }
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
    char id = (char)w->id;
    ssize_t n;

    proxy_run(w->p);
    do {
        n = write(w->set->done[1], &id, 1);
    } while (n < 0 && errno == EINTR);
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
    ws->w = calloc(ws->n, sizeof(*ws->w));
    if (!ws->w || !worker_pipe(ws->done)) {
        snprintf(err, errlen, "cannot set up workers: %s", strerror(errno));
        goto fail;
    }
    for (i = 0; i < ws->n; i++) {
        ws->w[i].cmd[0] = ws->w[i].cmd[1] = -1;
    }
    ws->done_ev = event_new(leader->base, ws->done[0], EV_READ | EV_PERSIST, workers_on_done, ws);
    if (!ws->done_ev || event_add(ws->done_ev, NULL) != 0) {
        snprintf(err, errlen, "cannot set up workers: out of memory");
        goto fail;
    }
    /* Build every worker before any thread runs: a port or file problem fails start-up. */
    for (i = 0; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        w->set = ws;
        w->id = (int)i + 1;
        pthread_mutex_init(&w->lock, NULL);
        w->p = proxy_new_worker(leader, w->id, err, errlen);
        if (!w->p) {
            goto fail;
        }
        if (!worker_pipe(w->cmd)) {
            snprintf(err, errlen, "cannot set up worker %d: %s", w->id, strerror(errno));
            goto fail;
        }
        w->cmd_ev = event_new(w->p->base, w->cmd[0], EV_READ | EV_PERSIST, worker_on_cmd, w);
        if (!w->cmd_ev || event_add(w->cmd_ev, NULL) != 0) {
            snprintf(err, errlen, "cannot set up worker %d: out of memory", w->id);
            goto fail;
        }
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

void
workers_drain(struct workers *ws)
{
    size_t i;

    for (i = 0; ws && i < ws->n; i++) {
        worker_send(&ws->w[i], WORKER_CMD_DRAIN);
    }
}

void
workers_stop(struct workers *ws)
{
    size_t i;

    for (i = 0; ws && i < ws->n; i++) {
        if (ws->w[i].started && !ws->w[i].ended) {
            worker_send(&ws->w[i], WORKER_CMD_STOP);
        }
    }
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
    for (i = 0; ws->w && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->started) {
            if (!w->ended) {
                worker_send(w, WORKER_CMD_STOP);
            }
            pthread_join(w->thread, NULL);
        }
        /* The thread has ended (or never ran): its proxy is ours to free now. */
        if (w->cmd_ev) {
            event_free(w->cmd_ev);
        }
        proxy_free(w->p);
        worker_close_pipe(w->cmd);
        conf_unref(w->reload);
        if (w->set) {
            pthread_mutex_destroy(&w->lock);
        }
    }
    if (ws->done_ev) {
        event_free(ws->done_ev);
    }
    worker_close_pipe(ws->done);
    free(ws->w);
    free(ws);
}
