// test_meta_heap.c - metadata pools hand out zeroed, distinct, reusable objects.
#include <string.h>

#include "harness.h"
#include "meta_heap.h"

static mh_meta_pool_t pool = MH_META_POOL_INIT(200);

static void alloc_free_reuse(void) {
    CHECK_EQ(pool.obj_size, 256);
    char *a = mh_meta_alloc(&pool), *b = mh_meta_alloc(&pool);
    CHECK(a && b && a != b);
    CHECK(((uintptr_t)a & 63) == 0);
    memset(a, 0xab, 256);
    mh_meta_free(&pool, a);
    char *c = mh_meta_alloc(&pool);
    CHECK(c == a);
    int zero = 1;
    for (int i = 0; i < 256; i++) zero &= c[i] == 0;
    CHECK(zero);
}

static void many_chunks(void) {
    for (int i = 0; i < 20000; i++) CHECK(mh_meta_alloc(&pool) != NULL);
    CHECK(pool.chunks >= 4);
}

// Leaves and chunks share one reservation: each block is page-aligned, zeroed,
// writable and disjoint from the others, across reservations and for sizes too big
// to share one.
static void shared_reservation(void) {
    static char *blocks[24];
    static size_t lens[24];
    for (int i = 0; i < 24; i++) {
        lens[i] = i % 8 == 7 ? ((size_t)5 << 20) : ((size_t)(i % 3) + 1) * 700 * 1024;
        void *p = NULL;
        CHECK_EQ(mh_meta_map(lens[i], &p), 0);
        blocks[i] = p;
        CHECK(p && ((uintptr_t)p & (MH_PAGE_SIZE - 1)) == 0);
        CHECK(blocks[i][0] == 0 && blocks[i][lens[i] - 1] == 0);
        blocks[i][0] = (char)(i + 1);
        blocks[i][lens[i] - 1] = (char)(i + 1);
    }
    for (int i = 0; i < 24; i++) {
        CHECK(blocks[i][0] == (char)(i + 1) && blocks[i][lens[i] - 1] == (char)(i + 1));
        for (int j = 0; j < 24; j++)
            if (i != j) CHECK(blocks[i] + lens[i] <= blocks[j] || blocks[j] + lens[j] <= blocks[i]);
    }
}

TEST_MAIN(T(alloc_free_reuse), T(many_chunks), T(shared_reservation))
