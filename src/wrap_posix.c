// wrap_posix.c - interposed signal calls the write barrier needs: the program's
// SIGSEGV/SIGBUS handlers are kept by the barrier (barrier.c) and reported back to it,
// and no signal mask the program sets blocks those two. The buffer-writing system
// calls are in wrap_io.c.
//
// Layer 8 (edges): fault (the program's handlers), barrier (alternate stacks).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <pthread.h>
#include <unistd.h>

#include "barrier.h"
#include "common.h"
#include "fault.h"
#include "wrap.h"

MH_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    return mh_fault_sigaction(sig, act, old);
}

// The program's alternate signal stack, when it lies in the heap, is recorded so the
// barrier never makes it read-only (barrier.c).
MH_EXPORT int sigaltstack(const stack_t *ss, stack_t *old) {
    if (ss && ss->ss_flags & ~SS_DISABLE) { // SS_AUTODISARM and friends: passed through
        stack_t copy = *ss;
        int rc = (int)syscall(SYS_sigaltstack, &copy, old);
        if (rc == 0) mh_barrier_note_altstack((uintptr_t)ss->ss_sp, ss->ss_size, true);
        return rc;
    }
    int rc = (int)syscall(SYS_sigaltstack, ss, old);
    if (rc == 0 && ss)
        mh_barrier_note_altstack((uintptr_t)ss->ss_sp, ss->ss_size, !(ss->ss_flags & SS_DISABLE));
    return rc;
}

// signal() and its relatives install through libc's internal sigaction, which would
// bypass ours: they are re-implemented on top of mh_barrier_sigaction with glibc's flags.
static sighandler_t install(int sig, sighandler_t handler, int flags, bool mask_self) {
    struct sigaction sa, old;
    if (handler == SIG_ERR || sig <= 0 || sig >= NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (mask_self) sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = flags;
    if (mh_fault_sigaction(sig, &sa, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}

// BSD semantics, as glibc's signal(): restart syscalls, keep the handler installed.
MH_EXPORT sighandler_t signal(int sig, sighandler_t handler) { return install(sig, handler, SA_RESTART, true); }

MH_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) { return install(sig, handler, SA_RESTART, true); }

// System V semantics: one-shot, not blocked while it runs.
MH_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) {
    return install(sig, handler, SA_RESETHAND | SA_NODEFER, false);
}

MH_EXPORT sighandler_t sigset(int sig, sighandler_t disp) {
    if (sig != SIGSEGV && sig != SIGBUS) {
        MH_NEXT(real_sigset, sighandler_t(*)(int, sighandler_t), "sigset");
        if (!real_sigset) return SIG_ERR;
        return real_sigset(sig, disp);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    if (disp == SIG_HOLD) { // block it, keep the handler
        struct sigaction old;
        if (mh_fault_sigaction(sig, NULL, &old) != 0) return SIG_ERR;
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        return old.sa_handler;
    }
    sighandler_t prev = install(sig, disp, 0, false);
    if (prev != SIG_ERR) pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return prev;
}

// The write barrier needs SIGSEGV to reach its handler in every thread: a synchronous
// fault on a blocked SIGSEGV kills the process. So the masks programs set never block
// SIGSEGV or SIGBUS (glibc's own internal masking does not come through here).
static const sigset_t *unblock_faults(int how, const sigset_t *set, sigset_t *copy) {
    if (!set || how == SIG_UNBLOCK) return set;
    *copy = *set;
    sigdelset(copy, SIGSEGV);
    sigdelset(copy, SIGBUS);
    return copy;
}

MH_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    MH_NEXT(real_mask, int (*)(int, const sigset_t *, sigset_t *), "pthread_sigmask");
    if (!real_mask) return ENOSYS;
    sigset_t copy;
    return real_mask(how, unblock_faults(how, set, &copy), old);
}

MH_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    int rc = pthread_sigmask(how, set, old);
    if (rc) {
        errno = rc;
        return -1;
    }
    return 0;
}

// A thread created with a signal mask gets it by a raw syscall inside glibc: strip the
// two fault signals here too.
MH_EXPORT int pthread_attr_setsigmask_np(pthread_attr_t *attr, const sigset_t *set) {
    MH_NEXT(real_set, int (*)(pthread_attr_t *, const sigset_t *), "pthread_attr_setsigmask_np");
    if (!real_set) return ENOSYS;
    sigset_t copy;
    return real_set(attr, unblock_faults(SIG_SETMASK, set, &copy));
}
