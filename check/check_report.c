/*
 * check_report.c - `kbridge check`'s records and their two printers. A text line is printed the
 * moment its step is recorded (a slow step is visible while it runs); the JSON document is
 * printed from the same records once everything has run.
 */
#include "check/check_report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls/tlserr.h"

/* How each step is named: in JSON, and in the text line ("3/6 TLS handshake"). */
static const struct {
    const char *key;   /* JSON "step" */
    int number;        /* position in the spec's list; 0: not numbered */
    const char *label; /* text label */
} check_step_names[] = {
    [CHECK_STEP_TRUST_STORE] = {"trust_store", 0, "trust store"},
    [CHECK_STEP_AWS_CREDS] = {"aws_credentials", 0, "AWS credentials"},
    [CHECK_STEP_DNS] = {"dns", 1, "DNS"},
    [CHECK_STEP_TCP] = {"tcp", 2, "TCP connect"},
    [CHECK_STEP_TLS] = {"tls", 3, "TLS handshake"},
    [CHECK_STEP_CHAIN] = {"chain", 4, "chain"},
    [CHECK_STEP_HOSTNAME] = {"hostname", 5, "host name"},
    [CHECK_STEP_AUTH] = {"authentication", 6, "authentication"},
    [CHECK_STEP_KAFKA] = {"kafka", 6, "Kafka"},
    [CHECK_STEP_PRODUCE] = {"produce", 7, "produce"},
    [CHECK_STEP_CONSUME] = {"consume", 7, "consume"},
};

static const char *const check_role_names[] = {
    [CHECK_ROLE_CONFIG] = "config",
    [CHECK_ROLE_BOOTSTRAP] = "bootstrap",
    [CHECK_ROLE_BROKER] = "broker",
    [CHECK_ROLE_LISTENER] = "listener",
};

static const char *const check_verdict_words[] = {
    [CHECK_OK] = "ok",
    [CHECK_WARN] = "WARN",
    [CHECK_FAIL] = "FAIL",
};

/* ---- Internal ---------------------------------------------------------------------------- */

/* Grows an array of elem-sized entries so that one more fits. false when out of memory. */
static bool
check_grow(void *arrayp, size_t *cap, size_t used, size_t elem)
{
    void **array = arrayp;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p;

    if (used < *cap) {
        return true;
    }
    p = realloc(*array, ncap * elem);
    if (!p) {
        return false;
    }
    *array = p;
    *cap = ncap;
    return true;
}

/* Length of the valid UTF-8 sequence starting at s (a byte >= 0x80), 0 when it is not one. */
static size_t
check_utf8_len(const unsigned char *s)
{
    size_t n = s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : s[0] < 0xF5 ? 4 : 0;
    size_t i;

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* Prints s as a JSON string (quotes included); NULL prints null. Invalid UTF-8 becomes U+FFFD. */
static void
check_json_str(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    while (*p) {
        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p++);
        } else if (*p < 0x20 || *p == 0x7F) {
            fprintf(out, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            fputc(*p++, out);
        } else if ((n = check_utf8_len(p)) > 0) {
            fwrite(p, 1, n, out);
            p += n;
        } else {
            fputs("\\ufffd", out);
            p++;
        }
    }
    fputc('"', out);
}

static void
check_json_target(FILE *out, const struct check_target *t)
{
    const struct check_step *s;
    size_t i;

    fputs("{\"address\":", out);
    check_json_str(out, t->address);
    fprintf(out, ",\"role\":\"%s\",\"node_id\":", check_role_names[t->role]);
    if (t->node_id >= 0) {
        fprintf(out, "%d", (int)t->node_id);
    } else {
        fputs("null", out);
    }
    fputs(",\"connect_to\":", out);
    check_json_str(out, t->dial[0] ? t->dial : NULL);
    fprintf(out, ",\"ok\":%s,\"steps\":[", t->failed ? "false" : "true");
    for (i = 0; i < t->n_steps; i++) {
        s = &t->steps[i];
        fprintf(out, "%s\n      {\"step\":\"%s\",\"ok\":%s,\"warning\":%s,\"ms\":%ld,\"detail\":",
                i ? "," : "", check_step_names[s->id].key,
                s->verdict == CHECK_FAIL ? "false" : "true",
                s->verdict == CHECK_WARN ? "true" : "false", s->ms);
        check_json_str(out, s->detail);
        fputs(",\"fix\":", out);
        check_json_str(out, s->fix[0] ? s->fix : NULL);
        fputc('}', out);
    }
    fputs("],\"brokers\":[", out);
    for (i = 0; i < t->n_brokers; i++) {
        fprintf(out, "%s{\"node_id\":%d,\"host\":", i ? "," : "", (int)t->brokers[i].node_id);
        check_json_str(out, t->brokers[i].host);
        fprintf(out, ",\"port\":%d}", (int)t->brokers[i].port);
    }
    fputs("]}", out);
}

static void
check_json_report(const struct check_report *rep)
{
    FILE *out = rep->out;
    const struct check_cluster *cl;
    size_t c, i;

    fprintf(out, "{\"ok\":%s,\"error\":", check_report_exit_code(rep) == 0 ? "true" : "false");
    check_json_str(out, rep->error[0] ? rep->error : NULL);
    fputs(",\"clusters\":[", out);
    for (c = 0; c < rep->n_clusters; c++) {
        cl = &rep->clusters[c];
        fprintf(out, "%s\n {\"name\":", c ? "," : "");
        check_json_str(out, cl->name);
        fputs(",\"targets\":[", out);
        for (i = 0; i < cl->n_targets; i++) {
            fprintf(out, "%s\n    ", i ? "," : "");
            check_json_target(out, cl->targets[i]);
        }
        fputs("]}", out);
    }
    fputs("]}\n", out);
}

/* The text line of step s of t: "[msk] b-1...:9094 (node 1)  3/6 TLS handshake  ok  ...". */
static void
check_text_step(const struct check_report *rep, const struct check_target *t,
                const struct check_step *s)
{
    /* The listener's DNS and TCP steps are part of step 7, the end-to-end test. */
    int number =
        check_step_names[t->role == CHECK_ROLE_LISTENER ? CHECK_STEP_PRODUCE : s->id].number;
    char node[32] = "", num[16] = "";

    if (t->node_id >= 0) {
        snprintf(node, sizeof(node), " (node %d)", (int)t->node_id);
    }
    /* With authentication in the list, everything after it moves down one. */
    if (rep->auth && number >= 6 && s->id != CHECK_STEP_AUTH) {
        number++;
    }
    if (number > 0) {
        snprintf(num, sizeof(num), "%d/%d ", number, rep->n_numbered);
    }
    fprintf(rep->out, "[%s] %s%s  %s%s  %s  %s\n", t->cluster, t->address, node, num,
            check_step_names[s->id].label, check_verdict_words[s->verdict], s->detail);
    if (s->verdict != CHECK_OK && s->fix[0]) {
        fprintf(rep->out, "    fix: %s\n", s->fix);
    }
    fflush(rep->out);
}

/* ---- Public ------------------------------------------------------------------------------ */

void
check_report_init(struct check_report *rep, FILE *out, bool json, bool produce_test)
{
    memset(rep, 0, sizeof(*rep));
    rep->out = out;
    rep->json = json;
    rep->n_numbered = produce_test ? 7 : 6;
}

void
check_report_with_auth(struct check_report *rep)
{
    if (!rep->auth) {
        rep->auth = true;
        rep->n_numbered++;
    }
}

void
check_report_free(struct check_report *rep)
{
    size_t c, i;

    for (c = 0; c < rep->n_clusters; c++) {
        for (i = 0; i < rep->clusters[c].n_targets; i++) {
            free(rep->clusters[c].targets[i]->brokers);
            free(rep->clusters[c].targets[i]);
        }
        free(rep->clusters[c].targets);
    }
    free(rep->clusters);
    rep->clusters = NULL;
    rep->n_clusters = rep->cap = 0;
}

struct check_cluster *
check_report_cluster(struct check_report *rep, const char *name)
{
    struct check_cluster *cl;

    if (!check_grow(&rep->clusters, &rep->cap, rep->n_clusters, sizeof(*rep->clusters))) {
        return NULL;
    }
    cl = &rep->clusters[rep->n_clusters++];
    memset(cl, 0, sizeof(*cl));
    cl->name = name;
    return cl;
}

struct check_target *
check_cluster_target(struct check_cluster *cl, enum check_role role, const char *address,
                     int32_t node_id)
{
    struct check_target *t;

    if (!check_grow(&cl->targets, &cl->cap, cl->n_targets, sizeof(*cl->targets))) {
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->cluster = cl->name;
    t->role = role;
    t->node_id = node_id;
    tlserr_format(t->address, sizeof(t->address), "%s", address);
    cl->targets[cl->n_targets++] = t;
    return t;
}

struct check_target *
check_cluster_find(const struct check_cluster *cl, const char *address)
{
    size_t i;

    for (i = 0; i < cl->n_targets; i++) {
        if (cl->targets[i]->role != CHECK_ROLE_CONFIG &&
            strcasecmp(cl->targets[i]->address, address) == 0) {
            return cl->targets[i];
        }
    }
    return NULL;
}

bool
check_step_add(struct check_report *rep, struct check_target *t, enum check_step_id id,
               enum check_verdict verdict, long ms, const char *fix, const char *fmt, ...)
{
    struct check_step *s;
    va_list ap;

    if (t->n_steps == CHECK_STEPS_MAX) {
        /* A programming error, not a finding: keep the last slot for the failure. */
        t->n_steps--;
    }
    s = &t->steps[t->n_steps++];
    s->id = id;
    s->verdict = verdict;
    s->ms = ms;
    va_start(ap, fmt);
    tlserr_vformat(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    tlserr_format(s->fix, sizeof(s->fix), "%s", fix ? fix : "");
    if (verdict == CHECK_FAIL) {
        t->failed = true;
    }
    if (!rep->json) {
        check_text_step(rep, t, s);
    }
    return verdict != CHECK_FAIL;
}

bool
check_target_add_broker(struct check_target *t, int32_t node_id, const char *host, size_t host_len,
                        int32_t port)
{
    struct check_broker *b;
    size_t i;

    /* Every broker gets its own realloc: Metadata lists a handful, never thousands. */
    b = realloc(t->brokers, (t->n_brokers + 1) * sizeof(*b));
    if (!b) {
        return false;
    }
    t->brokers = b;
    b = &t->brokers[t->n_brokers++];
    b->node_id = node_id;
    b->port = port;
    if (host_len >= sizeof(b->host)) {
        host_len = sizeof(b->host) - 1;
    }
    for (i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)host[i];
        b->host[i] = (c > 0x20 && c < 0x7F) ? (char)c : '?';
    }
    b->host[host_len] = '\0';
    return true;
}

void
check_report_finish(const struct check_report *rep)
{
    size_t c, i, j, targets = 0, failed = 0, warnings = 0;
    const struct check_target *t;

    if (rep->json) {
        check_json_report(rep);
        return;
    }
    for (c = 0; c < rep->n_clusters; c++) {
        for (i = 0; i < rep->clusters[c].n_targets; i++) {
            t = rep->clusters[c].targets[i];
            targets++;
            failed += t->failed;
            for (j = 0; j < t->n_steps; j++) {
                warnings += t->steps[j].verdict == CHECK_WARN;
            }
        }
    }
    if (failed == 0) {
        fprintf(rep->out,
                "kbridge check: ok, every step passed (%zu cluster%s, %zu target%s, %zu "
                "warning%s)\n",
                rep->n_clusters, rep->n_clusters == 1 ? "" : "s", targets, targets == 1 ? "" : "s",
                warnings, warnings == 1 ? "" : "s");
    } else {
        fprintf(rep->out, "kbridge check: FAILED: %zu of %zu target%s failed\n", failed, targets,
                targets == 1 ? "" : "s");
    }
    fflush(rep->out);
}

int
check_report_exit_code(const struct check_report *rep)
{
    size_t c, i;

    if (rep->config_error || rep->error[0]) {
        return 2;
    }
    for (c = 0; c < rep->n_clusters; c++) {
        for (i = 0; i < rep->clusters[c].n_targets; i++) {
            if (rep->clusters[c].targets[i]->failed) {
                return 1;
            }
        }
    }
    return 0;
}
