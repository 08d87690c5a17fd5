// test_rng.c - the generator's bounded draws and shuffles are uniform.
#include <string.h>

#include "harness.h"
#include "rng.h"

static void below_is_uniform(void) {
    mh_rng_t r;
    mh_rng_seed(&r);
    unsigned counts[37] = {0};
    for (int i = 0; i < 370000; i++) counts[mh_rng_below(&r, 37)]++;
    CHECK(chi_square_uniform(counts, 37) < chi_square_critical(36));
}

// Each element must land in each position equally often.
static void shuffle_is_uniform(void) {
    enum { N = 16, TRIALS = 64000 };
    mh_rng_t r;
    mh_rng_seed(&r);
    unsigned pos[N][N];
    memset(pos, 0, sizeof pos);
    for (int t = 0; t < TRIALS; t++) {
        uint8_t a[N];
        for (int i = 0; i < N; i++) a[i] = (uint8_t)i;
        mh_rng_shuffle_u8(&r, a, N);
        for (int i = 0; i < N; i++) pos[a[i]][i]++;
    }
    for (int e = 0; e < N; e++) CHECK(chi_square_uniform(pos[e], N) < chi_square_critical(N - 1));
}

static void seeds_differ(void) {
    mh_rng_t a, b;
    mh_rng_seed(&a);
    mh_rng_seed(&b);
    CHECK(mh_rng_next(&a) != mh_rng_next(&b));
}

TEST_MAIN(T(below_is_uniform), T(shuffle_is_uniform), T(seeds_differ))
