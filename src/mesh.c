// mesh.c - the mesher (see mesh.h for the algorithm and its guarantees).
//
// Locking: one tick or pass at a time (pass_lock; a free reaches it at most once a
// period, through the rate limit's compare-and-swap, and never once the background
// thread runs); a class is meshed under its class lock with its bitmaps exclusive. The barrier
// state (epoch, protected ranges) is written by the pass and read lock-free by the
// fault handler and the syscall wrappers. Scratch arrays are static (pass_lock).
#define _GNU_SOURCE
#include "mesh.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "atomic.h"
#include "barrier.h"
#include "checks.h"
#include "freephys.h"
#include "global_heap.h"
#include "helper.h"
#include "info.h"
#include "lock.h"
#include "log.h"
#include "options.h"
#include "os.h"
#include "rng.h"

#define PROBES 64            // t: right-half partners probed per left span
#define MAX_CANDIDATES 1024  // spans looked at per round of a pass
#define REPASS_PAIRS 16      // a pass that meshed this many is followed by another soon
#define LONG_CHAIN 8         // aliases past which a source's remapping cost matters
#define REMAP_NS 12000       // protect + remap of one virtual span, measured (2 cores)
#define MAX_CHAIN 256        // virtual spans sharing one physical span
#define PAUSE_SUB 8          // pass durations: 8 buckets per power of two of ns,
#define PAUSE_BUCKETS (40 * PAUSE_SUB) // so a quantile is reported within 12.5%
#define PASS_BUDGET_NS 1000000 // a pass stops meshing after 1 ms (the pause bound)
#define CONTINUE_NS 10000000   // a truncated pass continues 10 ms later

static mh_lock_t pass_lock = MH_LOCK_INIT;
static _Atomic uint64_t epoch; // odd while a pair is being meshed
static _Atomic unsigned prot_n;
static uintptr_t prot_start[MAX_CHAIN];
static size_t prot_len[MAX_CHAIN];

static _Atomic uint64_t last_pass_ns, last_migrate_ns;
static _Atomic uint64_t migrated_bytes;
static unsigned next_class, idle_passes;
// A class whose last pass found no pair is "dry" until enough new partial spans arrive
// (dry_at: its partial count then, plus one): passes go where pairs can be found.
static unsigned dry_at[MH_NUM_CLASSES];
#define DRY_MARGIN 8
static mh_rng_t rng;
static bool rng_ready, budget_warned;
static _Atomic uint64_t aliases_total;
static uint64_t passes, pairs_total, pause_hist[PAUSE_BUCKETS], pause_max;
static mh_span_t *cand[MAX_CANDIDATES];

// The rate limit's clock (a vDSO read; every comparison uses this one clock).
static uint64_t coarse_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// ---- barrier state -----------------------------------------------------------------

uint64_t mh_mesh_epoch(void) { return mh_load_acquire(&epoch); }

bool mh_mesh_protects(uintptr_t addr) {
    unsigned n = mh_load_acquire(&prot_n);
    for (unsigned i = 0; i < n && i < MAX_CHAIN; i++)
        if (addr - prot_start[i] < prot_len[i]) return true;
    return false;
}

static void futex(_Atomic uint64_t *word, int op, uint32_t val) {
    // The low half of the epoch is the futex word (little-endian x86-64).
    syscall(SYS_futex, (uint32_t *)word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

void mh_mesh_wait(uint64_t e) {
    while ((e & 1) && mh_load_acquire(&epoch) == e) futex(&epoch, FUTEX_WAIT, (uint32_t)e);
}

static void barrier_raise(unsigned n) {
    mh_store_release(&prot_n, n);
    atomic_fetch_add(&epoch, 1); // odd: pairs with the acquire loads of readers
}

static void barrier_lower(void) {
    mh_store_release(&prot_n, 0);
    atomic_fetch_add(&epoch, 1);
    futex(&epoch, FUTEX_WAKE, 0x7fffffff);
}

// The same barrier for fork migration (arena_fork.c), which moves whole spans.
static bool guard_raise(unsigned n, const uintptr_t *start, const size_t *len) {
    if (n > MAX_CHAIN) return false;
    for (unsigned i = 0; i < n; i++) {
        prot_start[i] = start[i];
        prot_len[i] = len[i];
    }
    barrier_raise(n);
    for (unsigned i = 0; i < n; i++) {
        if (mh_os_protect((void *)prot_start[i], prot_len[i], true) == 0) continue;
        while (i--) mh_os_protect((void *)prot_start[i], prot_len[i], false);
        barrier_lower();
        return false;
    }
    return true;
}

static void guard_lower(bool unprotect) {
    unsigned n = mh_load_relaxed(&prot_n);
    for (unsigned i = 0; unprotect && i < n; i++) mh_os_protect((void *)prot_start[i], prot_len[i], false);
    barrier_lower();
}

static const mh_guard_t guard = {guard_raise, guard_lower};

uint64_t mh_mesh_alias_count(void) { return mh_load_relaxed(&aliases_total); }

// The barrier installed and still ours. Once a raw rt_sigaction has replaced our fault
// handler, meshing and fork migration (which both rely on it) stop for the life of the
// process, with one warning; the heap stays correct, it is only no longer compacted.
static _Atomic bool barrier_lost;

static bool barrier_ready(void) {
    if (mh_load_relaxed(&barrier_lost)) return false;
    mh_barrier_install();
    if (mh_barrier_intact()) return true;
    if (!atomic_exchange(&barrier_lost, true))
        mh_warn("meshing stopped: the SIGSEGV/SIGBUS handler was replaced without sigaction() "
                "(a raw rt_sigaction system call); the heap is no longer compacted");
    return false;
}



// ---- budget and stats ----------------------------------------------------------------

static uint64_t alias_budget(void) {
    if (mh_opt[MH_OPT_max_aliases]) return (uint64_t)mh_opt[MH_OPT_max_aliases];
    static long maps = 0;
    if (!maps) maps = mh_check_max_map_count("");
    long m = maps > 0 ? maps : 65530;
    // Each alias is a VMA and splits its region's VMA; keep two thirds for the program.
    return (uint64_t)(m / 3 > 4096 ? (m - 4096) / 3 : m / 6);
}

// Bucket of a duration: its power of two and the next three bits below the top one.
static unsigned pause_bucket(uint64_t ns) {
    if (ns < PAUSE_SUB) return (unsigned)ns;
    unsigned top = 63u - (unsigned)__builtin_clzll(ns); // >= 3
    unsigned b = (top - 2) * PAUSE_SUB + (unsigned)((ns >> (top - 3)) & (PAUSE_SUB - 1));
    return b < PAUSE_BUCKETS ? b : PAUSE_BUCKETS - 1;
}

// The largest duration a bucket holds (what a quantile reports: an upper bound).
static uint64_t pause_bucket_max(unsigned b) {
    if (b < PAUSE_SUB) return b;
    unsigned top = b / PAUSE_SUB + 2, sub = b % PAUSE_SUB;
    return ((uint64_t)(PAUSE_SUB + sub + 1) << (top - 3)) - 1;
}

static void record_pause(uint64_t ns) {
    pause_hist[pause_bucket(ns)]++;
    if (ns > pause_max) pause_max = ns;
}

static uint64_t pause_quantile(double q) {
    uint64_t total = 0, seen = 0;
    for (unsigned b = 0; b < PAUSE_BUCKETS; b++) total += pause_hist[b];
    for (unsigned b = 0; b < PAUSE_BUCKETS; b++) {
        seen += pause_hist[b];
        if (total && seen >= q * total) {
            uint64_t hi = pause_bucket_max(b);
            return hi < pause_max ? hi : pause_max; // never above the exact maximum
        }
    }
    return 0;
}

void mh_mesh_stats(mh_mesh_stats_t *out) {
    mh_lock(&pass_lock);
    *out = (mh_mesh_stats_t){passes, pairs_total, mh_load_relaxed(&aliases_total), alias_budget(),
                             pause_quantile(0.5), pause_quantile(0.99), pause_max,
                             mh_load_relaxed(&migrated_bytes), mh_arena_migration_pending()};
    mh_unlock(&pass_lock);
}

static void count_meshed(mh_span_t *src, bool add) {
    mh_info_t *info = mh_arena_info_page();
    if (!info) return;
    uint64_t bytes = mh_span_bytes(src);
    if (add) {
        atomic_fetch_add(&info->mesh_count, 1);
        uint64_t now = atomic_fetch_add(&info->meshed_bytes, bytes) + bytes;
        if (now > mh_load_relaxed(&info->meshed_hwm)) mh_store_relaxed(&info->meshed_hwm, now);
    } else {
        atomic_fetch_sub(&info->meshed_bytes, bytes);
    }
}

// ---- one pair ------------------------------------------------------------------------


static void copy_live(mh_span_t *src, mh_span_t *dst, const uint64_t *live) {
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
        for (uint64_t m = live[w]; m; m &= m - 1) {
            size_t off = (w * 64 + (unsigned)__builtin_ctzll(m)) * (size_t)src->obj_size;
            memcpy((char *)dst->start + off, (const char *)src->start + off, src->obj_size);
        }
}

// Makes src (with its chain) aliases of dst. Bookkeeping only; class lock held.
static void adopt(mh_span_t *dst, mh_span_t *src, const uint64_t *live) {
    uint64_t own[MH_BITMAP_WORDS];
    memcpy(own, live, sizeof own);
    mh_span_t *last = src;
    for (mh_span_t *a = src->next_alias; a; a = a->next_alias) {
        for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) own[w] &= ~mh_load_relaxed(&a->bits[w]);
        a->leader = dst;
        last = a;
    }
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_store_relaxed(&src->bits[w], own[w]);
    last->next_alias = dst->next_alias;
    dst->next_alias = src;
    dst->naliases += 1 + src->naliases;
    src->naliases = 0;
    src->leader = dst;
    __atomic_store_n(&src->kind, MH_KIND_ALIAS, __ATOMIC_RELEASE);
}

// Meshes src into dst (bitmaps disjoint, both detached, class exclusive). False when
// a system call failed; everything is then as it was.
static bool mesh_pair(mh_span_t *src, mh_span_t *dst) {
    unsigned n = 0;
    for (mh_span_t *a = src; a; a = (a == src ? src->next_alias : a->next_alias)) {
        prot_start[n] = a->start;
        prot_len[n++] = mh_span_bytes(a);
    }
    barrier_raise(n);
    for (unsigned i = 0; i < n; i++) {
        if (mh_os_protect((void *)prot_start[i], prot_len[i], true) != 0) {
            while (i--) mh_os_protect((void *)prot_start[i], prot_len[i], false);
            barrier_lower();
            return false;
        }
    }
    uint64_t live[MH_BITMAP_WORDS];
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) live[w] = mh_load_relaxed(&src->bits[w]);
    copy_live(src, dst, live);
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_fetch_or_seqcst(&dst->bits[w], live[w]);
    for (unsigned i = 0; i < n; i++) {
        if (mh_arena_remap(prot_start[i], prot_len[i], dst->start) == 0) continue;
        // Unwind: back onto src's pages (still intact), writable again.
        for (unsigned j = 0; j < n; j++) {
            if (j < i) mh_arena_remap(prot_start[j], prot_len[j], src->start);
            else mh_os_protect((void *)prot_start[j], prot_len[j], false);
        }
        for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_fetch_and_seqcst(&dst->bits[w], ~live[w]);
        barrier_lower();
        return false;
    }
    adopt(dst, src, live);
    // The source's physical pages are free now (punched by the freephys thread when on).
    if (!mh_freephys_punch(src->start, mh_span_bytes(src))) (void)mh_arena_punch(src);
    barrier_lower();
    atomic_fetch_add(&aliases_total, 1);
    count_meshed(src, true);
    return true;
}

// ---- the split mesher ----------------------------------------------------------------

static bool meshable(mh_span_t *a, mh_span_t *b) {
    if (a->naliases + b->naliases + 2 > MAX_CHAIN) return false;
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
        if (mh_load_relaxed(&a->bits[w]) & mh_load_relaxed(&b->bits[w])) return false;
    return true;
}

// Collects candidates from the head of the partial list, looking at no more than limit
// spans (each look is a cache miss), then moves the spans it looked at to the end of
// the list: the next round (or pass) starts where this one stopped, so neither spans
// that cannot mesh nor ones tried already pile up in front of untried ones.
// Returns the number of candidates; *seen: spans looked at.
static unsigned gather(unsigned cls, unsigned limit, unsigned *seen) {
    unsigned n = 0;
    mh_span_t *last = NULL;
    *seen = 0;
    for (mh_span_t *s = mh_gh_partial_head(cls); s && *seen < limit; s = s->next) {
        ++*seen;
        last = s;
        unsigned used = mh_span_in_use(s);
        // Empty spans are being re-filed by a freer waiting for this pass: not candidates.
        if (used && mh_load_relaxed(&s->owner) == NULL && used * 5 < s->objs * 4u && mh_arena_span_shared(s) &&
            !mh_barrier_altstack_in(s->start, mh_span_end(s)))
            cand[n++] = s;
    }
    if (last) mh_gh_partial_rotate(cls, last);
    return n;
}

static bool pass_truncated; // the last pass stopped with spans or pairs left to try
static size_t mesh_candidates(unsigned cls, unsigned n, uint64_t t0);

// One pass over a class: rounds of at most MAX_CANDIDATES spans each (gather, shuffle,
// split, probe, mesh) until every span that was on the partial list at the start has
// been looked at once or the time budget is spent. Small rounds put the first pairs
// within a fraction of the budget, however long the list; a round's candidates still
// number enough for the split mesher's probes to find most pairs.
static size_t mesh_class_locked(unsigned cls, uint64_t t0) {
    pass_truncated = false;
    if (!mh_arena_file_ok()) return 0; // one check of the heap file per pass
    size_t meshed = 0;
    unsigned todo = mh_gh_partial_count(cls);
    while (todo && !pass_truncated) {
        unsigned seen, n = gather(cls, todo < MAX_CANDIDATES ? todo : MAX_CANDIDATES, &seen);
        todo = seen < todo ? todo - seen : 0;
        if (!seen) break;
        meshed += mesh_candidates(cls, n, t0);
        if (todo && mh_os_now_ns() - t0 > PASS_BUDGET_NS) pass_truncated = true;
    }
    // Pairs found: a new shuffle (and the fuller destinations) likely holds more.
    if (meshed >= REPASS_PAIRS) pass_truncated = true;
    return meshed;
}

static size_t mesh_candidates(unsigned cls, unsigned n, uint64_t t0) {
    for (unsigned i = n; i > 1; i--) { // shuffle, then split in halves
        unsigned j = mh_rng_below(&rng, i);
        mh_span_t *t = cand[i - 1];
        cand[i - 1] = cand[j];
        cand[j] = t;
    }
    unsigned half = n / 2;
    mh_span_t **left = cand, **right = cand + half;
    size_t meshed = 0;
    for (unsigned i = 0; i < half; i++) {
        if ((i & 15) == 15 && mh_os_now_ns() - t0 > PASS_BUDGET_NS) { // probing is bounded too
            pass_truncated = true;
            return meshed;
        }
        for (unsigned k = 0; k < PROBES && k < half; k++) {
            unsigned r = (i + k) % half;
            mh_span_t *a = left[i], *b = right[r];
            if (!b || !meshable(a, b)) continue;
            if (mh_load_relaxed(&aliases_total) + 1 > alias_budget()) {
                if (!budget_warned && mh_opt[MH_OPT_max_map_count] == MH_CHECK_WARN)
                    mh_warn("meshing paused: %llu meshed spans reached the budget of %llu VMAs "
                            "(vm.max_map_count is %ld; raise it with sysctl -w vm.max_map_count=262144)",
                            (unsigned long long)mh_load_relaxed(&aliases_total),
                            (unsigned long long)alias_budget(), mh_check_max_map_count(""));
                budget_warned = true;
                return meshed;
            }
            // Destination: the fuller span (fewer bytes to copy), then the longer chain.
            // But every virtual span of the source is protected and remapped (two
            // system calls each) while the copy is at most a few KiB: a source with a
            // long chain swaps roles with a shorter one, and one that would overrun
            // the pass's budget waits for (nearly) the start of a later pass.
            unsigned ua = mh_span_in_use(a), ub = mh_span_in_use(b);
            mh_span_t *dst = ua > ub || (ua == ub && a->naliases >= b->naliases) ? a : b;
            mh_span_t *src = dst == a ? b : a;
            if (src->naliases > LONG_CHAIN && src->naliases > dst->naliases) {
                mh_span_t *t = src;
                src = dst;
                dst = t;
            }
            uint64_t spent = mh_os_now_ns() - t0;
            if (src->naliases > LONG_CHAIN && spent > PASS_BUDGET_NS / 4 &&
                spent + (uint64_t)(src->naliases + 1) * REMAP_NS > PASS_BUDGET_NS)
                continue;
            mh_gh_unlist(cls, src);
            if (!mesh_pair(src, dst)) {
                (void)mh_gh_refile(cls, src);
                return meshed;
            }
            (void)mh_gh_refile(cls, dst);
            right[r] = NULL;
            meshed++;
            if (mh_os_now_ns() - t0 > PASS_BUDGET_NS) {
                pass_truncated = true;
                return meshed;
            }
            break;
        }
    }
    return meshed;
}

// One pass over one class; t0 is when the caller's budget started (a tick's classes
// share one budget). Pass lock held. Records the pass's own duration as its pause.
static size_t class_pass(unsigned cls, uint64_t t0) {
    if (!rng_ready) {
        mh_rng_seed(&rng);
        rng_ready = true;
    }
    uint64_t start = mh_os_now_ns();
    mh_gh_class_lock(cls);
    mh_gh_exclusive_begin(cls);
    size_t meshed = mesh_class_locked(cls, t0);
    mh_gh_exclusive_end(cls);
    mh_gh_class_unlock(cls);
    record_pause(mh_os_now_ns() - start);
    passes++;
    pairs_total += meshed;
    dry_at[cls] = meshed || pass_truncated ? 0 : mh_gh_partial_count(cls) + 1;
    if (budget_warned && mh_load_relaxed(&aliases_total) * 10 < alias_budget() * 9) budget_warned = false;
    return meshed;
}

size_t mh_mesh_class(unsigned cls) {
    if (cls >= MH_NUM_CLASSES || mh_classes[cls].size > MH_MESH_MAX_SIZE || !barrier_ready()) return 0;
    mh_lock(&pass_lock);
    size_t meshed = class_pass(cls, mh_os_now_ns());
    mh_unlock(&pass_lock);
    return meshed;
}

// ---- fork migration ---------------------------------------------------------------------
// After a fork, spans left private on the frozen heap file are moved back onto the
// current one (arena_fork.c) in steps of at most 1 ms, one every 10 ms while work is
// left, from the same free paths that trigger meshing (and the background thread).
// malloc_trim and mesh.compact finish it at once.

#define MIGRATE_EVERY_NS 10000000

// Pass lock held. Returns when the budget is spent or nothing is left.
static void migrate_locked(uint64_t budget_ns) {
    uint64_t t0 = mh_os_now_ns();
    // 64 MiB of page tables moved aside by a fork take about a millisecond to unmap.
    mh_arena_drop_detached(budget_ns == UINT64_MAX ? SIZE_MAX : (size_t)64 << 20);
    mh_migrant_t batch[32];
    size_t progress = 1; // bytes moved in this sweep: a sweep that moves nothing ends it
    while (mh_arena_migration_pending() && mh_os_now_ns() - t0 <= budget_ns) {
        unsigned n = mh_arena_migrate_collect(batch, 32);
        if (!n) { // a sweep ended (or only page tables are left to drop)
            size_t dropped = mh_arena_drop_detached((size_t)64 << 20);
            if (!dropped && !progress) return;
            progress = dropped;
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            bool small = batch[i].span && batch[i].kind < MH_NUM_CLASSES; // a leader
            size_t moved;
            do {
                if (small) mh_gh_class_lock(batch[i].kind);
                moved = mh_arena_migrate(&batch[i], &guard);
                if (small) mh_gh_class_unlock(batch[i].kind);
                atomic_fetch_add(&migrated_bytes, moved);
                progress += moved;
            } while (batch[i].span && !small && moved && mh_os_now_ns() - t0 <= budget_ns);
            if (mh_os_now_ns() - t0 > budget_ns) return; // the next sweep finds the rest
        }
    }
}

static void migrate_step(uint64_t budget_ns) {
    if (!barrier_ready()) return;
    mh_lock(&pass_lock);
    migrate_locked(budget_ns);
    mh_unlock(&pass_lock);
}

static void migrate_maybe(void) {
    if (!mh_arena_migration_pending()) return;
    uint64_t now = coarse_now_ns(), last = mh_load_relaxed(&last_migrate_ns);
    uint64_t every = mh_arena_migration_idle() ? (uint64_t)1000000000 : MIGRATE_EVERY_NS;
    if (now - last < every) return;
    if (!atomic_compare_exchange_strong(&last_migrate_ns, &last, now)) return;
    migrate_step(PASS_BUDGET_NS);
}

void mh_mesh_migrate_all(void) {
    if (mh_arena_migration_pending()) migrate_step(UINT64_MAX);
}

// A full pass: every class until a pass over it ends with nothing left to try, in
// passes of at most the usual budget each, so a long compaction still never holds a
// class for more than about a millisecond at a time.
size_t mh_mesh_compact(void) {
    mh_mesh_migrate_all(); // meshable again first
    size_t total = 0;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        for (unsigned round = 0; round < 100000; round++) {
            total += mh_mesh_class(c);
            if (!pass_truncated) break;
        }
    }
    mh_store_relaxed(&last_pass_ns, coarse_now_ns());
    return total;
}

// The class to mesh next: the meshable class with the most partial spans (where
// fragmentation is), the class just freed into on a tie, else round-robin. Classes in
// done (bit per class) already had their pass this tick.
static bool worth_a_pass(unsigned k, uint64_t done) {
    if (mh_classes[k].size > MH_MESH_MAX_SIZE || (done >> k & 1)) return false;
    return !dry_at[k] || mh_gh_partial_count(k) + 1 >= dry_at[k] + DRY_MARGIN;
}

static unsigned pick_class(unsigned hint, uint64_t done) {
    unsigned best = MH_NUM_CLASSES, most = 0;
    if (hint < MH_NUM_CLASSES && worth_a_pass(hint, done)) best = hint, most = mh_gh_partial_count(hint);
    for (unsigned i = 0; i < MH_NUM_CLASSES; i++) {
        unsigned k = (next_class + i) % MH_NUM_CLASSES;
        if (worth_a_pass(k, done) && mh_gh_partial_count(k) > most) best = k, most = mh_gh_partial_count(k);
    }
    next_class++;
    return best; // MH_NUM_CLASSES: every class is dry
}

_Static_assert(MH_NUM_CLASSES <= 64, "a tick's done set is one word");

// One tick of meshing. One class at a time: passes over the classes most worth it, one
// after another, all within one budget (a class whose list was exhausted early leaves
// the rest of the budget to the next). *more: work is left that a tick soon should do.
static size_t mesh_tick(unsigned hint, bool *more) {
    size_t meshed = 0;
    *more = false;
    if (!barrier_ready()) return 0;
    mh_lock(&pass_lock);
    uint64_t t0 = mh_os_now_ns(), done = 0;
    if (mh_opt[MH_OPT_class_at_a_time]) {
        for (unsigned cls; (cls = pick_class(hint, done)) < MH_NUM_CLASSES; hint = MH_NUM_CLASSES) {
            done |= (uint64_t)1 << cls;
            meshed += class_pass(cls, t0);
            if (pass_truncated) *more = true;
            if (*more || mh_os_now_ns() - t0 > PASS_BUDGET_NS) break;
        }
        if (!*more) *more = pick_class(MH_NUM_CLASSES, done) < MH_NUM_CLASSES && meshed;
    } else {
        for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
            if (mh_classes[c].size > MH_MESH_MAX_SIZE) continue;
            meshed += class_pass(c, mh_os_now_ns()); // each class its own budget, as asked
            *more |= pass_truncated;
        }
    }
    mh_unlock(&pass_lock);
    return meshed;
}

static bool tick_more; // the last tick left work (written by the thread that ran it)
static void mh_mesh_auto_background(void);

// Runs a tick now (pass lock taken inside); updates the backoff and continuation state.
static void run_tick(unsigned hint, uint64_t now) {
    bool more;
    size_t meshed = mesh_tick(hint, &more);
    tick_more = more;
    idle_passes = meshed ? 0 : idle_passes + 1;
    // A tick cut short by its time budget left pairs behind: go on in 10 ms rather than a
    // full period, which keeps meshing under about a tenth of one thread's time.
    uint64_t period_ns = (uint64_t)mh_opt[MH_OPT_period_ms] * 1000000u;
    if (more && period_ns > CONTINUE_NS) mh_store_relaxed(&last_pass_ns, now - period_ns + CONTINUE_NS);
}

static _Atomic int bg_state;    // 0 no background thread, 1 starting or running
static _Atomic uint32_t bg_free_flushes; // free-path flushes since the thread last looked

void mh_mesh_maybe(unsigned hint) {
    if (mh_load_relaxed(&bg_state)) { // the thread meshes and migrates: frees never pause
        atomic_fetch_add_explicit(&bg_free_flushes, 1, memory_order_relaxed);
        return;
    }
    migrate_maybe(); // also with meshing off: it gives the frozen file's memory back
    int64_t period = mh_opt[MH_OPT_period_ms];
    if (period <= 0) return;
    uint64_t now = coarse_now_ns(), last = mh_load_relaxed(&last_pass_ns);
    // A pass that found nothing backs off: up to 32 periods between passes.
    uint64_t wait = (uint64_t)period * 1000000u << (idle_passes < 5 ? idle_passes : 5);
    if (now - last < wait) return;
    if (!atomic_compare_exchange_strong(&last_pass_ns, &last, now)) return; // another thread runs it
    mh_mesh_auto_background();
    run_tick(hint, now);
}

// ---- aliases ---------------------------------------------------------------------------

// Resets an alias to its own (punched) file pages and returns its range to the arena.
void mh_mesh_release_alias_now(mh_span_t *a) {
    count_meshed(a, false);
    atomic_fetch_sub(&aliases_total, 1);
    a->leader = a->next_alias = NULL;
    a->kind = a->cls;
    if (mh_arena_reset_alias(a) != 0) {
        a->kind = MH_KIND_BUSY; // still maps someone else's pages: never reuse this range
        return;
    }
    mh_arena_free(a, true);
}

static void release_alias(mh_span_t *a) {
    if (!mh_freephys_release(a)) mh_mesh_release_alias_now(a);
}

void mh_mesh_detach_aliases(mh_span_t *leader) {
    for (mh_span_t *a = leader->next_alias; a; a = a->next_alias) a->kind = MH_KIND_BUSY;
}

void mh_mesh_release_aliases(mh_span_t *leader) {
    mh_span_t *a = leader->next_alias;
    leader->next_alias = NULL;
    leader->naliases = 0;
    while (a) {
        mh_span_t *next = a->next_alias;
        release_alias(a);
        a = next;
    }
}

void mh_mesh_alias_emptied(unsigned cls, mh_span_t *alias, uint32_t gen) {
    mh_gh_class_lock(cls);
    bool ok = alias->gen == gen && alias->kind == MH_KIND_ALIAS && mh_span_is_empty(alias);
    if (ok) {
        mh_span_t *leader = alias->leader, **link = &leader->next_alias;
        while (*link && *link != alias) link = &(*link)->next_alias;
        ok = *link == alias;
        if (ok) {
            *link = alias->next_alias;
            leader->naliases--;
            alias->kind = MH_KIND_BUSY; // a racing second call sees it gone
        }
    }
    mh_gh_class_unlock(cls);
    if (ok) release_alias(alias);
}

// ---- background thread ----------------------------------------------------------------
// With mesh.background_thread, meshing and page release also happen while the program
// is idle (no frees to trigger them): every period (100 ms when meshing is off) the
// thread runs a mesh tick and returns dirty pages; while ticks leave work it runs one
// every BG_CONTINUE_NS, at most about a third of one core, until the backlog is gone.
// "true" starts it at startup and again in a fork child (which has no threads but the
// forking one). "auto" (the default) starts it from a mesh tick once the heap holds
// AUTO_BACKGROUND_BYTES: the small, short-lived programs that make up most processes
// under a system-wide preload never get a thread, the servers that fragment do; a fork
// child starts its own only when it too runs a tick with a heap that large.

#define BG_CONTINUE_NS 2000000
#define AUTO_BACKGROUND_BYTES ((size_t)64 << 20)

static bool bg_failed; // auto: a start failed (seccomp, thread limits); quiet, no retry

// Sleeps until the next tick is due: a period, backed off like the free-path ticks when
// ticks find nothing; with work left 2 ms while the program is idle, 10 ms while it is
// busy freeing (its own frees and allocations come first, and each mesh costs the
// program's threads a TLB shootdown). Busy: at least BUSY_FLUSHES cache flushes (each
// tens of frees) since the last tick; a timer's few frees keep a program idle.
#define BUSY_FLUSHES 16

static void bg_sleep(int64_t period) {
    uint64_t ns = (period > 0 ? (uint64_t)period : 100) * 1000000u;
    bool busy = atomic_exchange_explicit(&bg_free_flushes, 0, memory_order_relaxed) >= BUSY_FLUSHES;
    if (period > 0 && tick_more) ns = busy ? CONTINUE_NS : BG_CONTINUE_NS;
    else if (period > 0) ns <<= idle_passes < 5 ? idle_passes : 5;
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

static void *background_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "libmesh-bg", 0, 0, 0); // what top and ps show for it
    uint64_t alone_check = 0;
    for (;;) {
        bg_sleep(mh_opt[MH_OPT_period_ms]);
        if (!mh_opt[MH_OPT_background_thread] || mh_helper_alone(&alone_check)) break;
        migrate_maybe();
        if (mh_opt[MH_OPT_period_ms] > 0) {
            uint64_t now = coarse_now_ns();
            mh_store_relaxed(&last_pass_ns, now);
            run_tick(MH_NUM_CLASSES, now);
        }
        mh_arena_purge_all();
    }
    mh_store_release(&bg_state, 0);
    mh_helper_leaving();
    return NULL;
}

static bool start_thread(void) {
    bool ok = mh_helper_start(background_main);
    if (!ok) mh_store_release(&bg_state, 0);
    return ok;
}

void mh_mesh_start_background(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&bg_state, &expected, 1)) return;
    if (!start_thread()) mh_warn("mesh.background_thread: cannot start the thread; meshing stays on free paths");
}

// From a mesh tick: only asks for the thread. A tick runs inside free, in the middle
// of cache and bitmap updates, and pthread_create may call malloc and free; the thread
// is started by mh_mesh_start_wanted at the end of the free, where that is safe.
_Atomic bool mh_mesh_bg_wanted;

static void mh_mesh_auto_background(void) {
    if (mh_opt[MH_OPT_background_thread] != MH_AUTO || bg_failed || mh_load_relaxed(&bg_state)) return;
    if (mh_arena_active_bytes() >= AUTO_BACKGROUND_BYTES) mh_store_release(&mh_mesh_bg_wanted, true);
}

void mh_mesh_start_wanted(void) {
    if (!atomic_exchange(&mh_mesh_bg_wanted, false)) return;
    int expected = 0;
    if (atomic_compare_exchange_strong(&bg_state, &expected, 1) && !start_thread()) bg_failed = true;
}

static bool bg_restart; // fork child: the parent had the thread and "true" asks for one

void mh_mesh_fork_child(void) {
    bg_restart = mh_load_relaxed(&bg_state) && mh_opt[MH_OPT_background_thread] == 1;
    mh_store_relaxed(&bg_state, 0); // the parent's thread did not come along
    mh_lock_reset(&pass_lock);
    mh_store_relaxed(&prot_n, 0);
    if (mh_load_relaxed(&epoch) & 1) atomic_fetch_add(&epoch, 1);
    rng_ready = false;
    tick_more = false;
    mh_store_relaxed(&mh_mesh_bg_wanted, false);
}

// Last of the fork child handlers: until the arena's has run, the child's meshed spans
// still share pages with the parent, and a thread started earlier would run (and
// allocate) on them.
void mh_mesh_fork_child_helpers(void) {
    if (bg_restart) mh_mesh_start_background();
    bg_restart = false;
}
