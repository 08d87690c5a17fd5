// wrap_posix.c - interposed POSIX calls the write barrier needs.
//
// sigaction/signal: the program's SIGSEGV/SIGBUS handlers are kept by the barrier
// (barrier.c) and reported back to it. Buffer-writing syscalls (read, pread, readv,
// preadv, recv, recvfrom, recvmsg, recvmmsg): a kernel write into a page that is
// read-only because it is being meshed fails with EFAULT instead of faulting, so when
// an EFAULT coincides with a mesh, the call waits for the mesh and is retried. A real
// EFAULT (a bad buffer) is returned as before. Datagram sockets may drop the datagram
// whose copy failed; the retry then receives the next one (documented limitation).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <pthread.h>
#include <unistd.h>

#include "barrier.h"
#include "common.h"
#include "mesh.h"

extern ssize_t __read(int, void *, size_t);
extern ssize_t __pread64(int, void *, size_t, off_t);

// True (after waiting) when an EFAULT may have been caused by meshing.
static bool meshing_caused(uint64_t before) {
    uint64_t now = mh_mesh_epoch();
    if (now == before && !(now & 1)) return false;
    mh_mesh_wait(now);
    return true;
}

#define RETRY_ON_MESH(call)                                                                        \
    for (int tries_ = 0;; tries_++) {                                                              \
        uint64_t e_ = mh_mesh_epoch();                                                             \
        ssize_t r_ = (call);                                                                       \
        if (r_ >= 0 || errno != EFAULT || tries_ > 1000 || !meshing_caused(e_)) return r_;         \
    }

// Looks up the next definition of a libc function once.
#define REAL(type, name)                                                                           \
    static __typeof__(type) real_;                                                                 \
    if (!real_) real_ = (type)dlsym(RTLD_NEXT, name);                                              \
    if (!real_) {                                                                                  \
        errno = ENOSYS;                                                                            \
        return -1;                                                                                 \
    }

MH_EXPORT ssize_t read(int fd, void *buf, size_t n) { RETRY_ON_MESH(__read(fd, buf, n)); }

// A positional read that hits a page being meshed part-way returns a short count; on
// a file that would look like a premature end, so the rest is read once the mesh is
// over (positional reads only: for pipes and sockets a short read is ordinary).
static ssize_t pread_full(int fd, char *buf, size_t n, off_t off) {
    size_t done = 0;
    for (int tries = 0;; tries++) {
        uint64_t e = mh_mesh_epoch();
        ssize_t r = __pread64(fd, buf + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno != EFAULT || tries > 1000 || !meshing_caused(e)) return done ? (ssize_t)done : r;
            continue;
        }
        done += (size_t)r;
        if (r == 0 || done == n || tries > 1000 || !meshing_caused(e)) return (ssize_t)done;
    }
}

MH_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off) { return pread_full(fd, buf, n, off); }

MH_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off) { return pread_full(fd, buf, n, off); }

MH_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt) {
    REAL(ssize_t(*)(int, const struct iovec *, int), "readv");
    RETRY_ON_MESH(real_(fd, iov, cnt));
}

// preadv, likewise completed when a mesh cut it short (up to 64 iovecs).
static ssize_t preadv_full(ssize_t (*real)(int, const struct iovec *, int, off_t), int fd,
                           const struct iovec *iov, int cnt, off_t off) {
    struct iovec rest[64];
    if (cnt <= 0 || cnt > 64) RETRY_ON_MESH(real(fd, iov, cnt, off));
    size_t total = 0, done = 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    for (int tries = 0;; tries++) {
        int k = 0;
        size_t skip = done;
        for (int i = 0; i < cnt; i++) { // the iovecs past the bytes already read
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            rest[k].iov_base = (char *)iov[i].iov_base + skip;
            rest[k++].iov_len = iov[i].iov_len - skip;
            skip = 0;
        }
        uint64_t e = mh_mesh_epoch();
        ssize_t r = real(fd, rest, k, off + (off_t)done);
        if (r < 0) {
            if (errno != EFAULT || tries > 1000 || !meshing_caused(e)) return done ? (ssize_t)done : r;
            continue;
        }
        done += (size_t)r;
        if (r == 0 || done == total || tries > 1000 || !meshing_caused(e)) return (ssize_t)done;
    }
}

MH_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(ssize_t(*)(int, const struct iovec *, int, off_t), "preadv");
    return preadv_full(real_, fd, iov, cnt, off);
}

MH_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(ssize_t(*)(int, const struct iovec *, int, off_t), "preadv64");
    return preadv_full(real_, fd, iov, cnt, off);
}

MH_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
    REAL(ssize_t(*)(int, void *, size_t, int), "recv");
    RETRY_ON_MESH(real_(fd, buf, n, flags));
}

// The kernel writes a sender's address (and msg_flags, control data, lengths) after it
// has consumed the data, so an EFAULT there would lose the message. Those small
// buffers are bounced through the stack; the data buffers themselves fail before
// anything is consumed and are retried as above.
#define NAME_MAX_BOUNCE 128
#define CONTROL_MAX_BOUNCE 1024

MH_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                           socklen_t *len) {
    REAL(ssize_t(*)(int, void *, size_t, int, struct sockaddr *, socklen_t *), "recvfrom");
    char name[NAME_MAX_BOUNCE];
    socklen_t nl = len ? *len : 0;
    if (!addr || !len || nl > sizeof name) RETRY_ON_MESH(real_(fd, buf, n, flags, addr, len));
    for (int tries = 0;; tries++) {
        uint64_t e = mh_mesh_epoch();
        socklen_t l = nl;
        ssize_t r = real_(fd, buf, n, flags, (struct sockaddr *)name, &l);
        if (r >= 0) {
            memcpy(addr, name, l < nl ? l : nl);
            *len = l;
            return r;
        }
        if (errno != EFAULT || tries > 1000 || !meshing_caused(e)) return r;
    }
}

static ssize_t recvmsg_bounced(ssize_t (*real)(int, struct msghdr *, int), int fd, struct msghdr *msg,
                               int flags) {
    char name[NAME_MAX_BOUNCE], control[CONTROL_MAX_BOUNCE];
    struct msghdr local = *msg;
    if (msg->msg_name && msg->msg_namelen <= sizeof name) local.msg_name = name;
    if (msg->msg_control && msg->msg_controllen <= sizeof control) local.msg_control = control;
    ssize_t r = real(fd, &local, flags);
    if (r < 0) return r;
    if (local.msg_name == name) memcpy(msg->msg_name, name, local.msg_namelen < msg->msg_namelen ? local.msg_namelen : msg->msg_namelen);
    if (local.msg_control == control) memcpy(msg->msg_control, control, local.msg_controllen);
    msg->msg_namelen = local.msg_namelen;
    msg->msg_controllen = local.msg_controllen;
    msg->msg_flags = local.msg_flags;
    return r;
}

MH_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    REAL(ssize_t(*)(int, struct msghdr *, int), "recvmsg");
    if (!msg) RETRY_ON_MESH(real_(fd, msg, flags));
    RETRY_ON_MESH(recvmsg_bounced(real_, fd, msg, flags));
}

MH_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags, struct timespec *t) {
    REAL(int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *), "recvmmsg");
    enum { MAX_BOUNCE = 16 };
    if (!vec || n > MAX_BOUNCE) RETRY_ON_MESH(real_(fd, vec, n, flags, t));
    struct mmsghdr local[MAX_BOUNCE];
    char names[MAX_BOUNCE][NAME_MAX_BOUNCE];
    for (int tries = 0;; tries++) {
        uint64_t e = mh_mesh_epoch();
        for (unsigned i = 0; i < n; i++) {
            local[i] = vec[i];
            if (vec[i].msg_hdr.msg_name && vec[i].msg_hdr.msg_namelen <= NAME_MAX_BOUNCE)
                local[i].msg_hdr.msg_name = names[i];
        }
        int r = real_(fd, local, n, flags, t);
        if (r >= 0) {
            for (int i = 0; i < r; i++) {
                if (local[i].msg_hdr.msg_name == names[i])
                    memcpy(vec[i].msg_hdr.msg_name, names[i],
                           local[i].msg_hdr.msg_namelen < vec[i].msg_hdr.msg_namelen
                               ? local[i].msg_hdr.msg_namelen : vec[i].msg_hdr.msg_namelen);
                vec[i].msg_hdr.msg_namelen = local[i].msg_hdr.msg_namelen;
                vec[i].msg_hdr.msg_controllen = local[i].msg_hdr.msg_controllen;
                vec[i].msg_hdr.msg_flags = local[i].msg_hdr.msg_flags;
                vec[i].msg_len = local[i].msg_len;
            }
            return r;
        }
        if (errno != EFAULT || tries > 1000 || !meshing_caused(e)) return r;
    }
}

MH_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    return mh_barrier_sigaction(sig, act, old);
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
    if (mh_barrier_sigaction(sig, &sa, &old) != 0) return SIG_ERR;
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
        static sighandler_t (*real_sigset)(int, sighandler_t);
        if (!real_sigset) real_sigset = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "sigset");
        if (!real_sigset) return SIG_ERR;
        return real_sigset(sig, disp);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    if (disp == SIG_HOLD) { // block it, keep the handler
        struct sigaction old;
        if (mh_barrier_sigaction(sig, NULL, &old) != 0) return SIG_ERR;
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
    static int (*real_mask)(int, const sigset_t *, sigset_t *);
    if (!real_mask) real_mask = (int (*)(int, const sigset_t *, sigset_t *))dlsym(RTLD_NEXT, "pthread_sigmask");
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
    static int (*real_set)(pthread_attr_t *, const sigset_t *);
    if (!real_set) real_set = (int (*)(pthread_attr_t *, const sigset_t *))dlsym(RTLD_NEXT, "pthread_attr_setsigmask_np");
    if (!real_set) return ENOSYS;
    sigset_t copy;
    return real_set(attr, unblock_faults(SIG_SETMASK, set, &copy));
}
