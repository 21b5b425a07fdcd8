/*
 * log.c - the log sink: level filter, text or JSON lines on stderr, UTC timestamps with
 * milliseconds. One write(2)-sized fprintf per line so concurrent processes don't interleave.
 */
#include "proxy/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

static _Atomic enum kb_log_level log_level = KB_LOG_INFO; /* set on reload, read by every worker */
static _Atomic enum kb_log_format log_format = KB_LOG_TEXT;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/*
 * libevent's messages ("Error from accept() call: Too many open files", "epoll_wait: ...") would
 * otherwise go to stderr as bare "[warn] ..." lines, which break log_format = json and carry no
 * time stamp. Debug messages only come when libevent's debug logging is on (it is not).
 */
static void
log_from_libevent(int severity, const char *msg)
{
    enum kb_log_level level;

    switch (severity) {
    case EVENT_LOG_DEBUG:
        level = KB_LOG_DEBUG;
        break;
    case EVENT_LOG_MSG:
        level = KB_LOG_INFO;
        break;
    case EVENT_LOG_WARN:
        level = KB_LOG_WARN;
        break;
    default:
        level = KB_LOG_ERROR;
        break;
    }
    log_write(level, NULL, NULL, "libevent: %s", msg ? msg : "");
}

void
log_init(enum kb_log_level level, enum kb_log_format format)
{
    log_level = level;
    log_format = format;
    event_set_log_callback(log_from_libevent);
}

const char *
log_escape(const char *s, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = 0;

    if (outlen == 0) {
        return out;
    }
    for (i = 0; i < len && s; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            if (n + 1 >= outlen) {
                break;
            }
            out[n++] = (char)c;
        } else {
            if (n + 4 >= outlen) {
                break;
            }
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        }
    }
    out[n] = '\0';
    return out;
}

bool
log_enabled(enum kb_log_level level)
{
    return level <= log_level;
}

/* Appends s to out as a JSON string body (no quotes), escaping what JSON requires. */
static size_t
json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

void
log_vwrite(enum kb_log_level level, const char *cluster, const char *conn, const char *fmt,
           va_list ap)
{
    char msg[2048];
    char ts[64];
    struct timespec now;
    struct tm tm;

    if (!log_enabled(level)) {
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now.tv_nsec / 1000000));

    if (log_format == KB_LOG_JSON) {
        char emsg[4096], ecl[512], econn[512];
        json_escape(emsg, sizeof(emsg), msg);
        json_escape(ecl, sizeof(ecl), cluster ? cluster : "");
        json_escape(econn, sizeof(econn), conn ? conn : "");
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\"%s%s%s%s%s%s,\"msg\":\"%s\"}\n", ts,
                level_names[level], cluster ? ",\"cluster\":\"" : "", cluster ? ecl : "",
                cluster ? "\"" : "", conn ? ",\"conn\":\"" : "", conn ? econn : "",
                conn ? "\"" : "", emsg);
    } else {
        fprintf(stderr, "%s %-5s %s%s%s%s%s%s\n", ts, level_names[level], cluster ? "[" : "",
                cluster ? cluster : "", cluster ? "] " : "", conn ? conn : "", conn ? ": " : "",
                msg);
    }
    fflush(stderr);
}

void
log_write(enum kb_log_level level, const char *cluster, const char *conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, cluster, conn, fmt, ap);
    va_end(ap);
}
