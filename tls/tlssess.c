/*
 * tlssess.c - per-context client session cache (see tlssess.h). OpenSSL's own client cache
 * is not looked up by the library, so the newest session per key is kept here, in the
 * SSL_CTX's ex_data, and the key rides on each SSL in its ex_data. A mutex guards the cache:
 * a context is normally used by one event loop, but nothing in OpenSSL requires that.
 */
#include "tls/tlssess.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

struct tlssess_entry {
    char *key;          /* "host:port" */
    SSL_SESSION *sess;  /* one reference */
    unsigned long used; /* tick of the last store, for eviction */
};

struct tlssess_cache {
    pthread_mutex_t lock;                    /* guards everything below */
    struct tlssess_entry entry[TLSSESS_MAX]; /* n used */
    size_t n;                                /* entries in use */
    unsigned long tick;                      /* store counter */
};

static CRYPTO_ONCE tlssess_once = CRYPTO_ONCE_STATIC_INIT;
static int tlssess_ctx_index = -1; /* SSL_CTX ex_data: struct tlssess_cache */
static int tlssess_ssl_index = -1; /* SSL ex_data: the key (malloc'd) */

static void
tlssess_cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct tlssess_cache *c = ptr;
    size_t i;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (!c) {
        return;
    }
    for (i = 0; i < c->n; i++) {
        free(c->entry[i].key);
        SSL_SESSION_free(c->entry[i].sess);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void
tlssess_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void
tlssess_init_once(void)
{
    tlssess_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tlssess_cache_free);
    tlssess_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tlssess_key_free);
}

static bool
tlssess_init(void)
{
    return CRYPTO_THREAD_run_once(&tlssess_once, tlssess_init_once) == 1 &&
           tlssess_ctx_index >= 0 && tlssess_ssl_index >= 0;
}

static struct tlssess_entry *
tlssess_find(struct tlssess_cache *c, const char *key)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->entry[i].key, key) == 0) {
            return &c->entry[i];
        }
    }
    return NULL;
}

/*
 * OpenSSL hands over each new session here (TLS 1.3: each ticket, after the handshake). A
 * copy is kept, not sess itself: sess stays the live connection's session, and OpenSSL marks
 * that one not resumable when the connection is freed without a close_notify (which is how a
 * bridge ends), so the cached ticket would die with the first connection that used it.
 */
static int
tlssess_on_new(SSL *ssl, SSL_SESSION *sess)
{
    struct tlssess_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tlssess_ctx_index);
    const char *key = SSL_get_ex_data(ssl, tlssess_ssl_index);
    struct tlssess_entry *e;
    size_t i;
    char *copy;

    if (!c || !key || !SSL_SESSION_is_resumable(sess) || !(sess = SSL_SESSION_dup(sess))) {
        return 0; /* not kept */
    }
    pthread_mutex_lock(&c->lock);
    e = tlssess_find(c, key);
    if (!e) {
        if (!(copy = strdup(key))) {
            pthread_mutex_unlock(&c->lock);
            SSL_SESSION_free(sess);
            return 0;
        }
        if (c->n < TLSSESS_MAX) {
            e = &c->entry[c->n++];
        } else { /* full: the least recently stored broker makes room */
            for (e = &c->entry[0], i = 1; i < c->n; i++) {
                if (c->entry[i].used < e->used) {
                    e = &c->entry[i];
                }
            }
            free(e->key);
            SSL_SESSION_free(e->sess);
        }
        e->key = copy;
        e->sess = NULL;
    }
    SSL_SESSION_free(e->sess);
    e->sess = sess; /* our copy */
    e->used = ++c->tick;
    pthread_mutex_unlock(&c->lock);
    return 0; /* OpenSSL keeps its own reference to the original */
}

bool
tlssess_enable(SSL_CTX *ctx)
{
    struct tlssess_cache *c;

    if (!tlssess_init() || !(c = calloc(1, sizeof(*c)))) {
        return false;
    }
    pthread_mutex_init(&c->lock, NULL);
    if (SSL_CTX_set_ex_data(ctx, tlssess_ctx_index, c) != 1) {
        tlssess_cache_free(NULL, c, NULL, 0, 0, NULL);
        return false;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, tlssess_on_new);
    return true;
}

bool
tlssess_offer(SSL *ssl, const char *key)
{
    struct tlssess_cache *c;
    struct tlssess_entry *e;
    SSL_SESSION *sess;
    char *copy;

    if (!tlssess_init() || !(c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tlssess_ctx_index))) {
        return true; /* resumption is off for this context */
    }
    copy = strdup(key);
    if (!copy || SSL_set_ex_data(ssl, tlssess_ssl_index, copy) != 1) {
        free(copy);
        return false;
    }
    pthread_mutex_lock(&c->lock);
    e = tlssess_find(c, key);
    /* Past its lifetime the broker would refuse it anyway; don't send a stale ticket. Each
     * connection gets its own copy: OpenSSL marks the session of an SSL freed without
     * close_notify not resumable, and that must not reach the cached one. */
    if (e && e->sess &&
        (time_t)(SSL_SESSION_get_time(e->sess) + SSL_SESSION_get_timeout(e->sess)) > time(NULL) &&
        (sess = SSL_SESSION_dup(e->sess)) != NULL) {
        SSL_set_session(ssl, sess); /* takes its own reference */
        SSL_SESSION_free(sess);
    }
    pthread_mutex_unlock(&c->lock);
    return true;
}

void
tlssess_forget(SSL *ssl)
{
    const char *key = tlssess_key(ssl);
    struct tlssess_cache *c;
    struct tlssess_entry *e;

    if (!key || !(c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tlssess_ctx_index))) {
        return;
    }
    pthread_mutex_lock(&c->lock);
    e = tlssess_find(c, key);
    if (e) {
        SSL_SESSION_free(e->sess);
        e->sess = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}

const char *
tlssess_key(SSL *ssl)
{
    return tlssess_init() ? SSL_get_ex_data(ssl, tlssess_ssl_index) : NULL;
}
