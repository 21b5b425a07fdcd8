/*
 * loopclock.c - the event loop's cached monotonic clock (see loopclock.h).
 */
#include "proxy/loopclock.h"

#include <stdbool.h>

#include <event2/event.h>

#include "proxy/metrics.h"

static _Thread_local struct event_base *loop_base; /* inside loopclock_run(): its base */
static _Thread_local struct timeval loop_wakeup;   /* libevent's time of the cached wakeup */
static _Thread_local double loop_now;              /* the clock at its first read in it */
static _Thread_local bool loop_cached;             /* loop_wakeup and loop_now are set */

void
loopclock_configure(struct event_config *cfg)
{
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
}

double
loopclock_now(void)
{
    struct timeval tv;

    if (!loop_base || event_base_gettimeofday_cached(loop_base, &tv) != 0) {
        return metrics_now();
    }
    if (loop_cached && tv.tv_sec == loop_wakeup.tv_sec && tv.tv_usec == loop_wakeup.tv_usec) {
        return loop_now; /* the same wakeup */
    }
    loop_wakeup = tv;
    loop_now = metrics_now();
    loop_cached = true;
    return loop_now;
}

int
loopclock_run(struct event_base *base)
{
    int rc;

    loop_base = base;
    loop_cached = false;
    rc = event_base_dispatch(base);
    loop_base = NULL;
    loop_cached = false;
    return rc;
}
