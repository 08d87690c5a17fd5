// test_arena.c - regions, the page directory, coalescing, alignment, resizing,
// releasing physical pages, and growth far beyond a fixed 64 GiB arena.
#include <string.h>

#include "arena.h"
#include "harness.h"

static mh_span_t *alloc_pages(size_t pages, size_t align, bool map_all) {
    bool zeroed;
    mh_span_t *s = mh_arena_alloc(pages, align, map_all, &zeroed);
    CHECK(s != NULL);
    return s;
}

static void directory_lookup(void) {
    mh_span_t *s = alloc_pages(4, 1, true);
    for (size_t i = 0; i < 4; i++) CHECK(mh_dir_lookup((char *)s->start + i * 4096 + 17) == s);
    mh_span_t *l = alloc_pages(10, 1, false);
    CHECK(mh_dir_lookup((void *)l->start) == l);
    CHECK(mh_dir_lookup((char *)l->start + 4096) == NULL); // large: head page only
    CHECK(mh_arena_contains((char *)l->start + 4096));
    int local;
    CHECK(mh_dir_lookup(&local) == NULL);
    CHECK(!mh_arena_contains(&local));
    CHECK(mh_dir_lookup((void *)~(uintptr_t)0) == NULL);
    mh_arena_free(s, true);
    mh_arena_free(l, false);
    CHECK(mh_dir_lookup((char *)s->start + 4096) == NULL);
}

static void coalesce_and_reuse(void) {
    mh_span_t *a = alloc_pages(3, 1, false), *b = alloc_pages(5, 1, false);
    mh_span_t *c = alloc_pages(2, 1, false);
    uintptr_t start = a->start;
    CHECK(b->start == a->start + 3 * 4096 && c->start == b->start + 5 * 4096);
    mh_arena_free(a, false);
    mh_arena_free(c, false);
    mh_arena_free(b, false); // merges with both neighbours
    mh_span_t *d = alloc_pages(10, 1, false);
    CHECK(d->start == start);
    mh_arena_free(d, false);
}

static void alignment(void) {
    size_t aligns[] = {2, 16, 256};
    for (size_t i = 0; i < 3; i++) {
        mh_span_t *s = alloc_pages(3, aligns[i], false);
        CHECK(s->start % (aligns[i] * 4096) == 0);
        CHECK(s->pages == 3);
        mh_arena_free(s, false);
    }
}

static void resize_in_place(void) {
    mh_span_t *s = alloc_pages(4, 1, false);
    uintptr_t start = s->start;
    memset((void *)start, 5, 4 * 4096);
    CHECK(mh_arena_resize(s, 2)); // the tail becomes a free run right behind s
    CHECK_EQ(s->pages, 2);
    CHECK(mh_arena_resize(s, 4)); // and can be taken back in place
    CHECK(s->start == start && s->pages == 4);
    CHECK(((char *)start)[4095] == 5);
    mh_span_t *other = alloc_pages(1, 1, false);
    CHECK(other->start < start || other->start >= start + 4 * 4096);
    mh_arena_free(other, false);
    mh_arena_free(s, false);
}

// Freed pages are given back: the memfd's allocated blocks drop after a purge.
static void purge_releases_file_pages(void) {
    mh_span_t *s = alloc_pages(64, 1, true); // below the release-at-free size
    memset((void *)s->start, 1, 64 * 4096);
    mh_arena_stats_t before, mid, after;
    mh_arena_stats(&before);
    mh_arena_free(s, true);
    mh_arena_stats(&mid);
    CHECK(mid.dirty >= 64 * 4096);
    CHECK(mh_arena_purge_all() >= 64 * 4096);
    mh_arena_stats(&after);
    CHECK_EQ(after.dirty, 0);
    if (before.memfd) CHECK(after.file_bytes + 64 * 4096 <= before.file_bytes);
}

static void big_runs_released_at_free(void) {
    enum { PAGES = 9000 }; // above the 32 MiB release-at-free size
    mh_span_t *s = alloc_pages(PAGES, 1, false);
    memset((void *)s->start, 7, PAGES * 4096);
    mh_arena_stats_t before, after;
    mh_arena_stats(&before);
    mh_arena_free(s, false);
    mh_arena_stats(&after);
    if (before.memfd) CHECK(after.file_bytes + PAGES * 4096 <= before.file_bytes);
    bool zeroed;
    mh_span_t *again = mh_arena_alloc(PAGES, 1, false, &zeroed);
    CHECK(zeroed);
    CHECK(((char *)again->start)[4096 * 10] == 0);
    mh_arena_free(again, false);
}

// No fixed heap limit: more than 64 GiB of address space in live large blocks.
static void grows_past_64_gib(void) {
    enum { N = 80 };
    mh_span_t *blocks[N];
    size_t pages = ((size_t)1 << 30) / 4096; // 1 GiB each
    for (int i = 0; i < N; i++) {
        blocks[i] = alloc_pages(pages, 1, false);
        if (!blocks[i]) return;
        ((char *)blocks[i]->start)[0] = (char)i; // touch one page of each
        ((char *)blocks[i]->start)[pages * 4096 - 1] = (char)i;
    }
    mh_arena_stats_t st;
    mh_arena_stats(&st);
    CHECK(st.mapped >= (size_t)N << 30);
    for (int i = 0; i < N; i++) {
        CHECK(((char *)blocks[i]->start)[0] == (char)i);
        mh_arena_free(blocks[i], false);
    }
}

TEST_MAIN(T(directory_lookup), T(coalesce_and_reuse), T(alignment), T(resize_in_place),
          T(purge_releases_file_pages), T(big_runs_released_at_free), T(grows_past_64_gib))
