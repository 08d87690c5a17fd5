// mesh.c - meshing one class: the split mesher and the pair mesh (see mesh.h).
//
// Layer 6 (meshing): global_heap (class lists and locks), alias, barrier, arena,
// freephys, mesh_stats.
// Locking: the caller holds the mesh pass lock; a class is meshed under its class lock
// with its bitmaps exclusive. Scratch arrays and the generator are static (pass lock).
#define _GNU_SOURCE
#include "mesh.h"

#include <string.h>

#include "alias.h"
#include "arena.h"
#include "atomic.h"
#include "barrier.h"
#include "check.h"
#include "checks.h"
#include "freephys.h"
#include "global_heap.h"
#include "log.h"
#include "mesh_stats.h"
#include "options.h"
#include "os.h"
#include "rng.h"

#define PROBES 64              // t: right-half partners probed per left span
#define MAX_CANDIDATES 1024    // spans looked at per round of a pass
#define REPASS_PAIRS 16        // a pass that meshed this many is followed by another soon
#define LONG_CHAIN 8           // aliases past which a source's remapping cost matters
#define REMAP_NS 12000         // protect + remap of one virtual span, measured (2 cores)
#define MAX_CHAIN MH_BARRIER_MAX // virtual spans sharing one physical span
#define PASS_BUDGET_NS 1000000 // a pass stops meshing after 1 ms (the pause bound)
#define MESH_MAX_OCCUPANCY_PCT 80 // fuller spans are not candidates: they rarely have partners

static mh_rng_t rng;
static bool rng_ready;
static mh_span_t *cand[MAX_CANDIDATES];

bool mh_mesh_class_meshable(unsigned cls) {
    return cls < MH_NUM_CLASSES && mh_classes[cls].size <= MH_MESH_MAX_SIZE;
}

// ---- the VMA budget ------------------------------------------------------------------

uint64_t mh_mesh_alias_budget(void) {
    if (mh_opt[MH_OPT_max_aliases]) return (uint64_t)mh_opt[MH_OPT_max_aliases];
    static long maps = 0;
    if (!maps) maps = mh_check_max_map_count("");
    long m = maps > 0 ? maps : 65530;
    // Each alias is a VMA and splits its region's VMA; keep two thirds for the program.
    return (uint64_t)(m / 3 > 4096 ? (m - 4096) / 3 : m / 6);
}

// True when one more alias fits; warns once when it does not (re-armed below 90%).
static bool budget_allows_one(void) {
    uint64_t live = mh_mstat_aliases(), budget = mh_mesh_alias_budget();
    if (live + 1 <= budget) {
        if (live * 10 < budget * 9) mh_degraded_clear(MH_DEG_VMA_BUDGET);
        return true;
    }
    if (mh_opt[MH_OPT_max_map_count] == MH_CHECK_WARN)
        mh_degraded(MH_DEG_VMA_BUDGET,
                    "meshing paused: %llu meshed spans reached the budget of %llu VMAs "
                    "(vm.max_map_count is %ld; raise it with sysctl -w vm.max_map_count=262144)",
                    (unsigned long long)live, (unsigned long long)budget, mh_check_max_map_count(""));
    else
        mh_degraded_quiet(MH_DEG_VMA_BUDGET);
    return false;
}

// ---- one pair ------------------------------------------------------------------------

static void copy_live(mh_span_t *src, mh_span_t *dst, const uint64_t *live) {
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
        for (uint64_t m = live[w]; m; m &= m - 1) {
            size_t off = (w * 64 + (unsigned)__builtin_ctzll(m)) * (size_t)src->obj_size;
            memcpy((char *)dst->start + off, (const char *)src->start + off, src->obj_size);
        }
}

// Meshes src into dst (bitmaps disjoint, both detached, class exclusive). False when
// the barrier or a system call failed; everything is then as it was.
static bool mesh_pair(mh_span_t *src, mh_span_t *dst) {
    uintptr_t start[MAX_CHAIN];
    size_t len[MAX_CHAIN];
    unsigned n = 0;
    for (mh_span_t *a = src; a && n < MAX_CHAIN; a = (a == src ? src->next_alias : a->next_alias)) {
        start[n] = a->start;
        len[n++] = mh_span_bytes(a);
    }
    if (!mh_barrier_raise(n, start, len)) return false;
    uint64_t live[MH_BITMAP_WORDS];
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) {
        live[w] = mh_load_relaxed(&src->bits[w]);
        MH_ASSERT(!(live[w] & mh_load_relaxed(&dst->bits[w]))); // the class is exclusive: no frees race
    }
    copy_live(src, dst, live);
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_fetch_or_seqcst(&dst->bits[w], live[w]);
    for (unsigned i = 0; i < n; i++) {
        if (mh_arena_remap(start[i], len[i], dst->start) == 0) continue;
        // Unwind: back onto src's pages (still intact), then writable again.
        for (unsigned j = 0; j < i; j++) (void)mh_arena_remap(start[j], len[j], src->start);
        for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_fetch_and_seqcst(&dst->bits[w], ~live[w]);
        mh_barrier_lower(true);
        return false;
    }
    mh_alias_adopt(dst, src, live);
    // The source's physical pages are free now (punched by the freephys thread when on).
    if (!mh_freephys_punch(src->start, mh_span_bytes(src))) (void)mh_arena_punch(src);
    mh_barrier_lower(false);
    return true;
}

// ---- the split mesher ----------------------------------------------------------------

static bool meshable(mh_span_t *a, mh_span_t *b) {
    if (a->naliases + b->naliases + 2 > MAX_CHAIN) return false;
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
        if (mh_load_relaxed(&a->bits[w]) & mh_load_relaxed(&b->bits[w])) return false;
    return true;
}

// A span worth trying: detached, neither empty (empty spans are being re-filed by a
// freer waiting for this pass) nor too full, on the current heap file, and without
// an alternate signal stack in it.
static bool candidate(mh_span_t *s) {
    unsigned used = mh_span_in_use(s);
    return used && used * 100 < s->objs * (unsigned)MESH_MAX_OCCUPANCY_PCT &&
           mh_load_relaxed(&s->owner) == NULL && mh_arena_span_shared(s) &&
           !mh_barrier_altstack_in(s->start, mh_span_end(s));
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
        if (candidate(s)) cand[n++] = s;
    }
    if (last) mh_gh_partial_rotate(cls, last);
    return n;
}

// Destination: the fuller span (fewer bytes to copy), then the longer chain. But every
// virtual span of the source is protected and remapped (two system calls each) while
// the copy is at most a few KiB: a source with a long chain swaps roles with a shorter
// one. Returns the source; *dst the destination.
static mh_span_t *choose_source(mh_span_t *a, mh_span_t *b, mh_span_t **dst) {
    unsigned ua = mh_span_in_use(a), ub = mh_span_in_use(b);
    mh_span_t *d = ua > ub || (ua == ub && a->naliases >= b->naliases) ? a : b;
    mh_span_t *src = d == a ? b : a;
    if (src->naliases > LONG_CHAIN && src->naliases > d->naliases) {
        mh_span_t *t = src;
        src = d;
        d = t;
    }
    *dst = d;
    return src;
}

// A source with a long chain that would overrun the pass's budget waits for (nearly)
// the start of a later pass.
static bool overruns_budget(const mh_span_t *src, uint64_t t0) {
    uint64_t spent = mh_os_now_ns() - t0;
    return src->naliases > LONG_CHAIN && spent > PASS_BUDGET_NS / 4 &&
           spent + (uint64_t)(src->naliases + 1) * REMAP_NS > PASS_BUDGET_NS;
}

static void shuffle_candidates(unsigned n) {
    for (unsigned i = n; i > 1; i--) {
        unsigned j = mh_rng_below(&rng, i);
        mh_span_t *t = cand[i - 1];
        cand[i - 1] = cand[j];
        cand[j] = t;
    }
}

// One round: shuffle, split in halves, probe each left span against PROBES right ones.
static void mesh_candidates(unsigned cls, unsigned n, uint64_t t0, mh_pass_t *pass) {
    shuffle_candidates(n);
    unsigned half = n / 2;
    mh_span_t **left = cand, **right = cand + half;
    for (unsigned i = 0; i < half; i++) {
        if ((i & 15) == 15 && mh_os_now_ns() - t0 > PASS_BUDGET_NS) { // probing is bounded too
            pass->truncated = true;
            return;
        }
        for (unsigned k = 0; k < PROBES && k < half; k++) {
            unsigned r = (i + k) % half;
            if (!right[r] || !meshable(left[i], right[r])) continue;
            if (!budget_allows_one()) return;
            mh_span_t *dst, *src = choose_source(left[i], right[r], &dst);
            if (overruns_budget(src, t0)) continue;
            mh_gh_unlist(cls, src);
            if (!mesh_pair(src, dst)) {
                (void)mh_gh_refile(cls, src);
                return;
            }
            (void)mh_gh_refile(cls, dst);
            right[r] = NULL;
            pass->meshed++;
            if (mh_os_now_ns() - t0 > PASS_BUDGET_NS) {
                pass->truncated = true;
                return;
            }
            break;
        }
    }
}

// Rounds of at most MAX_CANDIDATES spans each (gather, shuffle, split, probe, mesh)
// until every span that was on the partial list at the start has been looked at once
// or the time budget is spent. Small rounds put the first pairs within a fraction of
// the budget, however long the list; a round's candidates still number enough for the
// split mesher's probes to find most pairs.
static mh_pass_t mesh_class_locked(unsigned cls, uint64_t t0) {
    mh_pass_t pass = {0, false};
    if (!mh_arena_file_ok()) return pass; // one check of the heap file per pass
    unsigned todo = mh_gh_partial_count(cls);
    while (todo && !pass.truncated) {
        unsigned seen, n = gather(cls, todo < MAX_CANDIDATES ? todo : MAX_CANDIDATES, &seen);
        todo = seen < todo ? todo - seen : 0;
        if (!seen) break;
        mesh_candidates(cls, n, t0, &pass);
        if (todo && mh_os_now_ns() - t0 > PASS_BUDGET_NS) pass.truncated = true;
    }
    // Pairs found: a new shuffle (and the fuller destinations) likely holds more.
    if (pass.meshed >= REPASS_PAIRS) pass.truncated = true;
    return pass;
}

mh_pass_t mh_mesh_pass(unsigned cls, uint64_t t0) {
    MH_ASSERT(mh_mesh_class_meshable(cls));
    if (!rng_ready) {
        mh_rng_seed(&rng);
        rng_ready = true;
    }
    uint64_t start = mh_os_now_ns();
    mh_gh_class_lock(cls);
    mh_gh_exclusive_begin(cls);
    mh_pass_t pass = mesh_class_locked(cls, t0);
    mh_gh_exclusive_end(cls);
    mh_gh_class_unlock(cls);
    mh_mstat_pass(mh_os_now_ns() - start, pass.meshed);
    return pass;
}

void mh_mesh_pass_fork_child(void) { rng_ready = false; }
