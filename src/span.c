// span.c - bitmap operations and validation for span descriptors (see span.h).
//
// Layer 3 (memory): size_class.
#include "span.h"

#include "check.h"

static _Atomic uint32_t span_gen;

uint32_t mh_span_next_gen(void) { return mh_fetch_add_relaxed(&span_gen, 1) + 1; }

static unsigned harvest_all(mh_span_t *s, uint8_t *out) {
    unsigned n = 0;
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) {
        uint64_t valid = mh_span_valid_mask(s, w);
        if (!valid) break;
        if (mh_load_relaxed(&s->bits[w]) == valid) continue;
        uint64_t free = valid & ~mh_exchange_seqcst(&s->bits[w], valid);
        while (free) {
            out[n++] = (uint8_t)(w * 64 + (unsigned)__builtin_ctzll(free));
            free &= free - 1;
        }
    }
    return n;
}

// Claims up to `want` free bits of word w among `allowed`. Only the owner sets bits
// while frees clear them, so every bit seen free is still free: fetch_or claims all.
static unsigned claim_some(mh_span_t *s, unsigned w, uint64_t allowed, unsigned want, uint8_t *out) {
    uint64_t free = allowed & ~mh_load_relaxed(&s->bits[w]), take = 0;
    unsigned n = 0;
    for (; free && n < want; free &= free - 1, n++) {
        take |= free & (0 - free);
        out[n] = (uint8_t)(w * 64 + (unsigned)__builtin_ctzll(free));
    }
    if (take) (void)mh_fetch_or_seqcst(&s->bits[w], take);
    return n;
}

// A partial harvest walks the slots circularly from slot `from`, so the first objects
// of a span still land at a random offset.
static unsigned harvest_from(mh_span_t *s, uint8_t *out, unsigned max, unsigned from) {
    unsigned words = (s->objs + 63) / 64, w0 = from / 64, n = 0;
    uint64_t high = ~(uint64_t)0 << (from % 64); // the start word's bits from `from` on
    for (unsigned k = 0; k <= words && n < max; k++) {
        unsigned w = (w0 + k) % words;
        uint64_t allowed = mh_span_valid_mask(s, w);
        if (k == 0) allowed &= high;
        else if (k == words) allowed &= ~high; // back at the start word: the bits below
        n += claim_some(s, w, allowed, max - n, out + n);
    }
    return n;
}

unsigned mh_span_harvest(mh_span_t *s, uint8_t *out, unsigned max, unsigned from) {
    MH_ASSERT(mh_span_valid(s) && from < s->objs);
    return max >= s->objs ? harvest_all(s, out) : harvest_from(s, out, max, from);
}

int mh_span_claim_one(mh_span_t *s) {
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) {
        uint64_t valid = mh_span_valid_mask(s, w);
        uint64_t cur = mh_load_relaxed(&s->bits[w]);
        while (valid & ~cur) {
            uint64_t bit = (valid & ~cur) & (0 - (valid & ~cur));
            if (mh_cas_acq_rel(&s->bits[w], &cur, cur | bit))
                return (int)(w * 64 + (unsigned)__builtin_ctzll(bit));
        }
    }
    return -1;
}

void mh_span_init_small(mh_span_t *s, unsigned cls) {
    const mh_class_info_t *c = &mh_classes[cls];
    s->kind = (uint8_t)cls;
    s->cls = (uint8_t)cls;
    s->naliases = 0;
    s->views_split = 0;
    s->leader = s->next_alias = NULL;
    s->obj_size = c->size;
    s->recip = c->recip;
    s->objs = (uint16_t)c->objs;
    s->list = MH_LIST_NONE;
    s->gen = mh_span_next_gen();
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_store_relaxed(&s->bits[w], 0);
}

bool mh_span_valid(mh_span_t *s) {
    if (s->start & (MH_PAGE_SIZE - 1)) return false;
    if (mh_span_is_small(s)) {
        const mh_class_info_t *c = &mh_classes[s->kind];
        if (s->obj_size != c->size || s->objs != c->objs || s->pages != c->pages) return false;
        for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
            if (mh_load_relaxed(&s->bits[w]) & ~mh_span_valid_mask(s, w)) return false;
        return true;
    }
    return s->kind == MH_KIND_LARGE || s->kind == MH_KIND_FREE || s->kind == MH_KIND_BUSY;
}
