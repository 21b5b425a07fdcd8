/*
 * tlspipe.h - the broker side's TLS transport, without a filter bufferevent. One socket, one
 * SSL and two flat buffers:
 *   to the broker: the plaintext the bridge queues is SSL_written in full 16 KiB records (a
 *     partial one only at the end of a burst) through a custom BIO that appends the ciphertext
 *     to one flat, reused buffer, which leaves in one send() per batch of up to 256 KiB;
 *   from the broker: one recv() of up to 256 KiB per wakeup into a per-thread buffer, which
 *     the same BIO serves to SSL_read, whose plaintext lands straight in an evbuffer chain.
 * Everything above it keeps using a struct bufferevent: the pipe hands out one end of a
 * bufferevent pair (chains move between the two ends without a copy) and runs on the other.
 *
 * Flow control: while the socket does not take the last batch, the pipe stops taking
 * plaintext from the pair, so it waits in the outer end's output, where the bridge's
 * watermarks see it; the rest goes as soon as the socket has room (a write event), with no
 * new data needed. While the outer end does not read, the socket is not read either.
 *
 * Kernel TLS (not built: this host cannot test it): after the handshake a variant would hand
 * the record keys to the socket (setsockopt TCP_ULP "tls" + TLS_TX/TLS_RX) in tlspipe_ready()
 * and replace the two places that call SSL: tlspipe_encrypt_batch() would send the pair's
 * plaintext chains with one writev (or splice), tlspipe_decrypt() would recv() plaintext
 * into the pair. Nothing above the pipe would change.
 */
#ifndef KB_PROXY_TLSPIPE_H
#define KB_PROXY_TLSPIPE_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/util.h>
#include <openssl/ssl.h>

struct bufferevent;
struct event_base;
struct tlspipe;

#define TLSPIPE_MAX_ERRS 8 /* OpenSSL errors kept from a failed handshake */

/* Why a handshake failed, for tlserr_classify(). */
struct tlspipe_fail {
    unsigned long errs[TLSPIPE_MAX_ERRS]; /* OpenSSL error codes, oldest first */
    size_t n_errs;                        /* entries in errs */
    int sock_err;                         /* errno of a failed send/recv, else 0 */
    bool eof;                             /* the broker closed the connection */
};

/*
 * The handshake's outcome, called once from the loop. On success bev is the pipe's outer end
 * (owned by the callee from now on: free it with tlspipe_bev_free) and fail is NULL. On
 * failure bev is NULL and the pipe is still the caller's, to tlspipe_abort().
 */
typedef void (*tlspipe_done_fn)(void *arg, struct bufferevent *bev,
                                const struct tlspipe_fail *fail);

/* Builds the BIO method and the per-thread read buffer's key, once (tlspipe_start also calls
 * it). false when out of memory. */
bool tlspipe_init(void);

/*
 * Starts the client handshake on the connected socket fd with ssl (its names and verification
 * already set). Takes fd and ssl in every case; NULL when out of memory (both are gone).
 */
struct tlspipe *tlspipe_start(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                              tlspipe_done_fn done, void *arg);

/* Frees a pipe whose handshake has not succeeded (done will not be called). NULL is fine. */
void tlspipe_abort(struct tlspipe *p);

/* Frees an upstream bufferevent: a pipe's outer end with its pipe, any other as usual. */
void tlspipe_bev_free(struct bufferevent *bev);

/* The SSL behind a pipe's outer end, or NULL (not a pipe: tls = off). */
SSL *tlspipe_bev_ssl(struct bufferevent *bev);

/* Bytes the pipe took from the outer end and has not written to the socket yet. */
size_t tlspipe_bev_unsent(struct bufferevent *bev);

#endif
