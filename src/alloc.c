// alloc.c - the slow paths of malloc and free, calloc, aligned allocation and
// realloc on top of the thread heap and the arena (see alloc.h).
//
// Layer 7 (runtime). Initialisation, the configuration and mesh ticks are started
// from here, at the end of a slow path, where no allocator lock is held.
#define _GNU_SOURCE
#include "alloc.h"

#include <string.h>

#include "check.h"
#include "global_heap.h"
#include "mesh_sched.h"
#include "options.h"
#include "settings.h"

// ---- slow paths -----------------------------------------------------------------------

// Work the slow paths pick up: a raw clone child's heap, and pending settings.
static void slow_path_chores(void) {
    MH_CHECK_RAW_FORK();
    if (MH_UNLIKELY(mh_settings_pending())) mh_settings_service();
}

// The calling thread's heap, made now if it has none yet (also for a thread that only
// frees: its frees are then batched like any other thread's); NULL when it cannot have
// one (torn down at exit, bootstrap, metadata exhausted).
static mh_tlh_t *thread_heap(void) {
    mh_tlh_t *t = mh_tlh;
    if (!mh_tlh_is_empty(t)) return t;
    return mh_init_ensure() == MH_INIT_READY ? mh_tlh_create() : NULL;
}

void *mh_malloc_slow(size_t size) {
    slow_path_chores();
    if (size > MH_SMALL_MAX) {
        if (size > PTRDIFF_MAX) return NULL;
        (void)mh_init_ensure();
        bool zeroed;
        return mh_gh_large_alloc(size, 1, &zeroed);
    }
    mh_tlh_t *t = thread_heap();
    if (!t) return mh_gh_alloc_orphan(mh_size_to_class(size)); // (the class table may be new)
    unsigned cls = mh_size_to_class(size);
    mh_sv_t *sv = &t->sv[cls];
    if (sv->n == 0) {
        mh_tlh_allocates(t, cls); // its capacity for this refill
        if (!mh_gh_refill(sv, cls, t, &t->rng)) return NULL;
    }
    return mh_sv_pop(sv);
}

static bool is_cached(const mh_sv_t *sv, const void *p) {
    for (unsigned i = 0; i < sv->n; i++)
        if (sv->p[i] == p) return true;
    return false;
}

// A small object (or one in a meshed alias): onto the thread's vector, flushing the
// older half to the bitmaps when it is full, or straight to the bitmap when the thread
// cannot have a heap.
static void free_small(void *p, mh_span_t *s, const char *who) {
    if (mh_span_slot(s, (uintptr_t)p) < 0) mh_gh_corrupt(who, "invalid pointer", p);
    mh_tlh_t *t = thread_heap();
    if (!t) {
        mh_mesh_maybe(mh_gh_free_remote(p, who));
        return;
    }
    mh_sv_t *sv = &t->sv[s->cls];
    if ((sv->n && mh_sv_last(sv) == p) || (mh_cfg_debug && is_cached(sv, p)))
        mh_gh_corrupt(who, "double free of", p);
    bool flushed = sv->n == sv->cap && !mh_tlh_grow(t, s->cls);
    if (flushed) mh_gh_flush(sv, sv->cap / 2, who);
    mh_sv_push(sv, p);
    if (flushed) mh_mesh_maybe(s->cls); // frees into spans are what fragments a class
    if (MH_UNLIKELY(mh_load_relaxed(&mh_mesh_bg_wanted))) mh_mesh_start_wanted();
}

void mh_free_slow(void *p, mh_span_t *s, const char *who) {
    if (!p) return;
    slow_path_chores();
    if (!s) {
        if (mh_arena_contains(p)) mh_gh_corrupt(who, "invalid pointer", p);
        return; // never ours (e.g. from ld.so's early allocator): ignore
    }
    if (mh_span_holds_small(s)) {
        free_small(p, s, who);
        return;
    }
    if (s->kind == MH_KIND_LARGE) {
        mh_gh_large_free(s, p, who);
        return;
    }
    mh_gh_corrupt(who, (uintptr_t)p == s->start ? "double free of" : "invalid pointer", p);
}

size_t mh_usable_size(const void *p) {
    // Small objects (and aliases) from the class directory alone, as free does: programs
    // that account memory (Redis) ask for every object they free, and the descriptor is
    // one more cache miss.
    unsigned e = mh_dir_entry(p);
    if (MH_LIKELY(e != 0)) {
        const mh_class_info_t *c = &mh_classes[mh_dir_entry_class(e)];
        uint32_t off = (uint32_t)((uintptr_t)p - mh_dir_span_start(p, e));
        uint32_t slot = mh_slot_of(off, c->recip);
        return slot * c->size == off && slot < c->objs ? c->size : 0;
    }
    mh_span_t *s = mh_dir_lookup(p);
    if (!s) return 0;
    if (mh_span_holds_small(s)) return mh_span_slot(s, (uintptr_t)p) >= 0 ? s->obj_size : 0;
    if (s->kind == MH_KIND_LARGE && (uintptr_t)p == s->start) return mh_span_bytes(s);
    return 0;
}

// ---- calloc, aligned, realloc ----------------------------------------------------------

void *mh_alloc_zeroed(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return NULL;
    if (total <= MH_SMALL_MAX) {
        void *p = mh_malloc(total);
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
    if (align <= MH_MIN_ALIGN) return mh_malloc(size);
    if (!mh_is_pow2(align) || align > ((size_t)1 << 40) || size > PTRDIFF_MAX) return NULL;
    (void)mh_init_ensure();
    int c = aligned_class(align, size ? size : 1);
    if (c >= 0) return mh_malloc(mh_classes[c].size);
    bool zeroed;
    return mh_gh_large_alloc(size ? size : 1, align, &zeroed);
}

static void *move_object(void *p, size_t old, size_t size, const char *who) {
    void *q = mh_malloc(size);
    if (!q) return NULL;
    memcpy(q, p, old < size ? old : size);
    mh_free(p, who);
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
    if (!p) return mh_malloc(size);
    if (size > PTRDIFF_MAX) return NULL;
    if (!mh_dir_entry(p)) { // not a small object: a large one, or not ours
        mh_span_t *s = mh_dir_lookup(p);
        if (s && s->kind == MH_KIND_LARGE && (uintptr_t)p == s->start) return realloc_large(s, p, size, who);
    }
    size_t old = mh_usable_size(p);
    if (old == 0) {
        if (mh_arena_contains(p)) mh_gh_corrupt(who, "invalid pointer", p);
        return mh_malloc(size); // not ours and its size is unknown: nothing to copy
    }
    // Same class, or shrinking by at most half: keep the object where it is.
    if (size <= old && (size > old / 2 || old <= MH_MIN_ALIGN)) return p;
    return move_object(p, old, size, who);
}

size_t mh_trim(void) {
    if (mh_init_ensure() != MH_INIT_READY) return 0;
    mh_mesh_migrate_all(); // after a fork: back onto our own heap file
    if (mh_opt[MH_OPT_period_ms] > 0) mh_mesh_compact(false); // meshing off means off here too
    return mh_arena_purge_all();
}
