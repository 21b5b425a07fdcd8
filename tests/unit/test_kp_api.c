/*
 * test_kp_api.c - kp_api.h: flexible versions and header versions from the spec, which
 * responses need a rewrite, the ApiVersions caps and the names.
 */
#include <string.h>

#include "kp_api.h"
#include "test.h"

static void
test_kp_api_flexible_versions(void)
{
    CHECK(!kp_api_is_flexible(KP_API_METADATA, 8));
    CHECK(kp_api_is_flexible(KP_API_METADATA, 9));
    CHECK(!kp_api_is_flexible(KP_API_FETCH, 11));
    CHECK(kp_api_is_flexible(KP_API_FETCH, 12));
    CHECK(kp_api_is_flexible(KP_API_PRODUCE, 9));
    CHECK(kp_api_is_flexible(KP_API_FIND_COORDINATOR, 3));
    CHECK(kp_api_is_flexible(KP_API_DESCRIBE_CLUSTER, 0));
    CHECK(kp_api_is_flexible(KP_API_SHARE_FETCH, 0));
    CHECK(!kp_api_is_flexible(KP_API_SASL_HANDSHAKE, 1)); /* flexibleVersions "none" */
    CHECK(kp_api_is_flexible(KP_API_SASL_AUTHENTICATE, 2));
    CHECK(!kp_api_is_flexible(-1, 5));
    CHECK(!kp_api_is_flexible(1000, 5));
}

static void
test_kp_api_header_versions(void)
{
    CHECK_EQ_INT(kp_api_request_header_version(KP_API_CONTROLLED_SHUTDOWN, 0), 0);
    CHECK_EQ_INT(kp_api_request_header_version(KP_API_CONTROLLED_SHUTDOWN, 1), 1);
    CHECK_EQ_INT(kp_api_request_header_version(KP_API_CONTROLLED_SHUTDOWN, 3), 2);
    CHECK_EQ_INT(kp_api_request_header_version(KP_API_METADATA, 8), 1);
    CHECK_EQ_INT(kp_api_request_header_version(KP_API_METADATA, 12), 2);
    CHECK_EQ_INT(kp_api_request_header_version(KP_API_API_VERSIONS, 3), 2);
    CHECK_EQ_INT(kp_api_request_header_version(12345, 0), 1);
    CHECK_EQ_INT(kp_api_response_header_version(KP_API_API_VERSIONS, 4), 0);
    CHECK_EQ_INT(kp_api_response_header_version(KP_API_METADATA, 9), 1);
    CHECK_EQ_INT(kp_api_response_header_version(KP_API_METADATA, 8), 0);
    CHECK_EQ_INT(kp_api_response_header_version(12345, 3), 0);
}

static void
test_kp_api_needs_rewrite(void)
{
    int v;

    for (v = 0; v <= 20; v++) {
        CHECK(kp_api_response_needs_rewrite(KP_API_METADATA, (int16_t)v));
        CHECK(kp_api_response_needs_rewrite(KP_API_FIND_COORDINATOR, (int16_t)v));
        CHECK(kp_api_response_needs_rewrite(KP_API_DESCRIBE_CLUSTER, (int16_t)v));
        CHECK(kp_api_response_needs_rewrite(KP_API_API_VERSIONS, (int16_t)v));
        CHECK(kp_api_response_needs_rewrite(KP_API_SHARE_FETCH, (int16_t)v));
        CHECK(kp_api_response_needs_rewrite(KP_API_SHARE_ACKNOWLEDGE, (int16_t)v));
        CHECK(kp_api_response_needs_rewrite(KP_API_PRODUCE, (int16_t)v) == (v >= 10));
        CHECK(kp_api_response_needs_rewrite(KP_API_FETCH, (int16_t)v) == (v >= 16));
        CHECK(!kp_api_response_needs_rewrite(KP_API_SASL_HANDSHAKE, (int16_t)v));
        CHECK(!kp_api_response_needs_rewrite(KP_API_SASL_AUTHENTICATE, (int16_t)v));
        CHECK(!kp_api_response_needs_rewrite(2, (int16_t)v));   /* ListOffsets */
        CHECK(!kp_api_response_needs_rewrite(999, (int16_t)v)); /* unknown */
    }
}

static void
test_kp_api_max_rewritable_version(void)
{
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_METADATA), 12);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_FIND_COORDINATOR), 6);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_DESCRIBE_CLUSTER), 1);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_PRODUCE), 11);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_FETCH), 17);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_SHARE_FETCH), 0);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_SHARE_ACKNOWLEDGE), 0);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_API_VERSIONS), -1);
    CHECK_EQ_INT(kp_api_max_rewritable_version(KP_API_SASL_HANDSHAKE), -1);
    CHECK_EQ_INT(kp_api_max_rewritable_version(-3), -1);
}

static void
test_kp_api_names(void)
{
    CHECK(strcmp(kp_api_name(KP_API_METADATA), "Metadata") == 0);
    CHECK(strcmp(kp_api_name(KP_API_SHARE_ACKNOWLEDGE), "ShareAcknowledge") == 0);
    CHECK(strcmp(kp_api_name(87), "ReadShareGroupStateSummary") == 0);
    CHECK(strcmp(kp_api_name(88), "Unknown") == 0);
    CHECK(strcmp(kp_api_name(-1), "Unknown") == 0);
}

int
main(void)
{
    RUN(test_kp_api_flexible_versions);
    RUN(test_kp_api_header_versions);
    RUN(test_kp_api_needs_rewrite);
    RUN(test_kp_api_max_rewritable_version);
    RUN(test_kp_api_names);
    return TEST_DONE();
}
