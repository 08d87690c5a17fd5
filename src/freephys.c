// freephys.c - mesh.freephys_thread: a helper thread for the physical-page work of
// frees and meshing - giving dirty pages back (purge), resetting released aliases
// onto their own pages, and punching the pages a mesh freed - so the threads that
// free and the mesh pass never wait on those system calls.
//
// Layer 4 (services): arena, helper, options. Work that belongs to a higher layer
// (resetting an alias) arrives as a deferred call, so nothing here calls upward.
// Work is a FIFO queue. Consecutive punches are sorted by address and merged, so
// adjacent ranges cost one fallocate. A punch of a meshed span's own pages is always
// queued before that alias can be released (the release goes through the same queue,
// or, when the queue is full, waits for it to drain), so the range is punched before
// it can be reused.
//
// Locking: one queue lock, never held across a system call; the thread sleeps on a
// futex word. When the thread is not running (option off, thread creation failed,
// a fork child before restart) callers do the work themselves.
#define _GNU_SOURCE
#include "freephys.h"

#include <time.h>

#include "arena.h"
#include "atomic.h"
#include "helper.h"
#include "lock.h"
#include "log.h"
#include "options.h"

#define QUEUE_CAP 4096
#define BATCH 256
#define IDLE_MS 100

enum { WORK_PUNCH, WORK_CALL };

typedef struct {
    uint8_t type;
    uintptr_t start;        // punch: first byte
    size_t len;             // punch: bytes
    void (*fn)(void *arg);  // call
    void *arg;
} work_t;

static mh_lock_t qlock = MH_LOCK_INIT;
static work_t queue[QUEUE_CAP];
static unsigned qhead, qlen;
static _Atomic uint32_t wake;  // futex word: bumped for every kick
static _Atomic int running;    // 0 none, 1 starting or running
static _Atomic int purge_wanted;
static _Atomic uint64_t items_done;

uint64_t mh_freephys_items_done(void) { return mh_load_relaxed(&items_done); }

bool mh_freephys_active(void) { return mh_load_relaxed(&running) != 0 && mh_opt[MH_OPT_freephys_thread]; }

static void kick(void) {
    mh_fetch_add_seqcst(&wake, 1);
    mh_futex_wake(&wake, 1);
}

static bool enqueue(work_t w) {
    mh_lock(&qlock);
    bool ok = qlen < QUEUE_CAP;
    if (ok) queue[(qhead + qlen++) % QUEUE_CAP] = w;
    mh_unlock(&qlock);
    if (ok) kick();
    return ok;
}

static unsigned dequeue(work_t *out, unsigned max) {
    mh_lock(&qlock);
    unsigned n = 0;
    while (n < max && qlen) {
        out[n++] = queue[qhead];
        qhead = (qhead + 1) % QUEUE_CAP;
        qlen--;
    }
    mh_unlock(&qlock);
    return n;
}

// Insertion sort by address (a batch is at most BATCH items; libc's qsort may
// allocate, and this runs inside the allocator).
static void sort_by_start(work_t *w, unsigned n) {
    for (unsigned i = 1; i < n; i++) {
        work_t x = w[i];
        unsigned j = i;
        for (; j > 0 && w[j - 1].start > x.start; j--) w[j] = w[j - 1];
        w[j] = x;
    }
}

// Punches w[0..n) (all punches), sorted and merged.
static void punch_batch(work_t *w, unsigned n) {
    sort_by_start(w, n);
    for (unsigned i = 0; i < n;) {
        uintptr_t start = w[i].start, end = start + w[i].len;
        unsigned j = i + 1;
        while (j < n && w[j].start == end) end += w[j++].len;
        (void)mh_arena_punch_range(start, end - start);
        i = j;
    }
}

// Runs a batch in order: runs of punches go sorted, releases keep their place.
static void run_batch(work_t *w, unsigned n) {
    mh_fetch_add_relaxed(&items_done, n);
    for (unsigned i = 0; i < n;) {
        unsigned j = i;
        while (j < n && w[j].type == WORK_PUNCH) j++;
        punch_batch(w + i, j - i);
        if (j < n) w[j].fn(w[j].arg);
        i = j + 1;
    }
}

// Drains the queue in the calling thread (fork prepare, a full queue).
void mh_freephys_drain(void) {
    work_t batch[BATCH];
    for (unsigned n; (n = dequeue(batch, BATCH)) != 0;) run_batch(batch, n);
}

static void *freephys_main(void *arg) {
    (void)arg;
    uint64_t alone_check = 0;
    while (mh_opt[MH_OPT_freephys_thread] && !mh_helper_alone(&alone_check)) {
        uint32_t seen = mh_load_acquire(&wake);
        mh_freephys_drain();
        if (mh_exchange_seqcst(&purge_wanted, 0)) mh_arena_purge_excess();
        mh_arena_purge_excess(); // idle programs give their dirty pages back too
        if (mh_load_acquire(&wake) != seen) continue;
        struct timespec ts = {0, IDLE_MS * 1000000L};
        mh_futex_wait(&wake, seen, &ts);
    }
    mh_freephys_drain();
    mh_store_release(&running, 0);
    mh_helper_leaving();
    return NULL;
}

void mh_freephys_start(void) {
    int expected = 0;
    if (!mh_opt[MH_OPT_freephys_thread] || !mh_cas_seqcst(&running, &expected, 1)) return;
    mh_arena_set_purger(mh_freephys_purge); // frees that leave too many dirty pages ask us
    if (!mh_helper_start(freephys_main)) {
        mh_store_release(&running, 0);
        mh_degraded(MH_DEG_THREAD, "mesh.freephys_thread: cannot start the thread; page release stays inline");
    }
}

bool mh_freephys_punch(uintptr_t start, size_t len) {
    return mh_freephys_active() && enqueue((work_t){WORK_PUNCH, start, len, NULL, NULL});
}

bool mh_freephys_defer(void (*fn)(void *), void *arg) {
    if (!mh_freephys_active()) return false;
    if (enqueue((work_t){WORK_CALL, 0, 0, fn, arg})) return true;
    mh_freephys_drain(); // full: earlier punches first, then the caller does it inline
    return false;
}

bool mh_freephys_purge(void) {
    if (!mh_freephys_active()) return false;
    mh_store_relaxed(&purge_wanted, 1);
    kick();
    return true;
}

void mh_freephys_fork_prepare(void) { mh_lock(&qlock); }

void mh_freephys_fork_parent(void) { mh_unlock(&qlock); }

static bool restart_in_child;

void mh_freephys_fork_child(void) {
    mh_lock_reset(&qlock);
    restart_in_child = mh_load_relaxed(&running);
    mh_store_relaxed(&running, 0); // the parent's thread did not come along
}

void mh_freephys_fork_child_helpers(void) {
    if (restart_in_child) mh_freephys_start();
    restart_in_child = false;
}
