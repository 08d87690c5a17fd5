/* bench_util.h - what the benchmark workloads share: a deterministic xorshift64*
 * generator and strict parsing of numeric arguments (bad input: one line, exit 2). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline uint64_t bench_rng(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* argv[i] as a number in [min, max], or def when absent. */
static inline long bench_arg(const char *prog, int argc, char **argv, int i, long def, long min,
                             long max)
{
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < min || v > max) {
        fprintf(stderr, "%s: bad argument '%s'\n", prog, argv[i]);
        exit(2);
    }
    return v;
}

#endif
