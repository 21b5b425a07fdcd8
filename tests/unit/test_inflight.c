/*
 * test_inflight.c - the per-bridge FIFO of outstanding requests (proxy/inflight.h).
 */
#include "proxy/inflight.h"

#include "test.h"

static void
test_inflight_fifo_order_across_growth(void)
{
    struct inflight q;
    int i;

    inflight_init(&q);
    CHECK(inflight_peek(&q) == NULL);
    for (i = 0; i < 1000; i++) {
        CHECK(inflight_push(&q, i, (int16_t)(i % 70), (int16_t)(i % 13), (double)i));
        if (i % 3 == 0) { /* interleave pops so the ring wraps while it grows */
            const struct inflight_entry *e = inflight_peek(&q);
            CHECK(e != NULL);
            inflight_pop(&q);
        }
    }
    /* 334 popped (i = 0, 3, ..., 999): the oldest left is the 335th pushed. */
    for (i = 334; i < 1000; i++) {
        const struct inflight_entry *e = inflight_peek(&q);
        CHECK(e != NULL);
        if (!e) {
            break;
        }
        CHECK_EQ_INT(e->correlation_id, i);
        CHECK_EQ_INT(e->api_key, i % 70);
        CHECK_EQ_INT(e->api_version, i % 13);
        CHECK(e->sent == (double)i);
        inflight_pop(&q);
    }
    CHECK(inflight_peek(&q) == NULL);
    inflight_pop(&q); /* popping an empty queue is a no-op */
    CHECK_EQ_INT(q.count, 0);
    inflight_free(&q);
}

static void
test_inflight_refuses_beyond_cap(void)
{
    struct inflight q;
    int i, ok = 0;

    inflight_init(&q);
    for (i = 0; i < KB_INFLIGHT_MAX + 10; i++) {
        ok += inflight_push(&q, i, 0, 0, 0.0) ? 1 : 0;
    }
    CHECK_EQ_INT(ok, KB_INFLIGHT_MAX);
    inflight_pop(&q);
    CHECK(inflight_push(&q, 1, 0, 0, 0.0)); /* room again after a response */
    inflight_free(&q);
}

int
main(void)
{
    RUN(test_inflight_fifo_order_across_growth);
    RUN(test_inflight_refuses_beyond_cap);
    return TEST_DONE();
}
