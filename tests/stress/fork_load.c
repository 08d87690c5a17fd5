/*
 * fork_load.c - fork() while other threads allocate.
 *
 * Worker threads allocate, write, verify and free continuously.  Meanwhile the
 * main thread (and, a few times, a secondary thread) forks repeatedly:
 *
 *   parent: set S of objects holds generation G
 *   fork
 *   child:  verify S == G; write generation C into S; malloc/free in the child
 *           (sometimes from a new thread in the child); tell parent "written"
 *   parent: on "written": verify S == G (child's writes are private);
 *           write generation P into S; tell child "go"
 *   child:  verify S == C (parent's writes are private); free half of S,
 *           allocate more; _exit(0)
 *   parent: waitpid, require exit status 0, verify S == P
 *
 * Between rounds the parent replaces some of S with fresh allocations and
 * sometimes calls malloc_trim(0) (a compaction point for libmesh); children
 * sometimes do too, after freeing half of S, and re-check the rest.  A
 * child that hangs (e.g. an allocator lock held across fork) is killed after a
 * timeout and reported.
 *
 * usage: fork_load [forks] [worker-threads] [seed]
 * Default: 200 forks, 2 workers, 5 of the forks done from a non-main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOBJ 1200
#define CHILD_TIMEOUT_MS 20000

static int g_forks = 200;
static int g_workers = 2;
static uint64_t g_seed = 0xf0f0f0ULL;
static atomic_int g_stop;
static atomic_long g_worker_ops;
static atomic_int g_fail;

typedef struct obj {
    unsigned char *p;
    size_t n;
    uint64_t id;
} obj_t;

static obj_t g_set[NOBJ];
static uint64_t g_next_id = 1;

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t gword(uint64_t id, uint64_t gen, size_t wi) {
    uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ gen * 0xc2b2ae3d27d4eb4fULL ^ wi * 0x165667b19e3779f9ULL;
    return x ^ (x >> 29);
}

static void gfill(const obj_t *o, uint64_t gen) {
    size_t nw = o->n / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w = gword(o->id, gen, i);
        memcpy(o->p + 8 * i, &w, 8);
    }
    for (size_t i = nw * 8; i < o->n; i++)
        o->p[i] = (unsigned char)(gen + i);
}

/* returns -1 if o holds generation gen, else the first bad byte offset */
static long gcheck(const obj_t *o, uint64_t gen) {
    size_t nw = o->n / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w;
        memcpy(&w, o->p + 8 * i, 8);
        if (w != gword(o->id, gen, i))
            return (long)(8 * i);
    }
    for (size_t i = nw * 8; i < o->n; i++)
        if (o->p[i] != (unsigned char)(gen + i))
            return (long)i;
    return -1;
}

/* find which generation (among candidates) an object holds, for messages */
static const char *which_gen(const obj_t *o, uint64_t a, const char *an, uint64_t b, const char *bn) {
    if (gcheck(o, a) < 0)
        return an;
    if (gcheck(o, b) < 0)
        return bn;
    return "garbage";
}

static size_t pick_size(uint64_t *rs) {
    uint64_t r = rng_next(rs) % 1000;
    uint64_t r2 = rng_next(rs);
    if (r < 1)
        return (1u << 20) + (size_t)(r2 % (1u << 20));
    if (r < 20)
        return 16384 + (size_t)(r2 % 49152);
    if (r < 200)
        return 1024 + (size_t)(r2 % 3072);
    return 8 + (size_t)(r2 % 1017);
}

static int new_obj(obj_t *o, uint64_t *rs, uint64_t gen) {
    o->n = pick_size(rs);
    o->p = malloc(o->n);
    if (!o->p) {
        fprintf(stderr, "fork_load: malloc(%zu) returned NULL\n", o->n);
        return 0;
    }
    o->id = g_next_id++;
    gfill(o, gen);
    return 1;
}

/* ------------------------------ workers ------------------------------ */
static void *worker(void *arg) {
    int wid = (int)(intptr_t)arg;
    enum { SLOTS = 512 };
    obj_t *slot = calloc(SLOTS, sizeof(obj_t));
    uint64_t rs = g_seed ^ (uint64_t)(wid + 100) * 0x2545f4914f6cdd1dULL;
    uint64_t id = (uint64_t)(wid + 1) << 48;
    long ops = 0;
    if (!slot) {
        atomic_store(&g_fail, 1);
        return NULL;
    }
    while (!atomic_load(&g_stop)) {
        unsigned k = (unsigned)(rng_next(&rs) % SLOTS);
        obj_t *o = &slot[k];
        if (o->p) {
            long bad = gcheck(o, 7);
            if (bad >= 0) {
                fprintf(stderr, "fork_load: worker %d: object %p (%zu bytes) corrupted at byte %ld\n", wid,
                        (void *)o->p, o->n, bad);
                atomic_store(&g_fail, 1);
                break;
            }
            if (rng_next(&rs) % 4 == 0) {
                size_t nn = 8 + (size_t)(rng_next(&rs) % 8192);
                unsigned char *q = realloc(o->p, nn);
                if (!q) {
                    fprintf(stderr, "fork_load: worker %d: realloc failed\n", wid);
                    atomic_store(&g_fail, 1);
                    break;
                }
                o->p = q;
                o->n = nn;
                gfill(o, 7);
            } else {
                free(o->p);
                o->p = NULL;
            }
        } else {
            o->n = (rng_next(&rs) % 64 == 0) ? 65536 + (size_t)(rng_next(&rs) % 200000)
                                               : 8 + (size_t)(rng_next(&rs) % 2048);
            o->p = malloc(o->n);
            if (!o->p) {
                fprintf(stderr, "fork_load: worker %d: malloc(%zu) failed\n", wid, o->n);
                atomic_store(&g_fail, 1);
                break;
            }
            o->id = id++;
            gfill(o, 7);
        }
        ops++;
    }
    for (unsigned k = 0; k < SLOTS; k++)
        free(slot[k].p);
    free(slot);
    atomic_fetch_add(&g_worker_ops, ops);
    return NULL;
}

/* ------------------------------- child ------------------------------- */
static void *child_thread(void *arg) {
    uint64_t rs = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        obj_t o;
        o.n = 1 + (size_t)(rng_next(&rs) % 5000);
        o.p = malloc(o.n);
        if (!o.p)
            return (void *)1;
        o.id = (uint64_t)i;
        gfill(&o, 99);
        if (gcheck(&o, 99) >= 0)
            return (void *)2;
        free(o.p);
    }
    return NULL;
}

static int write_full(int fd, const void *b, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        b = (const char *)b + w;
        n -= (size_t)w;
    }
    return 1;
}

static int read_byte(int fd, int timeout_ms) {
    struct pollfd pfd = {fd, POLLIN, 0};
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -2; /* timeout / error */
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        return n == 1 ? (unsigned char)c : -1;
    }
}

static void child_main(int round, uint64_t gen_pre, uint64_t gen_child, int rfd, int wfd) {
    uint64_t rs = g_seed ^ (uint64_t)round * 0x9e3779b97f4a7c15ULL ^ 0x55;
    for (int i = 0; i < NOBJ; i++) {
        long bad = gcheck(&g_set[i], gen_pre);
        if (bad >= 0) {
            fprintf(stderr, "fork_load: round %d child: pre-fork object %d (%p, %zu bytes) wrong at byte %ld\n", round,
                    i, (void *)g_set[i].p, g_set[i].n, bad);
            _exit(10);
        }
    }
    for (int i = 0; i < NOBJ; i++)
        gfill(&g_set[i], gen_child);
    /* allocate and free in the child, with the pre-fork objects alive */
    obj_t extra[300];
    for (int i = 0; i < 300; i++) {
        if (!new_obj(&extra[i], &rs, gen_child))
            _exit(12);
    }
    for (int i = 0; i < 300; i += 2) {
        free(extra[i].p);
        extra[i].p = NULL;
    }
    if (round % 4 == 1) {
        pthread_t t;
        void *res = (void *)3;
        if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)(rs + 1)) != 0) {
            fprintf(stderr, "fork_load: round %d child: pthread_create failed\n", round);
            _exit(13);
        }
        pthread_join(t, &res);
        if (res != NULL) {
            fprintf(stderr, "fork_load: round %d child: thread in child failed (%ld)\n", round, (long)(intptr_t)res);
            _exit(13);
        }
    }
    if (!write_full(wfd, "w", 1))
        _exit(14);
    int c = read_byte(rfd, CHILD_TIMEOUT_MS);
    if (c != 'g') {
        fprintf(stderr, "fork_load: round %d child: did not get go from parent (%d)\n", round, c);
        _exit(15);
    }
    for (int i = 0; i < NOBJ; i++) {
        long bad = gcheck(&g_set[i], gen_child);
        if (bad >= 0) {
            fprintf(stderr,
                    "fork_load: round %d child: object %d (%p, %zu bytes) changed after parent's write, byte %ld "
                    "(holds %s) - parent's writes are visible in the child\n",
                    round, i, (void *)g_set[i].p, g_set[i].n, bad,
                    which_gen(&g_set[i], gen_pre + 1, "parent generation", gen_pre,
                              "pre-fork generation"));
            _exit(11);
        }
    }
    for (int i = 1; i < 300; i += 2) {
        if (gcheck(&extra[i], gen_child) >= 0) {
            fprintf(stderr, "fork_load: round %d child: child-allocated object %d corrupted\n", round, i);
            _exit(16);
        }
        free(extra[i].p);
    }
    /* free half of the pre-fork objects in the child, compact, check the
     * other half, reallocate a few */
    for (int i = 0; i < NOBJ; i += 2)
        free(g_set[i].p);
    if (round % 8 == 3) {
        malloc_trim(0);
        for (int i = 1; i < NOBJ; i += 2) {
            if (gcheck(&g_set[i], gen_child) >= 0) {
                fprintf(stderr, "fork_load: round %d child: object %d corrupted after malloc_trim in the child\n",
                        round, i);
                _exit(18);
            }
        }
    }
    for (int i = 1; i < NOBJ; i += 16) {
        unsigned char *q = realloc(g_set[i].p, g_set[i].n * 2 + 1);
        if (!q)
            _exit(17);
        g_set[i].p = q;
        free(q);
    }
    _exit(0);
}

/* ------------------------------- parent ------------------------------ */
static uint64_t g_gen = 1;

static int fork_round(int round, const char *from) {
    uint64_t gen_pre = g_gen;
    uint64_t gen_child = g_gen + 0x4000000000ULL;
    uint64_t gen_par = g_gen + 1;
    int p2c[2], c2p[2];
    if (pipe(p2c) || pipe(c2p)) {
        perror("fork_load: pipe");
        return 0;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork_load: fork");
        return 0;
    }
    if (pid == 0) {
        close(p2c[1]);
        close(c2p[0]);
        child_main(round, gen_pre, gen_child, p2c[0], c2p[1]);
        _exit(99);
    }
    close(p2c[0]);
    close(c2p[1]);
    int ok = 1;
    int c = read_byte(c2p[0], CHILD_TIMEOUT_MS);
    if (c == -2) {
        fprintf(stderr,
                "fork_load: round %d (%s): child %d did not report within %d ms (deadlock in the child after fork?); "
                "killing it\n",
                round, from, (int)pid, CHILD_TIMEOUT_MS);
        kill(pid, SIGKILL);
        ok = 0;
    } else if (c == 'w') {
        /* the child has overwritten everything in its copy */
        for (int i = 0; i < NOBJ; i++) {
            long bad = gcheck(&g_set[i], gen_pre);
            if (bad >= 0) {
                fprintf(stderr,
                        "fork_load: round %d (%s): parent object %d (%p, %zu bytes) changed at byte %ld, holds %s - "
                        "child's writes are visible in the parent\n",
                        round, from, i, (void *)g_set[i].p, g_set[i].n, bad,
                        which_gen(&g_set[i], gen_child, "the child's generation", gen_pre, "?"));
                ok = 0;
                break;
            }
        }
        for (int i = 0; i < NOBJ; i++)
            gfill(&g_set[i], gen_par);
        if (!write_full(p2c[1], "g", 1))
            ok = 0;
    } /* else: child died early; waitpid reports it */
    close(p2c[1]);
    close(c2p[0]);

    int status = 0;
    struct timespec ts = {0, 200000};
    pid_t w;
    int waited_us = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0) {
        if (waited_us > CHILD_TIMEOUT_MS * 1000) {
            fprintf(stderr, "fork_load: round %d (%s): child %d hangs at exit; killing it\n", round, from, (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 0;
        }
        nanosleep(&ts, NULL);
        waited_us += 200;
    }
    if (w != pid) {
        perror("fork_load: waitpid");
        return 0;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "fork_load: round %d (%s): child killed by signal %d\n", round, from, WTERMSIG(status));
        return 0;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fork_load: round %d (%s): child exited with status %d\n", round, from, WEXITSTATUS(status));
        return 0;
    }
    if (!ok)
        return 0;
    for (int i = 0; i < NOBJ; i++) {
        long bad = gcheck(&g_set[i], gen_par);
        if (bad >= 0) {
            fprintf(stderr, "fork_load: round %d (%s): parent object %d lost the parent's write at byte %ld (holds %s)\n",
                    round, from, i, bad, which_gen(&g_set[i], gen_child, "the child's generation", gen_pre, "pre-fork"));
            return 0;
        }
    }
    g_gen = gen_par;
    return 1;
}

typedef struct fork_arg {
    int round;
    int ok;
} fork_arg_t;

static void *fork_thread(void *arg) {
    fork_arg_t *fa = arg;
    fa->ok = fork_round(fa->round, "non-main thread");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_forks = atoi(argv[1]);
    if (argc > 2)
        g_workers = atoi(argv[2]);
    if (argc > 3)
        g_seed = strtoull(argv[3], NULL, 0);
    if (g_forks < 1 || g_workers < 0 || g_workers > 64) {
        fprintf(stderr, "usage: %s [forks] [worker-threads 0..64] [seed]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t rs = g_seed;
    for (int i = 0; i < NOBJ; i++)
        if (!new_obj(&g_set[i], &rs, g_gen))
            return 1;

    pthread_t wt[64];
    for (int i = 0; i < g_workers; i++)
        if (pthread_create(&wt[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "fork_load: pthread_create failed\n");
            return 1;
        }

    int failed = 0, from_thread = 0;
    int thread_every = g_forks >= 40 ? g_forks / 5 : 0;
    for (int r = 0; r < g_forks && !atomic_load(&g_fail); r++) {
        int ok;
        if ((thread_every && r % thread_every == thread_every / 2) || (g_forks < 40 && r == g_forks / 2)) {
            fork_arg_t fa = {r, 0};
            pthread_t t;
            if (pthread_create(&t, NULL, fork_thread, &fa) != 0) {
                fprintf(stderr, "fork_load: pthread_create failed\n");
                return 1;
            }
            pthread_join(t, NULL);
            ok = fa.ok;
            from_thread++;
        } else {
            ok = fork_round(r, "main thread");
        }
        if (!ok) {
            failed = 1;
            break;
        }
        /* replace ~5% of the set with fresh allocations */
        for (int k = 0; k < NOBJ / 20; k++) {
            int i = (int)(rng_next(&rs) % NOBJ);
            free(g_set[i].p);
            if (!new_obj(&g_set[i], &rs, g_gen))
                return 1;
        }
        /* compaction in the parent now and then: the next fork then copies
         * an address space the allocator has just rearranged */
        if (r % 10 == 5)
            malloc_trim(0);
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < g_workers; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < NOBJ; i++)
        free(g_set[i].p);
    if (failed || atomic_load(&g_fail)) {
        fprintf(stderr, "fork_load: FAILED\n");
        return 1;
    }
    printf("fork_load: OK: %d forks (%d from a non-main thread) with %d allocating workers (%ld ops), %d pre-fork "
           "objects verified private in parent and child\n",
           g_forks, from_thread, g_workers, atomic_load(&g_worker_ops), NOBJ);
    return 0;
}
