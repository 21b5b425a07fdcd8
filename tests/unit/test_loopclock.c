/*
 * test_loopclock.c - the event loop's cached monotonic clock (proxy/loopclock.h): one value per
 * wakeup, a fresh one in the next wakeup, and loopclock_run() ends as event_base_dispatch().
 */
#include "proxy/loopclock.h"

#include <time.h>

#include <event2/event.h>

#include "proxy/metrics.h"
#include "test.h"

struct probe {
    struct event_base *base;
    struct event *ev;
    int wakeups;         /* callbacks seen */
    double first[3];     /* loopclock_now() at the start of each wakeup */
    double again[3];     /* ... and again after 2 ms of work in the same wakeup */
    double real_then[3]; /* metrics_now() just before the first loopclock_now() */
};

static void
sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};

    nanosleep(&ts, NULL);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    struct timeval tv = {0, 5000};
    int i = p->wakeups++;

    (void)fd;
    (void)what;
    p->real_then[i] = metrics_now();
    p->first[i] = loopclock_now();
    sleep_ms(2); /* work inside the wakeup: the cached value must not move */
    p->again[i] = loopclock_now();
    if (p->wakeups < 3) {
        evtimer_add(p->ev, &tv); /* next wakeup in 5 ms */
    } else {
        event_base_loopexit(p->base, NULL);
    }
}

static void
test_loopclock_one_value_per_wakeup(void)
{
    struct probe p = {0};
    struct timeval tv = {0, 1000};
    int i;

    p.base = event_base_new();
    CHECK(p.base != NULL);
    p.ev = evtimer_new(p.base, on_timer, &p);
    CHECK(p.ev != NULL && evtimer_add(p.ev, &tv) == 0);
    CHECK_EQ_INT(loopclock_run(p.base), 0); /* ended by loopexit */
    CHECK_EQ_INT(p.wakeups, 3);
    for (i = 0; i < 3; i++) {
        CHECK(p.again[i] == p.first[i]);   /* one clock read per wakeup */
        CHECK(p.first[i] >= p.real_then[i]); /* read in this wakeup, not before it */
    }
    for (i = 1; i < 3; i++) {
        /* a new wakeup reads the clock again: it comes after the previous one's 2 ms of work */
        CHECK(p.first[i] - p.first[i - 1] >= 0.002);
    }
    /* Outside the loop every call reads the clock. */
    {
        double a = loopclock_now();
        sleep_ms(1);
        CHECK(loopclock_now() - a >= 0.001);
    }
    event_free(p.ev);
    event_base_free(p.base);
}

static void
on_break(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void
test_loopclock_run_ends_like_dispatch(void)
{
    struct event_base *base = event_base_new();
    struct timeval tv = {0, 1000};
    struct event *ev;

    CHECK(base != NULL);
    CHECK_EQ_INT(loopclock_run(base), 1); /* nothing to wait for */
    ev = evtimer_new(base, on_break, base);
    CHECK(ev != NULL && evtimer_add(ev, &tv) == 0);
    CHECK_EQ_INT(loopclock_run(base), 0); /* ended by loopbreak */
    event_free(ev);
    event_base_free(base);
}

int
main(void)
{
    RUN(test_loopclock_one_value_per_wakeup);
    RUN(test_loopclock_run_ends_like_dispatch);
    return TEST_DONE();
}
