/*
 * secret.c - password files (see secret.h): one bounded read, then either the first line or a
 * small strict JSON parser that only knows what a Secrets Manager SCRAM secret needs (one
 * object of string values). Every buffer that held secret bytes is cleansed before it is freed.
 */
#include "conf/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* A cursor over the file's bytes for the JSON form. */
struct secret_json {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
};

static void
secret_json_ws(struct secret_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

static int
secret_hex4(const char *p)
{
    int v = 0, i;

    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v |= c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v |= c - 'A' + 10;
        } else {
            return -1;
        }
    }
    return v;
}

/* Appends code point cp as UTF-8 at out[*o]. */
static void
secret_utf8(uint32_t cp, char *out, size_t *o)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xe0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/*
 * Reads one JSON string at j->p into a new heap string (escapes decoded). NULL with the
 * reason in err; the reason names the offset, never the content.
 */
static char *
secret_json_string(struct secret_json *j, const char *start, char *err, size_t errlen)
{
    const char *q;
    char *out;
    size_t o = 0;

    if (j->p >= j->end || *j->p != '"') {
        snprintf(err, errlen, "expected a string at offset %zu", (size_t)(j->p - start));
        return NULL;
    }
    /* the decoded string is never longer than the encoded one (\uXXXX: 6 bytes -> <= 3) */
    if (!(out = malloc((size_t)(j->end - j->p)))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (q = j->p + 1; q < j->end && *q != '"'; q++) {
        unsigned char c = (unsigned char)*q;
        int cp, lo;

        if (c < 0x20) {
            snprintf(err, errlen, "control character in a string at offset %zu",
                     (size_t)(q - start));
            goto fail;
        }
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        if (++q >= j->end) {
            break;
        }
        switch (*q) {
        case '"':
        case '\\':
        case '/':
            out[o++] = *q;
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u':
            if (j->end - q < 5 || (cp = secret_hex4(q + 1)) < 0) {
                snprintf(err, errlen, "bad \\u escape at offset %zu", (size_t)(q - 1 - start));
                goto fail;
            }
            q += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (j->end - q < 7 || q[1] != '\\' || q[2] != 'u' ||
                    (lo = secret_hex4(q + 3)) < 0xdc00 || lo > 0xdfff) {
                    snprintf(err, errlen, "unpaired surrogate in \\u escape at offset %zu",
                             (size_t)(q - 5 - start));
                    goto fail;
                }
                q += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                snprintf(err, errlen, "%s in \\u escape at offset %zu",
                         cp ? "unpaired surrogate" : "NUL", (size_t)(q - 5 - start));
                goto fail;
            }
            secret_utf8((uint32_t)cp, out, &o);
            break;
        default:
            snprintf(err, errlen, "unknown escape at offset %zu", (size_t)(q - 1 - start));
            goto fail;
        }
    }
    if (q >= j->end) {
        snprintf(err, errlen, "unterminated string");
        goto fail;
    }
    out[o] = '\0';
    j->p = q + 1;
    return out;
fail:
    OPENSSL_cleanse(out, (size_t)(j->end - j->p));
    free(out);
    return NULL;
}

static void
secret_str_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* The JSON form: { "k": "v", ... } and nothing but white space after it. */
static bool
secret_parse_json(const char *buf, size_t len, struct secret *s, char *err, size_t errlen)
{
    struct secret_json j = {buf, buf + len};
    char *key = NULL, *val = NULL;

    secret_json_ws(&j);
    j.p++; /* '{', checked by the caller */
    secret_json_ws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        for (;;) {
            secret_json_ws(&j);
            if (!(key = secret_json_string(&j, buf, err, errlen))) {
                return false;
            }
            secret_json_ws(&j);
            if (j.p >= j.end || *j.p != ':') {
                snprintf(err, errlen, "expected ':' at offset %zu", (size_t)(j.p - buf));
                goto fail;
            }
            j.p++;
            secret_json_ws(&j);
            if (!(val = secret_json_string(&j, buf, err, errlen))) {
                goto fail;
            }
            if (strcmp(key, "username") == 0 || strcmp(key, "password") == 0) {
                char **slot = key[0] == 'u' ? &s->username : &s->password;
                if (*slot) {
                    snprintf(err, errlen, "duplicate key \"%s\"", key);
                    goto fail;
                }
                *slot = val;
                val = NULL;
            }
            secret_str_free(key);
            secret_str_free(val);
            key = val = NULL;
            secret_json_ws(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            if (j.p < j.end && *j.p == '}') {
                j.p++;
                break;
            }
            snprintf(err, errlen, "expected ',' or '}' at offset %zu", (size_t)(j.p - buf));
            return false;
        }
    }
    secret_json_ws(&j);
    if (j.p != j.end) {
        snprintf(err, errlen, "unexpected bytes after the JSON object at offset %zu",
                 (size_t)(j.p - buf));
        return false;
    }
    if (!s->password || !s->password[0]) {
        snprintf(err, errlen, "the JSON object has no non-empty \"password\"");
        return false;
    }
    if (s->username && !s->username[0]) {
        snprintf(err, errlen, "the JSON object has an empty \"username\"");
        return false;
    }
    return true;
fail:
    secret_str_free(key);
    secret_str_free(val);
    return false;
}

/* The one-line form: the bytes up to the first "\n" (and a "\r" before it). */
static bool
secret_parse_line(const char *buf, size_t len, struct secret *s, char *err, size_t errlen)
{
    size_t n = 0;

    while (n < len && buf[n] != '\n') {
        n++;
    }
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    if (n == 0) {
        snprintf(err, errlen, "the first line (the password) is empty");
        return false;
    }
    if (memchr(buf, '\0', n)) {
        snprintf(err, errlen, "the password contains a NUL byte");
        return false;
    }
    if (!(s->password = malloc(n + 1))) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memcpy(s->password, buf, n);
    s->password[n] = '\0';
    return true;
}

/*
 * Moves the password to anonymous pages marked MADV_DONTDUMP: it lives as long as the
 * configuration, and a core dump should not carry it. Keeps the heap copy if mmap fails.
 */
static void
secret_protect(struct secret *s)
{
    size_t len = strlen(s->password) + 1;
    long page = sysconf(_SC_PAGESIZE);
    size_t map_len = ((len + (size_t)page - 1) / (size_t)page) * (size_t)page;
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        return;
    }
    (void)madvise(p, map_len, MADV_DONTDUMP); /* best effort: old kernels lack it */
    memcpy(p, s->password, len);
    secret_str_free(s->password);
    s->password = p;
    s->map_len = map_len;
}

struct secret *
secret_load(const char *path, char *err, size_t errlen)
{
    char *buf = NULL, why[256] = "";
    struct secret *s = NULL;
    struct stat st;
    size_t len = 0, i;
    ssize_t n;
    int fd = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        goto fail;
    }
    if (!(s = calloc(1, sizeof(*s))) || !(buf = malloc(KB_SECRET_FILE_MAX + 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->file_mode = (unsigned)(st.st_mode & 0777);
    s->loose_mode = (st.st_mode & 077) != 0;
    while (len <= KB_SECRET_FILE_MAX &&
           (n = read(fd, buf + len, KB_SECRET_FILE_MAX + 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(err, errlen, "cannot read it: %s", strerror(errno));
            goto fail;
        }
        len += (size_t)n;
    }
    if (len > KB_SECRET_FILE_MAX) {
        snprintf(err, errlen, "larger than %d bytes", KB_SECRET_FILE_MAX);
        goto fail;
    }
    for (i = 0; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r');
         i++) {
    }
    if (i < len && buf[i] == '{') {
        if (!secret_parse_json(buf, len, s, why, sizeof(why))) {
            snprintf(err, errlen, "not valid Secrets Manager JSON: %s", why);
            goto fail;
        }
    } else if (!secret_parse_line(buf, len, s, why, sizeof(why))) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
    close(fd);
    secret_protect(s);
    return s;
fail:
    if (buf) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    if (fd >= 0) {
        close(fd);
    }
    secret_free(s);
    return NULL;
}

void
secret_free(struct secret *s)
{
    if (!s) {
        return;
    }
    secret_str_free(s->username);
    if (s->map_len) {
        OPENSSL_cleanse(s->password, s->map_len);
        munmap(s->password, s->map_len);
    } else {
        secret_str_free(s->password);
    }
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}
