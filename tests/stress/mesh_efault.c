/*
 * mesh_efault.c - kernel writes into heap buffers while the heap is meshed.
 *
 * While a span is meshed it is read-only, and a system call that writes into
 * it fails with EFAULT; libmesh interposes the buffer-writing calls and
 * retries them.  This test makes the kernel write into heap objects that sit
 * in fragmented (meshable) spans while another thread runs mesh.compact about
 * every millisecond:
 *
 *   pipe      write a message, read it back with read() / readv()
 *   file      pread() / preadv() from a temporary file of known content
 *   stream    AF_UNIX stream socketpair: send, then recv() / recvfrom() (the
 *             address and its length in heap objects too) / recvmsg() (the
 *             msghdr, the iovec array and the name buffer on the heap)
 *   dgram     AF_UNIX datagram socketpair: send one datagram, then recv() /
 *             recvfrom() / recvmsg() / recvmmsg() (mmsghdr array on the heap)
 *
 * Every buffer lives in a heap object of a meshable class (64 .. 2048 B), and so
 * does all the metadata the kernel writes back (msghdr, mmsghdr, the address
 * length, as a field of a 256-byte struct).  Each reader works on generations:
 * it allocates a few spans' worth of objects per class, frees a random ~90% and
 * uses the survivors - spans the mesher meshes while they are in use - for the
 * next few thousand calls; the previous generation is freed by another thread.
 * The metadata objects and the buffer are picked afresh for every call.
 *
 * Every 16th call a reader also runs poll, fstat, epoll_wait, select, pipe2
 * and getrandom with their results written into heap objects, and every 64th
 * the rest of the calls libmesh wraps (see rare_round).
 *
 * Failures: any EFAULT, wrong data, stream/pipe data lost (EAGAIN before the
 * whole message arrived), a short pread() inside the file, a datagram with
 * wrong content, a lost datagram (the next receive finds nothing) except with
 * recvmmsg, whose data buffers are retried rather than bounced (a documented
 * limitation: counted and reported, not failed).
 *
 * Diagnostics (never failures): some pipe reads go through syscall(SYS_read),
 * bypassing the wrappers, and count the EFAULTs they see ("raw EFAULTs":
 * shows the test really hits spans while they are read-only).
 *
 * usage: mesh_efault [calls=4000000] [max-seconds=18] [seed]
 * Stops after `calls` wrapped calls or max-seconds, whichever comes first.
 * stdout: one summary line; exit 1 on any failure (and, under libmesh, when
 * nothing was meshed).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;

static long g_target = 4000000;
static double g_max_s = 18;
static uint64_t g_seed = 0xefa17ULL;

static atomic_int g_stop;
static atomic_long g_calls, g_fail, g_lost_dgrams, g_short_reads, g_raw_efault, g_other_calls,
    g_compacts, g_produced;
static atomic_long g_kind_calls[4];
static const char *const g_kind_name[4] = {"pipe", "file", "stream", "dgram"};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (atomic_fetch_add(&g_fail, 1) < 20)
        fprintf(stderr, "mesh_efault: %s\n", buf);
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *map_array(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mesh_efault: mmap");
        exit(1);
    }
    return p;
}

/* ---- generations of fragmented objects --------------------------------------------- */
/* Each reader works on its own generation: for every size, a few spans' worth of
   objects allocated and a random ~85% freed again; the survivors (the buffers,
   iovec arrays, msghdrs, ... of the next few thousand calls) sit in fragmented spans
   that the mesher meshes while they are used.  An old generation is handed to the
   freer thread (cross-thread frees) once its successor is built. */

static const uint32_t g_sizes[] = {16, 32, 64, 128, 256, 512, 1024, 2048};
#define NSIZES 8
#define GEN_CALLS 8192 /* calls per generation */
#define META_CLASS 4   /* 256 bytes: the class metadata objects come from */
#define META_MIN 24    /* survivors at least in the metadata class */

typedef struct gen {
    struct gen *next;
    void **obj[NSIZES];
    unsigned n[NSIZES];
} gen_t;

static pthread_mutex_t g_grave_lock = PTHREAD_MUTEX_INITIALIZER;
static gen_t *g_grave;

static void gen_free(gen_t *g) {
    for (int i = 0; i < NSIZES; i++) {
        for (unsigned k = 0; k < g->n[i]; k++)
            free(g->obj[i][k]);
        free(g->obj[i]); /* the pointer arrays are large objects: never meshed */
    }
    free(g);
}

static gen_t *gen_build(uint64_t *rs) {
    gen_t *g = calloc(1, sizeof *g);
    if (!g)
        goto oom;
    for (int i = 0; i < NSIZES; i++) {
        unsigned m = i == META_CLASS ? 1024 : 131072 / g_sizes[i];
        if (m < 256)
            m = 256;
        g->obj[i] = malloc(sizeof(void *) * m < 65536 ? 65536 : sizeof(void *) * m);
        if (!g->obj[i])
            goto oom;
        for (unsigned k = 0; k < m; k++) {
            void *p = malloc(g_sizes[i]);
            if (!p)
                goto oom;
            memset(p, 0x5a, g_sizes[i]);
            g->obj[i][k] = p;
        }
        unsigned kept = 0;
        for (unsigned k = 0; k < m; k++) {
            if (kept < 1 || rng_next(rs) % 100 < 10)
                g->obj[i][kept++] = g->obj[i][k];
            else
                free(g->obj[i][k]);
        }
        while (i == META_CLASS && kept < META_MIN) { /* (about never: ~100 expected) */
            void *p = malloc(g_sizes[i]);
            if (!p)
                goto oom;
            g->obj[i][kept++] = p;
        }
        g->n[i] = kept;
    }
    atomic_fetch_add(&g_produced, 1);
    return g;
oom:
    fprintf(stderr, "mesh_efault: out of memory\n");
    exit(1);
}

static void gen_retire(gen_t *g) {
    pthread_mutex_lock(&g_grave_lock);
    g->next = g_grave;
    g_grave = g;
    pthread_mutex_unlock(&g_grave_lock);
}

static void *freer(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g_grave_lock);
        gen_t *list = g_grave;
        g_grave = NULL;
        pthread_mutex_unlock(&g_grave_lock);
        while (list) {
            gen_t *next = list->next;
            gen_free(list);
            list = next;
        }
        if (atomic_load(&g_stop) == 2)
            break;
        struct timespec ts = {0, 1000 * 1000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *mesher(void *arg) {
    (void)arg;
    while (!atomic_load(&g_stop)) {
        if (g_ctl && g_ctl("mesh.compact", NULL, NULL, NULL, 0) == 0)
            atomic_fetch_add(&g_compacts, 1);
        struct timespec ts = {0, 1000 * 1000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- messages ---------------------------------------------------------------------- */

static void make_msg(unsigned char *out, size_t len, uint64_t seq) {
    uint64_t x = seq * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            x = rng_next(&x) ^ i;
        out[i] = (unsigned char)(x >> (8 * (i & 7)));
    }
    if (len >= 8)
        memcpy(out, &seq, 8);
}

static int check_msg(const unsigned char *got, size_t len, uint64_t seq, const char *what) {
    unsigned char want[2048];
    make_msg(want, len, seq);
    if (memcmp(got, want, len) == 0)
        return 1;
    size_t i = 0;
    while (got[i] == want[i])
        i++;
    fail("%s: wrong data in message %llu (%zu bytes) at %p: byte %zu is %#x, expected %#x", what,
         (unsigned long long)seq, len, (const void *)got, i, got[i], want[i]);
    return 0;
}

/* ---- one reader per kind -------------------------------------------------------------- */

typedef struct reader {
    int kind, tid;
    int rfd, wfd; /* pipe / socketpair ends; rfd is the file for kind 1 */
    uint64_t rs, seq;
    gen_t *gen;
    struct iovec *iov; /* 2 entries, heap */
    struct msghdr *mh; /* heap */
    struct sockaddr_un *addr;
    socklen_t *alen;
    struct mmsghdr *mm; /* 1 entry, heap */
    struct pollfd *pfd;
    struct stat *st;
    struct epoll_event *ev; /* 8 entries, heap */
    fd_set *set;
    int *pair; /* int[2] for pipe2 */
    int epfd;
    long ncalls;
} reader_t;

#define FILE_BYTES (1u << 20)

/* Metadata (iovec arrays, msghdr, mmsghdr, address, address length, pollfds,
   struct stat) lives in 256-byte objects - the kind of heap struct a connection
   object is - at even survivor indices of that class, picked afresh for every call;
   data buffers are the odd-index 256-byte survivors and any survivor of the other
   classes (64 .. 2048 B), so no object is used twice in one call. */

static void new_generation(reader_t *r) {
    gen_t *old = r->gen;
    r->gen = gen_build(&r->rs);
    if (old)
        gen_retire(old);
}

static void pick_meta(reader_t *r) {
    gen_t *g = r->gen;
    unsigned even = (g->n[META_CLASS] + 1) / 2; /* >= META_MIN / 2 */
    unsigned j = (unsigned)(rng_next(&r->rs) % even);
    void *o[10];
    for (int k = 0; k < 10; k++)
        o[k] = g->obj[META_CLASS][2 * ((j + (unsigned)k) % even)];
    r->iov = o[0];
    r->mh = o[1];
    r->addr = o[2];
    r->alen = (socklen_t *)((char *)o[3] + 40); /* a field inside a bigger struct */
    r->mm = o[4];
    r->pfd = o[5];
    r->st = o[6];
    r->ev = o[7];
    r->set = o[8];
    r->pair = o[9];
}

static unsigned char *pick_buf(reader_t *r, size_t *size) {
    int i = 2 + (int)(rng_next(&r->rs) % (NSIZES - 2)); /* 64 .. 2048 */
    unsigned n = r->gen->n[i], k;
    if (i == META_CLASS)
        k = 1 + 2 * (unsigned)(rng_next(&r->rs) % (n / 2));
    else
        k = (unsigned)(rng_next(&r->rs) % n);
    *size = g_sizes[i];
    return r->gen->obj[i][k];
}

static void count(reader_t *r) {
    r->ncalls++;
    atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_kind_calls[r->kind], 1, memory_order_relaxed);
}

static int write_all(int fd, const void *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail("write to fd %d failed: %s", fd, strerror(errno));
            return 0;
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 1;
}

/* Stream kinds (pipe, socket): send len bytes, receive them into buf with the
   chosen call, a part at a time if the kernel returns short counts. */
static int stream_round(reader_t *r, unsigned char *buf, size_t len, int how) {
    unsigned char msg[2048];
    uint64_t seq = r->seq++;
    make_msg(msg, len, seq);
    if (!write_all(r->wfd, msg, len))
        return 0;
    size_t got = 0;
    int partial = 0;
    while (got < len) {
        size_t want = len - got;
        unsigned char *dst = buf + got;
        ssize_t n;
        const char *name;
        switch (how) {
        case 0:
            name = "read";
            n = read(r->rfd, dst, want);
            break;
        case 1: { /* readv into two halves */
            name = "readv";
            size_t a = want / 2;
            r->iov[0] = (struct iovec){dst, a};
            r->iov[1] = (struct iovec){dst + a, want - a};
            n = readv(r->rfd, r->iov, 2);
            break;
        }
        case 2:
            name = "syscall(SYS_read)";
            n = syscall(SYS_read, r->rfd, dst, want);
            if (n < 0 && errno == EFAULT) { /* diagnostics: the data stays in the pipe */
                atomic_fetch_add(&g_raw_efault, 1);
                struct timespec ts = {0, 20 * 1000L};
                nanosleep(&ts, NULL);
                continue;
            }
            break;
        case 3:
            name = "recv";
            n = recv(r->rfd, dst, want, MSG_DONTWAIT);
            break;
        case 4:
            name = "recvfrom (heap address and length)";
            *r->alen = sizeof(struct sockaddr_un);
            n = recvfrom(r->rfd, dst, want, MSG_DONTWAIT, (struct sockaddr *)r->addr, r->alen);
            break;
        default: {
            name = "recvmsg (heap msghdr, iovec, name)";
            size_t a = want / 2;
            r->iov[0] = (struct iovec){dst, a};
            r->iov[1] = (struct iovec){dst + a, want - a};
            memset(r->mh, 0, sizeof *r->mh);
            r->mh->msg_name = r->addr;
            r->mh->msg_namelen = sizeof(struct sockaddr_un);
            r->mh->msg_iov = r->iov;
            r->mh->msg_iovlen = 2;
            n = recvmsg(r->rfd, r->mh, MSG_DONTWAIT);
            break;
        }
        }
        count(r);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            if (e == EAGAIN)
                fail("%s on %s: data lost: %zu of %zu bytes of message %llu received, then EAGAIN (the "
                     "rest was consumed by a failed call?)",
                     name, g_kind_name[r->kind], got, len, (unsigned long long)seq);
            else
                fail("%s on %s into %p (%zu bytes): %s", name, g_kind_name[r->kind], (void *)dst, want,
                     strerror(e));
            /* resynchronise: drain whatever is left */
            unsigned char junk[4096];
            while (syscall(SYS_read, r->rfd, junk, sizeof junk) > 0) {
            }
            return 0;
        }
        if (n == 0) {
            fail("%s on %s: unexpected end of file", name, g_kind_name[r->kind]);
            return 0;
        }
        if ((size_t)n < want)
            partial = 1;
        got += (size_t)n;
    }
    if (partial)
        atomic_fetch_add(&g_short_reads, 1);
    return check_msg(buf, len, seq, g_kind_name[r->kind]);
}

static unsigned char file_byte(uint64_t off) { return (unsigned char)((off * 2654435761u) >> 13 ^ off); }

static int file_round(reader_t *r, unsigned char *buf, size_t len, int how) {
    uint64_t off = rng_next(&r->rs) % (FILE_BYTES - len);
    ssize_t n;
    const char *name;
    if (how == 0) {
        name = "pread";
        n = pread(r->rfd, buf, len, (off_t)off);
    } else {
        name = "preadv";
        size_t a = len / 3;
        r->iov[0] = (struct iovec){buf, a};
        r->iov[1] = (struct iovec){buf + a, len - a};
        n = preadv(r->rfd, r->iov, 2, (off_t)off);
    }
    count(r);
    if (n < 0) {
        fail("%s of %zu bytes at offset %llu into %p: %s", name, len, (unsigned long long)off, (void *)buf,
             strerror(errno));
        return 0;
    }
    if ((size_t)n != len) {
        fail("%s of %zu bytes at offset %llu (inside the %u-byte file) returned %zd", name, len,
             (unsigned long long)off, FILE_BYTES, n);
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (buf[i] != file_byte(off + i)) {
            fail("%s: wrong byte %zu (file offset %llu): %#x, expected %#x", name, i, (unsigned long long)(off + i),
                 buf[i], file_byte(off + i));
            return 0;
        }
    return 1;
}

static int dgram_round(reader_t *r, unsigned char *buf, size_t len, int how) {
    unsigned char msg[2048];
    uint64_t seq = r->seq++;
    make_msg(msg, len, seq);
    if (send(r->wfd, msg, len, 0) != (ssize_t)len) {
        fail("dgram send failed: %s", strerror(errno));
        return 0;
    }
    ssize_t n;
    const char *name;
    switch (how) {
    case 0:
        name = "recv";
        n = recv(r->rfd, buf, len, MSG_DONTWAIT);
        break;
    case 1:
        name = "recvfrom (heap address and length)";
        *r->alen = sizeof(struct sockaddr_un);
        n = recvfrom(r->rfd, buf, len, MSG_DONTWAIT, (struct sockaddr *)r->addr, r->alen);
        break;
    case 2: {
        name = "recvmsg (heap msghdr, iovec, name)";
        size_t a = len / 2;
        r->iov[0] = (struct iovec){buf, a};
        r->iov[1] = (struct iovec){buf + a, len - a};
        memset(r->mh, 0, sizeof *r->mh);
        r->mh->msg_name = r->addr;
        r->mh->msg_namelen = sizeof(struct sockaddr_un);
        r->mh->msg_iov = r->iov;
        r->mh->msg_iovlen = 2;
        n = recvmsg(r->rfd, r->mh, MSG_DONTWAIT);
        break;
    }
    default: {
        name = "recvmmsg (heap mmsghdr, iovec)";
        r->iov[0] = (struct iovec){buf, len};
        memset(r->mm, 0, sizeof *r->mm);
        r->mm->msg_hdr.msg_iov = r->iov;
        r->mm->msg_hdr.msg_iovlen = 1;
        int k = recvmmsg(r->rfd, r->mm, 1, MSG_DONTWAIT, NULL);
        n = k == 1 ? (ssize_t)r->mm->msg_len : k;
        if (k == 0)
            n = 0;
        break;
    }
    }
    count(r);
    if (n < 0 && errno == EAGAIN) { /* the datagram is gone */
        if (how == 3) { /* recvmmsg retries its data buffers: the documented limitation */
            atomic_fetch_add(&g_lost_dgrams, 1);
            return 1;
        }
        fail("%s on dgram into %p (%zu bytes): the datagram was lost", name, (void *)buf, len);
        return 0;
    }
    if (n < 0) {
        fail("%s on dgram into %p (%zu bytes): %s", name, (void *)buf, len, strerror(errno));
        return 0;
    }
    if ((size_t)n != len) {
        fail("%s on dgram: %zd bytes, expected %zu", name, n, len);
        return 0;
    }
    return check_msg(buf, len, seq, name);
}

/* The other calls libmesh wraps, each writing into a heap object of the metadata
   class (or a data buffer for getrandom): poll, fstat, epoll_wait, select, pipe2,
   getrandom. Any failure is one. */
static void more_round(reader_t *r, unsigned char *buf, size_t len) {
    r->pfd[0] = (struct pollfd){r->rfd, POLLIN, 0};
    r->pfd[1] = (struct pollfd){r->wfd, POLLOUT, 0};
    if (poll(r->pfd, 2, 0) < 0)
        fail("poll into heap pollfds: %s", strerror(errno));
    else if (!(r->pfd[1].revents & POLLOUT) && r->kind != 1)
        fail("poll: the write end is not reported writable (revents %#x)", r->pfd[1].revents);
    if (fstat(r->rfd, r->st) != 0)
        fail("fstat into a heap struct stat: %s", strerror(errno));
    if (epoll_wait(r->epfd, r->ev, 8, 0) < 0)
        fail("epoll_wait into heap events: %s", strerror(errno));
    FD_ZERO(r->set);
    FD_SET(r->wfd, r->set);
    struct timeval tv = {0, 0};
    int k = select(r->wfd + 1, NULL, r->set, NULL, &tv);
    if (k < 0)
        fail("select with a heap fd_set: %s", strerror(errno));
    else if (r->kind != 1 && (k != 1 || !FD_ISSET(r->wfd, r->set)))
        fail("select: the write end is not reported writable (%d)", k);
    if (pipe2(r->pair, O_CLOEXEC) != 0) {
        fail("pipe2 into a heap int[2]: %s", strerror(errno));
    } else {
        close(r->pair[0]);
        close(r->pair[1]);
    }
    for (size_t got = 0; got < len;) { /* more than 256 bytes may come in parts */
        ssize_t k = getrandom(buf + got, len - got, GRND_NONBLOCK);
        if (k <= 0) {
            fail("getrandom into a heap buffer of %zu bytes: %s", len, k < 0 ? strerror(errno) : "0 bytes");
            break;
        }
        got += (size_t)k;
    }
    atomic_fetch_add(&g_other_calls, 6);
}

/* The remaining wrapped calls, every 64th call, results again in heap objects:
   accept4 (a listening AF_UNIX socket), getsockname/getpeername/getsockopt,
   socketpair, stat/lstat/fstatat/statx, readlink, getcwd, sched_getaffinity,
   getrusage, ppoll, pselect, epoll_pwait, sigtimedwait (a signal sent to the
   thread itself must arrive, not be lost), and every 8192nd call a child reaped
   with waitpid/wait4/waitid alternately (its exit status must arrive). */
static int g_listen_fd;
static struct sockaddr_un g_listen_addr;

static void rare_round(reader_t *r, unsigned char *buf, size_t len) {
    /* o: 256-byte metadata objects, reused from pick_meta's picks */
    void *o[4] = {r->iov, r->mh, r->mm, r->addr};
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&g_listen_addr, sizeof g_listen_addr) != 0) {
        fail("connect to the listening socket: %s", strerror(errno));
    } else {
        *r->alen = sizeof(struct sockaddr_un);
        int a = accept4(g_listen_fd, (struct sockaddr *)r->addr, r->alen, SOCK_CLOEXEC);
        if (a < 0)
            fail("accept4 with a heap address and length: %s (the connection is lost)", strerror(errno));
        else
            close(a);
    }
    if (c >= 0)
        close(c);
    socklen_t *sl = (socklen_t *)((char *)o[0] + 200);
    *sl = sizeof(struct sockaddr_un);
    if (getsockname(g_listen_fd, (struct sockaddr *)o[1], sl) != 0)
        fail("getsockname into heap: %s", strerror(errno));
    *sl = sizeof(int);
    if (getsockopt(r->wfd, SOL_SOCKET, SO_TYPE, (char *)o[2], sl) != 0 && r->kind >= 2)
        fail("getsockopt into heap: %s", strerror(errno));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->pair) != 0) {
        fail("socketpair into a heap int[2]: %s", strerror(errno));
    } else {
        *sl = sizeof(struct sockaddr_un);
        if (getpeername(r->pair[0], (struct sockaddr *)o[1], sl) != 0)
            fail("getpeername into heap: %s", strerror(errno));
        close(r->pair[0]);
        close(r->pair[1]);
    }
    if (stat("/proc/self", r->st) != 0 || lstat("/proc/self", r->st) != 0 ||
        fstatat(AT_FDCWD, "/proc", r->st, 0) != 0)
        fail("stat/lstat/fstatat into a heap struct stat: %s", strerror(errno));
    if (statx(AT_FDCWD, "/proc", 0, STATX_BASIC_STATS, (struct statx *)o[3]) != 0)
        fail("statx into a heap struct statx: %s", strerror(errno));
    if (len >= 16 && readlink("/proc/self/exe", (char *)buf, len) <= 0)
        fail("readlink into a heap buffer of %zu bytes: %s", len, strerror(errno));
    if (len >= 2 && !getcwd((char *)buf, len) && errno != ERANGE)
        fail("getcwd into a heap buffer of %zu bytes: %s", len, strerror(errno));
    if (sched_getaffinity(0, sizeof(cpu_set_t), (cpu_set_t *)o[0]) != 0)
        fail("sched_getaffinity into heap: %s", strerror(errno));
    if (getrusage(RUSAGE_SELF, (struct rusage *)o[1]) != 0)
        fail("getrusage into heap: %s", strerror(errno));
    struct timespec zero = {0, 0};
    r->pfd[0] = (struct pollfd){r->wfd, POLLOUT, 0};
    if (ppoll(r->pfd, 1, &zero, NULL) < 0)
        fail("ppoll into heap pollfds: %s", strerror(errno));
    FD_ZERO(r->set);
    FD_SET(r->wfd, r->set);
    if (pselect(r->wfd + 1, NULL, r->set, NULL, &zero, NULL) < 0)
        fail("pselect with a heap fd_set: %s", strerror(errno));
    if (epoll_pwait(r->epfd, r->ev, 8, 0, NULL) != 1)
        fail("epoll_pwait into heap events: %s", strerror(errno));
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_kill(pthread_self(), SIGUSR1);
    siginfo_t *si = (siginfo_t *)o[2];
    int got = sigtimedwait(&usr1, si, &zero);
    if (got != SIGUSR1 || si->si_signo != SIGUSR1)
        fail("sigtimedwait into a heap siginfo: %d (%s), si_signo %d: the signal is lost", got,
             got < 0 ? strerror(errno) : "ok", si->si_signo);
    if (r->ncalls % 8192 == 0) {
        int code = (int)(r->ncalls / 8192 % 100);
        pid_t pid = fork();
        if (pid == 0)
            _exit(code);
        int *status = (int *)((char *)o[3] + 64);
        int how = (int)(r->ncalls / 8192 % 3);
        pid_t w = pid < 0 ? -1
                  : how == 0 ? waitpid(pid, status, 0)
                  : how == 1 ? wait4(pid, status, 0, (struct rusage *)o[0])
                             : (waitid(P_PID, (id_t)pid, si, WEXITED) == 0 ? pid : -1);
        int st = how == 2 ? si->si_status : WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
        if (w != pid || st != code)
            fail("%s of a child exiting with %d: returned %d (%s), status %d",
                 how == 0 ? "waitpid" : how == 1 ? "wait4" : "waitid", code, (int)w,
                 w < 0 ? strerror(errno) : "ok", st);
    }
    atomic_fetch_add(&g_other_calls, 20);
}

static void *reader(void *arg) {
    reader_t *r = arg;
    new_generation(r);
    while (!atomic_load(&g_stop)) {
        size_t len;
        unsigned char *buf = pick_buf(r, &len);
        pick_meta(r);
        uint64_t x = rng_next(&r->rs);
        if (x & 1) /* half the time: a random length, at least 8 bytes */
            len = 8 + (size_t)((x >> 8) % (len - 7));
        int how = (int)((x >> 32) % 16), ok;
        switch (r->kind) {
        case 0: /* pipe: read, readv, some raw reads */
            ok = stream_round(r, buf, len, how < 7 ? 0 : how < 14 ? 1 : 2);
            break;
        case 1:
            ok = file_round(r, buf, len, how & 1);
            break;
        case 2:
            ok = stream_round(r, buf, len, 3 + how % 3);
            break;
        default:
            ok = dgram_round(r, buf, len, how % 4);
            break;
        }
        if (!ok && atomic_load(&g_fail) > 50)
            break;
        if ((r->ncalls & 15) == 0)
            more_round(r, buf, len);
        if ((r->ncalls & 63) == 0)
            rare_round(r, buf, len);
        if (r->ncalls % GEN_CALLS == 0)
            new_generation(r);
    }
    gen_retire(r->gen);
    return NULL;
}

static size_t ctl_size(const char *name) {
    size_t v = 0, len = sizeof v;
    if (!g_ctl || g_ctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int main(int argc, char **argv) {
    if (argc > 1)
        g_target = atol(argv[1]);
    if (argc > 2)
        g_max_s = atof(argv[2]);
    if (argc > 3)
        g_seed = strtoull(argv[3], NULL, 0);
    if (g_target < 1 || g_max_s <= 0) {
        fprintf(stderr, "usage: %s [calls] [max-seconds] [seed]\n", argv[0]);
        return 2;
    }
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");

    reader_t rd[4];
    memset(rd, 0, sizeof rd);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    nonblock(fds[0]);
    rd[0].rfd = fds[0], rd[0].wfd = fds[1];

    char path[] = "/tmp/mesh_efault.XXXXXX";
    int ffd = mkstemp(path);
    if (ffd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(path);
    unsigned char *content = map_array(FILE_BYTES);
    for (uint64_t i = 0; i < FILE_BYTES; i++)
        content[i] = file_byte(i);
    if (!write_all(ffd, content, FILE_BYTES))
        return 1;
    munmap(content, FILE_BYTES);
    rd[1].rfd = rd[1].wfd = ffd;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
        perror("socketpair");
        return 1;
    }
    nonblock(fds[0]);
    rd[2].rfd = fds[0], rd[2].wfd = fds[1];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) != 0) {
        perror("socketpair");
        return 1;
    }
    rd[3].rfd = fds[0], rd[3].wfd = fds[1];

    for (int k = 0; k < 4; k++) { /* an epoll set that always has one writable pipe */
        int p[2];
        struct epoll_event ev = {.events = EPOLLOUT};
        rd[k].epfd = epoll_create1(EPOLL_CLOEXEC);
        if (rd[k].epfd < 0 || pipe(p) != 0 || epoll_ctl(rd[k].epfd, EPOLL_CTL_ADD, p[1], &ev) != 0) {
            perror("epoll");
            return 1;
        }
    }
    g_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_listen_addr.sun_family = AF_UNIX;
    snprintf(g_listen_addr.sun_path, sizeof g_listen_addr.sun_path, "/tmp/mesh_efault.%d.sock", (int)getpid());
    unlink(g_listen_addr.sun_path);
    if (g_listen_fd < 0 || bind(g_listen_fd, (struct sockaddr *)&g_listen_addr, sizeof g_listen_addr) != 0 ||
        listen(g_listen_fd, 64) != 0) {
        perror("listening socket");
        return 1;
    }
    sigset_t usr1; /* the readers take SIGUSR1 with sigtimedwait */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    pthread_t pt, mt, rt[4];
    pthread_create(&pt, NULL, freer, NULL);
    pthread_create(&mt, NULL, mesher, NULL);
    for (int k = 0; k < 4; k++) {
        rd[k].kind = k;
        rd[k].tid = k;
        rd[k].rs = g_seed ^ (0x3131ULL * (uint64_t)(k + 1));
        rd[k].seq = (uint64_t)k << 48;
        pthread_create(&rt[k], NULL, reader, &rd[k]);
    }
    double t0 = now_s(), el;
    while ((el = now_s() - t0) < g_max_s && atomic_load(&g_calls) < g_target && atomic_load(&g_fail) <= 50) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&g_stop, 1);
    for (int k = 0; k < 4; k++)
        pthread_join(rt[k], NULL);
    pthread_join(mt, NULL);
    atomic_store(&g_stop, 2);
    pthread_join(pt, NULL);

    unlink(g_listen_addr.sun_path);
    size_t mesh_count = ctl_size("stats.mesh_count");
    if (g_ctl && mesh_count == 0)
        fail("under libmesh, but stats.mesh_count is 0: nothing was meshed");
    long f = atomic_load(&g_fail);
    printf("mesh_efault: %s: %ld calls in %.1f s (pipe %ld, file %ld, stream %ld, dgram %ld), %ld failures, "
           "%ld short reads (stream, resumed), %ld datagrams lost by recvmmsg (known limitation), %ld raw EFAULTs "
           "seen by syscall(SYS_read), %ld other wrapped calls (poll, stat, accept, wait, ...), %ld "
           "generations, %ld compactions; %s mesh_count %zu\n",
           f ? "FAILED" : "OK", atomic_load(&g_calls), el, atomic_load(&g_kind_calls[0]),
           atomic_load(&g_kind_calls[1]), atomic_load(&g_kind_calls[2]), atomic_load(&g_kind_calls[3]), f,
           atomic_load(&g_short_reads), atomic_load(&g_lost_dgrams), atomic_load(&g_raw_efault),
           atomic_load(&g_other_calls),
           atomic_load(&g_produced), atomic_load(&g_compacts), g_ctl ? "libmesh:" : "no libmesh:", mesh_count);
    return f ? 1 : 0;
}
