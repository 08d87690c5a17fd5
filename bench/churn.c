/* churn.c - libmesh benchmark workload: single-thread small-object churn.
 * Keeps SLOTS live objects (random sizes 8..512 B) and replaces a random
 * slot OPS times (free + malloc + fill), checking each object's contents
 * before it is freed.
 * usage: churn [OPS=10000000] [SLOTS=100000] [SEED=1]
 * Prints one deterministic result line; exit 0 on success, 1 on a
 * detected corruption, 2 on bad arguments. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static uint64_t rng_s;

static inline uint64_t rng(void) { return bench_rng(&rng_s); }

struct slot {
    unsigned char *p;
    uint32_t size;
    uint8_t tag;
};

static long arg_long(int argc, char **argv, int i, long def)
{
    return bench_arg("churn", argc, argv, i, def, 1, LONG_MAX);
}

static void fill(struct slot *s)
{
    s->size = 8 + (uint32_t)(rng() % 505); /* 8..512 */
    s->tag = (uint8_t)rng();
    s->p = malloc(s->size);
    if (!s->p) {
        fprintf(stderr, "churn: malloc(%u) failed\n", s->size);
        exit(1);
    }
    memset(s->p, s->tag, s->size);
    s->p[s->size - 1] = (uint8_t)(s->tag ^ 0x5a);
}

static uint64_t check(const struct slot *s)
{
    const unsigned char *p = s->p;
    uint32_t n = s->size;
    /* n >= 8, so n / 2 < n - 1 always holds the plain tag */
    if (p[0] != s->tag || p[n / 2] != s->tag || p[n - 1] != (uint8_t)(s->tag ^ 0x5a)) {
        fprintf(stderr, "churn: corrupted object %p size %u\n", (void *)p, n);
        exit(1);
    }
    return n * 31u + s->tag;
}

int main(int argc, char **argv)
{
    long ops = arg_long(argc, argv, 1, 10000000);
    long nslots = arg_long(argc, argv, 2, 100000);
    rng_s = 0x9E3779B97F4A7C15ULL * (uint64_t)arg_long(argc, argv, 3, 1);

    struct slot *slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots) {
        fprintf(stderr, "churn: out of memory\n");
        return 1;
    }
    for (long i = 0; i < nslots; i++)
        fill(&slots[i]);

    uint64_t sum = 0;
    for (long i = 0; i < ops; i++) {
        struct slot *s = &slots[rng() % (uint64_t)nslots];
        sum += check(s);
        free(s->p);
        fill(s);
    }
    for (long i = 0; i < nslots; i++) {
        sum += check(&slots[i]);
        free(slots[i].p);
    }
    free(slots);
    printf("churn ops=%ld slots=%ld checksum=%016llx\n", ops, nslots, (unsigned long long)sum);
    return 0;
}
