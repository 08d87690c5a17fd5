/* meshstats.c - LD_PRELOAD companion of libmesh for programs we cannot change
 * (redis-server): at exit it reads libmesh's meshing statistics through
 * mesh_mallctl and appends one line to the file named by MESHSTATS_OUT:
 *   meshstats pid=N mesh_count= meshed_bytes= memfd_bytes= mesh_passes=
 *   pause_p50_ns= pause_p99_ns= pause_max_ns= resident= heap_vmas= mesh_aliases=
 *   vmas_per_meshed_span=
 * (the pause values are bucketed upper bounds, see include/mesh.h; -1: a statistic
 * this libmesh does not have; vmas_per_meshed_span is stats.heap_vmas /
 * stats.mesh_aliases, from stats.vmas_per_meshed_span_x1000, 0 without aliases). Without
 * libmesh in the process, or without MESHSTATS_OUT, it does nothing.
 * Preload it after libmesh: LD_PRELOAD="libmesh.so.1 meshstats.so".
 * Build: cc -O2 -shared -fPIC -o meshstats.so meshstats.c */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static long stat_of(mallctl_fn f, const char *name)
{
    size_t v = 0, len = sizeof v;
    return f(name, &v, &len, NULL, 0) == 0 ? (long)v : -1;
}

__attribute__((destructor)) static void meshstats_at_exit(void)
{
    const char *out = getenv("MESHSTATS_OUT");
    mallctl_fn f = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!out || !*out || !f)
        return;
    char line[640];
    long x1000 = stat_of(f, "stats.vmas_per_meshed_span_x1000");
    int n = snprintf(line, sizeof line,
                     "meshstats pid=%d mesh_count=%ld meshed_bytes=%ld memfd_bytes=%ld mesh_passes=%ld "
                     "pause_p50_ns=%ld pause_p99_ns=%ld pause_max_ns=%ld resident=%ld heap_vmas=%ld "
                     "mesh_aliases=%ld vmas_per_meshed_span=%.3f\n",
                     (int)getpid(), stat_of(f, "stats.mesh_count"), stat_of(f, "stats.meshed_bytes"),
                     stat_of(f, "stats.memfd_bytes"), stat_of(f, "stats.mesh_passes"),
                     stat_of(f, "stats.mesh_pause_p50_ns"), stat_of(f, "stats.mesh_pause_p99_ns"),
                     stat_of(f, "stats.mesh_pause_max_ns"), stat_of(f, "stats.resident"),
                     stat_of(f, "stats.heap_vmas"), stat_of(f, "stats.mesh_aliases"),
                     x1000 < 0 ? -1.0 : (double)x1000 / 1000);
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (n > 0 && write(fd, line, (size_t)n) < 0) {
        /* nothing to do at exit */
    }
    close(fd);
}
