/*
 * conf.c - kbridge configuration, "a table, then stages": one alphabetical key table drives the
 * inih handler (parse each value into its field), the defaults, the dump and the free; then
 * cross-key validation. Errors are one "PATH:LINE: message" line in the caller's buffer: this
 * module never logs and never exits.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "conf/secret.h"

#define CONF_LINE_MAX 4096 /* longest line, after comments are cut: dozens of brokers */
#define CONF_VALUE_MAX (CONF_LINE_MAX + KB_HOST_MAX) /* a formatted value, lists included */
#define CONF_WHY_MAX 512                             /* reason text inside a message */
#define CONF_NAME_MAX 64                             /* section names and key names, NUL included */

/* Enum fields are read and written through int pointers. */
_Static_assert(sizeof(enum kb_log_level) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum kb_log_format) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum kb_tls_verify) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum kb_aws_credentials) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum kb_sasl_mechanism) == sizeof(int), "enum stored as int");

enum conf_kind {
    CONF_GLOBAL, /* the [global] section */
    CONF_CLUSTER /* any other section */
};

enum conf_type {
    CONF_BOOL,          /* bool: on/off/true/false/yes/no/1/0 */
    CONF_ENUM,          /* int-sized enum, values named by conf_key.names */
    CONF_INT,           /* int in [min, max] */
    CONF_SIZE,          /* size_t in [min, max] */
    CONF_HOST,          /* char *: host name or IP literal without port, NULL if unset */
    CONF_STRING,        /* char *: any text without control characters, NULL if unset */
    CONF_FILE,          /* char *: a path, opened in validation, NULL if unset */
    CONF_HOSTPORT,      /* struct kb_hostport */
    CONF_HOSTPORT_OPT,  /* struct kb_hostport, bool "is set" at aux; empty = off */
    CONF_HOSTPORT_LIST, /* struct kb_hostport *, size_t count at aux */
    CONF_CONNECT_TO     /* struct kb_connect_to *, size_t count at aux */
};

struct conf_key {
    enum conf_kind kind;      /* which sections the key belongs to */
    const char *name;         /* as written in the file */
    enum conf_type type;      /* how the value is parsed, printed and freed */
    size_t offset;            /* field in struct kb_conf or struct kb_cluster_conf */
    size_t aux;               /* count (lists) or "is set" flag (optional host:port) */
    const char *def;          /* default as config text; "" = unset; NULL = required/derived */
    bool reloadable;          /* may change on reload without a restart */
    long long min;            /* CONF_INT/CONF_SIZE lower bound */
    long long max;            /* CONF_INT/CONF_SIZE upper bound */
    const char *const *names; /* CONF_ENUM values in enum order, NULL-terminated */
};

static const char *const conf_log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const conf_log_format_names[] = {"text", "json", NULL};
static const char *const conf_tls_verify_names[] = {"full", "chain", "none", NULL};
/* "" (KB_AWS_UNSET) is the default and never matches a value. */
static const char *const conf_aws_credentials_names[] = {"", "default", "gcp", NULL};
/* "" (KB_SASL_NONE) is the default and never matches a value; auth/mech.c has the same names. */
static const char *const conf_sasl_mechanism_names[] = {
    "", "SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "AWS_MSK_IAM", "OAUTHBEARER", NULL};

#define GL(field) offsetof(struct kb_conf, field)
#define CL(field) offsetof(struct kb_cluster_conf, field)

/* Every key, alphabetical. docs/config.md describes each one. */
static const struct conf_key conf_keys[] = {
    {CONF_GLOBAL, "admin_listen", CONF_HOSTPORT_OPT, GL(admin_listen), GL(has_admin), "", false, 0,
     0, NULL},
    {CONF_CLUSTER, "advertised_host", CONF_HOST, CL(advertised_host), 0, NULL, true, 0, 0, NULL},
    {CONF_CLUSTER, "aws_ca_file", CONF_FILE, CL(aws_ca_file), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "aws_credentials", CONF_ENUM, CL(aws_credentials), 0, "", true, 0, 0,
     conf_aws_credentials_names},
    {CONF_CLUSTER, "aws_profile", CONF_STRING, CL(aws_profile), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "aws_region", CONF_STRING, CL(aws_region), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "aws_role_arn", CONF_STRING, CL(aws_role_arn), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "aws_role_session_name", CONF_STRING, CL(aws_role_session_name), 0, "", true, 0,
     0, NULL},
    {CONF_CLUSTER, "aws_sts_endpoint", CONF_STRING, CL(aws_sts_endpoint), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "aws_web_identity_token_file", CONF_FILE, CL(aws_web_identity_token_file), 0, "",
     true, 0, 0, NULL},
    {CONF_CLUSTER, "bootstrap_servers", CONF_HOSTPORT_LIST, CL(bootstrap), CL(n_bootstrap), NULL,
     true, 0, 0, NULL},
    {CONF_GLOBAL, "buffer_high_bytes", CONF_SIZE, GL(buffer_high_bytes), 0, "1048576", true, 16384,
     1073741824, NULL},
    {CONF_GLOBAL, "buffer_low_bytes", CONF_SIZE, GL(buffer_low_bytes), 0, "262144", true, 0,
     1073741824, NULL},
    {CONF_CLUSTER, "broker_port_base", CONF_INT, CL(broker_port_base), 0, NULL, true, 1, 65535,
     NULL},
    {CONF_CLUSTER, "connect_timeout_ms", CONF_INT, CL(connect_timeout_ms), 0, "10000", true, 100,
     600000, NULL},
    {CONF_CLUSTER, "connect_to", CONF_CONNECT_TO, CL(connect_to), CL(n_connect_to), "", true, 0, 0,
     NULL},
    {CONF_CLUSTER, "gcp_audience", CONF_STRING, CL(gcp_audience), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "gcp_metadata_host", CONF_STRING, CL(gcp_metadata_host), 0, "", true, 0, 0,
     NULL},
    {CONF_CLUSTER, "idle_timeout_ms", CONF_INT, CL(idle_timeout_ms), 0, "600000", true, 0, 86400000,
     NULL},
    {CONF_CLUSTER, "listen", CONF_HOSTPORT, CL(listen), 0, "127.0.0.1:9092", true, 0, 0, NULL},
    {CONF_GLOBAL, "drain_timeout_ms", CONF_INT, GL(drain_timeout_ms), 0, "30000", true, 0, 600000,
     NULL},
    {CONF_GLOBAL, "log_format", CONF_ENUM, GL(log_format), 0, "text", true, 0, 0,
     conf_log_format_names},
    {CONF_GLOBAL, "log_level", CONF_ENUM, GL(log_level), 0, "info", true, 0, 0,
     conf_log_level_names},
    {CONF_GLOBAL, "max_frame_bytes", CONF_SIZE, GL(max_frame_bytes), 0, "104857600", true, 1024,
     1073741824, NULL},
    {CONF_CLUSTER, "max_connections", CONF_INT, CL(max_connections), 0, "1024", true, 1, 1000000,
     NULL},
    {CONF_CLUSTER, "max_node_id", CONF_INT, CL(max_node_id), 0, "99", true, 0, 65534, NULL},
    {CONF_CLUSTER, "sasl_mechanism", CONF_ENUM, CL(sasl_mechanism), 0, "", true, 0, 0,
     conf_sasl_mechanism_names},
    {CONF_CLUSTER, "sasl_password_file", CONF_FILE, CL(sasl_password_file), 0, "", true, 0, 0,
     NULL},
    {CONF_CLUSTER, "sasl_username", CONF_STRING, CL(sasl_username), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "tls", CONF_BOOL, CL(tls), 0, "on", true, 0, 0, NULL},
    {CONF_CLUSTER, "tls_ca_file", CONF_FILE, CL(tls_ca_file), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "tls_cert_file", CONF_FILE, CL(tls_cert_file), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "tls_handshake_timeout_ms", CONF_INT, CL(tls_handshake_timeout_ms), 0, "10000",
     true, 100, 600000, NULL},
    {CONF_CLUSTER, "tls_key_file", CONF_FILE, CL(tls_key_file), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "tls_sni", CONF_HOST, CL(tls_sni), 0, "", true, 0, 0, NULL},
    {CONF_CLUSTER, "tls_verify", CONF_ENUM, CL(tls_verify), 0, "full", true, 0, 0,
     conf_tls_verify_names},
    {CONF_GLOBAL, "workers", CONF_INT, GL(workers), 0, "1", false, 1, 64, NULL},
};

#define CONF_N_KEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

/* Parse-time record of one section: where things were written, for messages. */
struct conf_section {
    int line;                    /* line of the [header]; 0 for an absent [global] */
    int key_line[CONF_N_KEYS];   /* line each key was set on; 0 if never */
    bool has_value[CONF_N_KEYS]; /* set to a non-empty value (empty means "the default") */
};

/* Everything conf_load() needs while it works. */
struct conf_parser {
    const char *path;              /* the file, for messages */
    struct kb_conf *conf;          /* the snapshot being built */
    FILE *file;                    /* path, open for reading */
    char *buf;                     /* getline() buffer */
    size_t buf_cap;                /* its size */
    int line;                      /* number of the line last handed to inih */
    int cur;                       /* current section (index into sections), -1 before any */
    struct conf_section *sections; /* [0] is [global], [1 + i] is conf->clusters[i] */
    size_t cap;                    /* entries allocated in sections and in conf->clusters */
    char *err;                     /* the caller's buffer */
    size_t errlen;                 /* its size */
    bool failed;                   /* err holds the first error */
    char *const *args;             /* conf_load_flags(): the flag tokens; NULL for a file */
    int nargs;                     /* tokens in args */
};

/* One port range a section listens on, for clash checks. */
struct conf_claim {
    int lo;           /* first port */
    int hi;           /* last port, inclusive */
    size_t sec;       /* section index */
    const char *what; /* "listen port", "broker ports" or "admin_listen port" */
    int line;         /* where the ports come from */
};

typedef bool (*conf_elem_fn)(const char *s, void *elem, char *why, size_t whylen);

/* ---- Helpers -------------------------------------------------------------------------------- */

/* Writes a reason into why (may be truncated); returns false, for `return conf_why(...)`. */
__attribute__((format(printf, 3, 4))) static bool
conf_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Records the first error as "PATH:LINE: message" (no ":LINE" when line is 0). Returns false. */
__attribute__((format(printf, 3, 4))) static bool
conf_fail(struct conf_parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed || !p->err || p->errlen == 0) {
        p->failed = true;
        return false;
    }
    p->failed = true;
    if (p->args && line > 0 && line <= p->nargs) {
        /* A flag's "line" is its token number; the message names the flag, not its value. */
        const char *flag = p->args[line - 1];
        n = snprintf(p->err, p->errlen, "%s: %.*s: ", p->path, (int)strcspn(flag, "="), flag);
    } else {
        n = line > 0 ? snprintf(p->err, p->errlen, "%s:%d: ", p->path, line)
                     : snprintf(p->err, p->errlen, "%s: ", p->path);
    }
    if (n >= 0 && (size_t)n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Where a line number points, for messages: "line N" in a file, the flag ("--listen") or "the
 * defaults" for conf_load_flags(). Returns buf. */
static const char *
conf_where(const struct conf_parser *p, int line, char *buf, size_t len)
{
    if (!p->args) {
        snprintf(buf, len, "line %d", line);
    } else if (line > 0 && line <= p->nargs) {
        snprintf(buf, len, "%.*s", (int)strcspn(p->args[line - 1], "="), p->args[line - 1]);
    } else {
        snprintf(buf, len, "the defaults");
    }
    return buf;
}

static char *
conf_trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        end--;
    }
    *end = '\0';
    return s;
}

/* Cuts s at the first ';' or '#' that starts it or follows whitespace. */
static char *
conf_strip_comment(char *s)
{
    char *c;

    for (c = s; *c; c++) {
        if ((*c == ';' || *c == '#') && (c == s || isspace((unsigned char)c[-1]))) {
            *c = '\0';
            break;
        }
    }
    return s;
}

static const struct conf_key *
conf_find_key(const char *name, enum conf_kind kind)
{
    size_t i;

    for (i = 0; i < CONF_N_KEYS; i++) {
        if (conf_keys[i].kind == kind && strcmp(conf_keys[i].name, name) == 0) {
            return &conf_keys[i];
        }
    }
    return NULL;
}

/* Index of a key the code names; every key name is unique across both kinds. */
static size_t
conf_key_index(const char *name)
{
    const struct conf_key *k = conf_find_key(name, CONF_CLUSTER);

    if (!k) {
        k = conf_find_key(name, CONF_GLOBAL);
    }
    return (size_t)(k - conf_keys);
}

/* Case-insensitive Levenshtein distance; SIZE_MAX for names too long to be keys. */
static size_t
conf_edit_distance(const char *a, const char *b)
{
    size_t row[CONF_NAME_MAX + 1];
    size_t la = strlen(a), lb = strlen(b), i, j;

    if (la >= CONF_NAME_MAX || lb >= CONF_NAME_MAX) {
        return SIZE_MAX;
    }
    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;

            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The key of this kind closest to name: edit distance <= 2, else a shared prefix of >= 3. */
static const struct conf_key *
conf_suggest(const char *name, enum conf_kind kind)
{
    const struct conf_key *best = NULL, *prefix = NULL;
    size_t best_d = 3, i;

    for (i = 0; i < CONF_N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        size_t d, shorter;

        if (k->kind != kind) {
            continue;
        }
        d = conf_edit_distance(name, k->name);
        if (d < best_d) {
            best_d = d;
            best = k;
        }
        shorter = strlen(name) < strlen(k->name) ? strlen(name) : strlen(k->name);
        if (!prefix && shorter >= 3 && strncasecmp(name, k->name, shorter) == 0) {
            prefix = k;
        }
    }
    return best ? best : prefix;
}

static bool
conf_hostport_equal(const struct kb_hostport *a, const struct kb_hostport *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

/* 0.0.0.0 or :: (any spelling): not an address a client can connect to. */
static bool
conf_is_wildcard(const char *host)
{
    static const unsigned char zero[sizeof(struct in6_addr)];
    unsigned char addr[sizeof(struct in6_addr)];

    return (inet_pton(AF_INET, host, addr) == 1 && memcmp(addr, zero, 4) == 0) ||
           (inet_pton(AF_INET6, host, addr) == 1 && memcmp(addr, zero, sizeof(zero)) == 0);
}

/* Checks a host name or an IP literal (no port, no brackets); sets *is_ip. */
static bool
conf_check_host(const char *host, bool *is_ip, char *why, size_t whylen)
{
    unsigned char addr[sizeof(struct in6_addr)];
    const char *c;

    if (!*host) {
        return conf_why(why, whylen, "empty host");
    }
    if (strlen(host) >= KB_HOST_MAX) {
        return conf_why(why, whylen, "host name longer than %d characters", KB_HOST_MAX - 1);
    }
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
        *is_ip = true;
        return true;
    }
    for (c = host; *c; c++) {
        if (*c == ':') {
            return conf_why(why, whylen, "expected a host name or IP address without ':port'");
        }
        if (!isalnum((unsigned char)*c) && !strchr("-._", *c)) {
            return conf_why(why, whylen, "invalid character '%c' in host '%s'", *c, host);
        }
    }
    *is_ip = false;
    return true;
}

static bool
conf_parse_number(const char *v, long long min, long long max, long long *out, char *why,
                  size_t whylen)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) && !(v[0] == '-' && isdigit((unsigned char)v[1]))) {
        return conf_why(why, whylen, "not a whole number");
    }
    if (*end) {
        return conf_why(why, whylen, "not a whole number (no units or suffixes)");
    }
    if (errno == ERANGE || n < min || n > max) {
        return conf_why(why, whylen, "out of range %lld..%lld", min, max);
    }
    *out = n;
    return true;
}

/* ---- Value parsers (one per type) ----------------------------------------------------------- */

static bool
conf_parse_bool(const char *v, bool *out, char *why, size_t whylen)
{
    static const char *const names[] = {"on", "off", "true", "false", "yes", "no", "1", "0"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = i % 2 == 0;
            return true;
        }
    }
    return conf_why(why, whylen, "expected on, off, true, false, yes, no, 1 or 0");
}

static bool
conf_parse_enum(const char *v, const char *const *names, int *out, char *why, size_t whylen)
{
    char list[CONF_WHY_MAX] = "";
    int i;

    for (i = 0; names[i]; i++) {
        if (!*names[i]) {
            continue; /* the unset default, written as an empty value */
        }
        if (strcasecmp(v, names[i]) == 0) {
            *out = i;
            return true;
        }
        strncat(list, *list ? "|" : "", sizeof(list) - strlen(list) - 1);
        strncat(list, names[i], sizeof(list) - strlen(list) - 1);
    }
    return conf_why(why, whylen, "expected one of %s", list);
}

/* s has several ':' and no brackets: explain how to write an IPv6 address. */
static bool
conf_hostport_v6_hint(const char *s, const char *colon, char *err, size_t errlen)
{
    unsigned char addr[sizeof(struct in6_addr)];
    char host[KB_HOST_MAX];

    if ((size_t)(colon - s) < sizeof(host)) {
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        if (inet_pton(AF_INET6, host, addr) == 1) {
            return conf_why(err, errlen, "an IPv6 address goes in brackets: write [%s]:%s", host,
                            colon + 1);
        }
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        return conf_why(err, errlen,
                        "missing port: write the IPv6 address in brackets with a "
                        "port, e.g. [%s]:9094",
                        s);
    }
    return conf_why(err, errlen,
                    "more than one ':' (an IPv6 address goes in brackets, e.g. "
                    "[::1]:9094)");
}

bool
conf_parse_hostport(const char *s, struct kb_hostport *hp, char *err, size_t errlen)
{
    struct kb_hostport out = {.is_ip = true};
    unsigned char addr[sizeof(struct in6_addr)];
    const char *host = s, *colon;
    char why[CONF_WHY_MAX];
    long long port;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (!close) {
            return conf_why(err, errlen, "missing ']' after the IPv6 address");
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (*colon != ':') {
            return conf_why(err, errlen,
                            *colon ? "expected ':port' after ']'"
                                   : "missing port: expected [v6]:port");
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            return conf_why(err, errlen, "missing port: expected host:port");
        }
        if (colon != strchr(s, ':')) {
            return conf_hostport_v6_hint(s, colon, err, errlen);
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen >= sizeof(out.host)) {
        return conf_why(err, errlen, "host name longer than %d characters", KB_HOST_MAX - 1);
    }
    memcpy(out.host, host, hlen);
    out.host[hlen] = '\0';
    if (s[0] == '[' && inet_pton(AF_INET6, out.host, addr) != 1) {
        return conf_why(err, errlen, "'%s' is not an IPv6 address", out.host);
    }
    if (s[0] != '[' && !conf_check_host(out.host, &out.is_ip, err, errlen)) {
        return false;
    }
    if (!colon[1]) {
        return conf_why(err, errlen, "missing port number after ':'");
    }
    if (!conf_parse_number(colon + 1, 1, 65535, &port, why, sizeof(why))) {
        return conf_why(err, errlen, "port '%s': %s", colon + 1, why);
    }
    out.port = (uint16_t)port;
    *hp = out;
    return true;
}

static bool
conf_parse_hostport_elem(const char *s, void *elem, char *why, size_t whylen)
{
    return conf_parse_hostport(s, elem, why, whylen);
}

/* One connect_to entry: from_host:port=to_host:port. */
static bool
conf_parse_connect_to_elem(const char *s, void *elem, char *why, size_t whylen)
{
    struct kb_connect_to *ct = elem;
    const char *eq = strchr(s, '=');
    char from[KB_HOST_MAX + 16], sub[CONF_WHY_MAX];
    char *f;

    if (!eq || strchr(eq + 1, '=')) {
        return conf_why(why, whylen, "expected from_host:port=to_host:port%s",
                        eq ? " (one '=' per entry, entries separated by ',')" : "");
    }
    if ((size_t)(eq - s) >= sizeof(from)) {
        return conf_why(why, whylen, "address before '=' too long");
    }
    memcpy(from, s, (size_t)(eq - s));
    from[eq - s] = '\0';
    f = conf_trim(from);
    if (!conf_parse_hostport(f, &ct->from, sub, sizeof(sub))) {
        return conf_why(why, whylen, "'%s': %s", f, sub);
    }
    while (isspace((unsigned char)eq[1])) {
        eq++;
    }
    if (!conf_parse_hostport(eq + 1, &ct->to, sub, sizeof(sub))) {
        return conf_why(why, whylen, "'%s': %s", eq + 1, sub);
    }
    return true;
}

/* Parses a comma-separated list into a new array of *n elements of `size` bytes each. */
static bool
conf_parse_list(const char *v, size_t size, conf_elem_fn parse, void **arr, size_t *n, char *why,
                size_t whylen)
{
    char item[CONF_LINE_MAX], sub[CONF_WHY_MAX];
    const char *start = v, *c;
    char *elems, *t;
    size_t count = 1, i;

    for (c = v; *c; c++) {
        count += *c == ',';
    }
    elems = calloc(count, size);
    if (!elems) {
        return conf_why(why, whylen, "out of memory");
    }
    for (i = 0; i < count; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);

        if (len >= sizeof(item)) {
            conf_why(why, whylen, "entry %zu too long", i + 1);
            goto fail;
        }
        memcpy(item, start, len);
        item[len] = '\0';
        t = conf_trim(item);
        if (!*t) {
            conf_why(why, whylen, "entry %zu is empty (stray ',')", i + 1);
            goto fail;
        }
        if (!parse(t, elems + i * size, sub, sizeof(sub))) {
            conf_why(why, whylen, "entry '%s': %s", t, sub);
            goto fail;
        }
        start = end ? end + 1 : start + len;
    }
    *arr = elems;
    *n = count;
    return true;
fail:
    free(elems);
    return false;
}

static bool
conf_parse_connect_to(const char *v, struct kb_connect_to **out, size_t *n, char *why,
                      size_t whylen)
{
    struct kb_connect_to *ct;
    char a[KB_HOST_MAX + 16];
    size_t count, i, j;
    void *arr;

    if (!conf_parse_list(v, sizeof(*ct), conf_parse_connect_to_elem, &arr, &count, why, whylen)) {
        return false;
    }
    ct = arr;
    for (i = 0; i < count; i++) {
        for (j = 0; j < i; j++) {
            if (conf_hostport_equal(&ct[i].from, &ct[j].from)) {
                conf_why(why, whylen, "'%s' is redirected twice",
                         conf_hostport_str(&ct[i].from, a, sizeof(a)));
                free(ct);
                return false;
            }
        }
    }
    *out = ct;
    *n = count;
    return true;
}

/* Text values (user names): printable, no control characters (they end up in log lines). */
static bool
conf_check_text(const char *v, char *why, size_t whylen)
{
    for (; *v; v++) {
        if ((unsigned char)*v < 0x20 || *v == 0x7f) {
            return conf_why(why, whylen, "contains a control character");
        }
    }
    return true;
}

/* Parses the non-empty value v of key k into its field in base (a kb_conf or kb_cluster_conf). */
static bool
conf_parse_value(const struct conf_key *k, const char *v, void *base, char *why, size_t whylen)
{
    void *f = (char *)base + k->offset;
    bool is_ip;
    long long n = 0;
    void *arr = NULL;

    switch (k->type) {
    case CONF_BOOL:
        return conf_parse_bool(v, f, why, whylen);
    case CONF_ENUM:
        return conf_parse_enum(v, k->names, f, why, whylen);
    case CONF_INT:
    case CONF_SIZE:
        if (!conf_parse_number(v, k->min, k->max, &n, why, whylen)) {
            return false;
        }
        if (k->type == CONF_INT) {
            *(int *)f = (int)n;
        } else {
            *(size_t *)f = (size_t)n;
        }
        return true;
    case CONF_HOST:
    case CONF_STRING:
    case CONF_FILE:
        if (k->type == CONF_HOST && !conf_check_host(v, &is_ip, why, whylen)) {
            return false;
        }
        if (k->type == CONF_STRING && !conf_check_text(v, why, whylen)) {
            return false;
        }
        *(char **)f = strdup(v);
        return *(char **)f ? true : conf_why(why, whylen, "out of memory");
    case CONF_HOSTPORT:
    case CONF_HOSTPORT_OPT:
        if (!conf_parse_hostport(v, f, why, whylen)) {
            return false;
        }
        if (k->type == CONF_HOSTPORT_OPT) {
            *(bool *)((char *)base + k->aux) = true;
        }
        return true;
    case CONF_HOSTPORT_LIST:
        if (!conf_parse_list(v, sizeof(struct kb_hostport), conf_parse_hostport_elem, &arr,
                             (size_t *)((char *)base + k->aux), why, whylen)) {
            return false;
        }
        *(struct kb_hostport **)f = arr;
        return true;
    case CONF_CONNECT_TO:
        return conf_parse_connect_to(v, f, (size_t *)((char *)base + k->aux), why, whylen);
    }
    return conf_why(why, whylen, "unknown key type");
}

/* Formats the field of k in base as config text; returns buf, or a string the field holds. */
static const char *
conf_value_str(const struct conf_key *k, const void *base, char *buf, size_t len)
{
    const void *f = (const char *)base + k->offset;
    char a[KB_HOST_MAX + 16], b[KB_HOST_MAX + 16];
    size_t i, n = 0, used = 0;

    buf[0] = '\0';
    switch (k->type) {
    case CONF_BOOL:
        return *(const bool *)f ? "on" : "off";
    case CONF_ENUM:
        return k->names[*(const int *)f];
    case CONF_INT:
        snprintf(buf, len, "%d", *(const int *)f);
        return buf;
    case CONF_SIZE:
        snprintf(buf, len, "%zu", *(const size_t *)f);
        return buf;
    case CONF_HOST:
    case CONF_STRING:
    case CONF_FILE:
        return *(char *const *)f ? *(char *const *)f : "";
    case CONF_HOSTPORT:
        return conf_hostport_str(f, buf, len);
    case CONF_HOSTPORT_OPT:
        return *(const bool *)((const char *)base + k->aux) ? conf_hostport_str(f, buf, len) : "";
    case CONF_HOSTPORT_LIST:
    case CONF_CONNECT_TO:
        n = *(const size_t *)((const char *)base + k->aux);
        break;
    }
    for (i = 0; i < n && used < len; i++) {
        if (k->type == CONF_HOSTPORT_LIST) {
            conf_hostport_str(&(*(struct kb_hostport *const *)f)[i], a, sizeof(a));
            b[0] = '\0';
        } else {
            const struct kb_connect_to *ct = &(*(struct kb_connect_to *const *)f)[i];

            conf_hostport_str(&ct->from, a, sizeof(a));
            b[0] = '=';
            conf_hostport_str(&ct->to, b + 1, sizeof(b) - 1);
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s%s", i ? "," : "", a, b);
    }
    return buf;
}

/* Frees what the fields of one section own. */
static void
conf_free_fields(enum conf_kind kind, void *base)
{
    size_t i;

    for (i = 0; i < CONF_N_KEYS; i++) {
        void *f = (char *)base + conf_keys[i].offset;

        if (conf_keys[i].kind != kind) {
            continue;
        }
        if (conf_keys[i].type == CONF_HOST || conf_keys[i].type == CONF_STRING ||
            conf_keys[i].type == CONF_FILE) {
            free(*(char **)f);
        } else if (conf_keys[i].type == CONF_HOSTPORT_LIST) {
            free(*(struct kb_hostport **)f);
        } else if (conf_keys[i].type == CONF_CONNECT_TO) {
            free(*(struct kb_connect_to **)f);
        }
    }
}

static void
conf_free(struct kb_conf *conf)
{
    size_t i;

    if (!conf) {
        return;
    }
    for (i = 0; i < conf->n_clusters; i++) {
        if (conf->clusters[i].aws_provider && conf->clusters[i].aws_provider_release) {
            conf->clusters[i].aws_provider_release(conf->clusters[i].aws_provider);
        }
        secret_free(conf->clusters[i].sasl_secret);
        conf_free_fields(CONF_CLUSTER, &conf->clusters[i]);
        free(conf->clusters[i].name);
    }
    conf_free_fields(CONF_GLOBAL, conf);
    free(conf->clusters);
    free(conf->path);
    free(conf);
}

/* ---- Stage 1: reading (sections, comments, line numbers) and the inih handler -------------- */

static const char *
conf_section_name(const struct conf_parser *p, size_t sec)
{
    return sec == 0 ? "global" : p->conf->clusters[sec - 1].name;
}

static void *
conf_section_base(struct conf_parser *p, size_t sec)
{
    return sec == 0 ? (void *)p->conf : (void *)&p->conf->clusters[sec - 1];
}

/* Line where key was set in section sec, else the section's header line. */
static int
conf_key_line(const struct conf_parser *p, size_t sec, const char *key)
{
    int line = p->sections[sec].key_line[conf_key_index(key)];

    return line ? line : p->sections[sec].line;
}

/* Makes room for one more cluster (and its section record). */
static bool
conf_grow(struct conf_parser *p)
{
    size_t cap = p->cap ? p->cap * 2 : 8;
    struct conf_section *s;
    struct kb_cluster_conf *c;

    s = realloc(p->sections, cap * sizeof(*s));
    if (!s) {
        return conf_fail(p, 0, "out of memory");
    }
    p->sections = s;
    c = realloc(p->conf->clusters, cap * sizeof(*c));
    if (!c) {
        return conf_fail(p, 0, "out of memory");
    }
    p->conf->clusters = c;
    memset(s + p->cap, 0, (cap - p->cap) * sizeof(*s));
    memset(c + p->cap, 0, (cap - p->cap) * sizeof(*c));
    p->cap = cap;
    return true;
}

/* A "[name]" line (s is trimmed): opens [global] or a new cluster. */
static bool
conf_section_begin(struct conf_parser *p, const char *s)
{
    const char *close = strchr(s, ']'), *name = s + 1, *c;
    struct kb_cluster_conf *cc;
    size_t len, i;

    if (!close) {
        return conf_fail(p, p->line, "section header '%s' has no closing ']'", s);
    }
    if (close[1]) {
        return conf_fail(p, p->line, "unexpected text '%s' after section header", close + 1);
    }
    while (isspace((unsigned char)*name)) {
        name++;
    }
    len = (size_t)(close - name);
    while (len > 0 && isspace((unsigned char)name[len - 1])) {
        len--;
    }
    for (c = name; c < name + len; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("-._", *c)) {
            break;
        }
    }
    if (len == 0 || len >= CONF_NAME_MAX || c < name + len) {
        return conf_fail(p, p->line,
                         "invalid section name '[%.*s]': use 1 to %d letters, digits, "
                         "'-', '.' or '_'",
                         (int)len, name, CONF_NAME_MAX - 1);
    }
    if (len == 6 && strncmp(name, "global", 6) == 0) {
        if (p->sections[0].line) {
            return conf_fail(p, p->line, "duplicate section [global] (first at line %d)",
                             p->sections[0].line);
        }
        p->sections[0].line = p->line;
        p->cur = 0;
        return true;
    }
    if (len == 6 && strncasecmp(name, "global", 6) == 0) {
        return conf_fail(p, p->line,
                         "section [%.*s] would be a cluster: did you mean [global]? "
                         "(section names are case-sensitive)",
                         (int)len, name);
    }
    for (i = 0; i < p->conf->n_clusters; i++) {
        if (strlen(p->conf->clusters[i].name) == len &&
            strncmp(p->conf->clusters[i].name, name, len) == 0) {
            return conf_fail(p, p->line, "duplicate section [%.*s] (first at line %d)", (int)len,
                             name, p->conf->clusters[i].line);
        }
    }
    if (p->conf->n_clusters + 1 >= p->cap && !conf_grow(p)) {
        return false;
    }
    cc = &p->conf->clusters[p->conf->n_clusters];
    cc->name = strndup(name, len);
    if (!cc->name) {
        return conf_fail(p, 0, "out of memory");
    }
    cc->line = p->line;
    p->conf->n_clusters++;
    p->cur = (int)p->conf->n_clusters;
    p->sections[p->cur].line = p->line;
    return true;
}

/*
 * inih's reader: hands out one line at a time and counts them, so every message can name the
 * line (Debian's libinih is built without INI_HANDLER_LINENO). It also cuts comments (';' or
 * '#' at the start or after whitespace), trims, and opens sections itself: inih would truncate
 * long section names and never reports sections without keys.
 */
static char *
conf_reader(char *str, int num, void *stream)
{
    struct conf_parser *p = stream;
    ssize_t n;
    char *s;

    if (p->failed) {
        return NULL;
    }
    errno = 0;
    n = getline(&p->buf, &p->buf_cap, p->file);
    if (n < 0) {
        if (ferror(p->file)) {
            conf_fail(p, 0, "cannot read: %s", strerror(errno));
        }
        return NULL;
    }
    p->line++;
    if (strlen(p->buf) != (size_t)n) {
        conf_fail(p, p->line, "NUL byte in line: is this a text file?");
        return NULL;
    }
    s = p->buf;
    if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
    }
    s = conf_trim(conf_strip_comment(s));
    if (strlen(s) + 2 > (size_t)num) {
        conf_fail(p, p->line, "line too long (%zu characters, at most %d)", strlen(s), num - 2);
        return NULL;
    }
    if (*s == '[' && !conf_section_begin(p, s)) {
        return NULL;
    }
    if (*s && *s != '[' && !strpbrk(s, "=:")) {
        conf_fail(p, p->line, "expected 'key = value' or '[section]', got '%s'", s);
        return NULL;
    }
    snprintf(str, (size_t)num, "%s\n", s);
    return str;
}

static bool
conf_unknown_key(struct conf_parser *p, const char *name)
{
    enum conf_kind kind = p->cur == 0 ? CONF_GLOBAL : CONF_CLUSTER;
    const char *sec = conf_section_name(p, (size_t)p->cur);
    const struct conf_key *k;

    if (kind == CONF_GLOBAL && conf_find_key(name, CONF_CLUSTER)) {
        return conf_fail(p, p->line,
                         "'%s' is a cluster key, not a [global] one: move it into "
                         "a cluster section",
                         name);
    }
    if (kind == CONF_CLUSTER && conf_find_key(name, CONF_GLOBAL)) {
        return conf_fail(p, p->line,
                         "'%s' is a [global] key, not a cluster one: move it from "
                         "[%s] to [global]",
                         name, sec);
    }
    k = conf_suggest(name, kind);
    if (k) {
        return conf_fail(p, p->line, "unknown key '%s' in [%s] (did you mean '%s'?)", name, sec,
                         k->name);
    }
    return conf_fail(p, p->line, "unknown key '%s' in [%s]", name, sec);
}

/* inih's handler: one "name = value" of the current section. Returns nonzero on success. */
static int
conf_handler(void *user, const char *section, const char *name, const char *value)
{
    struct conf_parser *p = user;
    const struct conf_key *k;
    struct conf_section *sec;
    char why[CONF_WHY_MAX], where[CONF_NAME_MAX + 8];
    size_t i;

    (void)section; /* the reader tracks sections */
    if (p->failed) {
        return 0;
    }
    if (p->cur < 0) {
        return conf_fail(p, p->line,
                         "key '%s' outside any section: put it under [global] or a "
                         "cluster section such as [msk]",
                         name);
    }
    if (!*name) {
        return conf_fail(p, p->line, "missing key name before '='");
    }
    k = conf_find_key(name, p->cur == 0 ? CONF_GLOBAL : CONF_CLUSTER);
    if (!k) {
        return conf_unknown_key(p, name);
    }
    i = (size_t)(k - conf_keys);
    sec = &p->sections[p->cur];
    if (sec->key_line[i]) {
        return conf_fail(p, p->line, "duplicate key '%s' in [%s] (first set at %s)", name,
                         conf_section_name(p, (size_t)p->cur),
                         conf_where(p, sec->key_line[i], where, sizeof(where)));
    }
    sec->key_line[i] = p->line;
    if (!*value) {
        return 1; /* empty: the default applies */
    }
    if (!conf_parse_value(k, value, conf_section_base(p, (size_t)p->cur), why, sizeof(why))) {
        if (k->type == CONF_HOSTPORT_LIST || k->type == CONF_CONNECT_TO) {
            return conf_fail(p, p->line, "invalid %s in [%s]: %s", name,
                             conf_section_name(p, (size_t)p->cur), why); /* why names the entry */
        }
        return conf_fail(p, p->line, "invalid %s '%s' in [%s]: %s", name, value,
                         conf_section_name(p, (size_t)p->cur), why);
    }
    sec->has_value[i] = true;
    return 1;
}

/* ---- Stage 2: defaults ---------------------------------------------------------------------- */

static bool
conf_apply_defaults(struct conf_parser *p, size_t sec)
{
    enum conf_kind kind = sec == 0 ? CONF_GLOBAL : CONF_CLUSTER;
    char why[CONF_WHY_MAX];
    size_t i;

    for (i = 0; i < CONF_N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];

        if (k->kind != kind || p->sections[sec].has_value[i] || !k->def || !*k->def) {
            continue;
        }
        if (!conf_parse_value(k, k->def, conf_section_base(p, sec), why, sizeof(why))) {
            return conf_fail(p, 0, "bad built-in default for %s: %s", k->name, why);
        }
    }
    return true;
}

/* ---- Stage 3: validation -------------------------------------------------------------------- */

/* The file must open for reading now; the TLS module parses it later. */
static bool
conf_check_file(struct conf_parser *p, size_t sec, const char *key, const char *path)
{
    struct stat st;
    int fd, err = 0;

    if (!path) {
        return true;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
    } else {
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            err = EISDIR;
        }
        close(fd);
    }
    if (err) {
        return conf_fail(p, conf_key_line(p, sec, key), "cannot read %s '%s' in [%s]: %s", key,
                         path, conf_section_name(p, sec), strerror(err));
    }
    return true;
}

/*
 * The sasl_* keys: a mechanism needs TLS, a readable password file and a user name (from
 * sasl_username or the file's JSON form, which must agree); without a mechanism the other two
 * keys would be silently unused, so they are refused. Loads the secret into cc->sasl_secret.
 */
static bool
conf_check_sasl(struct conf_parser *p, size_t sec)
{
    struct kb_cluster_conf *cc = &p->conf->clusters[sec - 1];
    char err[KB_CONF_ERR_MAX];
    const char *json_user;

    if (cc->sasl_mechanism == KB_SASL_NONE) {
        if (cc->sasl_username || cc->sasl_password_file) {
            const char *key = cc->sasl_username ? "sasl_username" : "sasl_password_file";
            return conf_fail(p, conf_key_line(p, sec, key),
                             "%s in [%s] has no effect without sasl_mechanism (one of %s); set "
                             "sasl_mechanism, or remove %s to let clients' own SASL pass through",
                             key, cc->name,
                             "SCRAM-SHA-512|SCRAM-SHA-256|PLAIN|AWS_MSK_IAM|OAUTHBEARER", key);
        }
        return true;
    }
    if (!cc->tls) {
        return conf_fail(p, conf_key_line(p, sec, "sasl_mechanism"),
                         "sasl_mechanism %s in [%s] needs tls = on: kbridge would send the "
                         "credentials in clear text (MSK's SASL ports are TLS: 9096/9196)",
                         conf_sasl_mechanism_str(cc->sasl_mechanism), cc->name);
    }
    if (KB_SASL_IS_IAM(cc->sasl_mechanism)) {
        if (cc->sasl_username || cc->sasl_password_file) {
            const char *key = cc->sasl_username ? "sasl_username" : "sasl_password_file";
            return conf_fail(p, conf_key_line(p, sec, key),
                             "%s in [%s] has no effect with sasl_mechanism %s: kbridge signs with "
                             "the AWS credentials (aws_credentials, aws_role_arn, ...); remove %s",
                             key, cc->name, conf_sasl_mechanism_str(cc->sasl_mechanism), key);
        }
        cc->aws_used = true; /* conf_check_aws() then requires a region, with its FILE:LINE */
        return true;
    }
    if (!cc->sasl_password_file) {
        return conf_fail(p, conf_key_line(p, sec, "sasl_mechanism"),
                         "sasl_mechanism %s in [%s] needs sasl_password_file (a file whose first "
                         "line is the password, or Secrets Manager's JSON)",
                         conf_sasl_mechanism_str(cc->sasl_mechanism), cc->name);
    }
    if (!(cc->sasl_secret = secret_load(cc->sasl_password_file, err, sizeof(err)))) {
        return conf_fail(p, conf_key_line(p, sec, "sasl_password_file"),
                         "sasl_password_file '%s' in [%s]: %s", cc->sasl_password_file, cc->name,
                         err);
    }
    json_user = cc->sasl_secret->username;
    if (json_user && cc->sasl_username && strcmp(json_user, cc->sasl_username) != 0) {
        return conf_fail(p, conf_key_line(p, sec, "sasl_username"),
                         "sasl_username '%s' in [%s] differs from the \"username\" in "
                         "sasl_password_file '%s': remove one of them or make them agree",
                         cc->sasl_username, cc->name, cc->sasl_password_file);
    }
    if (!cc->sasl_username && json_user && !(cc->sasl_username = strdup(json_user))) {
        return conf_fail(p, 0, "out of memory");
    }
    if (!cc->sasl_username) {
        return conf_fail(p, conf_key_line(p, sec, "sasl_mechanism"),
                         "sasl_mechanism %s in [%s] needs sasl_username (or a \"username\" in "
                         "the JSON form of sasl_password_file)",
                         conf_sasl_mechanism_str(cc->sasl_mechanism), cc->name);
    }
    if (conf_check_text(cc->sasl_username, err, sizeof(err)) == false) {
        return conf_fail(p, conf_key_line(p, sec, "sasl_password_file"),
                         "the \"username\" in sasl_password_file '%s' in [%s] %s",
                         cc->sasl_password_file, cc->name, err);
    }
    return true;
}

/* ---- The AWS credentials keys (aws/creds.h reads them) -------------------------------------- */

/* The keys that configure the AWS credentials layer; setting any of them turns it on. */
static const char *const conf_aws_keys[] = {"aws_credentials",
                                            "aws_role_arn",
                                            "aws_web_identity_token_file",
                                            "aws_role_session_name",
                                            "aws_profile",
                                            "aws_sts_endpoint",
                                            "aws_ca_file",
                                            "gcp_metadata_host",
                                            "gcp_audience",
                                            NULL};

/* An IAM role session name as STS allows it: 2..64 of [A-Za-z0-9+=,.@_-]. */
static bool
conf_check_session_name(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);

    if (n < 2 || n > 64) {
        return conf_why(why, whylen, "must be 2 to 64 characters long (STS's limit)");
    }
    for (; *v; v++) {
        if (!isalnum((unsigned char)*v) && !strchr("+=,.@_-", *v)) {
            return conf_why(why, whylen,
                            "character '%c' is not allowed (only letters, digits and "
                            "+=,.@_-)",
                            *v);
        }
    }
    return true;
}

/* A region name such as us-east-1 or cn-north-1: lower-case letters, digits and '-'. */
static bool
conf_check_region(const char *v, char *why, size_t whylen)
{
    const char *c;

    if (strlen(v) < 4 || strlen(v) > 32 || !strchr(v, '-')) {
        return conf_why(why, whylen, "not an AWS region name such as us-east-1");
    }
    for (c = v; *c; c++) {
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '-') {
            return conf_why(why, whylen,
                            "not an AWS region name such as us-east-1 (lower-case "
                            "letters, digits and '-')");
        }
    }
    return true;
}

/* "arn:<partition>:iam::<12 digits>:role/<path/name>" */
static bool
conf_check_role_arn(const char *v, char *why, size_t whylen)
{
    const char *acct = strstr(v, ":iam::");
    size_t i;

    if (strncmp(v, "arn:aws", 7) != 0 || !acct) {
        return conf_why(why, whylen, "expected arn:aws:iam::ACCOUNT_ID:role/NAME");
    }
    acct += strlen(":iam::");
    for (i = 0; i < 12; i++) {
        if (!isdigit((unsigned char)acct[i])) {
            return conf_why(why, whylen,
                            "expected a 12-digit account id after ':iam::' "
                            "(arn:aws:iam::ACCOUNT_ID:role/NAME)");
        }
    }
    if (strncmp(acct + 12, ":role/", 6) != 0 || !acct[18]) {
        return conf_why(why, whylen,
                        "expected ':role/NAME' after the account id: only a role can "
                        "be assumed with a web identity");
    }
    return true;
}

/* A URL kbridge may send web identity tokens to: https only, with a host. */
static bool
conf_check_sts_endpoint(const char *v, char *why, size_t whylen)
{
    if (strncasecmp(v, "https://", 8) != 0 || !v[8] || v[8] == '/') {
        return conf_why(why, whylen,
                        "expected https://HOST[:PORT][/PATH]: STS answers carry "
                        "credentials, so plain http is refused");
    }
    if (strpbrk(v, " \"'<>\\^`{|}")) {
        return conf_why(why, whylen, "contains a character not allowed in a URL");
    }
    return true;
}

/* gcp_metadata_host: a host or host:port, as GCE_METADATA_HOST takes it. */
static bool
conf_check_metadata_host(const char *v, char *why, size_t whylen)
{
    struct kb_hostport hp;
    bool is_ip;

    if (strchr(v, ':')) {
        return conf_parse_hostport(v, &hp, why, whylen);
    }
    return conf_check_host(v, &is_ip, why, whylen);
}

bool
conf_aws_region_from_host(const char *host, char *out, size_t outlen)
{
    static const char *const labels[] = {".kafka.", ".kafka-serverless.", NULL};
    const char *suffix = NULL, *start = NULL, *end;
    size_t hl = strlen(host), i;

    if (hl > 14 && strcasecmp(host + hl - 14, ".amazonaws.com") == 0) {
        suffix = host + hl - 14;
    } else if (hl > 17 && strcasecmp(host + hl - 17, ".amazonaws.com.cn") == 0) {
        suffix = host + hl - 17;
    }
    if (!suffix) {
        return false;
    }
    for (i = 0; labels[i] && !start; i++) {
        const char *c = strcasestr(host, labels[i]);

        if (c && c < suffix) {
            start = c + strlen(labels[i]);
        }
    }
    if (!start) {
        return false;
    }
    end = strchr(start, '.');
    if (end != suffix || end == start || (size_t)(end - start) >= outlen) {
        return false;
    }
    for (i = 0; start + i < end; i++) {
        out[i] = (char)tolower((unsigned char)start[i]);
    }
    out[i] = '\0';
    return true;
}

/*
 * The aws_* and gcp_* keys: each value's form, the combinations that make sense, and the region
 * (derived from the bootstrap hosts when unset). The region is required only when the credentials
 * layer is in use (cc->aws_used); a SASL mechanism that signs with AWS credentials should set
 * aws_used too before this runs, so its FILE:LINE error comes from here.
 */
static bool
conf_check_aws(struct conf_parser *p, size_t sec)
{
    struct kb_cluster_conf *cc = &p->conf->clusters[sec - 1];
    const struct conf_section *s = &p->sections[sec];
    const struct {
        const char *key;
        const char *value;
        bool (*check)(const char *v, char *why, size_t whylen);
    } forms[] = {
        {"aws_region", cc->aws_region, conf_check_region},
        {"aws_role_arn", cc->aws_role_arn, conf_check_role_arn},
        {"aws_role_session_name", cc->aws_role_session_name, conf_check_session_name},
        {"aws_sts_endpoint", cc->aws_sts_endpoint, conf_check_sts_endpoint},
        {"gcp_metadata_host", cc->gcp_metadata_host, conf_check_metadata_host},
    };
    char why[CONF_WHY_MAX], region[64];
    size_t i;

    cc->aws_used = cc->aws_used || cc->aws_credentials != KB_AWS_UNSET;
    for (i = 0; conf_aws_keys[i]; i++) {
        cc->aws_used = cc->aws_used || s->has_value[conf_key_index(conf_aws_keys[i])];
    }
    cc->line_aws = conf_key_line(p, sec, "aws_credentials");
    if (!s->has_value[conf_key_index("aws_credentials")] && KB_SASL_IS_IAM(cc->sasl_mechanism)) {
        cc->line_aws = conf_key_line(p, sec, "sasl_mechanism"); /* the key that needs a region */
    }
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        if (forms[i].value && !forms[i].check(forms[i].value, why, sizeof(why))) {
            return conf_fail(p, conf_key_line(p, sec, forms[i].key), "invalid %s '%s' in [%s]: %s",
                             forms[i].key, forms[i].value, cc->name, why);
        }
    }
    for (i = 0; !cc->aws_region && i < cc->n_bootstrap; i++) {
        if (conf_aws_region_from_host(cc->bootstrap[i].host, region, sizeof(region)) &&
            !(cc->aws_region = strdup(region))) {
            return conf_fail(p, 0, "out of memory");
        }
    }
    if (!cc->aws_used) {
        return true;
    }
    if (!cc->aws_region) {
        return conf_fail(p, cc->line_aws,
                         "no AWS region for [%s]: set aws_region (e.g. us-east-1); it is taken "
                         "from a bootstrap host only when that is *.kafka.<region>.amazonaws.com",
                         cc->name);
    }
    if (cc->aws_web_identity_token_file && !cc->aws_role_arn) {
        return conf_fail(p, conf_key_line(p, sec, "aws_web_identity_token_file"),
                         "aws_web_identity_token_file in [%s] needs aws_role_arn: the token is "
                         "exchanged for that role's credentials",
                         cc->name);
    }
    if (cc->aws_credentials == KB_AWS_GCP) {
        if (!cc->aws_role_arn) {
            return conf_fail(p, cc->line_aws,
                             "aws_credentials = gcp in [%s] needs aws_role_arn: the Google ID "
                             "token is exchanged at STS for that role's credentials",
                             cc->name);
        }
        if (cc->aws_web_identity_token_file || cc->aws_profile) {
            const char *key = cc->aws_profile ? "aws_profile" : "aws_web_identity_token_file";
            return conf_fail(p, conf_key_line(p, sec, key),
                             "%s in [%s] has no effect with aws_credentials = gcp (the token "
                             "comes from the metadata server): remove it",
                             key, cc->name);
        }
    } else if (cc->gcp_metadata_host || cc->gcp_audience) {
        const char *key = cc->gcp_audience ? "gcp_audience" : "gcp_metadata_host";
        return conf_fail(p, conf_key_line(p, sec, key),
                         "%s in [%s] has no effect unless aws_credentials = gcp", key, cc->name);
    }
    return conf_check_file(p, sec, "aws_ca_file", cc->aws_ca_file) &&
           conf_check_file(p, sec, "aws_web_identity_token_file", cc->aws_web_identity_token_file);
}

/* The line the broker ports of a cluster come from. */
static int
conf_ports_line(const struct conf_parser *p, size_t sec)
{
    const struct conf_section *s = &p->sections[sec];

    if (s->key_line[conf_key_index("broker_port_base")]) {
        return s->key_line[conf_key_index("broker_port_base")];
    }
    if (s->key_line[conf_key_index("max_node_id")]) {
        return s->key_line[conf_key_index("max_node_id")];
    }
    return conf_key_line(p, sec, "listen");
}

/* Derived defaults and the checks that involve one cluster only. */
static bool
conf_check_cluster(struct conf_parser *p, size_t sec)
{
    struct kb_cluster_conf *cc = &p->conf->clusters[sec - 1];
    const struct conf_section *s = &p->sections[sec];
    char a[KB_HOST_MAX + 16];

    if (cc->n_bootstrap == 0) {
        if (s->key_line[conf_key_index("bootstrap_servers")]) {
            return conf_fail(p, conf_key_line(p, sec, "bootstrap_servers"),
                             "bootstrap_servers in "
                             "[%s] is empty: list at least one broker as host:port",
                             cc->name);
        }
        return conf_fail(p, s->line,
                         "cluster [%s] has no bootstrap_servers: it is required "
                         "(comma-separated host:port list of the brokers)",
                         cc->name);
    }
    if (!cc->advertised_host && conf_is_wildcard(cc->listen.host)) {
        return conf_fail(p, conf_key_line(p, sec, "listen"),
                         "listen %s in [%s] is a wildcard "
                         "address, so advertised_host is required: clients are sent to "
                         "advertised_host:broker_port_base+N and cannot connect to %s",
                         conf_hostport_str(&cc->listen, a, sizeof(a)), cc->name, cc->listen.host);
    }
    if (cc->advertised_host && conf_is_wildcard(cc->advertised_host)) {
        return conf_fail(p, conf_key_line(p, sec, "advertised_host"),
                         "advertised_host %s in "
                         "[%s] is a wildcard address: clients cannot connect to it; name this "
                         "host as clients reach it",
                         cc->advertised_host, cc->name);
    }
    if (!cc->advertised_host && !(cc->advertised_host = strdup(cc->listen.host))) {
        return conf_fail(p, 0, "out of memory");
    }
    if (!s->has_value[conf_key_index("broker_port_base")]) {
        cc->broker_port_base = cc->listen.port + 1;
    }
    if (cc->broker_port_base + cc->max_node_id > 65535) {
        return conf_fail(p, conf_ports_line(p, sec),
                         "broker_port_base %d + max_node_id %d in "
                         "[%s] puts node-id ports above 65535 (up to %d): lower broker_port_base "
                         "or max_node_id",
                         cc->broker_port_base, cc->max_node_id, cc->name,
                         cc->broker_port_base + cc->max_node_id);
    }
    cc->line_tls_ca_file = s->key_line[conf_key_index("tls_ca_file")];
    cc->line_tls_cert_file = s->key_line[conf_key_index("tls_cert_file")];
    cc->line_tls_key_file = s->key_line[conf_key_index("tls_key_file")];
    if (!conf_check_sasl(p, sec) || !conf_check_aws(p, sec)) {
        return false;
    }
    if (!cc->tls) {
        return true; /* the tls_* keys are parsed but unused: see docs/config.md */
    }
    if (!cc->tls_cert_file != !cc->tls_key_file) {
        return conf_fail(
            p, conf_key_line(p, sec, cc->tls_cert_file ? "tls_cert_file" : "tls_key_file"),
            "%s in [%s] needs %s too: a client certificate and its key go together",
            cc->tls_cert_file ? "tls_cert_file" : "tls_key_file", cc->name,
            cc->tls_cert_file ? "tls_key_file" : "tls_cert_file");
    }
    return conf_check_file(p, sec, "tls_ca_file", cc->tls_ca_file) &&
           conf_check_file(p, sec, "tls_cert_file", cc->tls_cert_file) &&
           conf_check_file(p, sec, "tls_key_file", cc->tls_key_file);
}

static const char *
conf_claim_str(const struct conf_parser *p, const struct conf_claim *c, char *buf, size_t len)
{
    const char *of = c->sec ? "of" : "in", *name = conf_section_name(p, c->sec);

    if (c->hi != c->lo) {
        snprintf(buf, len, "%s %d..%d %s [%s]", c->what, c->lo, c->hi, of, name);
    } else {
        snprintf(buf, len, "%s %d %s [%s]", c->what, c->lo, of, name);
    }
    return buf;
}

/* Every port kbridge listens on is unique across the file, whatever the host. */
static bool
conf_check_ports(struct conf_parser *p)
{
    const struct kb_conf *conf = p->conf;
    char a[CONF_NAME_MAX + 64], b[CONF_NAME_MAX + 64], where[CONF_NAME_MAX + 8];
    struct conf_claim *claims, *x, *y;
    size_t n = 0, i, j;
    bool ok = true;

    claims = calloc(2 * conf->n_clusters + 1, sizeof(*claims));
    if (!claims) {
        return conf_fail(p, 0, "out of memory");
    }
    if (conf->has_admin) {
        claims[n++] = (struct conf_claim){conf->admin_listen.port, conf->admin_listen.port, 0,
                                          "admin_listen port", conf_key_line(p, 0, "admin_listen")};
    }
    for (i = 0; i < conf->n_clusters; i++) {
        const struct kb_cluster_conf *cc = &conf->clusters[i];

        claims[n++] = (struct conf_claim){cc->listen.port, cc->listen.port, i + 1, "listen port",
                                          conf_key_line(p, i + 1, "listen")};
        claims[n++] =
            (struct conf_claim){cc->broker_port_base, cc->broker_port_base + cc->max_node_id, i + 1,
                                "broker ports", conf_ports_line(p, i + 1)};
    }
    for (i = 0; i < n && ok; i++) {
        for (j = i + 1; j < n && ok; j++) {
            if (claims[i].lo > claims[j].hi || claims[j].lo > claims[i].hi) {
                continue;
            }
            x = claims[i].line >= claims[j].line ? &claims[i] : &claims[j];
            y = x == &claims[i] ? &claims[j] : &claims[i];
            ok = conf_fail(p, x->line,
                           "port clash between %s and %s (%s): every port "
                           "kbridge listens on must be unique",
                           conf_claim_str(p, x, a, sizeof(a)), conf_claim_str(p, y, b, sizeof(b)),
                           conf_where(p, y->line, where, sizeof(where)));
        }
    }
    free(claims);
    return ok;
}

static bool
conf_finish(struct conf_parser *p)
{
    size_t i;

    if (p->conf->n_clusters == 0) {
        return conf_fail(p, 0,
                         "no cluster section: add one, e.g. [msk] with "
                         "bootstrap_servers = b-1.example:9094");
    }
    if (!conf_apply_defaults(p, 0)) {
        return false;
    }
    if (p->conf->buffer_low_bytes >= p->conf->buffer_high_bytes) {
        return conf_fail(p, conf_key_line(p, 0, "buffer_low_bytes"),
                         "buffer_low_bytes (%zu) must be below buffer_high_bytes (%zu): reading "
                         "resumes when a queue drains to the low mark",
                         p->conf->buffer_low_bytes, p->conf->buffer_high_bytes);
    }
    for (i = 1; i <= p->conf->n_clusters; i++) {
        if (!conf_apply_defaults(p, i) || !conf_check_cluster(p, i)) {
            return false;
        }
    }
    return conf_check_ports(p);
}

/* ---- Public --------------------------------------------------------------------------------- */

static void
conf_parser_close(struct conf_parser *p)
{
    if (p->file) {
        fclose(p->file);
    }
    free(p->buf);
    free(p->sections);
}

struct kb_conf *
conf_load(const char *path, char *err, size_t errlen)
{
    struct conf_parser p = {.path = path, .cur = -1, .err = err, .errlen = errlen};
    int saved_max_line = ini_max_line;
    int rc;

    p.conf = calloc(1, sizeof(*p.conf));
    if (!p.conf || !(p.conf->path = strdup(path))) {
        conf_fail(&p, 0, "out of memory");
        goto fail;
    }
    p.conf->refcount = 1;
    if (!conf_grow(&p)) {
        goto fail;
    }
    p.file = fopen(path, "r");
    if (!p.file) {
        conf_fail(&p, 0, "cannot open: %s", strerror(errno));
        goto fail;
    }
    /*
     * Debian's inih r55 turns its compile-time options into globals; the line buffer is a
     * stack array of ini_max_line bytes, so raising it is safe. The reader still checks the
     * size inih asks for, so a smaller build gives "line too long", never a split line.
     */
    ini_max_line = CONF_LINE_MAX + 2;
    rc = ini_parse_stream(conf_reader, &p, conf_handler, &p);
    ini_max_line = saved_max_line;
    if (!p.failed && rc != 0) {
        conf_fail(&p, rc > 0 ? rc : 0, "%s", rc == -2 ? "out of memory" : "syntax error");
    }
    if (p.failed || !conf_finish(&p)) {
        goto fail;
    }
    conf_parser_close(&p);
    return p.conf;
fail:
    conf_parser_close(&p);
    conf_free(p.conf);
    return NULL;
}

/* "--KEY..." of a flag token as the key name ('-' becomes '_') into key. false if not a flag. */
static bool
conf_flag_key(const char *tok, char *key, size_t keylen)
{
    size_t len, i;

    if (strncmp(tok, "--", 2) != 0) {
        return false;
    }
    tok += 2;
    len = strcspn(tok, "=");
    if (len == 0 || len >= keylen) {
        return false;
    }
    for (i = 0; i < len; i++) {
        key[i] = tok[i] == '-' ? '_' : tok[i];
    }
    key[len] = '\0';
    return true;
}

/* Writes key as a flag ("--" and '_' as '-') into out; returns out. */
static const char *
conf_key_flag(const char *key, char *out, size_t outlen)
{
    size_t i;

    snprintf(out, outlen, "--%s", key);
    for (i = 2; out[i]; i++) {
        out[i] = out[i] == '_' ? '-' : out[i];
    }
    return out;
}

/* An unknown flag, with the closest key of either kind as a suggestion. */
static bool
conf_unknown_flag(struct conf_parser *p, const char *key)
{
    const struct conf_key *k = conf_suggest(key, CONF_CLUSTER);
    char a[CONF_NAME_MAX + 2], b[CONF_NAME_MAX + 2];

    if (!k) {
        k = conf_suggest(key, CONF_GLOBAL);
    }
    if (k) {
        return conf_fail(p, p->line, "unknown flag '%s' (did you mean '%s'?)",
                         conf_key_flag(key, a, sizeof(a)), conf_key_flag(k->name, b, sizeof(b)));
    }
    return conf_fail(p, p->line, "unknown flag '%s': see kbridge --help and docs/config.md",
                     conf_key_flag(key, a, sizeof(a)));
}

/*
 * The value of the flag at args[*i] (its "=VALUE" part or the next token); advances *i past
 * both. NULL, with the error recorded, when the value is missing.
 */
static const char *
conf_flag_value(struct conf_parser *p, int *i)
{
    const char *tok = p->args[*i], *eq = strchr(tok, '=');

    p->line = *i + 1;
    if (eq) {
        *i += 1;
        return eq + 1;
    }
    if (*i + 1 >= p->nargs) {
        conf_fail(p, p->line, "needs a value: %s VALUE or %s=VALUE", tok, tok);
        return NULL;
    }
    *i += 2;
    return p->args[*i - 1];
}

struct kb_conf *
conf_load_flags(int nargs, char *const *args, char *err, size_t errlen)
{
    struct conf_parser p = {.path = "command line",
                            .cur = -1,
                            .err = err,
                            .errlen = errlen,
                            .args = args,
                            .nargs = nargs};
    char key[CONF_NAME_MAX], header[CONF_NAME_MAX + 2];
    const char *name = "kbridge", *value;
    int i, name_line = 0;

    p.conf = calloc(1, sizeof(*p.conf));
    if (!p.conf || !(p.conf->path = strdup(p.path))) {
        conf_fail(&p, 0, "out of memory");
        goto fail;
    }
    p.conf->refcount = 1;
    p.conf->from_flags = true;
    if (!conf_grow(&p)) {
        goto fail;
    }
    /* --name first: the cluster section has to exist before its keys arrive. */
    for (i = 0; i < nargs;) {
        bool is_name = conf_flag_key(args[i], key, sizeof(key)) && strcmp(key, "name") == 0;

        if (!(value = conf_flag_value(&p, &i))) {
            goto fail;
        }
        if (is_name) {
            name = value;
            name_line = p.line;
        }
    }
    if (strlen(name) >= CONF_NAME_MAX || strchr(name, ']')) {
        conf_fail(&p, name_line,
                  "invalid --name '%s': use 1 to %d letters, digits, '-', '.' or '_'", name,
                  CONF_NAME_MAX - 1);
        goto fail;
    }
    snprintf(header, sizeof(header), "[%s]", name);
    p.line = name_line;
    if (!conf_section_begin(&p, header)) {
        goto fail;
    }
    if (p.cur == 0) {
        conf_fail(&p, name_line, "--name global is reserved for the [global] section");
        goto fail;
    }
    for (i = 0; i < nargs;) {
        const struct conf_key *k;
        int at = i;

        if (!conf_flag_key(args[i], key, sizeof(key))) {
            p.line = 0;
            conf_fail(&p, 0, "unexpected argument '%s': flags are --KEY VALUE or --KEY=VALUE",
                      args[i]);
            goto fail;
        }
        value = conf_flag_value(&p, &i);
        if (strcmp(key, "name") == 0) {
            continue;
        }
        k = conf_find_key(key, CONF_CLUSTER);
        if (!k) {
            k = conf_find_key(key, CONF_GLOBAL);
        }
        p.line = at + 1;
        if (!k) {
            conf_unknown_flag(&p, key);
            goto fail;
        }
        /* The same handler as a "key = value" line of that section in a file. */
        p.cur = k->kind == CONF_GLOBAL ? 0 : 1;
        if (!conf_handler(&p, NULL, k->name, value)) {
            goto fail;
        }
    }
    p.line = 0;
    if (!conf_finish(&p)) {
        goto fail;
    }
    conf_parser_close(&p);
    return p.conf;
fail:
    conf_parser_close(&p);
    conf_free(p.conf);
    return NULL;
}

void
conf_split_args(int argc, char **argv, const char *const *own, char **rest, int *n_rest,
                char **flags, int *n_flags)
{
    int i, j;

    *n_rest = 0;
    *n_flags = 0;
    if (argc > 0) {
        rest[(*n_rest)++] = argv[0];
    }
    for (i = 1; i < argc; i++) {
        const char *tok = argv[i];
        bool mine = strncmp(tok, "--", 2) != 0 || tok[2] == '\0';

        for (j = 0; !mine && own[j]; j++) {
            size_t len = strlen(own[j]);
            mine =
                strncmp(tok + 2, own[j], len) == 0 && (tok[2 + len] == '\0' || tok[2 + len] == '=');
        }
        if (mine) {
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        flags[(*n_flags)++] = argv[i];
        if (!strchr(tok, '=') && i + 1 < argc) {
            flags[(*n_flags)++] = argv[++i];
        }
    }
}

struct kb_conf *
conf_ref(struct kb_conf *conf)
{
    atomic_fetch_add(&conf->refcount, 1);
    return conf;
}

void
conf_unref(struct kb_conf *conf)
{
    if (conf && atomic_fetch_sub(&conf->refcount, 1) == 1) {
        conf_free(conf);
    }
}

static void
conf_dump_section(FILE *out, const char *name, enum conf_kind kind, const void *base)
{
    char buf[CONF_VALUE_MAX];
    const char *v;
    size_t i;

    fprintf(out, "\n[%s]\n", name);
    if (kind == CONF_CLUSTER && conf_cluster_warning(base, buf, sizeof(buf))) {
        fprintf(out, "; warning: %s\n", buf);
    }
    for (i = 0; i < CONF_N_KEYS; i++) {
        if (conf_keys[i].kind == kind) {
            v = conf_value_str(&conf_keys[i], base, buf, sizeof(buf));
            fprintf(out, "%s =%s%s\n", conf_keys[i].name, *v ? " " : "", v);
        }
    }
}

void
conf_dump(const struct kb_conf *conf, FILE *out)
{
    size_t i;

    fprintf(out, "; kbridge effective configuration (defaults filled in), from %s\n", conf->path);
    conf_dump_section(out, "global", CONF_GLOBAL, conf);
    for (i = 0; i < conf->n_clusters; i++) {
        conf_dump_section(out, conf->clusters[i].name, CONF_CLUSTER, &conf->clusters[i]);
    }
}

bool
conf_needs_restart(const struct kb_conf *old, const struct kb_conf *fresh, char *why, size_t whylen)
{
    char a[CONF_VALUE_MAX], b[CONF_VALUE_MAX];
    size_t i;

    /* Clusters may come, go and change on reload; only some [global] keys are fixed. */
    for (i = 0; i < CONF_N_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        const char *va, *vb;

        if (k->reloadable || k->kind != CONF_GLOBAL) {
            continue;
        }
        va = conf_value_str(k, old, a, sizeof(a));
        vb = conf_value_str(k, fresh, b, sizeof(b));
        if (strcmp(va, vb) != 0) {
            return !conf_why(why, whylen, "%s in [global] changed from '%s' to '%s'", k->name, va,
                             vb);
        }
    }
    return false;
}

const char *
conf_hostport_str(const struct kb_hostport *hp, char *out, size_t outlen)
{
    snprintf(out, outlen, strchr(hp->host, ':') ? "[%s]:%u" : "%s:%u", hp->host,
             (unsigned)hp->port);
    return out;
}

const struct kb_hostport *
conf_connect_target(const struct kb_cluster_conf *cc, const struct kb_hostport *from)
{
    size_t i;

    for (i = 0; i < cc->n_connect_to; i++) {
        if (conf_hostport_equal(&cc->connect_to[i].from, from)) {
            return &cc->connect_to[i].to;
        }
    }
    return from;
}

const char *
conf_log_level_str(enum kb_log_level l)
{
    return (unsigned)l <= KB_LOG_DEBUG ? conf_log_level_names[l] : "?";
}

const char *
conf_sasl_mechanism_str(enum kb_sasl_mechanism m)
{
    return conf_sasl_mechanism_names[m];
}

bool
conf_cluster_warning(const struct kb_cluster_conf *cc, char *out, size_t outlen)
{
    if (!cc->sasl_secret || !cc->sasl_secret->loose_mode) {
        return false;
    }
    snprintf(out, outlen,
             "sasl_password_file '%s' in [%s] is readable by group or others (mode %03o): "
             "chmod 600 it",
             cc->sasl_password_file, cc->name, cc->sasl_secret->file_mode);
    return true;
}

const char *
conf_aws_credentials_str(enum kb_aws_credentials c)
{
    return (unsigned)c <= KB_AWS_GCP ? conf_aws_credentials_names[c] : "?"; /* "" when unset */
}

const char *
conf_aws_region(const struct kb_cluster_conf *cc)
{
    return cc->aws_region;
}

const char *
conf_tls_verify_str(enum kb_tls_verify v)
{
    return (unsigned)v <= KB_VERIFY_NONE ? conf_tls_verify_names[v] : "?";
}
