/*
 * loopclock.c - the event loop's cached monotonic clock (see loopclock.h).
 */
#include "proxy/loopclock.h"

#include <stdbool.h>

#include <event2/event.h>

#include "proxy/metrics.h"

static _Thread_local double loop_now;   /* the clock at its first read in this wakeup */
static _Thread_local bool loop_cached;  /* loop_now holds this wakeup's value */
static _Thread_local bool loop_running; /* inside loopclock_run(): the cache is forgotten */

double
loopclock_now(void)
{
    if (!loop_running) {
        return metrics_now();
    }
    if (!loop_cached) {
        loop_now = metrics_now();
        loop_cached = true;
    }
    return loop_now;
}

int
loopclock_run(struct event_base *base)
{
    int rc;

    loop_running = true;
    for (;;) {
        loop_cached = false;
        rc = event_base_loop(base, EVLOOP_ONCE);
        if (rc != 0 || event_base_got_exit(base) || event_base_got_break(base)) {
            break;
        }
    }
    loop_cached = false;
    loop_running = false;
    return rc;
}
