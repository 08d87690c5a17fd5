/*
 * huge_objects.c - objects of 4 GiB, 4 GiB + 1 page and 8 GiB through every interface
 * that measures or moves a span.  A span's page count is 32 bits: shifted without
 * widening, a 4 GiB span measured 0 bytes and a 4 GiB + 1 page one 4 KiB (b097b13).
 * malloc_stats and mallinfo2 then spun forever in the arena walker (holding the arena
 * lock), a freed run's last-page directory entry landed on the wrong page (the page
 * before a 4 GiB run), and a large object could not grow in place.
 *
 * The objects are never touched beyond their first and last page (a marker byte at
 * the first byte and at the last byte in range), so they cost no memory: after every
 * phase the process's RSS and the heap files' physical size must stay under 256 MiB.
 * Any copy or fill of a whole object (a realloc that moves, a fork or trim that
 * populates them) fails that check.
 *
 * Each phase runs in a fresh process (this program re-executed with the phase's name)
 * under its own alarm, so a hang is reported as that phase's failure and the others
 * still run:
 *  alloc     malloc: non-NULL, malloc_usable_size >= request, markers writable.
 *  mallinfo  mallinfo2 returns; uordblks, arena and hblkhd >= the sum of the sizes;
 *            after free, uordblks drops below 1 GiB.
 *  stats     malloc_stats returns; its allocated, active and mapped bytes count the
 *            objects, it lists 3 or more large objects and the class table, and its
 *            heap file bytes stay small.
 *  reuse     free and allocate the sizes again, in several orders: each object keeps
 *            its markers, and a small object allocated before is untouched.
 *  realloc   4 GiB -> 8 GiB (room to grow in place: an 8 GiB run was freed just
 *            before; a move would copy 4 GiB and fail the memory check) ->
 *            4 GiB + 1 page -> 4 GiB -> 64 KiB: the markers in the kept prefix survive,
 *            usable size and mallinfo2 follow the size.
 *  fork      the child sees the markers, writes its own, frees everything and exits 0;
 *            the parent's markers are unchanged and mallinfo2 still counts the objects.
 *  trim      malloc_trim(0) with the objects held, after an 8 GiB -> 4 GiB shrink
 *            (its tail is a dirty run) and after freeing: markers kept, dirty bytes
 *            purged.
 *
 *  fork-trim fork, then malloc_trim(0) in the parent, which migrates the objects
 *            (stale since the fork) back onto its own heap file: that must not
 *            populate their untouched pages (migration once mapped in every page it
 *            moved, holes included: 16 GiB of heap file).
 *
 * usage: huge_objects [PHASE...]   (default: every phase, each in its own process)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_util.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)
#define PAGE ((size_t)4096)

#define PHASE_ALARM_S 5 /* a phase takes well under a second when it works */
#define DRIVER_ALARM_S 55
#define MEM_LIMIT (256 * MiB)

static const size_t g_size[3] = {4 * GiB, 4 * GiB + PAGE, 8 * GiB};
#define TOTAL (16 * GiB + PAGE)

/* volatile: the alarm handler reads them (the compiler would drop a store it sees
   overwritten before any read it knows of) */
static const char *volatile g_phase = "driver";
static volatile sig_atomic_t g_err_fd = 2; /* for the alarm message; malloc_stats borrows fd 2 */
static int g_fail;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "huge_objects: %s (pid %d): ", g_phase, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    stress_vsay(buf, sizeof buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : 0, fmt, ap);
    va_end(ap);
}

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        say("FAIL: " __VA_ARGS__);                                                                                     \
        g_fail++;                                                                                                      \
    } while (0)

/* one write, so that messages of a parent and a child do not interleave */
static void on_alarm(int sig) {
    (void)sig;
    static char msg[200];
    const char *parts[] = {"huge_objects: FAIL: phase ", g_phase,
                           " did not finish in time (hung; the alarm ended it)\n"};
    size_t n = 0;
    for (unsigned i = 0; i < 3; i++)
        for (const char *c = parts[i]; *c && n < sizeof msg; c++) msg[n++] = *c;
    ssize_t w = write(g_err_fd, msg, n);
    (void)w;
    _exit(3);
}

static void arm(unsigned seconds) {
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

/* ---- markers: one byte at the first and one at the last byte in range ---- */

/* distinct per object (0..3), end (0 first, 1 last byte) and generation (0..3) */
static unsigned char tag(unsigned obj, int which, unsigned gen) {
    return (unsigned char)(0x41 + obj * 16 + which * 4 + gen);
}

static void mark(unsigned char *p, size_t n, unsigned obj, unsigned gen) {
    p[0] = tag(obj, 0, gen);
    p[n - 1] = tag(obj, 1, gen);
}

/* the marker at offset off (written as the first (which 0) or last (1) byte) */
static void check_byte(const unsigned char *p, size_t off, unsigned obj, int which, unsigned gen, const char *what) {
    unsigned char want = tag(obj, which, gen);
    if (p[off] != want)
        FAIL("%s: object %u (%p) byte %zu is %#x, want %#x", what, obj, (const void *)p, off, p[off], want);
}

static void check_marks(const unsigned char *p, size_t n, unsigned obj, unsigned gen, const char *what) {
    check_byte(p, 0, obj, 0, gen, what);
    check_byte(p, n - 1, obj, 1, gen, what);
}

/* ---- memory use: RSS and the physical size of the libmesh heap files ---- */

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtoull(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb * KiB;
}

static size_t heap_file_bytes(void) {
    DIR *d = opendir("/proc/self/fd");
    size_t total = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char link[300], target[300];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        struct stat st;
        if (strstr(target, "memfd:libmesh_arena") && stat(link, &st) == 0) total += (size_t)st.st_blocks * 512;
    }
    if (d) closedir(d);
    return total;
}

static void check_memory(const char *when) {
    size_t rss = rss_bytes(), file = heap_file_bytes();
    if (rss > MEM_LIMIT || file > MEM_LIMIT)
        FAIL("%s: RSS %zu MiB, heap files %zu MiB: a huge object was touched or copied (limit %zu MiB)", when,
             rss / MiB, file / MiB, MEM_LIMIT / MiB);
}

/* ---- helpers ---- */

static unsigned char *alloc_marked(unsigned obj, size_t n, unsigned gen) {
    unsigned char *p = malloc(n);
    if (!p) {
        FAIL("malloc(%zu) returned NULL (errno %d)", n, errno);
        return NULL;
    }
    size_t u = malloc_usable_size(p);
    if (u < n) FAIL("malloc_usable_size(malloc(%zu)) = %zu", n, u);
    mark(p, n, obj, gen);
    return p;
}

static int alloc_all(unsigned char *p[3], unsigned gen) {
    for (unsigned i = 0; i < 3; i++)
        if (!(p[i] = alloc_marked(i, g_size[i], gen))) return 0;
    return 1;
}

static void check_all(unsigned char *p[3], unsigned gen, const char *what) {
    for (unsigned i = 0; i < 3; i++)
        if (p[i]) check_marks(p[i], g_size[i], i, gen, what);
}

static void free_all(unsigned char *p[3]) {
    for (unsigned i = 0; i < 3; i++) {
        free(p[i]);
        p[i] = NULL;
    }
}

/* ---- phases ---- */

static void phase_alloc(void) {
    unsigned char *p[3];
    if (!alloc_all(p, 0)) return;
    check_all(p, 0, "after malloc");
    check_memory("holding the objects");
    free_all(p);
}

static void phase_mallinfo(void) {
    unsigned char *p[3];
    if (!alloc_all(p, 0)) return;
    struct mallinfo2 mi = mallinfo2();
    say("mallinfo2 holding 16 GiB + 4 KiB: arena %zu uordblks %zu hblkhd %zu fsmblks %zu", mi.arena, mi.uordblks,
        mi.hblkhd, mi.fsmblks);
    if (mi.uordblks < TOTAL) FAIL("mallinfo2 uordblks %zu < %zu (the objects in use)", mi.uordblks, TOTAL);
    if (mi.arena < TOTAL) FAIL("mallinfo2 arena %zu < %zu", mi.arena, TOTAL);
    if (mi.hblkhd < TOTAL) FAIL("mallinfo2 hblkhd %zu < %zu (mapped)", mi.hblkhd, TOTAL);
    check_all(p, 0, "after mallinfo2");
    free_all(p);
    mi = mallinfo2();
    say("mallinfo2 after free: arena %zu uordblks %zu hblkhd %zu", mi.arena, mi.uordblks, mi.hblkhd);
    if (mi.uordblks >= GiB) FAIL("mallinfo2 uordblks %zu after freeing everything", mi.uordblks);
    check_memory("after mallinfo2");
}

/* Parses "  NAME = NUMBER" out of malloc_stats output; 0 when missing. */
static size_t stat_value(const char *out, const char *name) {
    const char *s = strstr(out, name);
    if (!s) return 0;
    s = strchr(s, '=');
    return s ? strtoull(s + 1, NULL, 10) : 0;
}

static void phase_stats(void) {
    unsigned char *p[3];
    if (!alloc_all(p, 0)) return;
    /* malloc_stats writes to fd 2: catch it in a memfd (an alarm reports to the saved
       stderr meanwhile) */
    int mfd = memfd_create("huge_stats", 0), saved = dup(2);
    if (mfd < 0 || saved < 0) {
        FAIL("cannot redirect stderr: errno %d", errno);
        return;
    }
    g_err_fd = saved;
    dup2(mfd, 2);
    malloc_stats();
    dup2(saved, 2);
    g_err_fd = 2;
    close(saved);
    static char out[64 * 1024];
    ssize_t n = pread(mfd, out, sizeof out - 1, 0);
    close(mfd);
    out[n > 0 ? n : 0] = 0;
    stress_say(out);
    const char *large = strstr(out, "large objects)");
    size_t nlarge = 0;
    if (large) {
        while (large > out && large[-1] == ' ') large--;
        while (large > out && large[-1] >= '0' && large[-1] <= '9') large--;
        nlarge = strtoull(large, NULL, 10);
    }
    size_t allocated = stat_value(out, "allocated bytes"), active = stat_value(out, "active bytes"),
           mapped = stat_value(out, "mapped bytes"), file = stat_value(out, "heap file bytes");
    if (!strstr(out, "libmesh heap statistics")) FAIL("malloc_stats printed no statistics");
    if (allocated < TOTAL) FAIL("malloc_stats allocated bytes %zu < %zu", allocated, TOTAL);
    if (active < TOTAL) FAIL("malloc_stats active bytes %zu < %zu", active, TOTAL);
    if (mapped < TOTAL) FAIL("malloc_stats mapped bytes %zu < %zu", mapped, TOTAL);
    if (nlarge < 3) FAIL("malloc_stats lists %zu large objects, want 3 or more", nlarge);
    if (file > MEM_LIMIT) FAIL("malloc_stats heap file bytes %zu: the objects were populated", file);
    if (!strstr(out, "per size class")) FAIL("malloc_stats has no size class table");
    check_all(p, 0, "after malloc_stats");
    check_memory("after malloc_stats");
    free_all(p);
}

static void phase_reuse(void) {
    /* a small object and a large one that live through all of it */
    unsigned char *small = malloc(100), *mid = malloc(3 * MiB);
    if (!small || !mid) {
        FAIL("malloc of the bystanders failed");
        return;
    }
    memset(small, 0x5c, 100);
    mark(mid, 3 * MiB, 3, 0);
    static const unsigned orders[3][3] = {{0, 1, 2}, {2, 1, 0}, {1, 2, 0}};
    unsigned char *p[3];
    if (!alloc_all(p, 0)) return;
    for (unsigned round = 0; round < 3; round++) {
        unsigned gen = round + 1;
        for (unsigned k = 0; k < 3; k++) { /* free in this order, then allocate again */
            unsigned i = orders[round][k];
            check_marks(p[i], g_size[i], i, gen - 1, "before free");
            free(p[i]);
            p[i] = NULL;
        }
        for (unsigned k = 0; k < 3; k++) {
            unsigned i = orders[round][(k + 1) % 3];
            if (!(p[i] = alloc_marked(i, g_size[i], gen))) return;
        }
        check_all(p, gen, "after free and malloc again");
        /* free one and allocate it again: it gets the run it left */
        free(p[round]);
        p[round] = alloc_marked(round, g_size[round], gen);
        if (!p[round]) return;
    }
    check_all(p, 3, "at the end");
    for (size_t i = 0; i < 100; i++)
        if (small[i] != 0x5c) {
            FAIL("a 100-byte object allocated before changed at byte %zu", i);
            break;
        }
    check_marks(mid, 3 * MiB, 3, 0, "3 MiB object allocated before");
    if (malloc_usable_size(small) < 100 || malloc_usable_size(mid) < 3 * MiB)
        FAIL("usable sizes of the bystanders changed: %zu, %zu", malloc_usable_size(small), malloc_usable_size(mid));
    check_memory("after reuse");
    free_all(p);
    free(small);
    free(mid);
    struct mallinfo2 mi = mallinfo2();
    if (mi.uordblks >= GiB) FAIL("mallinfo2 uordblks %zu after freeing everything", mi.uordblks);
}

static unsigned char *do_realloc(unsigned char *p, size_t old, size_t n) {
    unsigned char *q = realloc(p, n);
    if (!q) {
        FAIL("realloc(%p, %zu) from %zu returned NULL", (void *)p, n, old);
        return NULL;
    }
    say("realloc %zu -> %zu: %s", old, n, q == p ? "in place" : "moved");
    if (malloc_usable_size(q) < n) FAIL("malloc_usable_size after realloc to %zu is %zu", n, malloc_usable_size(q));
    return q;
}

static void phase_realloc(void) {
    /* Free an 8 GiB object first: the 4 GiB one then sits at the start of an 8 GiB run
       and can grow in place (a move would copy 4 GiB; check_memory would see it). */
    unsigned char *r = malloc(8 * GiB);
    if (!r) {
        FAIL("malloc(8 GiB) returned NULL");
        return;
    }
    free(r);
    unsigned char *p = alloc_marked(0, 4 * GiB, 0);
    if (!p) return;

    p = do_realloc(p, 4 * GiB, 8 * GiB); /* up: all of the old object is kept */
    if (!p) return;
    check_marks(p, 4 * GiB, 0, 0, "after realloc 4 GiB -> 8 GiB");
    p[8 * GiB - 1] = tag(1, 1, 0); /* the new last byte is writable */
    check_byte(p, 8 * GiB - 1, 1, 1, 0, "after realloc 4 GiB -> 8 GiB");
    struct mallinfo2 mi = mallinfo2();
    if (mi.uordblks < 8 * GiB) FAIL("mallinfo2 uordblks %zu < 8 GiB after growing to 8 GiB", mi.uordblks);
    check_memory("after realloc up to 8 GiB");

    /* down to 4 GiB + 1 page: markers at the first byte and the last byte kept */
    const size_t n1 = 4 * GiB + PAGE;
    p[0] = tag(2, 0, 0);
    p[n1 - 1] = tag(2, 1, 0); /* 4 GiB - 1 still holds object 0's last marker */
    p = do_realloc(p, 8 * GiB, n1);
    if (!p) return;
    check_marks(p, n1, 2, 0, "after realloc 8 GiB -> 4 GiB + 1 page");
    check_byte(p, 4 * GiB - 1, 0, 1, 0, "after realloc 8 GiB -> 4 GiB + 1 page");
    mi = mallinfo2();
    if (mi.uordblks < n1 || mi.uordblks >= 8 * GiB)
        FAIL("mallinfo2 uordblks %zu after shrinking to 4 GiB + 1 page (want [%zu, 8 GiB))", mi.uordblks, n1);

    /* down one page, to exactly 4 GiB */
    p[4 * GiB - 1] = tag(3, 1, 0);
    p = do_realloc(p, n1, 4 * GiB);
    if (!p) return;
    check_byte(p, 0, 2, 0, 0, "after realloc 4 GiB + 1 page -> 4 GiB");
    check_byte(p, 4 * GiB - 1, 3, 1, 0, "after realloc 4 GiB + 1 page -> 4 GiB");
    mi = mallinfo2();
    if (mi.uordblks < 4 * GiB || mi.uordblks >= n1)
        FAIL("mallinfo2 uordblks %zu after shrinking to 4 GiB (want [4 GiB, %zu))", mi.uordblks, n1);

    /* down to 64 KiB: moves (a quarter or less of the old size); the prefix is kept */
    p[64 * KiB - 1] = tag(2, 1, 0);
    p = do_realloc(p, 4 * GiB, 64 * KiB);
    if (!p) return;
    check_marks(p, 64 * KiB, 2, 0, "after realloc 4 GiB -> 64 KiB");
    check_memory("after realloc down to 64 KiB");
    free(p);
    mi = mallinfo2();
    if (mi.uordblks >= GiB) FAIL("mallinfo2 uordblks %zu after freeing everything", mi.uordblks);
}

/* trim: malloc_trim(0) in the parent afterwards, which migrates the objects (stale
   since the fork) back onto the parent's own heap file */
static void fork_and_check(int trim) {
    unsigned char *p[3];
    if (!alloc_all(p, 0)) return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        FAIL("fork: errno %d", errno);
        return;
    }
    if (pid == 0) {
        g_phase = "fork child";
        arm(PHASE_ALARM_S - 2); /* before the parent's: the child's hang is reported as such */
        check_all(p, 0, "in the fork child");
        for (unsigned i = 0; i < 3; i++) mark(p[i], g_size[i], i, 1);
        check_all(p, 1, "in the fork child after writing");
        check_memory("in the fork child");
        free_all(p);
        struct mallinfo2 mi = mallinfo2();
        if (mi.uordblks >= GiB) FAIL("mallinfo2 uordblks %zu in the child after freeing", mi.uordblks);
        _exit(g_fail ? 1 : 0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        FAIL("fork child: %s %d", WIFEXITED(st) ? "exit status" : "signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    check_all(p, 0, "in the parent after the child wrote and freed");
    check_memory("in the parent after fork");
    if (trim) {
        malloc_trim(0);
        check_all(p, 0, "in the parent after malloc_trim");
        check_memory("in the parent after fork and malloc_trim");
    }
    for (unsigned i = 0; i < 3; i++) mark(p[i], g_size[i], i, 2);
    check_all(p, 2, "in the parent after writing");
    struct mallinfo2 mi = mallinfo2();
    if (mi.uordblks < TOTAL) FAIL("mallinfo2 uordblks %zu < %zu in the parent after fork", mi.uordblks, TOTAL);
    free_all(p);
}

static void phase_fork(void) { fork_and_check(0); }
static void phase_fork_trim(void) { fork_and_check(1); }

static void phase_trim(void) {
    unsigned char *p[3];
    if (!alloc_all(p, 0)) return;
    malloc_trim(0);
    check_all(p, 0, "after malloc_trim");
    /* shrink the 8 GiB object to 4 GiB: its 4 GiB tail becomes a dirty run */
    p[2][4 * GiB - 1] = tag(2, 1, 0);
    unsigned char *q = realloc(p[2], 4 * GiB);
    if (!q) {
        FAIL("realloc(8 GiB -> 4 GiB) returned NULL");
        return;
    }
    p[2] = q;
    check_marks(q, 4 * GiB, 2, 0, "after realloc 8 GiB -> 4 GiB");
    struct mallinfo2 mi = mallinfo2();
    say("mallinfo2 before trimming the tail: arena %zu uordblks %zu fsmblks (dirty) %zu", mi.arena, mi.uordblks,
        mi.fsmblks);
    malloc_trim(0);
    mi = mallinfo2();
    say("mallinfo2 after trimming the tail: arena %zu uordblks %zu fsmblks (dirty) %zu", mi.arena, mi.uordblks,
        mi.fsmblks);
    if (mi.fsmblks >= GiB) FAIL("%zu dirty bytes left after malloc_trim(0)", mi.fsmblks);
    if (mi.uordblks < 12 * GiB + PAGE) FAIL("mallinfo2 uordblks %zu < 12 GiB + 4 KiB", mi.uordblks);
    check_marks(p[0], g_size[0], 0, 0, "after the second malloc_trim");
    check_marks(p[1], g_size[1], 1, 0, "after the second malloc_trim");
    check_marks(q, 4 * GiB, 2, 0, "after the second malloc_trim");
    check_memory("after malloc_trim with the objects held");
    free_all(p);
    malloc_trim(0);
    mi = mallinfo2();
    if (mi.uordblks >= GiB || mi.fsmblks >= GiB)
        FAIL("after free and malloc_trim: uordblks %zu, dirty %zu", mi.uordblks, mi.fsmblks);
    check_memory("after free and malloc_trim");
}

typedef struct phase {
    const char *name;
    void (*fn)(void);
    int by_name_only; /* not in the default run (see the comment at the top) */
} phase_t;

static const phase_t g_phases[] = {
    {"alloc", phase_alloc, 0},   {"mallinfo", phase_mallinfo, 0}, {"stats", phase_stats, 0},
    {"reuse", phase_reuse, 0},   {"realloc", phase_realloc, 0},   {"fork", phase_fork, 0},
    {"trim", phase_trim, 0},     {"fork-trim", phase_fork_trim, 0},
};
#define NPHASES (sizeof g_phases / sizeof g_phases[0])

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_phase_here(const char *name) {
    for (size_t i = 0; i < NPHASES; i++)
        if (!strcmp(name, g_phases[i].name)) {
            g_phase = g_phases[i].name;
            arm(PHASE_ALARM_S);
            g_phases[i].fn();
            return g_fail ? 1 : 0;
        }
    say("unknown phase '%s'", name);
    return 2;
}

/* Runs one phase in a fresh process: this program again, with the phase's name. */
static int run_phase_child(const char *name) {
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        FAIL("fork: errno %d", errno);
        return 1;
    }
    if (pid == 0) {
        execl("/proc/self/exe", "huge_objects", name, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (ok)
        say("phase %s: ok (%.1f s)", name, now_s() - t0);
    else
        say("phase %s: FAIL (%s %d, %.1f s)", name, WIFEXITED(st) ? "exit status" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), now_s() - t0);
    return !ok;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        int rc = 0;
        for (int i = 1; i < argc; i++) rc |= run_phase_here(argv[i]);
        return rc;
    }
    arm(DRIVER_ALARM_S);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < NPHASES; i++)
        if (!g_phases[i].by_name_only) {
            failed += run_phase_child(g_phases[i].name);
            ran++;
        }
    if (failed) {
        say("FAIL: %d of %d phases failed", failed, ran);
        return 1;
    }
    say("all %d phases ok", ran);
    return 0;
}
