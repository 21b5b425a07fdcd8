/*
 * str.h - the growable string the signers build their canonical requests, signatures and
 * payloads in, and the error formatter they share. Strings here may hold secrets (a session
 * token, a derived key), so every block is wiped before it is released, growth included.
 */
#ifndef KB_AUTH_STR_H
#define KB_AUTH_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialise. After a failed allocation every append is a no-op and oom stays set, so a
 * chain of appends is checked once, at its end. */
struct auth_str {
    char *p;    /* the bytes, NUL-terminated once anything was appended */
    size_t len; /* bytes used, without the NUL */
    size_t cap; /* bytes allocated */
    bool oom;   /* an allocation failed: p is unusable */
};

void auth_str_add(struct auth_str *s, const char *data, size_t len);
void auth_str_cat(struct auth_str *s, const char *cstr);

/* Hands over the built string ("" when nothing was appended; the caller frees it), or NULL
 * after an allocation failure. s is empty afterwards. */
char *auth_str_take(struct auth_str *s);

/* Wipes and frees; s is empty afterwards. */
void auth_str_wipe(struct auth_str *s);

/* snprintf into err (nothing when err is NULL or errlen 0). */
void auth_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
