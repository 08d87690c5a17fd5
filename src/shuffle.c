// shuffle.c - refill and sizing of shuffle vectors (see shuffle.h).
//
// Layer 3 (memory).
#include "shuffle.h"

uint32_t mh_sv_capacity(unsigned cls) {
    const mh_class_info_t *c = &mh_classes[cls];
    size_t by_bytes = MH_SV_BYTES / c->size;
    if (by_bytes > MH_MAX_OBJS) by_bytes = MH_MAX_OBJS;
    return c->objs > by_bytes ? c->objs : (uint32_t)by_bytes;
}

void mh_sv_fill(mh_sv_t *sv, mh_span_t *s, uint8_t *idx, unsigned n, mh_rng_t *rng) {
    mh_rng_shuffle_u8(rng, idx, n);
    sv->span = s;
    for (unsigned i = 0; i < n; i++)
        sv->p[sv->n++] = (void *)(s->start + (uintptr_t)idx[i] * s->obj_size);
}
