/*
 * test.h - tiny test harness: CHECK macros that print file:line on failure and count results.
 * A test binary calls RUN(test_fn) for each case and ends with `return TEST_DONE();`, which
 * prints "N passed, N failed" and returns the exit status.
 */
#ifndef KB_TESTS_TEST_H
#define KB_TESTS_TEST_H

#include <stdio.h>
#include <string.h>

static int test_checks_failed; /* checks failed in the current case */
static int test_cases_passed;  /* cases with no failed check */
static int test_cases_failed;  /* cases with at least one failed check */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_checks_failed++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, check_a_, check_b_);                                                   \
            test_checks_failed++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *check_h_ = (hay), *check_n_ = (needle);                                        \
        if (!check_h_ || !strstr(check_h_, check_n_)) {                                            \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" does not contain \"%s\"\n", __FILE__,     \
                    __LINE__, check_h_ ? check_h_ : "(null)", check_n_);                           \
            test_checks_failed++;                                                                  \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        test_checks_failed = 0;                                                                    \
        fn();                                                                                      \
        if (test_checks_failed) {                                                                  \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
            test_cases_failed++;                                                                   \
        } else {                                                                                   \
            test_cases_passed++;                                                                   \
        }                                                                                          \
    } while (0)

#define TEST_DONE()                                                                                \
    (printf("%d passed, %d failed\n", test_cases_passed, test_cases_failed),                       \
     test_cases_failed ? 1 : 0)

#endif
