// lock.c - contended paths of the futex mutex, and the futex calls (see lock.h): spin
// briefly, then sleep in the kernel with state 2 so the unlocker knows to wake someone.
//
// Layer 1 (platform).
#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void mh_futex_wait(_Atomic uint32_t *word, uint32_t expected, const struct timespec *timeout) {
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, expected, timeout, NULL, 0);
    errno = saved;
}

void mh_futex_wake(_Atomic uint32_t *word, int n) {
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
    errno = saved;
}

void mh_lock_slow(mh_lock_t *l) {
    for (int spin = 0; spin < 100; spin++) {
        uint32_t expected = 0;
        if (mh_load_relaxed(&l->state) == 0 && mh_cas_acq_rel(&l->state, &expected, 1)) return;
        __builtin_ia32_pause();
    }
    // Mark contended; whoever releases a 2 must wake one sleeper.
    while (mh_exchange_acquire(&l->state, 2) != 0) mh_futex_wait(&l->state, 2, NULL);
}

void mh_unlock_wake(mh_lock_t *l) { mh_futex_wake(&l->state, 1); }
