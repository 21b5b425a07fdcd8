/*
 * test_kp_rewrite.c - kp_rewrite_response() on responses built here field by field from
 * ../shared/kafka-spec: a frame built with host A and rewritten to B must equal the frame
 * built with B, byte for byte; unknown tags, null racks, long hosts; hostile and cut bodies.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_api.h"
#include "kp_buf.h"
#include "kp_rewrite.h"
#include "test.h"

#define UNKNOWN_TAG 42    /* a tag no spec defines: must be copied verbatim */
#define LONG_HOST_LEN 300 /* > 255 and > 127: one more length byte, compact or not */
#define MSK_HOST "b-1.ecommercekafka.13b4qv.c2.kafka.ap-south-1.amazonaws.com"

static char long_host[LONG_HOST_LEN + 1]; /* "lll...l", filled by main */

/* How a response is built: the same options with another host must give the rewrite's output. */
struct spec {
    const char *host; /* every broker's host */
    int32_t port;     /* broker n is at port + n */
    int nbrokers;     /* brokers, coordinators or node endpoints (node ids 1..n) */
    bool tags;        /* an unknown tagged field in every tag section */
    bool endpoints;   /* Produce v10+ / Fetch v16+: the NodeEndpoints tagged field */
    bool trailing;    /* two bytes after the body, as some brokers send */
};

/* Builds a response body of version v into w; returns how many addresses it wrote. */
typedef int (*spec_build_fn)(struct kp_writer *w, int16_t v, const struct spec *s);

/* ---- Field helpers --------------------------------------------------------------------- */

static unsigned
flex_of(int16_t key, int16_t v)
{
    return kp_api_is_flexible(key, v) ? KP_COMPACT : 0;
}

static void
put_str(struct kp_writer *w, unsigned flex, const char *str)
{
    kp_writer_string(w, flex | KP_NULLABLE, str, str ? strlen(str) : 0);
}

/* A tag section: known_tag (8 bytes of data) unless -1, then the unknown tag if s->tags. */
static void
put_tags_known(struct kp_writer *w, unsigned flex, const struct spec *s, int known_tag)
{
    if (!flex) {
        return;
    }
    kp_writer_uvarint(w, (known_tag >= 0) + s->tags);
    if (known_tag >= 0) {
        kp_writer_tag(w, (uint32_t)known_tag, "\0\0\0\1\0\0\0\2", 8);
    }
    if (s->tags) {
        kp_writer_tag(w, UNKNOWN_TAG, "unknown", 7);
    }
}

static void
put_tags(struct kp_writer *w, unsigned flex, const struct spec *s)
{
    put_tags_known(w, flex, s, -1);
}

/* NodeId, Host, Port, [Rack: odd nodes "az-1", even nodes null], [tags]. */
static void
put_brokers(struct kp_writer *w, unsigned flex, const struct spec *s, bool rack)
{
    int i;

    kp_writer_array_len(w, flex, s->nbrokers);
    for (i = 1; i <= s->nbrokers; i++) {
        kp_writer_i32(w, i);
        put_str(w, flex, s->host);
        kp_writer_i32(w, s->port + i);
        if (rack) {
            put_str(w, flex, i % 2 ? "az-1" : NULL);
        }
        put_tags(w, flex, s);
    }
}

static void
put_trailing(struct kp_writer *w, const struct spec *s)
{
    if (s->trailing) {
        kp_writer_raw(w, "\0\x7f", 2);
    }
}

static void
put_uuid(struct kp_writer *w, uint8_t seed)
{
    uint8_t id[KP_UUID_LEN];

    memset(id, seed, sizeof(id));
    kp_writer_uuid(w, id);
}

/* ---- Builders, one per MessageResponse.json -------------------------------------------- */

static int
build_metadata(struct kp_writer *w, int16_t v, const struct spec *s)
{
    unsigned flex = flex_of(KP_API_METADATA, v);
    int t, p;

    if (v >= 3) {
        kp_writer_i32(w, 0); /* ThrottleTimeMs */
    }
    put_brokers(w, flex, s, v >= 1);
    if (v >= 2) {
        put_str(w, flex, v % 2 ? "cluster-id" : NULL); /* ClusterId, nullable */
    }
    if (v >= 1) {
        kp_writer_i32(w, 1); /* ControllerId */
    }
    kp_writer_array_len(w, flex, 3);
    for (t = 0; t < 3; t++) {
        kp_writer_i16(w, t == 2 ? 3 : 0);                      /* ErrorCode */
        put_str(w, flex, t == 2 && v >= 12 ? NULL : "orders"); /* Name: nullable v12+ */
        if (v >= 10) {
            put_uuid(w, (uint8_t)t);
        }
        if (v >= 1) {
            kp_writer_i8(w, 0); /* IsInternal */
        }
        kp_writer_array_len(w, flex, t);
        for (p = 0; p < t; p++) {
            kp_writer_i16(w, 0);
            kp_writer_i32(w, p);
            kp_writer_i32(w, 1); /* LeaderId */
            if (v >= 7) {
                kp_writer_i32(w, 5); /* LeaderEpoch */
            }
            kp_writer_array_len(w, flex, 2); /* ReplicaNodes */
            kp_writer_i32(w, 1);
            kp_writer_i32(w, 2);
            kp_writer_array_len(w, flex, 1); /* IsrNodes */
            kp_writer_i32(w, 1);
            if (v >= 5) {
                kp_writer_array_len(w, flex, 0); /* OfflineReplicas */
            }
            put_tags(w, flex, s);
        }
        if (v >= 8) {
            kp_writer_i32(w, INT32_MIN); /* TopicAuthorizedOperations */
        }
        put_tags(w, flex, s);
    }
    if (v >= 8 && v <= 10) {
        kp_writer_i32(w, INT32_MIN); /* ClusterAuthorizedOperations */
    }
    put_tags(w, flex, s);
    put_trailing(w, s);
    return s->nbrokers;
}

static int
build_coordinator(struct kp_writer *w, int16_t v, const struct spec *s)
{
    unsigned flex = flex_of(KP_API_FIND_COORDINATOR, v);
    int i;

    if (v >= 1) {
        kp_writer_i32(w, 0); /* ThrottleTimeMs */
    }
    if (v <= 3) {
        kp_writer_i16(w, 0);
        if (v >= 1) {
            put_str(w, flex, NULL); /* ErrorMessage */
        }
        kp_writer_i32(w, 1);
        put_str(w, flex, s->host);
        kp_writer_i32(w, s->port + 1);
        put_tags(w, flex, s);
        put_trailing(w, s);
        return 1;
    }
    kp_writer_array_len(w, flex, s->nbrokers);
    for (i = 1; i <= s->nbrokers; i++) {
        put_str(w, flex, i == 1 ? "group-a" : "txn-b"); /* Key */
        kp_writer_i32(w, i);
        put_str(w, flex, s->host);
        kp_writer_i32(w, s->port + i);
        kp_writer_i16(w, i == 2 ? 15 : 0); /* ErrorCode */
        put_str(w, flex, i == 2 ? "not available" : NULL);
        put_tags(w, flex, s);
    }
    put_tags(w, flex, s);
    put_trailing(w, s);
    return s->nbrokers;
}

static int
build_cluster(struct kp_writer *w, int16_t v, const struct spec *s)
{
    kp_writer_i32(w, 0);          /* ThrottleTimeMs */
    kp_writer_i16(w, 0);          /* ErrorCode */
    put_str(w, KP_COMPACT, NULL); /* ErrorMessage */
    if (v >= 1) {
        kp_writer_i8(w, 1); /* EndpointType: brokers */
    }
    put_str(w, KP_COMPACT, "cluster-id");
    kp_writer_i32(w, 2); /* ControllerId */
    put_brokers(w, KP_COMPACT, s, true);
    kp_writer_i32(w, INT32_MIN);
    put_tags(w, KP_COMPACT, s);
    put_trailing(w, s);
    return s->nbrokers;
}

/* Top-level tags of Produce/Fetch: NodeEndpoints (tag 0) when present, then the unknown. */
static int
put_endpoints_tags(struct kp_writer *w, const struct spec *s, bool has_field)
{
    struct kp_writer field;
    bool endpoints = has_field && s->endpoints;

    kp_writer_uvarint(w, endpoints + s->tags);
    if (endpoints) {
        kp_writer_init(&field);
        put_brokers(&field, KP_COMPACT, s, true);
        kp_writer_tag(w, 0, field.buf, field.len);
        kp_writer_free(&field);
    }
    if (s->tags) {
        kp_writer_tag(w, UNKNOWN_TAG, "unknown", 7);
    }
    return endpoints ? s->nbrokers : 0;
}

static int
build_produce(struct kp_writer *w, int16_t v, const struct spec *s)
{
    unsigned flex = flex_of(KP_API_PRODUCE, v);
    int n = 0, t, p;

    kp_writer_array_len(w, flex, 2); /* Responses */
    for (t = 0; t < 2; t++) {
        put_str(w, flex, t ? "results" : "orders");
        kp_writer_array_len(w, flex, 2);
        for (p = 0; p < 2; p++) {
            kp_writer_i32(w, p);
            kp_writer_i16(w, p ? 6 : 0); /* NOT_LEADER_OR_FOLLOWER */
            kp_writer_i64(w, 100);
            if (v >= 2) {
                kp_writer_i64(w, -1); /* LogAppendTimeMs */
            }
            if (v >= 5) {
                kp_writer_i64(w, 0); /* LogStartOffset */
            }
            if (v >= 8) {
                kp_writer_array_len(w, flex, p); /* RecordErrors */
                if (p) {
                    kp_writer_i32(w, 0);
                    put_str(w, flex, "bad record");
                    put_tags(w, flex, s);
                }
                put_str(w, flex, p ? "not leader" : NULL); /* ErrorMessage */
            }
            put_tags_known(w, flex, s, v >= 10 && p ? 0 : -1); /* CurrentLeader */
        }
        put_tags(w, flex, s);
    }
    if (v >= 1) {
        kp_writer_i32(w, 0); /* ThrottleTimeMs */
    }
    if (flex) {
        n = put_endpoints_tags(w, s, v >= 10);
    }
    put_trailing(w, s);
    return n;
}

static int
build_fetch(struct kp_writer *w, int16_t v, const struct spec *s)
{
    unsigned flex = flex_of(KP_API_FETCH, v);
    int n = 0, t, p;

    if (v >= 1) {
        kp_writer_i32(w, 0);
    }
    if (v >= 7) {
        kp_writer_i16(w, 0);  /* ErrorCode */
        kp_writer_i32(w, 77); /* SessionId */
    }
    kp_writer_array_len(w, flex, 2); /* Responses */
    for (t = 0; t < 2; t++) {
        if (v >= 13) {
            put_uuid(w, (uint8_t)(t + 1));
        } else {
            put_str(w, flex, "orders");
        }
        kp_writer_array_len(w, flex, 2);
        for (p = 0; p < 2; p++) {
            kp_writer_i32(w, p);
            kp_writer_i16(w, p ? 6 : 0);
            kp_writer_i64(w, 1000); /* HighWatermark */
            if (v >= 4) {
                kp_writer_i64(w, 999); /* LastStableOffset */
            }
            if (v >= 5) {
                kp_writer_i64(w, 0); /* LogStartOffset */
            }
            if (v >= 4) {
                kp_writer_array_len(w, flex | KP_NULLABLE, p ? -1 : 1); /* AbortedTransactions */
                if (!p) {
                    kp_writer_i64(w, 9);
                    kp_writer_i64(w, 10);
                    put_tags(w, flex, s);
                }
            }
            if (v >= 11) {
                kp_writer_i32(w, -1); /* PreferredReadReplica */
            }
            /* Records: opaque bytes that look like a host; never parsed, never rewritten */
            kp_writer_bytes(w, flex | KP_NULLABLE, p ? NULL : MSK_HOST, strlen(MSK_HOST));
            put_tags_known(w, flex, s, v >= 12 && p ? 1 : -1); /* CurrentLeader */
        }
        put_tags(w, flex, s);
    }
    if (flex) {
        n = put_endpoints_tags(w, s, v >= 16);
    }
    put_trailing(w, s);
    return n;
}

/* ShareFetch and ShareAcknowledge: the same frame around their own PartitionData. */
static int
build_share(struct kp_writer *w, const struct spec *s, bool fetch)
{
    int t, p;

    kp_writer_i32(w, 0);
    kp_writer_i16(w, 0);
    put_str(w, KP_COMPACT, NULL);
    kp_writer_array_len(w, KP_COMPACT, 2); /* Responses */
    for (t = 0; t < 2; t++) {
        put_uuid(w, (uint8_t)(t + 7));
        kp_writer_array_len(w, KP_COMPACT, 2);
        for (p = 0; p < 2; p++) {
            kp_writer_i32(w, p);
            kp_writer_i16(w, p ? 6 : 0);
            put_str(w, KP_COMPACT, p ? "not leader" : NULL);
            if (fetch) {
                kp_writer_i16(w, 0); /* AcknowledgeErrorCode */
                put_str(w, KP_COMPACT, NULL);
            }
            kp_writer_i32(w, 2); /* CurrentLeader */
            kp_writer_i32(w, 9);
            put_tags(w, KP_COMPACT, s);
            if (fetch) {
                kp_writer_bytes(w, KP_COMPACT | KP_NULLABLE, p ? NULL : "records", 7);
                kp_writer_array_len(w, KP_COMPACT, 1 - p); /* AcquiredRecords */
                if (!p) {
                    kp_writer_i64(w, 0);
                    kp_writer_i64(w, 5);
                    kp_writer_i16(w, 1);
                    put_tags(w, KP_COMPACT, s);
                }
            }
            put_tags(w, KP_COMPACT, s);
        }
        put_tags(w, KP_COMPACT, s);
    }
    put_brokers(w, KP_COMPACT, s, true); /* NodeEndpoints: a regular field */
    put_tags(w, KP_COMPACT, s);
    put_trailing(w, s);
    return s->nbrokers;
}

static int
build_share_fetch(struct kp_writer *w, int16_t v, const struct spec *s)
{
    (void)v;
    return build_share(w, s, true);
}

static int
build_share_ack(struct kp_writer *w, int16_t v, const struct spec *s)
{
    (void)v;
    return build_share(w, s, false);
}

/* One api and the versions built for it. */
struct spec_api {
    int16_t api_key;     /* api */
    int16_t max_version; /* versions 0..max_version are built */
    spec_build_fn build; /* the builder */
};

static const struct spec_api spec_apis[] = {
    {KP_API_METADATA, 12, build_metadata},
    {KP_API_FIND_COORDINATOR, 6, build_coordinator},
    {KP_API_DESCRIBE_CLUSTER, 1, build_cluster},
    {KP_API_PRODUCE, 11, build_produce},
    {KP_API_FETCH, 17, build_fetch},
    {KP_API_SHARE_FETCH, 0, build_share_fetch},
    {KP_API_SHARE_ACKNOWLEDGE, 0, build_share_ack},
};

#define SPEC_NAPIS (sizeof(spec_apis) / sizeof(spec_apis[0]))

/* ---- Maps ------------------------------------------------------------------------------ */

/* To the host and port scheme of the spec in arg. */
static bool
map_to_spec(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
            const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    const struct spec *s = arg;

    (void)host;
    (void)host_len;
    (void)port;
    *new_host = s->host;
    *new_host_len = strlen(s->host);
    *new_port = s->port + node_id;
    return true;
}

/* Records what the codec passes, for checks; keeps every address. */
struct seen {
    int n;              /* calls */
    int32_t node[8];    /* node ids, in call order */
    int32_t port[8];    /* ports */
    size_t host_len[8]; /* host lengths */
};

static bool
map_record(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
           const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    struct seen *seen = arg;

    (void)host;
    CHECK(*new_host == host && *new_host_len == host_len && *new_port == port);
    if (seen->n < 8) {
        seen->node[seen->n] = node_id;
        seen->port[seen->n] = port;
        seen->host_len[seen->n] = host_len;
    }
    seen->n++;
    return false;
}

/* ---- The generic checks ---------------------------------------------------------------- */

/* Rewrites in with map/arg; returns the status, out holds the output. */
static enum kp_status
rewrite(int16_t key, int16_t v, const struct kp_writer *in, kp_map_fn map, void *arg,
        struct kp_writer *out, struct kp_rewrite_stats *stats)
{
    size_t err_offset = 0;

    kp_writer_init(out);
    return kp_rewrite_response(key, v, in->buf, in->len, map, arg, out, stats, &err_offset);
}

/* Built with from, rewritten to to: equals built with to. The identity leaves it as it is. */
static void
check_rewrite_pair(const struct spec_api *api, int16_t v, const struct spec *from,
                   const struct spec *to)
{
    struct kp_writer in, want, out;
    struct kp_rewrite_stats stats;
    int naddr;
    int before = test_checks_failed;

    kp_writer_init(&in);
    kp_writer_init(&want);
    naddr = api->build(&in, v, from);
    api->build(&want, v, to);
    CHECK(!in.failed && !want.failed);

    CHECK_EQ_INT(rewrite(api->api_key, v, &in, NULL, NULL, &out, &stats), KP_OK);
    CHECK(out.len == in.len && memcmp(out.buf, in.buf, in.len) == 0);
    CHECK_EQ_INT(stats.addresses, naddr);
    CHECK_EQ_INT(stats.rewritten, 0);
    kp_writer_free(&out);

    CHECK_EQ_INT(rewrite(api->api_key, v, &in, map_to_spec, (void *)to, &out, &stats), KP_OK);
    CHECK_EQ_INT(out.len, want.len);
    CHECK(out.len == want.len && memcmp(out.buf, want.buf, want.len) == 0);
    CHECK_EQ_INT(stats.addresses, naddr);
    CHECK_EQ_INT(stats.rewritten, naddr);
    kp_writer_free(&out);
    if (test_checks_failed != before) {
        fprintf(stderr, "  ... in %s v%d, %s -> %.10s, tags %d, endpoints %d, trailing %d\n",
                kp_api_name(api->api_key), v, from->host[0] == 'l' ? "long" : from->host, to->host,
                from->tags, from->endpoints, from->trailing);
    }
    kp_writer_free(&in);
    kp_writer_free(&want);
}

/* Every api, every version, every option, host pairs both ways across the length changes. */
static void
test_kp_rewrite_spec_frames_rewrite_exactly(void)
{
    const char *hosts[][2] = {
        {MSK_HOST, "127.0.0.1"},
        {"h", long_host},
        {long_host, "h"},
        {"", MSK_HOST},
    };
    size_t a, h;
    int16_t v;
    int opt;

    for (a = 0; a < SPEC_NAPIS; a++) {
        for (v = 0; v <= spec_apis[a].max_version; v++) {
            for (h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
                for (opt = 0; opt < 8; opt++) {
                    struct spec from = {hosts[h][0], 9094, 3, opt & 1, opt & 2, opt & 4};
                    struct spec to = from;

                    to.host = hosts[h][1];
                    to.port = 19092;
                    check_rewrite_pair(&spec_apis[a], v, &from, &to);
                }
            }
        }
    }
}

/* Zero brokers and one broker: counts of 0 and 1 in every array form. */
static void
test_kp_rewrite_spec_frames_small_counts(void)
{
    size_t a;
    int16_t v;
    int n;

    for (a = 0; a < SPEC_NAPIS; a++) {
        for (v = 0; v <= spec_apis[a].max_version; v++) {
            for (n = 0; n <= 1; n++) {
                struct spec from = {MSK_HOST, 9094, n, true, true, false};
                struct spec to = {"local", 1, n, true, true, false};

                check_rewrite_pair(&spec_apis[a], v, &from, &to);
            }
        }
    }
}

/*
 * Cut at every offset before the trailing bytes: KP_MALFORMED with an offset inside the bytes
 * given, nothing left in out. The copy is exactly cut bytes long so ASan sees any over-read.
 */
static void
check_truncations(int16_t key, int16_t v, const struct kp_writer *in, size_t known_end)
{
    size_t cut;
    int before = test_checks_failed;

    for (cut = 0; cut < in->len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        struct kp_writer out;
        size_t err_offset = SIZE_MAX;
        struct spec to = {long_host, 1, 0, false, false, false};
        enum kp_status st;

        memcpy(copy, in->buf, cut);
        kp_writer_init(&out);
        kp_writer_raw(&out, "pre", 3); /* output is appended to, and restored on failure */
        st = kp_rewrite_response(key, v, copy, cut, map_to_spec, &to, &out, NULL, &err_offset);
        if (cut < known_end) {
            CHECK_EQ_INT(st, KP_MALFORMED);
            CHECK(err_offset <= cut);
            CHECK_EQ_INT(out.len, 3);
        } else {
            CHECK_EQ_INT(st, KP_OK);
        }
        kp_writer_free(&out);
        free(copy);
        if (test_checks_failed != before) {
            fprintf(stderr, "  ... %s v%d cut at %zu of %zu\n", kp_api_name(key), v, cut, in->len);
            return;
        }
    }
}

static void
test_kp_rewrite_spec_frames_truncated(void)
{
    size_t a;
    int16_t v;
    int opt;

    for (a = 0; a < SPEC_NAPIS; a++) {
        for (v = 0; v <= spec_apis[a].max_version; v++) {
            for (opt = 0; opt < 2; opt++) {
                struct spec s = {MSK_HOST, 9094, 2, opt, true, opt};
                struct kp_writer in;

                kp_writer_init(&in);
                spec_apis[a].build(&in, v, &s);
                check_truncations(spec_apis[a].api_key, v, &in, in.len - (s.trailing ? 2 : 0));
                kp_writer_free(&in);
            }
        }
    }
}

/* ---- Specific behaviours --------------------------------------------------------------- */

static void
test_kp_rewrite_map_sees_error_entries(void)
{
    struct kp_writer in, out;
    struct seen seen = {0};

    /* FindCoordinator v3 COORDINATOR_NOT_AVAILABLE: node -1, host "", port -1 */
    kp_writer_init(&in);
    kp_writer_i32(&in, 0);
    kp_writer_i16(&in, 15);
    put_str(&in, KP_COMPACT, "The coordinator is not available.");
    kp_writer_i32(&in, -1);
    put_str(&in, KP_COMPACT, "");
    kp_writer_i32(&in, -1);
    kp_writer_uvarint(&in, 0);
    CHECK_EQ_INT(rewrite(KP_API_FIND_COORDINATOR, 3, &in, map_record, &seen, &out, NULL), KP_OK);
    CHECK_EQ_INT(seen.n, 1);
    CHECK(seen.node[0] == -1 && seen.port[0] == -1 && seen.host_len[0] == 0);
    CHECK(out.len == in.len && memcmp(out.buf, in.buf, in.len) == 0);
    kp_writer_free(&in);
    kp_writer_free(&out);
}

static void
test_kp_rewrite_map_sees_every_broker_in_order(void)
{
    struct spec s = {MSK_HOST, 9094, 5, true, true, false};
    struct kp_writer in, out;
    struct seen seen = {0};
    int i;

    kp_writer_init(&in);
    build_fetch(&in, 17, &s);
    CHECK_EQ_INT(rewrite(KP_API_FETCH, 17, &in, map_record, &seen, &out, NULL), KP_OK);
    CHECK_EQ_INT(seen.n, 5);
    for (i = 0; i < 5; i++) {
        CHECK_EQ_INT(seen.node[i], i + 1);
        CHECK_EQ_INT(seen.port[i], 9094 + i + 1);
        CHECK_EQ_INT(seen.host_len[i], strlen(MSK_HOST));
    }
    kp_writer_free(&in);
    kp_writer_free(&out);
}

/* Fetch v12-v15 define no top-level tag 0: such a field is anybody's, copied unparsed. */
static void
test_kp_rewrite_fetch_tag0_before_v16_is_opaque(void)
{
    struct spec s = {MSK_HOST, 9094, 0, false, false, false};
    struct kp_writer in, out;
    struct kp_rewrite_stats stats;

    kp_writer_init(&in);
    build_fetch(&in, 15, &s);
    in.len--; /* drop the empty top-level tag section */
    kp_writer_uvarint(&in, 1);
    kp_writer_tag(&in, 0, "\xff\xff", 2); /* not a NodeEndpoints array */
    CHECK_EQ_INT(rewrite(KP_API_FETCH, 15, &in, map_to_spec, &s, &out, &stats), KP_OK);
    CHECK(out.len == in.len && memcmp(out.buf, in.buf, in.len) == 0);
    kp_writer_free(&out);
    CHECK_EQ_INT(rewrite(KP_API_FETCH, 16, &in, map_to_spec, &s, &out, &stats), KP_MALFORMED);
    kp_writer_free(&in);
    kp_writer_free(&out);
}

/* The NodeEndpoints size must cover exactly one array: more or less is malformed. */
static void
test_kp_rewrite_endpoints_size_mismatch(void)
{
    struct spec s = {"host", 9094, 1, false, false, false};
    struct kp_writer field, in, out;
    size_t extra;

    kp_writer_init(&field);
    put_brokers(&field, KP_COMPACT, &s, true);
    for (extra = 0; extra < 2; extra++) {
        kp_writer_init(&in);
        build_produce(&in, 11, &s);
        in.len--; /* drop the empty top-level tag section */
        kp_writer_uvarint(&in, 1);
        if (extra) {
            kp_writer_raw(&field, "\0", 1); /* a stray byte inside the field */
            kp_writer_tag(&in, 0, field.buf, field.len);
        } else {
            kp_writer_tag(&in, 0, field.buf, field.len - 1); /* the field ends inside the array */
            kp_writer_raw(&in, field.buf + field.len - 1, 1);
        }
        CHECK_EQ_INT(rewrite(KP_API_PRODUCE, 11, &in, map_to_spec, &s, &out, NULL), KP_MALFORMED);
        kp_writer_free(&in);
        kp_writer_free(&out);
    }
    kp_writer_free(&field);
}

static void
test_kp_rewrite_null_where_not_nullable(void)
{
    struct kp_writer in, out;

    /* Metadata v11: a null topic name is only allowed from v12 */
    kp_writer_init(&in);
    kp_writer_i32(&in, 0);
    kp_writer_array_len(&in, KP_COMPACT, 0);
    put_str(&in, KP_COMPACT, NULL);
    kp_writer_i32(&in, 1);
    kp_writer_array_len(&in, KP_COMPACT, 1);
    kp_writer_i16(&in, 3);
    put_str(&in, KP_COMPACT, NULL);
    put_uuid(&in, 1);
    kp_writer_i8(&in, 0);
    kp_writer_array_len(&in, KP_COMPACT, 0);
    kp_writer_i32(&in, 0);
    kp_writer_uvarint(&in, 0);
    kp_writer_uvarint(&in, 0);
    CHECK_EQ_INT(rewrite(KP_API_METADATA, 12, &in, NULL, NULL, &out, NULL), KP_OK);
    kp_writer_free(&out);
    CHECK_EQ_INT(rewrite(KP_API_METADATA, 11, &in, NULL, NULL, &out, NULL), KP_MALFORMED);
    kp_writer_free(&out);
    kp_writer_free(&in);

    /* Metadata v0: a null broker host */
    kp_writer_init(&in);
    kp_writer_array_len(&in, 0, 1);
    kp_writer_i32(&in, 1);
    kp_writer_i16(&in, -1);
    kp_writer_i32(&in, 9094);
    kp_writer_array_len(&in, 0, 0);
    CHECK_EQ_INT(rewrite(KP_API_METADATA, 0, &in, NULL, NULL, &out, NULL), KP_MALFORMED);
    kp_writer_free(&out);
    kp_writer_free(&in);
}

/* Rewrites body[] as Metadata version v and expects st with the error at err_at. */
static void
check_bad_metadata(int16_t v, const uint8_t *body, size_t len, enum kp_status st, size_t err_at)
{
    struct kp_writer out;
    size_t err_offset = SIZE_MAX;

    kp_writer_init(&out);
    CHECK_EQ_INT(
        kp_rewrite_response(KP_API_METADATA, v, body, len, NULL, NULL, &out, NULL, &err_offset),
        st);
    CHECK_EQ_INT(err_offset, err_at);
    kp_writer_free(&out);
}

static void
test_kp_rewrite_hostile_counts_and_lengths(void)
{
    static const uint8_t neg_brokers[] = {0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0};
    static const uint8_t huge_brokers[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 1, 'h'};
    static const uint8_t null_brokers[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    static const uint8_t host_past_end[] = {0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 'h', 'h', 'h'};
    static const uint8_t neg_host[] = {0, 0, 0, 1, 0, 0, 0, 1, 0x80, 0x00, 'h', 'h', 'h'};
    static const uint8_t huge_topics[] = {0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0};
    /* v9: throttle, compact brokers count as a 6-byte varint */
    static const uint8_t varint_overflow[] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t compact_huge[] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0};
    static const uint8_t compact_host_long[] = {0, 0,    0,    0,    0x02, 0,   0,  0,
                                                1, 0x81, 0x80, 0x02, 'h',  'h', 'h'};

    check_bad_metadata(0, neg_brokers, sizeof(neg_brokers), KP_MALFORMED, 0);
    check_bad_metadata(0, huge_brokers, sizeof(huge_brokers), KP_MALFORMED, 0);
    check_bad_metadata(0, null_brokers, sizeof(null_brokers), KP_MALFORMED, 0);
    check_bad_metadata(0, host_past_end, sizeof(host_past_end), KP_MALFORMED, 8);
    check_bad_metadata(0, neg_host, sizeof(neg_host), KP_MALFORMED, 8);
    check_bad_metadata(0, huge_topics, sizeof(huge_topics), KP_MALFORMED, 4);
    check_bad_metadata(9, varint_overflow, sizeof(varint_overflow), KP_MALFORMED, 4);
    check_bad_metadata(9, compact_huge, sizeof(compact_huge), KP_MALFORMED, 4);
    check_bad_metadata(9, compact_host_long, sizeof(compact_host_long), KP_MALFORMED, 9);
}

static void
test_kp_rewrite_unsupported_versions(void)
{
    static const int16_t cases[][2] = {
        {KP_API_METADATA, 13},        {KP_API_METADATA, -1},         {KP_API_FIND_COORDINATOR, 7},
        {KP_API_DESCRIBE_CLUSTER, 2}, {KP_API_PRODUCE, 12},          {KP_API_FETCH, 18},
        {KP_API_SHARE_FETCH, 1},      {KP_API_SHARE_ACKNOWLEDGE, 1}, {KP_API_API_VERSIONS, 5},
        {KP_API_API_VERSIONS, -1},
    };
    static const uint8_t body[] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kp_writer out;

        kp_writer_init(&out);
        CHECK_EQ_INT(kp_rewrite_response(cases[i][0], cases[i][1], body, sizeof(body), NULL, NULL,
                                         &out, NULL, NULL),
                     KP_UNSUPPORTED);
        CHECK(kp_api_response_needs_rewrite(cases[i][0], cases[i][1]));
        CHECK_EQ_INT(out.len, 0);
        kp_writer_free(&out);
    }
}

static void
test_kp_rewrite_other_apis_pass_through(void)
{
    static const uint8_t body[] = {0xde, 0xad, 0xbe, 0xef, 0xff};
    struct kp_writer out;

    kp_writer_init(&out);
    CHECK_EQ_INT(kp_rewrite_response(KP_API_SASL_HANDSHAKE, 1, body, sizeof(body), NULL, NULL, &out,
                                     NULL, NULL),
                 KP_OK);
    CHECK(out.len == sizeof(body) && memcmp(out.buf, body, sizeof(body)) == 0);
    kp_writer_free(&out);
}

/* DescribeCluster v1 listing controllers: refused; an empty list is harmless. */
static void
test_kp_rewrite_describe_cluster_controllers(void)
{
    struct spec s = {MSK_HOST, 9094, 2, false, false, false};
    struct kp_writer in, out;
    int n;

    for (n = 0; n <= 2; n += 2) {
        s.nbrokers = n;
        kp_writer_init(&in);
        build_cluster(&in, 1, &s);
        in.buf[4 + 2 + 1] = 2; /* EndpointType: controllers */
        CHECK_EQ_INT(rewrite(KP_API_DESCRIBE_CLUSTER, 1, &in, map_to_spec, &s, &out, NULL),
                     n ? KP_UNSUPPORTED : KP_OK);
        kp_writer_free(&in);
        kp_writer_free(&out);
    }
}

/* What map_fixed answers for every address. */
struct fixed {
    bool set_host;    /* replace the host with host/host_len; else keep it */
    const char *host; /* the new host, may be NULL to test the refusal */
    size_t host_len;  /* its length */
    int32_t port_add; /* added to the current port */
};

static bool
map_fixed(void *arg, int32_t node_id, const char *host, size_t host_len, int32_t port,
          const char **new_host, size_t *new_host_len, int32_t *new_port)
{
    const struct fixed *f = arg;

    (void)node_id;
    (void)host;
    (void)host_len;
    if (f->set_host) {
        *new_host = f->host;
        *new_host_len = f->host_len;
    }
    *new_port = port + f->port_add;
    return true;
}

static void
test_kp_rewrite_bad_map_answers(void)
{
    struct spec s = {MSK_HOST, 9094, 2, false, false, false};
    char *big = calloc(1, KP_STRING_MAX + 2);
    struct kp_writer in, out;
    size_t err_offset = 0;

    kp_writer_init(&in);
    build_metadata(&in, 1, &s);
    kp_writer_init(&out);
    kp_writer_raw(&out, "keep", 4);
    CHECK_EQ_INT(kp_rewrite_response(KP_API_METADATA, 1, in.buf, in.len, map_fixed,
                                     &(struct fixed){true, big, KP_STRING_MAX + 1, 0}, &out, NULL,
                                     &err_offset),
                 KP_TOO_LARGE);
    CHECK_EQ_INT(err_offset, 4 + 4); /* the first broker's host */
    CHECK(out.len == 4 && memcmp(out.buf, "keep", 4) == 0);
    CHECK_EQ_INT(kp_rewrite_response(KP_API_METADATA, 1, in.buf, in.len, map_fixed,
                                     &(struct fixed){true, NULL, 0, 0}, &out, NULL, &err_offset),
                 KP_MALFORMED);
    CHECK_EQ_INT(out.len, 4);
    kp_writer_free(&in);
    kp_writer_free(&out);
    free(big);
}

/* The map may change only the port: *new_host starts as the current host. */
static void
test_kp_rewrite_port_only(void)
{
    struct spec from = {MSK_HOST, 9094, 3, true, true, true};
    struct spec to = {MSK_HOST, 9095, 3, true, true, true};
    struct kp_writer in, want, out;

    kp_writer_init(&in);
    kp_writer_init(&want);
    build_produce(&in, 11, &from);
    build_produce(&want, 11, &to);
    CHECK_EQ_INT(
        rewrite(KP_API_PRODUCE, 11, &in, map_fixed, &(struct fixed){false, NULL, 0, 1}, &out, NULL),
        KP_OK);
    CHECK(out.len == want.len && memcmp(out.buf, want.buf, want.len) == 0);
    kp_writer_free(&in);
    kp_writer_free(&want);
    kp_writer_free(&out);
}

/* ---- ApiVersions ----------------------------------------------------------------------- */

/* One ApiKeys entry as built and as expected after capping. */
struct api_entry {
    int16_t key, min, max, capped_max; /* capped_max: MaxVersion after the rewrite */
};

static const struct api_entry api_entries[] = {
    {KP_API_PRODUCE, 3, 12, 11},         {KP_API_FETCH, 4, 18, 17},
    {KP_API_METADATA, 0, 13, 12},        {KP_API_FIND_COORDINATOR, 0, 6, 6},
    {KP_API_SASL_HANDSHAKE, 0, 1, 1},    {KP_API_API_VERSIONS, 0, 9, 9},
    {KP_API_DESCRIBE_CLUSTER, 0, 2, 1},  {KP_API_SHARE_FETCH, 1, 1, 1},
    {KP_API_SHARE_ACKNOWLEDGE, 0, 3, 0}, {999, 0, 50, 50},
};

#define API_NENTRIES (sizeof(api_entries) / sizeof(api_entries[0]))

static void
build_apiversions(struct kp_writer *w, int16_t v, bool capped, const struct spec *s)
{
    unsigned flex = flex_of(KP_API_API_VERSIONS, v);
    size_t i;

    kp_writer_i16(w, 0);
    kp_writer_array_len(w, flex, API_NENTRIES);
    for (i = 0; i < API_NENTRIES; i++) {
        kp_writer_i16(w, api_entries[i].key);
        kp_writer_i16(w, api_entries[i].min);
        kp_writer_i16(w, capped ? api_entries[i].capped_max : api_entries[i].max);
        put_tags(w, flex, s);
    }
    if (v >= 1) {
        kp_writer_i32(w, 0);
    }
    if (flex) { /* SupportedFeatures (0), FinalizedFeaturesEpoch (1) as known tags + unknown */
        kp_writer_uvarint(w, 2 + s->tags);
        kp_writer_tag(w, 0,
                      "\x02\x11"
                      "metadata.version"
                      "\x00\x01\x00\x14\x00",
                      23);
        kp_writer_tag(w, 1, "\0\0\0\0\0\0\0\7", 8);
        if (s->tags) {
            kp_writer_tag(w, UNKNOWN_TAG, "x", 1);
        }
    }
    put_trailing(w, s);
}

static void
test_kp_rewrite_apiversions_caps(void)
{
    int16_t v;
    int opt;

    for (v = 0; v <= 4; v++) {
        for (opt = 0; opt < 4; opt++) {
            struct spec s = {"", 0, 0, opt & 1, false, opt & 2};
            struct kp_writer in, want, out, again;
            struct kp_rewrite_stats stats;

            kp_writer_init(&in);
            kp_writer_init(&want);
            build_apiversions(&in, v, false, &s);
            build_apiversions(&want, v, true, &s);
            CHECK_EQ_INT(rewrite(KP_API_API_VERSIONS, v, &in, NULL, NULL, &out, &stats), KP_OK);
            CHECK(out.len == want.len && memcmp(out.buf, want.buf, want.len) == 0);
            CHECK_EQ_INT(stats.capped, 5);     /* Produce, Fetch, Metadata, Cluster, ShareAck */
            CHECK_EQ_INT(stats.uncappable, 1); /* ShareFetch 1-1 */
            CHECK_EQ_INT(stats.addresses, 0);
            /* capping is idempotent */
            CHECK_EQ_INT(rewrite(KP_API_API_VERSIONS, v, &out, NULL, NULL, &again, &stats), KP_OK);
            CHECK(again.len == out.len && memcmp(again.buf, out.buf, out.len) == 0);
            CHECK_EQ_INT(stats.capped, 0);
            check_truncations(KP_API_API_VERSIONS, v, &in, in.len - (s.trailing ? 2 : 0));
            kp_writer_free(&in);
            kp_writer_free(&want);
            kp_writer_free(&out);
            kp_writer_free(&again);
        }
    }
}

/* UNSUPPORTED_VERSION in the v0 layout, at any requested version: copied unparsed. */
static void
test_kp_rewrite_apiversions_error35_passthrough(void)
{
    int16_t v;

    for (v = 0; v <= 6; v++) {
        struct kp_writer in, out;
        struct kp_rewrite_stats stats;

        kp_writer_init(&in);
        kp_writer_i16(&in, 35);
        kp_writer_array_len(&in, 0, 1);
        kp_writer_i16(&in, KP_API_API_VERSIONS);
        kp_writer_i16(&in, 0);
        kp_writer_i16(&in, 2);
        CHECK_EQ_INT(rewrite(KP_API_API_VERSIONS, v, &in, NULL, NULL, &out, &stats), KP_OK);
        CHECK(out.len == in.len && memcmp(out.buf, in.buf, in.len) == 0);
        CHECK_EQ_INT(stats.capped, 0);
        kp_writer_free(&out);
        check_truncations(KP_API_API_VERSIONS, v, &in, 2); /* only a cut ErrorCode fails */
        kp_writer_free(&in);
    }
}

/*
 * `test_kp_rewrite SEED_DIR` writes every spec-built response as a whole frame (size prefix,
 * correlation id, header tags when flexible) for the fuzzers' seed corpus, then exits.
 */
static int
write_seeds(const char *dir)
{
    struct spec s = {MSK_HOST, 9094, 3, true, true, true};
    size_t a;
    int16_t v;

    for (a = 0; a < SPEC_NAPIS; a++) {
        for (v = 0; v <= spec_apis[a].max_version; v++) {
            struct kp_writer w;
            char path[512];
            FILE *f;

            kp_writer_init(&w);
            kp_writer_i32(&w, 0); /* size, patched below */
            kp_writer_i32(&w, 1000 + v);
            if (kp_api_response_header_version(spec_apis[a].api_key, v) >= 1) {
                kp_writer_uvarint(&w, 0);
            }
            spec_apis[a].build(&w, v, &s);
            w.buf[0] = (uint8_t)((w.len - 4) >> 24);
            w.buf[1] = (uint8_t)((w.len - 4) >> 16);
            w.buf[2] = (uint8_t)((w.len - 4) >> 8);
            w.buf[3] = (uint8_t)(w.len - 4);
            snprintf(path, sizeof(path), "%s/spec_%s_v%d.resp", dir,
                     kp_api_name(spec_apis[a].api_key), v);
            f = fopen(path, "wb");
            if (!f || fwrite(w.buf, 1, w.len, f) != w.len || fclose(f) != 0) {
                fprintf(stderr, "cannot write %s\n", path);
                kp_writer_free(&w);
                return 1;
            }
            kp_writer_free(&w);
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    memset(long_host, 'l', LONG_HOST_LEN);
    if (argc > 1) {
        return write_seeds(argv[1]);
    }
    RUN(test_kp_rewrite_spec_frames_rewrite_exactly);
    RUN(test_kp_rewrite_spec_frames_small_counts);
    RUN(test_kp_rewrite_spec_frames_truncated);
    RUN(test_kp_rewrite_map_sees_error_entries);
    RUN(test_kp_rewrite_map_sees_every_broker_in_order);
    RUN(test_kp_rewrite_fetch_tag0_before_v16_is_opaque);
    RUN(test_kp_rewrite_endpoints_size_mismatch);
    RUN(test_kp_rewrite_null_where_not_nullable);
    RUN(test_kp_rewrite_hostile_counts_and_lengths);
    RUN(test_kp_rewrite_unsupported_versions);
    RUN(test_kp_rewrite_other_apis_pass_through);
    RUN(test_kp_rewrite_describe_cluster_controllers);
    RUN(test_kp_rewrite_bad_map_answers);
    RUN(test_kp_rewrite_port_only);
    RUN(test_kp_rewrite_apiversions_caps);
    RUN(test_kp_rewrite_apiversions_error35_passthrough);
    return TEST_DONE();
}
