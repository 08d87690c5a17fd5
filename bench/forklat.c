/* forklat.c - fork() latency and memory of a process with a populated heap, for
 * bench/fork-report (issue 6).
 *
 * usage: forklat SIZE_MB [runs=5] [settle_ms=250]
 *
 * Fills a heap of SIZE_MB MiB through malloc - 60% of the bytes in objects of 16..1024
 * bytes, 40% in blocks of 64 KiB..8 MiB - and writes every byte. Then, runs times:
 *   - reads its own Rss/Pss (/proc/self/smaps_rollup) and Shmem (/proc/meminfo);
 *   - t0 = CLOCK_MONOTONIC; fork();
 *       child:  writes CLOCK_MONOTONIC right after fork() returns into a pipe, then
 *               blocks reading another pipe (it touches nothing) and _exits;
 *       parent: stall = time until fork() returned; latency = child's stamp - t0;
 *   - sleeps 1 s, then reads Rss/Pss of itself and of the child, Shmem, and the
 *     allocated bytes of every memfd either process maps or has open (each file once;
 *     mapped-only files need root, for /proc/PID/map_files);
 *   - lets the child exit, waits for it, and - under libmesh, whose pages a fork left
 *     copy-on-write go back onto its heap file in steps taken from the allocator's free
 *     paths - allocates and frees (batches of 2048 objects of 64 bytes, enough to
 *     overflow a thread cache and reach those paths, 128 KiB at a time) until
 *     mesh_mallctl("stats.fork_migrating") reads 0 (migrate_ms; at most 60 s), as a
 *     program that goes on working would; then sleeps settle_ms and reads Shmem and its
 *     own Pss again.
 * Prints one "run" line per run and a "median" line (each field's median over the runs)
 * of key=value pairs; sizes in MiB (2 decimals), times in microseconds. PSS misses memfd
 * pages that no process maps (and pages a process maps but has not touched), hence
 * Shmem (machine-wide: other processes add noise) and all_*_mb: the processes' PSS
 * without shmem pages (Pss - Pss_Shmem) plus the allocated bytes of every memfd they map
 * or hold, each file counted once - the memory the heap really holds (before fork: the
 * parent; 1 s after: parent and child; after the child exited: the parent).
 * pss_first_mb and all_first_mb are the values before this process's first fork: with
 * runs > 1, each later fork starts from what the earlier ones left behind.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
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

#include "bench_util.h"

enum {
    F_LATENCY,
    F_STALL,
    F_PSS_BEFORE,
    F_RSS_BEFORE,
    F_PARENT_RSS,
    F_PARENT_PSS,
    F_CHILD_RSS,
    F_CHILD_PSS,
    F_SHMEM_BEFORE,
    F_SHMEM_FORK,
    F_SHMEM_EXIT,
    F_MEMFD_BEFORE,
    F_MEMFD_FORK,
    F_PSS_EXIT,
    F_MEMFD_EXIT,
    F_ALL_BEFORE,
    F_ALL_FORK,
    F_ALL_EXIT,
    F_PSS_FIRST,
    F_ALL_FIRST,
    F_MIGRATE_MS,
    NFIELDS
};
static const char *const g_field[NFIELDS] = {
    "latency_us",     "stall_us",      "pss_before_mb", "rss_before_mb", "parent_rss_mb",
    "parent_pss_mb",  "child_rss_mb",  "child_pss_mb",  "shmem_before_mb", "shmem_fork_mb",
    "shmem_exit_mb",  "memfd_before_mb", "memfd_fork_mb", "pss_exit_mb",   "memfd_exit_mb",
    "all_before_mb",  "all_fork_mb",   "all_exit_mb",   "pss_first_mb",  "all_first_mb",
    "migrate_ms"};

static void die(const char *what) {
    fprintf(stderr, "forklat: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Allocator activity until libmesh says no page a fork left copy-on-write remains;
 * returns the milliseconds it took (0 without libmesh). */
static double migrate(void) {
    int (*ctl)(const char *, void *, size_t *, void *, size_t) =
        (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!ctl)
        return 0;
    double t0 = now_us();
    static void *batch[2048];
    for (;;) {
        size_t pending = 0, len = sizeof pending;
        if (ctl("stats.fork_migrating", &pending, &len, NULL, 0) != 0 || !pending ||
            now_us() - t0 > 60e6)
            break;
        for (int i = 0; i < 2048; i++) {
            batch[i] = malloc(64);
            if (batch[i])
                *(volatile char *)batch[i] = 1;
        }
        for (int i = 0; i < 2048; i++)
            free(batch[i]);
    }
    return (now_us() - t0) / 1000;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Rss, Pss and Pss_Shmem of pid in MiB from smaps_rollup. */
static void rollup(pid_t pid, double *rss, double *pss, double *pss_shmem) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die(path);
    *rss = *pss = -1;
    *pss_shmem = 0;
    long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Rss: %ld kB", &kb) == 1)
            *rss = (double)kb / 1024;
        else if (sscanf(line, "Pss: %ld kB", &kb) == 1)
            *pss = (double)kb / 1024;
        else if (sscanf(line, "Pss_Shmem: %ld kB", &kb) == 1)
            *pss_shmem = (double)kb / 1024;
    }
    fclose(f);
}

static double shmem_mb(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        die("/proc/meminfo");
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Shmem: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return (double)kb / 1024;
}

/* Allocated bytes (st_blocks) of the memfds that the given processes map or hold open,
   each file counted once, in MiB. A mapped file is stat()ed through
   /proc/PID/map_files (root only), an open one through /proc/PID/fd. */
typedef struct seen {
    ino_t ino[256];
    int n;
} seen_t;

static double count_file(seen_t *s, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    for (int k = 0; k < s->n; k++)
        if (s->ino[k] == st.st_ino)
            return 0;
    if (s->n == 256)
        return 0;
    s->ino[s->n++] = st.st_ino;
    return (double)st.st_blocks * 512 / (1024 * 1024);
}

static double memfd_mb(const pid_t *pids, int npids) {
    seen_t s = {.n = 0};
    double total = 0;
    for (int i = 0; i < npids; i++) {
        char path[384], line[512];
        snprintf(path, sizeof path, "/proc/%d/maps", (int)pids[i]);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) {
            char range[64];
            if (!strstr(line, " /memfd:") || sscanf(line, "%63s", range) != 1)
                continue;
            snprintf(path, sizeof path, "/proc/%d/map_files/%s", (int)pids[i], range);
            total += count_file(&s, path);
        }
        if (f)
            fclose(f);
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pids[i]);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            char target[256];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = 0;
            if (strncmp(target, "/memfd:", 7) == 0)
                total += count_file(&s, path);
        }
        closedir(d);
    }
    return total;
}

/* ---- the heap ---- */

typedef struct heap {
    void **p;
    size_t n, cap;
    size_t bytes;
} heap_t;

static void keep(heap_t *h, void *p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1 << 16;
        /* the pointer table lives outside the measured heap */
        void **q = mmap(NULL, cap * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED)
            die("mmap");
        if (h->p) {
            memcpy(q, h->p, h->n * sizeof(void *));
            munmap(h->p, h->cap * sizeof(void *));
        }
        h->p = q;
        h->cap = cap;
    }
    h->p[h->n++] = p;
}

static void *alloc_touched(size_t n, uint64_t tag) {
    unsigned char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "forklat: malloc(%zu) failed\n", n);
        exit(1);
    }
    memset(p, (int)(tag | 1) & 0xff, n);
    return p;
}

static void populate(heap_t *h, size_t target) {
    uint64_t rs = 0x5eed0f0f0f0fULL;
    size_t small_target = target / 10 * 6, large = 0, large_target = target - small_target;
    size_t large_max = target >= (size_t)200 << 20 ? 8u << 20 : 1u << 20;
    size_t small = 0;
    /* interleave: a large block whenever the large share falls behind */
    while (small < small_target || large < large_target) {
        if (large < large_target && (double)large / (double)large_target <= (double)small / (double)small_target) {
            size_t n = 65536 + (size_t)(bench_rng(&rs) % (large_max - 65536));
            if (n > large_target - large && large_target - large >= 65536)
                n = large_target - large;
            keep(h, alloc_touched(n, bench_rng(&rs)));
            large += n;
        } else {
            size_t n = 16 + (size_t)(bench_rng(&rs) % 1009);
            keep(h, alloc_touched(n, bench_rng(&rs)));
            small += n;
        }
    }
    h->bytes = small + large;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1 when a mapping of a file whose name contains lib is in /proc/self/maps */
static int mapped(const char *lib) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, lib) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void print_fields(const char *label, int size_mb, const double *v) {
    printf("%s size_mb=%d libmesh=%d jemalloc=%d", label, size_mb, mapped("libmesh"), mapped("libjemalloc"));
    for (int i = 0; i < NFIELDS; i++)
        printf(i <= F_STALL ? " %s=%.0f" : " %s=%.2f", g_field[i], v[i]);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: forklat SIZE_MB [runs=5] [settle_ms=250]\n");
        return 2;
    }
    int size_mb = (int)bench_arg("forklat", argc, argv, 1, 10, 1, 1 << 20);
    int runs = (int)bench_arg("forklat", argc, argv, 2, 5, 1, 1000);
    long settle = bench_arg("forklat", argc, argv, 3, 250, 0, 60000);

    heap_t h = {0};
    double t = now_us();
    populate(&h, (size_t)size_mb << 20);
    fprintf(stderr, "forklat: %zu objects, %.1f MiB, populated in %.2f s\n", h.n, (double)h.bytes / (1 << 20),
            (now_us() - t) / 1e6);

    double (*val)[NFIELDS] = calloc((size_t)runs, sizeof *val);
    if (!val)
        die("calloc");
    for (int r = 0; r < runs; r++) {
        double *v = val[r];
        int stamp[2], go[2];
        if (pipe(stamp) != 0 || pipe(go) != 0)
            die("pipe");
        pid_t self = getpid();
        double shm_p, shm_c;
        rollup(self, &v[F_RSS_BEFORE], &v[F_PSS_BEFORE], &shm_p);
        v[F_SHMEM_BEFORE] = shmem_mb();
        v[F_MEMFD_BEFORE] = memfd_mb(&self, 1);
        v[F_ALL_BEFORE] = v[F_PSS_BEFORE] - shm_p + v[F_MEMFD_BEFORE];
        v[F_PSS_FIRST] = r ? val[0][F_PSS_BEFORE] : v[F_PSS_BEFORE];
        v[F_ALL_FIRST] = r ? val[0][F_ALL_BEFORE] : v[F_ALL_BEFORE];
        fflush(NULL);

        double t0 = now_us();
        pid_t pid = fork();
        if (pid == 0) {
            double t1 = now_us();
            if (write(stamp[1], &t1, sizeof t1) != sizeof t1)
                _exit(3);
            close(go[1]);
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR) {
            }
            _exit(0);
        }
        double t2 = now_us();
        if (pid < 0)
            die("fork");
        close(stamp[1]);
        close(go[0]);
        double t1 = 0;
        if (read(stamp[0], &t1, sizeof t1) != sizeof t1) {
            fprintf(stderr, "forklat: the child did not report its start\n");
            return 1;
        }
        v[F_STALL] = t2 - t0;
        v[F_LATENCY] = t1 - t0;

        sleep_ms(1000);
        rollup(self, &v[F_PARENT_RSS], &v[F_PARENT_PSS], &shm_p);
        rollup(pid, &v[F_CHILD_RSS], &v[F_CHILD_PSS], &shm_c);
        v[F_SHMEM_FORK] = shmem_mb();
        pid_t both[2] = {self, pid};
        v[F_MEMFD_FORK] = memfd_mb(both, 2);
        v[F_ALL_FORK] = v[F_PARENT_PSS] - shm_p + v[F_CHILD_PSS] - shm_c + v[F_MEMFD_FORK];

        close(go[1]);
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "forklat: the child failed (status %#x)\n", st);
            return 1;
        }
        close(stamp[0]);
        v[F_MIGRATE_MS] = migrate();
        sleep_ms(settle);
        v[F_SHMEM_EXIT] = shmem_mb();
        double rss_exit;
        rollup(self, &rss_exit, &v[F_PSS_EXIT], &shm_p);
        v[F_MEMFD_EXIT] = memfd_mb(&self, 1);
        v[F_ALL_EXIT] = v[F_PSS_EXIT] - shm_p + v[F_MEMFD_EXIT];
        char label[32];
        snprintf(label, sizeof label, "run %d", r + 1);
        print_fields(label, size_mb, v);
    }

    double med[NFIELDS], *col = malloc(sizeof(double) * (size_t)runs);
    if (!col)
        die("malloc");
    for (int i = 0; i < NFIELDS; i++) {
        for (int r = 0; r < runs; r++)
            col[r] = val[r][i];
        qsort(col, (size_t)runs, sizeof(double), cmp_double);
        med[i] = runs % 2 ? col[runs / 2] : (col[runs / 2 - 1] + col[runs / 2]) / 2;
    }
    print_fields("median", size_mb, med);

    /* touch the heap once more so nothing above could have been optimised away */
    size_t sum = 0;
    for (size_t i = 0; i < h.n; i++)
        sum += *(unsigned char *)h.p[i];
    fprintf(stderr, "forklat: checksum %zu\n", sum);
    return 0;
}
