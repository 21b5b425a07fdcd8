/*
 * test_golden.c - the whole rewrite path against frames captured from a real implementation
 * (librdkafka's mock cluster): decode each frame, rewrite it with the identity, to 127.0.0.1
 * and back, compare bytes, and check index.json's decoded view. argv[1] is the frames dir.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_frame.h"
#include "kp_rewrite.h"
#include "test.h"

#define GOLDEN_MAX_CASES 64 /* index.json has 37 */
#define GOLDEN_MAX_ADDRS 8  /* brokers or coordinators per case */
#define GOLDEN_HOST_MAX 256 /* longest host in index.json, plus NUL */
#define GOLDEN_MAX_FRAME (1u << 20)
#define GOLDEN_LOCAL_HOST "127.0.0.1"
#define GOLDEN_LOCAL_PORT 19092

/* One broker address as index.json records it. */
struct golden_addr {
    int32_t node;               /* node id */
    char host[GOLDEN_HOST_MAX]; /* host name, NUL-terminated */
    int32_t port;               /* port */
};

/* One case of index.json, and its frames once loaded. */
struct golden_case {
    char name[64];                              /* file stem: NAME.req / NAME.resp */
    int16_t api_key;                            /* api key of the exchange */
    int16_t api_version;                        /* api version of the exchange */
    struct golden_addr addrs[GOLDEN_MAX_ADDRS]; /* brokers, or the coordinator */
    int naddrs;                                 /* entries in addrs */
    int ntopics;                                /* Metadata topics, -1 for other apis */
    int napis;                                  /* ApiVersions entries, -1 when undecoded */
    size_t trailing;                            /* bytes after the known end of the body */
    uint8_t *resp;                              /* the whole response frame */
    size_t resp_len;                            /* its length */
    uint8_t *req;                               /* the whole request frame */
    size_t req_len;                             /* its length */
    size_t body_at;                             /* offset of the body after the header */
    int32_t correlation_id;                     /* from the response header */
};

static struct golden_case golden_cases[GOLDEN_MAX_CASES]; /* read once by main */
static int golden_ncases;                                 /* entries in golden_cases */

/* ---- A minimal JSON scanner: just enough to walk index.json ---------------------------- */

static const char *
json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
        p++;
    }
    return p;
}

/* The first byte after the JSON value at p, or NULL when there is none. */
static const char *
json_skip(const char *p)
{
    char close;

    p = json_ws(p);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1]) {
                p++;
            }
        }
        return *p ? p + 1 : NULL;
    }
    if (*p != '{' && *p != '[') {
        while (*p && !strchr(",}] \n\r\t", *p)) {
            p++;
        }
        return p;
    }
    close = *p == '{' ? '}' : ']';
    p = json_ws(p + 1);
    if (*p == close) {
        return p + 1;
    }
    for (;;) {
        if (close == '}') {
            p = json_skip(p); /* the key */
            if (!p || *(p = json_ws(p)) != ':') {
                return NULL;
            }
            p++;
        }
        p = json_skip(p);
        if (!p) {
            return NULL;
        }
        p = json_ws(p);
        if (*p != ',') {
            return *p == close ? p + 1 : NULL;
        }
        p = json_ws(p + 1);
    }
}

/*
 * Element i of the array or object at p (for an object: the value of its i-th member; with
 * key != NULL: the value of member key instead). NULL when absent.
 */
static const char *
json_get(const char *p, int i, const char *key)
{
    int n = 0;

    p = json_ws(p);
    if (*p != '{' && *p != '[') {
        return NULL;
    }
    p = json_ws(p + 1);
    while (*p && *p != '}' && *p != ']') {
        const char *k = p, *v;

        if (*k == '"' && (p = json_skip(k)) != NULL && *(p = json_ws(p)) == ':') {
            v = json_ws(p + 1);
            if (key && strncmp(k + 1, key, strlen(key)) == 0 && k[1 + strlen(key)] == '"') {
                return v;
            }
        } else {
            v = k;
        }
        if (!key && n++ == i) {
            return v;
        }
        p = json_skip(v);
        if (!p) {
            return NULL;
        }
        p = json_ws(p);
        if (*p == ',') {
            p = json_ws(p + 1);
        }
    }
    return NULL;
}

static int
json_count(const char *p)
{
    int n = 0;

    while (p && json_get(p, n, NULL)) {
        n++;
    }
    return n;
}

static long
json_int(const char *p)
{
    return p ? strtol(p, NULL, 10) : -1;
}

/* Copies the JSON string at p (no escapes in index.json) into out; "" when not a string. */
static void
json_str(const char *p, char *out, size_t cap)
{
    size_t n = 0;

    if (p && *p == '"') {
        for (p++; *p && *p != '"' && n + 1 < cap; p++) {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* ---- Loading -------------------------------------------------------------------------- */

static uint8_t *
golden_read(const char *dir, const char *name, const char *ext, size_t *len)
{
    char path[512];
    FILE *f;
    uint8_t *buf = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* Fills c from the index.json object at obj. */
static void
golden_parse_case(struct golden_case *c, const char *obj)
{
    const char *dec = json_get(obj, 0, "decoded");
    const char *addrs = json_get(dec, 0, "brokers");
    const char *trailing = json_get(dec, 0, "trailing");
    const char *apis = json_get(dec, 0, "apis");
    char hex[64];
    int i;

    json_str(json_get(obj, 0, "name"), c->name, sizeof(c->name));
    c->api_key = (int16_t)json_int(json_get(obj, 0, "api_key"));
    c->api_version = (int16_t)json_int(json_get(obj, 0, "api_version"));
    c->ntopics = json_count(json_get(dec, 0, "topics"));
    if (c->api_key != KP_API_METADATA) {
        c->ntopics = -1;
        addrs = json_get(dec, 0, "coordinators");
    }
    c->naddrs = json_count(addrs);
    for (i = 0; i < c->naddrs && i < GOLDEN_MAX_ADDRS; i++) {
        const char *a = json_get(addrs, i, NULL);

        c->addrs[i].node = (int32_t)json_int(json_get(a, 0, "node"));
        json_str(json_get(a, 0, "host"), c->addrs[i].host, sizeof(c->addrs[i].host));
        c->addrs[i].port = (int32_t)json_int(json_get(a, 0, "port"));
    }
    json_str(trailing, hex, sizeof(hex));
    c->trailing = strlen(hex) / 2;
    c->napis = apis ? json_count(apis) : -1;
}

/* Reads index.json and every frame it names; false when anything is missing. */
static bool
golden_load(const char *dir)
{
    size_t len;
    char *index = (char *)golden_read(dir, "index", ".json", &len);
    const char *obj;
    bool ok = index != NULL;

    if (!ok) {
        return false;
    }
    index[len] = '\0';
    while (ok && golden_ncases < GOLDEN_MAX_CASES &&
           (obj = json_get(index, golden_ncases, NULL)) != NULL) {
        struct golden_case *c = &golden_cases[golden_ncases++];

        golden_parse_case(c, obj);
        c->resp = golden_read(dir, c->name, ".resp", &c->resp_len);
        c->req = golden_read(dir, c->name, ".req", &c->req_len);
        ok = c->resp && c->req && c->naddrs <= GOLDEN_MAX_ADDRS;
    }
    free(index);
    return ok && golden_ncases > 0;
}

/* ---- Maps ------------------------------------------------------------------------------ */

/* Every broker to 127.0.0.1:19092+node. */
static bool
golden_map_local(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
                 const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    (void)arg;
    (void)host;
    (void)host_len;
    (void)port;
    *new_host = GOLDEN_LOCAL_HOST;
    *new_host_len = strlen(GOLDEN_LOCAL_HOST);
    *new_port = GOLDEN_LOCAL_PORT + node_id;
    return true;
}

/* Back to the address index.json gives the node (arg is the case). */
static bool
golden_map_back(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
                const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    const struct golden_case *c = arg;
    int i;

    (void)host;
    (void)host_len;
    (void)port;
    for (i = 0; i < c->naddrs; i++) {
        if (c->addrs[i].node == node_id) {
            *new_host = c->addrs[i].host;
            *new_host_len = strlen(c->addrs[i].host);
            *new_port = c->addrs[i].port;
            return true;
        }
    }
    return false;
}

/* Says yes without changing anything: the codec must then write identical bytes. */
static bool
golden_map_same(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
                const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    (void)arg;
    (void)node_id;
    (void)host;
    (void)host_len;
    (void)port;
    (void)new_host;
    (void)new_host_len;
    (void)new_port;
    return true;
}

/* ---- An independent decoder of the addresses, with the reader only -------------------- */

/* What golden_decode found in a body. */
struct golden_decoded {
    struct golden_addr addrs[GOLDEN_MAX_ADDRS]; /* brokers or the coordinator */
    int naddrs;                                 /* entries in addrs */
    int ntopics;                                /* Metadata topics, else -1 */
    int napis;                                  /* ApiVersions entries, else -1 */
};

static enum kp_status
golden_decode_addr(struct kp_reader *r, unsigned flex, struct golden_decoded *d)
{
    struct golden_addr *a = &d->addrs[d->naddrs];
    struct kp_view host;
    enum kp_status st;

    if (d->naddrs >= GOLDEN_MAX_ADDRS) {
        return KP_TOO_LARGE;
    }
    if ((st = kp_reader_i32(r, &a->node)) != KP_OK ||
        (st = kp_reader_string(r, flex, &host)) != KP_OK ||
        (st = kp_reader_i32(r, &a->port)) != KP_OK) {
        return st;
    }
    if (host.len >= GOLDEN_HOST_MAX) {
        return KP_TOO_LARGE;
    }
    memcpy(a->host, host.ptr, host.len);
    a->host[host.len] = '\0';
    d->naddrs++;
    return KP_OK;
}

/* Metadata up to the topics count, FindCoordinator v0-v3, ApiVersions up to its count. */
static enum kp_status
golden_decode(const struct golden_case *c, const uint8_t *body, size_t len,
              struct golden_decoded *d)
{
    struct kp_reader r;
    int16_t v = c->api_version, err = 0;
    unsigned flex = kp_api_is_flexible(c->api_key, v) ? KP_COMPACT : 0;
    int32_t n, i;
    enum kp_status st = KP_OK;

    memset(d, 0, sizeof(*d));
    d->ntopics = d->napis = -1;
    kp_reader_init(&r, body, len);
    if (c->api_key == KP_API_METADATA) {
        if (v >= 3) {
            st = kp_reader_skip(&r, 4);
        }
        if (st == KP_OK) {
            st = kp_reader_array_len(&r, flex, 1, &n);
        }
        for (i = 0; st == KP_OK && i < n; i++) {
            st = golden_decode_addr(&r, flex, d);
            if (st == KP_OK && v >= 1) {
                st = kp_reader_string(&r, flex | KP_NULLABLE, NULL);
            }
            if (st == KP_OK && flex) {
                st = kp_reader_skip_tags(&r);
            }
        }
        if (st == KP_OK && v >= 2) {
            st = kp_reader_string(&r, flex | KP_NULLABLE, NULL);
        }
        if (st == KP_OK && v >= 1) {
            st = kp_reader_skip(&r, 4);
        }
        if (st == KP_OK) {
            st = kp_reader_array_len(&r, flex, 1, &d->ntopics);
        }
    } else if (c->api_key == KP_API_FIND_COORDINATOR) {
        st = kp_reader_skip(&r, v >= 1 ? 4 + 2 : 2);
        if (st == KP_OK && v >= 1) {
            st = kp_reader_string(&r, flex | KP_NULLABLE, NULL);
        }
        if (st == KP_OK) {
            st = golden_decode_addr(&r, flex, d);
        }
    } else if (c->api_key == KP_API_API_VERSIONS) {
        st = kp_reader_i16(&r, &err);
        if (st == KP_OK && err == 0) {
            st = kp_reader_array_len(&r, flex, 6, &d->napis);
        }
    }
    return st;
}

/* ---- Cases ---------------------------------------------------------------------------- */

/* Runs check on every case and names the case of a failed check. */
static void
golden_each(void (*check)(struct golden_case *c))
{
    int i;

    for (i = 0; i < golden_ncases; i++) {
        int before = test_checks_failed;

        check(&golden_cases[i]);
        if (test_checks_failed != before) {
            fprintf(stderr, "  ... in case %s\n", golden_cases[i].name);
        }
    }
}

static const uint8_t *
golden_body(const struct golden_case *c, size_t *len)
{
    *len = c->resp_len - c->body_at;
    return c->resp + c->body_at;
}

/* Frame size and response header of every .resp. */
static void
golden_check_response_headers(struct golden_case *c)
{
    size_t size = 0, hlen = 0;

    CHECK_EQ_INT(kp_frame_size(c->resp, c->resp_len, GOLDEN_MAX_FRAME, &size), KP_OK);
    CHECK_EQ_INT(size, c->resp_len - KP_FRAME_PREFIX);
    CHECK_EQ_INT(kp_response_header_decode(c->resp + KP_FRAME_PREFIX, size, c->api_key,
                                           c->api_version, &c->correlation_id, &hlen),
                 KP_OK);
    /* ApiVersions: header v0 at every version; others: v1 (4 + 1 tag byte) if flexible */
    CHECK_EQ_INT(hlen, kp_api_response_header_version(c->api_key, c->api_version) ? 5 : 4);
    c->body_at = KP_FRAME_PREFIX + hlen;
    CHECK(kp_api_response_needs_rewrite(c->api_key, c->api_version));
}

static void
test_golden_response_headers(void)
{
    golden_each(golden_check_response_headers);
}

/* Every .req decodes to the case's api, version, and the response's correlation id. */
static void
golden_check_request_headers(struct golden_case *c)
{
    struct kp_request_header hdr;
    size_t size = 0;
    bool expects = false;

    CHECK_EQ_INT(kp_frame_size(c->req, c->req_len, GOLDEN_MAX_FRAME, &size), KP_OK);
    CHECK_EQ_INT(size, c->req_len - KP_FRAME_PREFIX);
    CHECK_EQ_INT(kp_request_header_decode(c->req + KP_FRAME_PREFIX, size, &hdr), KP_OK);
    CHECK_EQ_INT(hdr.api_key, c->api_key);
    CHECK_EQ_INT(hdr.api_version, c->api_version);
    CHECK_EQ_INT(hdr.correlation_id, c->correlation_id);
    CHECK(hdr.header_len <= size);
    CHECK(hdr.client_id_len == -1 || hdr.client_id != NULL);
    CHECK_EQ_INT(kp_request_expects_response(c->req + KP_FRAME_PREFIX, size, &hdr, &expects),
                 KP_OK);
    CHECK(expects);
}

static void
test_golden_request_headers(void)
{
    golden_each(golden_check_request_headers);
}

/* Rewrites c's body with map into out; KP_OK expected. */
static void
golden_rewrite(const struct golden_case *c, kp_map_fn map, void *arg, struct kp_writer *out,
               struct kp_rewrite_stats *stats)
{
    size_t len, err_offset = 0;
    const uint8_t *body = golden_body(c, &len);

    kp_writer_init(out);
    CHECK_EQ_INT(kp_rewrite_response(c->api_key, c->api_version, body, len, map, arg, out, stats,
                                     &err_offset),
                 KP_OK);
}

/* No map, and a map that keeps everything: the output is the input, byte for byte. */
static void
golden_check_identity(struct golden_case *c)
{
    kp_map_fn maps[] = {NULL, golden_map_same};
    size_t m, len;
    const uint8_t *body = golden_body(c, &len);

    for (m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
        struct kp_writer out;
        struct kp_rewrite_stats stats;

        golden_rewrite(c, maps[m], NULL, &out, &stats);
        CHECK_EQ_INT(out.len, len);
        CHECK(out.len == len && memcmp(out.buf, body, len) == 0);
        CHECK_EQ_INT(stats.addresses, c->naddrs);
        CHECK_EQ_INT(stats.rewritten, maps[m] ? c->naddrs : 0);
        CHECK_EQ_INT(stats.capped, 0); /* the mock's versions are all rewritable */
        kp_writer_free(&out);
    }
}

static void
test_golden_identity(void)
{
    golden_each(golden_check_identity);
}

/* Every broker to 127.0.0.1:19092+node, checked by decoding; then back to the original bytes. */
static void
golden_check_rewrite_local_and_back(struct golden_case *c)
{
    struct kp_writer local, back;
    struct kp_rewrite_stats stats;
    struct golden_decoded orig, d;
    size_t len, err_offset = 0;
    const uint8_t *body = golden_body(c, &len);
    int j;

    /* The original decodes to what index.json says. */
    CHECK_EQ_INT(golden_decode(c, body, len, &orig), KP_OK);
    CHECK_EQ_INT(orig.naddrs, c->naddrs);
    for (j = 0; j < orig.naddrs && j < c->naddrs; j++) {
        CHECK_EQ_INT(orig.addrs[j].node, c->addrs[j].node);
        CHECK(strcmp(orig.addrs[j].host, c->addrs[j].host) == 0);
        CHECK_EQ_INT(orig.addrs[j].port, c->addrs[j].port);
    }
    CHECK_EQ_INT(orig.ntopics, c->ntopics);
    CHECK_EQ_INT(orig.napis, c->napis);

    golden_rewrite(c, golden_map_local, NULL, &local, &stats);
    CHECK_EQ_INT(stats.rewritten, c->naddrs);
    CHECK_EQ_INT(golden_decode(c, local.buf, local.len, &d), KP_OK);
    CHECK_EQ_INT(d.naddrs, c->naddrs);
    CHECK_EQ_INT(d.ntopics, c->ntopics);
    for (j = 0; j < d.naddrs; j++) {
        CHECK(strcmp(d.addrs[j].host, GOLDEN_LOCAL_HOST) == 0);
        CHECK_EQ_INT(d.addrs[j].port, GOLDEN_LOCAL_PORT + c->addrs[j].node);
        CHECK_EQ_INT(d.addrs[j].node, c->addrs[j].node);
    }
    if (c->naddrs > 0) {
        CHECK(local.len < len); /* 9-byte host in place of a 59-byte one */
    }

    kp_writer_init(&back);
    CHECK_EQ_INT(kp_rewrite_response(c->api_key, c->api_version, local.buf, local.len,
                                     golden_map_back, c, &back, &stats, &err_offset),
                 KP_OK);
    CHECK(back.len == len && memcmp(back.buf, body, len) == 0);
    kp_writer_free(&local);
    kp_writer_free(&back);
}

static void
test_golden_rewrite_local_and_back(void)
{
    golden_each(golden_check_rewrite_local_and_back);
}

/* The first cut bytes of c's body, rewritten from an exact-size copy (ASan sees over-reads). */
static enum kp_status
golden_rewrite_cut(const struct golden_case *c, size_t cut, size_t *err_offset, size_t *out_len)
{
    size_t len;
    uint8_t *copy = malloc(cut ? cut : 1);
    struct kp_writer out;
    enum kp_status st;

    memcpy(copy, golden_body(c, &len), cut);
    kp_writer_init(&out);
    st = kp_rewrite_response(c->api_key, c->api_version, copy, cut, golden_map_local, NULL, &out,
                             NULL, err_offset);
    *out_len = out.len;
    kp_writer_free(&out);
    free(copy);
    return st;
}

/*
 * Every body cut short at every offset before its trailing bytes is refused, and the error
 * offset lies inside the bytes given. The ApiVersions error-35 answer is passed on unparsed,
 * so only a cut inside its ErrorCode is an error.
 */
static void
golden_check_truncated(struct golden_case *c)
{
    size_t len, cut, known_end;

    golden_body(c, &len);
    known_end = c->napis < 0 && c->api_key == KP_API_API_VERSIONS ? 2 : len - c->trailing;
    for (cut = 0; cut < len; cut++) {
        size_t err_offset = SIZE_MAX, out_len = SIZE_MAX;
        enum kp_status st = golden_rewrite_cut(c, cut, &err_offset, &out_len);

        CHECK_EQ_INT(st, cut < known_end ? KP_MALFORMED : KP_OK);
        CHECK(st == KP_OK || (err_offset <= cut && out_len == 0));
    }
}

static void
test_golden_truncated(void)
{
    golden_each(golden_check_truncated);
}

int
main(int argc, char **argv)
{
    int i;

    if (argc != 2 || !golden_load(argv[1])) {
        fprintf(stderr, "usage: %s FRAMES_DIR (with index.json and NAME.req/.resp)\n", argv[0]);
        return 2;
    }
    printf("%d golden cases\n", golden_ncases);
    RUN(test_golden_response_headers);
    RUN(test_golden_request_headers);
    RUN(test_golden_identity);
    RUN(test_golden_rewrite_local_and_back);
    RUN(test_golden_truncated);
    for (i = 0; i < golden_ncases; i++) {
        free(golden_cases[i].resp);
        free(golden_cases[i].req);
    }
    return TEST_DONE();
}
