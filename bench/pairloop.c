/* pairloop.c - libmesh benchmark workload: the cost of one malloc+free pair on the
 * small-object path.  One thread keeps LIVE objects (random sizes 8..MAXSIZE B) and,
 * ITERS times, frees a random one of them and allocates a new one of a random size in
 * its place, touching its first byte.  Few objects are live, so everything stays in
 * the allocator's thread caches: what is measured is the fast paths and whatever slow
 * path work the allocator does per pair.  With ITERS = 0 only the set-up runs, so
 * bench/paircost can subtract it and report per-pair instructions and branches.
 * usage: pairloop [ITERS=20000000] [LIVE=64] [MAXSIZE=1024] [SEED=1]
 * Prints one deterministic result line; exit 0 on success. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

int main(int argc, char **argv) {
    long iters = bench_arg("pairloop", argc, argv, 1, 20000000L, 0, LONG_MAX);
    long live = bench_arg("pairloop", argc, argv, 2, 64, 1, 1L << 20);
    long maxsize = bench_arg("pairloop", argc, argv, 3, 1024, 8, 1L << 20);
    uint64_t x = (uint64_t)bench_arg("pairloop", argc, argv, 4, 1, 1, LONG_MAX), sum = 0;
    unsigned char **slot = calloc((size_t)live, sizeof *slot);
    if (!slot) {
        fprintf(stderr, "pairloop: out of memory\n");
        return 1;
    }
    for (long i = 0; i < live; i++) {
        slot[i] = malloc(8);
        if (!slot[i]) {
            fprintf(stderr, "pairloop: malloc failed\n");
            return 1;
        }
        slot[i][0] = 1;
    }
    for (long i = 0; i < iters; i++) {
        uint64_t r = bench_rng(&x);
        size_t k = (size_t)(r % (uint64_t)live), size = 8 + (size_t)((r >> 32) % (uint64_t)(maxsize - 7));
        sum += slot[k][0];
        free(slot[k]);
        slot[k] = malloc(size);
        if (!slot[k]) {
            fprintf(stderr, "pairloop: malloc(%zu) failed\n", size);
            return 1;
        }
        slot[k][0] = (unsigned char)size;
    }
    for (long i = 0; i < live; i++) free(slot[i]);
    free(slot);
    printf("pairloop iters=%ld live=%ld maxsize=%ld checksum=%llx\n", iters, live, maxsize, (unsigned long long)sum);
    return 0;
}
