// shuffle.h - the shuffle vector: a thread's randomized cache of free slots in the
// one span it has attached for a size class.
//
// malloc pops the last index; a local free pushes the slot back (LIFO, cache-warm);
// a refill takes every free bit of the span at once and shuffles them (Fisher-Yates),
// so successive allocations land at random offsets - what meshing depends on.
// Invariant: idx[0..n) are distinct slots of span, each with its bitmap bit set,
// n <= span->objs. Only the owning thread touches a vector: no locking.
#ifndef MH_SHUFFLE_H
#define MH_SHUFFLE_H

#include "common.h"
#include "rng.h"
#include "span.h"

typedef struct mh_sv_s {
    uintptr_t base;  // span start, 0 when nothing is attached
    uint32_t size;   // object size
    uint32_t n;      // cached free slots
    mh_span_t *span; // attached span or NULL
    uint8_t idx[MH_MAX_OBJS];
} mh_sv_t;

MH_INLINE void *mh_sv_pop(mh_sv_t *sv) {
    return (void *)(sv->base + (uintptr_t)sv->idx[--sv->n] * sv->size);
}

MH_INLINE void mh_sv_push(mh_sv_t *sv, unsigned slot) { sv->idx[sv->n++] = (uint8_t)slot; }

// Points the vector at span s with n harvested slots in idx, shuffled.
MH_INLINE void mh_sv_fill(mh_sv_t *sv, mh_span_t *s, unsigned n, mh_rng_t *rng) {
    sv->span = s;
    sv->base = s->start;
    sv->size = s->obj_size;
    sv->n = n;
    mh_rng_shuffle_u8(rng, sv->idx, n);
}

MH_INLINE void mh_sv_clear(mh_sv_t *sv) {
    sv->span = NULL;
    sv->base = 0;
    sv->n = 0;
}

#endif
