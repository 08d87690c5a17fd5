/*
 * thread_churn.c - thousands of short-lived threads.
 *
 * Each thread allocates a few hundred objects (8 B .. 32 KiB, a few up to
 * 256 KiB), fills them with a pattern derived from the object id and address,
 * frees most of them in shuffled order, hands some to the main thread (which
 * frees them later) and "leaks" some into a global orphan pool from which
 * later threads pick objects up, verify and free them.  Some threads are
 * detached, some exit with pthread_exit() while still holding objects.
 * Everything is verified before it is freed and every object is accounted for.
 *
 * usage: thread_churn [threads] [objects-per-thread] [concurrency] [seed]
 * Default: 3000 threads x 300 objects, 4 running at a time.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct item {
    unsigned char *p;
    uint64_t id;
    uint32_t size;
    uint32_t born; /* thread number that allocated it */
} item_t;

/* A simple locked bag of items. */
typedef struct bag {
    pthread_mutex_t lock;
    item_t *v;
    size_t n, cap;
} bag_t;

static long g_threads = 3000;
static int g_per_thread = 300;
static int g_conc = 4;
static uint64_t g_seed = 0x5eedULL;

static bag_t g_to_main = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
static bag_t g_orphans = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
static atomic_long g_allocated, g_freed, g_failures, g_adopted, g_detached_done;

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t pat_word(const item_t *it, size_t i) {
    uint64_t x = (it->id + 1) * 0xd6e8feb86659fd93ULL ^ (uint64_t)(uintptr_t)it->p ^ (i * 0x9e3779b97f4a7c15ULL);
    return x ^ (x >> 32);
}

static void fill(const item_t *it) {
    size_t nw = it->size / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w = pat_word(it, i);
        memcpy(it->p + 8 * i, &w, 8);
    }
    for (size_t i = nw * 8; i < it->size; i++)
        it->p[i] = (unsigned char)(it->id * 7 + i);
}

static int verify_and_free(const item_t *it, const char *who) {
    size_t nw = it->size / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w;
        memcpy(&w, it->p + 8 * i, 8);
        if (w != pat_word(it, i)) {
            fprintf(stderr,
                    "thread_churn: %s: object id %llu (%u bytes at %p, born in thread %u) corrupted at word %zu: "
                    "%#llx != %#llx\n",
                    who, (unsigned long long)it->id, it->size, (void *)it->p, it->born, i, (unsigned long long)w,
                    (unsigned long long)pat_word(it, i));
            atomic_fetch_add(&g_failures, 1);
            return 0;
        }
    }
    for (size_t i = nw * 8; i < it->size; i++) {
        if (it->p[i] != (unsigned char)(it->id * 7 + i)) {
            fprintf(stderr, "thread_churn: %s: object id %llu (%u bytes at %p) corrupted at byte %zu\n", who,
                    (unsigned long long)it->id, it->size, (void *)it->p, i);
            atomic_fetch_add(&g_failures, 1);
            return 0;
        }
    }
    free(it->p);
    atomic_fetch_add(&g_freed, 1);
    return 1;
}

static int bag_put(bag_t *b, const item_t *it) {
    pthread_mutex_lock(&b->lock);
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        item_t *nv = realloc(b->v, nc * sizeof(item_t));
        if (!nv) {
            pthread_mutex_unlock(&b->lock);
            fprintf(stderr, "thread_churn: realloc of bag failed\n");
            atomic_fetch_add(&g_failures, 1);
            return 0;
        }
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = *it;
    pthread_mutex_unlock(&b->lock);
    return 1;
}

/* take up to max items out of the bag (from the front half, pseudo-randomly) */
static size_t bag_take(bag_t *b, item_t *out, size_t max, uint64_t *rs) {
    size_t k = 0;
    pthread_mutex_lock(&b->lock);
    while (k < max && b->n > 0) {
        size_t idx = (size_t)(rng_next(rs) % b->n);
        out[k++] = b->v[idx];
        b->v[idx] = b->v[--b->n];
    }
    pthread_mutex_unlock(&b->lock);
    return k;
}

static uint32_t pick_size(uint64_t *rs) {
    uint64_t r = rng_next(rs) % 1000;
    uint64_t r2 = rng_next(rs);
    if (r < 3)
        return 32768 + (uint32_t)(r2 % (262144 - 32768));
    if (r < 60)
        return 2048 + (uint32_t)(r2 % (32768 - 2048));
    if (r < 300)
        return 256 + (uint32_t)(r2 % (2048 - 256));
    return 8 + (uint32_t)(r2 % 249);
}

typedef struct targ {
    long tno;
    int detached;
} targ_t;

static targ_t *g_targs;

static void *thread_main(void *arg) {
    targ_t *ta = arg;
    long tno = ta->tno;
    uint64_t rs = g_seed ^ ((uint64_t)tno * 0x2545f4914f6cdd1dULL + 1);
    char who[48];
    snprintf(who, sizeof who, "thread %ld", tno);

    /* adopt a few orphans leaked by earlier threads */
    item_t adopt[8];
    uint64_t rs_bag = rs ^ 0xabcdefULL; /* separate stream: bag content is timing dependent */
    size_t na = bag_take(&g_orphans, adopt, 1 + (size_t)(rng_next(&rs) % 8), &rs_bag);
    for (size_t i = 0; i < na; i++) {
        verify_and_free(&adopt[i], who);
        atomic_fetch_add(&g_adopted, 1);
    }

    int n = g_per_thread / 2 + (int)(rng_next(&rs) % (uint64_t)g_per_thread);
    item_t *items = malloc((size_t)n * sizeof(item_t));
    if (!items) {
        fprintf(stderr, "thread_churn: %s: malloc of item table failed\n", who);
        atomic_fetch_add(&g_failures, 1);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        items[i].size = pick_size(&rs);
        items[i].id = ((uint64_t)tno << 20) | (uint64_t)i;
        items[i].born = (uint32_t)tno;
        items[i].p = malloc(items[i].size);
        if (!items[i].p) {
            fprintf(stderr, "thread_churn: %s: malloc(%u) failed\n", who, items[i].size);
            atomic_fetch_add(&g_failures, 1);
            n = i;
            break;
        }
        atomic_fetch_add(&g_allocated, 1);
        fill(&items[i]);
        /* free some early, interleaved with allocation */
        if (i > 4 && rng_next(&rs) % 4 == 0) {
            int j = (int)(rng_next(&rs) % (uint64_t)i);
            if (items[j].p) {
                verify_and_free(&items[j], who);
                items[j].p = NULL;
            }
        }
    }
    /* shuffle */
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(&rs) % (uint64_t)(i + 1));
        item_t t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
    for (int i = 0; i < n; i++) {
        if (!items[i].p)
            continue;
        uint64_t r = rng_next(&rs) % 100;
        if (r < 3)
            bag_put(&g_to_main, &items[i]);
        else if (r < 6)
            bag_put(&g_orphans, &items[i]);
        else
            verify_and_free(&items[i], who);
    }
    free(items);
    if (ta->detached) {
        atomic_fetch_add(&g_detached_done, 1);
    }
    if (tno % 7 == 0)
        pthread_exit(NULL);
    return NULL;
}

static void drain_main(size_t max) {
    static uint64_t rs = 42;
    item_t buf[64];
    while (max > 0) {
        size_t k = bag_take(&g_to_main, buf, max < 64 ? max : 64, &rs);
        if (k == 0)
            break;
        for (size_t i = 0; i < k; i++)
            verify_and_free(&buf[i], "main");
        max -= k;
    }
}

static void *free_orphans(void *arg) {
    (void)arg;
    uint64_t rs = 99;
    item_t buf[64];
    size_t k;
    while ((k = bag_take(&g_orphans, buf, 64, &rs)) > 0)
        for (size_t i = 0; i < k; i++)
            verify_and_free(&buf[i], "last thread (orphans)");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_threads = atol(argv[1]);
    if (argc > 2)
        g_per_thread = atoi(argv[2]);
    if (argc > 3)
        g_conc = atoi(argv[3]);
    if (argc > 4)
        g_seed = strtoull(argv[4], NULL, 0);
    if (g_threads < 1 || g_per_thread < 2 || g_conc < 1 || g_conc > 256) {
        fprintf(stderr, "usage: %s [threads] [objects-per-thread >= 2] [concurrency 1..256] [seed]\n", argv[0]);
        return 2;
    }
    g_targs = calloc((size_t)g_threads, sizeof(targ_t));
    pthread_t *running = calloc((size_t)g_conc, sizeof(pthread_t));
    if (!g_targs || !running) {
        fprintf(stderr, "thread_churn: setup allocation failed\n");
        return 1;
    }
    pthread_attr_t det;
    pthread_attr_init(&det);
    pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);

    long detached = 0;
    long t = 0;
    while (t < g_threads && atomic_load(&g_failures) == 0) {
        int batch = 0;
        for (; batch < g_conc && t < g_threads; t++) {
            g_targs[t].tno = t;
            if (t % 10 == 3) {
                /* detached thread, not joined; waited for via counter */
                pthread_t dt;
                g_targs[t].detached = 1;
                if (pthread_create(&dt, &det, thread_main, &g_targs[t]) != 0) {
                    fprintf(stderr, "thread_churn: pthread_create (detached) failed at thread %ld\n", t);
                    return 1;
                }
                detached++;
                continue;
            }
            if (pthread_create(&running[batch], NULL, thread_main, &g_targs[t]) != 0) {
                fprintf(stderr, "thread_churn: pthread_create failed at thread %ld\n", t);
                return 1;
            }
            batch++;
        }
        /* main frees some of what it was handed while threads run */
        drain_main(16);
        for (int i = 0; i < batch; i++)
            pthread_join(running[i], NULL);
        /* compaction request while objects of dead threads are still live */
        if ((t / g_conc) % 128 == 64)
            malloc_trim(0);
    }
    /* wait for detached threads */
    struct timespec ts = {0, 1000000};
    for (int waited = 0; atomic_load(&g_detached_done) < detached; waited++) {
        if (waited > 30000) {
            fprintf(stderr, "thread_churn: detached threads did not finish (%ld of %ld)\n",
                    atomic_load(&g_detached_done), detached);
            return 1;
        }
        nanosleep(&ts, NULL);
    }
    pthread_attr_destroy(&det);

    pthread_mutex_lock(&g_to_main.lock);
    size_t left_main = g_to_main.n;
    pthread_mutex_unlock(&g_to_main.lock);
    pthread_mutex_lock(&g_orphans.lock);
    size_t left_orphans = g_orphans.n;
    pthread_mutex_unlock(&g_orphans.lock);
    drain_main((size_t)-1);
    /* remaining orphans are freed by one last short-lived thread */
    pthread_t last;
    if (pthread_create(&last, NULL, free_orphans, NULL) != 0) {
        fprintf(stderr, "thread_churn: pthread_create (last) failed\n");
        return 1;
    }
    pthread_join(last, NULL);
    free(g_to_main.v);
    free(g_orphans.v);
    free(running);
    free(g_targs);

    long a = atomic_load(&g_allocated), f = atomic_load(&g_freed);
    if (atomic_load(&g_failures) != 0 || a != f) {
        fprintf(stderr, "thread_churn: FAILED: %ld failures, allocated %ld, freed %ld\n", atomic_load(&g_failures), a,
                f);
        return 1;
    }
    printf("thread_churn: OK: %ld threads (%ld detached), %ld objects verified and freed, %ld adopted from dead "
           "threads, %zu freed by main and %zu by a last thread at the end\n",
           g_threads, detached, a, atomic_load(&g_adopted), left_main, left_orphans);
    return 0;
}
