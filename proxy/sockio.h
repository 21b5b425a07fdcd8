/*
 * sockio.h - two shortcuts around libevent 2.1's socket bufferevent, which waits for the next
 * loop turn (and an EPOLLOUT registration) before writing anything, and reads at most 4 KiB per
 * readable event. Both act on a plain socket bufferevent: the client side, or the broker with
 * tls = off (with TLS, proxy/tlspipe.c does its own I/O).
 */
#ifndef KB_PROXY_SOCKIO_H
#define KB_PROXY_SOCKIO_H

#include <stddef.h>

#include <event2/bufferevent.h>

/*
 * Writes bev's pending output to its socket now. If that empties it, the write event the
 * bufferevent registered when the data was added is cancelled (with the epoll changelist, that
 * costs no system call) and bev's write callback runs, deferred, as libevent's own write would
 * have run it (whoever waits for the drain, e.g. the bridge's low watermark).
 * Whatever the socket does not take stays queued for libevent as usual.
 */
void sockio_flush(struct bufferevent *bev);

/*
 * After a read that filled libevent's 4 KiB, reads up to max more bytes straight into bev's
 * input buffer (one readv), so large frames arrive in large chains. EOF and errors are left
 * for libevent's next read to report. Returns the bytes added.
 */
size_t sockio_read_more(struct bufferevent *bev, size_t max);

#endif
