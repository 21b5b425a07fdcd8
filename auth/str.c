/*
 * str.c - see str.h.
 */
#include "auth/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void
auth_str_add(struct auth_str *s, const char *data, size_t len)
{
    if (s->oom) {
        return;
    }
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        char *np;
        while (cap < s->len + len + 1) {
            cap *= 2;
        }
        np = malloc(cap);
        if (!np) {
            s->oom = true;
            return;
        }
        /* Not realloc: the old block may hold a secret and is wiped before release. */
        if (s->p) {
            memcpy(np, s->p, s->len);
            OPENSSL_cleanse(s->p, s->cap);
            free(s->p);
        }
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, len);
    s->len += len;
    s->p[s->len] = '\0';
}

void
auth_str_cat(struct auth_str *s, const char *cstr)
{
    auth_str_add(s, cstr, strlen(cstr));
}

char *
auth_str_take(struct auth_str *s)
{
    char *p;

    if (!s->oom && !s->p) {
        auth_str_add(s, "", 0);
    }
    if (s->oom) {
        auth_str_wipe(s);
        return NULL;
    }
    p = s->p;
    memset(s, 0, sizeof(*s));
    return p;
}

void
auth_str_wipe(struct auth_str *s)
{
    if (s->p) {
        OPENSSL_cleanse(s->p, s->cap);
        free(s->p);
    }
    memset(s, 0, sizeof(*s));
}

void
auth_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
