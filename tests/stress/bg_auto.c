/* bg_auto.c - mesh.background_thread = "auto" (the default): a program whose heap stays
 * small never gets a thread; one whose heap grows past 64 MiB gets exactly one, which
 * is named libmesh-bg and meshes while the program sleeps (no frees or allocations
 * of its own) at normal priority, and with it its idle gate, libmesh-idle, at SCHED_IDLE
 * (two helper threads); a fork child has no helper thread until it meshes a large heap
 * itself; and neither MESH_BACKGROUND_THREAD=false nor MESH_PERIOD_MS=0 ever starts
 * one. Every surviving
 * object is checked at the end of each phase.
 *
 * The variants run as re-executions of this program with their environment set, so
 * the test works the same linked against libmesh and under LD_PRELOAD. Without
 * libmesh (mesh_mallctl not found) it checks only the objects and says so.
 * usage: bg_auto [auto|off|period0]   (no argument: all three, each in a child) */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_util.h"

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;
static const char *g_mode = "auto";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "bg_auto %s: FAIL: ", g_mode);
    va_list ap;
    va_start(ap, fmt);
    stress_vsay(buf, sizeof buf, n > 0 ? (size_t)n : 0, fmt, ap);
    va_end(ap);
    _exit(1);
}

static int threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) die("cannot open /proc/self/status: %s", strerror(errno));
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    if (n < 1) die("no Threads: line in /proc/self/status");
    return n;
}

/* The thread of this process named want (/proc/self/task/N/comm), 0 if none. */
static pid_t helper_tid(const char *want) {
    DIR *d = opendir("/proc/self/task");
    if (!d) die("cannot open /proc/self/task: %s", strerror(errno));
    pid_t found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(name, sizeof name, f) && !strncmp(name, want, strlen(want)) && name[strlen(want)] == '\n')
            found = (pid_t)atoi(e->d_name);
        fclose(f);
    }
    closedir(d);
    return found;
}

/* The helper named want exists and runs under the scheduling policy policy. The mesher
   holds locks program threads wait on, so it must not run at SCHED_IDLE (priority
   inversion); only its gate, which holds nothing, does. */
static void check_helper(const char *want, int policy, const char *policy_name) {
    pid_t tid = helper_tid(want);
    if (!tid) die("no thread of this process is named %s", want);
    int got = sched_getscheduler(tid);
    if (got != policy) die("%s runs under scheduling policy %d, expected %s", want, got, policy_name);
}

static size_t mesh_count(void) {
    size_t v = 0, len = sizeof v;
    if (g_ctl && g_ctl("stats.mesh_count", &v, &len, NULL, 0) != 0) die("stats.mesh_count unreadable");
    return v;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

enum { SIZE = 64 };
typedef struct {
    unsigned char **p;
    size_t n;
} set_t;

static unsigned char tag(size_t i, size_t k) { return (unsigned char)(i * 131 + k * 7 + 1); }

/* Allocates mib MiB of SIZE-byte objects, frees a random 80% of them (the frees also
 * drive the mesher's ticks) and keeps the rest in s. */
static void fragment(set_t *s, size_t mib, uint64_t *rng) {
    size_t n = (mib << 20) / SIZE;
    unsigned char **all = malloc(n * sizeof *all);
    if (!all) die("out of memory for %zu pointers", n);
    for (size_t i = 0; i < n; i++) {
        all[i] = malloc(SIZE);
        if (!all[i]) die("malloc(%d) failed after %zu objects", SIZE, i);
        for (size_t k = 0; k < SIZE; k++) all[i][k] = tag(s->n + i, k);
    }
    size_t kept = 0;
    unsigned char **keep = realloc(s->p, (s->n + n / 4) * sizeof *keep);
    if (!keep) die("out of memory for the survivors");
    s->p = keep;
    for (size_t i = 0; i < n; i++) {
        if (stress_rng(rng) % 100 < 80 || kept == n / 4) free(all[i]);
        else s->p[s->n + kept++] = all[i];
    }
    free(all);
    s->n += kept;
}

/* Each object's bytes step by 7 from its first one (tag), whatever its index was. */
static void verify(const set_t *s, const char *when) {
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 1; k < SIZE; k++)
            if ((unsigned char)(s->p[i][k] - s->p[i][0]) != (unsigned char)(7 * k))
                die("%s: byte %zu of object %zu corrupted", when, k, i);
}

/* Some small frees, the way a live program keeps freeing now and then. */
static void churn(int rounds) {
    for (int r = 0; r < rounds; r++) {
        void *q[256];
        for (int i = 0; i < 256; i++) q[i] = malloc(48);
        for (int i = 0; i < 256; i++) free(q[i]);
        sleep_ms(2);
    }
}

static int run(const char *mode) {
    g_mode = mode;
    bool expect_thread = strcmp(mode, "auto") == 0;
    uint64_t rng = 0x5eed;
    set_t s = {0};
    if (threads() != 1) die("started with %d threads", threads());

    fragment(&s, 16, &rng); /* well under 64 MiB */
    churn(100);
    verify(&s, "small heap");
    if (g_ctl && threads() != 1) die("a 16 MiB heap has %d threads, expected 1", threads());

    fragment(&s, 96, &rng); /* past 64 MiB */
    int seen = 1;
    for (int i = 0; i < 500 && seen == 1; i++) {
        churn(1);
        seen = threads();
    }
    /* The gate starts when the thread first waits for idle time, after its first sleep. */
    for (int i = 0; i < 100 && expect_thread && seen == 2; i++) {
        sleep_ms(20);
        seen = threads();
    }
    verify(&s, "large heap");
    if (g_ctl && expect_thread && seen != 3) die("a 112 MiB heap has %d threads, expected 3", seen);
    if (g_ctl && !expect_thread && seen != 1) die("%d threads with the thread off, expected 1", seen);

    if (g_ctl && expect_thread) {
        /* The thread meshes on its own: more fragments, then sleep without any call. */
        fragment(&s, 32, &rng);
        size_t before = mesh_count();
        sleep_ms(1500);
        size_t after = mesh_count();
        if (after <= before) die("no mesh while the program slept (%zu before, %zu after)", before, after);
        if (threads() != 3) die("%d threads after the idle phase, expected 3", threads());
        check_helper("libmesh-bg", SCHED_OTHER, "SCHED_OTHER");
        check_helper("libmesh-idle", SCHED_IDLE, "SCHED_IDLE");
    }
    verify(&s, "idle");

    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        verify(&s, "fork child");
        if (threads() != 1) die("the fork child has %d threads right after fork, expected 1", threads());
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) die("fork child failed (status %d)", st);

    for (size_t i = 0; i < s.n; i++) free(s.p[i]);
    free(s.p);
    printf("bg_auto %s: ok%s\n", mode, g_ctl ? "" : " (no libmesh: objects checked only)");
    return 0;
}

/* pexit: the main thread leaves with pthread_exit while a worker still runs; when
   the worker ends, the process must end with status 0 and run its atexit handlers,
   as without libmesh - the helper threads must not keep it alive. */
static void *late_worker(void *arg) {
    (void)arg;
    sleep_ms(200);
    return NULL;
}

static void said_bye(void) { stress_say("atexit handler ran\n"); }

static int run_pexit(const char *mode) {
    g_mode = mode;
    uint64_t rng = 0x9e11;
    set_t s = {0};
    fragment(&s, 96, &rng);
    for (int i = 0; i < 500 && g_ctl && threads() < 2; i++) churn(1);
    if (g_ctl && threads() < 2) die("no helper thread started");
    atexit(said_bye);
    pthread_t t;
    if (pthread_create(&t, NULL, late_worker, NULL) != 0) die("pthread_create failed");
    pthread_exit(NULL);
}

/* Runs this program in MODE with two environment settings; true if it exited 0 within
   limit_s seconds (and, for pexit, ran its atexit handler: its stderr is checked). */
static bool run_child(char **argv, const char *mode, const char *env1, const char *env2, int limit_s) {
    int pipefd[2];
    if (pipe(pipefd) != 0) die("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        putenv((char *)env1);
        putenv((char *)env2);
        execl("/proc/self/exe", argv[0], mode, (char *)NULL);
        die("exec /proc/self/exe: %s", strerror(errno));
    }
    close(pipefd[1]);
    char err[4096] = "";
    size_t got = 0;
    int st = 0;
    bool done = false;
    for (int ms = 0; ms < limit_s * 1000 && !done; ms += 10) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (!done) sleep_ms(10);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    ssize_t n;
    while (got + 1 < sizeof err && (n = read(pipefd[0], err + got, sizeof err - 1 - got)) > 0) got += (size_t)n;
    err[got] = 0;
    close(pipefd[0]);
    fputs(err, stderr);
    if (!done) printf("bg_auto %s: FAIL: still running after %d s (killed)\n", mode, limit_s);
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("bg_auto %s: FAIL: status %#x\n", mode, st);
    else if (!strcmp(mode, "pexit") && !strstr(err, "atexit handler ran\n"))
        printf("bg_auto %s: FAIL: exited without running its atexit handler\n", mode);
    else {
        if (!strcmp(mode, "pexit")) printf("bg_auto %s (%s): ok\n", mode, env2);
        return true;
    }
    return false;
}

int main(int argc, char **argv) {
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    alarm(120);
    if (argc > 1 && !strcmp(argv[1], "pexit")) return run_pexit(argv[1]);
    if (argc > 1) return run(argv[1]);
    static const char *const modes[][3] = {
        {"auto", "MESH_BACKGROUND_THREAD=auto", "MESH_PERIOD_MS=1"},
        {"off", "MESH_BACKGROUND_THREAD=false", "MESH_PERIOD_MS=1"},
        {"period0", "MESH_BACKGROUND_THREAD=auto", "MESH_PERIOD_MS=0"},
        {"pexit", "MESH_PERIOD_MS=1", "MESH_BACKGROUND_THREAD=auto"},
        {"pexit", "MESH_PERIOD_MS=1", "MESH_FREEPHYS_THREAD=true"},
    };
    int n = (int)(sizeof modes / sizeof modes[0]), failed = 0;
    for (int m = 0; m < n; m++)
        if (!run_child(argv, modes[m][0], modes[m][1], modes[m][2], 30)) failed++;
    printf("%d passed, %d failed\n", n - failed, failed);
    return failed != 0;
}
