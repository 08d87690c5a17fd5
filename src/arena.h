// arena.h - the heap's address space and physical pages.
//
// Layer 3 (memory): os, meta_heap, span.
// The arena is a set of regions, each a MAP_SHARED mapping of one memfd at its own file
// offset (virtual page i of a region starts backed by file page region.file_off + i),
// or private anonymous memory before the heap takes its file (mesh.file_from_mib) or
// when no memfd can be had. Regions are added as the heap grows (256 MiB, doubling to
// 64 GiB each), so there is no fixed heap limit. The file's first page is the info
// page, mapped on its own.
//
// A two-level page directory maps any address to the span that owns its page in O(1):
// top level per GiB of address space, a lazily mapped leaf of span pointers per GiB.
// Entries are either correct or NULL: small spans set every page, large objects their
// first page, free runs their first and last page (for coalescing). Each leaf also
// holds a 16-bit class entry per page (a small-span flag, the page's index in its span
// and the size class; see mh_dir_entry), so free() of a small object never has to touch
// the span descriptor.
//
// Free page runs are binned by length, separately dirty (may hold RAM) and clean
// (punched or never touched, reads as zero). Adjacent free runs of the same state are
// always coalesced. Dirty pages beyond a budget are released oldest first, with the
// syscalls made outside the arena lock; runs of >= 1 MiB are released when freed.
// Locking: arena lock guards regions, bins and directory writes; directory reads are
// lock-free (relaxed loads of pointer-sized entries).
#ifndef MH_ARENA_H
#define MH_ARENA_H

#include "atomic.h"
#include "common.h"
#include "span.h"

#define MH_DIR_TOP_SHIFT 30
#define MH_DIR_TOP ((size_t)1 << (47 - MH_DIR_TOP_SHIFT))
#define MH_DIR_LEAF ((size_t)1 << (MH_DIR_TOP_SHIFT - MH_PAGE_SHIFT))

#define MH_DIR_LEAF_BYTES (MH_DIR_LEAF * (sizeof(mh_span_t *) + sizeof(uint16_t)))

// A page's class entry: 0 when the page is not part of a small span (or a meshed alias
// of one), else MH_DIR_SMALL | page index in the span << MH_DIR_CLASS_BITS | class.
#define MH_DIR_CLASS_BITS 6
#define MH_DIR_PAGE_BITS 4
#define MH_DIR_SMALL 0x8000u
_Static_assert(MH_NUM_CLASSES <= 1u << MH_DIR_CLASS_BITS, "a class fits its entry field");
_Static_assert(MH_MAX_SPAN_PAGES <= 1u << MH_DIR_PAGE_BITS, "a page index fits its entry field");
_Static_assert(MH_DIR_CLASS_BITS + MH_DIR_PAGE_BITS < 15, "the fields stay below the flag");

extern mh_span_t **mh_dir_top[MH_DIR_TOP] MH_HIDDEN;

MH_INLINE unsigned mh_dir_entry_class(unsigned e) { return e & ((1u << MH_DIR_CLASS_BITS) - 1); }
MH_INLINE unsigned mh_dir_entry_page(unsigned e) {
    return (e >> MH_DIR_CLASS_BITS) & ((1u << MH_DIR_PAGE_BITS) - 1);
}
MH_INLINE uint16_t mh_dir_entry_make(unsigned cls, unsigned page) {
    return (uint16_t)(MH_DIR_SMALL | page << MH_DIR_CLASS_BITS | cls);
}

// The class entry of p's page (lock-free).
MH_INLINE unsigned mh_dir_entry(const void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    uintptr_t t = p >> MH_DIR_TOP_SHIFT;
    if (MH_UNLIKELY(t >= MH_DIR_TOP)) return 0;
    mh_span_t **leaf = mh_plain_load_acquire(&mh_dir_top[t]); // pairs: leaf publish
    if (MH_UNLIKELY(!leaf)) return 0;
    const uint16_t *cls = (const uint16_t *)(leaf + MH_DIR_LEAF);
    return mh_plain_load_relaxed(&cls[(p >> MH_PAGE_SHIFT) & (MH_DIR_LEAF - 1)]);
}

// Start of the small span holding p, given p's class entry e.
MH_INLINE uintptr_t mh_dir_span_start(const void *p, unsigned e) {
    return ((uintptr_t)p & ~(MH_PAGE_SIZE - 1)) - ((uintptr_t)mh_dir_entry_page(e) << MH_PAGE_SHIFT);
}

MH_INLINE mh_span_t *mh_dir_lookup(const void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    uintptr_t t = p >> MH_DIR_TOP_SHIFT;
    if (MH_UNLIKELY(t >= MH_DIR_TOP)) return NULL;
    mh_span_t **leaf = mh_plain_load_acquire(&mh_dir_top[t]); // pairs: leaf publish
    if (MH_UNLIKELY(!leaf)) return NULL;
    return mh_plain_load_relaxed(&leaf[(p >> MH_PAGE_SHIFT) & (MH_DIR_LEAF - 1)]);
}

typedef struct mh_arena_stats_s {
    size_t mapped;       // bytes of address space in regions
    size_t active;       // bytes in live spans and large objects
    size_t dirty;        // bytes in free runs that may hold RAM
    size_t file_bytes;   // bytes the memfd really holds (st_blocks), 0 without memfd
    unsigned regions;
    bool memfd;          // false when running on private anonymous memory
} mh_arena_stats_t;

// Allocates a span of `pages` pages whose start is aligned to align_pages pages.
// map_all: register every page in the directory (small spans) or the first only.
// *zeroed tells whether the pages are known to read as zero. NULL when out of memory.
mh_span_t *mh_arena_alloc(size_t pages, size_t align_pages, bool map_all, bool *zeroed);
// Up to count adjacent spans of `pages` pages each (small spans: every page in the
// directory), in address order, carved from one run; returns how many. They read as
// zero only when fresh; the caller initialises them.
unsigned mh_arena_alloc_spans(size_t pages, unsigned count, mh_span_t **out);
// Records the class entries of the pages of small span s (cleared again by
// mh_arena_free).
void mh_arena_set_class(mh_span_t *s, unsigned cls);
// Returns a span's pages to the arena (dirty, or released at once when large).
void mh_arena_free(mh_span_t *s, bool map_all);
// Who gives dirty pages back when a free leaves more than the budget: the freeing
// thread, unless a purger was set (the freephys thread) and accepts the work.
void mh_arena_set_purger(bool (*purger)(void));
// Resizes a large span in place; false when the neighbouring pages are not free.
bool mh_arena_resize(mh_span_t *s, size_t new_pages);
// The fork canary: a MADV_WIPEONFORK page the fork handler marks again in the child,
// so a child made without fork handlers (raw clone, _Fork) reads 0 through
// mh_fork_canary. It is made with the heap file (before the first shared mapping): a
// heap on private memory is copied by any fork, and a process whose heap never takes
// the file makes no page. Until then (or when it cannot be made) mh_fork_canary reads 1.
extern volatile const unsigned char *mh_fork_canary MH_HIDDEN;
// Marks the canary in a fork child (the fork handler, first thing).
void mh_arena_canary_mark(void);
// True in a child made without fork handlers: there is a canary and it reads 0.
bool mh_arena_canary_wiped(void);
// True once the heap holds any memory.
bool mh_arena_in_use(void);
// Moves the heap onto its file (a memfd) if it is not there yet: see arena.c. False
// when it has none and cannot have one (it then stays on private memory for good).
bool mh_arena_take_file(void);
// The info page (first page of the heap file), or NULL before the first shared region.
void *mh_arena_info_page(void);
// fn is called once the info page exists (at once if it already does; possibly twice
// when the two race); it must only set a flag: it may run under the arena lock.
void mh_arena_set_info_hook(void (*fn)(void));
// Warns once (checks.thp) when shmem THP is forced, and only once the heap is on its
// file: from the settings (a file taken at start) and from mh_arena_take_file.
void mh_arena_check_thp(void);
// True when p lies inside one of the arena's regions (even if no span owns it).
bool mh_arena_contains(const void *p);
// Releases every dirty page; returns the bytes released.
size_t mh_arena_purge_all(void);
void mh_arena_stats(mh_arena_stats_t *out);
// Bytes in live spans and large objects (a lock-free, possibly slightly old read).
size_t mh_arena_active_bytes(void);
// Calls fn for each live span (small or large); takes the arena lock.
void mh_arena_for_each_span(void (*fn)(mh_span_t *, void *), void *arg);

// ---- meshing support (callers hold the class lock of the spans involved) ----
// True when the heap file is still ours (fstat; once per pass, not per span).
bool mh_arena_file_ok(void);
// True when span s maps the current heap file (memfd-backed region, not left on a
// file frozen by a fork): only such spans can be meshed.
bool mh_arena_span_shared(const mh_span_t *s);
// Maps the virtual range [va, va+len) onto the file pages behind target (a span start
// in a shared region: its identity pages). 0 or an errno value.
int mh_arena_remap(uintptr_t va, size_t len, uintptr_t target);
// Puts a released alias back on zero pages of its own (identity) file range.
int mh_arena_reset_alias(mh_span_t *a);
// Frees the physical pages behind [start, start+len) of the current heap file.
int mh_arena_punch_range(uintptr_t start, size_t len);
// Gives dirty pages back down to half the budget when over it.
void mh_arena_purge_excess(void);
// Frees the physical pages behind the identity range of span s.
int mh_arena_punch(const mh_span_t *s);
// Points the directory entries of s's pages at value.
void mh_arena_dir_point(const mh_span_t *s, mh_span_t *value);
// Number of regions.
unsigned mh_arena_regions(void);

// ---- VMAs ----
// The VMAs of the heap's shared regions: every mapping there is made by the arena, so
// the count follows each split and merge. *exact: counted, not estimated (false after
// a fork until the next count from /proc/self/maps).
size_t mh_arena_vmas(bool *exact);
// The VMAs one remap of [va, va+len) onto target's pages would add (negative: remove).
long mh_arena_remap_cost(uintptr_t va, size_t len, uintptr_t target);
// The address ranges of every region, for counting /proc/self/maps; returns how many.
unsigned mh_arena_ranges(uintptr_t *lo, uintptr_t *hi, unsigned max);
// A generation that changes with every mapping change: a count of /proc/self/maps is
// exact only if no mapping changed while it was read.
uint64_t mh_arena_map_gen(void);
// Sets the count to `counted` (heap VMAs read from /proc/self/maps) if no mapping changed
// since generation gen; from then on it is exact again when every span maps the current
// file.
void mh_arena_vmas_set(size_t counted, uint64_t gen);

// Fork, copy-on-write (arena_fork.c): prepare maps the in-use heap MAP_PRIVATE from
// the current file and moves the untouched tail to a fresh file; parent and child
// then each carry on with their own file. Spans left private are "stale" until
// migrated back onto the current file (mh_arena_migrate_collect / mh_arena_migrate).
// meshed: some span is meshed now (the heap's one-mapping shortcut does not apply).
// barrier: the fault handler is ready, so the heap may be write-protected while it is
// copied (needed only when the heap file was lost: see mh_arena_file_lost).
void mh_arena_fork_prepare(bool meshed, bool barrier);
// The heap file's descriptor was closed or replaced behind our back (and the heap is
// still on that file).
bool mh_arena_file_lost(void);
void mh_arena_fork_parent(void);
void mh_arena_fork_child(void);
// A child of a raw clone (no prepare ran): copies the live heap into a file of its own
// for mh_arena_fork_child to map.
void mh_arena_raw_fork_copy(void);
// Unmaps up to max_bytes of the page tables a fork moved aside (after the fork, off
// its critical path). Returns the bytes unmapped.
size_t mh_arena_drop_detached(size_t max_bytes);
// True when the last sweep found only spans it cannot move yet (meshed leaders on a
// frozen file, until their aliases go): sweeps are then rare.
bool mh_arena_migration_idle(void);
// True while stale spans remain after a fork.
bool mh_arena_migration_pending(void);

// Migration back onto the current file, under the write barrier (barrier.h).
typedef struct mh_migrant_s {
    mh_span_t *span;     // a leader or a large span; NULL: an extent of plain spans
    uint32_t gen;
    uint8_t kind;
    uint32_t backing;    // every span of an extent comes from this epoch's file
    uintptr_t lo, hi;
} mh_migrant_t;
// Continues the sweep for stale spans: re-maps stale free runs on the way and returns
// up to max live ones to move; *ended: the sweep reached its end (the next call starts
// another).
unsigned mh_arena_migrate_collect(mh_migrant_t *out, unsigned max, bool *ended);
// A whole sweep moved nothing though stale spans remain: migration steps become rare
// (as when only spans that cannot move yet are left).
void mh_arena_migration_stalled(void);
// Moves one collected item (an extent of up to 2 MiB of adjacent spans, a meshed
// leader with its aliases, or the next 2 MiB of a large span) onto the current file.
// The caller holds the mesh pass lock (the barrier is one raiser's), and the class
// lock for a leader. Returns the bytes moved (0 when the span changed meanwhile, holds
// an alternate signal stack, or a call failed).
size_t mh_arena_migrate(const mh_migrant_t *m);

#endif
