/*
 * check_net.c - sockets for `kbridge check`: non-blocking under the hood so that every wait has
 * a deadline, blocking in appearance so the checks read top to bottom.
 */
#include "check/check_net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>

#include "tls/tlserr.h"

#define CHECK_NET_ERRS 8 /* OpenSSL error codes kept for tlserr_describe() */

long
check_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
check_net_wait(int fd, short events, long deadline)
{
    struct pollfd p = {fd, events, 0};
    long left;
    int n;

    for (;;) {
        left = deadline - check_now_ms();
        if (left <= 0) {
            return 0;
        }
        n = poll(&p, 1, (int)left);
        if (n >= 0 || errno != EINTR) {
            return n > 0 ? 1 : n;
        }
    }
}

/*
 * Connects a new non-blocking socket to sa within timeout_ms. Returns the socket, or -1 with
 * *err set to the errno (ETIMEDOUT when the time ran out, ECONNREFUSED, EHOSTUNREACH, ...).
 */
static int
check_net_connect(const struct sockaddr *sa, socklen_t salen, int timeout_ms, int *err)
{
    long deadline = check_now_ms() + timeout_ms;
    socklen_t len = sizeof(*err);
    int fd, one = 1, w;

    *err = 0;
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, salen) == 0) {
        return fd;
    }
    if (errno != EINPROGRESS) {
        *err = errno;
        goto fail;
    }
    w = check_net_wait(fd, POLLOUT, deadline);
    if (w <= 0) {
        *err = w == 0 ? ETIMEDOUT : errno;
        goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len) != 0) {
        *err = errno;
    }
    if (*err == 0) {
        return fd;
    }
fail:
    close(fd);
    return -1;
}

int
check_net_resolve(const char *host, unsigned port, struct addrinfo **res)
{
    struct addrinfo hints;
    char service[8];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%u", port);
    *res = NULL;
    return getaddrinfo(host, service, &hints, res);
}

int
check_net_dial(const struct addrinfo *res, int timeout_ms, const struct addrinfo **used,
               int *first_err, char *tried, size_t triedlen)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const struct addrinfo *ai;
    size_t len = 0;
    int fd, err;

    *first_err = 0;
    *used = NULL;
    tlserr_format(tried, triedlen, "%s", "");
    for (ai = res; ai; ai = ai->ai_next) {
        fd = check_net_connect(ai->ai_addr, ai->ai_addrlen, timeout_ms, &err);
        if (fd >= 0) {
            *used = ai;
            return fd;
        }
        if (ai == res) {
            *first_err = err;
        }
        if (len < triedlen) {
            tlserr_format(tried + len, triedlen - len, "%s%s: %s", len ? "; " : "",
                          check_net_addr_str(ai->ai_addr, addr, sizeof(addr)),
                          err == ETIMEDOUT ? "timed out" : strerror(err));
            len += strlen(tried + len);
        }
    }
    return -1;
}

const char *
check_net_addr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
    return out;
}

/* Why an SSL_read/SSL_write that returned r failed, in tlserr's words. */
static void
check_conn_ssl_error(SSL *ssl, int r, char *err, size_t errlen)
{
    unsigned long errs[CHECK_NET_ERRS], e;
    int kind = SSL_get_error(ssl, r), sock_err = kind == SSL_ERROR_SYSCALL ? errno : 0;
    size_t n = 0;

    while ((e = ERR_get_error()) != 0) {
        if (n < CHECK_NET_ERRS) {
            errs[n++] = e;
        }
    }
    if (n == 0 && sock_err == 0) {
        tlserr_format(err, errlen, "the peer closed the connection");
        return;
    }
    tlserr_describe(ssl, errs, n, sock_err, NULL, err, errlen);
}

/*
 * Moves up to len bytes once. Returns the count (> 0); 0 when it must wait for *wait
 * (POLLIN/POLLOUT); -1 with err on failure or end of stream.
 */
static ssize_t
check_conn_once(struct check_conn *c, bool writing, void *buf, size_t len, short *wait, char *err,
                size_t errlen)
{
    int cap = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
    ssize_t n;
    int kind;

    if (c->ssl) {
        ERR_clear_error();
        errno = 0;
        n = writing ? SSL_write(c->ssl, buf, cap) : SSL_read(c->ssl, buf, cap);
        if (n > 0) {
            return n;
        }
        kind = SSL_get_error(c->ssl, (int)n);
        if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE) {
            *wait = kind == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            return 0;
        }
        check_conn_ssl_error(c->ssl, (int)n, err, errlen);
        return -1;
    }
    n = writing ? send(c->fd, buf, len, MSG_NOSIGNAL) : recv(c->fd, buf, len, 0);
    if (n > 0) {
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        *wait = writing ? POLLOUT : POLLIN;
        return 0;
    }
    tlserr_format(err, errlen, "%s", n == 0 ? "the peer closed the connection" : strerror(errno));
    return -1;
}

/* Moves exactly len bytes by deadline (see check_conn_read/check_conn_write). */
static bool
check_conn_all(struct check_conn *c, bool writing, void *buf, size_t len, long deadline, char *err,
               size_t errlen)
{
    unsigned char *p = buf;
    size_t done = 0;
    short wait = 0;
    ssize_t n;
    int w;

    while (done < len) {
        n = check_conn_once(c, writing, p + done, len - done, &wait, err, errlen);
        if (n < 0) {
            return false;
        }
        done += (size_t)n;
        if (n > 0) {
            continue;
        }
        w = check_net_wait(c->fd, wait, deadline);
        if (w <= 0) {
            tlserr_format(err, errlen, "%s", w == 0 ? "timed out" : strerror(errno));
            return false;
        }
    }
    return true;
}

bool
check_conn_write(struct check_conn *c, const void *buf, size_t len, long deadline, char *err,
                 size_t errlen)
{
    return check_conn_all(c, true, (void *)buf, len, deadline, err, errlen);
}

bool
check_conn_read(struct check_conn *c, void *buf, size_t len, long deadline, char *err,
                size_t errlen)
{
    return check_conn_all(c, false, buf, len, deadline, err, errlen);
}

void
check_conn_close(struct check_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}
