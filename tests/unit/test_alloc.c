// test_alloc.c - calloc, aligned allocation and realloc semantics.
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "harness.h"
#include "thread_heap.h"

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void calloc_zeroes_reused_memory(void) {
    size_t sizes[] = {24, 3000, 16384, 40000, 3 << 20};
    for (int i = 0; i < 5; i++) {
        unsigned char *p = mh_malloc(sizes[i]);
        memset(p, 0xff, sizes[i]);
        mh_free(p, "free");
        unsigned char *q = mh_alloc_zeroed(1, sizes[i]);
        CHECK(q && all_zero(q, sizes[i]));
        mh_free(q, "free");
    }
    CHECK(mh_alloc_zeroed(SIZE_MAX / 2, 3) == NULL);
    CHECK(mh_alloc_zeroed((size_t)1 << 62, 1) == NULL);
}

// calloc of fresh (never touched or punched) pages must not write them.
static void calloc_leaves_fresh_pages_untouched(void) {
    mh_arena_stats_t a, b;
    mh_arena_stats(&a);
    char *p = mh_alloc_zeroed(1, (size_t)64 << 20);
    mh_arena_stats(&b);
    CHECK(p != NULL && p[12345] == 0 && p[(64 << 20) - 1] == 0);
    if (a.memfd) CHECK(b.file_bytes < a.file_bytes + (1 << 20));
    mh_free(p, "free");
}

static void aligned(void) {
    for (size_t a = 32; a <= ((size_t)1 << 21); a <<= 1) {
        size_t sizes[] = {1, a - 1, a, 3 * a + 5, 20000};
        for (int i = 0; i < 5; i++) {
            char *p = mh_alloc_aligned(a, sizes[i]);
            CHECK(p && ((uintptr_t)p & (a - 1)) == 0);
            CHECK(mh_usable_size(p) >= sizes[i]);
            memset(p, 1, sizes[i]);
            mh_free(p, "free");
        }
    }
    CHECK(mh_alloc_aligned(24, 10) == NULL); // not a power of two
}

static void realloc_preserves(void) {
    unsigned char *p = mh_realloc(NULL, 1, "realloc");
    p[0] = 0x5a;
    size_t size = 1;
    for (; size < (8u << 20); size = size * 3 + 1) {
        p = mh_realloc(p, size * 3 + 1, "realloc");
        CHECK(p != NULL && p[0] == 0x5a);
        memset(p + 1, (unsigned char)size, size * 3);
        CHECK(mh_usable_size(p) >= size * 3 + 1);
    }
    for (; size > 1; size /= 5) {
        p = mh_realloc(p, size, "realloc");
        CHECK(p != NULL && p[0] == 0x5a);
    }
    mh_free(p, "free");
}

static void large_grows_in_place(void) {
    char *p = mh_malloc(1 << 20);
    memset(p, 3, 1 << 20);
    char *q = mh_realloc(p, 2 << 20, "realloc");
    CHECK(q != NULL && q[(1 << 20) - 1] == 3);
    char *r = mh_realloc(q, 600 << 10, "realloc"); // shrinks in place
    CHECK(r == q);
    CHECK_EQ(mh_usable_size(r), 600 << 10);
    mh_free(r, "free");
}

static void trim_releases(void) {
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = mh_malloc(100000);
        memset(p[i], 1, 100000);
    }
    for (int i = 0; i < 64; i++) mh_free(p[i], "free");
    CHECK(mh_trim() > 0);
}

TEST_MAIN(T(calloc_zeroes_reused_memory), T(calloc_leaves_fresh_pages_untouched), T(aligned), T(realloc_preserves),
          T(large_grows_in_place), T(trim_releases))
