/*
 * mesh_fork.c - fork() of a meshed heap.
 *
 * A builder thread makes a fragmented heap (objects of meshable sizes, a
 * random ~85% freed), mesh.compact meshes it (under libmesh stats.mesh_count
 * must then be > 0), then, a few rounds:
 *
 *   parent: every live object holds (id, generation G, words derived from both)
 *   fork
 *   child:  verify every object == G; write generation C into all of them;
 *           free a quarter, build a new fragmented batch, mesh.compact again
 *           (from the main thread while a helper thread rewrites objects);
 *           verify; in the first round fork a grandchild that verifies,
 *           meshes and exits; tell the parent "written"
 *   parent: on "written": verify == G (the child's writes stay in the child);
 *           write generation P; mesh again; tell the child "go"
 *   child:  verify == C (the parent's writes stay in the parent); _exit(0)
 *   parent: waitpid (exit status 0 required), verify == P; free some objects,
 *           build a new fragmented batch, mesh.compact; next round
 *
 * The last rounds fork from a secondary thread while a mesher thread runs
 * mesh.compact in a loop, a churner allocates and frees and a writer rewrites
 * its own objects (those are not checked in the child: the child may catch
 * one half-written).  Children are killed by alarm() if they hang.
 *
 * usage: mesh_fork [rounds=6] [threaded-rounds=8] [seed]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;

static const uint32_t g_sizes[] = {16, 32, 48, 64, 96, 128, 256, 512, 1024, 2048};
#define NSIZES (sizeof g_sizes / sizeof g_sizes[0])
#define MAX_OBJS 400000
#define BATCH 60000

typedef struct obj {
    uint64_t *p;
    uint32_t size;
    uint64_t id;
} obj_t;

static obj_t *g_obj; /* mmap'd: the stable set, checked in parent and child */
static size_t g_n;
static uint64_t g_next_id = 1;
static uint64_t g_seed = 0xf04cULL;
static int g_rounds = 6, g_trounds = 8;
static const char *g_who = "parent";
static const char *volatile g_stage = "start"; /* what a process was doing, for abort reports */
static volatile int g_stage_round = -1;

/* libmesh reports heap corruption with abort(): say where it happened */
static void on_abort(int sig) {
    char buf[200];
    int n = snprintf(buf, sizeof buf, "mesh_fork: %s (pid %d) aborted in round %d, while: %s\n", g_who,
                     (int)getpid(), g_stage_round, g_stage);
    if (write(2, buf, (size_t)n) < 0) {
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mesh_fork: %s (pid %d): %s\n", g_who, (int)getpid(), buf);
    fflush(stderr);
    _exit(1);
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t ctl_size(const char *name) {
    size_t v = 0, len = sizeof v;
    if (!g_ctl || g_ctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

static void compact(void) {
    if (g_ctl) {
        int rc = g_ctl("mesh.compact", NULL, NULL, NULL, 0);
        if (rc != 0)
            die("mesh_mallctl(\"mesh.compact\") returned %d", rc);
    } else {
        malloc_trim(0);
    }
}

static inline uint64_t pat(uint64_t id, uint64_t gen, size_t i) {
    uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ gen * 0xc2b2ae3d27d4eb4fULL ^ i * 0x165667b19e3779f9ULL;
    return x ^ (x >> 29);
}

static void fill(uint64_t *p, size_t size, uint64_t id, uint64_t gen) {
    p[0] = id;
    p[1] = gen;
    for (size_t i = 2; i < size / 8; i++)
        p[i] = pat(id, gen, i);
}

static void verify_one(const obj_t *o, uint64_t gen, const char *when) {
    const uint64_t *p = o->p;
    for (size_t i = 0; i < o->size / 8; i++) {
        uint64_t want = i == 0 ? o->id : i == 1 ? gen : pat(o->id, gen, i);
        if (p[i] != want)
            die("%s: object id %llu at %p (size %u): word %zu is %#llx, expected %#llx (generation %llu; word 1 "
                "holds %llu)",
                when, (unsigned long long)o->id, (void *)p, o->size, i, (unsigned long long)p[i],
                (unsigned long long)want, (unsigned long long)gen, (unsigned long long)p[1]);
    }
}

static void verify_all(uint64_t gen, const char *when) {
    for (size_t i = 0; i < g_n; i++)
        verify_one(&g_obj[i], gen, when);
}

static void write_all(uint64_t gen) {
    for (size_t i = 0; i < g_n; i++)
        fill(g_obj[i].p, g_obj[i].size, g_obj[i].id, gen);
}

/* Allocates a batch, frees a random ~85% of it, appends the survivors (filled
   with generation gen) to the stable set. */
static void fragment(uint64_t *rs, size_t count, uint64_t gen) {
    obj_t *tmp = mmap(NULL, sizeof(obj_t) * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tmp == MAP_FAILED)
        die("mmap failed");
    for (size_t i = 0; i < count; i++) {
        uint32_t size = g_sizes[(i / 64) % NSIZES];
        tmp[i].p = malloc(size);
        if (!tmp[i].p)
            die("malloc(%u) failed", size);
        tmp[i].size = size;
        tmp[i].id = g_next_id++;
        fill(tmp[i].p, size, tmp[i].id, gen);
    }
    for (size_t i = 0; i < count; i++) {
        if (g_n < MAX_OBJS && rng_next(rs) % 100 < 15)
            g_obj[g_n++] = tmp[i];
        else
            free(tmp[i].p);
    }
    munmap(tmp, sizeof(obj_t) * count);
}

/* Frees a random share (1/den) of the stable set. */
static void thin(uint64_t *rs, unsigned den) {
    size_t k = 0;
    for (size_t i = 0; i < g_n; i++) {
        if (rng_next(rs) % den == 0)
            free(g_obj[i].p);
        else
            g_obj[k++] = g_obj[i];
    }
    g_n = k;
}

typedef struct frag_job {
    uint64_t rs;
    size_t count;
    uint64_t gen;
} frag_job_t;

static void *fragment_thread(void *arg) {
    frag_job_t *j = arg;
    fragment(&j->rs, j->count, j->gen);
    return NULL;
}

/* fragment() from a thread that exits, so its cached frees reach the spans */
static void fragment_in_thread(uint64_t *rs, size_t count, uint64_t gen) {
    frag_job_t j = {rng_next(rs), count, gen};
    pthread_t t;
    if (pthread_create(&t, NULL, fragment_thread, &j) != 0)
        die("pthread_create failed");
    pthread_join(t, NULL);
}

/* ---- pipes between parent and child ---- */

static void put(int fd, char c) {
    while (write(fd, &c, 1) != 1)
        if (errno != EINTR)
            die("pipe write: %s", strerror(errno));
}

static pid_t g_peer; /* in the parent: the child, reaped and reported if it dies */

static char get(int fd) {
    char c;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n == 1)
            return c;
        if (n == 0) {
            int st = 0;
            if (g_peer > 0 && waitpid(g_peer, &st, 0) == g_peer) {
                if (WIFSIGNALED(st))
                    die("round %d: the child died of signal %d%s", g_stage_round, WTERMSIG(st),
                        WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
                die("round %d: the child exited with status %d", g_stage_round, WEXITSTATUS(st));
            }
            die("the other side closed its pipe (it died)");
        }
        if (errno != EINTR)
            die("pipe read: %s", strerror(errno));
    }
}

/* ---- the child's helper: rewrites objects while the child meshes ---- */

typedef struct helper {
    obj_t *o;
    size_t n;
    atomic_int stop;
    uint64_t gen;
} helper_t;

static void *helper_main(void *arg) {
    helper_t *h = arg;
    uint64_t gen = h->gen;
    while (!atomic_load(&h->stop)) {
        for (size_t i = 0; i < h->n; i++) {
            verify_one(&h->o[i], gen, "child helper, before rewrite");
            fill(h->o[i].p, h->o[i].size, h->o[i].id, gen + 1);
        }
        gen++;
    }
    h->gen = gen;
    return NULL;
}

static void grandchild(uint64_t gen) {
    g_who = "grandchild";
    g_stage = "verifying after fork";
    verify_all(gen, "grandchild, after fork");
    uint64_t rs = 0x6c;
    g_stage = "freeing a third";
    thin(&rs, 3);
    g_stage = "fragmenting";
    fragment(&rs, BATCH / 2, gen);
    size_t before = ctl_size("stats.mesh_count");
    g_stage = "meshing";
    compact();
    if (g_ctl && ctl_size("stats.mesh_count") <= before)
        die("mesh.compact meshed nothing in the grandchild (mesh_count %zu)", before);
    verify_all(gen, "grandchild, after meshing");
    _exit(0);
}

static void child(int round, uint64_t gen, int to_parent, int from_parent, int threaded) {
    g_who = threaded ? "child of a thread" : "child";
    g_stage_round = round;
    g_stage = "verifying right after fork";
    alarm(60);
    uint64_t rs = g_seed ^ (0xc0ffeeULL * (uint64_t)(round + 1));
    verify_all(gen, "child, right after fork");
    size_t before = ctl_size("stats.mesh_count");

    /* mesh again in the child, with a helper thread rewriting a third of the set */
    g_stage = "freeing a quarter of the set";
    thin(&rs, 4);
    g_stage = "fragmenting";
    fragment(&rs, BATCH, gen);
    g_stage = "meshing with a helper thread writing";
    helper_t h = {g_obj, g_n / 3, 0, gen};
    pthread_t ht;
    if (pthread_create(&ht, NULL, helper_main, &h) != 0)
        die("pthread_create in the child failed");
    for (int i = 0; i < 5; i++)
        compact();
    atomic_store(&h.stop, 1);
    pthread_join(ht, NULL);
    size_t after = ctl_size("stats.mesh_count");
    if (g_ctl && after <= before)
        die("mesh.compact meshed nothing in the child (mesh_count %zu before, %zu after)", before, after);
    for (size_t i = 0; i < h.n; i++)
        verify_one(&g_obj[i], h.gen, "child, objects the helper rewrote");
    for (size_t i = h.n; i < g_n; i++)
        verify_one(&g_obj[i], gen, "child, after meshing");

    uint64_t cgen = 0xc000 + (uint64_t)round;
    g_stage = "writing its generation";
    write_all(cgen);
    verify_all(cgen, "child, after writing its own generation");
    if (round == 0 && !threaded) {
        g_stage = "forking a grandchild";
        pid_t g = fork();
        if (g < 0)
            die("fork in the child failed");
        if (g == 0)
            grandchild(cgen);
        int st;
        if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("grandchild failed (status %#x)", st);
        verify_all(cgen, "child, after the grandchild exited");
    }
    g_stage = "waiting for the parent";
    put(to_parent, 'w');
    if (get(from_parent) != 'g')
        die("protocol error");
    verify_all(cgen, "child, after the parent wrote its generation");
    g_stage = "freeing half and meshing at the end";
    for (size_t i = 0; i < g_n; i += 2)
        free(g_obj[i].p);
    compact();
    _exit(0);
}

/* ---- threaded rounds: mesher, churner and writer threads while forking ---- */

static atomic_int g_bg_stop;
static atomic_long g_bg_compacts, g_bg_churn, g_bg_writes;

static void *bg_mesher(void *arg) {
    (void)arg;
    while (!atomic_load(&g_bg_stop)) {
        compact();
        atomic_fetch_add(&g_bg_compacts, 1);
    }
    return NULL;
}

static void *bg_churner(void *arg) {
    (void)arg;
    uint64_t rs = g_seed ^ 0xc4c4;
    enum { N = 4096 };
    void **v = mmap(NULL, sizeof(void *) * N, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t keep = 0;
    while (!atomic_load(&g_bg_stop)) {
        uint32_t size = g_sizes[rng_next(&rs) % NSIZES];
        size_t k = keep;
        for (size_t i = keep; i < N; i++) {
            void *p = malloc(size);
            if (!p)
                die("churner: malloc failed");
            memset(p, 0x3c, size);
            v[i] = p;
        }
        for (size_t i = keep; i < N; i++) {
            if (rng_next(&rs) % 100 < 10 && k < N / 2)
                v[k++] = v[i];
            else
                free(v[i]);
        }
        keep = k;
        if (keep >= N / 2) { /* retire the survivors */
            for (size_t i = 0; i < keep; i++)
                free(v[i]);
            keep = 0;
        }
        atomic_fetch_add(&g_bg_churn, N);
    }
    for (size_t i = 0; i < keep; i++)
        free(v[i]);
    munmap(v, sizeof(void *) * N);
    return NULL;
}

typedef struct wset {
    obj_t o[2048];
    uint64_t gen[2048];
    size_t n;
} wset_t;
static wset_t *g_w;

static void *bg_writer(void *arg) {
    (void)arg;
    while (!atomic_load(&g_bg_stop)) {
        for (size_t i = 0; i < g_w->n; i++) {
            verify_one(&g_w->o[i], g_w->gen[i], "writer thread, before rewrite");
            g_w->gen[i]++;
            fill(g_w->o[i].p, g_w->o[i].size, g_w->o[i].id, g_w->gen[i]);
            atomic_fetch_add_explicit(&g_bg_writes, 1, memory_order_relaxed);
        }
    }
    return NULL;
}

typedef struct fork_req {
    pid_t pid;
    int err;
} fork_req_t;

/* fork() from a non-main thread: in the child only that thread exists, so the
   child's work is done right there. */
static int g_to_parent[2], g_from_parent[2];
static int g_round_for_child;
static uint64_t g_gen_for_child;

static void *forker_child(void *arg) {
    fork_req_t *r = arg;
    pid_t pid = fork();
    if (pid == 0) {
        close(g_to_parent[0]);
        close(g_from_parent[1]);
        child(g_round_for_child, g_gen_for_child, g_to_parent[1], g_from_parent[0], 1);
    }
    r->pid = pid;
    r->err = errno;
    return NULL;
}

static void parent_round(int round, uint64_t *gen, uint64_t *rs, int threaded) {
    g_stage_round = round;
    g_stage = "forking";
    if (pipe(g_to_parent) != 0 || pipe(g_from_parent) != 0)
        die("pipe: %s", strerror(errno));
    g_round_for_child = round;
    g_gen_for_child = *gen;
    pid_t pid;
    if (threaded) {
        fork_req_t r = {0, 0};
        pthread_t t;
        if (pthread_create(&t, NULL, forker_child, &r) != 0)
            die("pthread_create failed");
        pthread_join(t, NULL);
        pid = r.pid;
        errno = r.err;
    } else {
        pid = fork();
        if (pid == 0) {
            close(g_to_parent[0]);
            close(g_from_parent[1]);
            child(round, *gen, g_to_parent[1], g_from_parent[0], 0);
        }
    }
    if (pid < 0)
        die("fork failed: %s", strerror(errno));
    g_peer = pid;
    close(g_to_parent[1]);
    close(g_from_parent[0]);
    if (get(g_to_parent[0]) != 'w')
        die("protocol error");
    verify_all(*gen, "parent, after the child wrote its generation");
    uint64_t pgen = 0xa000 + (uint64_t)round;
    write_all(pgen);
    compact();
    verify_all(pgen, "parent, after writing its generation and meshing");
    put(g_from_parent[1], 'g');
    int st;
    if (waitpid(pid, &st, 0) != pid)
        die("waitpid: %s", strerror(errno));
    g_peer = 0;
    close(g_to_parent[0]);
    close(g_from_parent[1]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFSIGNALED(st))
            die("round %d%s: child killed by signal %d%s", round, threaded ? " (threaded)" : "", WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
        die("round %d%s: child exited with status %d", round, threaded ? " (threaded)" : "", WEXITSTATUS(st));
    }
    verify_all(pgen, "parent, after the child exited");
    *gen = pgen;
    g_stage = "re-fragmenting after the round";
    thin(rs, 5);
    fragment_in_thread(rs, BATCH / 2, *gen);
    compact();
    verify_all(*gen, "parent, after re-fragmenting and meshing");
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_rounds = atoi(argv[1]);
    if (argc > 2)
        g_trounds = atoi(argv[2]);
    if (argc > 3)
        g_seed = strtoull(argv[3], NULL, 0);
    if (g_rounds < 0 || g_trounds < 0) {
        fprintf(stderr, "usage: %s [rounds] [threaded-rounds] [seed]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGABRT, on_abort);
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    g_obj = mmap(NULL, sizeof(obj_t) * MAX_OBJS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_w = mmap(NULL, sizeof(wset_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g_obj == MAP_FAILED || g_w == MAP_FAILED)
        die("mmap failed");

    uint64_t rs = g_seed, gen = 1;
    fragment_in_thread(&rs, 3 * BATCH, gen);
    compact();
    size_t mesh0 = ctl_size("stats.mesh_count");
    if (g_ctl && mesh0 == 0)
        die("under libmesh, but mesh.compact meshed nothing (stats.mesh_count 0)");
    verify_all(gen, "parent, after the first mesh");

    for (int r = 0; r < g_rounds; r++)
        parent_round(r, &gen, &rs, 0);

    /* threaded rounds: the writer's objects come from a fragmented batch too */
    if (g_trounds) {
        size_t n0 = g_n;
        fragment_in_thread(&rs, BATCH, 0);
        size_t take = g_n - n0 < 2048 ? g_n - n0 : 2048;
        for (size_t i = 0; i < take; i++) {
            g_w->o[i] = g_obj[n0 + i];
            g_w->gen[i] = 0;
        }
        g_w->n = take;
        for (size_t i = n0 + take; i < g_n; i++) { /* the rest joins the stable set */
            fill(g_obj[i].p, g_obj[i].size, g_obj[i].id, gen);
            g_obj[n0 + i - (n0 + take)] = g_obj[i];
        }
        g_n -= take;
        verify_all(gen, "parent, before the threaded rounds");
        pthread_t mt, ct, wt;
        pthread_create(&mt, NULL, bg_mesher, NULL);
        pthread_create(&ct, NULL, bg_churner, NULL);
        pthread_create(&wt, NULL, bg_writer, NULL);
        for (int r = 0; r < g_trounds; r++) {
            struct timespec ts = {0, 30 * 1000000L};
            nanosleep(&ts, NULL);
            parent_round(g_rounds + r, &gen, &rs, 1);
        }
        atomic_store(&g_bg_stop, 1);
        pthread_join(mt, NULL);
        pthread_join(ct, NULL);
        pthread_join(wt, NULL);
        for (size_t i = 0; i < g_w->n; i++)
            verify_one(&g_w->o[i], g_w->gen[i], "parent, writer objects at the end");
    }
    verify_all(gen, "parent, at the end");
    size_t mesh_count = ctl_size("stats.mesh_count");
    printf("mesh_fork: OK: %d rounds + %d threaded rounds (fork from a thread while meshing), %zu objects "
           "checked in parent and children, background: %ld compactions, %ld churn allocations, %ld writes; "
           "%s mesh_count %zu (first pass %zu)\n",
           g_rounds, g_trounds, g_n, atomic_load(&g_bg_compacts), atomic_load(&g_bg_churn),
           atomic_load(&g_bg_writes), g_ctl ? "libmesh:" : "no libmesh:", mesh_count, mesh0);
    return 0;
}
