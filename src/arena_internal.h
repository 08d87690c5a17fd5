// arena_internal.h - the arena's state, shared by arena.c (regions, runs, directory)
// and arena_fork.c (copy-on-write fork and migration). Not for other modules.
//
// Layer 3 (memory).
// Locking: mh_arena_st.lock guards every field of mh_arena_st and directory writes
// (see arena.h); a few fields are also read lock-free where their comment says so.
#ifndef MH_ARENA_INTERNAL_H
#define MH_ARENA_INTERNAL_H

#include "common.h"
#include "lock.h"
#include "span.h"

#define MAX_REGIONS 256 // a span's region index is 16 bits
#define MH_DETACHED_MAX 16
#define FIRST_REGION ((size_t)256 << 20)
#define MAX_REGION ((size_t)64 << 30)
#define NBINS 180
#define BIN_WORDS ((NBINS + 63) / 64)
#define RELEASE_AT_FREE_PAGES 8192    // 32 MiB: freed runs this large are released at once
#define DIRTY_MIN_PAGES 2048          // 8 MiB of dirty pages are always tolerated
#define DUMP_STEP ((size_t)32 << 20)  // core dumps include the used part, in 32 MiB steps
#define PURGE_BATCH 32

typedef struct region_s {
    uintptr_t base;
    size_t size, used; // bytes; [base, base+used) has been handed out at least once
    size_t dump_mark;  // [base, base+dump_mark) is included in core dumps
    uint64_t file_off;
    bool shared;
} region_t;

typedef struct bins_s {
    mh_span_t *head[NBINS];
    uint64_t nonempty[BIN_WORDS];
} bins_t;

typedef struct arena_state_s {
    mh_lock_t lock;       // guards everything below and directory writes
    mh_lock_t purge_lock; // one purger at a time; held across fork
    bool fd_tried;
    int fd;
    uint64_t fd_dev, fd_ino, file_size;
    size_t next_region;
    unsigned nregions;
    region_t regions[MAX_REGIONS];
    bins_t dirty, clean;
    mh_span_t *lru_head, *lru_tail; // dirty runs, oldest first
    size_t dirty_pages, active_pages;
    void *info;  // the heap file's first page, mapped on its own (see info.h)
    // Fork (arena_fork.c). A span or run whose backing == epoch maps the current file
    // (mh_arena_st.fd) shared; any other is "stale": it still maps a file a fork froze.
    uint32_t epoch;
    bool all_current;     // no stale span or run (a migration sweep found none)
    bool sweep_found;     // the running migration sweep met a stale span it can move
    bool sweep_stale;     // ... or any stale span at all (all_current needs none)
    bool sweep_idle;      // the last sweep found only spans it cannot move yet
    bool stalled;         // the last sweep moved nothing of what it found (failures)
    unsigned sweep_region;
    uintptr_t sweep_next;
    int child_fd;         // the fork child's heap file, made in prepare
    bool child_copies;    // the child gets whole copies (our descriptor was lost)
    unsigned child_meshed; // meshed spans the child must map onto child_fd
    struct { void *addr; size_t len; } detached[MH_DETACHED_MAX]; // see arena_fork.c
    unsigned ndetached;
    bool privatized;      // the heap file was lost and the heap copied to private memory
    bool private_partial; // privatized, but some ranges could not be copied: they are
                          // still the file's (MAP_SHARED), so a fork child would share
                          // them and a release does not zero them (arena_fork.c)
    bool stale_shared;    // a fork could not map some stale spans privately: until they
                          // are migrated, forks give the child copies (arena_fork.c)
    uint32_t anon_epoch;  // spans of this epoch are stale on private anonymous memory
                          // (from before the heap took its file), not on a frozen file
    // VMA accounting (arena.c): breaks between neighbouring pages of shared regions
    // whose mappings the kernel cannot merge; exact while vmas_exact.
    size_t vma_breaks;
    bool vmas_exact;
    uint64_t map_gen;     // bumped by every mapping change of a shared region
    bool guarded_fork;    // prepare left the heap write-protected until fork_parent
    int frozen_fd;        // the file the last fork froze, until migration is done
    uint32_t frozen_epoch; // the epoch whose spans that file backs
} arena_state_t;

extern arena_state_t mh_arena_st MH_HIDDEN;


// Directory access and run management (arena.c); arena lock held.
mh_span_t *mh_arena_dir_get(uintptr_t p);
void mh_arena_run_unlink(mh_span_t *r);
// Coalesces r (directory entries cleared) with free neighbours and bins it.
void mh_arena_run_insert(mh_span_t *r, bool dirty);
// The untouched tail of g, which could not be re-mapped, as a free run still on
// `backing` (stale once the epoch moves on).
void mh_arena_retire_tail(region_t *g, uint32_t backing);
bool mh_arena_fd_still_ours(void);
// The span or run that starts at *p, advancing *p past it; or NULL for a page where
// none starts (free tails of runs, the info page), advancing *p by one page. The one
// way every walk over a region's used part steps (arena lock held).
MH_INLINE mh_span_t *mh_arena_walk(uintptr_t *p) {
    mh_span_t *s = mh_arena_dir_get(*p);
    if (s && s->start == *p && s->pages) {
        *p = mh_span_end(s);
        return s;
    }
    *p += MH_PAGE_SIZE;
    return NULL;
}
// mh_arena_remap with the arena lock held (or, in a fork child, left held).
int mh_arena_remap_locked(uintptr_t va, size_t len, uintptr_t target);
// Mapping changes of shared regions since a fork or a privatisation make the VMA count
// approximate until it is counted again (mh_arena_vmas_set).
MH_INLINE void mh_arena_vmas_unknown(void) { mh_arena_st.vmas_exact = false; mh_arena_st.map_gen++; }
// A span or run maps the current file, or lives in private anonymous memory.
MH_INLINE bool mh_arena_is_current(const mh_span_t *s) {
    return !mh_arena_st.regions[s->region].shared || s->backing == mh_arena_st.epoch;
}
// Replaces [va, va+len) of region g with zero pages of the current file (punched
// first), or private anonymous pages when there is no heap file. 0 or an errno.
// Arena lock held (the mapping change is counted).
int mh_arena_fresh_map(const region_t *g, uintptr_t va, size_t len);

#endif
