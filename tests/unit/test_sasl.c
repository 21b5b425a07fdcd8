/*
 * test_sasl.c - the SASL I/O driver (proxy/sasl.h) on a real event loop: kbridge's end of a
 * socketpair runs sasl_start(), the other end is a scripted broker in the same loop. Covers a
 * first authentication, re-authentication on the same connection (SaslHandshake first, as
 * KIP-368 wants, and bytes after the exchange left for the caller), a refusal that arrives
 * together with the close, a silent broker (timeout), an oversized answer, and cancel.
 */
#include "proxy/sasl.h"

#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "conf/secret.h"
#include "kp_api.h"
#include "kp_frame.h"
#include "kp_sasl.h"
#include "proxy/sasl_fsm.h"
#include "test.h"

/* What the scripted broker does. */
enum broker_mode {
    BROKER_OK,           /* answers everything, PLAIN accepted */
    BROKER_REFUSE_CLOSE, /* refuses SaslAuthenticate and closes in the same breath */
    BROKER_SILENT,       /* reads, never answers */
    BROKER_HUGE          /* answers ApiVersions with a 2 MiB frame size */
};

struct harness {
    struct event_base *base;
    struct bufferevent *kb;     /* kbridge's end (the driver runs here) */
    struct bufferevent *broker; /* the scripted broker's end */
    enum broker_mode mode;
    int requests[64]; /* api keys the broker saw, in order */
    int n_requests;
    bool trailing;    /* send extra bytes after the final SaslAuthenticate answer */
    bool fired;       /* done called */
    bool ok;          /* its ok */
    int64_t lifetime; /* its session_lifetime_ms */
    int version;      /* its auth_version */
    char why[1024];   /* its why */
};

static void
broker_send(struct harness *h, struct kp_writer *body, int32_t corr, bool tags)
{
    uint8_t head[9];
    size_t hl = tags ? 9 : 8;
    uint32_t size = (uint32_t)(hl - 4 + body->len);

    head[0] = (uint8_t)(size >> 24);
    head[1] = (uint8_t)(size >> 16);
    head[2] = (uint8_t)(size >> 8);
    head[3] = (uint8_t)size;
    head[4] = (uint8_t)(corr >> 24);
    head[5] = (uint8_t)(corr >> 16);
    head[6] = (uint8_t)(corr >> 8);
    head[7] = (uint8_t)corr;
    head[8] = 0;
    bufferevent_write(h->broker, head, hl);
    bufferevent_write(h->broker, body->buf, body->len);
}

static void
broker_on_drained(struct bufferevent *bev, void *arg)
{
    (void)arg;
    shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void
broker_on_read(struct bufferevent *bev, void *arg)
{
    struct harness *h = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        uint8_t pre[4];
        size_t size = 0;
        struct kp_request_header hdr;
        struct kp_writer w;
        uint8_t *frame;

        if (evbuffer_copyout(in, pre, 4) < 4 || kp_frame_size(pre, 4, 1 << 20, &size) != KP_OK ||
            evbuffer_get_length(in) < 4 + size) {
            return;
        }
        frame = evbuffer_pullup(in, (ev_ssize_t)(4 + size)) + 4;
        CHECK_EQ_INT(kp_request_header_decode(frame, size, &hdr), KP_OK);
        if (h->n_requests < 64) {
            h->requests[h->n_requests++] = hdr.api_key;
        }
        evbuffer_drain(in, 4 + size);
        if (h->mode == BROKER_SILENT) {
            continue;
        }
        if (h->mode == BROKER_HUGE) {
            static const uint8_t huge[] = {0, 0x20, 0, 0, 0, 0, 0, 1};
            bufferevent_write(bev, huge, sizeof(huge));
            continue;
        }
        kp_writer_init(&w);
        if (hdr.api_key == KP_API_API_VERSIONS) {
            kp_writer_i16(&w, 0);
            kp_writer_array_len(&w, 0, 2);
            kp_writer_i16(&w, 17), kp_writer_i16(&w, 0), kp_writer_i16(&w, 1);
            kp_writer_i16(&w, 36), kp_writer_i16(&w, 0), kp_writer_i16(&w, 1);
            broker_send(h, &w, hdr.correlation_id, false);
        } else if (hdr.api_key == KP_API_SASL_HANDSHAKE) {
            kp_writer_i16(&w, 0);
            kp_writer_array_len(&w, 0, 1);
            kp_writer_string(&w, 0, "PLAIN", 5);
            broker_send(h, &w, hdr.correlation_id, false);
        } else if (hdr.api_key == KP_API_SASL_AUTHENTICATE) {
            bool refuse = h->mode == BROKER_REFUSE_CLOSE;
            kp_writer_i16(&w, refuse ? KP_ERR_SASL_AUTHENTICATION_FAILED : 0);
            kp_writer_string(&w, KP_NULLABLE, refuse ? "Invalid username or password" : NULL,
                             refuse ? 28 : 0);
            kp_writer_bytes(&w, 0, "", 0);
            kp_writer_i64(&w, 5000);
            broker_send(h, &w, hdr.correlation_id, false);
            if (h->trailing) {
                bufferevent_write(bev, "tail", 4);
            }
            if (refuse) {
                /* close right behind the answer, once it has left the output buffer */
                bufferevent_setcb(bev, broker_on_read, broker_on_drained, NULL, h);
            }
        }
        kp_writer_free(&w);
    }
}

static void
on_done(void *arg, bool ok, int64_t lifetime, int version, const char *why)
{
    struct harness *h = arg;

    h->fired = true;
    h->ok = ok;
    h->lifetime = lifetime;
    h->version = version;
    snprintf(h->why, sizeof(h->why), "%s", why ? why : "");
    event_base_loopexit(h->base, NULL);
}

static struct secret test_secret = {NULL, "kbsecret", false, 0600, 0};
static struct kb_cluster_conf test_cc = {.name = "msk",
                                         .sasl_mechanism = KB_SASL_PLAIN,
                                         .sasl_username = "bob",
                                         .sasl_secret = &test_secret};

static void
harness_init(struct harness *h, enum broker_mode mode)
{
    int fds[2];

    memset(h, 0, sizeof(*h));
    h->mode = mode;
    h->base = event_base_new();
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    h->kb = bufferevent_socket_new(h->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
    h->broker = bufferevent_socket_new(h->base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(h->broker, broker_on_read, NULL, NULL, h);
    bufferevent_enable(h->broker, EV_READ | EV_WRITE);
}

/* Runs one exchange to completion (or 5 s). */
static void
harness_run(struct harness *h, int auth_version, int timeout_ms)
{
    struct timeval guard = {5, 0};
    char why[256] = "";
    struct sasl *s;

    h->fired = false;
    s = sasl_start(h->kb, &test_cc, "b-1.example.com", auth_version, timeout_ms, 1 << 20, on_done,
                   h, why, sizeof(why));
    CHECK(s != NULL);
    event_base_loopexit(h->base, &guard);
    event_base_dispatch(h->base);
    CHECK(h->fired);
}

static void
harness_free(struct harness *h)
{
    bufferevent_free(h->kb);
    bufferevent_free(h->broker);
    event_base_free(h->base);
}

static void
test_sasl_authenticates_then_reauthenticates(void)
{
    struct harness h;
    bufferevent_data_cb rd = NULL;
    bufferevent_event_cb ev = NULL;
    char tail[8] = "";

    harness_init(&h, BROKER_OK);
    harness_run(&h, -1, 2000);
    CHECK(h.ok);
    CHECK_EQ_INT(h.lifetime, 5000);
    CHECK_EQ_INT(h.version, 1);
    CHECK_EQ_INT(h.n_requests, 3);
    CHECK_EQ_INT(h.requests[0], KP_API_API_VERSIONS);
    CHECK_EQ_INT(h.requests[1], KP_API_SASL_HANDSHAKE);
    CHECK_EQ_INT(h.requests[2], KP_API_SASL_AUTHENTICATE);
    /* the caller gets bev back with no callbacks */
    bufferevent_getcb(h.kb, &rd, NULL, &ev, NULL);
    CHECK(rd == NULL && ev == NULL);
    /* KIP-368 re-authentication on the same connection: no ApiVersions this time */
    h.n_requests = 0;
    h.trailing = true;
    harness_run(&h, h.version, 2000);
    CHECK(h.ok);
    CHECK_EQ_INT(h.n_requests, 2);
    CHECK_EQ_INT(h.requests[0], KP_API_SASL_HANDSHAKE);
    CHECK_EQ_INT(h.requests[1], KP_API_SASL_AUTHENTICATE);
    /* bytes after the last SASL answer stay in the input buffer for the caller */
    CHECK_EQ_INT(evbuffer_remove(bufferevent_get_input(h.kb), tail, 4), 4);
    CHECK(memcmp(tail, "tail", 4) == 0);
    harness_free(&h);
}

static void
test_sasl_refusal_with_close_is_reported(void)
{
    struct harness h;

    harness_init(&h, BROKER_REFUSE_CLOSE);
    harness_run(&h, -1, 2000);
    CHECK(!h.ok);
    CHECK_STR_CONTAINS(h.why, "authentication failed (PLAIN): the broker refused: Invalid "
                              "username or password (SASL_AUTHENTICATION_FAILED, error 58) "
                              "[broker b-1.example.com]");
    CHECK(strstr(h.why, "kbsecret") == NULL);
    harness_free(&h);
}

static void
test_sasl_silent_broker_times_out(void)
{
    struct harness h;

    harness_init(&h, BROKER_SILENT);
    harness_run(&h, -1, 200);
    CHECK(!h.ok);
    CHECK_STR_CONTAINS(h.why, "authentication failed (PLAIN): no answer from b-1.example.com "
                              "within 200 ms");
    harness_free(&h);
}

static void
test_sasl_oversized_answer(void)
{
    struct harness h;

    harness_init(&h, BROKER_HUGE);
    harness_run(&h, -1, 2000);
    CHECK(!h.ok);
    CHECK_STR_CONTAINS(h.why, "oversized answer size from b-1.example.com");
    harness_free(&h);
}

static void
test_sasl_closed_connection(void)
{
    struct harness h;

    harness_init(&h, BROKER_SILENT);
    bufferevent_free(h.broker);
    h.broker = NULL;
    harness_run(&h, -1, 2000);
    CHECK(!h.ok);
    CHECK_STR_CONTAINS(h.why, "b-1.example.com closed the connection during the SASL exchange");
    bufferevent_free(h.kb);
    event_base_free(h.base);
}

static void
test_sasl_cancel_and_bad_start(void)
{
    struct harness h;
    struct kb_cluster_conf off = {.name = "plain"};
    char why[256] = "";
    struct sasl *s;

    harness_init(&h, BROKER_SILENT);
    s = sasl_start(h.kb, &test_cc, "b-1", -1, 1000, 1 << 20, on_done, &h, why, sizeof(why));
    CHECK(s != NULL);
    sasl_cancel(s);
    sasl_cancel(NULL);
    CHECK(!h.fired);
    CHECK(sasl_start(h.kb, &off, "b-1", -1, 1000, 1 << 20, on_done, &h, why, sizeof(why)) == NULL);
    CHECK_STR_CONTAINS(why, "no usable sasl_mechanism in [plain]");
    harness_free(&h);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as kbridge does: a closed peer is an error event, not a kill */
    RUN(test_sasl_authenticates_then_reauthenticates);
    RUN(test_sasl_refusal_with_close_is_reported);
    RUN(test_sasl_silent_broker_times_out);
    RUN(test_sasl_oversized_answer);
    RUN(test_sasl_closed_connection);
    RUN(test_sasl_cancel_and_bad_start);
    return TEST_DONE();
}
