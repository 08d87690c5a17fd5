// thread_heap.c - thread heap lifecycle (see thread_heap.h).
//
// Layer 7 (runtime): global_heap, meta_heap, lock, mesh_sched.
#define _GNU_SOURCE
#include "thread_heap.h"

#include <pthread.h>

#include "check.h"
#include "global_heap.h"
#include "lock.h"
#include "mesh_sched.h"
#include "meta_heap.h"

// The static heap every thread starts with: all vectors empty, never written.
static mh_tlh_t tlh_empty;
__thread mh_tlh_t *mh_tlh MH_TLS_IE = &tlh_empty;
static __thread int tlh_dead MH_TLS_IE; // set after teardown: do not resurrect

static mh_meta_pool_t tlh_pool = MH_META_POOL_INIT(sizeof(mh_tlh_t)); // resized at init
static mh_lock_t list_lock = MH_LOCK_INIT;
static mh_tlh_t *tlh_list; // guarded by list_lock
static pthread_key_t tlh_key;
static int tlh_key_ok;

static uint32_t room[MH_NUM_CLASSES];     // mh_sv_capacity per class, from mh_tlh_init
static uint32_t full_off[MH_NUM_CLASSES]; // where each class's room starts in slots[]

// A heap's storage: first a start area of START_CAP slots per class, side by side, then
// the full room of each class whose room is larger. A vector begins in the start area,
// so a short program's few objects per class touch a page or two of vectors instead of
// one per class; once the thread allocates from the class, it moves to its full room
// (empty, or copied) at its second refill or when it first fills up. A class whose
// room fits its start slots keeps them as its full room and never moves.
#define START_CAP 32u

void mh_tlh_init(void) {
    size_t slots = MH_NUM_CLASSES * START_CAP;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        room[c] = mh_sv_capacity(c);
        if (room[c] <= START_CAP) {
            full_off[c] = c * START_CAP;
        } else {
            full_off[c] = (uint32_t)slots;
            slots += room[c];
        }
    }
    tlh_pool.obj_size = mh_align_up(sizeof(mh_tlh_t) + slots * sizeof(void *), 64);
    tlh_key_ok = pthread_key_create(&tlh_key, mh_tlh_thread_exit) == 0;
}

bool mh_tlh_is_empty(const mh_tlh_t *t) { return t == &tlh_empty; }

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

static bool in_full_room(const mh_tlh_t *t, const mh_sv_t *sv, unsigned cls) {
    return sv->p == t->slots + full_off[cls];
}

static void move_to_full(mh_tlh_t *t, unsigned cls) {
    mh_sv_t *sv = &t->sv[cls];
    void **p = t->slots + full_off[cls];
    for (uint32_t i = 0; i < sv->n; i++) p[i] = sv->p[i];
    sv->p = p;
    sv->cap = room[cls];
}

// The first fill stays in the start area (a partial harvest); from the second on, the
// vector has its whole room. Called with the vector empty.
void mh_tlh_allocates(mh_tlh_t *t, unsigned cls) {
    mh_sv_t *sv = &t->sv[cls];
    if (sv->span && !in_full_room(t, sv, cls)) move_to_full(t, cls);
}

// A thread that only frees objects of a class (a consumer) would otherwise hold up to
// MH_SV_BYTES of them, slots its producer cannot reuse until the vector fills: its
// vector stays in the start area and flushes every START_CAP / 2 frees.
bool mh_tlh_grow(mh_tlh_t *t, unsigned cls) {
    mh_sv_t *sv = &t->sv[cls];
    if (!sv->span || in_full_room(t, sv, cls)) return false; // free-only, or grown
    move_to_full(t, cls); // a room larger than START_CAP: there is space now
    return true;
}

mh_tlh_t *mh_tlh_create(void) {
    MH_ASSERT(mh_tlh == &tlh_empty);
    if (tlh_dead || !tlh_key_ok) return NULL;
    mh_tlh_t *t = mh_meta_alloc_head(&tlh_pool, sizeof(mh_tlh_t)); // slots[] need no zeroing
    if (!t) return NULL;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        t->sv[c].p = t->slots + c * START_CAP;
        t->sv[c].cap = room[c] < START_CAP ? room[c] : START_CAP;
    }
    mh_rng_seed(&t->rng);
    list_link(t);
    mh_tlh = t; // before setspecific: if it allocates, it finds this heap
    pthread_setspecific(tlh_key, t);
    return t;
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

void mh_tlh_thread_exit(void *heap) {
    tlh_destroy(heap, false);
    mh_mesh_maybe(MH_NUM_CLASSES); // its cached objects went back to their spans
}

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
