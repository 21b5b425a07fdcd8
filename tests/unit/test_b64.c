/* test_b64.c - auth/b64.h against RFC 4648 section 10's test vectors. */
#include "auth/b64.h"

#include <string.h>

#include "test.h"

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

static void
test_b64_rfc4648_vectors(void)
{
    char out[16];
    uint8_t back[16];
    size_t i, n;

    for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t len = strlen(plain[i]);
        CHECK(b64_encode((const uint8_t *)plain[i], len, false, out, sizeof(out)) ==
              strlen(std[i]));
        CHECK(strcmp(out, std[i]) == 0);
        CHECK(b64_encode((const uint8_t *)plain[i], len, true, out, sizeof(out)) == strlen(url[i]));
        CHECK(strcmp(out, url[i]) == 0);
        CHECK(b64_decode(std[i], strlen(std[i]), back, sizeof(back), &n));
        CHECK(n == len && memcmp(back, plain[i], len) == 0);
    }
}

static void
test_b64_url_alphabet(void)
{
    const uint8_t in[] = {0xfb, 0xff, 0xfe};
    char out[8];

    CHECK(b64_encode(in, sizeof(in), false, out, sizeof(out)) == 4 && strcmp(out, "+//+") == 0);
    CHECK(b64_encode(in, sizeof(in), true, out, sizeof(out)) == 4 && strcmp(out, "-__-") == 0);
}

static void
test_b64_rejects_bad_input(void)
{
    uint8_t back[16];
    size_t n;

    CHECK(!b64_decode("Zm9", 3, back, sizeof(back), &n));      /* not a multiple of 4 */
    CHECK(!b64_decode("Zm9*", 4, back, sizeof(back), &n));     /* outside the alphabet */
    CHECK(!b64_decode("Z===", 4, back, sizeof(back), &n));     /* too much padding */
    CHECK(!b64_decode("Zg==Zg==", 8, back, sizeof(back), &n)); /* padding inside */
    CHECK(!b64_decode("Zm9vYmFy", 8, back, 5, &n));            /* output too small */
}

static void
test_b64_output_too_small(void)
{
    char out[4];

    CHECK(b64_encode((const uint8_t *)"foo", 3, false, out, sizeof(out)) == 0);
    CHECK(out[0] == '\0');
}

int
main(void)
{
    RUN(test_b64_rfc4648_vectors);
    RUN(test_b64_url_alphabet);
    RUN(test_b64_rejects_bad_input);
    RUN(test_b64_output_too_small);
    return TEST_DONE();
}
