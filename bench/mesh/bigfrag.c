/* bigfrag.c - libmesh meshing benchmark: a large heap of ten size classes, fragmented
 * at random, then idle, then malloc_trim(0).
 *
 * One thread allocates ALLOC_MIB MiB of objects whose sizes cycle through ten classes
 * (16, 32, 48, 64, 96, 128, 192, 256, 384 and 512 B) in a shuffled order, so the
 * classes' spans interleave in memory as a real program's do, and writes every byte.
 * It then frees a random (100 - KEEP_PCT)% of them, in random order: the survivors are
 * scattered thinly over every page. The last free starts the hold: HOLD_MS of idle
 * time, sampling PSS every 20 ms (no allocation: an idle program), after which it
 * reads PSS, calls malloc_trim(0), reads PSS again, checks every survivor and exits
 * without freeing them. Bookkeeping arrays are mmap'd, so the heap holds only the
 * benchmark's objects. The hold samples what needs no walk of the mappings (reading
 * smaps_rollup walks every one under the kernel's mmap lock, which a heap of tens of
 * thousands of meshed spans makes slow, and the mesher's mappings would wait for it):
 * resident anonymous memory from /proc/self/statm, plus under libmesh the heap file's
 * size (stats.memfd_bytes, an fstat), which counts a meshed page once.
 *
 * usage: bigfrag [ALLOC_MIB=640] [KEEP_PCT=15] [HOLD_MS=3000] [SEED=1]
 * stdout: one deterministic result line (the same under every allocator).
 * stderr: one line "bigfrag-stats key=value ..." with pss_alloc_kib (after the
 *   frees), pss_hold_kib (at the end of the hold), pss_trim_kib (after malloc_trim),
 *   live_kib (bytes requested by the survivors), saved90_ms (time from the last free
 *   until PSS first came within 10% of its end-of-hold value: when 90% of the hold's
 *   saving was there, from PSS samples, or heap-file samples under libmesh; 0 when
 *   the hold saved nothing), alloc_s, free_s, and with
 *   libmesh heap_vmas, mesh_aliases, vmas_per_meshed_span, mesh_count, pause_p99_ns,
 *   pause_max_ns (including malloc_trim's passes), hold_pause_max_ns (before it).
 * Exit 0 on success, 1 on corruption or out of memory, 2 on bad arguments. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NSIZES 10
static const uint32_t sizes[NSIZES] = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512};
#define SAMPLE_MS 20

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static uint64_t rng_state;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long pss_kib(void) {
    int fd = open("/proc/self/smaps_rollup", O_RDONLY);
    if (fd < 0) return -1;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strstr(buf, "\nPss:");
    return p ? strtol(p + 5, NULL, 10) : -1;
}

// Resident pages from /proc/self/statm (counters only): all of them, or the anonymous
// ones (resident less file-backed and shared memory).
static long statm_kib(int anon_only) {
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    long size, resident, shared;
    if (sscanf(buf, "%ld %ld %ld", &size, &resident, &shared) != 3) return -1;
    return (anon_only ? resident - shared : resident) * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *map_array(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "bigfrag: mmap of %zu bytes failed\n", bytes);
        exit(1);
    }
    return p;
}

static uint8_t fill_byte(size_t i) { return (uint8_t)(i * 2654435761u >> 24) | 1; }

static size_t stat_of(mallctl_fn ctl, const char *name) {
    size_t v = 0, len = sizeof v;
    return ctl && ctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

int main(int argc, char **argv) {
    long alloc_mib = argc > 1 ? atol(argv[1]) : 640, keep_pct = argc > 2 ? atol(argv[2]) : 15;
    long hold_ms = argc > 3 ? atol(argv[3]) : 3000;
    rng_state = argc > 4 ? strtoull(argv[4], NULL, 0) : 1;
    if (alloc_mib <= 0 || keep_pct < 0 || keep_pct > 100 || hold_ms < 0) {
        fprintf(stderr, "usage: bigfrag [ALLOC_MIB=640] [KEEP_PCT=15] [HOLD_MS=3000] [SEED=1]\n");
        return 2;
    }
    mallctl_fn ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    size_t mean = 0;
    for (int k = 0; k < NSIZES; k++) mean += sizes[k];
    mean /= NSIZES;
    size_t n = ((size_t)alloc_mib << 20) / mean;
    uint8_t **obj = map_array(n * sizeof *obj);
    uint32_t *order = map_array(n * sizeof *order);
    uint8_t *cls = map_array(n);
    for (size_t i = 0; i < n; i++) cls[i] = (uint8_t)(i % NSIZES);
    for (size_t i = n; i > 1; i--) { // shuffled sizes: the classes interleave
        size_t j = rng() % i;
        uint8_t t = cls[i - 1];
        cls[i - 1] = cls[j];
        cls[j] = t;
    }
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        obj[i] = malloc(sizes[cls[i]]);
        if (!obj[i]) {
            fprintf(stderr, "bigfrag: out of memory at object %zu\n", i);
            return 1;
        }
        memset(obj[i], fill_byte(i), sizes[cls[i]]);
    }
    double t1 = now_s();
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rng() % i;
        uint32_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    size_t nfree = n - n * (size_t)keep_pct / 100, live = 0;
    for (size_t k = 0; k < nfree; k++) {
        free(obj[order[k]]);
        obj[order[k]] = NULL;
    }
    double t2 = now_s();
    for (size_t i = 0; i < n; i++)
        if (obj[i]) live += sizes[cls[i]];
    long pss_alloc = pss_kib();
    // The hold: samples every SAMPLE_MS; the first sample within 10% (of the hold's
    // saving) of the final value is when 90% of the saving had come.
    size_t nsamples = (size_t)hold_ms / SAMPLE_MS + 1;
    long *samples = map_array(nsamples * sizeof *samples);
    double *when = map_array(nsamples * sizeof *when);
    for (size_t k = 0; k < nsamples; k++) {
        struct timespec ts = {0, SAMPLE_MS * 1000000L};
        if (k) nanosleep(&ts, NULL);
        samples[k] = ctl ? (long)(stat_of(ctl, "stats.memfd_bytes") >> 10) + statm_kib(1) : statm_kib(0);
        when[k] = now_s() - t2;
    }
    long pss_hold = pss_kib();
    double saved90_ms = 0;
    long saving = samples[0] - samples[nsamples - 1];
    if (saving > 0)
        for (size_t k = 0; k < nsamples; k++)
            if (samples[0] - samples[k] >= saving * 9 / 10) {
                saved90_ms = when[k] * 1000;
                break;
            }
    size_t hold_pause_max = stat_of(ctl, "stats.mesh_pause_max_ns");
    malloc_trim(0);
    long pss_trim = pss_kib();
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!obj[i]) continue;
        for (uint32_t b = 0; b < sizes[cls[i]]; b++)
            if (obj[i][b] != fill_byte(i)) {
                fprintf(stderr, "bigfrag: object %zu byte %u corrupted\n", i, b);
                return 1;
            }
        sum += fill_byte(i) * (uint64_t)sizes[cls[i]];
    }
    printf("bigfrag: %zu objects, %zu kept, %zu live bytes, checksum %llu\n", n, n - nfree, live,
           (unsigned long long)sum);
    size_t aliases = stat_of(ctl, "stats.mesh_aliases");
    fprintf(stderr,
            "bigfrag-stats pss_alloc_kib=%ld pss_hold_kib=%ld pss_trim_kib=%ld live_kib=%zu saved90_ms=%.0f "
            "alloc_s=%.3f free_s=%.3f heap_vmas=%zu mesh_aliases=%zu vmas_per_meshed_span=%.3f mesh_count=%zu "
            "pause_p99_ns=%zu pause_max_ns=%zu hold_pause_max_ns=%zu\n",
            pss_alloc, pss_hold, pss_trim, live >> 10, saved90_ms, t1 - t0, t2 - t1,
            stat_of(ctl, "stats.heap_vmas"), aliases,
            aliases ? (double)stat_of(ctl, "stats.heap_vmas") / (double)aliases : 0.0,
            stat_of(ctl, "stats.mesh_count"), stat_of(ctl, "stats.mesh_pause_p99_ns"),
            stat_of(ctl, "stats.mesh_pause_max_ns"), hold_pause_max);
    return 0;
}
