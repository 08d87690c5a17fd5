/*
 * fork_isolation.c - fork() gives the child a true snapshot of a heap that other
 * threads are writing, and parent and child never see each other's writes.
 *
 * A set of heap objects (several small size classes, and large blocks of 1.25 to 3 MiB)
 * is rewritten continuously by two writer threads; each object belongs to one writer.
 * An object is a seqlock: word 0 is a sequence number s, the other words hold
 * val(tag, object, generation), where tag names the process that wrote it.  A writer
 * sets s odd, stores the words of generation (s+1)/2 in address order, then sets s
 * even.  So in any snapshot of memory taken at one instant (which is what the kernel's
 * fork gives: the writer stalls at its first store after the snapshot), an object with
 * an even s holds generation s/2 in every word, and one with an odd s holds a prefix of
 * generation (s+1)/2 followed by generation (s-1)/2 (x86 stores become visible in
 * program order).  Anything else (words from different moments, another object's or
 * another process's values) is a torn or foreign snapshot and fails the test.
 *
 * The main thread forks 50 times (every fifth fork from a short-lived thread) while the
 * writers run.  Each child: checks the snapshot of every object; checks that calloc
 * returns zeroed memory (various sizes, also after filling and freeing ~24 MB, and after
 * malloc_trim); overwrites every object with its own tag; tells the parent, which scans
 * every word of every object for any tag but its own (a child's write visible in the
 * parent); then re-checks that it still sees exactly what it wrote (none of the
 * parent's continuing writes).  A few children start their own two writers and fork in
 * turn (three levels of children below the first process) with the same checks.  The
 * parent also checks calloc right after each fork.  Finally every object must still
 * be consistent in the parent.
 *
 * usage: fork_isolation [forks=50] [seed]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_util.h"

#define NCLASSES 7
#define PER_CLASS 48
#define NLARGE 4
#define NOBJ (NCLASSES * PER_CLASS + NLARGE)
#define NWRITERS 2
#define MAX_LEVEL 3
#define WAIT_MS 60000

static const size_t g_class_size[NCLASSES] = {16, 48, 128, 512, 2048, 8192, 40000};
static const size_t g_large_size[NLARGE] = {1280 * 1024, 1536 * 1024 + 8, 2 * 1024 * 1024 + 4096,
                                            3 * 1024 * 1024 + 40};

typedef struct obj {
    volatile uint64_t *w; /* w[0] = sequence, w[1..n-1] = values */
    size_t n;             /* words */
} obj_t;

static obj_t g_obj[NOBJ];
static int g_forks = 50;
static uint64_t g_seed = 0x150ULL;
static uint16_t g_tag = 1; /* this process's tag; the first process has 1 */
static int g_level;        /* 0 in the first process, 1 in its children, ... */
static const char *g_who = "parent";
static atomic_int g_stop;
static atomic_long g_rewrites;
static long g_checked_torn; /* objects a child found mid-write (odd sequence) */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    char buf[600];
    int n = snprintf(buf, sizeof buf, "fork_isolation: FAIL: %s (pid %d, level %d): ", g_who, (int)getpid(),
                     g_level);
    va_list ap;
    va_start(ap, fmt);
    stress_vsay(buf, sizeof buf, (size_t)n, fmt, ap);
    va_end(ap);
    _exit(1);
}

static void on_alarm(int sig) {
    (void)sig;
    char buf[160];
    snprintf(buf, sizeof buf, "fork_isolation: FAIL: %s (pid %d, level %d) timed out\n", g_who, (int)getpid(),
             g_level);
    stress_say(buf);
    _exit(1);
}

static inline uint64_t val(uint16_t tag, size_t obj, uint64_t gen) {
    return (uint64_t)tag << 48 | (uint64_t)(obj & 0xffff) << 32 | (gen & 0xffffffffULL);
}

static inline uint16_t tag_of(uint64_t v) { return (uint16_t)(v >> 48); }

/* One seqlock write of object i with tag: sequence odd, words in address order,
   sequence even. */
static void write_obj(size_t i, uint16_t tag) {
    volatile uint64_t *w = g_obj[i].w;
    uint64_t s = w[0] | 1;
    w[0] = s;
    atomic_signal_fence(memory_order_seq_cst);
    uint64_t v = val(tag, i, (s + 1) / 2);
    for (size_t k = 1; k < g_obj[i].n; k++)
        w[k] = v;
    atomic_signal_fence(memory_order_seq_cst);
    w[0] = s + 1;
}

static const char *obj_desc(size_t i) {
    static char buf[64];
    snprintf(buf, sizeof buf, "object %zu (%zu bytes at %p)", i, g_obj[i].n * 8, (void *)g_obj[i].w);
    return buf;
}

/* Single-threaded check (a fork child, or after the writers stopped) that object i is
   a consistent snapshot written by tag.  Returns 1 when it was caught mid-write. */
static int check_snapshot(size_t i, uint16_t tag, const char *when) {
    const volatile uint64_t *w = g_obj[i].w;
    uint64_t s = w[0];
    size_t n = g_obj[i].n;
    if (s % 2 == 0) {
        uint64_t want = val(tag, i, s / 2);
        for (size_t k = 1; k < n; k++)
            if (w[k] != want)
                die("%s: %s is torn or foreign: sequence %llu (even) but word %zu is %#llx, expected %#llx", when,
                    obj_desc(i), (unsigned long long)s, k, (unsigned long long)w[k], (unsigned long long)want);
        return 0;
    }
    uint64_t newer = val(tag, i, (s + 1) / 2), older = val(tag, i, (s - 1) / 2);
    size_t k = 1;
    while (k < n && w[k] == newer)
        k++;
    for (size_t j = k; j < n; j++)
        if (w[j] != older)
            die("%s: %s is torn or foreign: sequence %llu (odd, written up to word %zu) but word %zu is %#llx, "
                "expected %#llx (older) - words from different moments",
                when, obj_desc(i), (unsigned long long)s, k, j, (unsigned long long)w[j], (unsigned long long)older);
    return 1;
}

static void check_all(uint16_t tag, const char *when) {
    for (size_t i = 0; i < NOBJ; i++)
        g_checked_torn += check_snapshot(i, tag, when);
}

/* The writers may be running: every word must carry this process's tag. */
static void scan_tags(const char *when) {
    for (size_t i = 0; i < NOBJ; i++) {
        const volatile uint64_t *w = g_obj[i].w;
        for (size_t k = 1; k < g_obj[i].n; k++) {
            uint64_t v = w[k];
            if (tag_of(v) != g_tag || ((v >> 32) & 0xffff) != (i & 0xffff))
                die("%s: %s word %zu holds %#llx, written by tag %#x, not by this process (tag %#x)%s", when,
                    obj_desc(i), k, (unsigned long long)v, tag_of(v), g_tag,
                    tag_of(v) > g_tag ? ": a child's write is visible in the parent" : "");
        }
    }
}

/* ---- writer threads ---- */

static void *writer_main(void *arg) {
    size_t me = (size_t)(uintptr_t)arg;
    long n = 0;
    uint16_t tag = g_tag;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        for (size_t i = me; i < NOBJ; i += NWRITERS) {
            write_obj(i, tag);
            n++;
        }
    }
    atomic_fetch_add(&g_rewrites, n);
    return NULL;
}

static pthread_t g_writers[NWRITERS];

static void start_writers(void) {
    atomic_store(&g_stop, 0);
    for (size_t i = 0; i < NWRITERS; i++)
        if (pthread_create(&g_writers[i], NULL, writer_main, (void *)(uintptr_t)i) != 0)
            die("pthread_create failed");
}

static void stop_writers(void) {
    atomic_store(&g_stop, 1);
    for (size_t i = 0; i < NWRITERS; i++)
        pthread_join(g_writers[i], NULL);
}

/* ---- calloc ---- */

static void must_be_zero(const unsigned char *p, size_t n, const char *when) {
    const uint64_t *w = (const uint64_t *)p;
    size_t words = n / 8;
    for (size_t k = 0; k < words; k++)
        if (w[k])
            for (size_t b = k * 8; b < k * 8 + 8; b++)
                if (p[b])
                    die("%s: calloc(%zu) returned %p whose byte %zu is %#x, not 0", when, n, (void *)p, b, p[b]);
    for (size_t b = words * 8; b < n; b++)
        if (p[b])
            die("%s: calloc(%zu) returned %p whose byte %zu is %#x, not 0", when, n, (void *)p, b, p[b]);
}

#define NCALLOC 1200

static size_t calloc_size(uint64_t *rs) {
    uint64_t r = stress_rng(rs), pick = r % 100;
    if (pick == 0)
        return 1024 * 1024 + (size_t)(r >> 8) % (1024 * 1024);
    if (pick <= 10)
        return 4096 + (size_t)(r >> 8) % 60000;
    return 1 + (size_t)(r >> 8) % 2048;
}

/* calloc of assorted sizes, then ~20 MB filled with garbage and freed (with trim: then
   malloc_trim(0)), then calloc of the same sizes (served from the freed memory) - every
   byte checked. */
static void calloc_checks(uint64_t seed, int trim, const char *when) {
    static const size_t fixed[] = {1, 7, 16, 24, 100, 256, 1000, 4096, 5000, 16384, 65536, 100000, 300000, 1 << 20,
                                   (3 << 20) + 1};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        unsigned char *p = calloc(1, fixed[i]);
        if (!p)
            die("%s: calloc(%zu) failed", when, fixed[i]);
        must_be_zero(p, fixed[i], when);
        memset(p, 0xa5, fixed[i]);
        free(p);
        p = calloc(fixed[i], 1);
        if (!p)
            die("%s: calloc(%zu) failed", when, fixed[i]);
        must_be_zero(p, fixed[i], when);
        free(p);
    }
    void **ptr = malloc(sizeof(void *) * NCALLOC);
    size_t *sz = malloc(sizeof(size_t) * NCALLOC);
    if (!ptr || !sz)
        die("%s: malloc failed", when);
    uint64_t rs = seed;
    {
        uint64_t rs0 = rs;
        size_t total = 0;
        for (int i = 0; i < NCALLOC; i++) {
            sz[i] = calloc_size(&rs);
            total += sz[i];
            ptr[i] = malloc(sz[i]);
            if (!ptr[i])
                die("%s: malloc(%zu) failed", when, sz[i]);
            memset(ptr[i], 0x5a + i, sz[i]);
        }
        for (int i = 0; i < NCALLOC; i++)
            free(ptr[i]);
        if (trim)
            malloc_trim(0);
        rs = rs0;
        for (int i = 0; i < NCALLOC; i++) {
            size_t n = calloc_size(&rs);
            ptr[i] = calloc(1, n);
            if (!ptr[i])
                die("%s: calloc(%zu) failed after freeing %zu bytes", when, n, total);
            must_be_zero(ptr[i], n, when);
        }
        for (int i = 0; i < NCALLOC; i++)
            free(ptr[i]);
    }
    free(ptr);
    free(sz);
}

/* ---- forking ---- */

static void put(int fd, char c) {
    while (write(fd, &c, 1) != 1)
        if (errno != EINTR)
            die("pipe write: %s", strerror(errno));
}

/* Reads one byte; 0 when the other side closed. */
static char get(int fd, const char *waiting_for) {
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, WAIT_MS)) < 0 && errno == EINTR) {
    }
    if (r == 0)
        die("no word from the other side within %d s while waiting for %s", WAIT_MS / 1000, waiting_for);
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return n == 1 ? c : 0;
}

static void run_forks(int count, const int *nest, int nnest);

static int g_nested_children; /* forks done by this process's descendants */
static long g_children_torn;  /* objects this process's descendants caught mid-write */

/* The child's last message: it is done, and what its own children did. */
typedef struct end_msg {
    char done;
    int nested;
    long torn;
} end_msg_t;

/* A child's life after fork (any level). */
static void child_main(int index, uint16_t parent_tag, int nest, int to_parent, int from_parent) {
    g_level++;
    g_tag = (uint16_t)(g_level << 12 | (index & 0xfff));
    static char who[64];
    snprintf(who, sizeof who, "child %d of tag %#x", index, parent_tag);
    g_who = who;
    alarm(120);
    check_all(parent_tag, "right after fork");
    calloc_checks(g_seed ^ (uint64_t)g_tag * 0x9e37ULL, index % 2, "calloc in the child");
    check_all(parent_tag, "after calloc checks in the child");
    for (size_t i = 0; i < NOBJ; i++)
        write_obj(i, g_tag);
    check_all(g_tag, "after writing its own values");
    put(to_parent, 'w');
    if (get(from_parent, "the parent's scan") != 'g')
        die("the parent went away");
    check_all(g_tag, "after the parent scanned (the parent's writers kept writing)");
    g_nested_children = 0;
    g_children_torn = 0;
    if (nest && g_level < MAX_LEVEL) {
        snprintf(who, sizeof who, "child %d of tag %#x, forking itself", index, parent_tag);
        start_writers();
        static const int nest_first[] = {0};
        run_forks(2, nest_first, 1);
        stop_writers();
        check_all(g_tag, "after its own writers stopped");
        g_nested_children += 2;
    }
    end_msg_t m = {'d', g_nested_children, g_checked_torn + g_children_torn};
    if (write(to_parent, &m, sizeof m) != (ssize_t)sizeof m)
        die("pipe write: %s", strerror(errno));
    _exit(0);
}

typedef struct fork_req {
    int index, nest;
    int to_parent[2], from_parent[2];
    uint16_t tag;
    pid_t pid;
    int err;
} fork_req_t;

static void *fork_thread(void *arg) {
    fork_req_t *r = arg;
    r->pid = fork();
    r->err = errno;
    if (r->pid == 0) {
        close(r->to_parent[0]);
        close(r->from_parent[1]);
        child_main(r->index, r->tag, r->nest, r->to_parent[1], r->from_parent[0]);
    }
    return NULL;
}

static void one_fork(int index, int nest, int from_thread) {
    fork_req_t r = {.index = index, .nest = nest, .tag = g_tag};
    if (pipe(r.to_parent) != 0 || pipe(r.from_parent) != 0)
        die("pipe: %s", strerror(errno));
    if (from_thread) {
        pthread_t t;
        if (pthread_create(&t, NULL, fork_thread, &r) != 0)
            die("pthread_create failed");
        pthread_join(t, NULL);
    } else {
        fork_thread(&r);
    }
    if (r.pid < 0)
        die("fork %d failed: %s", index, strerror(r.err));
    close(r.to_parent[1]);
    close(r.from_parent[0]);
    if (index % 3 == 0)
        calloc_checks(g_seed ^ (uint64_t)index << 20 ^ (uint64_t)g_tag, index % 2, "calloc in the parent after fork");
    char c = get(r.to_parent[0], "the child's 'written'");
    end_msg_t m = {0, 0, 0};
    if (c == 'w') {
        scan_tags("after the child wrote its values");
        put(r.from_parent[1], 'g');
        struct pollfd p = {r.to_parent[0], POLLIN, 0};
        if (poll(&p, 1, WAIT_MS) == 1 && read(r.to_parent[0], &m, sizeof m) == (ssize_t)sizeof m) {
            g_nested_children += m.nested;
            g_children_torn += m.torn;
        }
    }
    int st = 0;
    if (waitpid(r.pid, &st, 0) != r.pid)
        die("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
        die("child %d (forked from %s) died of signal %d%s", index, from_thread ? "a thread" : "the main thread",
            WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
    if (WEXITSTATUS(st) != 0)
        die("child %d exited with status %d", index, WEXITSTATUS(st));
    if (m.done != 'd')
        die("child %d exited 0 without finishing its protocol", index);
    close(r.to_parent[0]);
    close(r.from_parent[1]);
    scan_tags("after the child exited");
}

/* Forks count children while the writers run; children whose index is in nest fork
   again themselves. */
static void run_forks(int count, const int *nest, int nnest) {
    for (int i = 0; i < count; i++) {
        int n = 0;
        for (int j = 0; j < nnest; j++)
            n |= nest[j] == i;
        one_fork(i, n, i % 5 == 4);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* let the writers get going again */
    }
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_forks = atoi(argv[1]);
    if (argc > 2)
        g_seed = strtoull(argv[2], NULL, 0);
    if (g_forks < 1) {
        fprintf(stderr, "usage: fork_isolation [forks] [seed]\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    alarm(240);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t rs = g_seed;
    /* interleave the classes so objects of one class are not all adjacent */
    for (size_t i = 0; i < NCLASSES * PER_CLASS; i++) {
        size_t c = (i + stress_rng(&rs) % 3) % NCLASSES;
        g_obj[i].n = g_class_size[c] / 8;
    }
    for (size_t i = 0; i < NLARGE; i++)
        g_obj[NCLASSES * PER_CLASS + i].n = g_large_size[i] / 8;
    for (size_t i = 0; i < NOBJ; i++) {
        g_obj[i].w = malloc(g_obj[i].n * 8);
        if (!g_obj[i].w)
            die("malloc(%zu) failed", g_obj[i].n * 8);
        g_obj[i].w[0] = 0;
        write_obj(i, g_tag);
    }
    check_all(g_tag, "before the first fork");

    start_writers();
    static const int nest[] = {7, 23, 41};
    run_forks(g_forks, nest, 3);
    stop_writers();
    check_all(g_tag, "at the end, after the writers stopped");
    scan_tags("at the end");
    calloc_checks(g_seed ^ 0xe0dULL, 1, "calloc at the end");
    for (size_t i = 0; i < NOBJ; i++)
        free((void *)g_obj[i].w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fork_isolation: ok: %d forks + %d nested; %ld object rewrites by the writers; children found %ld "
           "objects mid-write (consistent); %.1f s\n",
           g_forks, g_nested_children, atomic_load(&g_rewrites), g_children_torn, secs);
    return 0;
}
