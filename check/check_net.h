/*
 * check_net.h - blocking-with-a-deadline network helpers for `kbridge check`: a TCP connect
 * that tells refused from timed out, and whole reads and writes over a plain socket or TLS.
 * The daemon never uses these: it is event-driven (proxy/upstream.c).
 */
#ifndef KB_CHECK_CHECK_NET_H
#define KB_CHECK_CHECK_NET_H

#include <stdbool.h>
#include <stddef.h>

#include <netdb.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

/* One open connection: a non-blocking socket, with TLS on it when ssl is set. */
struct check_conn {
    int fd;   /* the socket (owned), -1 when closed */
    SSL *ssl; /* TLS on fd (owned), NULL for plaintext */
};

/* Milliseconds on a monotonic clock. */
long check_now_ms(void);

/* Waits until fd is ready for events (POLLIN / POLLOUT) or deadline passes: 1 ready, 0 timeout,
 * -1 poll failed (errno set). */
int check_net_wait(int fd, short events, long deadline);

/*
 * getaddrinfo() for host:port, TCP only. Returns 0 with *res (free with freeaddrinfo), or the
 * EAI_* code (gai_strerror() names it).
 */
int check_net_resolve(const char *host, unsigned port, struct addrinfo **res);

/*
 * Tries the addresses of res in order, each within timeout_ms, until one connects. Returns the
 * socket and sets *used to the address that answered, or -1. *first_err is the errno of the
 * first address (0 when it connected); tried lists "ADDR: reason" for each address that
 * failed, "; "-joined ("" when none did).
 */
int check_net_dial(const struct addrinfo *res, int timeout_ms, const struct addrinfo **used,
                   int *first_err, char *tried, size_t triedlen);

/* "127.0.0.1:9094" / "[::1]:9094" for sa; returns out. */
const char *check_net_addr_str(const struct sockaddr *sa, char *out, size_t outlen);

/*
 * Writes (reads) exactly len bytes by deadline. false with the reason in err ("no answer
 * within N ms", "the peer closed the connection", a TLS alert described by tlserr_describe()).
 */
bool check_conn_write(struct check_conn *c, const void *buf, size_t len, long deadline, char *err,
                      size_t errlen);
bool check_conn_read(struct check_conn *c, void *buf, size_t len, long deadline, char *err,
                     size_t errlen);

/* Frees the SSL (without a close_notify round trip) and closes the socket. */
void check_conn_close(struct check_conn *c);

#endif
