/*
 * xthread_free.c - cross-thread frees with a mix of sizes.
 *
 * Every thread produces objects (16 B .. 64 KiB, occasionally 1..4 MiB),
 * fills them with a pattern derived from the object id and its address,
 * and pushes them onto the queue of another thread.  A consumer verifies the
 * content; an object may be forwarded a couple of times (re-stamped by each
 * forwarding thread) before the last receiver verifies and frees it.  So
 * nearly every free happens on a thread other than the allocating one.
 *
 * usage: xthread_free [threads] [objects-per-thread] [seed]
 * Default: 4 threads x 100000 objects (~1.5 GiB allocated in total, small RSS).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QCAP 1024
#define MAX_THREADS 64

/* Metadata travels beside the object through the queues, so even a 16-byte
 * object is pattern-filled over its whole size. */
typedef struct msg {
    unsigned char *p;
    uint64_t id;
    uint64_t size;
    uint64_t stamp; /* changes on every forward */
    uint32_t hops;  /* forwards left */
    uint32_t owner; /* thread that allocated it */
} msg_t;

typedef struct queue {
    pthread_mutex_t lock;
    msg_t slots[QCAP];
    unsigned head, count;
} queue_t;

static int g_nthreads = 4;
static long g_per_thread = 100000;
static uint64_t g_seed = 0x1234abcdULL;
static queue_t g_queues[MAX_THREADS];
static atomic_long g_freed;
static atomic_long g_failures;
static atomic_long g_bytes;
static atomic_long g_forwards;
static atomic_long g_large;

static uint64_t rng_next(uint64_t *s) {
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t pat_word(const msg_t *m, uint64_t i) {
    uint64_t x = m->id * 0x9e3779b97f4a7c15ULL ^ m->stamp * 0xc2b2ae3d27d4eb4fULL ^ (uint64_t)(uintptr_t)m->p ^
                 (i * 0x165667b19e3779f9ULL);
    x ^= x >> 29;
    return x;
}

static inline unsigned char pat_byte(const msg_t *m, uint64_t i) {
    return (unsigned char)(m->id ^ m->stamp ^ ((uint64_t)(uintptr_t)m->p >> 4) ^ i);
}

static void fill(const msg_t *m) {
    size_t nwords = (size_t)m->size / 8;
    for (size_t i = 0; i < nwords; i++) {
        uint64_t w = pat_word(m, i);
        memcpy(m->p + i * 8, &w, 8);
    }
    for (size_t i = nwords * 8; i < m->size; i++)
        m->p[i] = pat_byte(m, i);
}

static int verify(const msg_t *m, int tid) {
    size_t nwords = (size_t)m->size / 8;
    for (size_t i = 0; i < nwords; i++) {
        uint64_t w, want = pat_word(m, i);
        memcpy(&w, m->p + i * 8, 8);
        if (w != want) {
            fprintf(stderr,
                    "xthread_free: thread %d: object id %#llx at %p size %llu (allocated by thread %u): word %zu "
                    "is %#llx, expected %#llx\n",
                    tid, (unsigned long long)m->id, (void *)m->p, (unsigned long long)m->size, m->owner, i,
                    (unsigned long long)w, (unsigned long long)want);
            return 0;
        }
    }
    for (size_t i = nwords * 8; i < m->size; i++) {
        if (m->p[i] != pat_byte(m, i)) {
            fprintf(stderr, "xthread_free: thread %d: object id %#llx at %p size %llu: byte %zu is %#x, expected %#x\n",
                    tid, (unsigned long long)m->id, (void *)m->p, (unsigned long long)m->size, i, m->p[i],
                    pat_byte(m, i));
            return 0;
        }
    }
    return 1;
}

static int q_try_push(queue_t *q, const msg_t *m) {
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count < QCAP) {
        q->slots[(q->head + q->count) % QCAP] = *m;
        q->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static int q_try_pop(queue_t *q, msg_t *out) {
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count > 0) {
        *out = q->slots[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static size_t pick_size(uint64_t *rs) {
    uint64_t r = rng_next(rs);
    unsigned bucket = (unsigned)(r % 10000);
    uint64_t r2 = rng_next(rs);
    if (bucket < 4) /* 0.04 %: 1..4 MiB */
        return (size_t)(1u << 20) + (size_t)(r2 % ((3u << 20) + 1));
    if (bucket < 600) /* 6 %: 8 KiB .. 64 KiB */
        return 8192 + (size_t)(r2 % (65536 - 8192 + 1));
    if (bucket < 3000) /* 24 %: 512 B .. 8 KiB */
        return 512 + (size_t)(r2 % (8192 - 512 + 1));
    /* 70 %: 16 .. 512 B, every size */
    return 16 + (size_t)(r2 % (512 - 16 + 1));
}

static void push_somewhere(msg_t *m, int tid, uint64_t *rs);

/* Verify a received object; forward it or free it.  Returns 0 on failure. */
static int handle(msg_t *m, int tid, uint64_t *rs) {
    if (!verify(m, tid)) {
        atomic_fetch_add(&g_failures, 1);
        return 0;
    }
    if (m->hops > 0) {
        m->hops--;
        m->stamp = rng_next(rs);
        fill(m);
        atomic_fetch_add(&g_forwards, 1);
        push_somewhere(m, tid, rs);
        return 1;
    }
    free(m->p);
    atomic_fetch_add(&g_freed, 1);
    return 1;
}

static void push_somewhere(msg_t *m, int tid, uint64_t *rs) {
    int dst = (int)(rng_next(rs) % (uint64_t)g_nthreads);
    if (dst == tid)
        dst = (dst + 1) % g_nthreads;
    while (!q_try_push(&g_queues[dst], m)) {
        /* target full: make progress on our own queue meanwhile */
        msg_t mine;
        if (q_try_pop(&g_queues[tid], &mine))
            handle(&mine, tid, rs);
        else
            sched_yield();
    }
}

static void *worker(void *arg) {
    int tid = (int)(intptr_t)arg;
    /* two streams: what gets allocated is deterministic per thread; the
     * routing stream is consumed in scheduling-dependent order */
    uint64_t ra = g_seed ^ ((uint64_t)(tid + 1) * 0x2545f4914f6cdd1dULL);
    uint64_t rs = ~g_seed ^ ((uint64_t)(tid + 1) * 0x9e3779b97f4a7c15ULL);
    long total = (long)g_nthreads * g_per_thread;

    for (long n = 0; n < g_per_thread && atomic_load(&g_failures) == 0; n++) {
        msg_t m;
        m.size = pick_size(&ra);
        m.p = malloc((size_t)m.size);
        if (!m.p) {
            fprintf(stderr, "xthread_free: thread %d: malloc(%llu) returned NULL\n", tid, (unsigned long long)m.size);
            atomic_fetch_add(&g_failures, 1);
            break;
        }
        if (m.size >= (1u << 20))
            atomic_fetch_add(&g_large, 1);
        atomic_fetch_add(&g_bytes, (long)m.size);
        m.id = ((uint64_t)tid << 40) | (uint64_t)n;
        m.stamp = rng_next(&ra);
        m.hops = (uint32_t)(rng_next(&ra) % 3);
        m.owner = (uint32_t)tid;
        fill(&m);
        push_somewhere(&m, tid, &rs);
        /* ask for compaction now and then, while other threads keep going
         * (libmesh may mesh spans in malloc_trim; glibc just trims) */
        if (n % 25000 == 12345)
            malloc_trim(0);
        /* consume a little every iteration so the queues stay short */
        for (int k = 0; k < 2; k++) {
            msg_t mine;
            if (!q_try_pop(&g_queues[tid], &mine))
                break;
            handle(&mine, tid, &rs);
        }
    }
    /* drain until every object of every thread has been freed */
    while (atomic_load(&g_freed) < total && atomic_load(&g_failures) == 0) {
        msg_t mine;
        if (q_try_pop(&g_queues[tid], &mine))
            handle(&mine, tid, &rs);
        else
            sched_yield();
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        g_nthreads = atoi(argv[1]);
    if (argc > 2)
        g_per_thread = atol(argv[2]);
    if (argc > 3)
        g_seed = strtoull(argv[3], NULL, 0);
    if (g_nthreads < 2 || g_nthreads > MAX_THREADS || g_per_thread < 1) {
        fprintf(stderr, "usage: %s [threads 2..%d] [objects-per-thread] [seed]\n", argv[0], MAX_THREADS);
        return 2;
    }
    for (int i = 0; i < g_nthreads; i++)
        pthread_mutex_init(&g_queues[i].lock, NULL);

    pthread_t th[MAX_THREADS];
    for (int i = 0; i < g_nthreads; i++) {
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "xthread_free: pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < g_nthreads; i++)
        pthread_join(th[i], NULL);

    long total = (long)g_nthreads * g_per_thread;
    long freed = atomic_load(&g_freed);
    if (atomic_load(&g_failures) != 0 || freed != total) {
        fprintf(stderr, "xthread_free: FAILED: %ld failures, freed %ld of %ld objects\n", atomic_load(&g_failures),
                freed, total);
        return 1;
    }
    printf("xthread_free: OK: %d threads, %ld objects (%ld >= 1 MiB, %.1f MiB total), %ld cross-thread forwards, all "
           "verified and freed\n",
           g_nthreads, total, atomic_load(&g_large), (double)atomic_load(&g_bytes) / (1 << 20),
           atomic_load(&g_forwards));
    return 0;
}
