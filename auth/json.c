/*
 * json.c - a bounded reader for flat JSON objects of string and scalar values (see json.h).
 */
#include "auth/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Skips JSON whitespace. */
static const char *
json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

/*
 * Reads a JSON string at p (at its opening quote) into out (NULL: skip); returns the byte after
 * the closing quote, or NULL when malformed or too long.
 */
static const char *
json_read_string(const char *p, const char *end, char *out, size_t outlen)
{
    size_t o = 0;

    if (p >= end || *p != '"') {
        return NULL;
    }
    for (p++; p < end && *p != '"'; p++) {
        char c = *p;

        if ((unsigned char)c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            if (++p >= end) {
                return NULL;
            }
            switch (*p) {
            case '"':
            case '\\':
            case '/':
                c = *p;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                char hex[5];
                long v;

                if (end - p < 5) {
                    return NULL;
                }
                memcpy(hex, p + 1, 4);
                hex[4] = '\0';
                v = strtol(hex, NULL, 16);
                if (v <= 0 || v >= 0x80 || strspn(hex, "0123456789abcdefABCDEF") != 4) {
                    return NULL;
                }
                c = (char)v;
                p += 4;
                break;
            }
            default:
                return NULL;
            }
        }
        if (out) {
            if (o + 1 >= outlen) {
                return NULL;
            }
            out[o++] = c;
        }
    }
    if (p >= end) {
        return NULL;
    }
    if (out) {
        out[o] = '\0';
    }
    return p + 1;
}

/* Skips one JSON value that is not a string (number, literal; nested values are refused). */
static const char *
json_skip_scalar(const char *p, const char *end)
{
    const char *start = p;

    while (p < end && *p != ',' && *p != '}' && *p != ' ' && *p != '\n' && *p != '\r' &&
           *p != '\t') {
        if (*p == '{' || *p == '[') {
            return NULL;
        }
        p++;
    }
    return p > start ? p : NULL;
}

enum json_result
json_get_string(const char *json, size_t len, const char *key, char *out, size_t outlen)
{
    const char *p = json, *end = json + len;
    enum json_result res = JSON_ABSENT;
    char name[64];

    if (outlen > 0) {
        out[0] = '\0';
    }
    p = json_ws(p, end);
    if (p >= end || *p != '{') {
        return JSON_MALFORMED;
    }
    p = json_ws(p + 1, end);
    while (p < end && *p != '}') {
        bool match;

        if (!(p = json_read_string(p, end, name, sizeof(name)))) {
            return JSON_MALFORMED;
        }
        match = strcmp(name, key) == 0 && res == JSON_ABSENT;
        p = json_ws(p, end);
        if (p >= end || *p != ':') {
            return JSON_MALFORMED;
        }
        p = json_ws(p + 1, end);
        if (p < end && *p == '"') {
            p = match ? json_read_string(p, end, out, outlen) : json_read_string(p, end, NULL, 0);
            res = match && p ? JSON_OK : res;
        } else if (match) {
            return JSON_MALFORMED; /* present but not a string */
        } else {
            p = json_skip_scalar(p, end);
        }
        if (!p) {
            return JSON_MALFORMED;
        }
        p = json_ws(p, end);
        if (p < end && *p == ',') {
            p = json_ws(p + 1, end);
        } else if (p >= end || *p != '}') {
            return JSON_MALFORMED;
        }
    }
    if (p >= end) {
        return JSON_MALFORMED;
    }
    if (res != JSON_OK && outlen > 0) {
        out[0] = '\0';
    }
    return res;
}
