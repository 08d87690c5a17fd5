/* larson.c - libmesh benchmark workload: larson-style server simulation.
 * Each of THREADS "lineages" owns an array of SLOTS live objects.  The
 * thread running a lineage repeatedly frees a random slot and mallocs a new
 * object of random size 16..1024 B in its place.  After OPS operations the
 * thread hands the whole array to a freshly created thread and exits, so
 * most objects are freed by a thread that did not allocate them (the
 * initial objects are allocated by the main thread).  A lineage ends after
 * EPOCHS hand-offs; its last thread frees everything.
 * usage: larson [THREADS=2] [SLOTS=20000] [OPS=200000] [EPOCHS=40] [SEED=1]
 * Prints one deterministic result line; exit 0 on success. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

struct slot {
    unsigned char *p;
    uint32_t size;
    uint32_t tag;
};

struct lineage {
    struct slot *slots;
    long nslots;
    long ops;
    long epochs_left;
    uint64_t rng;
    uint64_t sum;
    long handoffs;
};

static sem_t done;

static inline uint64_t rng(uint64_t *s) { return bench_rng(s); }

static void fill(struct slot *s, uint64_t *r)
{
    uint64_t x = rng(r);
    s->size = 16 + (uint32_t)(x % 1009); /* 16..1024 */
    s->tag = (uint32_t)(x >> 32);
    s->p = malloc(s->size);
    if (!s->p) {
        fprintf(stderr, "larson: malloc(%u) failed\n", s->size);
        exit(1);
    }
    memcpy(s->p, &s->tag, sizeof s->tag);
    memset(s->p + 4, (int)(s->tag & 0xff), s->size < 64 ? s->size - 4 : 60);
    s->p[s->size - 1] = (unsigned char)(s->tag >> 24);
}

static uint64_t check(const struct slot *s)
{
    uint32_t t;
    memcpy(&t, s->p, sizeof t);
    if (t != s->tag || s->p[4] != (unsigned char)(s->tag & 0xff) ||
        s->p[s->size - 1] != (unsigned char)(s->tag >> 24)) {
        fprintf(stderr, "larson: corrupted object %p size %u\n", (void *)s->p, s->size);
        exit(1);
    }
    return (uint64_t)s->size * 7 + s->tag;
}

static void *worker(void *arg)
{
    struct lineage *l = arg;
    for (long i = 0; i < l->ops; i++) {
        struct slot *s = &l->slots[rng(&l->rng) % (uint64_t)l->nslots];
        l->sum += check(s);
        free(s->p);
        fill(s, &l->rng);
    }
    if (l->epochs_left-- > 0) {
        /* hand the whole array to a new thread and go away */
        pthread_attr_t a;
        pthread_t t;
        l->handoffs++;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, worker, l)) {
            fprintf(stderr, "larson: pthread_create failed\n");
            exit(1);
        }
        pthread_attr_destroy(&a);
        return NULL;
    }
    for (long i = 0; i < l->nslots; i++) {
        l->sum += check(&l->slots[i]);
        free(l->slots[i].p);
    }
    free(l->slots);
    l->slots = NULL;
    sem_post(&done);
    return NULL;
}

/* Counts must be positive; the seed (argument 5) may be 0. */
static long arg_long(int argc, char **argv, int i, long def)
{
    return bench_arg("larson", argc, argv, i, def, i <= 3 ? 1 : 0, LONG_MAX);
}

int main(int argc, char **argv)
{
    long nthreads = arg_long(argc, argv, 1, 2);
    long nslots = arg_long(argc, argv, 2, 20000);
    long ops = arg_long(argc, argv, 3, 200000);
    long epochs = arg_long(argc, argv, 4, 40);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 5, 1);

    struct lineage *ls = calloc((size_t)nthreads, sizeof *ls);
    if (!ls || sem_init(&done, 0, 0)) {
        fprintf(stderr, "larson: setup failed\n");
        return 1;
    }
    for (long t = 0; t < nthreads; t++) {
        struct lineage *l = &ls[t];
        l->nslots = nslots;
        l->ops = ops;
        l->epochs_left = epochs;
        l->rng = 0x9E3779B97F4A7C15ULL * (seed * 1000003u + (uint64_t)t + 1);
        l->slots = malloc(sizeof(struct slot) * (size_t)nslots);
        if (!l->slots) {
            fprintf(stderr, "larson: out of memory\n");
            return 1;
        }
        for (long i = 0; i < nslots; i++)
            fill(&l->slots[i], &l->rng);
    }
    for (long t = 0; t < nthreads; t++) {
        pthread_attr_t a;
        pthread_t th;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &a, worker, &ls[t])) {
            fprintf(stderr, "larson: pthread_create failed\n");
            return 1;
        }
        pthread_attr_destroy(&a);
    }
    for (long t = 0; t < nthreads; t++)
        while (sem_wait(&done))
            ;
    uint64_t sum = 0, handoffs = 0;
    for (long t = 0; t < nthreads; t++) {
        sum += ls[t].sum;
        handoffs += (uint64_t)ls[t].handoffs;
    }
    free(ls);
    printf("larson threads=%ld ops=%ld handoffs=%llu checksum=%016llx\n", nthreads,
           nthreads * ops * (epochs + 1), (unsigned long long)handoffs, (unsigned long long)sum);
    return 0;
}
