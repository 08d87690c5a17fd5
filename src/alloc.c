// alloc.c - calloc, aligned allocation and realloc on top of the thread heap and the
// arena (see alloc.h).
#include "alloc.h"

#include <string.h>

#include "arena.h"
#include "global_heap.h"
#include "init.h"
#include "mesh.h"
#include "options.h"
#include "thread_heap.h"

void *mh_alloc_zeroed(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return NULL;
    if (total <= MH_SMALL_MAX) {
        void *p = mh_tlh_malloc(total);
        if (p) memset(p, 0, total);
        return p;
    }
    if (total > PTRDIFF_MAX) return NULL;
    (void)mh_init_ensure();
    bool zeroed;
    void *p = mh_gh_large_alloc(total, 1, &zeroed);
    if (p && !zeroed) memset(p, 0, total); // fresh or punched pages are already zero
    return p;
}

// Smallest class that fits size and whose objects are all aligned to align (objects
// sit at multiples of the class size in page-aligned spans); -1 if none.
static int aligned_class(size_t align, size_t size) {
    if (size > MH_SMALL_MAX || align > MH_PAGE_SIZE) return -1;
    for (unsigned c = mh_size_to_class(size); c < MH_NUM_CLASSES; c++)
        if (mh_classes[c].size % align == 0) return (int)c;
    return -1;
}

void *mh_alloc_aligned(size_t align, size_t size) {
    if (align <= MH_MIN_ALIGN) return mh_tlh_malloc(size);
    if (!mh_is_pow2(align) || align > ((size_t)1 << 40) || size > PTRDIFF_MAX) return NULL;
    (void)mh_init_ensure();
    int c = aligned_class(align, size ? size : 1);
    if (c >= 0) return mh_tlh_malloc(mh_classes[c].size);
    bool zeroed;
    return mh_gh_large_alloc(size ? size : 1, align, &zeroed);
}

static void *move_object(void *p, size_t old, size_t size, const char *who) {
    void *q = mh_tlh_malloc(size);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    mh_tlh_free(p, who);
    return q;
}

// Large objects grow or shrink in place when the neighbouring pages allow it.
static void *realloc_large(mh_span_t *s, void *p, size_t size, const char *who) {
    size_t old = mh_span_bytes(s);
    if (size > MH_SMALL_MAX) {
        size_t pages = mh_pages_for(size);
        if (pages == s->pages) return p;
        if (pages < s->pages && size > old / 4) return mh_arena_resize(s, pages), p;
        if (pages > s->pages && mh_arena_resize(s, pages)) return p;
    }
    return move_object(p, old, size, who);
}

void *mh_realloc(void *p, size_t size, const char *who) {
    if (!p) return mh_tlh_malloc(size);
    if (size > PTRDIFF_MAX) return NULL;
    if (!mh_dir_class(p)) { // not a small object: a large one, or not ours
        mh_span_t *s = mh_dir_lookup(p);
        if (s && s->kind == MH_KIND_LARGE && (uintptr_t)p == s->start) return realloc_large(s, p, size, who);
    }
    size_t old = mh_tlh_usable_size(p);
    if (old == 0) {
        if (mh_arena_contains(p)) mh_gh_corrupt(who, "invalid pointer", p);
        return mh_tlh_malloc(size); // not ours and its size is unknown: nothing to copy
    }
    // Same class, or shrinking by at most half: keep the object where it is.
    if (size <= old && (size > old / 2 || old <= MH_MIN_ALIGN)) return p;
    return move_object(p, old, size, who);
}

size_t mh_trim(void) {
    if (mh_init_ensure() != MH_INIT_READY) return 0;
    mh_mesh_migrate_all(); // after a fork: back onto our own heap file
    if (mh_opt[MH_OPT_period_ms] > 0) mh_mesh_compact(); // meshing off means off here too
    return mh_arena_purge_all();
}
