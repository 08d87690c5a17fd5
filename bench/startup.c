/* startup.c - what libmesh costs a program at start-up: spawns a tiny program that
 * mallocs once N times without and with LD_PRELOAD=libmesh, interleaved in rounds,
 * and prints the median per-run time of each and their ratio.
 * usage: startup LIBMESH [RUNS=1000] [ROUNDS=5]
 * The tiny program is this binary itself run with the argument "--child". */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double run_batch(const char *self, char **envp, int runs) {
    char *argv[] = {(char *)self, "--child", NULL};
    double t0 = now();
    for (int i = 0; i < runs; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, self, NULL, NULL, argv, envp) != 0 || waitpid(pid, &status, 0) < 0 ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "startup: child failed\n");
            exit(1);
        }
    }
    return (now() - t0) / runs;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) {
        volatile char *p = malloc(64);
        p[0] = 1;
        free((void *)p);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: startup LIBMESH [RUNS] [ROUNDS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 1000, rounds = argc > 3 ? atoi(argv[3]) : 5;
    char preload[4096];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
    char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};
    char *mesh_env[] = {"PATH=/usr/bin:/bin", preload, NULL};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = 0;
    double plain[64], mesh[64];
    if (rounds > 64) rounds = 64;
    for (int r = 0; r < rounds; r++) {
        plain[r] = run_batch(self, plain_env, runs);
        mesh[r] = run_batch(self, mesh_env, runs);
    }
    qsort(plain, rounds, sizeof plain[0], cmp);
    qsort(mesh, rounds, sizeof mesh[0], cmp);
    double p = plain[rounds / 2], m = mesh[rounds / 2];
    printf("start-up of a program that mallocs once (median of %d rounds x %d runs):\n", rounds, runs);
    printf("  without libmesh  %8.1f us per run\n", p * 1e6);
    printf("  with libmesh     %8.1f us per run\n", m * 1e6);
    printf("  ratio            %8.3f  (+%.1f us)\n", m / p, (m - p) * 1e6);
    return 0;
}
