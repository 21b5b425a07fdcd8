/*
 * sockio.h - two shortcuts around libevent 2.1's socket bufferevent, which waits for the next
 * loop turn (and an EPOLLOUT registration) before writing anything, and reads at most 4 KiB per
 * readable event. Both act on a plain socket bufferevent: the client side, or the socket under
 * the TLS filter on the broker side.
 */
#ifndef KB_PROXY_SOCKIO_H
#define KB_PROXY_SOCKIO_H

#include <stddef.h>

#include <event2/bufferevent.h>

/*
 * Writes bev's pending output to its socket now. If that empties it, the write event the
 * bufferevent registered when the data was added is cancelled (with the epoll changelist, that
 * costs no system call) and bev's write callback runs, deferred, as libevent's own write would
 * have run it (a TLS filter over bev waits for that callback to move its next records down).
 * Whatever the socket does not take stays queued for libevent as usual.
 */
void sockio_flush(struct bufferevent *bev);

/*
 * After a read that filled libevent's 4 KiB, reads up to max more bytes straight into bev's
 * input buffer (one readv), so large frames arrive in large chains. EOF and errors are left
 * for libevent's next read to report. Returns the bytes added.
 */
size_t sockio_read_more(struct bufferevent *bev, size_t max);

/*
 * A read tap on the socket under a filter bufferevent (the TLS filter): each readable event
 * first tops the socket's input up with sockio_read_more(), then runs the filter's own
 * callbacks. Lives as long as the filter; install once, after the filter is set up.
 */
struct sockio_tap {
    bufferevent_data_cb read;   /* the filter's callbacks on its underlying bufferevent */
    bufferevent_data_cb write;  /* ... */
    bufferevent_event_cb event; /* ... */
    void *arg;                  /* ... and their argument */
    size_t more;                /* top-up size */
};

void sockio_tap_install(struct sockio_tap *tap, struct bufferevent *under, size_t more);

#endif
