// thread_heap.h - per-thread heaps: one initial-exec TLS pointer, mh_tlh, to a heap
// with one shuffle vector per size class.
//
// Layer 7 (runtime): global_heap, meta_heap, shuffle.
// mh_tlh starts at a static heap whose vectors are all empty (capacity 0), so the
// malloc fast path (alloc.h) is one size-class lookup and one test of the vector
// count; the first malloc of a thread falls to the slow path, which creates the
// thread's heap here. A heap is destroyed by a pthread key destructor at thread exit;
// later calls from that thread use the global paths.
// Locking: a heap is touched only by its thread, except the list of all heaps (list
// lock), walked by stats and by the fork child.
#ifndef MH_THREAD_HEAP_H
#define MH_THREAD_HEAP_H

#include "common.h"
#include "rng.h"
#include "shuffle.h"
#include "size_class.h"

typedef struct mh_tlh_s {
    mh_sv_t sv[MH_NUM_CLASSES];
    mh_rng_t rng;
    struct mh_tlh_s *prev, *next; // guarded by the list lock
    void *slots[];                // the vectors' storage: a start area, then mh_sv_capacity()
                                  // per class (thread_heap.c); the word below each vector
                                  // is readable: see mh_sv_last
} mh_tlh_t;

extern __thread mh_tlh_t *mh_tlh MH_TLS_IE MH_HIDDEN;

// Sizes the heaps and creates the thread-exit key; once, during initialisation.
void mh_tlh_init(void);
// The calling thread's heap, created now: NULL when the thread's heap was already torn
// down, the key could not be made, or metadata memory is exhausted. Call only once the
// library is initialised and while mh_tlh is the static empty heap.
mh_tlh_t *mh_tlh_create(void);
// The thread allocates objects of class cls (not only frees them) and its vector is
// empty: the vector gets its capacity for the next refill (a small one in the start
// area the first time, its full room after). Only on a heap made by mh_tlh_create.
void mh_tlh_allocates(mh_tlh_t *t, unsigned cls);
// The vector of class cls is full: moves it out of the start area if it is still there
// and the thread allocates from the class. True when it has room now (no flush needed).
bool mh_tlh_grow(mh_tlh_t *t, unsigned cls);
// mh_tlh points at the static empty heap (no heap yet, or no more).
bool mh_tlh_is_empty(const mh_tlh_t *t);
// Runs the thread-exit teardown for the calling thread now (also the key destructor).
void mh_tlh_thread_exit(void *heap);
// Walks every live thread heap under the list lock.
void mh_tlh_for_each(void (*fn)(mh_tlh_t *, void *), void *arg);

void mh_tlh_fork_prepare(void);
void mh_tlh_fork_parent(void);
void mh_tlh_fork_child(void);

#endif
