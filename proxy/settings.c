/*
 * settings.c - build, compare and release cluster settings snapshots (see settings.h).
 */
#include "proxy/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/util.h>

#include "conf/conf.h"
#include "tls/tlsctx.h"

static bool
settings_resolve_listen(struct kb_settings *s, char *err, size_t errlen)
{
    struct evutil_addrinfo hints, *ai = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", s->cc->listen.port);
    rc = evutil_getaddrinfo(s->cc->listen.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "cluster '%s': cannot resolve listen host '%s': %s", s->cc->name,
                 s->cc->listen.host, evutil_gai_strerror(rc));
        return false;
    }
    memcpy(&s->listen_ss, ai->ai_addr, ai->ai_addrlen);
    s->listen_sslen = (socklen_t)ai->ai_addrlen;
    evutil_freeaddrinfo(ai);
    return true;
}

struct kb_settings *
settings_new(struct kb_conf *conf, const struct kb_cluster_conf *cc, char *err, size_t errlen)
{
    struct kb_settings *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->refs = 1;
    s->conf = conf_ref(conf);
    s->cc = cc;
    if (!settings_resolve_listen(s, err, errlen)) {
        settings_unref(s);
        return NULL;
    }
    if (cc->tls) {
        s->ssl_ctx = tlsctx_new(conf, cc, err, errlen);
        if (!s->ssl_ctx) {
            settings_unref(s);
            return NULL;
        }
    }
    return s;
}

struct kb_settings *
settings_ref(struct kb_settings *s)
{
    s->refs++;
    return s;
}

void
settings_unref(struct kb_settings *s)
{
    if (!s || --s->refs > 0) {
        return;
    }
    if (s->ssl_ctx) {
        SSL_CTX_free(s->ssl_ctx);
    }
    conf_unref(s->conf);
    free(s);
}

static bool
settings_same_hostport(const struct kb_hostport *a, const struct kb_hostport *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

/* Every entry of a[0..na) is somewhere in b[0..nb). */
static bool
settings_hostports_within(const struct kb_hostport *a, size_t na, const struct kb_hostport *b,
                          size_t nb)
{
    size_t i, j;

    for (i = 0; i < na; i++) {
        for (j = 0; j < nb && !settings_same_hostport(&a[i], &b[j]); j++) {
        }
        if (j == nb) {
            return false;
        }
    }
    return true;
}

static bool
settings_same_connect_to(const struct kb_cluster_conf *a, const struct kb_cluster_conf *b)
{
    size_t i, j;

    if (a->n_connect_to != b->n_connect_to) {
        return false;
    }
    for (i = 0; i < a->n_connect_to; i++) {
        for (j = 0; j < b->n_connect_to; j++) {
            if (settings_same_hostport(&a->connect_to[i].from, &b->connect_to[j].from) &&
                settings_same_hostport(&a->connect_to[i].to, &b->connect_to[j].to)) {
                break;
            }
        }
        if (j == b->n_connect_to) {
            return false;
        }
    }
    return true;
}

bool
settings_same_upstream(const struct kb_cluster_conf *a, const struct kb_cluster_conf *b)
{
    const char *sa = a->tls_sni ? a->tls_sni : "", *sb = b->tls_sni ? b->tls_sni : "";

    return a->tls == b->tls && strcasecmp(sa, sb) == 0 &&
           settings_hostports_within(a->bootstrap, a->n_bootstrap, b->bootstrap, b->n_bootstrap) &&
           settings_hostports_within(b->bootstrap, b->n_bootstrap, a->bootstrap, a->n_bootstrap) &&
           settings_same_connect_to(a, b);
}

bool
settings_same_broker_ports(const struct kb_cluster_conf *a, const struct kb_cluster_conf *b)
{
    return strcmp(a->listen.host, b->listen.host) == 0 &&
           strcmp(a->advertised_host, b->advertised_host) == 0 &&
           a->broker_port_base == b->broker_port_base && a->max_node_id == b->max_node_id;
}
