/* frag.c - libmesh benchmark workload: fragmentation.
 * Allocates OBJECTS small objects over ROUNDS rounds with growing size
 * ranges (round r of R draws sizes from the r-th of R equal slices of
 * 32..256 B), and after each round frees a random (100-KEEP)% of that
 * round's objects, keeping the rest.  The survivors are scattered thinly
 * over many pages, which a non-compacting allocator cannot give back.
 * At the end it checks the survivors, holds them for HOLD_MS so the
 * harness can sample memory, checks them again and exits without freeing
 * them (the survivors are deliberately live at exit).
 * usage: frag [OBJECTS=2000000] [ROUNDS=4] [KEEP_PCT=10] [HOLD_MS=500] [SEED=1]
 * Prints one deterministic result line; exit 0 on success. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

struct obj {
    unsigned char *p;
    uint32_t size;
    uint32_t tag;
};

static uint64_t rng_s;
/* survivors; file scope so they stay reachable (not "leaked") at exit */
static struct obj *keep;

static inline uint64_t rng(void) { return bench_rng(&rng_s); }

static uint64_t check(const struct obj *o)
{
    uint32_t t;
    memcpy(&t, o->p, sizeof t);
    if (t != o->tag || o->p[o->size / 2] != (unsigned char)o->tag ||
        o->p[o->size - 1] != (unsigned char)(o->tag >> 8)) {
        fprintf(stderr, "frag: corrupted object %p size %u\n", (void *)o->p, o->size);
        exit(1);
    }
    return (uint64_t)o->size * 3 + o->tag;
}

static long arg_long(int argc, char **argv, int i, long def, long min, long max)
{
    return bench_arg("frag", argc, argv, i, def, min, max);
}

int main(int argc, char **argv)
{
    long nobj = arg_long(argc, argv, 1, 2000000, 1, 1L << 30);
    long rounds = arg_long(argc, argv, 2, 4, 1, 224);
    long keep_pct = arg_long(argc, argv, 3, 10, 0, 100);
    long hold_ms = arg_long(argc, argv, 4, 500, 0, 3600000);
    rng_s = 0x9E3779B97F4A7C15ULL * (uint64_t)arg_long(argc, argv, 5, 1, 1, 1L << 40);

    if (rounds > nobj) {
        fprintf(stderr, "frag: ROUNDS must not exceed OBJECTS\n");
        return 2;
    }
    long per_round = nobj / rounds;
    struct obj *round = malloc(sizeof(struct obj) * (size_t)per_round);
    keep = malloc(sizeof(struct obj) * (size_t)nobj);
    if (!round || !keep) {
        fprintf(stderr, "frag: out of memory\n");
        return 1;
    }
    long nkeep = 0;
    uint64_t sum = 0, live_bytes = 0;
    uint32_t slice = 224 / (uint32_t)rounds;
    for (long r = 0; r < rounds; r++) {
        uint32_t lo = 32 + (uint32_t)r * slice;
        uint32_t span = r == rounds - 1 ? 257 - lo : slice; /* last slice reaches 256 */
        for (long i = 0; i < per_round; i++) {
            struct obj *o = &round[i];
            uint64_t x = rng();
            o->size = lo + (uint32_t)(x % span);
            o->tag = (uint32_t)(x >> 32);
            o->p = malloc(o->size);
            if (!o->p) {
                fprintf(stderr, "frag: malloc(%u) failed\n", o->size);
                return 1;
            }
            memset(o->p, (unsigned char)o->tag, o->size);
            memcpy(o->p, &o->tag, sizeof o->tag);
            o->p[o->size - 1] = (unsigned char)(o->tag >> 8);
        }
        for (long i = 0; i < per_round; i++) {
            sum += check(&round[i]);
            if ((long)(rng() % 100) < keep_pct) {
                keep[nkeep++] = round[i];
                live_bytes += round[i].size;
            } else {
                free(round[i].p);
            }
        }
    }
    free(round);
    for (long i = 0; i < nkeep; i++)
        sum += check(&keep[i]);
    struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts))
        ;
    for (long i = 0; i < nkeep; i++)
        sum += check(&keep[i]);
    printf("frag objects=%ld kept=%ld live_bytes=%llu checksum=%016llx\n", per_round * rounds, nkeep,
           (unsigned long long)live_bytes, (unsigned long long)sum);
    return 0; /* survivors are left allocated on purpose */
}
