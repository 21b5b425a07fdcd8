/*
 * loopclock.h - the event loop's own monotonic clock: one clock read per loop wakeup instead of
 * one per request and response (issue 16: per-event cost at small frames).
 *
 * loopclock_run() runs a base one wakeup at a time (EVLOOP_ONCE) and forgets the cached time
 * after each; loopclock_now() reads CLOCK_MONOTONIC at its first call in a wakeup and returns
 * that value for the rest of it. The value is per thread (each worker runs its own loop).
 *
 * Why not libevent's cache: event_base_gettimeofday_cached() is wall-clock based (monotonic
 * plus an offset libevent re-syncs every few seconds, so a clock step would show up as a
 * latency), and without EVENT_BASE_FLAG_PRECISE_TIMER its monotonic part is
 * CLOCK_MONOTONIC_COARSE (jiffies: several milliseconds, coarser than the first latency bucket).
 *
 * What a latency measured with it means: both ends are stamped at the first use of the clock in
 * their wakeup, so each end is early by at most the callbacks that ran before it in that
 * wakeup. The error of a difference is bounded by one wakeup's processing time (microseconds
 * at low load); the broker's round trip, which is what the metric is for, is measured in full.
 */
#ifndef KB_PROXY_LOOPCLOCK_H
#define KB_PROXY_LOOPCLOCK_H

struct event_base;

/* Monotonic seconds, read once per wakeup of the calling thread's loop (see above). Outside
 * loopclock_run() it reads the clock on every call. */
double loopclock_now(void);

/* event_base_dispatch(), one wakeup at a time: returns as it would (-1 on error, 0 after
 * loopexit/loopbreak, 1 when no events are left). */
int loopclock_run(struct event_base *base);

#endif
