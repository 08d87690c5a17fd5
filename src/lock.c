// lock.c - contended paths of the futex mutex (see lock.h): spin briefly, then
// sleep in the kernel with state 2 so the unlocker knows to wake someone.
#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static void futex_call(_Atomic uint32_t *addr, int op, uint32_t val) {
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
    errno = saved;
}

void mh_lock_slow(mh_lock_t *l) {
    for (int spin = 0; spin < 100; spin++) {
        uint32_t expected = 0;
        if (mh_load_relaxed(&l->state) == 0 && mh_cas_acq_rel(&l->state, &expected, 1)) return;
        __builtin_ia32_pause();
    }
    // Mark contended; whoever releases a 2 must wake one sleeper.
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        futex_call(&l->state, FUTEX_WAIT, 2);
}

void mh_unlock_wake(mh_lock_t *l) { futex_call(&l->state, FUTEX_WAKE, 1); }
