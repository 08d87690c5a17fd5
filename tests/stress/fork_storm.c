/*
 * fork_storm.c - a storm of process creation while other threads allocate.
 *
 * Two forker threads each create 1000 processes: 500 fork()+_exit() and 500
 * that run /bin/true (a third of those through posix_spawn, a few through
 * vfork()+execve(), the rest fork()+execve()).  Meanwhile two churner threads
 * malloc, free and realloc objects of random sizes, checking every object's
 * contents before it is freed or after it is moved.
 *
 * Every fork()ed child first checks a fixed set of objects the parent filled
 * before the threads started (they are never written again, so the child must
 * see exactly that content), then mallocs, callocs (must be zero), writes,
 * checks and frees a few objects, and exits with 0, or with a code naming what
 * went wrong.  Children that exec check the fixed set before execve().  vfork
 * children only call execve()/_exit().  Every child is waited for and must
 * exit 0; a child that hangs is killed by alarm() and reported.
 *
 * usage: fork_storm [forks-per-thread=1000] [seed]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress_util.h"

extern char **environ;

#define NFORKERS 2
#define NCHURNERS 2
#define NFIXED 16
#define NSLOTS 2000
#define PENDING 4 /* children a forker may have running at once */
#define TRUE_PATH "/bin/true"

/* child exit codes */
enum { C_OK = 0, C_FIXED = 2, C_NOMEM = 3, C_CALLOC = 4, C_OWN = 5, C_EXEC = 127 };

static int g_per_thread = 1000;
static uint64_t g_seed = 0x5707aULL;
static atomic_int g_stop;
static atomic_int g_fail;
static atomic_long g_churn_ops;
static atomic_long g_kinds[4]; /* fork+exit, fork+exec, posix_spawn, vfork */
static const char *const g_kind_name[4] = {"fork+_exit", "fork+execve", "posix_spawn", "vfork+execve"};

typedef struct fixed {
    unsigned char *p;
    size_t n;
} fixed_t;
static fixed_t g_fixed[NFIXED];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    char buf[400];
    if (atomic_fetch_add(&g_fail, 1) >= 10)
        return;
    int n = snprintf(buf, sizeof buf, "fork_storm: ");
    va_list ap;
    va_start(ap, fmt);
    stress_vsay(buf, sizeof buf, (size_t)n, fmt, ap);
    va_end(ap);
}

static void on_alarm(int sig) {
    (void)sig;
    stress_say("fork_storm: FAIL: timed out (a child or thread hangs)\n");
    _exit(1);
}

static inline unsigned char pat(uint64_t key, size_t i) {
    return (unsigned char)((key * 0x9e3779b1u + i * 131u + (i >> 8)) ^ (key >> 13));
}

static void fill(unsigned char *p, size_t n, uint64_t key) {
    for (size_t i = 0; i < n; i++)
        p[i] = pat(key, i);
}

static int check(const unsigned char *p, size_t n, uint64_t key) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(key, i))
            return 0;
    return 1;
}

/* ---- what a fork()ed child does ---- */

static void child_say(const char *what, int idx) {
    char buf[200];
    snprintf(buf, sizeof buf, "fork_storm: child %d: %s (object %d)\n", (int)getpid(), what, idx);
    stress_say(buf);
}

static int child_checks(void) {
    for (int i = 0; i < NFIXED; i++)
        if (!check(g_fixed[i].p, g_fixed[i].n, 1000 + (uint64_t)i)) {
            child_say("a parent object changed across fork", i);
            return C_FIXED;
        }
    return C_OK;
}

static int child_alloc(uint64_t salt) {
    static const size_t sizes[] = {8, 40, 200, 1000, 5000, 70000, 600000};
    void *own[7];
    for (int i = 0; i < 7; i++) {
        unsigned char *c = calloc(1, sizes[i]);
        if (!c) {
            child_say("calloc failed", i);
            return C_NOMEM;
        }
        for (size_t j = 0; j < sizes[i]; j++)
            if (c[j]) {
                child_say("calloc returned memory that is not zero", i);
                return C_CALLOC;
            }
        free(c);
        own[i] = malloc(sizes[i]);
        if (!own[i]) {
            child_say("malloc failed", i);
            return C_NOMEM;
        }
        fill(own[i], sizes[i], salt + (uint64_t)i);
    }
    for (int i = 0; i < 7; i++) {
        if (!check(own[i], sizes[i], salt + (uint64_t)i)) {
            child_say("the child's own object changed", i);
            return C_OWN;
        }
        free(own[i]);
    }
    return C_OK;
}

/* ---- forker threads ---- */

typedef struct pending {
    pid_t pid;
    int kind;
    int num;
} pending_t;

typedef struct forker {
    int id;
    pending_t pend[PENDING];
    int npend;
} forker_t;

static void reap_one(forker_t *f) {
    pending_t pc = f->pend[0];
    memmove(&f->pend[0], &f->pend[1], sizeof(pending_t) * (size_t)(f->npend - 1));
    f->npend--;
    int st = 0;
    pid_t r;
    while ((r = waitpid(pc.pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (r != pc.pid) {
        fail("FAIL: waitpid(%d) for thread %d's %s #%d: %s", (int)pc.pid, f->id, g_kind_name[pc.kind], pc.num,
             strerror(errno));
        return;
    }
    if (WIFSIGNALED(st))
        fail("FAIL: thread %d's %s child #%d died of signal %d%s", f->id, g_kind_name[pc.kind], pc.num,
             WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
    else if (WEXITSTATUS(st) != 0)
        fail("FAIL: thread %d's %s child #%d exited with %d (%s)", f->id, g_kind_name[pc.kind], pc.num,
             WEXITSTATUS(st),
             WEXITSTATUS(st) == C_FIXED    ? "a parent object changed"
             : WEXITSTATUS(st) == C_NOMEM  ? "allocation failed"
             : WEXITSTATUS(st) == C_CALLOC ? "calloc not zeroed"
             : WEXITSTATUS(st) == C_OWN    ? "its own object changed"
             : WEXITSTATUS(st) == C_EXEC   ? "exec failed"
                                           : "?");
    else
        atomic_fetch_add(&g_kinds[pc.kind], 1);
}

/* The child's whole life after fork(): never returns. */
static void run_child(int kind, int forker, int k, char *const argv[]) __attribute__((noreturn));
static void run_child(int kind, int forker, int k, char *const argv[]) {
    alarm(20);
    int rc = child_checks();
    if (rc == C_OK && kind == 0)
        rc = child_alloc(((uint64_t)forker << 32) ^ (uint64_t)k);
    if (rc == C_OK && kind == 1) {
        execve(TRUE_PATH, argv, environ);
        rc = C_EXEC;
    }
    _exit(rc);
}

/* vfork()+execve(): the child only execs or _exits, inside this function. */
static pid_t start_vfork(char *const argv[]) {
    pid_t pid = vfork();
    if (pid == 0) {
        execve(TRUE_PATH, argv, environ);
        _exit(C_EXEC);
    }
    return pid;
}

static void *forker_main(void *arg) {
    forker_t *f = arg;
    char *const argv[] = {(char *)"true", NULL};
    for (int k = 0; k < g_per_thread && atomic_load(&g_fail) == 0; k++) {
        int kind;
        if (k % 2 == 0)
            kind = 0;
        else if ((k / 2) % 3 == 0)
            kind = 2;
        else if ((k / 2) % 40 == 1)
            kind = 3;
        else
            kind = 1;
        if (f->npend == PENDING)
            reap_one(f);
        pid_t pid = -1;
        if (kind == 2) {
            int rc = posix_spawn(&pid, TRUE_PATH, NULL, NULL, argv, environ);
            if (rc != 0) {
                fail("FAIL: posix_spawn: %s", strerror(rc));
                break;
            }
        } else if (kind == 3) {
            pid = start_vfork(argv);
        } else {
            pid = fork();
            if (pid == 0)
                run_child(kind, f->id, k, argv);
        }
        if (pid < 0) {
            fail("FAIL: %s failed: %s", g_kind_name[kind], strerror(errno));
            break;
        }
        f->pend[f->npend++] = (pending_t){pid, kind, k};
    }
    while (f->npend > 0)
        reap_one(f);
    return NULL;
}

/* ---- churner threads ---- */

typedef struct slot {
    unsigned char *p;
    size_t n;
    uint64_t key;
} slot_t;

static size_t churn_size(uint64_t *rs) {
    uint64_t r = stress_rng(rs);
    switch (r % 16) {
    case 0:
        return (r >> 8) % 64 == 0 ? 65536 + (size_t)(r >> 16) % 250000 : 512 + (size_t)(r >> 16) % 7500;
    default:
        return 1 + (size_t)(r >> 8) % 512;
    }
}

static void *churner_main(void *arg) {
    uint64_t rs = g_seed ^ (uint64_t)(uintptr_t)arg * 0x1234567ULL;
    slot_t *s = calloc(NSLOTS, sizeof *s);
    if (!s) {
        fail("FAIL: calloc of the churner's table failed");
        return NULL;
    }
    uint64_t next_key = 1;
    long ops = 0;
    while (!atomic_load(&g_stop) && atomic_load(&g_fail) == 0) {
        slot_t *x = &s[stress_rng(&rs) % NSLOTS];
        uint64_t op = stress_rng(&rs) % 3;
        if (!x->p) {
            x->n = churn_size(&rs);
            x->key = next_key++;
            x->p = malloc(x->n);
            if (!x->p) {
                fail("FAIL: malloc(%zu) failed", x->n);
                break;
            }
            fill(x->p, x->n, x->key);
        } else if (op == 0) {
            if (!check(x->p, x->n, x->key))
                fail("FAIL: churner object %p (%zu bytes) was corrupted", (void *)x->p, x->n);
            free(x->p);
            x->p = NULL;
        } else if (op == 1) {
            size_t nn = churn_size(&rs);
            unsigned char *q = realloc(x->p, nn);
            if (!q) {
                fail("FAIL: realloc(%zu) failed", nn);
                break;
            }
            size_t keep = nn < x->n ? nn : x->n;
            if (!check(q, keep, x->key))
                fail("FAIL: realloc from %zu to %zu bytes lost contents", x->n, nn);
            x->p = q;
            x->n = nn;
            x->key = next_key++;
            fill(x->p, x->n, x->key);
        } else if (!check(x->p, x->n < 256 ? x->n : 256, x->key)) {
            fail("FAIL: churner object %p (%zu bytes) was corrupted", (void *)x->p, x->n);
        }
        ops++;
    }
    for (int i = 0; i < NSLOTS; i++) {
        if (s[i].p && !check(s[i].p, s[i].n, s[i].key))
            fail("FAIL: churner object %p (%zu bytes) was corrupted", (void *)s[i].p, s[i].n);
        free(s[i].p);
    }
    free(s);
    atomic_fetch_add(&g_churn_ops, ops);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_per_thread = atoi(argv[1]);
    if (argc > 2)
        g_seed = strtoull(argv[2], NULL, 0);
    if (g_per_thread < 1) {
        fprintf(stderr, "usage: fork_storm [forks-per-thread] [seed]\n");
        return 2;
    }
    if (access(TRUE_PATH, X_OK) != 0) {
        fprintf(stderr, "fork_storm: FAIL: %s is not executable\n", TRUE_PATH);
        return 1;
    }
    signal(SIGALRM, on_alarm);
    alarm(240);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    static const size_t fixed_sizes[] = {1, 24, 100, 700, 3000, 20000, 200000, 1500000};
    for (int i = 0; i < NFIXED; i++) {
        g_fixed[i].n = fixed_sizes[i % 8] + (size_t)i;
        g_fixed[i].p = malloc(g_fixed[i].n);
        if (!g_fixed[i].p) {
            fprintf(stderr, "fork_storm: FAIL: malloc failed\n");
            return 1;
        }
        fill(g_fixed[i].p, g_fixed[i].n, 1000 + (uint64_t)i);
    }

    pthread_t ch[NCHURNERS], fk[NFORKERS];
    static forker_t forkers[NFORKERS];
    for (int i = 0; i < NCHURNERS; i++)
        if (pthread_create(&ch[i], NULL, churner_main, (void *)(uintptr_t)(i + 1)) != 0) {
            fprintf(stderr, "fork_storm: FAIL: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < NFORKERS; i++) {
        forkers[i].id = i;
        if (pthread_create(&fk[i], NULL, forker_main, &forkers[i]) != 0) {
            fprintf(stderr, "fork_storm: FAIL: pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < NFORKERS; i++)
        pthread_join(fk[i], NULL);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < NCHURNERS; i++)
        pthread_join(ch[i], NULL);
    for (int i = 0; i < NFIXED; i++) {
        if (!check(g_fixed[i].p, g_fixed[i].n, 1000 + (uint64_t)i))
            fail("FAIL: fixed object %d changed in the parent", i);
        free(g_fixed[i].p);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long total = 0;
    for (int i = 0; i < 4; i++)
        total += atomic_load(&g_kinds[i]);
    if (atomic_load(&g_fail) || total != (long)NFORKERS * g_per_thread) {
        fprintf(stderr, "fork_storm: FAIL: %d failure(s); %ld of %ld children succeeded\n", atomic_load(&g_fail),
                total, (long)NFORKERS * g_per_thread);
        return 1;
    }
    printf("fork_storm: ok: %ld children (%ld fork+_exit, %ld fork+execve, %ld posix_spawn, %ld vfork) in %.1f s, "
           "%ld churner ops\n",
           total, atomic_load(&g_kinds[0]), atomic_load(&g_kinds[1]), atomic_load(&g_kinds[2]),
           atomic_load(&g_kinds[3]), secs, atomic_load(&g_churn_ops));
    return 0;
}
