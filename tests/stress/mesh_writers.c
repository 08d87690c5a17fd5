/*
 * mesh_writers.c - writes, frees and reallocs racing with meshing.
 *
 * The main thread builds a fragmented heap: many objects of meshable sizes
 * (16 .. 2048 B), a random ~85% freed, the rest kept.  Survivors are split
 * into writer-owned objects and "transfer" objects.  Then, for a few seconds:
 *
 *   writers   each owns a set of objects; an object holds its id, a counter
 *             and words derived from both.  A writer verifies an object,
 *             increments the counter, rewrites the whole object word by word
 *             and verifies it again.  Now and then it realloc()s an object to
 *             another meshable size (the prefix must survive) or replaces it
 *             with a fresh malloc().  Every 0.2 s it replaces its whole set
 *             with the survivors of a freshly fragmented batch (the frees are
 *             done by a freer thread, so the writer is back to writing while
 *             its new spans are being meshed).
 *   churners  allocate batches of one size, free ~85% of each batch (half of
 *             those through another churner: cross-thread frees), keep the
 *             rest for a while, so there are always new fragmented spans; they
 *             also take transfer objects (which sit in meshed spans once the
 *             first pass ran), check malloc_usable_size(), verify, realloc and
 *             free them - cross-thread frees of meshed objects.
 *   mesher    mesh_mallctl("mesh.compact") in a loop, malloc_trim(0) every few
 *             passes, short random sleeps.
 *
 * At the end every writer object must hold exactly its last written value
 * (no lost write, no corruption); then everything is freed from threads that
 * exit (so their caches are flushed) and, under libmesh, stats.mesh_count must
 * be > 0.  mesh_mallctl is looked up with dlsym, so the same program runs
 * without libmesh (correctness checks only).
 *
 * usage: mesh_writers [seconds=5] [writers=3] [churners=2] [seed]
 * Bookkeeping arrays are mmap'd, so the heap only holds the test's objects.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static mallctl_fn g_ctl;

#define MAX_WRITERS 16
#define MAX_CHURNERS 16
#define INITIAL_OBJS 240000
#define KEEP_PERMILLE 150
#define RING 8192

static const uint32_t g_sizes[] = {16, 48, 64, 96, 128, 256, 512, 1024, 2048};
#define NSIZES (sizeof g_sizes / sizeof g_sizes[0])

static double g_seconds = 5;
static int g_nwriters = 3, g_nchurners = 2;
static uint64_t g_seed = 0x5eed0001ULL;

static atomic_int g_stop;
static atomic_long g_fail;
static atomic_long g_writes, g_reallocs, g_replaced, g_churn_allocs, g_compacts, g_trims;
static atomic_long g_transfer_done, g_renewals;
static atomic_long g_xfree;
#define RENEW_S 0.2

static void *map_array(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mesh_writers: mmap");
        exit(1);
    }
    return p;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t ctl_size(const char *name) {
    size_t v = 0, len = sizeof v;
    if (!g_ctl || g_ctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    va_list ap;
    char buf[512];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (atomic_fetch_add(&g_fail, 1) < 20)
        fprintf(stderr, "mesh_writers: %s\n", buf);
}

/* ---- object pattern: word 0 = id, word 1 = counter, word i = f(id, counter, i) ---- */

static inline uint64_t pat(uint64_t id, uint64_t ctr, size_t i) {
    uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ ctr * 0xc2b2ae3d27d4eb4fULL ^ i * 0x165667b19e3779f9ULL;
    return x ^ (x >> 31);
}

static void fill(uint64_t *p, size_t size, uint64_t id, uint64_t ctr) {
    volatile uint64_t *v = p; /* every word is a separate store */
    size_t n = size / 8;
    v[0] = id;
    v[1] = ctr;
    for (size_t i = 2; i < n; i++)
        v[i] = pat(id, ctr, i);
}

/* Checks the first `size` bytes; returns the index of the first bad word or -1. */
static long check(const uint64_t *p, size_t size, uint64_t id, uint64_t ctr) {
    const volatile uint64_t *v = p;
    size_t n = size / 8;
    if (v[0] != id)
        return 0;
    if (v[1] != ctr)
        return 1;
    for (size_t i = 2; i < n; i++)
        if (v[i] != pat(id, ctr, i))
            return (long)i;
    return -1;
}

static void report_bad(const char *who, const uint64_t *p, size_t size, uint64_t id, uint64_t ctr, long w) {
    const volatile uint64_t *v = p;
    uint64_t want = w == 0 ? id : w == 1 ? ctr : pat(id, ctr, (size_t)w);
    fail("%s: object id %llu at %p (size %zu, counter %llu): word %ld is %#llx, expected %#llx", who,
         (unsigned long long)id, (void *)p, size, (unsigned long long)ctr, w, (unsigned long long)v[w],
         (unsigned long long)want);
}

/* ---- writer objects ---- */

typedef struct wobj {
    uint64_t *p;
    uint32_t size;
    uint64_t id;
    uint64_t ctr;
} wobj_t;

static wobj_t *g_wobj[MAX_WRITERS];
static size_t g_wn[MAX_WRITERS];

/* transfer objects: verified, realloc'd and freed by churners during the run */
typedef struct tobj {
    uint64_t *p;
    uint32_t size;
    uint64_t id;
} tobj_t;
static tobj_t *g_tobj;
static size_t g_tn;
static atomic_size_t g_tnext;

static atomic_uint_fast64_t g_next_id = 1;

static uint32_t pick_size(uint64_t *rs) { return g_sizes[rng_next(rs) % NSIZES]; }

/* Frees handed to the freer thread, so that a writer goes straight back to
   writing while its spans are fragmented and meshed (a thread that frees waits
   while its class is being meshed). */
typedef struct bag {
    struct bag *next;
    size_t n, cap;
    void *p[];
} bag_t;
static pthread_mutex_t g_bag_lock = PTHREAD_MUTEX_INITIALIZER;
static bag_t *g_bags;
static atomic_int g_freer_stop;

static bag_t *bag_new(size_t cap) {
    bag_t *b = map_array(sizeof(bag_t) + cap * sizeof(void *));
    b->cap = cap;
    return b;
}

static void bag_give(bag_t *b) {
    pthread_mutex_lock(&g_bag_lock);
    b->next = g_bags;
    g_bags = b;
    pthread_mutex_unlock(&g_bag_lock);
}

static void *freer(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g_bag_lock);
        bag_t *b = g_bags;
        g_bags = NULL;
        pthread_mutex_unlock(&g_bag_lock);
        if (!b && atomic_load(&g_freer_stop))
            return NULL;
        while (b) {
            bag_t *next = b->next;
            for (size_t i = 0; i < b->n; i++)
                free(b->p[i]);
            atomic_fetch_add(&g_xfree, (long)b->n);
            munmap(b, sizeof(bag_t) + b->cap * sizeof(void *));
            b = next;
        }
        struct timespec ts = {0, 200 * 1000L};
        nanosleep(&ts, NULL);
    }
}

/* Replaces a writer's whole set with a freshly fragmented population: allocates
   ~7x the set, has a random ~85% freed (by the freer thread), keeps the rest
   (fresh ids, counter 0); the old set is verified and freed the same way.  The
   new spans are detached once the writer moved on, so the mesher meshes them
   while the writer keeps rewriting them. */
static int renew(int tid, uint64_t *rs) {
    wobj_t *o = g_wobj[tid];
    size_t n = g_wn[tid], want = n * 7, got = 0;
    wobj_t *tmp = map_array(sizeof(wobj_t) * want);
    bag_t *bag = bag_new(want + n);
    for (size_t i = 0; i < want; i++) {
        uint32_t size = g_sizes[(i / 128) % NSIZES];
        tmp[i].p = malloc(size);
        if (!tmp[i].p) {
            fail("writer: malloc(%u) failed", size);
            return 0;
        }
        tmp[i].size = size;
        tmp[i].id = atomic_fetch_add(&g_next_id, 1);
        tmp[i].ctr = 0;
        fill(tmp[i].p, size, tmp[i].id, 0);
    }
    for (size_t i = 0; i < want; i++) {
        if (got < n && rng_next(rs) % 1000 < 160)
            tmp[got++] = tmp[i];
        else
            bag->p[bag->n++] = tmp[i].p;
    }
    for (size_t k = 0; k < n; k++) {
        long bad = check(o[k].p, o[k].size, o[k].id, o[k].ctr);
        if (bad >= 0) {
            report_bad("writer, retiring its set", o[k].p, o[k].size, o[k].id, o[k].ctr, bad);
            return 0;
        }
        if (k < got) {
            bag->p[bag->n++] = o[k].p;
            o[k] = tmp[k];
        } /* else: keep the old object (the new population came out short) */
    }
    bag_give(bag);
    munmap(tmp, sizeof(wobj_t) * want);
    atomic_fetch_add(&g_renewals, 1);
    return 1;
}

static void *writer(void *arg) {
    int tid = (int)(intptr_t)arg;
    uint64_t rs = g_seed ^ (0x1111ULL * (uint64_t)(tid + 1));
    wobj_t *o = g_wobj[tid];
    size_t n = g_wn[tid];
    double next_renew = now_s() + RENEW_S;
    while (!atomic_load(&g_stop) && !atomic_load(&g_fail)) {
        if (now_s() >= next_renew) {
            if (!renew(tid, &rs))
                return NULL;
            next_renew = now_s() + RENEW_S;
        }
        for (size_t k = 0; k < n && !atomic_load(&g_stop); k++) {
            wobj_t *w = &o[k];
            long bad = check(w->p, w->size, w->id, w->ctr);
            if (bad >= 0) {
                report_bad("writer, before write", w->p, w->size, w->id, w->ctr, bad);
                return NULL;
            }
            uint64_t r = rng_next(&rs);
            if ((r & 255) == 0) { /* realloc to another meshable size */
                uint32_t ns = pick_size(&rs);
                uint64_t *q = realloc(w->p, ns);
                if (!q) {
                    fail("writer: realloc(%p, %u) failed", (void *)w->p, ns);
                    return NULL;
                }
                uint32_t keep = ns < w->size ? ns : w->size;
                bad = check(q, keep, w->id, w->ctr);
                if (bad >= 0) {
                    report_bad("writer, after realloc", q, keep, w->id, w->ctr, bad);
                    return NULL;
                }
                if (malloc_usable_size(q) < ns) {
                    fail("writer: malloc_usable_size(%p) = %zu after realloc to %u", (void *)q,
                         malloc_usable_size(q), ns);
                    return NULL;
                }
                w->p = q;
                w->size = ns;
                atomic_fetch_add(&g_reallocs, 1);
            } else if ((r & 255) == 1) { /* replace with a fresh object */
                uint32_t ns = pick_size(&rs);
                uint64_t *q = malloc(ns);
                if (!q) {
                    fail("writer: malloc(%u) failed", ns);
                    return NULL;
                }
                free(w->p);
                w->p = q;
                w->size = ns;
                atomic_fetch_add(&g_replaced, 1);
            }
            w->ctr++;
            fill(w->p, w->size, w->id, w->ctr);
            bad = check(w->p, w->size, w->id, w->ctr);
            if (bad >= 0) {
                report_bad("writer, right after write", w->p, w->size, w->id, w->ctr, bad);
                return NULL;
            }
            atomic_fetch_add_explicit(&g_writes, 1, memory_order_relaxed);
        }
    }
    return NULL;
}

/* ---- churners ---- */

typedef struct handoff {
    pthread_mutex_t lock;
    void *slot[4096];
    unsigned n;
} handoff_t;
static handoff_t g_hand[MAX_CHURNERS];

static void drain_handoff(int tid) {
    handoff_t *h = &g_hand[tid];
    pthread_mutex_lock(&h->lock);
    for (unsigned i = 0; i < h->n; i++)
        free(h->slot[i]);
    atomic_fetch_add(&g_xfree, h->n);
    h->n = 0;
    pthread_mutex_unlock(&h->lock);
}

static void give_away(int tid, void *p) {
    handoff_t *h = &g_hand[(tid + 1) % g_nchurners];
    pthread_mutex_lock(&h->lock);
    if (h->n < 4096) {
        h->slot[h->n++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (p)
        free(p);
}

/* One transfer object: usable size, content, realloc (content kept), free. */
static double g_t0;
static double now_s(void);
static void handle_transfer(uint64_t *rs) {
    /* paced over the first 80% of the run, so meshing keeps racing with these frees */
    double frac = (now_s() - g_t0) / (g_seconds * 0.8);
    if ((double)atomic_load(&g_tnext) >= frac * (double)g_tn)
        return;
    size_t i = atomic_fetch_add(&g_tnext, 1);
    if (i >= g_tn)
        return;
    tobj_t *t = &g_tobj[i];
    size_t us = malloc_usable_size(t->p);
    if (us < t->size) {
        fail("transfer: malloc_usable_size(%p) = %zu < %u", (void *)t->p, us, t->size);
        return;
    }
    long bad = check(t->p, t->size, t->id, 7);
    if (bad >= 0) {
        report_bad("transfer object", t->p, t->size, t->id, 7, bad);
        return;
    }
    uint64_t *p = t->p;
    uint32_t size = t->size;
    int steps = (int)(rng_next(rs) % 3);
    for (int s = 0; s < steps; s++) {
        uint32_t ns = pick_size(rs);
        uint64_t *q = realloc(p, ns);
        if (!q) {
            fail("transfer: realloc failed");
            return;
        }
        uint32_t keep = ns < size ? ns : size;
        bad = check(q, keep, t->id, 7);
        if (bad >= 0) {
            report_bad("transfer object after realloc", q, keep, t->id, 7, bad);
            return;
        }
        if (ns > size)
            fill(q, ns, t->id, 7);
        p = q;
        size = ns;
    }
    free(p);
    atomic_fetch_add(&g_transfer_done, 1);
}

typedef struct keep {
    uint64_t *p;
    uint32_t size;
    uint64_t id;
} keep_t;

static void *churner(void *arg) {
    int tid = (int)(intptr_t)arg;
    uint64_t rs = g_seed ^ (0x7777ULL * (uint64_t)(tid + 1));
    keep_t *ring = map_array(sizeof(keep_t) * RING);
    size_t head = 0, count = 0;
    enum { BATCH = 512 };
    uint64_t **batch = map_array(sizeof(uint64_t *) * BATCH);
    while (!atomic_load(&g_stop) && !atomic_load(&g_fail)) {
        uint32_t size = pick_size(&rs);
        uint64_t base = atomic_fetch_add(&g_next_id, BATCH);
        for (int i = 0; i < BATCH; i++) {
            batch[i] = malloc(size);
            if (!batch[i]) {
                fail("churner: malloc(%u) failed", size);
                return NULL;
            }
            fill(batch[i], size, base + (uint64_t)i, 3);
        }
        atomic_fetch_add(&g_churn_allocs, BATCH);
        for (int i = 0; i < BATCH; i++) {
            uint64_t r = rng_next(&rs) % 1000;
            if (r < 150) { /* keep */
                if (count == RING) { /* retire the oldest */
                    keep_t *k = &ring[head];
                    long bad = check(k->p, k->size, k->id, 3);
                    if (bad >= 0) {
                        report_bad("churner survivor", k->p, k->size, k->id, 3, bad);
                        return NULL;
                    }
                    if (rng_next(&rs) & 1)
                        give_away(tid, k->p);
                    else
                        free(k->p);
                    head = (head + 1) % RING;
                    count--;
                }
                ring[(head + count) % RING] = (keep_t){batch[i], size, base + (uint64_t)i};
                count++;
            } else if (r < 575) {
                free(batch[i]);
            } else {
                give_away(tid, batch[i]);
            }
        }
        drain_handoff(tid);
        for (int k = 0; k < 8; k++)
            handle_transfer(&rs);
    }
    /* verify and free what is left; this thread exits afterwards (flushes its cache) */
    for (size_t i = 0; i < count; i++) {
        keep_t *k = &ring[(head + i) % RING];
        long bad = check(k->p, k->size, k->id, 3);
        if (bad >= 0)
            report_bad("churner survivor at exit", k->p, k->size, k->id, 3, bad);
        free(k->p);
    }
    munmap(ring, sizeof(keep_t) * RING);
    munmap(batch, sizeof(uint64_t *) * BATCH);
    return NULL;
}

static void *mesher(void *arg) {
    (void)arg;
    uint64_t rs = g_seed ^ 0xabcdefULL;
    long n = 0;
    while (!atomic_load(&g_stop) && !atomic_load(&g_fail)) {
        if (g_ctl) {
            size_t released = 0, len = sizeof released;
            int rc = g_ctl("mesh.compact", &released, &len, NULL, 0);
            if (rc != 0) {
                fail("mesh_mallctl(\"mesh.compact\") returned %d", rc);
                return NULL;
            }
            atomic_fetch_add(&g_compacts, 1);
        }
        if (++n % 8 == 0 || !g_ctl) {
            malloc_trim(0);
            atomic_fetch_add(&g_trims, 1);
        }
        struct timespec ts = {0, (long)(rng_next(&rs) % 2000) * 1000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *drainer(void *arg) {
    (void)arg;
    for (int i = 0; i < g_nchurners; i++)
        drain_handoff(i);
    return NULL;
}

/* End phase: free a share of the remaining objects from a thread that then exits. */
typedef struct free_job {
    wobj_t *o;
    size_t n;
} free_job_t;

static void *free_worker(void *arg) {
    free_job_t *j = arg;
    for (size_t i = 0; i < j->n; i++)
        free(j->o[i].p);
    return NULL;
}

static size_t g_per_writer;

static void *builder(void *arg) {
    (void)arg;
    uint64_t rs = g_seed;
    wobj_t *all = map_array(sizeof(wobj_t) * INITIAL_OBJS);
    for (size_t i = 0; i < INITIAL_OBJS; i++) {
        uint32_t size = g_sizes[(i / 64) % NSIZES]; /* runs of one size: whole spans per size */
        all[i].p = malloc(size);
        if (!all[i].p) {
            fprintf(stderr, "mesh_writers: initial malloc failed\n");
            exit(1);
        }
        all[i].size = size;
        all[i].id = atomic_fetch_add(&g_next_id, 1);
        all[i].ctr = 7;
        fill(all[i].p, size, all[i].id, 7);
    }
    size_t kept = 0;
    for (size_t i = 0; i < INITIAL_OBJS; i++) {
        if (rng_next(&rs) % 1000 < KEEP_PERMILLE)
            all[kept++] = all[i];
        else
            free(all[i].p);
    }
    /* half of the survivors go to writers, half are transfer objects */
    size_t per_writer = kept / 2 / (size_t)g_nwriters;
    if (per_writer > 3000) /* small sets: each object is rewritten every few ms */
        per_writer = 3000;
    size_t used = 0;
    for (int t = 0; t < g_nwriters; t++) {
        g_wobj[t] = map_array(sizeof(wobj_t) * (per_writer + 1));
        memcpy(g_wobj[t], all + used, sizeof(wobj_t) * per_writer);
        g_wn[t] = per_writer;
        used += per_writer;
    }
    g_tn = kept - used;
    g_tobj = map_array(sizeof(tobj_t) * (g_tn + 1));
    for (size_t i = 0; i < g_tn; i++)
        g_tobj[i] = (tobj_t){all[used + i].p, all[used + i].size, all[used + i].id};
    munmap(all, sizeof(wobj_t) * INITIAL_OBJS);
    g_per_writer = per_writer;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_seconds = atof(argv[1]);
    if (argc > 2)
        g_nwriters = atoi(argv[2]);
    if (argc > 3)
        g_nchurners = atoi(argv[3]);
    if (argc > 4)
        g_seed = strtoull(argv[4], NULL, 0);
    if (g_seconds <= 0 || g_nwriters < 1 || g_nwriters > MAX_WRITERS || g_nchurners < 1 ||
        g_nchurners > MAX_CHURNERS) {
        fprintf(stderr, "usage: %s [seconds] [writers 1..%d] [churners 1..%d] [seed]\n", argv[0], MAX_WRITERS,
                MAX_CHURNERS);
        return 2;
    }
    g_ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    for (int i = 0; i < MAX_CHURNERS; i++)
        pthread_mutex_init(&g_hand[i].lock, NULL);

    /* the fragmented heap, built by a thread that exits (its cache is flushed) */
    pthread_t bt;
    pthread_create(&bt, NULL, builder, NULL);
    pthread_join(bt, NULL);
    size_t per_writer = g_per_writer;



    pthread_t wt[MAX_WRITERS], ct[MAX_CHURNERS], mt, frt;
    pthread_create(&frt, NULL, freer, NULL);
    for (int i = 0; i < g_nwriters; i++)
        pthread_create(&wt[i], NULL, writer, (void *)(intptr_t)i);
    for (int i = 0; i < g_nchurners; i++)
        pthread_create(&ct[i], NULL, churner, (void *)(intptr_t)i);
    g_t0 = now_s();
    pthread_create(&mt, NULL, mesher, NULL);

    double t0 = g_t0;
    while (now_s() - t0 < g_seconds && !atomic_load(&g_fail)) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < g_nwriters; i++)
        pthread_join(wt[i], NULL);
    atomic_store(&g_freer_stop, 1);
    pthread_join(frt, NULL);
    for (int i = 0; i < g_nchurners; i++)
        pthread_join(ct[i], NULL);
    pthread_join(mt, NULL);
    pthread_create(&mt, NULL, drainer, NULL); /* from a thread that exits */
    pthread_join(mt, NULL);

    /* final check: every writer object holds its last written value */
    size_t checked = 0;
    for (int t = 0; t < g_nwriters; t++)
        for (size_t k = 0; k < g_wn[t]; k++) {
            wobj_t *w = &g_wobj[t][k];
            long bad = check(w->p, w->size, w->id, w->ctr);
            if (bad >= 0)
                report_bad("final check (lost write?)", w->p, w->size, w->id, w->ctr, bad);
            checked++;
        }
    size_t tleft = 0;
    for (size_t i = atomic_load(&g_tnext); i < g_tn; i++) {
        long bad = check(g_tobj[i].p, g_tobj[i].size, g_tobj[i].id, 7);
        if (bad >= 0)
            report_bad("final check of transfer object", g_tobj[i].p, g_tobj[i].size, g_tobj[i].id, 7, bad);
        tleft++;
    }
    size_t mesh_count = ctl_size("stats.mesh_count");
    size_t aliases_live = ctl_size("stats.mesh_aliases");

    /* free everything from threads that exit, then one more pass */
    free_job_t jobs[MAX_WRITERS + 1];
    pthread_t ft[MAX_WRITERS + 1];
    for (int t = 0; t < g_nwriters; t++) {
        jobs[t] = (free_job_t){g_wobj[t], g_wn[t]};
        pthread_create(&ft[t], NULL, free_worker, &jobs[t]);
    }
    wobj_t *rest = map_array(sizeof(wobj_t) * (tleft + 1));
    size_t rn = 0;
    for (size_t i = atomic_load(&g_tnext); i < g_tn; i++)
        rest[rn++].p = g_tobj[i].p;
    jobs[g_nwriters] = (free_job_t){rest, rn};
    pthread_create(&ft[g_nwriters], NULL, free_worker, &jobs[g_nwriters]);
    for (int t = 0; t <= g_nwriters; t++)
        pthread_join(ft[t], NULL);
    if (g_ctl)
        g_ctl("mesh.compact", NULL, NULL, NULL, 0);
    size_t aliases_end = ctl_size("stats.mesh_aliases");
    size_t meshed_bytes_end = ctl_size("stats.meshed_bytes");

    /* every object is freed and every thread that freed one has exited: no alias may
       be left (an alias is released when its last object is freed) */
    if (g_ctl && aliases_end != 0)
        fail("stats.mesh_aliases is %zu (meshed_bytes %zu) after every object was freed, expected 0", aliases_end,
             meshed_bytes_end);
    if (g_ctl && mesh_count == 0)
        fail("under libmesh, but stats.mesh_count is 0: nothing was meshed ");

    long f = atomic_load(&g_fail);
    printf("mesh_writers: %s: %.1f s, %d writers x %zu objects (%zu checked at the end), %ld writes, %ld reallocs, "
           "%ld replaced, %ld set renewals, %ld transfer objects verified+realloc'd+freed cross-thread, %ld churn allocations, "
           "%ld cross-thread frees, %ld compactions, %ld trims; %s mesh_count %zu, aliases "
           "%zu live -> %zu after freeing everything, meshed_bytes %zu; %ld failures\n",
           f ? "FAILED" : "OK", g_seconds, g_nwriters, per_writer, checked, atomic_load(&g_writes),
           atomic_load(&g_reallocs), atomic_load(&g_replaced), atomic_load(&g_renewals), atomic_load(&g_transfer_done),
           atomic_load(&g_churn_allocs), atomic_load(&g_xfree), atomic_load(&g_compacts), atomic_load(&g_trims),
           g_ctl ? "libmesh:" : "no libmesh:", mesh_count, aliases_live, aliases_end, meshed_bytes_end, f);
    return f ? 1 : 0;
}
