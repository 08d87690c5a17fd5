/* fragment.c - libmesh meshing benchmark: fragmentation, then idle.
 * Each of THREADS threads runs six rounds with growing object sizes (32, 48,
 * 64, 96, 128, 256 B). A round allocates ROUND_MIB MiB (split over the
 * threads) of objects of that one size, fills them, then frees a random
 * 75-90% of them (the percentage is drawn per round) and keeps the rest. The
 * survivors are scattered thinly over every page of the round, which a
 * non-compacting allocator cannot give back and a meshing one can.
 * Then the program stays alive for HOLD_MS. Every 50 ms of the hold each
 * thread allocates and frees a batch of temporary objects of every round
 * size, starting with a different size each tick (net zero, so the
 * survivors do not change; it is what a live program does, and frees are
 * what trigger libmesh's mesher), and reads and rewrites
 * (with the same bytes) a random sample of its survivors, timing each of
 * those operations. At the end of the hold it reads its own PSS from
 * /proc/self/smaps_rollup, checks every survivor and exits without freeing
 * them.
 * Bookkeeping arrays are mmap'd, not malloc'd, so the heap holds only the
 * benchmark's objects (the arrays still count in PSS, equally for every
 * allocator: 8 bytes per survivor).
 * COMPACT=N calls mesh_mallctl("mesh.compact") N times at the start of the
 * hold (when libmesh is the allocator), to show what full passes achieve.
 *
 * usage: fragment [THREADS=1] [ROUND_MIB=64] [HOLD_MS=3000] [SEED=1] [COMPACT=0]
 * stdout: one deterministic result line (the same under every allocator).
 * stderr: one line "fragment-stats key=value ..." with the measurements:
 *   pss_alloc_kib (PSS after the last round), pss_end_kib (PSS at the end of
 *   the hold), rss_end_kib, live_kib (bytes requested by the survivors),
 *   op_max_ns (slowest single malloc/free/read/write in the hold, any thread),
 *   alloc_s (time of the rounds), and with libmesh also mesh_count,
 *   meshed_bytes, memfd_bytes, mesh_passes, dirty_bytes, active_bytes, pause_p50_ns, pause_p99_ns,
 *   pause_max_ns (bucketed upper bounds, see stats.mesh_pause_*), heap_vmas,
 *   mesh_aliases and vmas_per_meshed_span (stats.heap_vmas / stats.mesh_aliases,
 *   0 without aliases); -1 where a statistic is missing (no libmesh).
 * FRAGMENT_TRACE=1 in the environment prints PSS and mesh counters every tick.
 * Exit 0 on success, 1 on corruption or out of memory, 2 on bad arguments. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NROUNDS 6
static const uint32_t round_size[NROUNDS] = {32, 48, 64, 96, 128, 256};

#define CHURN_BYTES (96u << 10) /* temporary bytes per size per tick (> libmesh's cache) */
#define TOUCH_PER_TICK 512      /* survivors read and rewritten per thread per tick */

static long nthreads, round_mib, hold_ms, tick_ms = 50;
static uint64_t seed;
static int compact;
static unsigned free_pct[NROUNDS];
static pthread_barrier_t barrier;
static _Atomic uint64_t op_max_ns;

struct worker {
    pthread_t tid;
    long id;
    uint64_t rng;
    uintptr_t *keep; /* survivor pointer | round index in the low 4 bits */
    size_t nkeep, keep_cap;
    uint64_t sum, live_bytes;
};

static inline uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_op(uint64_t ns)
{
    uint64_t cur = atomic_load_explicit(&op_max_ns, memory_order_relaxed);
    while (ns > cur && !atomic_compare_exchange_weak(&op_max_ns, &cur, ns))
        ;
}

static void *map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "fragment: mmap of %zu bytes failed\n", bytes);
        exit(1);
    }
    return p;
}

static void die_oom(uint32_t size)
{
    fprintf(stderr, "fragment: malloc(%u) failed\n", size);
    exit(1);
}

/* Object layout: 4-byte tag, then every byte (uint8_t)(tag + 0x5b). */
static inline void fill(unsigned char *p, uint32_t size, uint32_t tag)
{
    memset(p + 4, (unsigned char)(tag + 0x5b), size - 4);
    memcpy(p, &tag, 4);
}

static uint32_t check(const unsigned char *p, uint32_t size)
{
    uint32_t tag;
    memcpy(&tag, p, 4);
    unsigned char b = (unsigned char)(tag + 0x5b);
    if (p[4] != b || p[size / 2] != b || p[size - 1] != b) {
        fprintf(stderr, "fragment: corrupted object %p size %u\n", (void *)p, size);
        exit(1);
    }
    return tag;
}

static void read_pss(long *pss, long *rss)
{
    char buf[4096];
    *pss = *rss = -1;
    int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += r;
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (!strncmp(l, "Rss:", 4))
            *rss = strtol(l + 4, NULL, 10);
        else if (!strncmp(l, "Pss:", 4))
            *pss = strtol(l + 4, NULL, 10);
    }
}

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn mesh_ctl;

static long mesh_stat(const char *name)
{
    size_t v = 0, len = sizeof v;
    if (!mesh_ctl || mesh_ctl(name, &v, &len, NULL, 0) != 0)
        return -1;
    return (long)v;
}

static long pss_alloc, rss_alloc;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    double t0 = now_s();
    for (int r = 0; r < NROUNDS; r++) {
        uint32_t size = round_size[r];
        size_t n = ((size_t)round_mib << 20) / size / (size_t)nthreads;
        unsigned char **obj = map(n * sizeof *obj);
        for (size_t i = 0; i < n; i++) {
            unsigned char *p = malloc(size);
            if (!p)
                die_oom(size);
            fill(p, size, (uint32_t)(xorshift(&w->rng) >> 32));
            obj[i] = p;
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t tag = check(obj[i], size);
            if (xorshift(&w->rng) % 100 < free_pct[r]) {
                free(obj[i]);
            } else {
                w->keep[w->nkeep++] = (uintptr_t)obj[i] | (uintptr_t)r;
                w->sum += tag + size;
                w->live_bytes += size;
            }
        }
        munmap(obj, n * sizeof *obj);
    }
    if (w->id == 0)
        fprintf(stderr, "fragment: rounds done in %.3f s\n", now_s() - t0);
    pthread_barrier_wait(&barrier);
    if (w->id == 0) {
        read_pss(&pss_alloc, &rss_alloc);
        for (int c = 0; c < compact && mesh_ctl; c++) {
            size_t rel = 0, len = sizeof rel;
            uint64_t c0 = now_ns();
            mesh_ctl("mesh.compact", &rel, &len, NULL, 0);
            long pss, rss;
            read_pss(&pss, &rss);
            fprintf(stderr, "fragment: mesh.compact %d released %zu bytes in %.1f ms, PSS now %ld KiB\n", c + 1,
                    rel, (double)(now_ns() - c0) / 1e6, pss);
        }
    }
    pthread_barrier_wait(&barrier);

    /* the hold: net-zero churn and survivor touches every tick */
    size_t churn_max = CHURN_BYTES / round_size[0];
    unsigned char **tmp = map(churn_max * sizeof *tmp);
    double end = now_s() + (double)hold_ms / 1000.0;
    uint64_t local_max = 0;
    for (int tick = 0; now_s() < end; tick++) {
        for (int rr = 0; rr < NROUNDS; rr++) {
            int r = (rr + tick) % NROUNDS; /* each tick starts with another size */
            uint32_t size = round_size[r];
            size_t n = CHURN_BYTES / size;
            for (size_t i = 0; i < n; i++) {
                uint64_t a = now_ns();
                unsigned char *p = malloc(size);
                uint64_t d = now_ns() - a;
                if (!p)
                    die_oom(size);
                if (d > local_max)
                    local_max = d;
                p[0] = (unsigned char)i;
                p[size - 1] = (unsigned char)i;
                tmp[i] = p;
            }
            for (size_t i = 0; i < n; i++) {
                if (tmp[i][0] != (unsigned char)i || tmp[i][size - 1] != (unsigned char)i) {
                    fprintf(stderr, "fragment: temporary object %p corrupted\n", (void *)tmp[i]);
                    exit(1);
                }
                uint64_t a = now_ns();
                free(tmp[i]);
                uint64_t d = now_ns() - a;
                if (d > local_max)
                    local_max = d;
            }
        }
        for (int k = 0; k < TOUCH_PER_TICK && w->nkeep; k++) {
            uintptr_t e = w->keep[xorshift(&w->rng) % w->nkeep];
            unsigned char *p = (unsigned char *)(e & ~(uintptr_t)15);
            uint32_t size = round_size[e & 15];
            uint64_t a = now_ns();
            uint32_t tag = check(p, size);
            fill(p, size, tag); /* a write: meets the mesher's write barrier */
            uint64_t d = now_ns() - a;
            if (d > local_max)
                local_max = d;
        }
        if (w->id == 0 && getenv("FRAGMENT_TRACE")) {
            long pss, rss;
            read_pss(&pss, &rss);
            fprintf(stderr, "fragment: t=%.2f pss_kib=%ld mesh_passes=%ld mesh_count=%ld\n",
                    end - now_s(), pss, mesh_stat("stats.mesh_passes"), mesh_stat("stats.mesh_count"));
        }
        struct timespec ts = {0, tick_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    note_op(local_max);
    munmap(tmp, churn_max * sizeof *tmp);
    pthread_barrier_wait(&barrier);
    return NULL;
}

static long arg_long(int argc, char **argv, int i, long def, long min, long max)
{
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < min || v > max) {
        fprintf(stderr, "fragment: bad argument '%s'\n", argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    nthreads = arg_long(argc, argv, 1, 1, 1, 64);
    round_mib = arg_long(argc, argv, 2, 64, 1, 4096);
    hold_ms = arg_long(argc, argv, 3, 3000, 0, 3600000);
    seed = (uint64_t)arg_long(argc, argv, 4, 1, 1, 1L << 40);
    compact = (int)arg_long(argc, argv, 5, 0, 0, 100);
    mesh_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");

    uint64_t s = 0x9E3779B97F4A7C15ULL * seed;
    for (int r = 0; r < NROUNDS; r++)
        free_pct[r] = 75 + (unsigned)(xorshift(&s) % 16); /* 75..90 */

    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    struct worker *ws = map(sizeof *ws * (size_t)nthreads);
    size_t cap = 0;
    for (int r = 0; r < NROUNDS; r++)
        cap += ((size_t)round_mib << 20) / round_size[r] / (size_t)nthreads * (100 - 75) / 100 + 64;
    for (long t = 0; t < nthreads; t++) {
        ws[t].id = t;
        ws[t].rng = 0x9E3779B97F4A7C15ULL * (seed * 131 + (uint64_t)t + 1);
        /* reserve enough for the worst case (75% freed); only touched pages count */
        ws[t].keep_cap = cap * 2;
        ws[t].keep = map(ws[t].keep_cap * sizeof(uintptr_t));
    }
    for (long t = 1; t < nthreads; t++)
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            fprintf(stderr, "fragment: pthread_create failed\n");
            return 1;
        }
    worker_main(&ws[0]);
    for (long t = 1; t < nthreads; t++)
        pthread_join(ws[t].tid, NULL);

    long pss_end, rss_end;
    read_pss(&pss_end, &rss_end);
    long mc = mesh_stat("stats.mesh_count"), mb = mesh_stat("stats.meshed_bytes"),
         mf = mesh_stat("stats.memfd_bytes"), mp = mesh_stat("stats.mesh_passes"),
         p50 = mesh_stat("stats.mesh_pause_p50_ns"), p99 = mesh_stat("stats.mesh_pause_p99_ns"),
         pmax = mesh_stat("stats.mesh_pause_max_ns"), dirty = mesh_stat("stats.dirty"),
         active = mesh_stat("stats.active"), vmas = mesh_stat("stats.heap_vmas"),
         aliases = mesh_stat("stats.mesh_aliases"), vpms = mesh_stat("stats.vmas_per_meshed_span_x1000");

    uint64_t sum = 0, live = 0, nkeep = 0;
    for (long t = 0; t < nthreads; t++) {
        for (size_t i = 0; i < ws[t].nkeep; i++) {
            uintptr_t e = ws[t].keep[i];
            check((unsigned char *)(e & ~(uintptr_t)15), round_size[e & 15]);
        }
        sum += ws[t].sum;
        live += ws[t].live_bytes;
        nkeep += ws[t].nkeep;
    }
    fprintf(stderr,
            "fragment-stats threads=%ld pss_alloc_kib=%ld pss_end_kib=%ld rss_end_kib=%ld live_kib=%llu "
            "op_max_ns=%llu mesh_count=%ld meshed_bytes=%ld memfd_bytes=%ld mesh_passes=%ld "
            "dirty_bytes=%ld active_bytes=%ld pause_p50_ns=%ld pause_p99_ns=%ld pause_max_ns=%ld "
            "heap_vmas=%ld mesh_aliases=%ld vmas_per_meshed_span=%.3f\n",
            nthreads, pss_alloc, pss_end, rss_end, (unsigned long long)(live >> 10),
            (unsigned long long)atomic_load(&op_max_ns), mc, mb, mf, mp, dirty, active, p50, p99, pmax,
            vmas, aliases, vpms < 0 ? -1.0 : (double)vpms / 1000);
    printf("fragment threads=%ld round_mib=%ld kept=%llu live_bytes=%llu checksum=%016llx\n", nthreads,
           round_mib, (unsigned long long)nkeep, (unsigned long long)live, (unsigned long long)sum);
    return 0; /* survivors are left allocated on purpose */
}
