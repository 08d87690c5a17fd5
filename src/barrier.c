// barrier.c - the mesh write barrier's signal handling (see barrier.h).
//
// State: the program's actions for SIGSEGV and SIGBUS (what it installed, or what was
// installed before libmesh took over) live in app[]; they are read by the handler
// without locks (a program changing its SIGSEGV handler while faulting is already
// racing). The handler is async-signal-safe: futex waits and sigaction only.
#define _GNU_SOURCE
#include "barrier.h"

#include <errno.h>
#include <setjmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "atomic.h"
#include "common.h"
#include "lock.h"
#include "mesh.h"

extern int __sigaction(int, const struct sigaction *, struct sigaction *);

static struct sigaction app[2]; // [0] SIGSEGV, [1] SIGBUS
static _Atomic int installed;
static __thread uintptr_t last_fault_addr MH_TLS_IE;
static __thread jmp_buf *probe_env MH_TLS_IE; // set while mh_barrier_copy copies
static __thread uint64_t last_fault_epoch MH_TLS_IE;

static void raw_sigmask(int how, const sigset_t *set, sigset_t *old) {
    syscall(SYS_rt_sigprocmask, how, set, old, _NSIG / 8);
}

static int slot_of(int sig) { return sig == SIGSEGV ? 0 : sig == SIGBUS ? 1 : -1; }

// Delivers a fault that is not ours the way the kernel would have.
static void chain(int sig, siginfo_t *info, void *ctx) {
    struct sigaction *a = &app[slot_of(sig)];
    if (a->sa_handler == SIG_IGN && info->si_code <= 0) return; // sent by kill(): ignored
    if (a->sa_handler == SIG_DFL || a->sa_handler == SIG_IGN) {
        // A fault cannot be ignored: the kernel kills with the default action. Restore
        // it; returning re-executes the instruction, which faults again and kills with
        // the original signal and a core. A signal sent by kill() is re-raised.
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        __sigaction(sig, &dfl, NULL);
        if (info->si_code <= 0) raise(sig);
        return;
    }
    // As the kernel would: block the handler's sa_mask, and the signal itself unless
    // the program asked for SA_NODEFER (our own handler runs with SA_NODEFER).
    struct sigaction run = *a;
    if (run.sa_flags & SA_RESETHAND) { // reset on delivery: the handler may longjmp out
        memset(a, 0, sizeof *a);
        a->sa_handler = SIG_DFL;
    }
    sigset_t mask = run.sa_mask, old;
    if (!(run.sa_flags & SA_NODEFER)) sigaddset(&mask, sig);
    raw_sigmask(SIG_BLOCK, &mask, &old); // not our pthread_sigmask, which never blocks SIGSEGV
    if (run.sa_flags & SA_SIGINFO) run.sa_sigaction(sig, info, ctx);
    else run.sa_handler(sig);
    raw_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_fault(int sig, siginfo_t *info, void *ctx) {
    int saved = errno;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (sig == SIGSEGV && info->si_code == SEGV_ACCERR && mh_arena_contains((void *)addr)) {
        uint64_t e = mh_mesh_epoch();
        if ((e & 1) && mh_mesh_protects(addr)) { // being meshed: wait, then retry the store
            mh_mesh_wait(e);
            last_fault_addr = 0;
            errno = saved;
            return;
        }
        // The pair may have finished between the fault and this check: retry once. The
        // same address faulting again with no mesh in between is the program's own
        // protection (a GC's barrier, say): it goes to the program's handler.
        if (addr != last_fault_addr || e != last_fault_epoch) {
            last_fault_addr = addr;
            last_fault_epoch = e;
            errno = saved;
            return;
        }
    }
    last_fault_addr = 0;
    errno = saved;
    if (probe_env && info->si_code > 0) { // a copy of program memory hit a bad pointer
        jmp_buf *env = probe_env;
        probe_env = NULL;
        longjmp(*env, 1); // our handler runs with SA_NODEFER: no mask to restore
    }
    chain(sig, info, ctx);
}

// Installing our handler and the program's own sigaction calls for SIGSEGV/SIGBUS are
// serialised: a program thread that installed its handler directly while ours went in
// (the background thread installs at its first pass) could otherwise end up in the
// kernel in place of ours, or ours in place of its.
static mh_lock_t install_lock = MH_LOCK_INIT;

void mh_barrier_install(void) {
    if (mh_load_acquire(&installed) == 1) return;
    mh_lock(&install_lock);
    if (mh_load_relaxed(&installed) != 1) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        __sigaction(SIGSEGV, &sa, &app[0]);
        __sigaction(SIGBUS, &sa, &app[1]);
        mh_store_release(&installed, 1);
    }
    mh_unlock(&install_lock);
}

bool mh_barrier_installed(void) { return mh_load_acquire(&installed) == 1; }

// The wrappers' copies of program memory the kernel would have checked: a bad pointer
// faults into our handler, which comes back here, and the caller reports EFAULT as
// the system call would have. Only once our handler is installed (the wrappers do not
// copy before the first mesh).
bool mh_barrier_copy(void *dst, const void *src, size_t n) {
    if (!mh_barrier_installed()) return false;
    jmp_buf env;
    if (setjmp(env)) return false; // probe_env was cleared by the handler
    probe_env = &env;
    memcpy(dst, src, n);
    __asm__ volatile("" ::: "memory"); // the copy happens while probe_env is set
    probe_env = NULL;
    return true;
}

// Alternate signal stacks in the heap. Our handler runs on the thread's alternate
// stack (SA_ONSTACK, so a program's stack-overflow handler still works); if that stack
// lies in pages the mesher or fork migration has made read-only, the kernel cannot
// write the signal frame and kills the process. Stacks the program installs with
// sigaltstack are recorded here, and spans that hold one are never protected.
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
    if (!mh_load_acquire(&alt_n)) return false;
    bool hit = false;
    mh_lock(&alt_lock);
    for (unsigned i = 0; i < mh_load_relaxed(&alt_n) && !hit; i++) hit = alt[i].lo < hi && lo < alt[i].hi;
    mh_unlock(&alt_lock);
    return hit;
}

void mh_barrier_fork_child(void) {
    mh_lock_reset(&install_lock);
    mh_lock_reset(&alt_lock);
    mh_store_relaxed(&alt_n, 0); // only the forking thread came along, with a new tid:
    stack_t cur;                 // its alternate stack (inherited) is recorded afresh
    if (syscall(SYS_sigaltstack, NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        mh_barrier_note_altstack((uintptr_t)cur.ss_sp, cur.ss_size, true);
}

// Our handler is still the kernel's for both signals. A program (or a library) that
// installs one with a raw rt_sigaction system call goes around our sigaction, and a
// mesh would then deliver its faults to that handler: the mesher asks before each tick
// (two system calls) and stops for good when the answer is no. A replacement made in
// the middle of a pass is not caught.
bool mh_barrier_intact(void) {
    if (mh_load_acquire(&installed) != 1) return true;
    struct { // the kernel's struct sigaction on x86-64
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } k;
    static const int sigs[2] = {SIGSEGV, SIGBUS};
    for (int i = 0; i < 2; i++)
        if (syscall(SYS_rt_sigaction, sigs[i], NULL, &k, sizeof k.mask) == 0 && k.handler != (void *)on_fault)
            return false;
    return true;
}

// Handlers of other signals must not block SIGSEGV/SIGBUS while they run (a write into
// a span being meshed would then kill the process): the kernel gets their sa_mask
// without those two, and the program reads back the mask it set.
static sigset_t asked_mask[_NSIG];
static unsigned char asked_valid[_NSIG];

static int other_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig <= 0 || sig >= _NSIG) return __sigaction(sig, act, old);
    struct sigaction copy;
    const struct sigaction *use = act;
    if (act) {
        copy = *act;
        sigdelset(&copy.sa_mask, SIGSEGV);
        sigdelset(&copy.sa_mask, SIGBUS);
        use = &copy;
    }
    int rc = __sigaction(sig, use, old);
    if (rc == 0 && old && asked_valid[sig]) old->sa_mask = asked_mask[sig];
    if (rc == 0 && act) {
        asked_mask[sig] = act->sa_mask;
        asked_valid[sig] = 1;
    }
    return rc;
}

int mh_barrier_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    int i = slot_of(sig);
    if (i < 0) return other_sigaction(sig, act, old);
    mh_lock(&install_lock);
    int rc = 0;
    if (mh_load_relaxed(&installed) != 1) {
        rc = __sigaction(sig, act, old);
    } else {
        if (old) *old = app[i];
        if (act) app[i] = *act;
    }
    mh_unlock(&install_lock);
    return rc;
}
