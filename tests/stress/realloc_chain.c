/*
 * realloc_chain.c - realloc chains, calloc zeroing, aligned allocation.
 *
 *  1. realloc chains: several chains grow from 1 B to 8 MiB and shrink back to
 *     1 B (first byte by byte through the small sizes, then geometrically with
 *     jitter), mixed with unrelated allocations.  The content (a pattern that
 *     depends only on chain id and offset) is checked after every step.
 *     Two threads run chains concurrently.
 *  2. realloc(NULL, n) acts like malloc(n); realloc(p, 0) frees p and
 *     returns NULL (glibc behaviour).
 *  3. calloc returns zeroed memory, including memory that was just dirtied and
 *     freed, for small and large sizes.
 *  4. memalign / posix_memalign / aligned_alloc / valloc / pvalloc with
 *     alignments 16 B .. 1 MiB: alignment and malloc_usable_size >= request,
 *     the whole usable size is writable; realloc of aligned blocks keeps data.
 *
 * usage: realloc_chain [chains-per-thread] [seed] [--no-realloc0] [--no-pvalloc]
 *   --no-realloc0 skips the realloc(p, 0) == NULL check, --no-pvalloc skips
 *   pvalloc; both only for validating the test against other allocators
 *   (jemalloc returns a minimal object from realloc(p, 0) and does not
 *   provide pvalloc, so glibc's pvalloc would hand it a foreign pointer).
 * Default: 3 chains per thread, 2 threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SIZE (8u << 20)

static int g_chains = 3;
static uint64_t g_seed = 0xc0ffeeULL;
static int g_check_realloc0 = 1;
static int g_check_pvalloc = 1;
static atomic_int g_fail;
static pthread_mutex_t g_fail_lock = PTHREAD_MUTEX_INITIALIZER;

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        pthread_mutex_lock(&g_fail_lock);                                                                              \
        if (g_fail < 20) { /* report the first 20 only */                                                             \
            fprintf(stderr, "realloc_chain: FAIL: " __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
        g_fail++;                                                                                                      \
        pthread_mutex_unlock(&g_fail_lock);                                                                            \
    } while (0)

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* position-only pattern: survives moves done by realloc */
static inline uint64_t cword(uint64_t chain, size_t wi) {
    uint64_t x = (chain + 1) * 0x9e3779b97f4a7c15ULL + wi * 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 31);
}
static inline unsigned char cbyte(uint64_t chain, size_t i) {
    uint64_t w = cword(chain, i / 8);
    return (unsigned char)(w >> (8 * (i % 8)));
}

static void cfill(unsigned char *p, uint64_t chain, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && (i % 8); i++)
        p[i] = cbyte(chain, i);
    for (; i + 8 <= to; i += 8) {
        uint64_t w = cword(chain, i / 8); /* little endian byte order == cbyte */
        memcpy(p + i, &w, 8);
    }
    for (; i < to; i++)
        p[i] = cbyte(chain, i);
}

static long ccheck(const unsigned char *p, uint64_t chain, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != cword(chain, i / 8))
            break;
    }
    for (; i < n; i++)
        if (p[i] != cbyte(chain, i))
            return (long)i;
    return -1;
}

/* ---------- unrelated allocations interleaved with the chains ---------- */
typedef struct noise {
    void *slot[256];
    size_t size[256];
    uint64_t rs;
} noise_t;

static void noise_step(noise_t *nz) {
    unsigned k = (unsigned)(rng_next(&nz->rs) % 256);
    if (nz->slot[k]) {
        unsigned char *q = nz->slot[k];
        size_t n = nz->size[k];
        for (size_t i = 0; i < n; i++)
            if (q[i] != (unsigned char)(k ^ i ^ (uintptr_t)q)) {
                FAIL("noise object %p (%zu bytes) corrupted at byte %zu", (void *)q, n, i);
                break;
            }
        free(q);
        nz->slot[k] = NULL;
    } else {
        size_t n = 1 + (size_t)(rng_next(&nz->rs) % ((rng_next(&nz->rs) % 8) ? 512 : 65536));
        unsigned char *q = malloc(n);
        if (!q) {
            FAIL("noise malloc(%zu) returned NULL", n);
            return;
        }
        for (size_t i = 0; i < n; i++)
            q[i] = (unsigned char)(k ^ i ^ (uintptr_t)q);
        nz->slot[k] = q;
        nz->size[k] = n;
    }
}

static void noise_clear(noise_t *nz) {
    for (int k = 0; k < 256; k++) {
        if (nz->slot[k]) {
            unsigned char *q = nz->slot[k];
            size_t n = nz->size[k];
            for (size_t i = 0; i < n; i++)
                if (q[i] != (unsigned char)(k ^ i ^ (uintptr_t)q)) {
                    FAIL("noise object %p (%zu bytes) corrupted at byte %zu", (void *)q, n, i);
                    break;
                }
            free(q);
            nz->slot[k] = NULL;
        }
    }
}

/* ---------- 1. realloc chains ---------- */
typedef struct chain {
    unsigned char *p;
    size_t n;
    uint64_t id;
    long steps;
} chain_t;

static int chain_step(chain_t *c, size_t newn) {
    unsigned char *q = realloc(c->p, newn);
    if (!q) {
        FAIL("chain %llu: realloc(%p, %zu) from %zu returned NULL", (unsigned long long)c->id, (void *)c->p, newn,
             c->n);
        return 0;
    }
    size_t keep = c->n < newn ? c->n : newn;
    long bad = ccheck(q, c->id, keep);
    if (bad >= 0) {
        FAIL("chain %llu: content lost in realloc %zu -> %zu (%p -> %p) at byte %ld: %#x != %#x",
             (unsigned long long)c->id, c->n, newn, (void *)c->p, (void *)q, bad, q[bad], cbyte(c->id, (size_t)bad));
        c->p = q;
        c->n = newn;
        return 0;
    }
    if (malloc_usable_size(q) < newn) {
        FAIL("chain %llu: malloc_usable_size(%p)=%zu < %zu", (unsigned long long)c->id, (void *)q,
             malloc_usable_size(q), newn);
    }
    if (newn > c->n)
        cfill(q, c->id, c->n, newn);
    c->p = q;
    c->n = newn;
    c->steps++;
    return 1;
}

static size_t next_up(size_t n, uint64_t *rs) {
    if (n < 600)
        return n + 1; /* walk every small size class boundary */
    size_t grow = n / 4 + (size_t)(rng_next(rs) % (n / 2));
    size_t r = n + grow;
    return r > MAX_SIZE ? MAX_SIZE : r;
}

static size_t next_down(size_t n, uint64_t *rs) {
    if (n <= 600)
        return n - 1;
    size_t shrink = n / 4 + (size_t)(rng_next(rs) % (n / 3));
    size_t r = n - shrink;
    return r < 600 ? 600 : r;
}

typedef struct chain_arg {
    int tno;
    long steps;
} chain_arg_t;

static void *chain_thread(void *arg) {
    chain_arg_t *ca = arg;
    uint64_t rs = g_seed ^ ((uint64_t)(ca->tno + 1) * 0x94d049bb133111ebULL);
    noise_t *nz = calloc(1, sizeof(noise_t));
    chain_t *cs = calloc((size_t)g_chains, sizeof(chain_t));
    if (!nz || !cs) {
        FAIL("calloc for chain state failed");
        return NULL;
    }
    nz->rs = rs ^ 0x1111;
    for (int i = 0; i < g_chains; i++) {
        cs[i].id = (uint64_t)ca->tno * 1000 + (uint64_t)i;
        cs[i].p = realloc(NULL, 1); /* realloc(NULL, n) == malloc(n) */
        if (!cs[i].p) {
            FAIL("realloc(NULL, 1) returned NULL");
            return NULL;
        }
        cs[i].n = 1;
        cfill(cs[i].p, cs[i].id, 0, 1);
    }
    /* phase 0: all grow to MAX_SIZE, interleaved; phase 1: all shrink to 1 */
    for (int phase = 0; phase < 2 && !g_fail; phase++) {
        int active = g_chains;
        while (active > 0 && !g_fail) {
            active = 0;
            for (int i = 0; i < g_chains; i++) {
                chain_t *c = &cs[i];
                /* chains advance at different speeds */
                int moves = 1 + (int)(rng_next(&rs) % 3);
                for (int m = 0; m < moves; m++) {
                    if (phase == 0 && c->n < MAX_SIZE)
                        chain_step(c, next_up(c->n, &rs));
                    else if (phase == 1 && c->n > 1)
                        chain_step(c, next_down(c->n, &rs));
                    noise_step(nz);
                }
                if ((phase == 0 && c->n < MAX_SIZE) || (phase == 1 && c->n > 1))
                    active++;
            }
        }
        malloc_trim(0); /* compaction between phases; chains are checked after */
    }
    /* random walk for a while */
    for (int k = 0; k < 3000 && !g_fail; k++) {
        chain_t *c = &cs[rng_next(&rs) % (uint64_t)g_chains];
        size_t n = (size_t)(rng_next(&rs) % ((rng_next(&rs) % 16) ? 4096 : (2u << 20))) + 1;
        chain_step(c, n);
        noise_step(nz);
    }
    for (int i = 0; i < g_chains; i++) {
        long bad = ccheck(cs[i].p, cs[i].id, cs[i].n);
        if (bad >= 0)
            FAIL("chain %llu: final content wrong at byte %ld", (unsigned long long)cs[i].id, bad);
        ca->steps += cs[i].steps;
        free(cs[i].p);
    }
    noise_clear(nz);
    free(nz);
    free(cs);
    return NULL;
}

/* ---------- 2. realloc edge cases ---------- */
static void realloc_edges(void) {
    for (size_t n = 0; n < 5000; n += (n < 64 ? 1 : 97)) {
        unsigned char *p = realloc(NULL, n);
        if (!p) {
            FAIL("realloc(NULL, %zu) returned NULL", n);
            continue;
        }
        if (malloc_usable_size(p) < n)
            FAIL("realloc(NULL, %zu): usable size %zu", n, malloc_usable_size(p));
        memset(p, 0x5a, n);
        if (g_check_realloc0) {
            void *q = realloc(p, 0);
            if (q != NULL) {
                FAIL("realloc(p, 0) for a %zu-byte block returned %p, expected NULL (glibc behaviour: free and "
                     "return NULL)",
                     n, q);
                free(q);
            }
        } else {
            free(p);
        }
    }
    /* the same size realloc keeps content; shrink in place keeps content */
    unsigned char *p = malloc(1000);
    if (!p) {
        FAIL("malloc(1000) returned NULL");
        return;
    }
    cfill(p, 77, 0, 1000);
    p = realloc(p, 1000);
    if (!p || ccheck(p, 77, 1000) >= 0)
        FAIL("realloc to same size lost content");
    p = realloc(p, 10);
    if (!p || ccheck(p, 77, 10) >= 0)
        FAIL("realloc 1000 -> 10 lost content");
    free(p);
}

/* ---------- 3. calloc zeroing ---------- */
static int all_zero(const unsigned char *p, size_t n, size_t *where) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) {
            *where = i;
            return 0;
        }
    return 1;
}

static long calloc_checks(void) {
    static const size_t sizes[] = {1,     8,      15,     16,     24,     48,     64,      100,     128,     256,
                                   500,   1024,   2000,   4096,   4097,   8192,   12000,   16384,   32768,   65536,
                                   65537, 100000, 131072, 262144, 1 << 20, 3 << 20, 8 << 20, 16 << 20};
    const int nsz = (int)(sizeof sizes / sizeof sizes[0]);
    long checked = 0;
    for (int round = 0; round < 3; round++) {
        for (int s = 0; s < nsz; s++) {
            size_t n = sizes[s];
            int cnt = n <= 4096 ? 200 : (n <= 262144 ? 20 : 2);
            unsigned char **v = malloc((size_t)cnt * sizeof(*v));
            if (!v) {
                FAIL("malloc of pointer array failed");
                return checked;
            }
            for (int i = 0; i < cnt; i++) {
                v[i] = malloc(n);
                if (!v[i]) {
                    FAIL("malloc(%zu) returned NULL", n);
                    cnt = i;
                    break;
                }
                memset(v[i], 0xa5 ^ i, n);
            }
            for (int i = 0; i < cnt; i++)
                free(v[i]);
            if (round == 1)
                malloc_trim(0);
            /* dirty memory was just freed: calloc must hand back zeros */
            for (int i = 0; i < cnt; i++) {
                size_t nmemb = (n % 8 == 0 && (i & 1)) ? n / 8 : n;
                size_t esz = n / nmemb;
                v[i] = calloc(nmemb, esz);
                if (!v[i]) {
                    FAIL("calloc(%zu, %zu) returned NULL", nmemb, esz);
                    cnt = i;
                    break;
                }
                size_t where;
                if (!all_zero(v[i], n, &where))
                    FAIL("calloc(%zu, %zu) = %p: byte %zu is %#x, not zero (round %d)", nmemb, esz, (void *)v[i],
                         where, v[i][where], round);
                size_t us = malloc_usable_size(v[i]);
                if (us < n)
                    FAIL("calloc(%zu, %zu): usable size %zu", nmemb, esz, us);
                memset(v[i], 0x3c, n); /* dirty again for the next round */
                checked++;
            }
            for (int i = 0; i < cnt; i++)
                free(v[i]);
            free(v);
        }
    }
    /* interleaved single-object reuse: malloc, dirty, free, calloc */
    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t)((i * 2654435761u) % 3000);
        unsigned char *p = malloc(n);
        if (!p) {
            FAIL("malloc(%zu) returned NULL", n);
            break;
        }
        memset(p, 0xff, n);
        free(p);
        p = calloc(1, n);
        size_t where;
        if (!p) {
            FAIL("calloc(1, %zu) returned NULL", n);
            break;
        }
        if (!all_zero(p, n, &where))
            FAIL("calloc(1, %zu) = %p after free of dirty block: byte %zu not zero", n, (void *)p, where);
        free(p);
        checked++;
    }
    return checked;
}

/* ---------- 4. aligned allocation ---------- */
static int check_aligned(const char *fn, void *p, size_t align, size_t req) {
    if (!p) {
        FAIL("%s(align %zu, size %zu) returned NULL", fn, align, req);
        return 0;
    }
    if ((uintptr_t)p % align) {
        FAIL("%s(align %zu, size %zu) = %p is misaligned", fn, align, req, p);
        return 0;
    }
    size_t us = malloc_usable_size(p);
    if (us < req) {
        FAIL("%s(align %zu, size %zu) = %p: malloc_usable_size %zu < request", fn, align, req, p, us);
        return 0;
    }
    /* whole usable size must be writable and keep its content */
    unsigned char *c = p;
    for (size_t i = 0; i < us; i++)
        c[i] = (unsigned char)(i * 13 + align);
    for (size_t i = 0; i < us; i++)
        if (c[i] != (unsigned char)(i * 13 + align)) {
            FAIL("%s(align %zu, size %zu) = %p: byte %zu did not keep its value", fn, align, req, p, i);
            return 0;
        }
    return 1;
}

static long aligned_checks(void) {
    long n = 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t align = 16; align <= (1u << 20); align *= 2) {
        const size_t reqs[] = {1, 8, align / 2, align - 1, align, align + 1, 3 * align, 100, 5000};
        for (size_t r = 0; r < sizeof reqs / sizeof reqs[0]; r++) {
            size_t req = reqs[r] ? reqs[r] : 1;
            void *hold[3];
            /* memalign */
            hold[0] = memalign(align, req);
            check_aligned("memalign", hold[0], align, req);
            /* posix_memalign */
            void *pm = NULL;
            int rc = posix_memalign(&pm, align, req);
            if (rc != 0)
                FAIL("posix_memalign(align %zu, size %zu) returned %d", align, req, rc);
            else
                check_aligned("posix_memalign", pm, align, req);
            hold[1] = pm;
            /* aligned_alloc: size must be a multiple of the alignment in C11 */
            size_t areq = (req + align - 1) / align * align;
            hold[2] = aligned_alloc(align, areq);
            check_aligned("aligned_alloc", hold[2], align, areq);
            n += 3;
            /* realloc of an aligned block keeps its prefix */
            if (hold[0] && r % 3 == 0) {
                size_t us = malloc_usable_size(hold[0]);
                cfill(hold[0], 4242, 0, us);
                unsigned char *q = realloc(hold[0], us * 2 + 17);
                if (!q) {
                    FAIL("realloc of memalign block to %zu returned NULL", us * 2 + 17);
                } else {
                    long bad = ccheck(q, 4242, us);
                    if (bad >= 0)
                        FAIL("realloc of memalign(%zu) block lost byte %ld", align, bad);
                    hold[0] = q;
                }
            }
            for (int i = 0; i < 3; i++)
                free(hold[i]);
        }
        /* many small aligned blocks at once: they must not overlap */
        if (align <= 4096) {
            enum { K = 64 };
            unsigned char *b[K];
            size_t sz = align / 2 + 3;
            for (int i = 0; i < K; i++) {
                b[i] = memalign(align, sz);
                if (!b[i] || (uintptr_t)b[i] % align) {
                    FAIL("memalign(%zu, %zu) #%d = %p bad", align, sz, i, (void *)b[i]);
                    for (int j = 0; j < i; j++)
                        free(b[j]);
                    return n;
                }
                memset(b[i], i, sz);
            }
            for (int i = 0; i < K; i++) {
                for (size_t j = 0; j < sz; j++)
                    if (b[i][j] != (unsigned char)i) {
                        FAIL("memalign(%zu, %zu) blocks overlap: block %d byte %zu", align, sz, i, j);
                        break;
                    }
                free(b[i]);
            }
            n += K;
        }
    }
    /* valloc / pvalloc: page aligned */
    for (size_t req = 1; req < 5 * page; req += page / 3) {
        void *v = valloc(req);
        check_aligned("valloc", v, page, req);
        free(v);
        n++;
        if (!g_check_pvalloc)
            continue;
        void *pv = pvalloc(req);
        size_t rounded = (req + page - 1) / page * page;
        check_aligned("pvalloc", pv, page, rounded);
        free(pv);
        n++;
    }
    return n;
}

int main(int argc, char **argv) {
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-realloc0") == 0) {
            g_check_realloc0 = 0;
            continue;
        }
        if (strcmp(argv[i], "--no-pvalloc") == 0) {
            g_check_pvalloc = 0;
            continue;
        }
        if (pos == 0)
            g_chains = atoi(argv[i]);
        else if (pos == 1)
            g_seed = strtoull(argv[i], NULL, 0);
        pos++;
    }
    if (g_chains < 1 || g_chains > 64) {
        fprintf(stderr, "usage: %s [chains-per-thread 1..64] [seed] [--no-realloc0] [--no-pvalloc]\n", argv[0]);
        return 2;
    }

    enum { NT = 2 };
    pthread_t th[NT];
    chain_arg_t ca[NT];
    for (int t = 0; t < NT; t++) {
        ca[t].tno = t;
        ca[t].steps = 0;
        if (pthread_create(&th[t], NULL, chain_thread, &ca[t]) != 0) {
            fprintf(stderr, "realloc_chain: pthread_create failed\n");
            return 1;
        }
    }
    /* meanwhile the main thread does the single-threaded checks */
    realloc_edges();
    long ncalloc = calloc_checks();
    long naligned = aligned_checks();
    long steps = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        steps += ca[t].steps;
    }
    if (g_fail) {
        fprintf(stderr, "realloc_chain: %d failure(s)\n", g_fail);
        return 1;
    }
    printf("realloc_chain: OK: %d chains x %d threads, %ld realloc steps (1 B <-> 8 MiB) verified, %ld calloc "
           "zero-checks, %ld aligned allocations%s%s\n",
           g_chains, NT, steps, ncalloc, naligned, g_check_realloc0 ? "" : " (realloc(p,0) check skipped)",
           g_check_pvalloc ? "" : " (pvalloc skipped)");
    return 0;
}
