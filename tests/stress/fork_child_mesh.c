/*
 * fork_child_mesh.c - meshing goes on after fork(), in a long-lived child and in the
 * parent.
 *
 * The parent allocates many 64..1024-byte objects (from a thread that then exits, so
 * their spans are not attached to any thread) and forks a long-lived child.  The child:
 *   round 0: frees a random 80% of the inherited objects and compacts (malloc_trim(0),
 *            then mesh_mallctl("mesh.compact")) - the spans it meshes came from the
 *            parent across the fork;
 *   rounds 1..5: allocates a new batch, frees a random 80% of it, compacts;
 *   in round 3 it forks a grandchild that does the same once more;
 * and the parent, meanwhile, allocates and frees in its own heap, then, after the
 * child exited, frees 80% of its own copy of the objects and compacts too.
 * Every surviving object's contents are checked after every step.
 *
 * Under libmesh (mesh_mallctl is found with dlsym(RTLD_DEFAULT), so the same program
 * also runs on any other malloc) stats.mesh_count must rise in every such compaction.
 * An implementation may need a moment after fork before inherited spans can be meshed
 * (e.g. while it migrates them back to shared memory), so a compaction that meshed
 * nothing is retried for up to 10 s; the time it took is reported.
 *
 * usage: fork_child_mesh [objects=100000] [seed]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_util.h"

#define ROUNDS 6
#define GRANDCHILD_ROUND 3
#define RETRY_MS 10000

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;
static const char *g_who = "parent";

typedef struct obj {
    uint64_t *p;
    uint32_t size;
    uint64_t id;
} obj_t;

typedef struct set {
    obj_t *o;
    size_t n, cap;
} set_t;

static uint64_t g_next_id = 1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    char buf[500];
    int n = snprintf(buf, sizeof buf, "fork_child_mesh: FAIL: %s (pid %d): ", g_who, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    stress_vsay(buf, sizeof buf, (size_t)n, fmt, ap);
    va_end(ap);
    _exit(1);
}

static void on_alarm(int sig) {
    (void)sig;
    char buf[100];
    snprintf(buf, sizeof buf, "fork_child_mesh: FAIL: %s (pid %d) timed out\n", g_who, (int)getpid());
    stress_say(buf);
    _exit(1);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t ctl_size(const char *name) {
    size_t v = 0, len = sizeof v;
    if (!g_ctl)
        return 0;
    int rc = g_ctl(name, &v, &len, NULL, 0);
    if (rc != 0)
        die("mesh_mallctl(\"%s\") returned %d", name, rc);
    return v;
}

static inline uint64_t word(uint64_t id, size_t i) {
    uint64_t x = id * 0x9e3779b97f4a7c15ULL + i * 0xc2b2ae3d27d4eb4fULL;
    return x ^ (x >> 31);
}

static void fill(const obj_t *o) {
    o->p[0] = o->id;
    for (size_t i = 1; i < o->size / 8; i++)
        o->p[i] = word(o->id, i);
}

static void verify(const set_t *s, const char *when) {
    for (size_t k = 0; k < s->n; k++) {
        const obj_t *o = &s->o[k];
        for (size_t i = 0; i < o->size / 8; i++) {
            uint64_t want = i == 0 ? o->id : word(o->id, i);
            if (o->p[i] != want)
                die("%s: object %llu at %p (%u bytes): word %zu is %#llx, expected %#llx", when,
                    (unsigned long long)o->id, (void *)o->p, o->size, i, (unsigned long long)o->p[i],
                    (unsigned long long)want);
        }
    }
}

static void set_reserve(set_t *s, size_t more) {
    if (s->n + more <= s->cap)
        return;
    size_t cap = (s->n + more) * 2;
    /* the bookkeeping lives outside the heap under test */
    obj_t *o = mmap(NULL, cap * sizeof(obj_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (o == MAP_FAILED)
        die("mmap failed");
    if (s->o) {
        memcpy(o, s->o, s->n * sizeof(obj_t));
        munmap(s->o, s->cap * sizeof(obj_t));
    }
    s->o = o;
    s->cap = cap;
}

/* Appends count objects of 64..1024 bytes (multiples of 8), filled. */
static void add_batch(set_t *s, size_t count, uint64_t *rs) {
    set_reserve(s, count);
    for (size_t i = 0; i < count; i++) {
        obj_t *o = &s->o[s->n++];
        o->size = (uint32_t)(64 + 8 * (stress_rng(rs) % 121));
        o->id = g_next_id++;
        o->p = malloc(o->size);
        if (!o->p)
            die("malloc(%u) failed", o->size);
        fill(o);
    }
}

/* Frees a random pct% of the objects from index `from` on. */
static void free_share(set_t *s, size_t from, unsigned pct, uint64_t *rs) {
    size_t k = from;
    for (size_t i = from; i < s->n; i++) {
        if (stress_rng(rs) % 100 < pct)
            free(s->o[i].p);
        else
            s->o[k++] = s->o[i];
    }
    s->n = k;
}

typedef struct batch_job {
    set_t *s;
    size_t count;
    uint64_t seed;
} batch_job_t;

static void *batch_thread(void *arg) {
    batch_job_t *j = arg;
    add_batch(j->s, j->count, &j->seed);
    return NULL;
}

/* add_batch() from a thread that exits, so the spans it filled are not left attached to
   a living thread. */
static void add_batch_in_thread(set_t *s, size_t count, uint64_t seed) {
    batch_job_t j = {s, count, seed};
    pthread_t t;
    if (pthread_create(&t, NULL, batch_thread, &j) != 0)
        die("pthread_create failed");
    pthread_join(t, NULL);
}

/* malloc_trim(0) and mesh.compact; under libmesh, until stats.mesh_count rises (or
   RETRY_MS passed).  Returns the rise; *ms gets the time it took. */
static size_t compact_until_meshed(const char *what, size_t *count_before, size_t *count_after, double *ms) {
    double t0 = now_ms();
    size_t before = ctl_size("stats.mesh_count"), after = before;
    for (;;) {
        malloc_trim(0);
        if (g_ctl) {
            int rc = g_ctl("mesh.compact", NULL, NULL, NULL, 0);
            if (rc != 0)
                die("%s: mesh_mallctl(\"mesh.compact\") returned %d", what, rc);
        }
        after = ctl_size("stats.mesh_count");
        if (!g_ctl || after > before)
            break;
        if (now_ms() - t0 > RETRY_MS)
            die("%s: nothing was meshed: stats.mesh_count stayed %zu for %d s of malloc_trim(0) + mesh.compact",
                what, before, RETRY_MS / 1000);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    *count_before = before;
    *count_after = after;
    *ms = now_ms() - t0;
    return after - before;
}

static int g_report = -1; /* child: pipe to the parent for its report lines */

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof buf - 1)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    if (g_report >= 0) {
        if (write(g_report, buf, (size_t)n) != n)
            die("report pipe: %s", strerror(errno));
    } else {
        fwrite(buf, 1, (size_t)n, stdout);
    }
}

static void step(set_t *s, const char *who, const char *what) {
    size_t b, a;
    double ms;
    char when[160];
    snprintf(when, sizeof when, "%s, %s", who, what);
    compact_until_meshed(when, &b, &a, &ms);
    verify(s, when);
    if (g_ctl)
        report("  %-10s %-44s mesh_count %6zu -> %6zu (%.0f ms), %zu objects live", who, what, b, a, ms, s->n);
    else
        report("  %-10s %-44s (no libmesh: mesh_count not checked), %zu objects live", who, what, s->n);
}

static void grandchild(set_t *s, uint64_t seed) {
    g_who = "grandchild";
    alarm(60);
    verify(s, "grandchild, right after fork");
    uint64_t rs = seed;
    free_share(s, 0, 80, &rs);
    step(s, "grandchild", "freed 80% of the inherited objects");
    size_t from = s->n;
    add_batch_in_thread(s, 20000, stress_rng(&rs));
    free_share(s, from, 80, &rs);
    step(s, "grandchild", "new batch, 80% freed");
    _exit(0);
}

static void child(set_t *s, uint64_t seed, size_t count) {
    g_who = "child";
    alarm(120);
    verify(s, "child, right after fork");
    uint64_t rs = seed;
    free_share(s, 0, 80, &rs);
    step(s, "child", "round 0: freed 80% of the inherited objects");
    for (int round = 1; round < ROUNDS; round++) {
        size_t from = s->n;
        add_batch_in_thread(s, count / 3, stress_rng(&rs));
        free_share(s, from, 80, &rs);
        char what[64];
        snprintf(what, sizeof what, "round %d: new batch, 80%% freed", round);
        step(s, "child", what);
        if (round == GRANDCHILD_ROUND) {
            pid_t g = fork();
            if (g < 0)
                die("fork of the grandchild: %s", strerror(errno));
            if (g == 0)
                grandchild(s, stress_rng(&rs));
            int st = 0;
            if (waitpid(g, &st, 0) != g)
                die("waitpid: %s", strerror(errno));
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                die("the grandchild failed (status %#x)", st);
            verify(s, "child, after the grandchild exited");
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL); /* a long-lived child: it idles between rounds */
    }
    _exit(0);
}

int main(int argc, char **argv) {
    size_t count = 100000;
    uint64_t seed = 0xc41dULL;
    if (argc > 1)
        count = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        seed = strtoull(argv[2], NULL, 0);
    if (count < 1000) {
        fprintf(stderr, "usage: fork_child_mesh [objects >= 1000] [seed]\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    alarm(240);
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    double t0 = now_ms();
    uint64_t rs = seed;

    set_t s = {0};
    add_batch_in_thread(&s, count, stress_rng(&rs));
    verify(&s, "before fork");
    size_t parent_before = ctl_size("stats.mesh_count");

    int rp[2];
    if (pipe(rp) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(rp[0]);
        g_report = rp[1];
        child(&s, stress_rng(&rs) ^ 0xc1, count);
    }
    close(rp[1]);

    /* the parent keeps working while the child lives */
    set_t churn = {0};
    uint64_t prs = stress_rng(&rs);
    for (int i = 0; i < 20; i++) {
        add_batch(&churn, 5000, &prs);
        free_share(&churn, 0, 50, &prs);
        verify(&churn, "parent, churning while the child lives");
    }
    char lines[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(rp[0], lines + have, sizeof lines - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have == sizeof lines - 1)
            break;
    }
    lines[have] = 0;
    close(rp[0]);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        die("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
        die("the child died of signal %d%s; its report so far:\n%s", WTERMSIG(st),
            WTERMSIG(st) == SIGALRM ? " (it hung)" : "", lines);
    if (WEXITSTATUS(st) != 0)
        die("the child exited with status %d; its report so far:\n%s", WEXITSTATUS(st), lines);
    verify(&s, "parent, after the child exited");
    verify(&churn, "parent, after the child exited");

    printf("fork_child_mesh: %s, %zu objects before fork (parent mesh_count %zu)\n",
           g_ctl ? "libmesh" : "no libmesh", count, parent_before);
    fputs(lines, stdout);
    free_share(&s, 0, 80, &rs);
    free_share(&churn, 0, 100, &prs);
    step(&s, "parent", "after the child exited: freed 80%");
    size_t from = s.n;
    add_batch_in_thread(&s, count / 3, stress_rng(&rs));
    free_share(&s, from, 80, &rs);
    step(&s, "parent", "new batch, 80% freed");
    free_share(&s, 0, 100, &rs);
    printf("fork_child_mesh: ok (%.1f s)\n", (now_ms() - t0) / 1e3);
    return 0;
}
