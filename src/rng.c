// rng.c - seeding and shuffling for the per-thread generator (see rng.h).
//
// Layer 2 (primitives).
#include "rng.h"

#include "os.h"

void mh_rng_seed(mh_rng_t *r) {
    mh_os_random(&r->state, sizeof r->state);
    r->state ^= (uintptr_t)r; // distinct streams even if the kernel source is unavailable
}

void mh_rng_shuffle_u8(mh_rng_t *r, uint8_t *a, uint32_t n) {
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = mh_rng_below(r, i);
        uint8_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
