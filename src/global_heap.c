// global_heap.c - class bins, attach/detach and remote frees (see global_heap.h).
//
// Layer 5 (heap): arena, span, shuffle, alias.
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
#include "alias.h"
#include "atomic.h"

#define EMPTY_KEEP_BYTES ((size_t)64 << 10) // empty spans kept per class for reuse
// New spans of a class come in chunks of adjacent spans (1, 2, 4, ... up to this many
// bytes as the class grows): spans of one class side by side are what lets meshed
// aliases continue each other's mappings (mesh.c), and a small program still takes
// one span at a time.
#define CHUNK_MAX_BYTES ((size_t)256 << 10)
#define CHUNK_MAX_SPANS 64

typedef struct class_bin_s {
    mh_lock_t lock;
    _Atomic uint32_t freeing; // threads inside a free section (see section_enter)
    _Atomic uint32_t meshing; // a mesh pass of this class is running
    mh_span_t *partial; // guarded by lock
    mh_span_t *partial_tail; // guarded by lock: the mesher moves examined spans here
    mh_span_t *empty;   // guarded by lock
    mh_span_t *fresh;   // guarded by lock: never used spans of the last chunk, in address order
    uint32_t nempty;    // guarded by lock
    uint32_t chunk;     // guarded by lock: spans the next chunk holds
    uint32_t npartial;  // guarded by lock (read racily by the mesher's class choice)
    uint32_t empty_max;
} __attribute__((aligned(64))) class_bin_t;

static class_bin_t bins[MH_NUM_CLASSES];

static void free_tolerant(void *p);
static void after_clear(mh_span_t *s, unsigned cls, uint32_t gen);

void mh_gh_corrupt(const char *who, const char *what, const void *p) {
    mh_corrupt("%s(): %s %p", who, what, p);
}

// ---- lists (class lock held) -------------------------------------------------------

static mh_span_t **list_head(class_bin_t *b, unsigned list) {
    return list == MH_LIST_PARTIAL ? &b->partial : list == MH_LIST_EMPTY ? &b->empty : &b->fresh;
}

static void list_remove(class_bin_t *b, mh_span_t *s) {
    if (s->list == MH_LIST_NONE) return;
    MH_ASSERT(s->list == MH_LIST_PARTIAL || s->list == MH_LIST_EMPTY || s->list == MH_LIST_FRESH);
    MH_ASSERT(s->prev || *list_head(b, s->list) == s); // on the list it says it is on
    if (s->list == MH_LIST_PARTIAL && b->partial_tail == s) b->partial_tail = s->prev;
    if (s->prev) s->prev->next = s->next;
    else *list_head(b, s->list) = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->list == MH_LIST_EMPTY) b->nempty--;
    if (s->list == MH_LIST_PARTIAL) b->npartial--;
    s->prev = s->next = NULL;
    s->list = MH_LIST_NONE;
}

static void list_push(class_bin_t *b, mh_span_t *s, unsigned list) {
    MH_ASSERT(s->list == MH_LIST_NONE && mh_load_relaxed(&s->owner) == NULL); // detached, on no list
    MH_ASSERT(mh_span_is_small(s) && mh_span_valid(s));
    mh_span_t **h = list_head(b, list);
    s->prev = NULL;
    s->next = *h;
    if (*h) (*h)->prev = s;
    else if (list == MH_LIST_PARTIAL) b->partial_tail = s;
    *h = s;
    s->list = (uint8_t)list;
    if (list == MH_LIST_EMPTY) b->nempty++;
    if (list == MH_LIST_PARTIAL) b->npartial++;
}

// Files a detached span on the list its occupancy calls for. Returns the span when it
// should go back to the arena; the caller frees it after dropping the class lock.
static mh_span_t *refile(class_bin_t *b, mh_span_t *s) {
    MH_ASSERT(mh_load_relaxed(&s->owner) == NULL && &bins[s->kind] == b);
    unsigned used = mh_span_in_use(s);
    unsigned want = used == 0 ? MH_LIST_EMPTY : used < s->objs ? MH_LIST_PARTIAL : MH_LIST_NONE;
    if (want == s->list) return NULL;
    list_remove(b, s);
    if (want == MH_LIST_EMPTY && (b->nempty >= b->empty_max || s->naliases)) {
        // The class gives spans back: it is not growing, so its next chunk is smaller
        // (chunks are carved from dirty runs first, whose pages are resident: a class
        // that churns would otherwise hold up to a whole chunk it does not use).
        b->chunk /= 2;
        mh_alias_detach_all(s); // under the lock: racing alias releases back off
        // Leaving the class: a racing re-file of the same span (another freer that also
        // saw it empty) must not hand it out for release a second time.
        mh_plain_store_release(&s->kind, MH_KIND_BUSY); // pairs: lock-free readers of kind
        return s;
    }
    if (want != MH_LIST_NONE) list_push(b, s, want);
    return NULL;
}

// A new chunk of spans for class cls: the first is returned, the rest wait on the fresh
// list (last first, so they are taken in address order). Class lock held.
static mh_span_t *new_span(class_bin_t *b, unsigned cls) {
    mh_span_t *got[CHUNK_MAX_SPANS];
    unsigned n = mh_arena_alloc_spans(mh_classes[cls].pages, b->chunk ? b->chunk : 1, got);
    for (unsigned i = 0; i < n; i++) {
        mh_span_init_small(got[i], cls);
        mh_arena_set_class(got[i], cls);
    }
    for (unsigned i = n; i-- > 1;) list_push(b, got[i], MH_LIST_FRESH);
    size_t span_bytes = (size_t)mh_classes[cls].pages << MH_PAGE_SHIFT;
    unsigned most = (unsigned)(CHUNK_MAX_BYTES / span_bytes);
    if (most > CHUNK_MAX_SPANS) most = CHUNK_MAX_SPANS;
    if (b->chunk < most) b->chunk = b->chunk ? b->chunk * 2 < most ? b->chunk * 2 : most : 2;
    return n ? got[0] : NULL;
}

// The fullest of the first few partial spans. New objects go where most objects are
// already: sparse spans then only lose objects, until they empty (or mesh), instead of
// being topped up forever at the occupancy where no partner fits. (The slots within a
// span are still handed out in random order: the shuffle vector.)
#define TAKE_SCAN 8
static mh_span_t *fullest_partial(class_bin_t *b) {
    mh_span_t *best = b->partial;
    unsigned most = best ? mh_span_in_use(best) : 0, k = 1;
    for (mh_span_t *s = best ? best->next : NULL; s && k < TAKE_SCAN; s = s->next, k++) {
        unsigned used = mh_span_in_use(s);
        if (used > most) best = s, most = used;
    }
    return best;
}

// A span with free slots, off every list; NULL when out of memory. Class lock held.
static mh_span_t *take_span(class_bin_t *b, unsigned cls) {
    mh_span_t *s = b->partial ? fullest_partial(b) : b->empty ? b->empty : b->fresh;
    if (s) {
        list_remove(b, s);
        return s;
    }
    return new_span(b, cls);
}

// ---- thread refill and release -------------------------------------------------------

// Where a partial harvest starts: a random slot (no random draw for a whole one).
static unsigned harvest_start(const mh_span_t *s, unsigned room, mh_rng_t *rng) {
    return room >= s->objs ? 0 : mh_rng_below(rng, s->objs);
}

bool mh_gh_refill(mh_sv_t *sv, unsigned cls, struct mh_tlh_s *owner, mh_rng_t *rng) {
    uint8_t idx[MH_MAX_OBJS];
    unsigned room = sv->cap - sv->n; // below a span's slots only in a heap's first fill
    mh_span_t *cur = sv->span;
    if (cur) {
        unsigned n = mh_span_harvest(cur, idx, room, harvest_start(cur, room, rng));
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
        unsigned n = mh_span_harvest(s, idx, room, harvest_start(s, room, rng));
        if (n) {
            mh_sv_fill(sv, s, idx, n, rng);
            break;
        }
        mh_store_seqcst(&s->owner, NULL); // filled up meanwhile (cannot happen today)
        (void)refile(b, s);
    }
    mh_unlock(&b->lock);
    if (release) mh_gh_release_span(release);
    return sv->n != 0;
}

// ---- bitmap clears: free sections ------------------------------------------------------
// Clearing bits races with meshing, which moves live bits between spans. A thread
// clearing bits of class c does so inside a free section (freeing counter of the
// class); a mesh pass sets `meshing` and waits for the sections to drain while holding
// the class lock, so freers arriving meanwhile wait on that lock. Sections contain
// only atomic bit clears, never a lock, so the pass cannot deadlock on them.

static void section_enter(class_bin_t *b) {
    for (;;) {
        mh_fetch_add_seqcst(&b->freeing, 1); // pairs with the store in exclusive_begin
        if (!mh_load_seqcst(&b->meshing)) return;
        mh_fetch_sub_seqcst(&b->freeing, 1);
        mh_lock(&b->lock); // the pass holds it
        mh_unlock(&b->lock);
    }
}

static void section_exit(class_bin_t *b) { mh_fetch_sub_release(&b->freeing, 1); }

void mh_gh_exclusive_begin(unsigned cls) {
    class_bin_t *b = &bins[cls];
    mh_store_seqcst(&b->meshing, 1);
    while (mh_load_seqcst(&b->freeing)) __builtin_ia32_pause();
}

void mh_gh_exclusive_end(unsigned cls) { mh_store_seqcst(&bins[cls].meshing, 0); }

// What to do after a section: re-file an owner, reclaim an emptied alias.
typedef struct after_s {
    mh_span_t *owner, *alias;
    uint32_t owner_gen, alias_gen;
} after_t;

static mh_span_t *owner_of(mh_span_t *s) { return s->kind == MH_KIND_ALIAS ? s->leader : s; }

// The slots of one virtual span (a span or an alias) that a flush frees.
typedef struct group_s {
    mh_span_t *vs;
    uint64_t mask[MH_BITMAP_WORDS];
} group_t;

// Adds object p of virtual span g->vs to the group; a slot already in it is a double free.
static void group_add(group_t *g, void *p, const char *who) {
    int slot = mh_span_slot(g->vs, (uintptr_t)p);
    if (slot < 0) mh_gh_corrupt(who, "invalid pointer", p);
    uint64_t bit = (uint64_t)1 << (slot & 63);
    if (g->mask[slot >> 6] & bit) mh_gh_corrupt(who, "double free of", p);
    g->mask[slot >> 6] |= bit;
}

// Clears a group's slots in its owner's bitmap with one atomic per word, and in the
// alias's own bitmap. Section held.
static void clear_group(const group_t *g, const char *who, after_t *after) {
    mh_span_t *vs = g->vs, *owner = owner_of(vs);
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) {
        if (!g->mask[w]) continue;
        uint64_t old = mh_fetch_and_seqcst(&owner->bits[w], ~g->mask[w]);
        if ((old & g->mask[w]) != g->mask[w]) { // some slot was already free: name it
            uint64_t bad = g->mask[w] & ~old;
            uintptr_t p = vs->start + (w * 64 + (unsigned)__builtin_ctzll(bad)) * (uintptr_t)vs->obj_size;
            mh_gh_corrupt(who, "double free of", (void *)p);
        }
        if (vs != owner) mh_fetch_and_seqcst(&vs->bits[w], ~g->mask[w]);
    }
    *after = (after_t){owner, NULL, owner->gen, 0};
    if (vs != owner && mh_span_is_empty(vs)) {
        after->alias = vs;
        after->alias_gen = vs->gen;
    }
}

// An alias whose own live set became empty gets its own pages back early.
static void alias_emptied(unsigned cls, mh_span_t *alias, uint32_t gen) {
    mh_lock(&bins[cls].lock);
    bool release = mh_alias_unlink_empty(alias, gen);
    mh_unlock(&bins[cls].lock);
    if (release) mh_alias_release(alias);
}

static void after_section(unsigned cls, const after_t *a) {
    if (a->alias) alias_emptied(cls, a->alias, a->alias_gen);
    after_clear(a->owner, cls, a->owner_gen);
}

// A flush groups its objects by virtual span in a small table (a thread's frees come
// from a few spans at a time: the ones its own allocations, or the producer's it
// consumes, came from); a full table is cleared and started afresh.
#define FLUSH_GROUPS 16

// Clears the table's groups, collecting what to do after the section. Section held.
static uint32_t clear_groups(group_t *g, unsigned n, const char *who, after_t *after) {
    for (unsigned i = 0; i < n; i++) clear_group(&g[i], who, &after[i]);
    return n;
}

// The group of virtual span vs in the table (the last one used first), a new one when
// it has none; NULL when the table is full.
static group_t *group_for(group_t *g, unsigned *n, unsigned *last, mh_span_t *vs) {
    if (*n && g[*last].vs == vs) return &g[*last];
    for (unsigned i = 0; i < *n; i++)
        if (g[i].vs == vs) return &g[*last = i];
    if (*n == FLUSH_GROUPS) return NULL;
    g[*n] = (group_t){vs, {0}};
    *last = *n;
    return &g[(*n)++];
}

void mh_gh_flush(mh_sv_t *sv, uint32_t count, const char *who) {
    if (count > sv->n) count = sv->n;
    void *batch[MH_MAX_OBJS];
    after_t after[MH_MAX_OBJS];
    group_t groups[FLUSH_GROUPS];
    while (count > 0) {
        uint32_t n = count < MH_MAX_OBJS ? count : MH_MAX_OBJS, nafter = 0;
        // Out of the cache before their bits are cleared: a fork while this thread waits
        // on a lock below must not find cleared slots still listed as cached here.
        for (uint32_t i = 0; i < n; i++) batch[i] = sv->p[i];
        for (uint32_t i = n; i < sv->n; i++) sv->p[i - n] = sv->p[i];
        sv->n -= n;
        count -= n;
        unsigned cls = mh_dir_entry_class(mh_dir_entry(batch[0])); // a vector holds one class
        class_bin_t *b = &bins[cls];
        unsigned ng = 0, last = 0;
        section_enter(b);
        for (uint32_t i = 0; i < n; i++) {
            mh_span_t *vs = mh_dir_lookup(batch[i]);
            group_t *g = group_for(groups, &ng, &last, vs);
            if (!g) {
                nafter += clear_groups(groups, ng, who, after + nafter);
                ng = 0;
                g = group_for(groups, &ng, &last, vs);
            }
            group_add(g, batch[i], who);
        }
        nafter += clear_groups(groups, ng, who, after + nafter);
        section_exit(b);
        for (uint32_t k = 0; k < nafter; k++) after_section(cls, &after[k]);
    }
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
    if (release) mh_gh_release_span(release);
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
    if (release) mh_gh_release_span(release);
}

unsigned mh_gh_free_remote(void *p, const char *who) {
    unsigned cls = mh_dir_entry_class(mh_dir_entry(p));
    class_bin_t *b = &bins[cls];
    after_t after;
    section_enter(b);
    mh_span_t *vs = mh_dir_lookup(p);
    if (!vs || (!mh_span_is_small(vs) && vs->kind != MH_KIND_ALIAS)) {
        section_exit(b);
        mh_gh_corrupt(who, "invalid pointer", p);
    }
    group_t g = {vs, {0}};
    group_add(&g, p, who);
    clear_group(&g, who, &after);
    section_exit(b);
    after_section(cls, &after);
    return cls;
}

// Fork child only (single-threaded): a thread that vanished in the fork may have been
// half-way through a flush, so some cached slots can already be clear; they are
// skipped, not fatal.
static void free_tolerant(void *p) {
    mh_span_t *vs = mh_dir_lookup(p);
    if (!vs || (!mh_span_is_small(vs) && vs->kind != MH_KIND_ALIAS)) return;
    mh_span_t *owner = owner_of(vs);
    int slot = mh_span_slot(vs, (uintptr_t)p);
    if (slot < 0 || !mh_span_clear(owner, (unsigned)slot)) return;
    if (vs != owner) (void)mh_span_clear(vs, (unsigned)slot);
    after_clear(owner, owner->kind, owner->gen);
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

// ---- for the mesher (same layer) ----------------------------------------------------

void mh_gh_class_lock(unsigned cls) { mh_lock(&bins[cls].lock); }
void mh_gh_class_unlock(unsigned cls) { mh_unlock(&bins[cls].lock); }
mh_span_t *mh_gh_partial_head(unsigned cls) { return bins[cls].partial; }
unsigned mh_gh_partial_count(unsigned cls) { return mh_plain_load_relaxed(&bins[cls].npartial); }
bool mh_gh_class_contended(unsigned cls) { return mh_lock_contended(&bins[cls].lock); }
void mh_gh_unlist(unsigned cls, mh_span_t *s) { list_remove(&bins[cls], s); }

void mh_gh_partial_rotate(unsigned cls, mh_span_t *last) {
    class_bin_t *b = &bins[cls];
    mh_span_t *first = b->partial, *rest = last->next;
    if (last->list != MH_LIST_PARTIAL || !rest) return; // the whole list: nothing moves
    rest->prev = NULL;
    b->partial = rest;
    b->partial_tail->next = first;
    first->prev = b->partial_tail;
    last->next = NULL;
    b->partial_tail = last;
}

mh_span_t *mh_gh_refile(unsigned cls, mh_span_t *s) { return refile(&bins[cls], s); }

// A span leaving the class for good: its aliases (detached from the leader under the
// class lock by refile) are reset first - they hold no live object once the span is
// empty - then its pages go back to the arena.
void mh_gh_release_span(mh_span_t *s) {
    if (s->naliases) mh_alias_release_all(s);
    mh_arena_free(s, true);
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
    if (!mh_plain_cas_acq_rel(&s->kind, &expected, MH_KIND_BUSY))
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
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        mh_lock_reset(&bins[c].lock);
        mh_store_relaxed(&bins[c].freeing, 0); // sections of threads that did not come along
        mh_store_relaxed(&bins[c].meshing, 0);
    }
}

void mh_gh_init(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        size_t span_bytes = (size_t)mh_classes[c].pages << MH_PAGE_SHIFT;
        size_t keep = EMPTY_KEEP_BYTES / span_bytes;
        bins[c].empty_max = (uint32_t)(keep ? keep : 1);
    }
}
