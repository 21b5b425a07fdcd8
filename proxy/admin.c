/*
 * admin.c - /healthz, /readyz and /metrics over evhttp (see admin.h). Read-only: nothing here
 * changes the proxy, and nothing secret (keys, SASL payloads) is ever rendered.
 */
#include "proxy/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "conf/conf.h"
#include "proxy/cluster.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/probe.h"
#include "proxy/proxy.h"

struct admin {
    struct kb_proxy *proxy; /* what is reported on */
    struct evhttp *http;    /* the server */
};

static void
admin_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
            struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, reason, body);
}

/* Appends s as a JSON string (quotes included). */
static void
admin_json_str(struct evbuffer *out, const char *s)
{
    evbuffer_add(out, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            evbuffer_add_printf(out, "\\%c", c);
        } else if (c < 0x20) {
            evbuffer_add_printf(out, "\\u%04x", c);
        } else {
            evbuffer_add(out, s, 1);
        }
    }
    evbuffer_add(out, "\"", 1);
}

static void
admin_readyz(struct admin *a, struct evhttp_request *req, struct evbuffer *body)
{
    struct kb_proxy *p = a->proxy;
    double now = metrics_now();
    bool ready = !p->draining;
    size_t i;

    evbuffer_add_printf(body, "{\"clusters\":[");
    for (i = 0; i < p->n_clusters; i++) {
        const struct kb_cluster *cl = p->clusters[i];
        struct kb_metrics *m = cl->metrics;
        double last_ready = m->last_ready;
        bool listening = cl->bootstrap != NULL;
        bool ok = listening && last_ready > 0 && now - last_ready <= 3 * KB_PROBE_INTERVAL;
        char last_error[sizeof(m->last_error)];
        ready = ready && ok;
        evbuffer_add_printf(body, "%s{\"name\":", i ? "," : "");
        admin_json_str(body, m->cluster);
        evbuffer_add_printf(body, ",\"ready\":%s", ok ? "true" : "false");
        if (last_ready > 0) {
            evbuffer_add_printf(body, ",\"last_ok_seconds_ago\":%.1f", now - last_ready);
        }
        if (!listening) {
            evbuffer_add_printf(body, ",\"reason\":");
            admin_json_str(body, cl->listen_error[0] ? cl->listen_error
                                                     : "the bootstrap listener is not open");
        } else if (!ok) {
            metrics_get_error(m, last_error, sizeof(last_error));
            evbuffer_add_printf(body, ",\"reason\":");
            admin_json_str(body, last_error[0]    ? last_error
                                 : last_ready > 0 ? "no successful probe recently"
                                                  : "no verified Metadata exchange yet");
        }
        evbuffer_add_printf(body, "}");
    }
    evbuffer_add_printf(body, "],\"ready\":%s%s}\n", ready ? "true" : "false",
                        p->draining ? ",\"reason\":\"draining\"" : "");
    admin_reply(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "application/json",
                body);
}

static void
admin_on_request(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *body = evbuffer_new();

    if (!body) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    /* Methods other than GET/HEAD are refused by evhttp itself (evhttp_set_allowed_methods). */
    if (path && strcmp(path, "/healthz") == 0) {
        evbuffer_add_printf(body, "ok\n");
        admin_reply(req, 200, "OK", "text/plain", body);
    } else if (path && strcmp(path, "/readyz") == 0) {
        admin_readyz(a, req, body);
    } else if (path && strcmp(path, "/metrics") == 0) {
        metrics_render(a->proxy->registry, body);
        admin_reply(req, 200, "OK", "text/plain; version=0.0.4", body);
    } else {
        evbuffer_add_printf(body, "not found: try /healthz, /readyz or /metrics\n");
        admin_reply(req, 404, "Not Found", "text/plain", body);
    }
    evbuffer_free(body);
}

struct admin *
admin_new(struct kb_proxy *p, char *err, size_t errlen)
{
    const struct kb_hostport *hp = &p->conf->admin_listen;
    struct admin *a = calloc(1, sizeof(*a));
    char addr[KB_HOST_MAX + 16];

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->proxy = p;
    a->http = evhttp_new(p->base);
    if (!a->http || evhttp_bind_socket(a->http, hp->host, hp->port) != 0) {
        snprintf(err, errlen, "admin_listen: cannot listen on %s",
                 conf_hostport_str(hp, addr, sizeof(addr)));
        admin_free(a);
        return NULL;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(a->http, admin_on_request, a);
    evhttp_set_timeout(a->http, 10);
    log_info("admin endpoint on http://%s (/healthz /readyz /metrics)",
             conf_hostport_str(hp, addr, sizeof(addr)));
    return a;
}

void
admin_free(struct admin *a)
{
    if (!a) {
        return;
    }
    if (a->http) {
        evhttp_free(a->http);
    }
    free(a);
}
