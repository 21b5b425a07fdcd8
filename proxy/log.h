/*
 * log.h - one line per event on stderr, as text or JSON (log_format). Every connection line
 * carries the cluster and a connection id (bridge.c's brlog() passes both). libevent's own
 * messages come through here too (log_init), so they follow log_format. Never log secrets;
 * pass anything a peer chose (a broker's host name) through log_escape() first.
 */
#ifndef KB_PROXY_LOG_H
#define KB_PROXY_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

#define KB_PRINTF(a, b) __attribute__((format(printf, a, b)))

/*
 * Sets the level and format; may be called again on reload. Defaults: info, text. Also routes
 * libevent's messages (its [warn]/[err] lines) through log_write as "libevent: ..." lines.
 */
void log_init(enum kb_log_level level, enum kb_log_format format);

/*
 * Copies len bytes of s into out (outlen bytes, NUL-terminated) for a log line: printable
 * ASCII is kept, every other byte (newline, ESC, NUL, non-ASCII) and the backslash itself are
 * written as \xNN, so a peer cannot forge or colour log lines. Truncates at a whole escape.
 * Returns out.
 */
const char *log_escape(const char *s, size_t len, char *out, size_t outlen);

/* log_escape()'s worst case for n input bytes, terminator included. */
#define KB_LOG_ESCAPED_MAX(n) (4 * (n) + 1)

/* True when a message at level would be written (to skip costly formatting). */
bool log_enabled(enum kb_log_level level);

/*
 * Writes one line. cluster and conn may be NULL; in text format the line reads
 * "TIME LEVEL [cluster] conn: message", in JSON {"ts":..,"level":..,"cluster":..,"conn":..,
 * "msg":..}.
 */
void log_write(enum kb_log_level level, const char *cluster, const char *conn, const char *fmt, ...)
    KB_PRINTF(4, 5);
void log_vwrite(enum kb_log_level level, const char *cluster, const char *conn, const char *fmt,
                va_list ap) KB_PRINTF(4, 0);

#define log_error(...) log_write(KB_LOG_ERROR, NULL, NULL, __VA_ARGS__)
#define log_warn(...) log_write(KB_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_write(KB_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_write(KB_LOG_DEBUG, NULL, NULL, __VA_ARGS__)

/* Cluster-scoped lines: "[name] message". */
#define cllog(lvl, cl_name, ...) log_write(lvl, cl_name, NULL, __VA_ARGS__)

#endif
