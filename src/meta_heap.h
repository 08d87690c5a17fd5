// meta_heap.h - the allocator's own metadata memory (span descriptors, thread heaps).
//
// Layer 2 (primitives).
//
// Never uses the user heap or libc malloc. Memory is carved from 1 MiB chunks of one
// shared anonymous reservation (mh_meta_map), recycled through per-pool free lists and
// never unmapped: the pools are type-stable, so a racing reader holding a stale
// descriptor pointer reads a valid (possibly reused) descriptor, never unmapped memory.
// Each pool has a lock.
#ifndef MH_META_HEAP_H
#define MH_META_HEAP_H

#include "common.h"
#include "lock.h"

typedef struct mh_meta_free_s {
    struct mh_meta_free_s *next;
} mh_meta_free_t;

typedef struct mh_meta_pool_s {
    mh_lock_t lock;
    size_t obj_size;        // multiple of 64 (cache-line aligned objects)
    mh_meta_free_t *free;   // guarded by lock
    char *bump, *bump_end;  // guarded by lock
    size_t live, chunks;    // guarded by lock; for stats
} mh_meta_pool_t;

#define MH_META_POOL_INIT(sz) {MH_LOCK_INIT, (((sz) + 63) & ~(size_t)63), 0, 0, 0, 0, 0}

// Returns zeroed memory of the pool's object size, or NULL if the OS refuses.
void *mh_meta_alloc(mh_meta_pool_t *pool);
// Same, but only the first zero_bytes are guaranteed zero: large objects whose tail
// is scratch space (thread vectors) then touch no page they do not use.
void *mh_meta_alloc_head(mh_meta_pool_t *pool, size_t zero_bytes);
void mh_meta_free(mh_meta_pool_t *pool, void *p);
// Fork child: resets the pool's lock and the reservation's.
void mh_meta_fork_child(mh_meta_pool_t *pool);
// Zeroed, page-aligned metadata memory of at least len bytes that is never unmapped
// (pool chunks, directory leaves). 0, or the errno of the failed mapping.
int mh_meta_map(size_t len, void **out);

#endif
