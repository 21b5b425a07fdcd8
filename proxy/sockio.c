/*
 * sockio.c - see sockio.h. These touch two things libevent 2.1 keeps public but rarely used:
 * the bufferevent's ev_write event (bufferevent_struct.h) and the freeze on a bufferevent's
 * ends of a bufferevent's buffers, which is lifted only for the duration of our own I/O.
 */
#include "proxy/sockio.h"

#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>

#define SOCKIO_LIBEVENT_READ 4096 /* libevent 2.1's EVBUFFER_MAX_READ */

void
sockio_flush(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    int written;

    if (fd < 0 || evbuffer_get_length(out) == 0 || !(bufferevent_get_enabled(bev) & EV_WRITE)) {
        return;
    }
    /* The bufferevent freezes its output's start; lift that for our own write only. A write
     * error or a full socket leaves the data queued: libevent's own write reports the error,
     * or waits for room. */
    evbuffer_unfreeze(out, 1);
    written = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (written > 0 && evbuffer_get_length(out) == 0) {
        event_del(&bev->ev_write);
        /* Cancelling the write event also cancels the write callback libevent would have run
         * once the output drained, and someone may be waiting for it: the bridge resumes the
         * other side's reads from it (the low watermark). Run it as libevent would, deferred,
         * so the caller is not re-entered. */
        bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
    }
}

size_t
sockio_read_more(struct bufferevent *bev, size_t max)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    ssize_t got = 0;
    size_t added = 0;
    int n, i;

    if (fd < 0 || evbuffer_get_length(in) < SOCKIO_LIBEVENT_READ) {
        return 0;
    }
    evbuffer_unfreeze(in, 0);
    n = evbuffer_reserve_space(in, (ev_ssize_t)max, v, 2);
    if (n > 0) {
        for (i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        got = readv(fd, iov, n);
        for (i = 0; i < n; i++) {
            size_t take = got > 0 ? ((size_t)got < v[i].iov_len ? (size_t)got : v[i].iov_len) : 0;
            v[i].iov_len = take;
            got -= got > 0 ? (ssize_t)take : 0;
            added += take;
        }
        evbuffer_commit_space(in, v, n);
    }
    evbuffer_freeze(in, 0);
    return added;
}
