// meta_heap.c - type-stable metadata pools (see meta_heap.h).
//
// Layer 2 (primitives).
#include "meta_heap.h"

#include "check.h"

#include <string.h>

#include "os.h"

#define META_CHUNK ((size_t)1 << 20)

static int refill_chunk(mh_meta_pool_t *pool) {
    size_t len = pool->obj_size > META_CHUNK ? pool->obj_size : META_CHUNK;
    void *p;
    if (mh_os_map_anon(len, &p) != 0) return -1;
    mh_os_no_huge_pages(p, len);
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

void mh_meta_fork_child(mh_meta_pool_t *pool) { mh_lock_reset(&pool->lock); }
