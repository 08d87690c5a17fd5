// span.h - span descriptors: a run of arena pages that is either a small-object span
// of one size class, one large object, or a free page run.
//
// Invariants:
// - bits: bit i set <=> slot i is handed out (to the program, or cached in the owning
//   thread's shuffle vector). Bits at or beyond objs are always 0, so popcount is the
//   number of slots in use and the span is full when popcount == objs.
// - owner != NULL <=> the span is attached: only that thread allocates from it and it
//   is on no global list. owner is written by the owner (detach) or under the class
//   lock (attach); any thread may read it.
// - A meshed span is a leader with a chain of aliases: each alias is a span's virtual
//   range now mapped onto the leader's file pages. The leader's bitmap is the union of
//   live slots over all its virtual ranges; an alias's bitmap holds the slots live
//   through its own range. The directory maps alias pages to the alias descriptor.
// - gen is unique per descriptor incarnation (a global counter), so a thread that
//   cleared a bit can tell under the class lock whether the descriptor was reused.
// Locking: bitmap words are atomic; list fields are guarded by the class lock for
// small spans and by the arena lock for free runs and large objects.
//
// Layer 3 (memory): size_class.
#ifndef MH_SPAN_H
#define MH_SPAN_H

#include "atomic.h"
#include "common.h"
#include "size_class.h"

struct mh_tlh_s;

enum {
    MH_KIND_LARGE = 254, // one object of `pages` pages
    MH_KIND_FREE = 255,  // a free page run in the arena
    MH_KIND_BUSY = 253,  // a free run taken out of the bins (being purged)
    MH_KIND_ALIAS = 252, // the virtual pages of a span meshed into `leader`
};

// MH_LIST_FRESH: a never used span of its class's newest chunk (global_heap.c).
enum { MH_LIST_NONE = 0, MH_LIST_PARTIAL, MH_LIST_EMPTY, MH_LIST_DIRTY, MH_LIST_CLEAN, MH_LIST_FRESH };

// views_split: a fork migration that could not move a whole group (arena_fork.c), or
// a mesh whose mappings could be neither made nor undone (mesh.c): there views may map
// each other's pages, so no alias is released before the whole group.
#define MH_SPLIT_MIGRATION 1
#define MH_SPLIT_PINNED 2

typedef struct mh_span_s mh_span_t;
struct mh_span_s {
    // First cache line: identity and geometry (read on every free).
    union {
        uint64_t meta_link;            // the metadata pool's free list, while unused
        uint64_t maps_off;             // live: the heap-file offset of the pages its range
                                       // maps when they are not its own (a meshed alias);
                                       // 0: its own (arena lock)
    };
    _Atomic(struct mh_tlh_s *) owner;  // attached thread heap or NULL
    uintptr_t start;                   // first byte
    uint32_t obj_size, recip;          // copies of the class info (hot on free)
    uint8_t kind;                      // size class, or MH_KIND_*
    uint8_t list;                      // MH_LIST_* the span is on
    uint8_t cls;                       // size class of a small span, also once it is an alias
    uint8_t shared_frozen;             // stale, yet mapped shared on the file a fork froze:
                                       // it was a meshed leader then (arena_fork.c)
    uint16_t objs;                     // objects per span (1 for large)
    uint16_t region;                   // arena region index (runs never cross regions)
    uint32_t pages;
    uint32_t gen;
    uint32_t backing;                  // arena backing epoch (see arena_fork.c); arena lock
    uint32_t moved;                    // stale large span: pages already migrated; arena lock
    uint32_t naliases;                 // meshed leader: length of its alias chain (class lock)
    uint8_t views_split;               // meshed leader whose virtual spans no longer share
                                       // pages: never meshed or migrated again; MH_SPLIT_*
    // Second cache line: what list walks and the mesher read.
    _Atomic uint64_t bits[MH_BITMAP_WORDS];
    mh_span_t *prev, *next;            // class list or free-run bin
    union {
        struct {                       // free runs
            mh_span_t *lru_prev, *lru_next; // dirty runs, oldest first
        };
        struct {                       // meshing (class lock)
            mh_span_t *leader;         // alias: the span whose pages it maps
            mh_span_t *next_alias;     // leader: its aliases, a singly linked chain
        };
    };
};
// Two cache lines: descriptors are a few percent of a fragmented heap, and a list walk
// touches one line per span.
_Static_assert(sizeof(struct mh_span_s) == 128, "span descriptor is two cache lines");

MH_INLINE bool mh_span_is_small(const mh_span_t *s) { return s->kind < MH_NUM_CLASSES; }
// A small span or the alias of one: an address inside holds small objects.
MH_INLINE bool mh_span_holds_small(const mh_span_t *s) {
    return s->kind < MH_NUM_CLASSES || s->kind == MH_KIND_ALIAS;
}

MH_INLINE uint64_t mh_span_valid_mask(const mh_span_t *s, unsigned w) {
    unsigned lo = w * 64;
    if (s->objs >= lo + 64) return ~(uint64_t)0;
    if (s->objs <= lo) return 0;
    return ((uint64_t)1 << (s->objs - lo)) - 1;
}

// Set bits of x. The baseline x86-64 target has no popcnt instruction, and there
// __builtin_popcountll is a call into libgcc's table loop; the bit-parallel sum is a
// dozen instructions without a call or a branch.
MH_INLINE unsigned mh_popcount64(uint64_t x) {
#if defined(__POPCNT__) || !defined(__x86_64__)
    return (unsigned)__builtin_popcountll(x);
#else
    x -= (x >> 1) & 0x5555555555555555u;
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (unsigned)((x * 0x0101010101010101u) >> 56);
#endif
}

MH_INLINE unsigned mh_span_in_use(mh_span_t *s) {
    unsigned n = 0;
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) n += mh_popcount64(mh_load_relaxed(&s->bits[w]));
    return n;
}

MH_INLINE bool mh_span_is_empty(mh_span_t *s) {
    uint64_t any = 0;
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) any |= mh_load_relaxed(&s->bits[w]);
    return any == 0;
}

// Slot index of p, or -1 when p is not the start of a slot.
MH_INLINE int mh_span_slot(const mh_span_t *s, uintptr_t p) {
    uint32_t off = (uint32_t)(p - s->start);
    uint32_t i = mh_slot_of(off, s->recip);
    if (MH_UNLIKELY(i * s->obj_size != off || i >= s->objs)) return -1;
    return (int)i;
}

// Takes the span's free slots for its owner, at most max of them (every one when max
// is at least the slot count; otherwise the first met walking from slot `from`): marks
// them used and writes their indices to out. Returns how many. Safe against concurrent
// remote frees; only the owner may claim slots.
unsigned mh_span_harvest(mh_span_t *s, uint8_t *out, unsigned max, unsigned from);
// Clears slot i; returns false when it was already free (a double free).
MH_INLINE bool mh_span_clear(mh_span_t *s, unsigned i) {
    uint64_t m = (uint64_t)1 << (i & 63);
    return (mh_fetch_and_seqcst(&s->bits[i >> 6], ~m) & m) != 0;
}
// Claims one free slot (for threads without a heap); -1 if none.
int mh_span_claim_one(mh_span_t *s);
// A span's length in bytes and its end. pages is 32 bits: widen before shifting, or a
// run of 4 GiB or more wraps. Every byte length of a span comes from these two.
MH_INLINE size_t mh_span_bytes(const mh_span_t *s) { return (size_t)s->pages << MH_PAGE_SHIFT; }
MH_INLINE uintptr_t mh_span_end(const mh_span_t *s) { return s->start + mh_span_bytes(s); }

// Fills a fresh descriptor for a small span of class cls at start.
void mh_span_init_small(mh_span_t *s, unsigned cls);
uint32_t mh_span_next_gen(void);
bool mh_span_valid(mh_span_t *s);

#endif
