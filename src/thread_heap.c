// thread_heap.c - thread heap lifecycle and the slow paths of malloc/free
// (see thread_heap.h).
#define _GNU_SOURCE
#include "thread_heap.h"

#include <pthread.h>

#include "check.h"
#include "global_heap.h"
#include "init.h"
#include "lock.h"
#include "mesh.h"
#include "meta_heap.h"
#include "settings.h"

// The static heap every thread starts with: all vectors empty, never written.
static mh_tlh_t tlh_empty;
__thread mh_tlh_t *mh_tlh MH_TLS_IE = &tlh_empty;
static __thread int tlh_dead MH_TLS_IE; // set after teardown: do not resurrect

static mh_meta_pool_t tlh_pool = MH_META_POOL_INIT(sizeof(mh_tlh_t)); // resized at init
static mh_lock_t list_lock = MH_LOCK_INIT;
static mh_tlh_t *tlh_list; // guarded by list_lock
static pthread_key_t tlh_key;
static int tlh_key_ok;

void mh_tlh_init_key(void);
void mh_tlh_init_key(void) {
    size_t slots = 0;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) slots += mh_sv_capacity(c);
    tlh_pool.obj_size = mh_align_up(sizeof(mh_tlh_t) + slots * sizeof(void *), 64);
    tlh_key_ok = pthread_key_create(&tlh_key, mh_tlh_thread_exit) == 0;
}

static void list_link(mh_tlh_t *t) {
    mh_lock(&list_lock);
    t->prev = NULL;
    t->next = tlh_list;
    if (tlh_list) tlh_list->prev = t;
    tlh_list = t;
    mh_unlock(&list_lock);
}

static void list_unlink_locked(mh_tlh_t *t) {
    if (t->prev) t->prev->next = t->next;
    else tlh_list = t->next;
    if (t->next) t->next->prev = t->prev;
}

// The calling thread's heap, created on first use; NULL while bootstrapping, after
// the thread's teardown, or when metadata memory is exhausted.
static mh_tlh_t *tlh_create(void) {
    if (mh_init_ensure() != MH_INIT_READY || tlh_dead || !tlh_key_ok) return NULL;
    mh_tlh_t *t = mh_meta_alloc_head(&tlh_pool, sizeof(mh_tlh_t)); // slots[] need no zeroing
    if (!t) return NULL;
    void **storage = t->slots;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        t->sv[c].p = storage;
        t->sv[c].cap = mh_sv_capacity(c);
        storage += t->sv[c].cap;
    }
    mh_rng_seed(&t->rng);
    list_link(t);
    mh_tlh = t; // before setspecific: if it allocates, it finds this heap
    pthread_setspecific(tlh_key, t);
    return t;
}

void *mh_tlh_malloc_slow(size_t size) {
    MH_CHECK_RAW_FORK();
    if (MH_UNLIKELY(mh_load_relaxed(&mh_settings_pending))) mh_settings_service();
    if (size > MH_SMALL_MAX) {
        if (size > PTRDIFF_MAX) return NULL;
        (void)mh_init_ensure();
        bool zeroed;
        return mh_gh_large_alloc(size, 1, &zeroed);
    }
    unsigned cls = mh_size_to_class(size);
    mh_tlh_t *t = mh_tlh;
    if (t == &tlh_empty) {
        t = tlh_create();
        if (!t) return mh_gh_alloc_orphan(mh_size_to_class(size));
        cls = mh_size_to_class(size); // the table may have been built just now
    }
    mh_sv_t *sv = &t->sv[cls];
    if (sv->n == 0 && !mh_gh_refill(sv, cls, t, &t->rng)) return NULL;
    return mh_sv_pop(sv);
}

static bool is_cached(const mh_sv_t *sv, const void *p) {
    for (unsigned i = 0; i < sv->n; i++)
        if (sv->p[i] == p) return true;
    return false;
}

void mh_tlh_free_slow(void *p, mh_span_t *s, const char *who) {
    if (!p) return;
    MH_CHECK_RAW_FORK();
    if (MH_UNLIKELY(mh_load_relaxed(&mh_settings_pending))) mh_settings_service();
    if (!s) {
        if (mh_arena_contains(p)) mh_gh_corrupt(who, "invalid pointer", p);
        return; // never ours (e.g. from ld.so's early allocator): ignore
    }
    if (mh_span_holds_small(s)) {
        mh_sv_t *sv = &mh_tlh->sv[s->cls];
        if (mh_span_slot(s, (uintptr_t)p) < 0) mh_gh_corrupt(who, "invalid pointer", p);
        if (sv->cap == 0) { // no heap (yet, or any more): straight to the bitmap
            mh_gh_free_remote(p, who);
            return;
        }
        if ((sv->n && sv->p[sv->n - 1] == p) || (mh_cfg_debug && is_cached(sv, p)))
            mh_gh_corrupt(who, "double free of", p);
        if (sv->n == sv->cap) mh_gh_flush(sv, sv->cap / 2, who);
        mh_sv_push(sv, p);
        if (MH_UNLIKELY(mh_load_relaxed(&mh_mesh_bg_wanted))) mh_mesh_start_wanted();
        return;
    }
    if (s->kind == MH_KIND_LARGE) {
        mh_gh_large_free(s, p, who);
        return;
    }
    mh_gh_corrupt(who, (uintptr_t)p == s->start ? "double free of" : "invalid pointer", p);
}

size_t mh_tlh_usable_size(const void *p) {
    // Small objects (and aliases) from the class directory alone, as free does: programs
    // that account memory (Redis) ask for every object they free, and the descriptor is
    // one more cache miss.
    unsigned e = mh_dir_class(p);
    if (MH_LIKELY(e != 0)) {
        const mh_class_info_t *c = &mh_classes[e & 63];
        uint32_t off = (uint32_t)((uintptr_t)p - mh_dir_span_start(p, e));
        uint32_t slot = mh_slot_of(off, c->recip);
        return slot * c->size == off && slot < c->objs ? c->size : 0;
    }
    mh_span_t *s = mh_dir_lookup(p);
    if (!s) return 0;
    if (mh_span_holds_small(s)) return mh_span_slot(s, (uintptr_t)p) >= 0 ? s->obj_size : 0;
    if (s->kind == MH_KIND_LARGE && (uintptr_t)p == s->start) return mh_span_bytes(s);
    return 0;
}

static void tlh_destroy(mh_tlh_t *t, bool tolerant) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) mh_gh_release(&t->sv[c], tolerant);
    mh_lock(&list_lock);
    list_unlink_locked(t);
    mh_unlock(&list_lock);
    if (mh_tlh == t) {
        mh_tlh = &tlh_empty;
        tlh_dead = 1;
    }
    mh_meta_free(&tlh_pool, t);
}

void mh_tlh_thread_exit(void *heap) { tlh_destroy(heap, false); }

void mh_tlh_for_each(void (*fn)(mh_tlh_t *, void *), void *arg) {
    mh_lock(&list_lock);
    for (mh_tlh_t *t = tlh_list; t; t = t->next) fn(t, arg);
    mh_unlock(&list_lock);
}

void mh_tlh_fork_prepare(void) {
    mh_lock(&list_lock);
    mh_lock(&tlh_pool.lock);
}

void mh_tlh_fork_parent(void) {
    mh_unlock(&tlh_pool.lock);
    mh_unlock(&list_lock);
}

// In the child only the forking thread exists: return the other threads' cached
// slots and attached spans, so nothing they held is lost to the child.
void mh_tlh_fork_child(void) {
    mh_lock_reset(&list_lock);
    mh_meta_fork_child(&tlh_pool);
    mh_tlh_t *t = tlh_list;
    while (t) {
        mh_tlh_t *next = t->next;
        if (t != mh_tlh) tlh_destroy(t, true);
        t = next;
    }
    if (mh_tlh != &tlh_empty) mh_rng_seed(&mh_tlh->rng);
}
