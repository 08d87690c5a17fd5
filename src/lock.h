// lock.h - a small futex mutex for allocator-internal locks, and the futex calls every
// other waiter in libmesh uses.
//
// Layer 1 (platform): atomics and the futex system call only.
// Why not pthread_mutex: it must work before libc's threading is set up, inside
// fork handlers (the child re-initialises every lock with mh_lock_reset), and must
// never allocate. Lock order (lowest rank first): thread-heap list, mesh pass lock,
// size class locks in class order, large-object lock, arena purge lock, arena lock,
// metadata lock, freephys queue lock.
#ifndef MH_LOCK_H
#define MH_LOCK_H

#include <time.h>

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
    if (MH_UNLIKELY(mh_exchange_release(&l->state, 0) == 2)) mh_unlock_wake(l);
}

// Another thread sleeps waiting for the lock (a hint for the holder: it may make way).
MH_INLINE bool mh_lock_contended(mh_lock_t *l) { return mh_load_relaxed(&l->state) == 2; }

// Only in a fork child, where the thread that held the lock no longer exists.
MH_INLINE void mh_lock_reset(mh_lock_t *l) { mh_store_relaxed(&l->state, 0); }

// Sleeps while *word == expected (process-private futex), at most *timeout when not
// NULL; returns early on a wake, a signal or a changed word. errno is preserved.
void mh_futex_wait(_Atomic uint32_t *word, uint32_t expected, const struct timespec *timeout);
// Wakes up to n threads sleeping on word.
void mh_futex_wake(_Atomic uint32_t *word, int n);

#endif
