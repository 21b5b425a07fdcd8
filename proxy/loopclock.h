/*
 * loopclock.h - the event loop's own monotonic clock: one clock read per loop wakeup instead of
 * one per request and response (issue 16: per-event cost at small frames).
 *
 * libevent already reads the clock once per wakeup and keeps that time while the wakeup's
 * callbacks run (event_base_gettimeofday_cached()). That value is not used as the time itself:
 * it is wall-clock based (libevent's monotonic reading plus an offset it re-syncs with
 * gettimeofday() every few seconds, so a wall-clock step would show up inside a latency), and
 * by default its monotonic part is CLOCK_MONOTONIC_COARSE (4 ms steps here, coarser than the
 * first latency bucket). It is used only to tell one wakeup from the next: loopclock_configure()
 * makes libevent read the precise clock, so two wakeups give different values (two wakeups
 * within the same microsecond would share a reading, an error below a microsecond).
 * loopclock_now() reads CLOCK_MONOTONIC at its first call in a wakeup and returns that value
 * for the rest of it; the value is per thread (each worker runs its own loop).
 *
 * What a latency measured with it means: both ends are stamped at the first use of the clock
 * in their wakeup, so each end is early by at most the callbacks that ran before it in that
 * wakeup. The error of a difference is bounded by one wakeup's processing time (microseconds
 * at low load); the broker's round trip, which is what the metric is for, is measured in full.
 */
#ifndef KB_PROXY_LOOPCLOCK_H
#define KB_PROXY_LOOPCLOCK_H

struct event_base;
struct event_config;

/* Sets what loopclock needs on a base's configuration (libevent's precise timer). */
void loopclock_configure(struct event_config *cfg);

/* Monotonic seconds, read once per wakeup of the calling thread's loop (see above). Outside
 * loopclock_run() it reads the clock on every call. */
double loopclock_now(void);

/* event_base_dispatch(base) with the cache above; base must be made with a configuration
 * loopclock_configure() has set. Returns what event_base_dispatch() returns. */
int loopclock_run(struct event_base *base);

#endif
