/* realloc.c - libmesh benchmark workload: realloc chains.
 * Keeps VECS growable buffers.  Each step picks one at random and either
 * starts it (realloc(NULL, 1)), grows it by realloc like a string/vector
 * would (small appends while short, up to +50% when long) towards a random
 * target size that is log-uniform between 1 B and 1 MiB, shrinks it once
 * by realloc when it reaches the target (half the time), or frees it.
 * Contents are written through every growth and checked after every
 * realloc, so a realloc that loses data is caught.
 * usage: realloc [STEPS=8000000] [VECS=256] [SEED=1]
 * Prints one deterministic result line; exit 0 on success. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define MAX_SIZE (1u << 20)

struct vec {
    unsigned char *p;
    size_t len;    /* bytes in use (all written) */
    size_t target; /* grow until len reaches this */
    uint8_t tag;
    uint8_t state; /* 0 empty, 1 growing, 2 at target, 3 shrunk */
};

static uint64_t rng_s;

static inline uint64_t rng(void) { return bench_rng(&rng_s); }

/* expected byte at offset i: constant within each 256-byte block */
static inline uint8_t pat(const struct vec *v, size_t i)
{
    return (uint8_t)(v->tag + (i >> 8) * 7);
}

static void write_range(struct vec *v, size_t from, size_t to)
{
    while (from < to) {
        size_t blk_end = (from | 255) + 1;
        size_t end = blk_end < to ? blk_end : to;
        memset(v->p + from, pat(v, from), end - from);
        from = end;
    }
}

static uint64_t verify(const struct vec *v)
{
    size_t n = v->len, mid = (size_t)(rng() % n);
    if (v->p[0] != pat(v, 0) || v->p[n - 1] != pat(v, n - 1) || v->p[mid] != pat(v, mid)) {
        fprintf(stderr, "realloc: corrupted buffer %p len %zu\n", (void *)v->p, n);
        exit(1);
    }
    return n;
}

static void resize(struct vec *v, size_t n)
{
    unsigned char *q = realloc(v->p, n);
    if (!q) {
        fprintf(stderr, "realloc: realloc(%zu) failed\n", n);
        exit(1);
    }
    v->p = q;
    if (n > v->len)
        write_range(v, v->len, n);
    v->len = n;
}

static long arg_long(int argc, char **argv, int i, long def)
{
    return bench_arg("realloc", argc, argv, i, def, 1, LONG_MAX);
}

int main(int argc, char **argv)
{
    long steps = arg_long(argc, argv, 1, 8000000);
    long nvec = arg_long(argc, argv, 2, 256);
    rng_s = 0x9E3779B97F4A7C15ULL * (uint64_t)arg_long(argc, argv, 3, 1);

    struct vec *vs = calloc((size_t)nvec, sizeof *vs);
    if (!vs) {
        fprintf(stderr, "realloc: out of memory\n");
        return 1;
    }
    uint64_t sum = 0, frees = 0;
    for (long s = 0; s < steps; s++) {
        struct vec *v = &vs[rng() % (uint64_t)nvec];
        switch (v->state) {
        case 0: { /* start a chain: realloc(NULL, 1) */
            uint64_t r = rng();
            unsigned bits = (unsigned)(r % 21); /* 2^0 .. 2^20 */
            size_t t = ((size_t)1 << bits) + (size_t)((r >> 8) % ((size_t)1 << bits));
            v->target = t > MAX_SIZE ? MAX_SIZE : t;
            v->tag = (uint8_t)(r >> 40);
            v->p = NULL;
            v->len = 0;
            resize(v, 1);
            v->state = v->target > 1 ? 1 : 2;
            break;
        }
        case 1: { /* grow */
            size_t step = v->len < 4096 ? 1 + (size_t)(rng() % 32)
                                         : 1 + (size_t)(rng() % (v->len / 2));
            size_t n = v->len + step;
            if (n >= v->target) {
                n = v->target;
                v->state = 2;
            }
            resize(v, n);
            sum += verify(v);
            break;
        }
        case 2: /* at target: shrink half the time, else free */
            if (rng() & 1) {
                resize(v, 1 + (size_t)(rng() % v->len));
                sum += verify(v);
                v->state = 3;
                break;
            }
            /* fall through */
        case 3:
            sum += verify(v);
            free(v->p);
            v->p = NULL;
            v->state = 0;
            frees++;
            break;
        }
    }
    for (long i = 0; i < nvec; i++) {
        if (vs[i].p) {
            sum += verify(&vs[i]);
            free(vs[i].p);
        }
    }
    free(vs);
    printf("realloc steps=%ld chains_freed=%llu checksum=%016llx\n", steps,
           (unsigned long long)frees, (unsigned long long)sum);
    return 0;
}
