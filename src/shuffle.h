// shuffle.h - the shuffle vector: a thread's per-class stack of free objects.
//
// Layer 3 (memory).
//
// A refill takes every free slot of the thread's attached span at once, shuffles them
// (Fisher-Yates) and pushes them, so successive allocations land at random offsets -
// what meshing depends on. Frees of objects of this class push the object back (from
// any span: recently freed memory is cache-warm), up to a capacity bounded in bytes;
// a full vector flushes its oldest half back to the spans' bitmaps.
// Invariant: p[0..n) are distinct free objects of this class whose bitmap bits are
// set (they count as in use until flushed). Only the owning thread touches a vector.
#ifndef MH_SHUFFLE_H
#define MH_SHUFFLE_H

#include "check.h"
#include "common.h"
#include "rng.h"
#include "span.h"

#define MH_SV_BYTES ((size_t)64 << 10) // cached bytes per class beyond one span's worth

typedef struct mh_sv_s {
    uint32_t n;      // cached objects
    uint32_t cap;    // capacity of p (0 in the static empty heap)
    mh_span_t *span; // attached span or NULL
    void **p;
} mh_sv_t;

MH_INLINE void *mh_sv_pop(mh_sv_t *sv) { return sv->p[--sv->n]; }

// The object pushed last - or, when the vector is empty, whatever the word below it
// holds (the previous class's last slot, or the heap's list link: thread_heap.h), so
// no test of n is needed. A filter only: a match sends free to its slow path, which
// tests for real; writing a sentinel there would touch a page per vector. Not for the
// static empty heap (cap 0), whose vectors have no storage.
MH_INLINE void *mh_sv_last(const mh_sv_t *sv) { return (sv->p + sv->n)[-1]; }

MH_INLINE void mh_sv_push(mh_sv_t *sv, void *obj) {
    MH_ASSERT(sv->n < sv->cap);
    sv->p[sv->n++] = obj;
}

// Capacity for class cls: a whole span's slots, and at least MH_SV_BYTES of objects
// (at most 256 entries).
uint32_t mh_sv_capacity(unsigned cls);

// Pushes the n harvested slots of span s, listed in idx, in random order.
void mh_sv_fill(mh_sv_t *sv, mh_span_t *s, uint8_t *idx, unsigned n, mh_rng_t *rng);

#endif
