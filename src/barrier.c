// barrier.c - the write barrier's state (see barrier.h).
//
// Layer 3 (memory): os (mprotect), lock (futex), arena (is an address in the heap).
// A faulting thread reads the epoch (acquire) and then the ranges; the raiser writes
// the ranges and then makes the epoch odd (release), so a reader that sees an odd
// epoch sees its ranges. The epoch is the futex word waiters sleep on.
#define _GNU_SOURCE
#include "barrier.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "atomic.h"
#include "check.h"
#include "lock.h"
#include "os.h"

static _Atomic uint32_t epoch; // odd while ranges are protected
static _Atomic pid_t raiser;   // the thread that raised the barrier (0: none)
static _Atomic unsigned prot_n;
static uintptr_t prot_start[MH_BARRIER_MAX];
static size_t prot_len[MH_BARRIER_MAX];

uint32_t mh_barrier_epoch(void) { return mh_load_acquire(&epoch); } // pairs: raise/lower

bool mh_barrier_protects(uintptr_t addr) {
    unsigned n = mh_load_acquire(&prot_n); // pairs with the release in publish()
    for (unsigned i = 0; i < n && i < MH_BARRIER_MAX; i++)
        if (addr - prot_start[i] < prot_len[i]) return true;
    return false;
}

bool mh_barrier_mine(void) {
    return (mh_load_acquire(&epoch) & 1) && mh_load_relaxed(&raiser) == (pid_t)syscall(SYS_gettid);
}

void mh_barrier_wait(uint32_t e) {
    while ((e & 1) && mh_load_acquire(&epoch) == e) mh_futex_wait(&epoch, e, NULL);
}

static void publish(unsigned n) {
    mh_store_release(&prot_n, n);
    mh_fetch_add_seqcst(&epoch, 1); // odd: pairs with the acquire loads of readers
}

// ---- ranges left read-only ------------------------------------------------------------
// When mprotect refuses to make a range writable again (ENOMEM at the VMA limit, a
// seccomp filter), the range is remembered here and made writable by the first thread
// that writes into it (the fault handler asks mh_barrier_unstick): never a write that
// faults into the program's own handler because of us.

#define STUCK_MAX 64
static mh_lock_t stuck_lock = MH_LOCK_INIT;
static struct { uintptr_t lo; size_t len; } stuck[STUCK_MAX];
static _Atomic unsigned stuck_n; // entries in use (some may be cleared: len 0)

static void unprotect(uintptr_t lo, size_t len) {
    for (int tries = 0; tries < 3; tries++)
        if (mh_os_protect((void *)lo, len, false) == 0) return;
    mh_lock(&stuck_lock);
    unsigned n = mh_load_relaxed(&stuck_n), i = 0;
    while (i < n && stuck[i].len) i++;
    if (i < STUCK_MAX) {
        stuck[i].lo = lo;
        stuck[i].len = len;
        if (i == n) mh_store_release(&stuck_n, n + 1);
    }
    mh_unlock(&stuck_lock);
}

int mh_barrier_unstick(uintptr_t addr) {
    if (!mh_load_acquire(&stuck_n)) return 0; // pairs with the release in unprotect
    int result = 0;
    mh_lock(&stuck_lock);
    for (unsigned i = 0; i < mh_load_relaxed(&stuck_n); i++) {
        if (!stuck[i].len || addr - stuck[i].lo >= stuck[i].len) continue;
        result = -1;
        if (mh_os_protect((void *)stuck[i].lo, stuck[i].len, false) == 0) {
            stuck[i].len = 0;
            result = 1;
        }
        break;
    }
    mh_unlock(&stuck_lock);
    return result;
}

// Whether [lo, lo + len) was left read-only; forget: it is writable again (the caller
// mapped it afresh: a remap replaces the protection mprotect would not lift).
static bool stuck_entry(uintptr_t lo, size_t len, bool forget) {
    if (!mh_load_acquire(&stuck_n)) return false; // pairs with the release in unprotect
    bool found = false;
    mh_lock(&stuck_lock);
    for (unsigned i = 0; i < mh_load_relaxed(&stuck_n); i++)
        if (stuck[i].len && stuck[i].lo == lo && stuck[i].len == len) {
            if (forget) stuck[i].len = 0;
            found = true;
        }
    mh_unlock(&stuck_lock);
    return found;
}

bool mh_barrier_is_stuck(uintptr_t lo, size_t len) { return stuck_entry(lo, len, false); }
void mh_barrier_forget_stuck(uintptr_t lo, size_t len) { (void)stuck_entry(lo, len, true); }

void mh_barrier_lower(bool unprotect_all) {
    if (!(mh_load_relaxed(&epoch) & 1)) return; // already lowered (see mh_barrier_mine)
    mh_store_relaxed(&raiser, 0);
    unsigned n = mh_load_relaxed(&prot_n);
    for (unsigned i = 0; unprotect_all && i < n; i++) unprotect(prot_start[i], prot_len[i]);
    mh_store_release(&prot_n, 0);
    mh_fetch_add_seqcst(&epoch, 1);
    mh_futex_wake(&epoch, 0x7fffffff);
}

bool mh_barrier_raise(unsigned n, const uintptr_t *start, const size_t *len) {
    MH_ASSERT(!(mh_load_relaxed(&epoch) & 1)); // one raiser at a time (the pass lock)
    if (n > MH_BARRIER_MAX) return false;
    for (unsigned i = 0; i < n; i++)
        if (mh_barrier_altstack_in(start[i], start[i] + len[i])) return false;
    for (unsigned i = 0; i < n; i++) {
        prot_start[i] = start[i];
        prot_len[i] = len[i];
    }
    mh_store_relaxed(&raiser, (pid_t)syscall(SYS_gettid));
    publish(n);
    for (unsigned i = 0; i < n; i++) {
        if (mh_os_protect((void *)prot_start[i], prot_len[i], true) == 0) continue;
        while (i--) unprotect(prot_start[i], prot_len[i]);
        mh_barrier_lower(false);
        return false;
    }
    return true;
}

// ---- alternate signal stacks in the heap ---------------------------------------------
// The fault handler runs on the thread's alternate stack (SA_ONSTACK, so a program's
// stack-overflow handler still works). Stacks the program installs with sigaltstack
// (wrap_posix.c) are recorded here when they lie in the heap.

#define ALTSTACKS 256
static mh_lock_t alt_lock = MH_LOCK_INIT;
static struct { pid_t tid; uintptr_t lo, hi; } alt[ALTSTACKS];
static _Atomic unsigned alt_n;

void mh_barrier_note_altstack(uintptr_t lo, size_t size, bool enable) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    mh_lock(&alt_lock);
    unsigned n = mh_load_relaxed(&alt_n), i = 0;
    while (i < n && alt[i].tid != tid) i++;
    if (!enable) {
        if (i < n) alt[i] = alt[--n]; // this thread's stack is no longer one
    } else if (mh_arena_contains((void *)lo) || mh_arena_contains((void *)(lo + size - 1))) {
        if (i == n && n < ALTSTACKS) n++;
        if (i < n) alt[i].tid = tid, alt[i].lo = lo, alt[i].hi = lo + size;
    } else if (i < n) {
        alt[i] = alt[--n]; // moved out of the heap
    }
    mh_store_release(&alt_n, n);
    mh_unlock(&alt_lock);
}

bool mh_barrier_altstack_in(uintptr_t lo, uintptr_t hi) {
    if (!mh_load_acquire(&alt_n)) return false; // pairs with the release in note_altstack
    bool hit = false;
    mh_lock(&alt_lock);
    for (unsigned i = 0; i < mh_load_relaxed(&alt_n) && !hit; i++) hit = alt[i].lo < hi && lo < alt[i].hi;
    mh_unlock(&alt_lock);
    return hit;
}

void mh_barrier_fork_child(void) {
    mh_store_relaxed(&prot_n, 0);
    mh_store_relaxed(&raiser, 0);
    mh_lock_reset(&stuck_lock);
    if (mh_load_relaxed(&epoch) & 1) mh_fetch_add_seqcst(&epoch, 1);
    mh_lock_reset(&alt_lock);
    mh_store_relaxed(&alt_n, 0); // only the forking thread came along, with a new tid:
    stack_t cur;                 // its alternate stack (inherited) is recorded afresh
    if (syscall(SYS_sigaltstack, NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        mh_barrier_note_altstack((uintptr_t)cur.ss_sp, cur.ss_size, true);
}
