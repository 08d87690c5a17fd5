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

TEST_MAIN(T(alloc_free_reuse), T(many_chunks))
