// wrap_io.c - interposed system calls that write into the program's buffers, made safe
// against the mesh write barrier.
//
// While a pair is meshed, the source's pages are read-only. A store by the program
// faults and waits for the mesh (barrier.c), but the kernel's copy into such a page
// fails with EFAULT instead. Two remedies, chosen per call:
//  - bounce: when the destination is an object of a meshed class (at most
//    MH_MESH_MAX_SIZE bytes; the class directory tells in two loads), the kernel
//    writes into a stack buffer and the result is copied to the program's object in
//    user space, where a fault only waits. Used wherever a failed copy would lose
//    something: data a read or recv consumed (a datagram, an eventfd count, a signalfd
//    signal, an inotify event), the connection accept took, the status of a child a
//    wait reaped, fd sets select overwrote, the signal sigwaitinfo dequeued, the full
//    timeout a poll would wait again.
//  - retry: for calls a failed copy leaves without effect (stat, getrandom, readlink,
//    getsockopt, ...) and for destinations too large to bounce: when the EFAULT
//    coincides with a mesh (the epoch moved or is odd), wait for it and call again. A
//    real EFAULT (a bad pointer) is returned as before.
// Calls libc makes internally (stdio reading into its buffers, readdir) do not come
// through here; their buffers are larger than any meshed class. Other calls that write
// into memory (ioctl, io_uring, process_vm_readv, ...) are not covered.
// Thread-safe: the only state is each call's lazily looked-up next definition.
//
// Layer 8 (edges): arena (the class directory), barrier (epoch), fault (checked
// copies), mesh (which classes are meshed).
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "barrier.h"
#include "common.h"
#include "fault.h"
#include "mesh.h"
#include "size_class.h"
#include "wrap.h"

extern ssize_t __read(int, void *, size_t);
extern ssize_t __pread64(int, void *, size_t, off_t);

#define BOUNCE MH_MESH_MAX_SIZE
// A call retried around meshes gives up after this many EFAULTs that each coincided
// with a mesh (each retry waited for one; a real bad pointer fails at once).
#define MAX_MESH_RETRIES 1000

// p lies in an object the mesher may write-protect (never before the first mesh pass,
// which installs the barrier: until then nothing is bounced).
static inline bool meshed_class(const void *p) {
    unsigned e = mh_dir_entry(p);
    return e != 0 && mh_classes[mh_dir_entry_class(e)].size <= MH_MESH_MAX_SIZE && mh_fault_installed();
}

// Program memory the kernel would have checked (an address length, a msghdr, an fd
// set, an iovec array, an address buffer) is read and written through
// copy_checked (mh_fault_copy): a bad pointer then makes the call fail with EFAULT, as
// it would have without libmesh, instead of crashing inside the wrapper.
static bool copy_checked(void *dst, const void *src, size_t n) { return mh_fault_copy(dst, src, n); }

static ssize_t efault(void) {
    errno = EFAULT;
    return -1;
}

// True (after waiting) when an EFAULT may have been caused by meshing.
static bool meshing_caused(uint32_t before) {
    uint32_t now = mh_barrier_epoch();
    if (now == before && !(now & 1)) return false;
    mh_barrier_wait(now);
    return true;
}

#define RETRY_ON_MESH(call)                                                                        \
    for (int tries_ = 0;; tries_++) {                                                              \
        uint32_t e_ = mh_barrier_epoch();                                                          \
        __typeof__(call) r_ = (call);                                                              \
        if (r_ >= 0 || errno != EFAULT || tries_ > MAX_MESH_RETRIES || !meshing_caused(e_))       \
            return r_;                                                                             \
    }

// A call that a failed copy leaves without effect: retried around meshes.
#define RETRIED(ret, name, params, args)                                                           \
    MH_EXPORT ret name params {                                                                    \
        MH_REAL(ret(*) params, #name);                                                                \
        RETRY_ON_MESH(real_ args);                                                                 \
    }

// ---- reads ---------------------------------------------------------------------------

MH_EXPORT ssize_t read(int fd, void *buf, size_t n) {
    if (n <= BOUNCE && meshed_class(buf)) {
        char tmp[BOUNCE];
        ssize_t r = __read(fd, tmp, n);
        if (r > 0) memcpy(buf, tmp, (size_t)r);
        return r;
    }
    RETRY_ON_MESH(__read(fd, buf, n));
}

// A positional read that hits a page being meshed part-way returns a short count; on
// a file that would look like a premature end, so the rest is read once the mesh is
// over (positional reads only: for pipes and sockets a short read is ordinary).
static ssize_t pread_full(int fd, char *buf, size_t n, off_t off) {
    if (n <= BOUNCE && meshed_class(buf)) {
        char tmp[BOUNCE];
        ssize_t r = __pread64(fd, tmp, n, off);
        if (r > 0) memcpy(buf, tmp, (size_t)r);
        return r;
    }
    size_t done = 0;
    for (int tries = 0;; tries++) {
        uint32_t e = mh_barrier_epoch();
        ssize_t r = __pread64(fd, buf + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno != EFAULT || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return done ? (ssize_t)done : r;
            continue;
        }
        done += (size_t)r;
        if (r == 0 || done == n || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return (ssize_t)done;
    }
}

MH_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off) { return pread_full(fd, buf, n, off); }

MH_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off) { return pread_full(fd, buf, n, off); }

// Up to IOV_BOUNCE iovecs whose total fits a bounce buffer, one of them in a meshed
// class: the array is copied to local (it may be a bad pointer) and the total returned;
// 0 otherwise (also for counts the kernel will refuse).
#define IOV_BOUNCE 64

static size_t iov_bounce_len(const struct iovec *iov, int cnt, struct iovec *local) {
    if (!iov || cnt <= 0 || cnt > IOV_BOUNCE || !mh_fault_installed()) return 0;
    if (!copy_checked(local, iov, (size_t)cnt * sizeof *iov)) return 0; // the kernel will say EFAULT
    size_t total = 0;
    bool any = false;
    for (int i = 0; i < cnt; i++) {
        if (local[i].iov_len > BOUNCE || (total += local[i].iov_len) > BOUNCE) return 0;
        any |= local[i].iov_len && meshed_class(local[i].iov_base);
    }
    return any ? total : 0;
}

// Spreads n bounced bytes over the iovecs; the bytes placed, or -1 (EFAULT) when the
// first buffer was a bad pointer, as the kernel would have answered.
static ssize_t scatter(const struct iovec *iov, int cnt, const char *src, size_t n) {
    size_t done = 0;
    for (int i = 0; i < cnt && done < n; i++) {
        size_t k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        if (!copy_checked(iov[i].iov_base, src + done, k)) return done ? (ssize_t)done : efault();
        done += k;
    }
    return (ssize_t)done;
}

MH_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt) {
    struct iovec local[IOV_BOUNCE];
    size_t total = iov_bounce_len(iov, cnt, local);
    if (total) { // one read of the total is what readv does, datagrams included
        char tmp[BOUNCE];
        ssize_t r = __read(fd, tmp, total);
        return r > 0 ? scatter(local, cnt, tmp, (size_t)r) : r;
    }
    MH_REAL(ssize_t(*)(int, const struct iovec *, int), "readv");
    RETRY_ON_MESH(real_(fd, iov, cnt));
}

// preadv, likewise completed when a mesh cut it short (up to 64 iovecs).
static ssize_t preadv_full(ssize_t (*real)(int, const struct iovec *, int, off_t), int fd,
                           const struct iovec *iov, int cnt, off_t off) {
    struct iovec mine[IOV_BOUNCE], rest[IOV_BOUNCE];
    size_t total = iov_bounce_len(iov, cnt, mine);
    if (total) {
        char tmp[BOUNCE];
        ssize_t r = __pread64(fd, tmp, total, off);
        return r > 0 ? scatter(mine, cnt, tmp, (size_t)r) : r;
    }
    if (cnt <= 0 || cnt > IOV_BOUNCE) RETRY_ON_MESH(real(fd, iov, cnt, off));
    uint32_t e0 = mh_barrier_epoch();
    ssize_t first = real(fd, iov, cnt, off);
    if (first >= 0 ? e0 == mh_barrier_epoch() && !(e0 & 1) : errno != EFAULT || !meshing_caused(e0)) return first;
    // A mesh may have cut it short: go on from a copy of the array (a bad pointer there
    // would have failed the first call).
    if (!copy_checked(mine, iov, (size_t)cnt * sizeof *iov)) return first;
    iov = mine;
    total = 0;
    size_t done = first > 0 ? (size_t)first : 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    if (first >= 0 && (first == 0 || done == total)) return first;
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
        uint32_t e = mh_barrier_epoch();
        ssize_t r = real(fd, rest, k, off + (off_t)done);
        if (r < 0) {
            if (errno != EFAULT || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return done ? (ssize_t)done : r;
            continue;
        }
        done += (size_t)r;
        if (r == 0 || done == total || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return (ssize_t)done;
    }
}

MH_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off) {
    MH_REAL(ssize_t(*)(int, const struct iovec *, int, off_t), "preadv");
    return preadv_full(real_, fd, iov, cnt, off);
}

MH_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off) {
    MH_REAL(ssize_t(*)(int, const struct iovec *, int, off_t), "preadv64");
    return preadv_full(real_, fd, iov, cnt, off);
}

// ---- receives --------------------------------------------------------------------------
// The kernel writes a sender's address (and msg_flags, control data, lengths) after it
// has consumed the data, and a datagram whose data copy fails is dropped: the small
// buffers are bounced; larger data buffers are retried (a datagram can then be lost).

#define NAME_MAX_BOUNCE 128
#define CONTROL_MAX_BOUNCE 1024

MH_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
    MH_REAL(ssize_t(*)(int, void *, size_t, int), "recv");
    if (n <= BOUNCE && meshed_class(buf)) {
        char tmp[BOUNCE];
        ssize_t r = real_(fd, tmp, n, flags);
        if (r > 0) memcpy(buf, tmp, (size_t)r < n ? (size_t)r : n); // MSG_TRUNC: r may exceed n
        return r;
    }
    RETRY_ON_MESH(real_(fd, buf, n, flags));
}

MH_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                           socklen_t *len) {
    MH_REAL(ssize_t(*)(int, void *, size_t, int, struct sockaddr *, socklen_t *), "recvfrom");
    char name[NAME_MAX_BOUNCE], tmp[BOUNCE];
    socklen_t nl = 0;
    bool bounce_name = addr && len && mh_fault_installed() && copy_checked(&nl, len, sizeof nl) && nl <= sizeof name;
    bool bounce_data = n <= BOUNCE && meshed_class(buf);
    if (!bounce_name && !bounce_data) RETRY_ON_MESH(real_(fd, buf, n, flags, addr, len));
    for (int tries = 0;; tries++) {
        uint32_t e = mh_barrier_epoch();
        socklen_t l = nl;
        ssize_t r = real_(fd, bounce_data ? tmp : buf, n, flags, bounce_name ? (struct sockaddr *)name : addr,
                          bounce_name ? &l : len);
        if (r >= 0) {
            if (bounce_data) memcpy(buf, tmp, (size_t)r < n ? (size_t)r : n);
            if (bounce_name && (!copy_checked(addr, name, l < nl ? l : nl) || !copy_checked(len, &l, sizeof l))) return efault();
            return r;
        }
        if (errno != EFAULT || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return r;
    }
}

static ssize_t recvmsg_bounced(ssize_t (*real)(int, struct msghdr *, int), int fd, struct msghdr *msg,
                               int flags) {
    char name[NAME_MAX_BOUNCE], control[CONTROL_MAX_BOUNCE], data[BOUNCE];
    struct msghdr asked, local;
    struct iovec iov[IOV_BOUNCE], one;
    if (!mh_fault_installed() || !copy_checked(&asked, msg, sizeof asked)) return real(fd, msg, flags);
    local = asked;
    size_t total = asked.msg_iovlen <= IOV_BOUNCE ? iov_bounce_len(asked.msg_iov, (int)asked.msg_iovlen, iov) : 0;
    if (total) {
        one = (struct iovec){data, total};
        local.msg_iov = &one;
        local.msg_iovlen = 1;
    }
    if (asked.msg_name && asked.msg_namelen <= sizeof name) local.msg_name = name;
    if (asked.msg_control && asked.msg_controllen <= sizeof control) local.msg_control = control;
    ssize_t r = real(fd, &local, flags);
    if (r < 0) return r;
    if (total && scatter(iov, (int)asked.msg_iovlen, data, (size_t)r < total ? (size_t)r : total) < 0) return -1;
    bool ok = true;
    if (local.msg_name == name)
        ok &= copy_checked(asked.msg_name, name, local.msg_namelen < asked.msg_namelen ? local.msg_namelen : asked.msg_namelen);
    if (local.msg_control == control) ok &= copy_checked(asked.msg_control, control, local.msg_controllen);
    asked.msg_namelen = local.msg_namelen;
    asked.msg_controllen = local.msg_controllen;
    asked.msg_flags = local.msg_flags;
    ok &= copy_checked(msg, &asked, sizeof asked);
    return ok ? r : efault();
}

MH_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    MH_REAL(ssize_t(*)(int, struct msghdr *, int), "recvmsg");
    if (!msg) RETRY_ON_MESH(real_(fd, msg, flags));
    RETRY_ON_MESH(recvmsg_bounced(real_, fd, msg, flags));
}

// Names and lengths are bounced; the data of up to 16 messages is retried (a datagram
// whose copy failed can be lost here).
MH_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags, struct timespec *t) {
    MH_REAL(int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *), "recvmmsg");
    enum { MAX_BOUNCE = 16 };
    struct mmsghdr asked[MAX_BOUNCE], local[MAX_BOUNCE];
    char names[MAX_BOUNCE][NAME_MAX_BOUNCE];
    if (!vec || n > MAX_BOUNCE || !mh_fault_installed() || !copy_checked(asked, vec, n * sizeof *vec))
        RETRY_ON_MESH(real_(fd, vec, n, flags, t));
    for (int tries = 0;; tries++) {
        uint32_t e = mh_barrier_epoch();
        for (unsigned i = 0; i < n; i++) {
            local[i] = asked[i];
            if (asked[i].msg_hdr.msg_name && asked[i].msg_hdr.msg_namelen <= NAME_MAX_BOUNCE)
                local[i].msg_hdr.msg_name = names[i];
        }
        int r = real_(fd, local, n, flags, t);
        if (r >= 0) {
            bool ok = true;
            for (int i = 0; i < r; i++) {
                struct mmsghdr out = asked[i];
                if (local[i].msg_hdr.msg_name == names[i])
                    ok &= copy_checked(asked[i].msg_hdr.msg_name, names[i],
                              local[i].msg_hdr.msg_namelen < asked[i].msg_hdr.msg_namelen
                                  ? local[i].msg_hdr.msg_namelen : asked[i].msg_hdr.msg_namelen);
                out.msg_hdr.msg_namelen = local[i].msg_hdr.msg_namelen;
                out.msg_hdr.msg_controllen = local[i].msg_hdr.msg_controllen;
                out.msg_hdr.msg_flags = local[i].msg_hdr.msg_flags;
                out.msg_len = local[i].msg_len;
                ok &= copy_checked(&vec[i], &out, sizeof out);
            }
            return ok ? r : (int)efault();
        }
        if (errno != EFAULT || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return r;
    }
}

// ---- calls that consume something before writing back: bounced ---------------------

// accept: the connection is already taken when the peer address is written.
static int accept_bounced(int (*real)(int, struct sockaddr *, socklen_t *, int), int fd,
                          struct sockaddr *addr, socklen_t *len, int flags) {
    struct sockaddr_storage ss;
    socklen_t asked;
    if (!addr || !len || !(meshed_class(addr) || meshed_class(len)) || !copy_checked(&asked, len, sizeof asked) ||
        asked > sizeof ss)
        return real(fd, addr, len, flags);
    socklen_t l = asked;
    int r = real(fd, (struct sockaddr *)&ss, &l, flags);
    if (r >= 0 && (!copy_checked(addr, &ss, l < asked ? l : asked) || !copy_checked(len, &l, sizeof l))) {
        close(r); // as the kernel does when it cannot write the address back
        return (int)efault();
    }
    return r;
}

MH_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    MH_REAL(int (*)(int, struct sockaddr *, socklen_t *, int), "accept4");
    return accept_bounced(real_, fd, addr, len, flags);
}

// accept(2) is accept4 without flags (the kernel implements it so).
MH_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len) { return accept4(fd, addr, len, 0); }

// The wait family: the child is reaped before its status is written.
MH_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru) {
    MH_REAL(pid_t(*)(pid_t, int *, int, struct rusage *), "wait4");
    if (!(status && meshed_class(status)) && !(ru && meshed_class(ru))) return real_(pid, status, options, ru);
    int st = 0;
    struct rusage lru;
    pid_t r = real_(pid, status ? &st : NULL, options, ru ? &lru : NULL);
    if (r > 0 && ((status && !copy_checked(status, &st, sizeof st)) || (ru && !copy_checked(ru, &lru, sizeof lru))))
        return (pid_t)efault(); // the child is reaped, as with the kernel's own EFAULT
    return r;
}

MH_EXPORT pid_t waitpid(pid_t pid, int *status, int options) { return wait4(pid, status, options, NULL); }

MH_EXPORT pid_t wait(int *status) { return wait4(-1, status, 0, NULL); }

MH_EXPORT pid_t wait3(int *status, int options, struct rusage *ru) { return wait4(-1, status, options, ru); }

MH_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options) {
    MH_REAL(int (*)(idtype_t, id_t, siginfo_t *, int), "waitid");
    if (!info || !meshed_class(info)) return real_(type, id, info, options);
    siginfo_t local;
    int r = real_(type, id, &local, options);
    if (r == 0) *info = local;
    return r;
}

// sigwaitinfo/sigtimedwait: the signal is dequeued before its siginfo is written.
MH_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout) {
    MH_REAL(int (*)(const sigset_t *, siginfo_t *, const struct timespec *), "sigtimedwait");
    if (!info || !meshed_class(info)) return real_(set, info, timeout);
    siginfo_t local;
    int r = real_(set, &local, timeout);
    if (r > 0) *info = local;
    return r;
}

MH_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info) { return sigtimedwait(set, info, NULL); }

// select overwrites its sets (and Linux the timeout) with results: a copy that fails
// half-way leaves results where the inputs were, so the sets are bounced.
#define SET_MAX_BOUNCE 1024 // bytes per set: nfds up to 8192

static bool any_meshed(const void *a, const void *b, const void *c, const void *d) {
    return (a && meshed_class(a)) || (b && meshed_class(b)) || (c && meshed_class(c)) || (d && meshed_class(d));
}

// Copies a set in (NULL stays NULL); *ok turns false when set is a bad pointer.
static void *set_in(void *local, const void *set, size_t bytes, bool *ok) {
    if (!set) return NULL;
    *ok &= copy_checked(local, set, bytes);
    return local;
}

static bool set_out(void *set, const void *local, size_t bytes) { return !set || copy_checked(set, local, bytes); }

MH_EXPORT int select(int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *t) {
    MH_REAL(int (*)(int, fd_set *, fd_set *, fd_set *, struct timeval *), "select");
    size_t bytes = n > 0 ? ((size_t)n + 63) / 64 * 8 : 0;
    if (bytes > SET_MAX_BOUNCE || !any_meshed(rd, wr, ex, t)) return real_(n, rd, wr, ex, t);
    uint64_t lr[SET_MAX_BOUNCE / 8], lw[SET_MAX_BOUNCE / 8], le[SET_MAX_BOUNCE / 8];
    struct timeval lt;
    bool ok = true;
    fd_set *in_r = set_in(lr, rd, bytes, &ok), *in_w = set_in(lw, wr, bytes, &ok), *in_e = set_in(le, ex, bytes, &ok);
    struct timeval *in_t = set_in(&lt, t, sizeof lt, &ok);
    if (!ok) return (int)efault();
    int r = real_(n, in_r, in_w, in_e, in_t);
    int saved = errno;
    if (r >= 0) ok = set_out(rd, lr, bytes) && set_out(wr, lw, bytes) && set_out(ex, le, bytes);
    ok &= set_out(t, &lt, t ? sizeof lt : 0); // Linux updates the timeout also on EINTR
    errno = saved;
    return ok ? r : (int)efault();
}

MH_EXPORT int pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *t, const sigset_t *mask) {
    MH_REAL(int (*)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *), "pselect");
    size_t bytes = n > 0 ? ((size_t)n + 63) / 64 * 8 : 0;
    if (bytes > SET_MAX_BOUNCE || !any_meshed(rd, wr, ex, NULL)) return real_(n, rd, wr, ex, t, mask);
    uint64_t lr[SET_MAX_BOUNCE / 8], lw[SET_MAX_BOUNCE / 8], le[SET_MAX_BOUNCE / 8];
    bool ok = true;
    fd_set *in_r = set_in(lr, rd, bytes, &ok), *in_w = set_in(lw, wr, bytes, &ok), *in_e = set_in(le, ex, bytes, &ok);
    if (!ok) return (int)efault();
    int r = real_(n, in_r, in_w, in_e, t, mask);
    if (r >= 0 && !(set_out(rd, lr, bytes) && set_out(wr, lw, bytes) && set_out(ex, le, bytes)))
        return (int)efault();
    return r;
}

// poll: a retry after a failed copy-out would wait the whole timeout again.
static int poll_bounced(int (*real)(struct pollfd *, nfds_t, int), struct pollfd *fds, nfds_t n, int timeout) {
    if (!fds || n == 0 || n > BOUNCE / sizeof *fds || !meshed_class(fds)) return real(fds, n, timeout);
    struct pollfd local[BOUNCE / sizeof *fds];
    memcpy(local, fds, n * sizeof *fds);
    int r = real(local, n, timeout);
    if (r >= 0)
        for (nfds_t i = 0; i < n; i++) fds[i].revents = local[i].revents;
    return r;
}

MH_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
    MH_REAL(int (*)(struct pollfd *, nfds_t, int), "poll");
    return poll_bounced(real_, fds, n, timeout);
}

MH_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask) {
    MH_REAL(int (*)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *), "ppoll");
    if (!fds || n == 0 || n > BOUNCE / sizeof *fds || !meshed_class(fds)) return real_(fds, n, t, mask);
    struct pollfd local[BOUNCE / sizeof *fds];
    memcpy(local, fds, n * sizeof *fds);
    int r = real_(local, n, t, mask);
    if (r >= 0)
        for (nfds_t i = 0; i < n; i++) fds[i].revents = local[i].revents;
    return r;
}

// epoll_wait: the kernel puts back an event it could not copy, so a retry would lose
// nothing, but it would wait a whole timeout again; small arrays are bounced.
MH_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout) {
    MH_REAL(int (*)(int, struct epoll_event *, int, int), "epoll_wait");
    if (!ev || max <= 0 || (size_t)max > BOUNCE / sizeof *ev || !meshed_class(ev))
        RETRY_ON_MESH(real_(ep, ev, max, timeout));
    struct epoll_event local[BOUNCE / sizeof *ev];
    int r = real_(ep, local, max, timeout);
    if (r > 0) memcpy(ev, local, (size_t)r * sizeof *ev);
    return r;
}

MH_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
    MH_REAL(int (*)(int, struct epoll_event *, int, int, const sigset_t *), "epoll_pwait");
    if (!ev || max <= 0 || (size_t)max > BOUNCE / sizeof *ev || !meshed_class(ev))
        RETRY_ON_MESH(real_(ep, ev, max, timeout, mask));
    struct epoll_event local[BOUNCE / sizeof *ev];
    int r = real_(ep, local, max, timeout, mask);
    if (r > 0) memcpy(ev, local, (size_t)r * sizeof *ev);
    return r;
}

// ---- calls a failed copy leaves without effect: retried --------------------------------

RETRIED(ssize_t, getrandom, (void *buf, size_t n, unsigned flags), (buf, n, flags))
RETRIED(int, getentropy, (void *buf, size_t n), (buf, n))
RETRIED(int, stat, (const char *path, struct stat *st), (path, st))
RETRIED(int, lstat, (const char *path, struct stat *st), (path, st))
RETRIED(int, fstat, (int fd, struct stat *st), (fd, st))
RETRIED(int, fstatat, (int dir, const char *path, struct stat *st, int flags), (dir, path, st, flags))
RETRIED(int, stat64, (const char *path, struct stat64 *st), (path, st))
RETRIED(int, lstat64, (const char *path, struct stat64 *st), (path, st))
RETRIED(int, fstat64, (int fd, struct stat64 *st), (fd, st))
RETRIED(int, fstatat64, (int dir, const char *path, struct stat64 *st, int flags), (dir, path, st, flags))
RETRIED(int, statx, (int dir, const char *path, int flags, unsigned mask, struct statx *st),
        (dir, path, flags, mask, st))
RETRIED(ssize_t, readlink, (const char *path, char *buf, size_t n), (path, buf, n))
RETRIED(ssize_t, readlinkat, (int dir, const char *path, char *buf, size_t n), (dir, path, buf, n))
RETRIED(int, getsockname, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len))
RETRIED(int, getpeername, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len))
RETRIED(int, getsockopt, (int fd, int level, int name, void *val, socklen_t *len), (fd, level, name, val, len))
RETRIED(int, pipe, (int fds[2]), (fds))
RETRIED(int, pipe2, (int fds[2], int flags), (fds, flags))
RETRIED(int, socketpair, (int domain, int type, int proto, int fds[2]), (domain, type, proto, fds))
RETRIED(int, sched_getaffinity, (pid_t pid, size_t n, cpu_set_t *set), (pid, n, set))
RETRIED(ssize_t, getdents64, (int fd, void *buf, size_t n), (fd, buf, n))
RETRIED(int, getrusage, (int who, struct rusage *ru), (who, ru))

// getcwd returns its buffer (or a new one), NULL on failure.
MH_EXPORT char *getcwd(char *buf, size_t n) {
    MH_NEXT(real, char *(*)(char *, size_t), "getcwd");
    if (!real) {
        errno = ENOSYS;
        return NULL;
    }
    for (int tries = 0;; tries++) {
        uint32_t e = mh_barrier_epoch();
        char *r = real(buf, n);
        if (r || errno != EFAULT || tries > MAX_MESH_RETRIES || !meshing_caused(e)) return r;
    }
}
