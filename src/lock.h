// lock.h - a small futex mutex for allocator-internal locks.
//
// Why not pthread_mutex: it must work before libc's threading is set up, inside
// fork handlers (the child re-initialises every lock with mh_lock_reset), and must
// never allocate. Lock order (lowest rank first): thread-heap list, size class
// locks in class order, large-object lock, arena lock, metadata lock.
#ifndef MH_LOCK_H
#define MH_LOCK_H

#include "atomic.h"
#include "common.h"

typedef struct mh_lock_s {
    _Atomic uint32_t state; // 0 free, 1 held, 2 held with waiters
} mh_lock_t;

#define MH_LOCK_INIT {0}

void mh_lock_slow(mh_lock_t *l);
void mh_unlock_wake(mh_lock_t *l);

MH_INLINE void mh_lock(mh_lock_t *l) {
    uint32_t expected = 0;
    if (MH_LIKELY(mh_cas_acq_rel(&l->state, &expected, 1))) return; // pairs with mh_unlock
    mh_lock_slow(l);
}

MH_INLINE void mh_unlock(mh_lock_t *l) {
    // release: pairs with the acquire in mh_lock
    if (MH_UNLIKELY(atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2))
        mh_unlock_wake(l);
}

// Only in a fork child, where the thread that held the lock no longer exists.
MH_INLINE void mh_lock_reset(mh_lock_t *l) { mh_store_relaxed(&l->state, 0); }

#endif
