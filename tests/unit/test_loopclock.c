/*
 * test_loopclock.c - the event loop's cached monotonic clock (proxy/loopclock.h): one value per
 * wakeup, a fresh one in the next wakeup (also when wakeups come faster than libevent's coarse
 * clock ticks), and loopclock_run() ends as event_base_dispatch().
 */
#include "proxy/loopclock.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proxy/metrics.h"
#include "proxy/proxy.h"
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

    p.base = proxy_base_new();
    CHECK(p.base != NULL);
    p.ev = evtimer_new(p.base, on_timer, &p);
    CHECK(p.ev != NULL && evtimer_add(p.ev, &tv) == 0);
    CHECK_EQ_INT(loopclock_run(p.base), 0); /* ended by loopexit */
    CHECK_EQ_INT(p.wakeups, 3);
    for (i = 0; i < 3; i++) {
        CHECK(p.again[i] == p.first[i]);     /* one clock read per wakeup */
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
    struct event_base *base = proxy_base_new();
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

struct pinger {
    struct event_base *base;
    int fds[2];
    int wakeups;
    double at[5]; /* loopclock_now() in each wakeup */
};

/* Each wakeup reads the clock, works 200 us and makes the next wakeup (a byte to itself). */
static void
on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct pinger *p = arg;
    char b;
    double t;

    (void)what;
    if (read(fd, &b, 1) != 1) {
        event_base_loopbreak(p->base);
        return;
    }
    p->at[p->wakeups++] = loopclock_now();
    t = metrics_now();
    while (metrics_now() - t < 0.0002) {
    }
    if (p->wakeups == 5 || write(p->fds[1], "x", 1) != 1) {
        event_base_loopbreak(p->base);
    }
}

static void
test_loopclock_wakeups_faster_than_coarse_ticks(void)
{
    struct pinger p = {0};
    struct event *ev;
    int i;

    p.base = proxy_base_new();
    CHECK(p.base != NULL);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, p.fds) == 0);
    ev = event_new(p.base, p.fds[0], EV_READ | EV_PERSIST, on_ping, &p);
    CHECK(ev != NULL && event_add(ev, NULL) == 0);
    CHECK(write(p.fds[1], "x", 1) == 1);
    CHECK_EQ_INT(loopclock_run(p.base), 0);
    CHECK_EQ_INT(p.wakeups, 5);
    for (i = 1; i < 5; i++) {
        /* 5 wakeups in about 1 ms, inside one tick of CLOCK_MONOTONIC_COARSE: still 5 values */
        CHECK(p.at[i] - p.at[i - 1] >= 0.0002);
    }
    event_free(ev);
    close(p.fds[0]);
    close(p.fds[1]);
    event_base_free(p.base);
}

int
main(void)
{
    RUN(test_loopclock_one_value_per_wakeup);
    RUN(test_loopclock_wakeups_faster_than_coarse_ticks);
    RUN(test_loopclock_run_ends_like_dispatch);
    return TEST_DONE();
}
