// thread_heap.h - per-thread heaps and the malloc/free fast paths.
//
// One initial-exec TLS pointer, mh_tlh, starts at a static heap whose vectors are all
// empty, so the malloc fast path is one size-class lookup and one test of the vector
// count; the first malloc of a thread falls to the slow path, which initialises the
// library and creates the thread's heap. A heap is destroyed by a pthread key
// destructor at thread exit; later calls from that thread use the global paths.
// Locking: a heap is touched only by its thread, except the list of all heaps
// (list lock), walked by stats and by the fork child.
#ifndef MH_THREAD_HEAP_H
#define MH_THREAD_HEAP_H

#include "arena.h"
#include "common.h"
#include "rng.h"
#include "shuffle.h"
#include "init.h"
#include "size_class.h"

typedef struct mh_tlh_s {
    mh_sv_t sv[MH_NUM_CLASSES];
    mh_rng_t rng;
    struct mh_tlh_s *prev, *next; // guarded by the list lock
    void *slots[];                // the vectors' storage, mh_sv_capacity() per class
} mh_tlh_t;

extern __thread mh_tlh_t *mh_tlh MH_TLS_IE __attribute__((visibility("hidden")));

void *mh_tlh_malloc_slow(size_t size) MH_NOINLINE;
void mh_tlh_free_slow(void *p, mh_span_t *s, const char *who) MH_NOINLINE;

MH_INLINE void *mh_tlh_malloc(size_t size) {
    if (MH_LIKELY(size <= MH_SMALL_MAX)) {
        mh_sv_t *sv = &mh_tlh->sv[mh_size_to_class(size)];
        // The canary: a child of a raw clone must not hand out the shared heap.
        if (MH_LIKELY(sv->n != 0 && *mh_fork_canary)) return mh_sv_pop(sv);
    }
    return mh_tlh_malloc_slow(size);
}

// A free of a small object pushes it on this thread's vector for its class, whatever
// span it is in. Only the page's class entry is read (not the span descriptor); the
// slot check rejects interior pointers, and freeing the object that was freed last
// is caught as a double free (other double frees are caught when the vector is
// flushed to the bitmaps). A full vector, a large object, a foreign pointer or a
// thread without a heap take the slow path.
MH_INLINE void mh_tlh_free(void *p, const char *who) {
    unsigned e = mh_dir_class(p);
    if (MH_LIKELY(e != 0)) {
        unsigned cls = e & 63;
        const mh_class_info_t *c = &mh_classes[cls];
        uint32_t off = (uint32_t)((uintptr_t)p - mh_dir_span_start(p, e));
        uint32_t slot = mh_slot_of(off, c->recip);
        mh_sv_t *sv = &mh_tlh->sv[cls];
        if (MH_LIKELY(slot * c->size == off && slot < c->objs && sv->n < sv->cap &&
                      (sv->n == 0 || sv->p[sv->n - 1] != p)) && !mh_cfg_debug) {
            mh_sv_push(sv, p);
            return;
        }
    }
    mh_tlh_free_slow(p, mh_dir_lookup(p), who);
}

// Usable size of a live object of ours; 0 for NULL or a pointer that is not ours.
size_t mh_tlh_usable_size(const void *p);
// Runs the thread-exit teardown for the calling thread now (also the key destructor).
void mh_tlh_thread_exit(void *heap);
// Walks every live thread heap under the list lock.
void mh_tlh_for_each(void (*fn)(mh_tlh_t *, void *), void *arg);

void mh_tlh_fork_prepare(void);
void mh_tlh_fork_parent(void);
void mh_tlh_fork_child(void);

#endif
