// alloc.h - the allocation operations behind every exported entry point (C API, C++
// operators, mesh_* API): the malloc/free fast paths and their slow paths, sizes,
// alignment, zeroing and resizing, with glibc's semantics. The wrappers add only
// errno handling and symbol names.
//
// Layer 7 (runtime): thread_heap, global_heap, arena, init, settings, mesh_sched.
// Locking: the fast paths touch only the calling thread's heap; the slow paths take
// the class and arena locks below them, never while calling up.
#ifndef MH_ALLOC_H
#define MH_ALLOC_H

#include "arena.h"
#include "common.h"
#include "init.h"
#include "shuffle.h"
#include "size_class.h"
#include "thread_heap.h"

void *mh_malloc_slow(size_t size) MH_NOINLINE;
void mh_free_slow(void *p, mh_span_t *s, const char *who) MH_NOINLINE;

// The fast path alone: an object from this thread's vector for the class, or NULL
// (never an object: vectors hold no NULLs) when the slow path must run. Entry points
// test it and tail-call their own slow path, so the fast path saves no registers.
MH_INLINE void *mh_malloc_fast(size_t size) {
    if (MH_LIKELY(size <= MH_SMALL_MAX)) {
        mh_sv_t *sv = &mh_tlh->sv[mh_size_to_class(size)];
        // The canary: a child of a raw clone must not hand out the shared heap.
        if (MH_LIKELY(sv->n != 0 && *mh_fork_canary)) {
            void *p = mh_sv_pop(sv);
            MH_ASSUME(p != NULL); // the callers' NULL test then only sees the misses
            return p;
        }
    }
    return NULL;
}

MH_INLINE void *mh_malloc(size_t size) {
    void *p = mh_malloc_fast(size);
    return MH_LIKELY(p != NULL) ? p : mh_malloc_slow(size);
}

// A free of a small object pushes it on this thread's vector for its class, whatever
// span it is in. Only the page's class entry is read (not the span descriptor); the
// slot check rejects interior pointers, and freeing the object that was freed last
// is caught as a double free (other double frees are caught when the vector is
// flushed to the bitmaps). A full vector, a large object, a foreign pointer or a
// thread without a heap take the slow path.
MH_INLINE void mh_free(void *p, const char *who) {
    unsigned e = mh_dir_entry(p);
    if (MH_LIKELY(e != 0)) {
        unsigned cls = mh_dir_entry_class(e);
        const mh_class_info_t *c = &mh_classes[cls];
        uint32_t off = (uint32_t)((uintptr_t)p - mh_dir_span_start(p, e));
        uint32_t slot = mh_slot_of(off, c->recip);
        mh_sv_t *sv = &mh_tlh->sv[cls];
        if (MH_LIKELY(slot * c->size == off && slot < c->objs && sv->n < sv->cap && mh_sv_last(sv) != p) &&
            !mh_cfg_debug) {
            mh_sv_push(sv, p);
            return;
        }
    }
    mh_free_slow(p, mh_dir_lookup(p), who);
}

// Usable size of a live object of ours; 0 for NULL or a pointer that is not ours.
size_t mh_usable_size(const void *p);
// NULL on failure; the callers set errno.
void *mh_alloc_zeroed(size_t n, size_t size);
void *mh_alloc_aligned(size_t align, size_t size);
void *mh_realloc(void *p, size_t size, const char *who);
size_t mh_trim(void);

#endif
