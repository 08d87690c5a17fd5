/* backlog.c - how fast libmesh works off a meshing backlog.
 *
 * usage: backlog [SIZE=200] [MODE=compact|idle] [SECONDS=5]
 *
 * Allocates 1,000,000 objects of SIZE bytes, frees a random 70%, then either calls
 * mesh_mallctl("mesh.compact") (compact: a full pass now; prints its wall time) or
 * sleeps (idle: what the background thread does, MESH_BACKGROUND_THREAD=1), printing
 * once a second the mesh count, passes, the heap file's allocated bytes and the pause
 * quantiles (log2 bucket upper bounds). Link with -lmesh or run under LD_PRELOAD.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*ctl_fn)(const char *, void *, size_t *, void *, size_t);
static ctl_fn ctl;

static size_t get(const char *name) {
    size_t v = 0, len = sizeof v;
    if (ctl(name, &v, &len, NULL, 0) != 0) return 0;
    return v;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void report(const char *when) {
    printf("%-10s meshes %6zu  passes %5zu  heap file %4zu MiB  pause p50 %.1f ms p99 %.1f ms max %.1f ms\n",
           when, get("stats.mesh_count"), get("stats.mesh_passes"), get("stats.memfd_bytes") >> 20,
           (double)get("stats.mesh_pause_p50_ns") / 1e6, (double)get("stats.mesh_pause_p99_ns") / 1e6,
           (double)get("stats.mesh_pause_max_ns") / 1e6);
}

int main(int argc, char **argv) {
    size_t size = argc > 1 ? (size_t)atoi(argv[1]) : 200, n = 1000000;
    const char *mode = argc > 2 ? argv[2] : "compact";
    int seconds = argc > 3 ? atoi(argv[3]) : 5;
    ctl = (ctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!ctl) {
        fprintf(stderr, "backlog: not running on libmesh (no mesh_mallctl)\n");
        return 1;
    }
    char **p = malloc(n * sizeof *p);
    if (!p) return 1;
    for (size_t i = 0; i < n; i++) {
        p[i] = malloc(size);
        if (!p[i]) return 1;
        memset(p[i], (int)(i & 0xff), size);
    }
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 100 < 70) {
            free(p[i]);
            p[i] = NULL;
        }
    }
    report("fragmented");
    if (!strcmp(mode, "compact")) {
        double t = now();
        size_t released = 0, len = sizeof released;
        ctl("mesh.compact", &released, &len, NULL, 0);
        printf("mesh.compact took %.0f ms\n", (now() - t) * 1e3);
        report("compacted");
    } else {
        for (int s = 1; s <= seconds; s++) {
            sleep(1);
            char when[16];
            snprintf(when, sizeof when, "idle %d s", s);
            report(when);
        }
    }
    size_t bad = 0; /* every survivor still holds its bytes */
    for (size_t i = 0; i < n; i++)
        if (p[i] && (p[i][0] != (char)(i & 0xff) || p[i][size - 1] != (char)(i & 0xff))) bad++;
    printf("survivors intact: %s\n", bad ? "NO" : "yes");
    return bad != 0;
}
