/*
 * admin.h - the admin HTTP endpoint on [global] admin_listen (a small bounded HTTP/1.x server
 * of its own on the leader's loop: 8 KiB requests, GET/HEAD only, 5 s per request, 32
 * connections; see admin.c):
 *   GET /healthz  200 "ok" while the process serves
 *   GET /readyz   200 when every cluster had a verified handshake and Metadata exchange within
 *                 the last 3 probe intervals, else 503 with the reasons as JSON
 *   GET /metrics  Prometheus text format (metrics.h)
 */
#ifndef KB_PROXY_ADMIN_H
#define KB_PROXY_ADMIN_H

#include <stddef.h>

struct admin;
struct kb_proxy;

/*
 * Binds admin_listen of p->conf; logs a SECURITY warning when that is not a loopback address.
 * NULL with the reason in err.
 */
struct admin *admin_new(struct kb_proxy *p, char *err, size_t errlen);
void admin_free(struct admin *a); /* NULL is fine */

#endif
