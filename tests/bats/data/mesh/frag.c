/* frag.c MODE [ARG] - fragmented heaps for the mesh bats tests.
 *
 * stdout is deterministic and the same with or without libmesh (a checksum of
 * every surviving object, verified); with libmesh, its counters go to stderr as
 * "stats: mesh_count=N aliases=N meshed_bytes=N".
 *
 *   compact         fragment, then mesh.compact three times (more fragmentation
 *                   in between, nothing meshed is freed), verify
 *   frees [N]       fragment, then N times (default 250) allocate and free
 *                   temporary objects and fragment a little more, sleeping 2 ms
 *                   each time (the only mesh trigger is the free path), verify
 *   trim            fragment, then malloc_trim(0), verify
 *   blocked [MS]    a writer thread that blocks every signal rewrites fragmented
 *                   objects while the main thread re-fragments and meshes for MS
 *                   milliseconds (default 1500)
 *   attr-mask [MS]  the same, the writer created with every signal blocked
 *                   (pthread_attr_setsigmask_np)
 *   handler-mask [MS]  the same, the writes done in a SIGUSR1 handler whose
 *                   sa_mask holds every signal
 *
 * The fragmenting is done by threads that exit, so no freed object stays cached.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn ctl;

#define MAXKEEP 200000
static uint64_t *keep[MAXKEEP];
static uint32_t keep_size[MAXKEEP];
static size_t nkeep;
static uint64_t next_id = 1;

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t word(uint64_t id, size_t i) { return id * 0x9e3779b97f4a7c15ULL + i * 0x2545f4914f6cdd1dULL; }

static size_t stat_of(const char *name) {
    size_t v = 0, len = sizeof v;
    if (ctl)
        ctl(name, &v, &len, NULL, 0);
    return v;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct job {
    size_t count;
    uint32_t size;
    uint64_t seed;
} job_t;

static void *fragment_thread(void *arg) {
    job_t *j = arg;
    uint64_t **all = malloc(sizeof(uint64_t *) * j->count);
    for (size_t i = 0; i < j->count; i++) {
        all[i] = malloc(j->size);
        all[i][0] = next_id++;
        for (size_t w = 1; w < j->size / 8; w++)
            all[i][w] = word(all[i][0], w);
    }
    for (size_t i = 0; i < j->count; i++) {
        if (nkeep < MAXKEEP && rng(&j->seed) % 100 < 12) {
            keep_size[nkeep] = j->size;
            keep[nkeep++] = all[i];
        } else {
            free(all[i]);
        }
    }
    free(all);
    return NULL;
}

static void fragment(size_t count, uint32_t size, uint64_t seed) {
    job_t j = {count, size, seed};
    pthread_t t;
    pthread_create(&t, NULL, fragment_thread, &j);
    pthread_join(t, NULL);
}

static int verify_and_print(void) {
    uint64_t sum = 0;
    for (size_t i = 0; i < nkeep; i++) {
        uint64_t id = keep[i][0];
        for (size_t w = 1; w < keep_size[i] / 8; w++)
            if (keep[i][w] != word(id, w)) {
                printf("object %zu (id %llu, %u bytes) corrupted at word %zu\n", i, (unsigned long long)id,
                       keep_size[i], w);
                return 1;
            }
        sum += id * keep_size[i];
    }
    printf("%zu objects verified, checksum %llu\n", nkeep, (unsigned long long)sum);
    return 0;
}

static void report(void) {
    if (ctl)
        fprintf(stderr, "stats: mesh_count=%zu aliases=%zu meshed_bytes=%zu\n", stat_of("stats.mesh_count"),
                stat_of("stats.mesh_aliases"), stat_of("stats.meshed_bytes"));
}

/* ---- blocked: a writer with every signal blocked ---- */
/* How the writer gets SIGSEGV blocked:
     blocked       pthread_sigmask(SIG_BLOCK, <all>) in the writer thread
     attr-mask     the thread is created with pthread_attr_setsigmask_np(<all>)
     handler-mask  the writes happen in a SIGUSR1 handler installed with
                   sa_mask = <all> (a common idiom), on a thread that sleeps in
                   pause(); another thread sends it SIGUSR1 continuously */

static atomic_int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *wobj[30000];
static size_t nw;
static atomic_long writes;

static void write_all_objects(void) {
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nw; i++) {
        wobj[i][1]++;
        wobj[i][2] = wobj[i][1] ^ wobj[i][0];
    }
    long n = (long)nw;
    pthread_mutex_unlock(&mu);
    atomic_fetch_add(&writes, n);
}

static void *blocked_writer(void *arg) {
    if (arg) {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    }
    while (!atomic_load(&stop))
        write_all_objects();
    return NULL;
}

static void on_usr1(int sig) {
    (void)sig;
    write_all_objects(); /* the mutex is never held by the interrupted code (pause) */
}

static void *pausing(void *arg) {
    (void)arg;
    while (!atomic_load(&stop))
        pause();
    return NULL;
}

static pthread_t g_victim;
static void *sender(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        pthread_kill(g_victim, SIGUSR1);
        usleep(100);
    }
    return NULL;
}

static int blocked(const char *how, double ms) {
    pthread_t t, snd;
    sigset_t all;
    sigfillset(&all);
    if (!strcmp(how, "attr-mask")) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (pthread_attr_setsigmask_np(&attr, &all) != 0) {
            printf("pthread_attr_setsigmask_np failed\n");
            return 2;
        }
        pthread_create(&t, &attr, blocked_writer, NULL);
        pthread_attr_destroy(&attr);
    } else if (!strcmp(how, "handler-mask")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_mask = all;
        sigaction(SIGUSR1, &sa, NULL);
        pthread_create(&t, NULL, pausing, NULL);
        g_victim = t;
        pthread_create(&snd, NULL, sender, NULL);
    } else {
        pthread_create(&t, NULL, blocked_writer, (void *)1);
    }
    uint64_t seed = 7;
    double end = now_ms() + ms;
    long rounds = 0;
    size_t total = 240000;
    uint64_t **objs = malloc(sizeof(uint64_t *) * total);
    while (now_ms() < end) {
        for (size_t i = 0; i < total; i++) {
            objs[i] = malloc(64);
            objs[i][0] = i;
            objs[i][1] = 0;
            objs[i][2] = i;
        }
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < nw; i++)
            free(wobj[i]);
        nw = 0;
        for (size_t i = 0; i < total; i++) {
            if (nw < 30000 && rng(&seed) % 8 == 0)
                wobj[nw++] = objs[i];
            else
                free(objs[i]);
        }
        pthread_mutex_unlock(&mu);
        for (int k = 0; k < 4; k++)
            if (ctl)
                ctl("mesh.compact", NULL, NULL, NULL, 0);
        rounds++;
    }
    atomic_store(&stop, 1);
    if (!strcmp(how, "handler-mask")) {
        pthread_join(snd, NULL);
        pthread_kill(t, SIGUSR1);
    }
    pthread_join(t, NULL);
    for (size_t i = 0; i < nw; i++)
        if (wobj[i][2] != (wobj[i][1] ^ wobj[i][0])) {
            printf("writer object %zu corrupted\n", i);
            return 1;
        }
    printf("writer with all signals blocked survived\n");
    fprintf(stderr, "rounds=%ld writes=%ld\n", rounds, atomic_load(&writes));
    report();
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!strcmp(mode, "blocked") || !strcmp(mode, "attr-mask") || !strcmp(mode, "handler-mask"))
        return blocked(mode, argc > 2 ? atof(argv[2]) : 1500);
    fragment(60000, 64, 1);
    fragment(20000, 256, 2);
    if (!strcmp(mode, "compact")) {
        for (int k = 0; k < 3; k++) {
            if (ctl)
                ctl("mesh.compact", NULL, NULL, NULL, 0);
            fragment(30000, 128, 10 + (uint64_t)k);
        }
    } else if (!strcmp(mode, "frees")) {
        int n = argc > 2 ? atoi(argv[2]) : 250;
        uint64_t seed = 3;
        void *tmp[512];
        for (int round = 0; round < n; round++) {
            for (int i = 0; i < 512; i++)
                tmp[i] = malloc(64 + (size_t)(rng(&seed) % 3) * 64);
            for (int i = 0; i < 512; i++)
                free(tmp[i]);
            fragment(2000, 64, rng(&seed)); /* frees into detached spans */
            usleep(2000);
        }
    } else if (!strcmp(mode, "trim")) {
        malloc_trim(0);
    } else {
        fprintf(stderr, "usage: frag compact|frees [N]|trim|blocked|attr-mask|handler-mask [MS]\n");
        return 2;
    }
    int rc = verify_and_print();
    report();
    return rc;
}
