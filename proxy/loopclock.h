/*
 * loopclock.h - the event loop's own monotonic clock: one clock read per loop wakeup instead of
 * one per request and response (issue 16: per-event cost at small frames).
 *
 * loopclock_now() reads CLOCK_MONOTONIC at its first call in a wakeup of the loop and returns
 * that value until the callbacks active at that moment have run: the first read makes an
 * internal event active, queued behind them, which forgets the value before the loop waits
 * again. The value is per thread (each worker runs its own loop under loopclock_run()).
 *
 * Not libevent's cached time (event_base_gettimeofday_cached()): it is wall-clock based
 * (libevent's monotonic reading plus an offset re-synced with gettimeofday() every few seconds,
 * so a wall-clock step would show up inside a latency), and by default its monotonic part is
 * CLOCK_MONOTONIC_COARSE (4 ms steps here, coarser than the first latency bucket). Nor
 * libevent's precise timer to tell wakeups apart by that time: with epoll it arms a timerfd
 * before every wait, a system call per wakeup (measured: 116k timerfd_settime per GB of 1 KiB
 * Produce). Nor EVLOOP_ONCE as the per-wakeup hook: each call clears libevent's time cache, so
 * libevent reads the clock twice per wakeup, and a call only returns once no callback is queued,
 * which under load need not happen between two waits.
 *
 * What a latency measured with it means: both ends are stamped at the first use of the clock
 * in their wakeup, so each end is early by at most the callbacks that ran before it in that
 * wakeup. The error of a difference is bounded by one wakeup's processing time (microseconds
 * at low load); the broker's round trip, which is what the metric is for, is measured in full.
 */
#ifndef KB_PROXY_LOOPCLOCK_H
#define KB_PROXY_LOOPCLOCK_H

struct event_base;

/* Monotonic seconds, read once per wakeup of the calling thread's loop (see above). Outside
 * loopclock_run() it reads the clock on every call. */
double loopclock_now(void);

/* event_base_dispatch(base) with the cache above; returns what it returns. */
int loopclock_run(struct event_base *base);

#endif
