/*
 * log.h - one line per event on stderr, as text or JSON (log_format). Every connection line
 * carries the cluster and a connection id (brlog_* via bridge_log_prefix). Never log secrets.
 */
#ifndef KB_PROXY_LOG_H
#define KB_PROXY_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "conf/conf.h"

#define KB_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Sets the level and format; may be called again on reload. Defaults: info, text. */
void log_init(enum kb_log_level level, enum kb_log_format format);

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
