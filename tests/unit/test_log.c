/*
 * test_log.c - the log sink (proxy/log.h): log_escape() for peer-chosen text, and libevent's
 * own messages arriving as kbridge lines (JSON with log_format = json).
 */
#include "proxy/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/util.h>

#include "test.h"

static void
test_log_escape_control_bytes(void)
{
    const char in[] = "evil\nFAKE\x1b[31m\\x\x7f\xc3\xa9";
    char out[KB_LOG_ESCAPED_MAX(sizeof(in))];

    log_escape(in, sizeof(in) - 1, out, sizeof(out));
    CHECK(strcmp(out, "evil\\x0aFAKE\\x1b[31m\\x5cx\\x7f\\xc3\\xa9") == 0);
    log_escape("a\0b", 3, out, sizeof(out)); /* an embedded NUL cannot end the name early */
    CHECK(strcmp(out, "a\\x00b") == 0);
}

static void
test_log_escape_truncates_whole_escapes(void)
{
    char out[6];

    log_escape("ab\ncd", 5, out, sizeof(out)); /* "ab" fits, "\x0a" would not: stop before */
    CHECK(strcmp(out, "ab") == 0);
    log_escape("abcdefgh", 8, out, sizeof(out));
    CHECK(strcmp(out, "abcde") == 0);
    log_escape("x", 1, out, 0); /* nothing written, nothing overrun */
    log_escape(NULL, 4, out, sizeof(out));
    CHECK(strcmp(out, "") == 0);
}

/* Runs fn with stderr going to a temporary file; returns what it wrote (malloc'd). */
static char *
test_capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/kb-test-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    char *buf = calloc(1, 8192);
    FILE *f;

    if (fd < 0 || saved < 0 || !buf) {
        free(buf);
        return NULL;
    }
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    f = fdopen(fd, "r");
    if (f) {
        rewind(f);
        if (fread(buf, 1, 8191, f) == 0) {
            buf[0] = '\0';
        }
        fclose(f);
    }
    unlink(path);
    return buf;
}

static void
test_log_libevent_warning(void)
{
    /* libevent warns (event_sock_warn) when it cannot make a bad descriptor non-blocking. */
    if (evutil_make_socket_nonblocking(-1) == 0) {
        fprintf(stderr, "unexpected: fcntl on -1 worked\n");
    }
}

static void
test_log_libevent_lines_are_ours(void)
{
    char *text;

    log_init(KB_LOG_INFO, KB_LOG_JSON);
    text = test_capture_stderr(test_log_libevent_warning);
    CHECK(text != NULL);
    if (text) {
        CHECK_STR_CONTAINS(text, "{\"ts\":\"");
        CHECK_STR_CONTAINS(text, "\"level\":\"WARN\",\"msg\":\"libevent: fcntl(-1, F_GETFL)");
        CHECK(strstr(text, "[warn]") == NULL); /* libevent's own format never reaches stderr */
        CHECK(text[0] == '{' && text[strlen(text) - 2] == '}' && text[strlen(text) - 1] == '\n');
    }
    free(text);
    log_init(KB_LOG_WARN, KB_LOG_TEXT);
    text = test_capture_stderr(test_log_libevent_warning);
    CHECK_STR_CONTAINS(text, " WARN  libevent: fcntl(-1, F_GETFL)");
    free(text);
    log_init(KB_LOG_ERROR, KB_LOG_TEXT); /* below the level: nothing at all */
    text = test_capture_stderr(test_log_libevent_warning);
    CHECK(text && text[0] == '\0');
    free(text);
}

int
main(void)
{
    RUN(test_log_escape_control_bytes);
    RUN(test_log_escape_truncates_whole_escapes);
    RUN(test_log_libevent_lines_are_ours);
    return TEST_DONE();
}
