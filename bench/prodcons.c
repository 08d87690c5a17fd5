/* prodcons.c - libmesh benchmark workload: producer/consumer with
 * cross-thread frees.  PAIRS producer threads malloc objects of mixed
 * sizes (16..2048 B, skewed small) and pass them through bounded
 * lock-free single-producer/single-consumer ring queues to PAIRS consumer
 * threads, which check and free them.  Every object is freed by a thread
 * that did not allocate it.
 * usage: prodcons [PAIRS=2] [ITEMS=16000000] [SEED=1]
 * ITEMS is the total over all producers (ITEMS / PAIRS each), so the
 * amount of work does not change with the thread count.
 * Prints one deterministic result line; exit 0 on success. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define QCAP 4096 /* power of two */

struct queue {
    _Alignas(64) _Atomic size_t head; /* next slot to pop (consumer) */
    _Alignas(64) _Atomic size_t tail; /* next slot to push (producer) */
    _Alignas(64) void *slot[QCAP];
};

struct pair {
    struct queue q;
    long items;
    uint64_t seed;
    uint64_t produced_sum; /* written by producer */
    uint64_t consumed_sum; /* written by consumer */
    long consumed;
};

struct hdr { /* start of every object */
    uint64_t value;
    uint32_t size;
    uint32_t check;
};

static inline uint64_t rng(uint64_t *s) { return bench_rng(s); }

static void backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

static void push(struct queue *q, void *p)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned spins = 0;
    while (t - atomic_load_explicit(&q->head, memory_order_acquire) >= QCAP)
        backoff(&spins);
    q->slot[t & (QCAP - 1)] = p;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
}

static void *pop(struct queue *q)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    unsigned spins = 0;
    while (atomic_load_explicit(&q->tail, memory_order_acquire) == h)
        backoff(&spins);
    void *p = q->slot[h & (QCAP - 1)];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return p;
}

static uint32_t pick_size(uint64_t *s)
{
    uint64_t r = rng(s);
    if ((r & 3) != 0)                              /* 75%: 16..256 */
        return 16 + (uint32_t)((r >> 8) % 241);
    return 257 + (uint32_t)((r >> 8) % 1792);       /* 25%: 257..2048 */
}

static void *producer(void *arg)
{
    struct pair *pr = arg;
    uint64_t s = pr->seed, sum = 0;
    for (long i = 0; i < pr->items; i++) {
        uint32_t size = pick_size(&s);
        unsigned char *p = malloc(size);
        if (!p) {
            fprintf(stderr, "prodcons: malloc(%u) failed\n", size);
            exit(1);
        }
        struct hdr h = {rng(&s), size, 0};
        h.check = (uint32_t)(h.value >> 32) ^ size;
        memcpy(p, &h, sizeof h);
        size_t body = size - sizeof h;
        if (body) { /* the 16 B objects are all header */
            memset(p + sizeof h, (int)(h.value & 0xff), body < 48 ? body : 48);
            p[size - 1] = (unsigned char)(h.check & 0xff);
        }
        sum += h.value;
        push(&pr->q, p);
    }
    push(&pr->q, NULL); /* end marker */
    pr->produced_sum = sum;
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *pr = arg;
    uint64_t sum = 0;
    long n = 0;
    unsigned char *p;
    while ((p = pop(&pr->q)) != NULL) {
        struct hdr h;
        memcpy(&h, p, sizeof h);
        if (h.size < 16 || h.size > 2048 || h.check != ((uint32_t)(h.value >> 32) ^ h.size) ||
            (h.size > sizeof h + 1 && p[sizeof h] != (unsigned char)(h.value & 0xff)) ||
            (h.size > sizeof h && p[h.size - 1] != (unsigned char)(h.check & 0xff))) {
            fprintf(stderr, "prodcons: corrupted object %p\n", (void *)p);
            exit(1);
        }
        sum += h.value;
        n++;
        free(p);
    }
    pr->consumed_sum = sum;
    pr->consumed = n;
    return NULL;
}

static long arg_long(int argc, char **argv, int i, long def)
{
    return bench_arg("prodcons", argc, argv, i, def, 1, LONG_MAX);
}

int main(int argc, char **argv)
{
    long pairs = arg_long(argc, argv, 1, 2);
    long total_items = arg_long(argc, argv, 2, 16000000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    if (pairs > 256 || total_items < pairs) {
        fprintf(stderr, "prodcons: need 1..256 pairs and ITEMS >= PAIRS\n");
        return 2;
    }
    long items = total_items / pairs; /* per producer */

    struct pair *pr = aligned_alloc(64, sizeof(struct pair) * (size_t)pairs);
    pthread_t *th = malloc(sizeof(pthread_t) * 2 * (size_t)pairs);
    if (!pr || !th) {
        fprintf(stderr, "prodcons: out of memory\n");
        return 1;
    }
    for (long i = 0; i < pairs; i++) {
        memset(&pr[i], 0, sizeof pr[i]);
        atomic_init(&pr[i].q.head, 0);
        atomic_init(&pr[i].q.tail, 0);
        pr[i].items = items;
        pr[i].seed = 0x9E3779B97F4A7C15ULL * (seed * 1000003u + (uint64_t)i + 1);
    }
    for (long i = 0; i < pairs; i++) {
        if (pthread_create(&th[2 * i], NULL, consumer, &pr[i]) ||
            pthread_create(&th[2 * i + 1], NULL, producer, &pr[i])) {
            fprintf(stderr, "prodcons: pthread_create failed\n");
            return 1;
        }
    }
    for (long i = 0; i < 2 * pairs; i++)
        pthread_join(th[i], NULL);

    uint64_t total = 0;
    for (long i = 0; i < pairs; i++) {
        if (pr[i].consumed != items || pr[i].consumed_sum != pr[i].produced_sum) {
            fprintf(stderr, "prodcons: pair %ld lost objects\n", i);
            return 1;
        }
        total += pr[i].consumed_sum;
    }
    free(th);
    free(pr);
    printf("prodcons pairs=%ld items=%ld checksum=%016llx\n", pairs, items * pairs,
           (unsigned long long)total);
    return 0;
}
