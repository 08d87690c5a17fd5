// harness.h - a minimal test harness for the unit tests: CHECK records a failure with
// file:line and keeps going; TEST_MAIN runs the listed tests and exits non-zero if any
// check failed.
#ifndef MH_TEST_HARNESS_H
#define MH_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "options.h"

// The unit tests exercise the heap file (meshing, copy-on-write forks) from the first
// allocation on: the heap takes its memfd at once, as with mesh.file_from_mib = 0
// (before libmesh's own constructor, which may allocate).
__attribute__((constructor(101))) static void harness_file_from_start(void) {
    mh_opt[MH_OPT_file_from_mib] = 0;
}

static int harness_failures;
static int harness_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        harness_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            harness_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);            \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        harness_checks++;                                                                          \
        if (va_ != vb_) {                                                                          \
            harness_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", __FILE__,       \
                    __LINE__, #a, #b, va_, vb_);                                                   \
        }                                                                                          \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} harness_test_t;

#define TEST_MAIN(...)                                                                             \
    int main(void) {                                                                               \
        harness_test_t tests_[] = {__VA_ARGS__};                                                   \
        for (size_t i_ = 0; i_ < sizeof tests_ / sizeof tests_[0]; i_++) {                         \
            int before_ = harness_failures;                                                        \
            tests_[i_].fn();                                                                       \
            printf("%s %s\n", harness_failures == before_ ? "ok  " : "FAIL", tests_[i_].name);    \
        }                                                                                          \
        printf("%d checks, %d failed\n", harness_checks, harness_failures);                       \
        return harness_failures ? 1 : 0;                                                           \
    }

#define T(fn) {#fn, fn}

// Chi-square statistic of observed counts against a uniform expectation.
static inline double chi_square_uniform(const unsigned *counts, unsigned bins) {
    double total = 0, chi = 0;
    for (unsigned i = 0; i < bins; i++) total += counts[i];
    double expect = total / bins;
    for (unsigned i = 0; i < bins; i++) chi += (counts[i] - expect) * (counts[i] - expect) / expect;
    return chi;
}

// Upper critical value of chi-square with df degrees of freedom at p = 0.0001
// (Wilson-Hilferty approximation), so a correct implementation fails about once in
// ten thousand runs.
static inline double chi_square_critical(unsigned df) {
    double z = 3.719, k = df;
    double t = 1 - 2 / (9 * k) + z * __builtin_sqrt(2 / (9 * k));
    return k * t * t * t;
}

#endif
