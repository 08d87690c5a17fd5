/*
 * fork_lost_fd.c - a program that takes libmesh's heap descriptor away (closes every
 * descriptor, or dup2()s a file of its own over it) and then forks keeps every object
 * intact in parent and child, nothing aborts, and the program's own file is never
 * written.
 *
 * Three scenarios, each in a fresh process (the driver forks one per scenario):
 *  closed   objects of several small classes (most freed, so many spans mesh when
 *           mesh_mallctl("mesh.compact") is there), then close_range(3, ~0U, 0), then
 *           three forks while two writer threads keep rewriting their objects.
 *  dup2     as closed, but a temporary file of the program's is dup2()ed onto every
 *           descriptor that is a memfd (libmesh's heap file); at the end that file
 *           must hold exactly what the program wrote to it.
 *  nofile   as closed, and RLIMIT_NOFILE is lowered to the descriptors in use, so no
 *           new heap file can be made at fork time: the heap goes private.
 * In every fork: the child checks every object is consistent (all words of an object
 * from one moment: the writers use a seqlock), overwrites them with its own tag,
 * allocates and frees 20 MB, checks calloc, and exits 0; the parent waits, then checks
 * that no object holds the child's tag. At the end the parent checks every object.
 * Without libmesh the program runs the same checks (they pass trivially).
 *
 * usage: fork_lost_fd [scenario...]   (default: all three)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress_util.h"

#define NOBJ 60000
#define WORDS 8 /* 64-byte objects; every 5th one is 24 words (192 B): two classes */
#define TAG_PARENT 0x1111000000000000ULL
#define TAG_CHILD 0x2222000000000000ULL

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;
static _Atomic uint64_t *obj[NOBJ];
static unsigned nwords[NOBJ];
static atomic_int stop;
static const char *scenario = "?";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char who[64];
    snprintf(who, sizeof who, "fork_lost_fd %s", scenario);
    va_list ap;
    va_start(ap, fmt);
    stress_vreport(who, fmt, ap);
    va_end(ap);
}

#define die(...) (say("FAIL: " __VA_ARGS__), _exit(1))

/* Object i as a seqlock: word 0 the sequence, words 1.. all (tag | i << 24 | gen). */
static void write_obj(unsigned i, uint64_t tag, uint64_t gen) {
    _Atomic uint64_t *o = obj[i];
    uint64_t s = atomic_load_explicit(&o[0], memory_order_relaxed);
    atomic_store_explicit(&o[0], s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (unsigned w = 1; w < nwords[i]; w++)
        atomic_store_explicit(&o[w], tag | (uint64_t)i << 24 | (gen & 0xffffff), memory_order_relaxed);
    atomic_store_explicit(&o[0], s + 2, memory_order_release);
}

/* Object i holds one moment of one writer with the given tag. */
static void check_obj(unsigned i, uint64_t tag) {
    _Atomic uint64_t *o = obj[i];
    uint64_t s = atomic_load_explicit(&o[0], memory_order_acquire);
    uint64_t first = atomic_load_explicit(&o[1], memory_order_relaxed);
    if ((first & 0xffff000000000000ULL) != tag || ((first >> 24) & 0xffffff) != (i & 0xffffff))
        die("object %u holds %#llx, not %s's", i, (unsigned long long)first, tag == TAG_CHILD ? "the child" : "the parent");
    if (s & 1) return; /* a writer was in the middle of it at the fork: a torn prefix is fine */
    for (unsigned w = 2; w < nwords[i]; w++) {
        uint64_t v = atomic_load_explicit(&o[w], memory_order_relaxed);
        if (v != first) die("object %u word %u holds %#llx, word 1 %#llx (sequence %llu)", i, w,
                            (unsigned long long)v, (unsigned long long)first, (unsigned long long)s);
    }
}

/* Writers own alternate objects; the main thread stops them before checking. */
static void *writer(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t gen = 1;
    while (!atomic_load(&stop))
        for (unsigned i = me; i < NOBJ && !atomic_load(&stop); i += 2)
            if (obj[i]) write_obj(i, TAG_PARENT, gen++);
    return NULL;
}

static void build_heap(void) {
    for (unsigned i = 0; i < NOBJ; i++) {
        nwords[i] = i % 5 == 0 ? 24 : WORDS;
        obj[i] = malloc(nwords[i] * sizeof(uint64_t));
        if (!obj[i]) die("malloc failed");
        atomic_store(&obj[i][0], 0);
        write_obj(i, TAG_PARENT, 0);
    }
    uint64_t seed = 42;
    for (unsigned i = 0; i < NOBJ; i++) /* keep about 15%, at random: sparse spans */
        if (stress_rng(&seed) % 100 >= 15) {
            free(obj[i]);
            obj[i] = NULL;
        }
    if (g_ctl) {
        size_t released, len = sizeof released, meshes = 0, mlen = sizeof meshes;
        g_ctl("mesh.compact", &released, &len, NULL, 0);
        g_ctl("stats.mesh_count", &meshes, &mlen, NULL, 0);
        say("%zu meshes before the descriptor goes", meshes);
    }
}

static void child_work(void) {
    for (unsigned i = 0; i < NOBJ; i++)
        if (obj[i]) check_obj(i, TAG_PARENT);
    for (unsigned i = 0; i < NOBJ; i++)
        if (obj[i]) write_obj(i, TAG_CHILD, 7);
    enum { N = 20000 };
    static void *tmp[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            tmp[i] = malloc((size_t)(16 + (i % 64) * 16));
            if (!tmp[i]) die("child malloc failed");
            memset(tmp[i], 0x77, 16);
        }
        for (int i = 0; i < N; i++) free(tmp[i]);
    }
    for (size_t sz = 16; sz < (4 << 20); sz = sz * 3 + 16) {
        unsigned char *z = calloc(1, sz);
        if (!z) die("child calloc(%zu) failed", sz);
        for (size_t k = 0; k < sz; k += 509)
            if (z[k]) die("calloc(%zu) not zero at %zu", sz, k);
        free(z);
    }
    for (unsigned i = 0; i < NOBJ; i++)
        if (obj[i]) check_obj(i, TAG_CHILD);
}

static void fork_round(int round) {
    atomic_store(&stop, 0);
    pthread_t w[2];
    for (int k = 0; k < 2; k++)
        if (pthread_create(&w[k], NULL, writer, (void *)(uintptr_t)k) != 0) die("pthread_create");
    usleep(20000);
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        alarm(60);
        child_work();
        _exit(0);
    }
    usleep(20000); /* the writers go on in the parent while the child checks */
    atomic_store(&stop, 1);
    for (int k = 0; k < 2; k++) pthread_join(w[k], NULL);
    int st;
    if (waitpid(pid, &st, 0) != pid) die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("round %d: child %s %d", round, WIFSIGNALED(st) ? "killed by signal" : "exited with",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    for (unsigned i = 0; i < NOBJ; i++)
        if (obj[i]) check_obj(i, TAG_PARENT); /* nothing of the child's shows here */
}

/* Every descriptor that is a memfd of libmesh's gets the program's own file. */
static int dup_over_memfds(int file) {
    int n = 0;
    for (int fd = 3; fd < 65536; fd++) {
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len <= 0) continue;
        target[len] = 0;
        if (strncmp(target, "/memfd:libmesh", 14) != 0) continue;
        if (dup2(file, fd) != fd) die("dup2 onto %d failed", fd);
        n++;
    }
    return n;
}

static int run(const char *name) {
    scenario = name;
    build_heap();
    int file = -1;
    char path[] = "/tmp/fork_lost_fd.XXXXXX";
    static const char content[] = "the program's own file: libmesh must never write here\n";
    if (!strcmp(name, "dup2")) {
        file = mkstemp(path);
        if (file < 0 || write(file, content, sizeof content - 1) != (ssize_t)(sizeof content - 1))
            die("temporary file");
        say("%d libmesh descriptors now name the program's file", dup_over_memfds(file));
    } else {
        if (syscall(SYS_close_range, 3, ~0U, 0) != 0) die("close_range");
    }
    if (!strcmp(name, "nofile")) {
        struct rlimit rl = {3, 3}; /* stdin, stdout, stderr only: no new descriptor */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) rl.rlim_cur = 3;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    }
    for (int round = 0; round < 3; round++) fork_round(round);
    for (int i = 0; i < 20000; i++) free(malloc((size_t)(16 + (i % 100) * 8))); /* still works */
    if (file >= 0) {
        char back[256];
        ssize_t n = pread(file, back, sizeof back, 0);
        struct stat st;
        if (fstat(file, &st) != 0 || st.st_size != (off_t)(sizeof content - 1) || n != (ssize_t)(sizeof content - 1) ||
            memcmp(back, content, sizeof content - 1) != 0)
            die("the program's file changed (size %lld)", (long long)st.st_size);
        unlink(path);
    }
    say("ok");
    return 0;
}

int main(int argc, char **argv) {
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    static const char *all[] = {"closed", "dup2", "nofile"};
    const char **list = argc > 1 ? (const char **)argv + 1 : all;
    int n = argc > 1 ? argc - 1 : 3, failed = 0;
    for (int k = 0; k < n; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(120);
            _exit(run(list[k]));
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            scenario = list[k];
            say("FAILED (%s %d)", WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            failed++;
        }
    }
    scenario = "all";
    say("%d of %d scenarios failed", failed, n);
    return failed != 0;
}
