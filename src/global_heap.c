// global_heap.c - class bins, attach/detach and remote frees (see global_heap.h).
//
// Memory-order argument for detach vs. remote free (no lock on the free side):
// the owner stores owner = NULL (seq_cst) and then reads the bitmap; a remote freer
// clears its bit (seq_cst RMW) and then reads owner. One of them sees the other, so
// either the detaching owner counts the freed slot, or the freer sees a detached
// span and re-files it under the class lock. Re-filing is idempotent and checks the
// descriptor's generation, because the span may have been recycled meanwhile.
#include "global_heap.h"

#include "arena.h"
#include "check.h"
#include "lock.h"

#define EMPTY_KEEP_BYTES ((size_t)64 << 10) // empty spans kept per class for reuse

typedef struct class_bin_s {
    mh_lock_t lock;
    mh_span_t *partial; // guarded by lock
    mh_span_t *empty;   // guarded by lock
    uint32_t nempty;    // guarded by lock
    uint32_t empty_max;
} __attribute__((aligned(64))) class_bin_t;

static class_bin_t bins[MH_NUM_CLASSES];

static void free_tolerant(void *p);
static void after_clear(mh_span_t *s, unsigned cls, uint32_t gen);

void mh_gh_corrupt(const char *who, const char *what, const void *p) {
    mh_fatal("%s(): %s %p", who, what, p);
}

// ---- lists (class lock held) -------------------------------------------------------

static mh_span_t **list_head(class_bin_t *b, unsigned list) {
    return list == MH_LIST_PARTIAL ? &b->partial : &b->empty;
}

static void list_remove(class_bin_t *b, mh_span_t *s) {
    if (s->list == MH_LIST_NONE) return;
    if (s->prev) s->prev->next = s->next;
    else *list_head(b, s->list) = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->list == MH_LIST_EMPTY) b->nempty--;
    s->prev = s->next = NULL;
    s->list = MH_LIST_NONE;
}

static void list_push(class_bin_t *b, mh_span_t *s, unsigned list) {
    mh_span_t **h = list_head(b, list);
    s->prev = NULL;
    s->next = *h;
    if (*h) (*h)->prev = s;
    *h = s;
    s->list = (uint8_t)list;
    if (list == MH_LIST_EMPTY) b->nempty++;
}

// Files a detached span on the list its occupancy calls for. Returns the span when it
// should go back to the arena; the caller frees it after dropping the class lock.
static mh_span_t *refile(class_bin_t *b, mh_span_t *s) {
    unsigned used = mh_span_in_use(s);
    unsigned want = used == 0 ? MH_LIST_EMPTY : used < s->objs ? MH_LIST_PARTIAL : MH_LIST_NONE;
    if (want == s->list) return NULL;
    list_remove(b, s);
    if (want == MH_LIST_EMPTY && b->nempty >= b->empty_max) return s;
    if (want != MH_LIST_NONE) list_push(b, s, want);
    return NULL;
}

static mh_span_t *new_span(unsigned cls) {
    bool zeroed;
    mh_span_t *s = mh_arena_alloc(mh_classes[cls].pages, 1, true, &zeroed);
    if (s) {
        mh_span_init_small(s, cls);
        mh_arena_set_class(s, cls);
    }
    return s;
}

// A span with free slots, off every list; NULL when out of memory. Class lock held.
static mh_span_t *take_span(class_bin_t *b, unsigned cls) {
    mh_span_t *s = b->partial ? b->partial : b->empty;
    if (s) {
        list_remove(b, s);
        return s;
    }
    return new_span(cls);
}

// ---- thread refill and release -------------------------------------------------------

bool mh_gh_refill(mh_sv_t *sv, unsigned cls, struct mh_tlh_s *owner, mh_rng_t *rng) {
    uint8_t idx[MH_MAX_OBJS];
    mh_span_t *cur = sv->span;
    if (cur) {
        unsigned n = mh_span_harvest(cur, idx);
        if (n) {
            mh_sv_fill(sv, cur, idx, n, rng);
            return true;
        }
    }
    class_bin_t *b = &bins[cls];
    mh_span_t *release = NULL;
    mh_lock(&b->lock);
    if (cur) {
        mh_store_seqcst(&cur->owner, NULL); // see the file comment
        release = refile(b, cur);
        sv->span = NULL;
    }
    for (;;) {
        mh_span_t *s = take_span(b, cls);
        if (!s) break;
        mh_store_seqcst(&s->owner, owner);
        unsigned n = mh_span_harvest(s, idx);
        if (n) {
            mh_sv_fill(sv, s, idx, n, rng);
            break;
        }
        mh_store_seqcst(&s->owner, NULL); // filled up meanwhile (cannot happen today)
        (void)refile(b, s);
    }
    mh_unlock(&b->lock);
    if (release) mh_arena_free(release, true);
    return sv->n != 0;
}

// Shell sort of object addresses, so objects of one span end up adjacent.
static void sort_ptrs(void **a, uint32_t n) {
    static const uint32_t gaps[] = {57, 23, 10, 4, 1};
    for (unsigned g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        uint32_t gap = gaps[g];
        for (uint32_t i = gap; i < n; i++) {
            void *v = a[i];
            uint32_t j = i;
            for (; j >= gap && (uintptr_t)a[j - gap] > (uintptr_t)v; j -= gap) a[j] = a[j - gap];
            a[j] = v;
        }
    }
}

// Clears the slots of objs[0..n), all in span s, with one atomic per bitmap word.
static void clear_batch(mh_span_t *s, void **objs, uint32_t n, const char *who) {
    uint64_t mask[MH_BITMAP_WORDS] = {0};
    unsigned cls = s->kind;
    uint32_t gen = s->gen;
    for (uint32_t i = 0; i < n; i++) {
        int slot = mh_span_slot(s, (uintptr_t)objs[i]);
        if (slot < 0) mh_gh_corrupt(who, "invalid pointer", objs[i]);
        uint64_t bit = (uint64_t)1 << (slot & 63);
        if (mask[slot >> 6] & bit) mh_gh_corrupt(who, "double free of", objs[i]);
        mask[slot >> 6] |= bit;
    }
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) {
        if (!mask[w]) continue;
        uint64_t old = mh_fetch_and_seqcst(&s->bits[w], ~mask[w]);
        if ((old & mask[w]) != mask[w]) { // some slot was already free: name it
            uint64_t bad = mask[w] & ~old;
            uintptr_t p = s->start + (w * 64 + (unsigned)__builtin_ctzll(bad)) * (uintptr_t)s->obj_size;
            mh_gh_corrupt(who, "double free of", (void *)p);
        }
    }
    after_clear(s, cls, gen);
}

void mh_gh_flush(mh_sv_t *sv, uint32_t count, const char *who) {
    if (count > sv->n) count = sv->n;
    void *batch[MH_MAX_OBJS];
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < MH_MAX_OBJS ? count - done : MH_MAX_OBJS;
        for (uint32_t i = 0; i < n; i++) batch[i] = sv->p[done + i];
        sort_ptrs(batch, n);
        for (uint32_t i = 0; i < n;) {
            mh_span_t *s = mh_dir_lookup(batch[i]);
            uintptr_t end = s->start + ((uintptr_t)s->pages << MH_PAGE_SHIFT);
            uint32_t j = i + 1;
            while (j < n && (uintptr_t)batch[j] < end) j++;
            clear_batch(s, batch + i, j - i, who);
            i = j;
        }
        done += n;
    }
    for (uint32_t i = count; i < sv->n; i++) sv->p[i - count] = sv->p[i];
    sv->n -= count;
}

void mh_gh_release(mh_sv_t *sv, bool tolerant) {
    if (tolerant) {
        for (uint32_t i = 0; i < sv->n; i++) free_tolerant(sv->p[i]);
        sv->n = 0;
    }
    mh_gh_flush(sv, sv->n, "free");
    mh_span_t *s = sv->span;
    if (!s) return;
    class_bin_t *b = &bins[s->kind];
    mh_lock(&b->lock);
    mh_store_seqcst(&s->owner, NULL);
    mh_span_t *release = refile(b, s);
    mh_unlock(&b->lock);
    sv->span = NULL;
    if (release) mh_arena_free(release, true);
}

// ---- frees from other threads ---------------------------------------------------------

// After a slot of detached-or-foreign span s was cleared: re-file the span if its
// list may have changed. gen was read before the clear (the span may be recycled).
static void after_clear(mh_span_t *s, unsigned cls, uint32_t gen) {
    if (mh_load_seqcst(&s->owner) != NULL) return; // the owner will see it at refill
    if (s->list == MH_LIST_PARTIAL && !mh_span_is_empty(s)) return; // stays (racy hint)
    class_bin_t *b = &bins[cls];
    mh_span_t *release = NULL;
    mh_lock(&b->lock);
    if (s->gen == gen && s->kind == cls && mh_load_relaxed(&s->owner) == NULL)
        release = refile(b, s);
    mh_unlock(&b->lock);
    if (release) mh_arena_free(release, true);
}

void mh_gh_free_remote(mh_span_t *s, void *p, const char *who) {
    unsigned cls = s->kind;
    uint32_t gen = s->gen;
    int slot = mh_span_slot(s, (uintptr_t)p);
    if (slot < 0) mh_gh_corrupt(who, "invalid pointer", p);
    if (!mh_span_clear(s, (unsigned)slot)) mh_gh_corrupt(who, "double free of", p);
    after_clear(s, cls, gen);
}

// Fork child only: a thread that vanished in the fork may have been half-way through
// a flush, so some cached slots can already be clear; they are skipped, not fatal.
static void free_tolerant(void *p) {
    mh_span_t *s = mh_dir_lookup(p);
    if (!s || !mh_span_is_small(s)) return;
    int slot = mh_span_slot(s, (uintptr_t)p);
    if (slot >= 0 && mh_span_clear(s, (unsigned)slot)) after_clear(s, s->kind, s->gen);
}

void *mh_gh_alloc_orphan(unsigned cls) {
    class_bin_t *b = &bins[cls];
    void *p = NULL;
    mh_lock(&b->lock);
    mh_span_t *s = take_span(b, cls);
    if (s) {
        int slot = mh_span_claim_one(s);
        if (slot >= 0) p = (void *)(s->start + (uintptr_t)slot * s->obj_size);
        (void)refile(b, s); // never empty here: it holds our object (or was just made)
    }
    mh_unlock(&b->lock);
    return p;
}

// ---- large objects ---------------------------------------------------------------------

void *mh_gh_large_alloc(size_t size, size_t align, bool *zeroed) {
    size_t pages = mh_pages_for(size);
    size_t align_pages = align > MH_PAGE_SIZE ? align >> MH_PAGE_SHIFT : 1;
    mh_span_t *s = mh_arena_alloc(pages, align_pages, false, zeroed);
    if (!s) return NULL;
    s->obj_size = 0;
    return (void *)s->start;
}

void mh_gh_large_free(mh_span_t *s, void *p, const char *who) {
    if ((uintptr_t)p != s->start) mh_gh_corrupt(who, "invalid pointer", p);
    uint8_t expected = MH_KIND_LARGE;
    // Claim the span so two racing frees of one pointer cannot both release it.
    if (!__atomic_compare_exchange_n(&s->kind, &expected, MH_KIND_BUSY, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        mh_gh_corrupt(who, "double free of", p);
    mh_arena_free(s, false);
}

// ---- fork --------------------------------------------------------------------------------

void mh_gh_fork_prepare(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) mh_lock(&bins[c].lock);
}

void mh_gh_fork_parent(void) {
    for (unsigned c = MH_NUM_CLASSES; c-- > 0;) mh_unlock(&bins[c].lock);
}

void mh_gh_fork_child(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) mh_lock_reset(&bins[c].lock);
}

void mh_gh_init(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        size_t span_bytes = (size_t)mh_classes[c].pages << MH_PAGE_SHIFT;
        size_t keep = EMPTY_KEEP_BYTES / span_bytes;
        bins[c].empty_max = (uint32_t)(keep ? keep : 1);
    }
}
