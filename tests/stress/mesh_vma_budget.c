/*
 * mesh_vma_budget.c - meshing keeps to its VMA budget: the program's own mappings come
 * first, before and after a meshing storm; a mesh the kernel refuses at the limit
 * leaves every object intact; malloc_trim(0) and mesh.compact at the budget never
 * raise PSS.
 *
 * 1. The program makes its own mappings until vm.max_map_count leaves about 25,000
 *    (every other page of a reservation made read-only: one VMA each).
 * 2. A meshing storm: 1,500,000 objects of 48, 64 and 256 bytes, interleaved, 85% freed
 *    at random, then mesh.compact until it meshes nothing more. The heap's VMAs
 *    (stats.heap_vmas, counted by libmesh) must not pass stats.vma_limit, and
 *    /proc/self/maps must agree with libmesh's count to within 16.
 * 3. malloc_trim(0), then mesh.compact: PSS must not rise (by more than 1%).
 * 4. The program makes 5,000 more mappings: every one must succeed.
 * 5. The program maps single pages until the kernel refuses (ENOMEM: the limit is
 *    reached), then frees some objects, runs mesh.compact and allocates and frees
 *    again: nothing may fail but the refused mappings, and every object keeps its
 *    bytes. Then it gives its mappings back.
 * Meshing runs only when the program asks (mesh.period_ms = 0, no background thread),
 * so libmesh's count and /proc/self/maps are read with nothing changing in between.
 * Without libmesh (mesh_mallctl missing) the same steps run, with the budget checks
 * skipped. With vm.max_map_count above 262,144 step 1 would make hundreds of
 * thousands of mappings: the program then says so and checks steps 2 to 4 only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stress_util.h"

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;

#define NOBJ 1500000
#define PAGE 4096

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    stress_vreport("mesh_vma_budget", fmt, ap);
    va_end(ap);
}
#define die(...) (say("FAIL: " __VA_ARGS__), exit(1))

static size_t stat_of(const char *name) {
    size_t v = 0, len = sizeof v;
    if (g_ctl && g_ctl(name, &v, &len, NULL, 0) != 0) die("mesh_mallctl(%s)", name);
    return v;
}

static void compact(void) {
    size_t r, len = sizeof r;
    if (g_ctl && g_ctl("mesh.compact", &r, &len, NULL, 0) != 0) die("mesh.compact");
}

static long read_long(const char *path, const char *key) {
    char buf[8192];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    if (!key) return atol(buf);
    char *p = strstr(buf, key);
    return p ? atol(p + strlen(key)) : -1;
}

static long map_lines(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
    fclose(f);
    return n;
}

/* About n VMAs of the program's own: a reservation of n + 1 pages, every other page
 * made read-only (neighbours with other protections never merge). */
static char *own_mappings(long n) {
    char *r = mmap(NULL, (size_t)(n + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) die("reservation of %ld pages", n + 1);
    for (long i = 1; i < n; i += 2)
        if (mprotect(r + i * PAGE, PAGE, PROT_READ) != 0)
            die("own mapping %ld of %ld refused (%s)", i, n, strerror(errno));
    return r;
}

static unsigned char *obj[NOBJ];
static const unsigned sizes[3] = {48, 64, 256};
static unsigned char byte_of(size_t i) { return (unsigned char)(i * 131 + 7); }

static void check_all(const char *when) {
    for (size_t i = 0; i < NOBJ; i++)
        if (obj[i])
            for (unsigned b = 0; b < sizes[i % 3]; b += 7)
                if (obj[i][b] != byte_of(i)) die("%s: object %zu byte %u changed", when, i, b);
}

int main(void) {
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (g_ctl) { // only the explicit mesh.compact meshes: counts compared at one moment stay still
        int64_t off = 0;
        bool no = false;
        if (g_ctl("mesh.period_ms", NULL, NULL, &off, sizeof off) != 0 ||
            g_ctl("mesh.background_thread", NULL, NULL, &no, sizeof no) != 0)
            die("mesh_mallctl(mesh.period_ms / mesh.background_thread)");
    }
    long max_map = read_long("/proc/sys/vm/max_map_count", NULL);
    bool fill = max_map > 0 && max_map <= 262144;
    if (!fill) say("vm.max_map_count is %ld: the program's own mappings are not made (steps 1 and 5)", max_map);
    long first = fill ? max_map - 25000 - map_lines() : 0;
    char *mine = fill && first > 0 ? own_mappings(first) : NULL;

    uint64_t seed = 7;
    for (size_t i = 0; i < NOBJ; i++) {
        obj[i] = malloc(sizes[i % 3]);
        if (!obj[i]) die("malloc");
        memset(obj[i], byte_of(i), sizes[i % 3]);
    }
    for (size_t i = 0; i < NOBJ; i++)
        if (stress_rng(&seed) % 100 >= 15) {
            free(obj[i]);
            obj[i] = NULL;
        }
    for (int k = 0; k < 20; k++) {
        size_t before = stat_of("stats.mesh_count");
        compact();
        if (stat_of("stats.mesh_count") == before) break;
    }
    size_t heap = stat_of("stats.heap_vmas"), limit = stat_of("stats.vma_limit");
    say("storm: %zu meshed spans, %zu heap VMAs, budget %zu, program VMAs %zu", stat_of("stats.mesh_aliases"), heap,
        limit, stat_of("stats.program_vmas"));
    if (g_ctl) {
        if (!stat_of("stats.mesh_aliases")) die("nothing meshed");
        if (heap > limit) die("the heap has %zu VMAs, over its budget of %zu", heap, limit);
        long lines = map_lines(), outside = lines - (long)heap;
        if (outside < first || outside > first + 400)
            die("/proc/self/maps has %ld lines: libmesh counts %zu heap VMAs, leaving %ld for %ld of the program's",
                lines, heap, outside, first);
    }
    check_all("after the storm");

    long pss0 = read_long("/proc/self/smaps_rollup", "\nPss:");
    malloc_trim(0);
    long pss1 = read_long("/proc/self/smaps_rollup", "\nPss:");
    compact();
    long pss2 = read_long("/proc/self/smaps_rollup", "\nPss:");
    say("PSS %ld kB, after malloc_trim(0) %ld kB, after mesh.compact %ld kB", pss0, pss1, pss2);
    if (pss1 > pss0 + pss0 / 100 || pss2 > pss1 + pss1 / 100) die("PSS rose");
    check_all("after trim and compact");

    char *more = own_mappings(5000); /* dies if one is refused */
    say("5000 more mappings of the program's: all made");

    if (fill) { /* to the kernel's limit */
        size_t cap = (size_t)max_map, n = 0;
        char **pages = mmap(NULL, cap * sizeof *pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (pages == MAP_FAILED) die("mmap");
        for (; n < cap; n++) {
            pages[n] = mmap(NULL, PAGE, (n & 1) ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (pages[n] == MAP_FAILED) break;
        }
        say("%zu single pages mapped until the kernel refused (%s)", n, strerror(errno));
        for (size_t i = 0; i < NOBJ; i += 3)
            if (obj[i]) {
                free(obj[i]);
                obj[i] = NULL;
            }
        compact();
        for (int round = 0; round < 3; round++) {
            void *tmp[20000];
            for (int i = 0; i < 20000; i++) {
                tmp[i] = malloc(48 + (i % 4) * 64);
                if (!tmp[i]) die("malloc at the kernel's limit, round %d object %d", round, i);
                memset(tmp[i], 0x5a, 48);
            }
            for (int i = 0; i < 20000; i++) free(tmp[i]);
            compact();
        }
        check_all("at the kernel's limit");
        for (size_t i = 0; i < n; i++) munmap(pages[i], PAGE);
        munmap(pages, cap * sizeof *pages);
    }
    munmap(more, (size_t)(5000 + 1) * PAGE);
    if (mine) munmap(mine, (size_t)(first + 1) * PAGE);
    compact();
    check_all("at the end");
    say("ok");
    return 0;
}
