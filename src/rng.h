// rng.h - per-thread pseudo-random numbers for shuffling free slots.
//
// Layer 2 (primitives).
//
// wyrand-style 64-bit generator: fast, statistically good, not cryptographic (the
// randomness spreads object offsets so meshing finds partners). No locking: each
// generator belongs to one thread heap.
#ifndef MH_RNG_H
#define MH_RNG_H

#include "common.h"

typedef struct mh_rng_s {
    uint64_t state;
} mh_rng_t;

void mh_rng_seed(mh_rng_t *r);

MH_INLINE uint64_t mh_rng_next(mh_rng_t *r) {
    r->state += 0xa0761d6478bd642full;
    __uint128_t m = (__uint128_t)r->state * (r->state ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

// Uniform in [0, n) by multiply-shift (Lemire); bias is below 2^-32 for n <= 256.
MH_INLINE uint32_t mh_rng_below(mh_rng_t *r, uint32_t n) {
    return (uint32_t)(((mh_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

// Fisher-Yates shuffle of n one-byte slot indices.
void mh_rng_shuffle_u8(mh_rng_t *r, uint8_t *a, uint32_t n);

#endif
