// meta_heap.c - type-stable metadata pools (see meta_heap.h).
//
// Layer 2 (primitives).
#include "meta_heap.h"

#include "check.h"

#include <string.h>

#include "os.h"

#define META_CHUNK ((size_t)1 << 20)
#define META_RESERVE ((size_t)8 << 20)

// One reservation of address space serves the pools' chunks and the arena's directory
// leaves, so a process's first allocation makes one mapping (and one no-huge-page
// advice) instead of one per pool and leaf. Untouched parts cost no memory. Its lock
// is innermost: callers hold a pool lock or the arena lock, all of which fork holds,
// so no fork finds it taken (a raw clone may: mh_meta_fork_child resets it).
static mh_lock_t reserve_lock = MH_LOCK_INIT;
static char *reserve_cur, *reserve_end; // guarded by reserve_lock

static int map_fresh(size_t len, void **out) {
    int rc = mh_os_map_anon(len, out);
    if (rc == 0) mh_os_no_huge_pages(*out, len);
    return rc;
}

int mh_meta_map(size_t len, void **out) {
    len = mh_align_up(len, MH_PAGE_SIZE);
    if (len > META_RESERVE / 2) return map_fresh(len, out);
    mh_lock(&reserve_lock);
    if ((size_t)(reserve_end - reserve_cur) < len) {
        void *r;
        if (map_fresh(META_RESERVE, &r) != 0) { // a tight RLIMIT_AS: only what is asked
            mh_unlock(&reserve_lock);
            return map_fresh(len, out);
        }
        reserve_cur = r; // the old reservation's tail stays unused
        reserve_end = (char *)r + META_RESERVE;
    }
    *out = reserve_cur;
    reserve_cur += len;
    mh_unlock(&reserve_lock);
    return 0;
}

static int refill_chunk(mh_meta_pool_t *pool) {
    size_t len = pool->obj_size > META_CHUNK ? pool->obj_size : META_CHUNK;
    void *p;
    if (mh_meta_map(len, &p) != 0) return -1;
    pool->bump = p;
    pool->bump_end = (char *)p + len;
    pool->chunks++;
    return 0;
}

void *mh_meta_alloc(mh_meta_pool_t *pool) { return mh_meta_alloc_head(pool, pool->obj_size); }

void *mh_meta_alloc_head(mh_meta_pool_t *pool, size_t zero_bytes) {
    MH_ASSERT(pool->obj_size % 64 == 0 && zero_bytes <= pool->obj_size);
    mh_lock(&pool->lock);
    void *p = pool->free;
    bool fresh = p == NULL; // never handed out: still zero from mmap
    if (p) {
        pool->free = pool->free->next;
    } else {
        if ((size_t)(pool->bump_end - pool->bump) < pool->obj_size && refill_chunk(pool) != 0) {
            mh_unlock(&pool->lock);
            return NULL;
        }
        p = pool->bump;
        pool->bump += pool->obj_size;
    }
    pool->live++;
    mh_unlock(&pool->lock);
    if (!fresh) memset(p, 0, zero_bytes < pool->obj_size ? zero_bytes : pool->obj_size);
    return p;
}

void mh_meta_free(mh_meta_pool_t *pool, void *p) {
    mh_lock(&pool->lock);
    mh_meta_free_t *f = p;
    f->next = pool->free;
    pool->free = f;
    pool->live--;
    mh_unlock(&pool->lock);
}

void mh_meta_fork_child(mh_meta_pool_t *pool) {
    mh_lock_reset(&pool->lock);
    mh_lock_reset(&reserve_lock);
}
