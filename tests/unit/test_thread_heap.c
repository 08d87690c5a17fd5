// test_thread_heap.c - thread heaps: random spread of allocation offsets, local and
// remote frees, thread exit returning everything, bounded attached memory, corruption
// detection.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "global_heap.h"
#include "harness.h"
#include "stats.h"
#include "alloc.h"
#include "thread_heap.h"

// The first object a thread gets from each fresh span must sit at a uniformly random
// slot: meshing depends on it. 64-byte class: 64 slots per span.
static void first_offsets_uniform(void) {
    enum { SLOTS = 64, SPANS = 3000 };
    unsigned counts[SLOTS] = {0};
    unsigned order_counts[SLOTS] = {0}; // slot of the 10th allocation in each span
    mh_span_t *last = NULL;
    unsigned in_span = 0, spans = 0;
    while (spans < SPANS) {
        char *p = mh_malloc(64);
        mh_span_t *s = mh_dir_lookup(p);
        if (s != last) {
            last = s;
            in_span = 0;
            spans++;
            counts[(uintptr_t)(p - (char *)s->start) / 64]++;
        } else if (++in_span == 9) {
            order_counts[(uintptr_t)(p - (char *)s->start) / 64]++;
        }
    }
    double chi = chi_square_uniform(counts, SLOTS), chi10 = chi_square_uniform(order_counts, SLOTS);
    printf("  chi-square first slot %.1f, 10th slot %.1f (critical %.1f, df %d)\n", chi, chi10,
           chi_square_critical(SLOTS - 1), SLOTS - 1);
    CHECK(chi < chi_square_critical(SLOTS - 1));
    CHECK(chi10 < chi_square_critical(SLOTS - 1));
}

// The per-page class entries agree with the span descriptors for every class.
static void class_entries_match_spans(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        char *p = mh_malloc(mh_classes[c].size);
        mh_span_t *s = mh_dir_lookup(p);
        unsigned e = mh_dir_entry(p);
        CHECK(e & MH_DIR_SMALL);
        CHECK_EQ(mh_dir_entry_class(e), c);
        CHECK(mh_dir_span_start(p, e) == s->start);
        CHECK(mh_dir_span_start(p + mh_classes[c].size - 1, mh_dir_entry(p + mh_classes[c].size - 1)) == s->start);
        mh_free(p, "free");
    }
    void *big = mh_malloc(100000);
    CHECK_EQ(mh_dir_entry(big), 0);
    mh_free(big, "free");
}

static void local_reuse(void) {
    void *p = mh_malloc(100);
    mh_free(p, "free");
    void *q = mh_malloc(100);
    CHECK(p == q); // LIFO reuse of the freed slot: cache-warm
    mh_free(q, "free");
    CHECK_EQ(mh_usable_size(mh_malloc(1)), 16);
    CHECK_EQ(mh_usable_size(NULL), 0);
}

enum { XN = 20000 };
static void *xobjs[XN];

static void *remote_freer(void *arg) {
    (void)arg;
    for (int i = 0; i < XN; i++) {
        CHECK(((unsigned char *)xobjs[i])[0] == (unsigned char)i);
        mh_free(xobjs[i], "free");
    }
    return NULL;
}

static void remote_frees_are_reused(void) {
    size_t sizes[] = {16, 48, 200, 1000, 5000};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < XN; i++) {
            xobjs[i] = mh_malloc(sizes[i % 5]);
            memset(xobjs[i], (unsigned char)i, sizes[i % 5]);
        }
        pthread_t t;
        pthread_create(&t, NULL, remote_freer, NULL);
        pthread_join(t, NULL);
    }
    mh_stats_t st;
    mh_stats_collect(&st);
    // After 3 rounds the heap must not hold 3 rounds' worth of spans.
    CHECK(st.active < 3 * (XN / 5) * (16 + 48 + 200 + 1000 + 5000));
}

static void *churn_thread(void *arg) {
    void **keep = arg;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        void *p = mh_malloc(mh_classes[c].size);
        if (c == 5) *keep = p; // outlives the thread, freed by main
        else mh_free(p, "free");
    }
    // Attached memory per class is one span: bounded in bytes.
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++)
        if (mh_tlh->sv[c].span) CHECK(mh_tlh->sv[c].span->pages <= MH_MAX_SPAN_PAGES);
    return NULL;
}

static void thread_exit_returns_everything(void) {
    mh_stats_t before, after;
    mh_stats_collect(&before);
    for (int i = 0; i < 300; i++) {
        void *kept = NULL;
        pthread_t t;
        pthread_create(&t, NULL, churn_thread, &kept);
        pthread_join(t, NULL);
        CHECK(kept != NULL);
        mh_free(kept, "free");
    }
    mh_stats_collect(&after);
    CHECK_EQ(after.threads, before.threads);
    CHECK(after.allocated <= before.allocated + 64 * 1024);
    CHECK(after.active <= before.active + (2u << 20));
}

static void orphan_allocation(void) {
    void *p = mh_gh_alloc_orphan(mh_size_to_class(32));
    CHECK(p != NULL);
    CHECK_EQ(mh_usable_size(p), 32);
    mh_free(p, "free");
}

// Runs fn in a child and reports whether it died of SIGABRT.
static int aborts(void (*fn)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 2);
        fn();
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void double_free_remote(void) {
    char *p = mh_malloc(64);
    char *q = mh_malloc(64);
    (void)q;
    pthread_t t;
    xobjs[0] = p;
    // free from this thread after a remote free: the bitmap path sees it
    mh_gh_free_remote(p, "free");
    mh_gh_free_remote(p, "free");
    (void)t;
}
static void interior_free(void) {
    char *p = mh_malloc(64);
    mh_free(p + 8, "free");
}
static void large_double_free(void) {
    char *p = mh_malloc(100000);
    mh_free(p, "free");
    mh_free(p, "free");
}
static void local_double_free_full_vector(void) {
    // Free every object of a fresh span locally, then one more time.
    void *objs[256];
    unsigned n = mh_classes[mh_size_to_class(4096)].objs;
    for (unsigned i = 0; i < n; i++) objs[i] = mh_malloc(4096);
    mh_span_t *s = mh_dir_lookup(objs[n - 1]);
    for (unsigned i = 0; i < n; i++)
        if (mh_dir_lookup(objs[i]) == s) mh_free(objs[i], "free");
    mh_free(objs[n - 1], "free");
    mh_free(objs[n - 1], "free");
    for (unsigned i = 0; i < 300; i++) mh_free(objs[n - 1], "free");
}
static void foreign_free(void) {
    static char not_ours[64];
    int local;
    mh_free(not_ours, "free");
    mh_free(&local, "free");
    _exit(7);
}

static void corruption_detected(void) {
    CHECK(aborts(double_free_remote));
    CHECK(aborts(interior_free));
    CHECK(aborts(large_double_free));
    CHECK(aborts(local_double_free_full_vector));
    CHECK(!aborts(foreign_free));
}

// A new heap's vectors start side by side in a small start area: the first fill of a
// class takes at most 32 objects, the second its whole room. A vector that only frees
// stays in the start area and flushes half when full; once the thread allocates from
// the class it moves out when it fills, without a flush.
enum { START = 32 };
static void *start_objs[2 * START + 8], *big_objs[2 * START + 8];
static void *start_area_thread(void *arg) {
    (void)arg;
    unsigned c16 = mh_size_to_class(16);
    void *first = mh_malloc(16);
    mh_tlh_t *t = mh_tlh;
    CHECK(first != NULL && !mh_tlh_is_empty(t));
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++)
        CHECK(t->sv[c].p >= t->slots && t->sv[c].p + t->sv[c].cap <= t->slots + MH_NUM_CLASSES * START);
    CHECK_EQ(t->sv[c16].cap, START);
    CHECK_EQ(t->sv[c16].n, START - 1);
    for (unsigned i = 0; i < START - 1; i++) CHECK(mh_malloc(16) != NULL);
    CHECK_EQ(t->sv[c16].n, 0);
    CHECK(mh_malloc(16) != NULL); // second refill: the whole room, the rest of the span
    CHECK_EQ(t->sv[c16].cap, mh_sv_capacity(c16));
    CHECK(t->sv[c16].p >= t->slots + MH_NUM_CLASSES * START);
    CHECK_EQ(t->sv[c16].n + START + 1, mh_classes[c16].objs); // the first span's slots, all used
    unsigned c64 = mh_size_to_class(64);
    for (unsigned i = 0; i < START + 8; i++) mh_free(start_objs[i], "free");
    CHECK_EQ(t->sv[c64].n, START + 8 - START / 2); // free-only: flushed half at 32, stayed
    CHECK(t->sv[c64].cap == START && t->sv[c64].p < t->slots + MH_NUM_CLASSES * START);
    // Allocating from the class: a partial fill in the start area, then moving out
    // (no flush) when the vector fills.
    void *held[2 * START + 8];
    unsigned h = 0;
    held[h++] = mh_malloc(64);
    CHECK(held[0] == start_objs[START + 7]); // the last one freed
    while (t->sv[c64].n) held[h++] = mh_malloc(64);
    held[h++] = mh_malloc(64); // the refill
    CHECK(t->sv[c64].span != NULL && t->sv[c64].cap == START);
    CHECK(t->sv[c64].p < t->slots + MH_NUM_CLASSES * START);
    for (unsigned i = START + 8; i < 2 * START + 8; i++) held[h++] = start_objs[i];
    while (t->sv[c64].n < START && h) mh_free(held[--h], "free");
    CHECK(h > 0);
    mh_free(held[--h], "free");
    CHECK_EQ(t->sv[c64].n, START + 1);
    CHECK(t->sv[c64].p >= t->slots + MH_NUM_CLASSES * START);
    CHECK_EQ(t->sv[c64].cap, mh_sv_capacity(c64));
    while (h) mh_free(held[--h], "free");
    // A class whose whole room fits the start area: filling it up flushes, never
    // overflows (moving out gains no room).
    unsigned cbig = mh_size_to_class(8192);
    CHECK(mh_sv_capacity(cbig) <= START);
    void *b = mh_malloc(8192);
    for (unsigned i = 0; i < 2 * START + 8; i++) {
        mh_free(big_objs[i], "free");
        CHECK(t->sv[cbig].n <= t->sv[cbig].cap);
    }
    mh_free(b, "free");
    return NULL;
}

static void start_area(void) {
    for (unsigned i = 0; i < 2 * START + 8; i++) CHECK((start_objs[i] = mh_malloc(64)) != NULL);
    for (unsigned i = 0; i < 2 * START + 8; i++) CHECK((big_objs[i] = mh_malloc(8192)) != NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, start_area_thread, NULL) == 0);
    pthread_join(th, NULL);
}

TEST_MAIN(T(first_offsets_uniform), T(start_area), T(class_entries_match_spans), T(local_reuse), T(remote_frees_are_reused),
          T(thread_exit_returns_everything), T(orphan_allocation), T(corruption_detected))
