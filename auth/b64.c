/*
 * b64.c - base64 and base64url encoding, strict base64 decoding (see b64.h).
 */
#include "auth/b64.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
b64_encode(const uint8_t *in, size_t len, bool url, char *out, size_t outlen)
{
    const char *abc = url ? b64_url : b64_std;
    size_t full = len / 3, rest = len % 3;
    size_t need = full * 4 + (rest ? (url ? rest + 1 : 4) : 0);
    size_t i, o = 0;

    if (outlen < need + 1) {
        if (outlen > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    for (i = 0; i < full * 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (rest) {
        uint32_t v = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (rest == 2) {
            out[o++] = abc[v >> 6 & 63];
        } else if (!url) {
            out[o++] = '=';
        }
        if (!url) {
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return o;
}

/* The 6-bit value of a standard-alphabet character, or -1. */
static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

bool
b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen, size_t *outlen_used)
{
    size_t i, o = 0, pad = 0;

    if (len % 4 != 0) {
        return false;
    }
    if (len > 0 && in[len - 1] == '=') {
        pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
    }
    if (len / 4 * 3 - pad > outlen) {
        return false;
    }
    for (i = 0; i < len; i += 4) {
        int v[4];
        size_t k, chars = (i + 4 == len) ? 4 - pad : 4;
        uint32_t w = 0;
        for (k = 0; k < 4; k++) {
            v[k] = k < chars ? b64_value(in[i + k]) : 0;
            if (v[k] < 0 || (k >= chars && in[i + k] != '=')) {
                return false;
            }
            w = w << 6 | (uint32_t)v[k];
        }
        out[o++] = (uint8_t)(w >> 16);
        if (chars > 2) {
            out[o++] = (uint8_t)(w >> 8);
        }
        if (chars > 3) {
            out[o++] = (uint8_t)w;
        }
    }
    *outlen_used = o;
    return true;
}
