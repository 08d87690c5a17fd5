/*
 * fork_syscalls.c - after fork(), the kernel can write into heap buffers that were
 * allocated (and filled) before the fork, in the parent and in the child.
 *
 * Heap buffers of 16 B to 1 MiB are allocated and filled before each fork.  Right after
 * fork, parent and child each run thousands of syscalls whose destination is one of
 * those buffers, the first access to every buffer after the fork being the syscall
 * itself (no user-space store touches it first): read() from a pipe, pread() and
 * preadv() from a file, recv(MSG_WAITALL) from a stream socketpair, readv() from a pipe
 * into three buffers at once, recvmsg() from a datagram socketpair.  Every call must
 * return the full length (no EFAULT, no short read) and the bytes must be the ones
 * sent.  In the parent a second thread does the same on half of the buffers, a third
 * thread is blocked in read() into a pre-fork buffer while the fork happens (the data
 * arrives after the fork), and a fourth keeps doing such syscalls into its own buffers
 * before, during and after the fork.  Several rounds; the child must exit 0.
 *
 * usage: fork_syscalls [rounds=6] [ops-per-process=5000] [seed]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_util.h"

#define NBUF 240
#define NBUSY 40 /* buffers of the parent's busy thread */
#define FILE_SIZE (4u << 20)
#define MAX_MSG 65536 /* fits a pipe's and a socket's buffer: the writer never blocks */
#define INFLIGHT_SIZE (48 * 1024)

static int g_rounds = 6, g_ops = 5000;
static uint64_t g_seed = 0x5c5ca11ULL;
static const char *g_who = "parent";
static int g_file = -1;
static char g_file_path[64];

typedef struct buf {
    unsigned char *p;
    size_t n;
} buf_t;
static buf_t g_buf[NBUF + NBUSY]; /* [NBUF..) belong to the busy thread */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    char buf[500];
    int n = snprintf(buf, sizeof buf, "fork_syscalls: FAIL: %s (pid %d): ", g_who, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    stress_vsay(buf, sizeof buf, (size_t)n, fmt, ap);
    va_end(ap);
    if (g_file_path[0] && strcmp(g_who, "parent") == 0)
        unlink(g_file_path);
    _exit(1);
}

static void on_alarm(int sig) {
    (void)sig;
    stress_say("fork_syscalls: FAIL: timed out (a process or thread hangs)\n");
    _exit(1);
}

static inline unsigned char file_byte(uint64_t off) { return (unsigned char)(off * 7 + (off >> 9) * 13 + (off >> 17)); }

static void gen(unsigned char *p, size_t n, uint64_t key) {
    uint64_t s = key;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = stress_rng(&s);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (unsigned char)stress_rng(&s);
}

static const char *op_name[] = {"read(pipe)", "pread(file)", "recv(socketpair, MSG_WAITALL)", "readv(pipe)",
                                "preadv(file)", "recvmsg(datagram socketpair)"};
#define NOPS 6

/* A syscall's result: the full length, or the test fails naming the call. */
static void expect_len(ssize_t r, size_t want, int op, const void *dst, size_t dstn, long iter) {
    if (r < 0)
        die("%s into a pre-fork buffer %p (%zu bytes) failed with %s%s (op %ld)", op_name[op], dst, dstn,
            errno == EFAULT ? "EFAULT" : "", errno == EFAULT ? "" : strerror(errno), iter);
    if ((size_t)r != want)
        die("%s into a pre-fork buffer %p (%zu bytes) returned %zd, not %zu: short read (op %ld)", op_name[op],
            dst, dstn, r, want, iter);
}

static void same(const unsigned char *got, const unsigned char *want, size_t n, int op, long iter) {
    if (memcmp(got, want, n) != 0) {
        size_t i = 0;
        while (got[i] == want[i])
            i++;
        die("%s delivered wrong bytes into %p: byte %zu of %zu is %#x, expected %#x (op %ld)", op_name[op],
            (const void *)got, i, n, got[i], want[i], iter);
    }
}

static void write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write to a pipe/socket: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

#define RETRY(call)                                                                                             \
    ({                                                                                                          \
        ssize_t r_;                                                                                             \
        while ((r_ = (call)) < 0 && errno == EINTR) {                                                           \
        }                                                                                                       \
        r_;                                                                                                     \
    })

/* Thousands of syscalls into the buffers listed in idx (a random order, so the first
   access after fork to each of them is a syscall). */
static void io_work(const int *idx, int nidx, long ops, uint64_t seed) {
    int pfd[2], sv[2], dg[2];
    if (pipe(pfd) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
        socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) != 0)
        die("pipe/socketpair: %s", strerror(errno));
    int big = MAX_MSG * 2;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(dg[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(dg[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    unsigned char *src = malloc(MAX_MSG), *want = malloc(1 << 20);
    if (!src || !want)
        die("malloc failed");
    uint64_t rs = seed;
    for (long it = 0; it < ops; it++) {
        buf_t *b = &g_buf[idx[it % nidx]];
        int op = (int)((it / nidx + (unsigned long)idx[it % nidx]) % NOPS);
        size_t n = b->n < MAX_MSG ? b->n : MAX_MSG;
        uint64_t key = stress_rng(&rs);
        switch (op) {
        case 0: /* read from a pipe */
            gen(src, n, key);
            write_all(pfd[1], src, n);
            expect_len(RETRY(read(pfd[0], b->p, n)), n, op, b->p, b->n, it);
            same(b->p, src, n, op, it);
            break;
        case 1:   /* pread from the file */
        case 4: { /* preadv: the buffer split in two */
            size_t m = b->n < FILE_SIZE / 4 ? b->n : FILE_SIZE / 4;
            uint64_t off = stress_rng(&rs) % (FILE_SIZE - m);
            for (size_t i = 0; i < m; i++)
                want[i] = file_byte(off + i);
            if (op == 1) {
                expect_len(RETRY(pread(g_file, b->p, m, (off_t)off)), m, op, b->p, b->n, it);
            } else {
                struct iovec iov[2] = {{b->p, m / 2}, {b->p + m / 2, m - m / 2}};
                expect_len(RETRY(preadv(g_file, iov, 2, (off_t)off)), m, op, b->p, b->n, it);
            }
            same(b->p, want, m, op, it);
            break;
        }
        case 2: /* recv from a stream socketpair */
            gen(src, n, key);
            write_all(sv[0], src, n);
            expect_len(RETRY(recv(sv[1], b->p, n, MSG_WAITALL)), n, op, b->p, b->n, it);
            same(b->p, src, n, op, it);
            break;
        case 3: { /* readv from a pipe into three buffers */
            buf_t *b2 = &g_buf[idx[(it + 1) % nidx]], *b3 = &g_buf[idx[(it + 2) % nidx]];
            size_t n1 = b->n < MAX_MSG / 4 ? b->n : MAX_MSG / 4;
            size_t n2 = b2->n < MAX_MSG / 4 ? b2->n : MAX_MSG / 4;
            size_t n3 = b3->n < MAX_MSG / 4 ? b3->n : MAX_MSG / 4;
            if (b2 == b || b3 == b || b2 == b3)
                n2 = n3 = 0;
            gen(src, n1 + n2 + n3, key);
            write_all(pfd[1], src, n1 + n2 + n3);
            struct iovec iov[3] = {{b->p, n1}, {b2->p, n2}, {b3->p, n3}};
            expect_len(RETRY(readv(pfd[0], iov, 3)), n1 + n2 + n3, op, b->p, b->n, it);
            same(b->p, src, n1, op, it);
            same(b2->p, src + n1, n2, op, it);
            same(b3->p, src + n1 + n2, n3, op, it);
            break;
        }
        default: { /* recvmsg of one datagram into two iovecs */
            size_t m = n < 32768 ? n : 32768;
            gen(src, m, key);
            if (RETRY(send(dg[0], src, m, 0)) != (ssize_t)m)
                die("send of a %zu-byte datagram: %s", m, strerror(errno));
            struct iovec iov[2] = {{b->p, m / 3}, {b->p + m / 3, b->n - m / 3}};
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
            expect_len(RETRY(recvmsg(dg[1], &mh, 0)), m, op, b->p, b->n, it);
            same(b->p, src, m, op, it);
            break;
        }
        }
    }
    free(src);
    free(want);
    close(pfd[0]);
    close(pfd[1]);
    close(sv[0]);
    close(sv[1]);
    close(dg[0]);
    close(dg[1]);
}

static void shuffle(int *idx, int n, uint64_t *rs) {
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(stress_rng(rs) % (uint64_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---- parent threads ---- */

typedef struct work {
    const int *idx;
    int nidx;
    long ops;
    uint64_t seed;
} work_t;

static void *work_thread(void *arg) {
    work_t *w = arg;
    io_work(w->idx, w->nidx, w->ops, w->seed);
    return NULL;
}

static atomic_int g_busy_stop;
static atomic_long g_busy_calls;

static void *busy_thread(void *arg) {
    uint64_t rs = (uint64_t)(uintptr_t)arg;
    int idx[NBUSY];
    for (int i = 0; i < NBUSY; i++)
        idx[i] = NBUF + i;
    while (!atomic_load(&g_busy_stop)) {
        io_work(idx, NBUSY, 200, stress_rng(&rs));
        atomic_fetch_add(&g_busy_calls, 200);
    }
    return NULL;
}

typedef struct inflight {
    int pfd[2];
    unsigned char *buf; /* allocated and filled before the fork */
    atomic_int ready;
    ssize_t got;
    int err;
} inflight_t;

static void *inflight_reader(void *arg) {
    inflight_t *f = arg;
    atomic_store(&f->ready, 1);
    size_t have = 0;
    while (have < INFLIGHT_SIZE) {
        ssize_t r = read(f->pfd[0], f->buf + have, INFLIGHT_SIZE - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            f->err = r < 0 ? errno : 0;
            break;
        }
        have += (size_t)r;
    }
    f->got = (ssize_t)have;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_rounds = atoi(argv[1]);
    if (argc > 2)
        g_ops = atoi(argv[2]);
    if (argc > 3)
        g_seed = strtoull(argv[3], NULL, 0);
    if (g_rounds < 1 || g_ops < NBUF) {
        fprintf(stderr, "usage: fork_syscalls [rounds] [ops-per-process >= %d] [seed]\n", NBUF);
        return 2;
    }
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(240);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    const char *tmp = getenv("TMPDIR");
    snprintf(g_file_path, sizeof g_file_path, "%s/fork_syscalls.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    g_file = mkstemp(g_file_path);
    if (g_file < 0) {
        g_file_path[0] = 0;
        die("mkstemp: %s", strerror(errno));
    }
    {
        unsigned char *chunk = malloc(1 << 16);
        if (!chunk)
            die("malloc failed");
        for (uint64_t off = 0; off < FILE_SIZE; off += 1 << 16) {
            for (size_t i = 0; i < 1 << 16; i++)
                chunk[i] = file_byte(off + i);
            write_all(g_file, chunk, 1 << 16);
        }
        free(chunk);
    }

    uint64_t rs = g_seed;
    for (int i = 0; i < NBUF + NBUSY; i++) {
        uint64_t r = stress_rng(&rs);
        size_t n;
        if (i % 60 == 59)
            n = (256u << 10) + (size_t)(r % (768u << 10)); /* 256 KiB .. 1 MiB */
        else if (i % 3 == 0)
            n = 16384 + (size_t)(r % 49152);
        else if (i % 3 == 1)
            n = 1024 + (size_t)(r % 7168);
        else
            n = 16 + (size_t)(r % 1000);
        g_buf[i].n = n;
        g_buf[i].p = malloc(n);
        if (!g_buf[i].p)
            die("malloc(%zu) failed", n);
    }

    long calls = 0;
    for (int round = 0; round < g_rounds; round++) {
        for (int i = 0; i < NBUF + NBUSY; i++)
            memset(g_buf[i].p, 0xee ^ round, g_buf[i].n);
        atomic_store(&g_busy_stop, 0);
        pthread_t bt;
        if (pthread_create(&bt, NULL, busy_thread, (void *)(uintptr_t)(g_seed + (uint64_t)round)) != 0)
            die("pthread_create failed");
        inflight_t fl = {.buf = malloc(INFLIGHT_SIZE)};
        if (!fl.buf || pipe(fl.pfd) != 0)
            die("malloc/pipe failed");
        memset(fl.buf, 0xdd, INFLIGHT_SIZE);
        pthread_t rt;
        if (pthread_create(&rt, NULL, inflight_reader, &fl) != 0)
            die("pthread_create failed");
        while (!atomic_load(&fl.ready)) {
        }
        struct timespec ts = {0, 3000000};
        nanosleep(&ts, NULL); /* the reader is now blocked in read() */

        int idx[NBUF];
        uint64_t seed = g_seed ^ (uint64_t)(round + 1) * 0x51ed27ULL;
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            g_who = "child";
            alarm(120);
            uint64_t crs = seed ^ 0xc41d;
            shuffle(idx, NBUF, &crs);
            io_work(idx, NBUF, g_ops, crs);
            _exit(0);
        }
        /* parent: the in-flight read's data arrives now, after the fork */
        unsigned char *want = malloc(INFLIGHT_SIZE);
        if (!want)
            die("malloc failed");
        gen(want, INFLIGHT_SIZE, seed ^ 0xf1);
        write_all(fl.pfd[1], want, INFLIGHT_SIZE);
        /* parent: the main thread and a helper, each on half of the buffers */
        uint64_t prs = seed ^ 0x9a7e;
        shuffle(idx, NBUF, &prs);
        work_t w = {idx + NBUF / 2, NBUF - NBUF / 2, g_ops / 2, prs ^ 1};
        pthread_t ht;
        if (pthread_create(&ht, NULL, work_thread, &w) != 0)
            die("pthread_create failed");
        io_work(idx, NBUF / 2, g_ops - g_ops / 2, prs);
        pthread_join(ht, NULL);
        pthread_join(rt, NULL);
        atomic_store(&g_busy_stop, 1);
        pthread_join(bt, NULL);
        if (fl.got != INFLIGHT_SIZE)
            die("a read() blocked across fork into a pre-fork buffer got %zd of %d bytes (%s)", fl.got,
                INFLIGHT_SIZE, fl.err == EFAULT ? "EFAULT" : fl.err ? strerror(fl.err) : "end of file");
        same(fl.buf, want, INFLIGHT_SIZE, 0, -1);
        free(want);
        free(fl.buf);
        close(fl.pfd[0]);
        close(fl.pfd[1]);

        int st = 0;
        if (waitpid(pid, &st, 0) != pid)
            die("waitpid: %s", strerror(errno));
        if (WIFSIGNALED(st))
            die("round %d: the child died of signal %d%s", round, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
        if (WEXITSTATUS(st) != 0)
            die("round %d: the child exited with status %d", round, WEXITSTATUS(st));
        calls += 2L * g_ops + 1;
    }
    for (int i = 0; i < NBUF + NBUSY; i++)
        free(g_buf[i].p);
    calls += atomic_load(&g_busy_calls);
    close(g_file);
    unlink(g_file_path);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fork_syscalls: ok: %d rounds, %ld syscalls into pre-fork buffers (parent and child), no EFAULT or "
           "short read, %.1f s\n",
           g_rounds, calls, secs);
    return 0;
}
