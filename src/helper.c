// helper.c - libmesh's own threads (the background mesher, the freephys thread): how
// they start, and when they leave so that they never keep a process alive.
//
// A process ends when its last thread ends, also when every thread (main included)
// left through pthread_exit: glibc then calls exit(0) in the last one. A helper is
// a thread too, so a process whose own threads are all gone would live on for it.
// Each helper therefore asks, at most twice a second, whether only helpers are left
// (the main thread is a zombie and the other live threads are helpers) and then
// returns; the last thread to return is glibc's cue for exit(0), as without libmesh.
// Helpers start with every signal blocked but the two the write barrier needs (a fault
// in a helper must reach our handler too) and glibc's own two (setxid and cancel
// broadcasts must not wait on us): the program's signals go to its own threads. The
// mask is set with the raw system call, not the exported pthread_sigmask.
// Lock-free: a count of live helpers and a per-helper clock.
//
// Layer 1 (platform).
#define _GNU_SOURCE
#include "helper.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"

static _Atomic int helpers; // live helper threads

#define GLIBC_SIGCANCEL 32 // glibc's internal real-time signals
#define GLIBC_SIGSETXID 33

static void raw_sigmask(const sigset_t *set, sigset_t *old) {
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, set, old, _NSIG / 8);
}

bool mh_helper_start(void *(*fn)(void *)) {
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, GLIBC_SIGCANCEL);
    sigdelset(&all, GLIBC_SIGSETXID);
    raw_sigmask(&all, &old); // the new thread inherits it
    mh_fetch_add_seqcst(&helpers, 1);
    bool ok = pthread_create(&t, &attr, fn, NULL) == 0;
    if (!ok) mh_fetch_sub_seqcst(&helpers, 1);
    raw_sigmask(&old, NULL);
    pthread_attr_destroy(&attr);
    return ok;
}

void mh_helper_leaving(void) { mh_fetch_sub_seqcst(&helpers, 1); }

void mh_helper_fork_child(void) { mh_store_relaxed(&helpers, 0); } // none came along

// The state letter of the main thread from /proc/self/stat ('?' if unreadable).
static char main_thread_state(void) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return '?';
    char buf[512];
    ssize_t n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *p = buf + n;
    while (p > buf && p[-1] != ')') p--; // the name may hold spaces and parentheses
    return p > buf && p[0] == ' ' ? p[1] : '?';
}

// Threads of this process, zombie main thread included (/proc/self/task has one
// entry per thread besides . and ..); 0 if unknown.
static long thread_count(void) {
    struct stat st;
    if (syscall(SYS_newfstatat, AT_FDCWD, "/proc/self/task", &st, 0) != 0 || st.st_nlink < 3) return 0;
    return (long)st.st_nlink - 2;
}

bool mh_helper_alone(uint64_t *last_check_ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (now - *last_check_ns < 500000000u) return false;
    *last_check_ns = now;
    if (main_thread_state() != 'Z') return false; // the main thread runs: not alone
    long n = thread_count();
    return n > 0 && n - 1 <= mh_load_relaxed(&helpers);
}
