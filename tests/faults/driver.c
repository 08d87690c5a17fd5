/*
 * driver.c - the fault-injection suite's workload: exercises the heap in phases and
 * checks every object it keeps (a pattern per object from its tag), while failshim,
 * a seccomp filter or a resource limit makes the system under the heap fail.
 *
 * Phases: start-up (bookkeeping is static; the first malloc initialises the heap),
 * then arm the injection (failshim_arm() when the shim is loaded with FAIL_ARM=manual;
 * --seccomp=CALLS installs a filter here), many small objects of meshable sizes
 * (16..2048 B), a random 80% freed, mesh.compact, a second thread allocating and
 * freeing across threads, fork #1 (the child checks every object, allocates, frees,
 * compacts and exits 0), realloc chains, calloc (zeroed) of small to multi-MiB sizes
 * with reuse of freed memory, aligned allocations, large objects (1..64 MiB, first and
 * last pages touched), descriptor trouble (--close-fds, --fd-hog), fork #2, large
 * objects freed and calloc'd again, malloc_trim(0), mesh.compact, a last check of
 * everything, then every object freed.
 *
 * malloc (or calloc, realloc, ...) returning NULL is counted: with errno ENOMEM it is
 * the "out of memory" outcome (null_enomem), with anything else a failure
 * (null_other). The driver never dies of a NULL: the object is simply not kept.
 *
 * Output: stdout only (stderr stays libmesh's), one result line at the end:
 *   driver: result=ok|enomem|FAIL kept=... corrupt=0 null_enomem=0 null_other=0 ...
 * Exit: 0 when every kept object is intact, no NULL came with another errno, every
 * fork child exited 0 and the second thread ran; 1 otherwise (the lines before the
 * result line say what); 2 usage; 3 the watchdog fired (a hang; the line names the
 * phase and the process: driver or driver-child).
 *
 * usage: driver [--seed=N] [--small=N] [--seccomp=CALLS] [--seccomp-errno=E]
 *               [--close-fds] [--fd-hog] [--no-large] [--no-fork] [--watchdog=SECONDS]
 *               [--times] [--selftest]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "seccomp_fail.h"

#define MAX_SMALL 40000
#define MAX_THREAD 6000
#define MAX_MISC 4096
#define MAX_HOG 65536

typedef struct {
    unsigned char *p;
    size_t n;     // bytes the pattern covers (whole object, or see `sparse`)
    uint32_t tag; // pattern seed
    uint8_t sparse; // 1: only the first and last 4 KiB and one byte per MiB hold it
} obj_t;

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static obj_t small_objs[MAX_SMALL];
static obj_t thread_objs[MAX_THREAD];
static obj_t misc[MAX_MISC]; // realloc chains, calloc'd, aligned, large, post-fork
static unsigned nsmall, nthread_objs, nmisc;
static int hog_fds[MAX_HOG];

static uint64_t rng_state = 1;
static uint32_t next_tag = 1;
static mallctl_fn ctl;
static unsigned long (*shim_injected)(void);

static atomic_ulong null_enomem, null_other, corrupt, checked;
static unsigned long meshes_before, meshes_after;
static int child_fail, forks_done;
static const char *thread_outcome = "none";
static const char *role = "driver";
static int show_times;
static unsigned watchdog_s; // --watchdog: seconds one phase may take
static const char *volatile phase_now = "start-up"; // for the watchdog's message

/* ---- output: snprintf into a stack buffer, one write(2); no stdio buffers ------- */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s: ", role);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)(m < 0 ? 0 : m);
    if (len > sizeof buf - 2) len = sizeof buf - 2; // truncated by vsnprintf
    buf[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(1, buf + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

/* lap(WHAT): phase WHAT is over; the watchdog's clock starts again for the next one,
 * whose name the watchdog reports (--times: how long WHAT took). */
static const char *const next_phase[][2] = {
    {"start", "small objects and fragmentation"},
    {"small+fragment", "verify"},
    {"verify", "mesh.compact"},
    {"compact", "thread phase"},
    {"thread", "fork #1"},
    {"fork1", "realloc chains"},
    {"realloc", "calloc"},
    {"calloc", "aligned allocations"},
    {"aligned", "large objects"},
    {"large", "descriptors and fork #2"},
    {"fork2", "reuse after fork #2"},
    {"reuse", "malloc_trim"},
    {"trim", "final mesh.compact and checks"},
};

static void lap(const char *what) {
    if (watchdog_s) alarm(watchdog_s); // each phase gets the whole watchdog time
    for (size_t i = 0; i < sizeof next_phase / sizeof next_phase[0]; i++)
        if (strcmp(next_phase[i][0], what) == 0) phase_now = next_phase[i][1];
    static struct timespec last;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (show_times && last.tv_sec)
        out("time %s: %.3f s", what, (double)(now.tv_sec - last.tv_sec) + (now.tv_nsec - last.tv_nsec) / 1e9);
    last = now;
}

static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- patterns ---------------------------------------------------------------------- */
static inline unsigned char pat(uint32_t tag, size_t i) {
    uint32_t x = tag * 2654435761u + (uint32_t)(i >> 3) * 40503u;
    return (unsigned char)((x >> 13) ^ (uint32_t)i ^ (x >> 24));
}

#define SPARSE_EDGE 4096
static void fill_range(unsigned char *p, size_t from, size_t to, uint32_t tag) {
    for (size_t i = from; i < to; i++) p[i] = pat(tag, i);
}

static void fill(obj_t *o) {
    if (!o->sparse) {
        fill_range(o->p, 0, o->n, o->tag);
        return;
    }
    fill_range(o->p, 0, SPARSE_EDGE, o->tag);
    fill_range(o->p, o->n - SPARSE_EDGE, o->n, o->tag);
    for (size_t i = 1 << 20; i < o->n; i += 1 << 20) o->p[i] = pat(o->tag, i);
}

static int check_range(const unsigned char *p, size_t from, size_t to, uint32_t tag, size_t *bad) {
    for (size_t i = from; i < to; i++)
        if (p[i] != pat(tag, i)) {
            *bad = i;
            return 0;
        }
    return 1;
}

static int verify(const obj_t *o, const char *what) {
    if (!o->p) return 1;
    size_t bad = 0;
    int ok;
    if (!o->sparse) {
        ok = check_range(o->p, 0, o->n, o->tag, &bad);
    } else {
        ok = check_range(o->p, 0, SPARSE_EDGE, o->tag, &bad) &&
             check_range(o->p, o->n - SPARSE_EDGE, o->n, o->tag, &bad);
        for (size_t i = 1 << 20; ok && i < o->n; i += 1 << 20)
            if (o->p[i] != pat(o->tag, i)) ok = 0, bad = i;
    }
    atomic_fetch_add(&checked, 1);
    if (!ok) {
        if (atomic_fetch_add(&corrupt, 1) < 20)
            out("CORRUPT %s object %p size %zu tag %u: byte %zu is 0x%02x, want 0x%02x", what, (void *)o->p,
                o->n, o->tag, bad, o->p[bad], pat(o->tag, bad));
    }
    return ok;
}

static unsigned verify_set(obj_t *set, unsigned n, const char *what) {
    unsigned bad = 0;
    for (unsigned i = 0; i < n; i++) bad += !verify(&set[i], what);
    return bad;
}

static void verify_all(const char *when) {
    unsigned long before = atomic_load(&corrupt);
    verify_set(small_objs, nsmall, "small");
    verify_set(thread_objs, nthread_objs, "thread");
    verify_set(misc, nmisc, "misc");
    if (atomic_load(&corrupt) != before) out("corruption found at: %s", when);
}

/* ---- allocation with NULL accounting ------------------------------------------------ */
static void *note_null(void *p, int err, const char *what, size_t n) {
    if (p) return p;
    if (err == ENOMEM) {
        atomic_fetch_add(&null_enomem, 1);
    } else if (atomic_fetch_add(&null_other, 1) < 10) {
        out("%s(%zu) returned NULL with errno %d (%s), not ENOMEM", what, n, err, strerror(err));
    }
    return NULL;
}

static void *xmalloc(size_t n) {
    errno = 0;
    void *p = malloc(n);
    return note_null(p, errno, "malloc", n);
}

static void *xcalloc(size_t k, size_t n) {
    errno = 0;
    void *p = calloc(k, n);
    return note_null(p, errno, "calloc", k * n);
}

static void *xrealloc(void *old, size_t n) {
    errno = 0;
    void *p = realloc(old, n);
    return note_null(p, errno, "realloc", n);
}

/* posix_memalign reports through its return value, not errno. */
static void *xmemalign(size_t align, size_t n) {
    void *p = NULL;
    int rc = posix_memalign(&p, align, n);
    return note_null(rc ? NULL : p, rc, "posix_memalign", n);
}

static obj_t *misc_slot(void) { return nmisc < MAX_MISC ? &misc[nmisc++] : NULL; }

static void keep_misc(void *p, size_t n, int sparse) {
    obj_t *o = misc_slot();
    if (!o) {
        free(p);
        return;
    }
    o->p = p, o->n = n, o->tag = next_tag++, o->sparse = (uint8_t)sparse;
    fill(o);
}

static void free_obj(obj_t *o, const char *what) {
    if (!o->p) return;
    verify(o, what);
    free(o->p);
    o->p = NULL;
}

static size_t small_size(void) { return 16 + (size_t)(rnd() % (2048 - 16 + 1)); }

/* ---- libmesh statistics and actions, when libmesh is there ------------------------- */
static unsigned long stat_ul(const char *name) {
    size_t v = 0, len = sizeof v;
    if (!ctl || ctl(name, &v, &len, NULL, 0) != 0) return 0;
    return (unsigned long)v;
}

static void compact(void) {
    if (!ctl) return;
    size_t released = 0, len = sizeof released;
    (void)ctl("mesh.compact", &released, &len, NULL, 0);
}

static long vm_kb(const char *key) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strstr(buf, key);
    return p ? strtol(p + strlen(key) + 1, NULL, 10) : -1;
}

/* ---- phases -------------------------------------------------------------------------- */
static void phase_small(unsigned count) {
    for (unsigned i = 0; i < count && nsmall < MAX_SMALL; i++) {
        size_t n = small_size();
        unsigned char *p = xmalloc(n);
        obj_t *o = &small_objs[nsmall++];
        o->p = p, o->n = n, o->tag = next_tag++, o->sparse = 0;
        if (p) fill(o);
    }
}

static void phase_fragment(void) {
    for (unsigned i = 0; i < nsmall; i++)
        if (rnd() % 100 < 80) free_obj(&small_objs[i], "small");
}

/* The second thread: allocates its own objects (kept: the main thread frees half of
 * them later), checks and frees every third small object of the main thread's, and
 * churns. */
static void *thread_body(void *arg) {
    (void)arg;
    uint64_t s = 0x5eed;
    for (unsigned i = 0; i < MAX_THREAD; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = (s >> 33) % 7 == 0 ? 4096 + (s >> 40) % 60000 : 16 + (s >> 35) % 2033;
        obj_t *o = &thread_objs[i];
        o->p = xmalloc(n), o->n = n, o->tag = 0x40000000u + i, o->sparse = 0;
        if (o->p) fill(o);
    }
    nthread_objs = MAX_THREAD;
    for (unsigned i = 0; i < nsmall; i += 3) free_obj(&small_objs[i], "small (freed by thread 2)");
    for (unsigned r = 0; r < 20000; r++) {
        void *p = xmalloc(16 + r % 1000);
        if (p) memset(p, 0x5a, 16);
        free(p);
    }
    return NULL;
}

static void phase_thread(void) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, thread_body, NULL);
    if (rc == 0) {
        // meanwhile: churn here too, so both threads are in the heap at once
        for (unsigned r = 0; r < 20000; r++) {
            void *p = xmalloc(16 + (r * 37) % 2000);
            if (p) memset(p, 0xa5, 16);
            free(p);
        }
        pthread_join(t, NULL);
        thread_outcome = "ok";
    } else {
        thread_outcome = "inline"; // pthread_create refused (a limit): the same work here
        out("pthread_create failed (%s): the second thread's work runs inline", strerror(rc));
        thread_body(NULL);
    }
    // frees across threads: half of the other thread's objects
    for (unsigned i = 0; i < nthread_objs; i += 2) free_obj(&thread_objs[i], "thread (freed by main)");
}

static void child_work(void) {
    role = "driver-child";
    if (watchdog_s) alarm(watchdog_s); // a fork child has no alarm of its own
    verify_all("fork child, first check");
    obj_t local[512];
    for (unsigned i = 0; i < 512; i++) {
        size_t n = i % 64 == 0 ? (size_t)(1 + i % 3) << 20 : small_size();
        local[i].p = xmalloc(n), local[i].n = n, local[i].tag = 0x70000000u + i, local[i].sparse = n > (1 << 20);
        if (local[i].p) fill(&local[i]);
    }
    for (unsigned i = 0; i < 512; i += 2) free_obj(&local[i], "child");
    compact();
    for (unsigned i = 1; i < 512; i += 2) free_obj(&local[i], "child");
    // the child writes its own tag over some objects; the parent must not see it
    for (unsigned i = 0; i < nsmall; i += 5)
        if (small_objs[i].p) memset(small_objs[i].p, 0xee, small_objs[i].n);
    verify_set(misc, nmisc, "misc (child)");
    verify_set(thread_objs, nthread_objs, "thread (child)");
}

static void phase_fork(int which) {
    pid_t pid = fork();
    if (pid < 0) {
        out("fork #%d failed: %s", which, strerror(errno));
        child_fail++;
        return;
    }
    if (pid == 0) { // the child counts its own problems, not the parent's so far
        unsigned long before = atomic_load(&corrupt) + atomic_load(&null_other);
        child_work();
        unsigned long bad = atomic_load(&corrupt) + atomic_load(&null_other) - before;
        if (bad) out("fork #%d child: %lu problems", which, bad);
        exit(bad ? 1 : 0); // exit(), not _exit(): libmesh's and failshim's exit paths run
    }
    int st = 0;
    if (watchdog_s) alarm(watchdog_s + 3); // a hanging child reports first, itself
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    forks_done++;
    lap(which == 1 ? "fork1 (child)" : "fork2 (child)");
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        child_fail++;
        if (WIFSIGNALED(st))
            out("fork #%d child died of signal %d (%s)", which, WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            out("fork #%d child exited %d", which, WEXITSTATUS(st));
    }
    verify_all(which == 1 ? "after fork #1" : "after fork #2");
    lap(which == 1 ? "fork1 (verify)" : "fork2 (verify)");
    // the parent goes on allocating (on a fresh heap file, migrating what the fork froze)
    for (unsigned i = 0; i < 400; i++) {
        size_t n = small_size();
        void *p = xmalloc(n);
        if (p) keep_misc(p, n, 0);
    }
    compact();
}

static void phase_realloc(void) {
    for (unsigned c = 0; c < 48; c++) {
        size_t top = c % 8 == 0 ? (size_t)3 << 20 : c % 3 == 0 ? 300000 : 9000;
        uint32_t tag = next_tag++;
        size_t n = 8;
        unsigned char *p = xmalloc(n);
        if (!p) continue;
        fill_range(p, 0, n, tag);
        while (n < top) { // grow: the old bytes come along
            size_t m = n + n / 2 + 8;
            unsigned char *q = xrealloc(p, m);
            size_t bad;
            if (!q) { // the old block stays valid
                obj_t o = {p, n, tag, 0};
                verify(&o, "realloc (kept after a failed grow)");
                break;
            }
            if (!check_range(q, 0, n, tag, &bad)) {
                atomic_fetch_add(&corrupt, 1);
                out("CORRUPT realloc grow %zu->%zu: byte %zu", n, m, bad);
            }
            fill_range(q, n, m, tag);
            p = q, n = m;
        }
        while (n > 64) { // and shrink again
            size_t m = n / 3;
            unsigned char *q = xrealloc(p, m);
            if (!q) break;
            size_t bad;
            if (!check_range(q, 0, m, tag, &bad)) {
                atomic_fetch_add(&corrupt, 1);
                out("CORRUPT realloc shrink %zu->%zu: byte %zu", n, m, bad);
            }
            p = q, n = m;
        }
        obj_t *o = misc_slot();
        if (!o) {
            free(p);
            continue;
        }
        o->p = p, o->n = n, o->tag = tag, o->sparse = 0;
    }
}

static int all_zero(const unsigned char *p, size_t n, size_t *bad) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) {
            *bad = i;
            return 0;
        }
    return 1;
}

/* calloc'd memory must read zero, also where it reuses memory just freed dirty. For
 * big objects the first and last 64 KiB and one page per MiB are read. */
static void check_zero(const unsigned char *p, size_t n, const char *when) {
    size_t bad = 0;
    int ok;
    if (n <= (256 << 10)) {
        ok = all_zero(p, n, &bad);
    } else {
        ok = all_zero(p, 64 << 10, &bad);
        if (ok && !all_zero(p + n - (64 << 10), 64 << 10, &bad)) ok = 0, bad += n - (64 << 10);
        for (size_t off = 1 << 20; ok && off + 4096 <= n; off += 1 << 20)
            if (!all_zero(p + off, 4096, &bad)) ok = 0, bad += off;
    }
    if (!ok) {
        atomic_fetch_add(&corrupt, 1);
        out("CORRUPT calloc(%zu) %s: byte %zu is 0x%02x, not zero", n, when, bad, p[bad]);
    }
}

static void dirty_all(unsigned char *p, size_t n) {
    if (n <= (256 << 10)) {
        memset(p, 0xc3, n);
        return;
    }
    memset(p, 0xc3, 64 << 10);
    memset(p + n - (64 << 10), 0xc3, 64 << 10);
    for (size_t off = 1 << 20; off + 4096 <= n; off += 1 << 20) memset(p + off, 0xc3, 4096);
}

static void phase_calloc(int with_large) {
    static const size_t sizes[] = {16, 48, 100, 640, 2048, 4096, 20000, 65536, 300000, 1 << 20, 3 << 20, 9 << 20};
    unsigned nsizes = sizeof sizes / sizeof sizes[0] - (with_large ? 0 : 3);
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned i = 0; i < nsizes; i++) {
            size_t n = sizes[i];
            unsigned char *p[8];
            for (unsigned k = 0; k < 8; k++) { // calloc, check, dirty, free: the next round reuses it
                p[k] = xcalloc(1, n);
                if (p[k]) check_zero(p[k], n, round ? "(reused)" : "(fresh)");
                if (p[k]) dirty_all(p[k], n);
                if (n >= (1 << 20) && k >= 1) break;
            }
            for (unsigned k = 0; k < 8; k++) {
                if (n >= (1 << 20) && k >= 2) break;
                if (round == 2 && k == 0 && p[k]) { // keep one, as a checked object
                    keep_misc(p[k], n, n > (256 << 10));
                    continue;
                }
                free(p[k]);
            }
        }
        malloc_trim(0); // the freed pages go back (or fail to, under injection)
    }
}

static void phase_aligned(void) {
    for (unsigned i = 0; i < 64; i++) {
        size_t align = (size_t)16 << (i % 13); // 16 .. 64 KiB
        if (i % 16 == 15) align = (size_t)2 << 20;
        size_t n = 1 + rnd() % (i % 4 == 0 ? 100000 : 3000);
        void *p;
        switch (i % 4) {
        case 0: p = xmemalign(align, n); break;
        case 1: // errno read after the call (not as an argument beside it)
            errno = 0;
            p = aligned_alloc(align, (n + align - 1) / align * align);
            p = note_null(p, errno, "aligned_alloc", n);
            break;
        case 2:
            errno = 0;
            p = memalign(align, n);
            p = note_null(p, errno, "memalign", n);
            break;
        default:
            errno = 0;
            p = valloc(n);
            p = note_null(p, errno, "valloc", n);
            align = 4096;
            break;
        }
        if (!p) continue;
        if ((uintptr_t)p % align) {
            atomic_fetch_add(&corrupt, 1);
            out("MISALIGNED %p for alignment %zu", p, align);
        }
        if (i % 2) keep_misc(p, n, 0);
        else {
            memset(p, 0x77, n);
            free(p);
        }
    }
}

static void phase_large(void) {
    static const size_t mib[] = {1, 2, 3, 5, 8, 16, 33, 64};
    obj_t *got[8] = {0};
    for (unsigned i = 0; i < 8; i++) {
        size_t n = mib[i] << 20;
        void *p = xmalloc(n);
        if (!p) continue;
        obj_t *o = misc_slot();
        if (!o) {
            free(p);
            continue;
        }
        o->p = p, o->n = n, o->tag = next_tag++, o->sparse = 1;
        fill(o);
        got[i] = o;
    }
    for (unsigned i = 1; i < 8; i += 2) // free half; their memory comes back as calloc below
        if (got[i]) free_obj(got[i], "large");
    for (unsigned i = 1; i < 8; i += 2) {
        size_t n = mib[i] << 20;
        unsigned char *p = xcalloc(1, n);
        if (!p) continue;
        check_zero(p, n, "(large, after frees)");
        keep_misc(p, n, 1);
    }
}

/* Large objects freed and calloc'd again at once: their memory must come back zeroed,
 * also after a fork that left the heap on private memory. First the big objects kept
 * from before fork #2 (freed now, their calloc'd successors kept; twice), then batches
 * of fresh ones. */
static void phase_reuse(int with_large) {
    for (unsigned round = 0; round < 2; round++) // the 2nd round reuses the 1st's memory
    for (unsigned i = 0; i < nmisc; i++) {
        obj_t *o = &misc[i];
        if (!o->p || o->n < (256 << 10)) continue;
        size_t n = o->n;
        free_obj(o, "large (freed after fork #2)");
        unsigned char *p = xcalloc(1, n);
        if (!p) continue;
        check_zero(p, n, "(memory from before fork #2)");
        o->p = p, o->tag = next_tag++, o->sparse = 1;
        fill(o);
    }
    // then batches: past the free runs into the never-used tails of the regions
    static const size_t sizes[] = {300000, 1 << 20, 4 << 20, 64 << 20};
    unsigned nsizes = with_large ? 4 : 2;
    for (unsigned i = 0; i < nsizes; i++) {
        obj_t batch[16];
        unsigned k = sizes[i] > (4 << 20) ? 1 : 16;
        for (unsigned j = 0; j < k; j++) {
            batch[j] = (obj_t){xmalloc(sizes[i]), sizes[i], next_tag++, 1};
            if (batch[j].p) fill(&batch[j]);
        }
        for (unsigned j = 0; j < k; j++) free_obj(&batch[j], "reuse");
        for (unsigned j = 0; j < k; j++) {
            batch[j].p = xcalloc(1, sizes[i]);
            if (batch[j].p) check_zero(batch[j].p, sizes[i], "(reused after a free)");
        }
        for (unsigned j = 0; j < k; j++) free(batch[j].p);
    }
}

static void phase_fds(int close_fds, int hog, int *nhog) {
    if (close_fds) { // every descriptor but 0-2: libmesh's heap file too
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3, ~0U, 0) != 0)
#endif
            for (int fd = 3; fd < 4096; fd++) close(fd);
        out("closed every descriptor from 3 on");
    }
    if (hog) { // take every descriptor there is: no new heap file can be made
        int n = 0;
        while (n < MAX_HOG) {
            int fd = dup(0);
            if (fd < 0) break;
            hog_fds[n++] = fd;
        }
        *nhog = n;
        out("took %d descriptors (then %s)", n, strerror(errno));
    }
}

/* --watchdog=N: a phase still going after N seconds (each phase and each fork child
 * has its own N) says where it is and exits 3, so that a hang is reported as one,
 * with its phase, instead of stalling the suite. */
static void watchdog(int sig) {
    (void)sig;
    char buf[256];
    const char *ph = phase_now;
    size_t n = 0;
    char num[24] = "-";
    if (shim_injected) { // atomics only: fine in a signal handler
        unsigned long v = shim_injected();
        int k = 0;
        char tmp[24];
        do tmp[k++] = (char)('0' + v % 10), v /= 10;
        while (v);
        for (int j = 0; j < k; j++) num[j] = tmp[k - 1 - j];
        num[k] = 0;
    }
    const char *parts[] = {role, ": HANG: watchdog fired during phase '", ph, "' injected=", num, "\n"};
    for (size_t k = 0; k < 6; k++)
        for (const char *c = parts[k]; *c && n < sizeof buf - 1; c++) buf[n++] = *c;
    ssize_t w = write(1, buf, n);
    (void)w;
    _exit(3);
}

/* --selftest: each wrapped call once, after the injection is armed, and what it gave
 * (0 or the errno's name): proves failshim and the seccomp filter fail what they are
 * told to. Needs no libmesh. */
static const char *err_name(int e) {
    static char num[16];
    if (e == 0) return "0";
    const char *names[] = {"ENOMEM", "EPERM", "EAGAIN", "EINVAL", "ENOSYS", "EOPNOTSUPP", "EFBIG", "EMFILE", "ENOSPC"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (seccomp_fail_errno(names[i], -1) == e) return names[i];
    snprintf(num, sizeof num, "%d", e);
    return num;
}

static int selftest(void) {
    static char page[3 * 4096] __attribute__((aligned(4096)));
    int e_mmap, e_mremap, e_madvise, e_mprotect, e_memfd, e_memfd_raw, e_ftruncate, e_fallocate;
    errno = 0;
    void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    e_mmap = p == MAP_FAILED ? errno : 0;
    if (p != MAP_FAILED) munmap(p, 8192);
    errno = 0;
    e_mremap = mremap(page, 4096, 4096, 0) == MAP_FAILED ? errno : 0;
    errno = 0;
    e_madvise = madvise(page, 4096, MADV_NORMAL) != 0 ? errno : 0;
    errno = 0;
    e_mprotect = mprotect(page + 4096, 4096, PROT_READ | PROT_WRITE) != 0 ? errno : 0;
    errno = 0;
    int fd = memfd_create("selftest", MFD_CLOEXEC);
    e_memfd = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    errno = 0;
    fd = (int)syscall(SYS_memfd_create, "selftest", MFD_CLOEXEC);
    e_memfd_raw = fd < 0 ? errno : 0;
    if (fd < 0) fd = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    errno = 0;
    e_ftruncate = fd < 0 || ftruncate(fd, 8192) != 0 ? errno : 0;
    errno = 0;
    e_fallocate = fd < 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) != 0 ? errno : 0;
    if (fd >= 0) close(fd);
    out("selftest memfd_create=%s syscall_memfd_create=%s mmap=%s mremap=%s madvise=%s mprotect=%s "
        "ftruncate=%s fallocate=%s",
        err_name(e_memfd), err_name(e_memfd_raw), err_name(e_mmap), err_name(e_mremap), err_name(e_madvise),
        err_name(e_mprotect), err_name(e_ftruncate), err_name(e_fallocate));
    return 0;
}

static const char *arg_val(const char *arg, const char *key) {
    size_t k = strlen(key);
    return strncmp(arg, key, k) == 0 && arg[k] == '=' ? arg + k + 1 : NULL;
}

int main(int argc, char **argv) {
    unsigned count = 20000;
    const char *seccomp_calls = NULL;
    int seccomp_errno = ENOMEM, close_fds = 0, hog = 0, large = 1, do_fork = 1, self = 0;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = arg_val(argv[i], "--seed"))) seed = strtoull(v, NULL, 0);
        else if ((v = arg_val(argv[i], "--small"))) count = (unsigned)strtoul(v, NULL, 0);
        else if ((v = arg_val(argv[i], "--seccomp"))) seccomp_calls = v;
        else if ((v = arg_val(argv[i], "--seccomp-errno"))) seccomp_errno = seccomp_fail_errno(v, ENOMEM);
        else if (strcmp(argv[i], "--close-fds") == 0) close_fds = 1;
        else if (strcmp(argv[i], "--fd-hog") == 0) hog = 1;
        else if (strcmp(argv[i], "--no-large") == 0) large = 0;
        else if (strcmp(argv[i], "--no-fork") == 0) do_fork = 0;
        else if (strcmp(argv[i], "--times") == 0) show_times = 1;
        else if (strcmp(argv[i], "--selftest") == 0) self = 1;
        else if ((v = arg_val(argv[i], "--watchdog"))) watchdog_s = (unsigned)strtoul(v, NULL, 0);
        else {
            out("unknown argument %s", argv[i]);
            return 2;
        }
    }
    if (count > MAX_SMALL) count = MAX_SMALL;
    if (watchdog_s) {
        signal(SIGALRM, watchdog);
        alarm(watchdog_s);
    }
    rng_state = seed;
    long vm_start = vm_kb("VmSize:");

    // start-up: the heap initialises on the first malloc; after it, failures begin
    void *first = xmalloc(1);
    free(first);
    ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    shim_injected = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "failshim_injected");
    void (*arm)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "failshim_arm");
    if (arm) arm();
    if (seccomp_calls) {
        int rc = seccomp_fail_install(seccomp_calls, seccomp_errno);
        if (rc) {
            out("cannot install the seccomp filter for %s: %s", seccomp_calls, strerror(rc));
            return 2;
        }
    }
    if (self) return selftest();

    lap("start");
    phase_small(count);
    phase_fragment();
    lap("small+fragment");
    verify_all("after fragmentation");
    meshes_before = stat_ul("stats.mesh_count");
    lap("verify");
    compact();
    lap("compact");
    meshes_after = stat_ul("stats.mesh_count");
    verify_all("after mesh.compact");
    phase_small(count / 4); // more objects on the meshed heap
    phase_thread();
    lap("thread");
    verify_all("after the thread phase");
    if (do_fork) phase_fork(1);
    lap("fork1");
    phase_realloc();
    lap("realloc");
    verify_all("after realloc chains");
    phase_calloc(large);
    lap("calloc");
    verify_all("after calloc");
    phase_aligned();
    lap("aligned");
    verify_all("after aligned allocations");
    if (large) phase_large();
    lap("large");
    verify_all("after large objects");
    int nhog = 0;
    phase_fds(close_fds, hog, &nhog);
    if (do_fork) phase_fork(2);
    lap("fork2");
    for (int i = 0; i < nhog; i++) close(hog_fds[i]);
    phase_reuse(large);
    verify_all("after reuse");
    lap("reuse");
    phase_small(count / 4);
    malloc_trim(0);
    verify_all("after malloc_trim");
    lap("trim");
    compact();
    unsigned long meshes_end = stat_ul("stats.mesh_count");
    verify_all("final check");

    unsigned long kept = 0;
    for (unsigned i = 0; i < nsmall; i++) kept += small_objs[i].p != NULL;
    for (unsigned i = 0; i < nthread_objs; i++) kept += thread_objs[i].p != NULL;
    for (unsigned i = 0; i < nmisc; i++) kept += misc[i].p != NULL;
    for (unsigned i = 0; i < nsmall; i++) free_obj(&small_objs[i], "small (at the end)");
    for (unsigned i = 0; i < nthread_objs; i++) free_obj(&thread_objs[i], "thread (at the end)");
    for (unsigned i = 0; i < nmisc; i++) free_obj(&misc[i], "misc (at the end)");

    unsigned long bad = atomic_load(&corrupt), nother = atomic_load(&null_other), nenomem = atomic_load(&null_enomem);
    int thread_ok = strcmp(thread_outcome, "ok") == 0 || strcmp(thread_outcome, "inline") == 0;
    int fail = bad || nother || child_fail || !thread_ok;
    out("result=%s kept=%lu checked=%lu corrupt=%lu null_enomem=%lu null_other=%lu forks=%d child_fail=%d "
        "thread=%s meshes=%lu/%lu/%lu injected=%lu vm_start_kb=%ld vm_peak_kb=%ld",
        fail ? "FAIL" : nenomem ? "enomem" : "ok", kept, atomic_load(&checked), bad, nenomem, nother, forks_done,
        child_fail, thread_outcome, meshes_before, meshes_after, meshes_end, shim_injected ? shim_injected() : 0,
        vm_start, vm_kb("VmPeak:"));
    return fail ? 1 : 0;
}
