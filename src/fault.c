// fault.c - the fault handler and the program's SIGSEGV/SIGBUS actions (see fault.h).
//
// Layer 4 (services): barrier, arena, log.
// State: the program's actions for SIGSEGV and SIGBUS (what it installed, or what was
// installed before libmesh took over) live in app[]; the handler reads them without
// locks (a program changing its SIGSEGV handler while faulting is already racing).
// The handler is async-signal-safe: futex waits and sigaction only. Signal masks are
// set with the raw system call: the exported pthread_sigmask never blocks SIGSEGV.
#define _GNU_SOURCE
#include "fault.h"

#include <errno.h>
#include <setjmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "atomic.h"
#include "barrier.h"
#include "lock.h"
#include "log.h"

extern int __sigaction(int, const struct sigaction *, struct sigaction *);

static struct sigaction app[2]; // [0] SIGSEGV, [1] SIGBUS
static _Atomic int installed;
static __thread uintptr_t last_fault_addr MH_TLS_IE;
static __thread jmp_buf *probe_env MH_TLS_IE; // set while mh_fault_copy copies
static __thread uint32_t last_fault_epoch MH_TLS_IE;
// Waits of 0.1 ms for a range left read-only to be mapped afresh (at most 1 s: a range
// nothing can make writable again ends as the fault it is).
#define STUCK_WAITS 10000
static __thread unsigned stuck_waits MH_TLS_IE;

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
    raw_sigmask(SIG_BLOCK, &mask, &old);
    if (run.sa_flags & SA_SIGINFO) run.sa_sigaction(sig, info, ctx);
    else run.sa_handler(sig);
    raw_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_fault(int sig, siginfo_t *info, void *ctx) {
    int saved = errno;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (sig == SIGSEGV && info->si_code == SEGV_ACCERR && mh_arena_contains((void *)addr)) {
        uint32_t e = mh_barrier_epoch();
        if ((e & 1) && mh_barrier_protects(addr)) { // being moved: wait, then retry the store
            if (mh_barrier_mine()) mh_barrier_lower(true); // cannot wait for itself
            else mh_barrier_wait(e);
            last_fault_addr = 0;
            errno = saved;
            return;
        }
        int stuck = mh_barrier_unstick(addr); // left read-only by a failed mprotect
        if (stuck >= 0) stuck_waits = 0;
        if (stuck > 0 || (stuck < 0 && stuck_waits++ < STUCK_WAITS)) {
            if (stuck < 0) { // the mesher is mapping it afresh: wait for that, then retry
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
            }
            errno = saved;
            return;
        }
        // The move may have finished between the fault and this check: retry once. The
        // same address faulting again with no barrier in between is the program's own
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

// Puts our handler in for sig; the action it replaces becomes the program's (app[]).
// Install lock held.
static bool install_ours(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return __sigaction(sig, &sa, &app[slot_of(sig)]) == 0;
}

static void install(void) {
    if (mh_load_acquire(&installed) == 1) return; // pairs with the release below
    mh_lock(&install_lock);
    if (mh_load_relaxed(&installed) != 1) {
        install_ours(SIGSEGV);
        install_ours(SIGBUS);
        mh_store_release(&installed, 1);
    }
    mh_unlock(&install_lock);
}

bool mh_fault_installed(void) { return mh_load_acquire(&installed) == 1; } // pairs: install

// What the kernel has for a signal we installed our handler for: OURS; RESET, the
// default or ignore (what exec, our own chain() after a fault that did not repeat, or
// an unknown path left there); FOREIGN, another handler - a program (or library) that
// installed one with a raw rt_sigaction system call, around our sigaction.
typedef enum { KERNEL_OURS, KERNEL_RESET, KERNEL_FOREIGN } kernel_t;

static kernel_t kernel_action(int sig) {
    struct { // the kernel's struct sigaction on x86-64
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } k;
    if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask) != 0 || k.handler == (void *)on_fault)
        return KERNEL_OURS;
    return k.handler == (void *)SIG_DFL || k.handler == (void *)SIG_IGN ? KERNEL_RESET : KERNEL_FOREIGN;
}

// Our handler is the kernel's for both signals, or is again. Asked before each tick
// and before each pair is write-protected (two system calls), so a replacement made
// in the middle of a pass is seen at the next pair; one made while a pair is
// protected (microseconds) is not caught.
static bool intact(void) {
    static const int sigs[2] = {SIGSEGV, SIGBUS};
    kernel_t k[2] = {kernel_action(SIGSEGV), kernel_action(SIGBUS)};
    if (k[0] == KERNEL_OURS && k[1] == KERNEL_OURS) return true;
    if (k[0] == KERNEL_FOREIGN || k[1] == KERNEL_FOREIGN) return false;
    bool ok = true;
    mh_lock(&install_lock);
    // Again under the lock (a program sigaction may be racing). A reset action goes
    // back to ours, the program's action taken from the kernel: for faults that are not
    // ours nothing changes (a fault cannot be ignored: default and ignore both kill),
    // and for a write into a span being meshed ours is the only action that does not.
    for (int i = 0; i < 2; i++)
        if (kernel_action(sigs[i]) == KERNEL_RESET) ok &= install_ours(sigs[i]);
    mh_unlock(&install_lock);
    return ok && kernel_action(SIGSEGV) == KERNEL_OURS && kernel_action(SIGBUS) == KERNEL_OURS;
}

static _Atomic bool lost; // the handler was replaced behind our back: for good

bool mh_fault_ready(void) {
    if (mh_load_relaxed(&lost)) return false;
    install();
    if (intact()) return true;
    if (!mh_exchange_seqcst(&lost, true))
        mh_degraded(MH_DEG_HANDLER, "meshing stopped: the SIGSEGV/SIGBUS handler was replaced without "
                    "sigaction() (a raw rt_sigaction system call); the heap is no longer compacted");
    return false;
}

// The wrappers' copies of program memory the kernel would have checked: a bad pointer
// faults into our handler, which comes back here, and the caller reports EFAULT as
// the system call would have. Only once our handler is installed (the wrappers do not
// copy before the first mesh).
bool mh_fault_copy(void *dst, const void *src, size_t n) {
    if (!mh_fault_installed()) return false;
    jmp_buf env;
    if (setjmp(env)) return false; // probe_env was cleared by the handler
    probe_env = &env;
    memcpy(dst, src, n);
    __asm__ volatile("" ::: "memory"); // the copy happens while probe_env is set
    probe_env = NULL;
    return true;
}

void mh_fault_fork_child(void) { mh_lock_reset(&install_lock); }

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

int mh_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
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
