/*
 * loopclock.c - the event loop's cached monotonic clock (see loopclock.h).
 */
#include "proxy/loopclock.h"

#include <stdbool.h>

#include <event2/event.h>

#include "proxy/metrics.h"

static _Thread_local double loop_now;           /* the clock at its first read in this wakeup */
static _Thread_local bool loop_cached;          /* loop_now holds this wakeup's value */
static _Thread_local struct event *loop_forget; /* inside loopclock_run(): forgets loop_now */

/* Runs after the callbacks that were active when the clock was read, before the next wait. */
static void
loopclock_on_forget(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    loop_cached = false;
}

double
loopclock_now(void)
{
    if (loop_cached) {
        return loop_now;
    }
    loop_now = metrics_now();
    if (loop_forget) {
        event_active(loop_forget, 0, 0);
        loop_cached = true;
    }
    return loop_now;
}

int
loopclock_run(struct event_base *base)
{
    int rc;

    /* EV_PERSIST: never added, and run without the event_del() a one-shot event costs. Without
     * it (out of memory) every call reads the clock: slower, still right. */
    loop_forget = event_new(base, -1, EV_PERSIST, loopclock_on_forget, NULL);
    rc = event_base_dispatch(base);
    if (loop_forget) {
        event_free(loop_forget);
        loop_forget = NULL;
    }
    loop_cached = false;
    return rc;
}
