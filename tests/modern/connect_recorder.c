/*
 * connect_recorder.c - LD_PRELOAD library for the modern-protocol tests: records every
 * connect() a client process makes to an IPv4/IPv6 address, so a test can prove the client only
 * ever dialled kbridge. Test code only.
 *
 * KB_CONNECT_LOG=FILE: one line is appended per call, written with a single write():
 *     <tcp|udp|other> <family> <address> <port> <result: 0 or errno name>
 * e.g. "tcp inet 127.0.0.1 21034 EINPROGRESS". Without KB_CONNECT_LOG nothing is recorded.
 * The real connect() (found with dlsym(RTLD_NEXT)) is always called; errno is preserved.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

static const char *
sock_type(int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        return "other";
    }
    return type == SOCK_STREAM ? "tcp" : type == SOCK_DGRAM ? "udp" : "other";
}

static void
record(int fd, const struct sockaddr *sa, socklen_t salen, int rc, int err)
{
    const char *path = getenv("KB_CONNECT_LOG");
    char ip[INET6_ADDRSTRLEN] = "?";
    const char *family;
    const char *result;
    unsigned port;
    char line[256];
    int n, out;

    if (path == NULL || *path == '\0' || sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        family = "inet";
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        family = "inet6";
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        port = ntohs(sin6->sin6_port);
    } else {
        return; /* AF_UNIX (nscd, syslog, ...) is not a network destination */
    }
    if (rc == 0) {
        result = "0";
    } else if ((result = strerrorname_np(err)) == NULL) {
        result = "unknown-errno";
    }
    n = snprintf(line, sizeof(line), "%s %s %s %u %s\n", sock_type(fd), family, ip, port, result);
    if (n <= 0 || (size_t)n >= sizeof(line)) {
        return;
    }
    out = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out != -1) {
        ssize_t w = write(out, line, (size_t)n);

        (void)w;
        close(out);
    }
}

int
connect(int fd, const struct sockaddr *sa, socklen_t salen)
{
    static connect_fn real;
    int rc, err;

    if (real == NULL) {
        real = (connect_fn)dlsym(RTLD_NEXT, "connect");
        if (real == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    rc = real(fd, sa, salen);
    err = errno;
    record(fd, sa, salen, rc, err);
    errno = err;
    return rc;
}
