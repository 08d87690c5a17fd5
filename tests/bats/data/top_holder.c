/* top_holder.c PIDFILE MODE [COMM] - a process for the `meshctl stats --all` tests
 * (tests/bats/top.bats), run under LD_PRELOAD=libmesh.
 *
 *   frag    fragment the heap and run mesh.compact, so something is meshed
 *   small   a small heap (it stays on private memory unless MESH_FILE_FROM_MIB=0)
 *   exit    allocate a little and exit at once (for processes that end mid-scan)
 *   closefd frag, then close the heap's descriptor (libmesh moves it to 512 or above)
 *           behind libmesh's back, allocate and fragment more and ask for meshing,
 *           which finds the descriptor gone
 *
 * COMM, when given, becomes the process's name (/proc/PID/comm, prctl PR_SET_NAME).
 * Then (frag, small) it writes its pid to PIDFILE (atomically, via a rename), prints
 * "meshed=N" (mesh_mallctl's stats.meshed_bytes) to stdout and sleeps: at most 120 s,
 * in case nobody kills it. Nothing it keeps is freed, so its figures stay put.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static void *keep[40000];
static size_t nkeep;

/* COUNT objects of SIZE bytes, every eighth kept: the spans left are mostly empty. */
static void fragment(size_t count, size_t size) {
    void **all = malloc(sizeof(void *) * count);
    for (size_t i = 0; i < count; i++) {
        all[i] = malloc(size);
        memset(all[i], (int)(i & 0xff), size);
    }
    for (size_t i = 0; i < count; i++) {
        if (i % 8 == 0 && nkeep < sizeof keep / sizeof keep[0]) keep[nkeep++] = all[i];
        else free(all[i]);
    }
    free(all);
}

static size_t stat_of(mallctl_fn ctl, const char *name) {
    size_t v = 0, len = sizeof v;
    if (ctl) ctl(name, &v, &len, NULL, 0);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: top_holder PIDFILE frag|small|exit|closefd [COMM]\n");
        return 2;
    }
    if (argc > 3) prctl(PR_SET_NAME, argv[3], 0, 0, 0);
    mallctl_fn ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!strcmp(argv[2], "exit")) {
        free(malloc(100));
        return 0;
    }
    if (!strcmp(argv[2], "frag") || !strcmp(argv[2], "closefd")) {
        fragment(80000, 64);
        fragment(40000, 256);
        for (int k = 0; k < 3; k++)
            if (ctl) ctl("mesh.compact", NULL, NULL, NULL, 0);
        if (!strcmp(argv[2], "closefd")) {
            for (int fd = 512; fd < 4096; fd++) close(fd);
            for (int i = 0; i < 4000; i++) keep[nkeep++] = malloc(16384);
            fragment(40000, 64);
            if (ctl) ctl("mesh.compact", NULL, NULL, NULL, 0);
        }
    } else {
        for (int i = 0; i < 100; i++) keep[nkeep++] = malloc(100);
    }
    printf("meshed=%zu\n", stat_of(ctl, "stats.meshed_bytes"));
    fflush(stdout);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, argv[1]) != 0) {
        perror("top_holder: pid file");
        return 1;
    }
    sleep(120);
    return 0;
}
