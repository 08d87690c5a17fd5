// mesh.c - meshing one class: the pairing of spans, the pair mesh and the VMA budget
// (see mesh.h).
//
// Layer 6 (meshing): global_heap (class lists and locks), alias, barrier, fault, arena,
// freephys, mesh_stats.
// Locking: the caller holds the mesh pass lock; a class is meshed under its class lock
// with its bitmaps exclusive. Scratch arrays, the generator and the budget are static
// (pass lock).
#define _GNU_SOURCE
#include "mesh.h"

#include <string.h>

#include "alias.h"
#include "arena.h"
#include "atomic.h"
#include "barrier.h"
#include "check.h"
#include "checks.h"
#include "fault.h"
#include "freephys.h"
#include "global_heap.h"
#include "log.h"
#include "mesh_stats.h"
#include "options.h"
#include "os.h"
#include "rng.h"

#define PROBES 256             // t: random partners probed per source
#define MAX_CANDIDATES 1024    // spans looked at per round of a pass
#define REPASS_PAIRS 16        // a pass that meshed this many is followed by another soon
#define MAX_CHAIN MH_BARRIER_MAX // virtual spans sharing one physical span
#define PASS_BUDGET_NS 1000000 // a pass stops meshing after 1 ms (the pause bound)
#define MESH_MAX_OCCUPANCY_PCT 80 // fuller spans are not candidates: they rarely have partners

static mh_rng_t rng;
static bool rng_ready;
static mh_span_t *cand[MAX_CANDIDATES];
static uint8_t role[MAX_CANDIDATES]; // ROLE_* of cand[i] in the current round
enum { ROLE_FREE = 0, ROLE_SOURCE };

bool mh_mesh_class_meshable(unsigned cls) {
    return cls < MH_NUM_CLASSES && mh_classes[cls].size <= MH_MESH_MAX_SIZE;
}

// ---- the VMA budget ------------------------------------------------------------------
// Every meshed span is a mapping of another span's file pages, which costs VMAs where
// its file offset breaks the continuity of its neighbours' (arena.c counts them). The
// heap may use vm.max_map_count, less the program's own mappings, less a reserve the
// program can still grow into (a quarter of the limit, at least 4096), less room for
// the splits one barrier makes for a moment. The program's mappings are read from
// /proc/self/maps at the first check, and again, at most once a second, when the heap
// nears its budget or its own count is only an estimate (after a fork): never on a
// free's fast path, never per pair.

#define RECOUNT_NS 1000000000
#define TRANSIENT_VMAS (2 * MH_BARRIER_MAX)
#define MAX_RANGES 256

static struct {
    long max_map;        // vm.max_map_count at the last count
    size_t program;      // VMAs outside the heap's regions at the last count
    uint64_t counted_ns; // when (0: never)
    uint64_t counted_gen; // the arena's mapping generation then
} budget;

static void count_vmas(void) {
    uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
    unsigned n = mh_arena_ranges(lo, hi, MAX_RANGES);
    uint64_t gen = mh_arena_map_gen();
    size_t inside, total;
    budget.counted_ns = mh_os_now_ns() | 1;
    budget.counted_gen = gen;
    long m = mh_check_max_map_count("");
    budget.max_map = m > 0 ? m : 65530;
    if (mh_os_count_maps(lo, hi, n, &inside, &total) != 0) return; // no /proc: keep the estimate
    mh_arena_vmas_set(inside, gen);
    budget.program = total - inside;
}

static size_t heap_limit(void) {
    long m = budget.max_map, reserve = m / 4 > 4096 ? m / 4 : 4096;
    long limit = m - reserve - (long)budget.program - TRANSIENT_VMAS;
    return limit > 0 ? (size_t)limit : 0;
}

// Counts the program's mappings again when it is due: never counted (in this process),
// or (at most once a second) the heap's own count is an estimate or near the limit.
// Called at the start of a tick or pass, outside every class lock (reading
// /proc/self/maps of a process with tens of thousands of mappings takes milliseconds).
// Once a fork's (or the heap file's) migration is over, the count is made exact again
// at once.
void mh_mesh_budget_refresh(void) {
    bool exact;
    size_t heap = mh_arena_vmas(&exact), limit = heap_limit(), near = limit / 16 > 1024 ? limit / 16 : 1024;
    bool settled = !exact && !mh_arena_migration_pending() && mh_arena_map_gen() != budget.counted_gen;
    if (!budget.counted_ns || settled ||
        ((!exact || heap + near > limit) && mh_os_now_ns() - budget.counted_ns > RECOUNT_NS))
        count_vmas();
}

// Room in the budget for `need` more heap VMAs (need <= 0: a mesh that costs none).
static bool vma_room(long need) {
    size_t heap = mh_arena_vmas(NULL), limit = heap_limit();
    uint64_t aliases = mh_mstat_aliases(), cap = (uint64_t)mh_opt[MH_OPT_max_aliases];
    bool capped = cap && aliases + 1 > cap;
    if (!capped && (need <= 0 || (long)heap + need <= (long)limit)) {
        if (heap * 10 < limit * 9 && (!cap || aliases * 10 < cap * 9)) mh_degraded_clear(MH_DEG_VMA_BUDGET);
        return true;
    }
    if (mh_opt[MH_OPT_max_map_count] != MH_CHECK_WARN)
        mh_degraded_quiet(MH_DEG_VMA_BUDGET);
    else if (capped)
        mh_degraded(MH_DEG_VMA_BUDGET, "meshing paused: %llu meshed spans reached mesh.max_aliases (%llu)",
                    (unsigned long long)aliases, (unsigned long long)cap);
    else
        mh_degraded(MH_DEG_VMA_BUDGET,
                    "meshing paused: the heap has %zu VMAs, all that vm.max_map_count (%ld) leaves it "
                    "beside the program's %zu; only meshes that cost none go on (raise the limit: "
                    "sysctl -w vm.max_map_count=1048576)",
                    heap, budget.max_map, budget.program);
    return false;
}

void mh_mesh_vma_stats(size_t *heap, size_t *limit, size_t *program) {
    if (!budget.counted_ns) count_vmas();
    *heap = mh_arena_vmas(NULL);
    *limit = heap_limit();
    *program = budget.program;
}

// ---- one pair ------------------------------------------------------------------------

static void copy_live(mh_span_t *src, mh_span_t *dst, const uint64_t *live) {
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
        for (uint64_t m = live[w]; m; m &= m - 1) {
            size_t off = (w * 64 + (unsigned)__builtin_ctzll(m)) * (size_t)src->obj_size;
            memcpy((char *)dst->start + off, (const char *)src->start + off, src->obj_size);
        }
}


static int remap_retry(uintptr_t va, size_t len, uintptr_t target) {
    int rc = 0;
    for (int t = 0; t < MH_MAP_TRIES; t++)
        if ((rc = mh_arena_remap(va, len, target)) == 0) break;
    return rc;
}

typedef enum { RECOVER_UNDONE, RECOVER_FORWARD, RECOVER_STUCK } recover_t;

// A remap of src's chain onto dst failed after `moved` views went over. UNDONE: those
// went back onto src's pages (still intact), dst's bits are as they were and the
// barrier is down. A view that cannot go back is already where the mesh wants it, so
// the others are then tried forward: FORWARD when all made it (the mesh is whole after
// all). STUCK when neither way works: every view still reads its own objects - src's
// pages hold them all, dst's pages a copy (copy_live) - see mesh_pair.
static recover_t recover(mh_span_t *src, mh_span_t *dst, const uintptr_t *start, const size_t *len,
                         unsigned moved, unsigned n, const uint64_t *live) {
    unsigned back = 0;
    while (back < moved && remap_retry(start[back], len[back], src->start) == 0) back++;
    if (back == moved) {
        for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_fetch_and_seqcst(&dst->bits[w], ~live[w]);
        mh_barrier_lower(true);
        return RECOVER_UNDONE;
    }
    for (unsigned i = 0; i < n; i++) // start[back] stays on dst's pages: the rest follow it
        if ((i < back || i >= moved) && remap_retry(start[i], len[i], dst->start) != 0) return RECOVER_STUCK;
    return RECOVER_FORWARD;
}

// Meshes src into dst (bitmaps disjoint, both detached, class exclusive). False when
// the barrier or a system call failed; everything is then as it was. True also when a
// mapping could be neither made nor undone (recover: STUCK): the chain then joins dst
// as a pinned split group - each object used through its own view, never meshed or
// migrated again, src's pages kept, no alias released before the whole group (views
// may map each other's pages) - and dst keeps the chain's bits, so those slots are
// never handed out. That saves nothing, but src is dst's alias as after a mesh.
static bool mesh_pair(mh_span_t *src, mh_span_t *dst) {
    uintptr_t start[MAX_CHAIN];
    size_t len[MAX_CHAIN];
    unsigned n = 0;
    for (mh_span_t *a = src; a && n < MAX_CHAIN; a = (a == src ? src->next_alias : a->next_alias)) {
        start[n] = a->start;
        len[n++] = mh_span_bytes(a);
    }
    // Our handler must still be the kernel's (checked before each pass too): a pass can
    // take a millisecond, and a write that faults without it would kill the program.
    if (!mh_fault_ready()) return false;
    if (!mh_barrier_raise(n, start, len)) {
        // A view the failed raise could not make writable again (mprotect refused) is
        // mapped afresh onto the pages it maps now, src's: a new mapping is writable.
        // (Writers that fault on it meanwhile wait in the fault handler.)
        for (unsigned i = 0; i < n; i++)
            if (mh_barrier_is_stuck(start[i], len[i]) && remap_retry(start[i], len[i], src->start) == 0)
                mh_barrier_forget_stuck(start[i], len[i]);
        return false;
    }
    uint64_t live[MH_BITMAP_WORDS];
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) {
        live[w] = mh_load_relaxed(&src->bits[w]);
        MH_ASSERT(!(live[w] & mh_load_relaxed(&dst->bits[w]))); // the class is exclusive: no frees race
    }
    copy_live(src, dst, live);
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_fetch_or_seqcst(&dst->bits[w], live[w]);
    for (unsigned i = 0; i < n; i++) {
        if (mh_arena_remap(start[i], len[i], dst->start) == 0) continue;
        recover_t r = recover(src, dst, start, len, i, n, live);
        if (r == RECOVER_UNDONE) return false;
        if (r == RECOVER_STUCK) { // see above
            mh_alias_adopt(dst, src, live);
            dst->views_split = MH_SPLIT_PINNED;
            mh_barrier_lower(true);
            mh_degraded(MH_DEG_MIGRATION, "meshing: a mapping could neither be made nor undone; two spans "
                        "stay split, without saving memory, until they are freed");
            return true;
        }
        break; // RECOVER_FORWARD: whole after all
    }
    mh_alias_adopt(dst, src, live);
    // The source's physical pages are free now (punched by the freephys thread when on).
    if (!mh_freephys_punch(src->start, mh_span_bytes(src))) (void)mh_arena_punch(src);
    mh_barrier_lower(false);
    return true;
}

// ---- pairing ---------------------------------------------------------------------------
// A round sorts its candidates by address and takes each in turn as a source: first
// against the one or two destinations that would make it continue an alias next to it
// (its neighbour in memory maps span D's pages, so it maps D's neighbour's: the kernel
// merges the two mappings and the mesh costs no VMA), then against PROBES random other
// candidates (the split mesher's random probes). Taking sources in address order makes
// them neighbours, so one source's destination leads the next to its own. Sources are
// spans without aliases: a leader would drag its chain along, each alias another
// protect and remap in the pause, and break the runs its aliases are part of. A span
// that took a source can take more, up to MAX_CHAIN.

static bool meshable(mh_span_t *a, mh_span_t *b) {
    if (a->naliases + b->naliases + 2 > MAX_CHAIN) return false;
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++)
        if (mh_load_relaxed(&a->bits[w]) & mh_load_relaxed(&b->bits[w])) return false;
    return true;
}

// A span worth trying: detached, neither empty (empty spans are being re-filed by a
// freer waiting for this pass) nor too full, on the current heap file, whole (not a
// split group), and without an alternate signal stack in it.
static bool candidate(mh_span_t *s) {
    unsigned used = mh_span_in_use(s);
    return used && used * 100 < s->objs * (unsigned)MESH_MAX_OCCUPANCY_PCT &&
           mh_load_relaxed(&s->owner) == NULL && mh_arena_span_shared(s) && !s->views_split &&
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

// Shell sort by address (no libc qsort: it may allocate).
static void sort_by_address(unsigned n) {
    static const unsigned gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (unsigned g = 0; g < sizeof gaps / sizeof gaps[0]; g++)
        for (unsigned i = gaps[g], gap = gaps[g]; i < n; i++) {
            mh_span_t *v = cand[i];
            unsigned j = i;
            for (; j >= gap && cand[j - gap]->start > v->start; j -= gap) cand[j] = cand[j - gap];
            cand[j] = v;
        }
}

// A span of class cls (not an alias) that is a possible destination: detached, holding
// something, on the current file, whole.
static bool destination(mh_span_t *d, unsigned cls) {
    return d && d->kind == cls && mh_load_relaxed(&d->owner) == NULL && !mh_span_is_empty(d) &&
           mh_arena_span_shared(d) && !d->views_split;
}

// The span whose range starts at addr, if one does.
static mh_span_t *span_at(uintptr_t addr) {
    mh_span_t *s = mh_dir_lookup((void *)addr);
    return s && s->start == addr ? s : NULL;
}

// The destinations that would continue an alias next to s: after the leader of the
// alias before s, before the leader of the alias after s. Returns how many (0-2).
static unsigned run_partners(const mh_span_t *s, mh_span_t **out) {
    unsigned n = 0;
    size_t len = mh_span_bytes(s);
    mh_span_t *left = mh_dir_lookup((void *)(s->start - MH_PAGE_SIZE));
    if (left && left->kind == MH_KIND_ALIAS && left->cls == s->cls && mh_span_end(left) == s->start &&
        left->region == s->region) {
        mh_span_t *d = span_at(mh_span_end(left->leader));
        if (destination(d, s->cls) && d->region == left->leader->region) out[n++] = d;
    }
    mh_span_t *right = span_at(s->start + len);
    if (right && right->kind == MH_KIND_ALIAS && right->cls == s->cls && right->region == s->region &&
        right->leader->start >= len) {
        mh_span_t *d = span_at(right->leader->start - len);
        if (destination(d, s->cls) && d->region == right->leader->region && (n == 0 || out[0] != d))
            out[n++] = d;
    }
    return n;
}

typedef enum { TRY_MESHED, TRY_NO, TRY_STOP } try_t;

// Meshes source cand[i] into d (a destination: never an alias, so never a source of
// this round) if they mesh and the budget has room for what it costs. TRY_STOP: a
// system call failed (the pass ends).
static try_t try_pair(unsigned cls, unsigned i, mh_span_t *d, bool *at_cap) {
    mh_span_t *src = cand[i];
    if (d == src || !destination(d, cls) || !meshable(src, d)) return TRY_NO;
    long cost = 0;
    for (mh_span_t *a = src; a; a = (a == src ? src->next_alias : a->next_alias))
        cost += mh_arena_remap_cost(a->start, mh_span_bytes(a), d->start);
    if (!vma_room(cost)) {
        *at_cap = true;
        return TRY_NO;
    }
    mh_gh_unlist(cls, src);
    if (!mesh_pair(src, d)) {
        (void)mh_gh_refile(cls, src);
        return TRY_STOP;
    }
    (void)mh_gh_refile(cls, d);
    role[i] = ROLE_SOURCE;
    return TRY_MESHED;
}

// The heap uses less than half of its VMA budget.
static bool budget_plentiful(void) {
    size_t heap = mh_arena_vmas(NULL);
    return budget.counted_ns && heap < heap_limit() / 2;
}

// How many of the sources that follow cand[i] in memory (free candidates, adjacent one
// after another) would mesh with the spans that follow d: the run that pairing i with
// d would start (at most LOOKAHEAD).
#define LOOKAHEAD 16
static unsigned run_length(unsigned i, mh_span_t *d, unsigned n, unsigned cls) {
    unsigned k = 0;
    mh_span_t *s = cand[i];
    for (unsigned j = i + 1; j < n && k < LOOKAHEAD; j++, k++) {
        mh_span_t *next = cand[j], *dn = span_at(mh_span_end(d));
        if (next->start != mh_span_end(s) || role[j] != ROLE_FREE || next->naliases ||
            !destination(dn, cls) || dn->region != d->region || !meshable(next, dn))
            break;
        s = next;
        d = dn;
    }
    return k;
}

// One source: the run partners first; then random probes (not at the VMA cap, where
// only meshes that cost no VMA go on), taking of the partners that mesh the one that
// starts the longest run. A partner that would make only a lone pair is left in *lone
// (TRY_NO): lone pairs come after the round's runs, so they take no partner a run
// needs.
static try_t pair_source(unsigned cls, unsigned i, unsigned n, bool *at_cap, mh_span_t **lone) {
    mh_span_t *partners[2];
    unsigned np = run_partners(cand[i], partners);
    *lone = NULL;
    for (unsigned k = 0; k < np; k++) {
        try_t t = try_pair(cls, i, partners[k], at_cap);
        if (t != TRY_NO) return t;
    }
    mh_span_t *best = NULL;
    unsigned best_run = 0;
    for (unsigned k = 0; k < PROBES && !*at_cap && n > 1; k++) {
        unsigned j = mh_rng_below(&rng, n);
        mh_span_t *d = cand[j];
        if (j == i || role[j] == ROLE_SOURCE || !destination(d, cls) || !meshable(cand[i], d)) continue;
        unsigned run = 1 + run_length(i, d, n, cls);
        if (run > best_run) best = d, best_run = run;
        if (run > LOOKAHEAD) break;
    }
    if (best && best_run < 2) {
        *lone = best;
        return TRY_NO;
    }
    return best ? try_pair(cls, i, best, at_cap) : TRY_NO;
}

// A leader with a short chain as a source, against the first of PROBES random
// partners that meshes: groups merge into fuller ones. Each of its virtual spans is
// remapped (and a run it is part of broken), so this is for a budget with plenty of
// room only.
#define LONG_CHAIN 8
static try_t pair_leader(unsigned cls, unsigned i, unsigned n, bool *at_cap) {
    for (unsigned k = 0; k < PROBES && !*at_cap && n > 1; k++) {
        unsigned j = mh_rng_below(&rng, n);
        if (j == i || role[j] == ROLE_SOURCE) continue;
        try_t t = try_pair(cls, i, cand[j], at_cap);
        if (t != TRY_NO) return t;
    }
    return TRY_NO;
}

// The pass stops when its time budget is spent, or once it has meshed something and a
// program thread waits for the class lock: the pass holds the lock, and on a busy
// machine the meshing thread may be preempted in the middle of a long pass (with the
// fallback to SCHED_IDLE, for as long as the machine has other work). One pair is the
// most a waiter waits for; the rest of the work follows at the next tick (the pass
// reports itself truncated). Never before the first pair, so a contended class still
// makes progress and is never judged dry.
static bool yield_now(unsigned cls, uint64_t t0, uint64_t budget_ns, const mh_pass_t *pass) {
    return mh_os_now_ns() - t0 > budget_ns || (pass->meshed && mh_gh_class_contended(cls));
}

static uint16_t lone_src[MAX_CANDIDATES];
static mh_span_t *lone_dst[MAX_CANDIDATES];

// The lone pairs found this round, while they still mesh.
static bool mesh_lone(unsigned cls, unsigned nlone, uint64_t t0, mh_pass_t *pass, bool *at_cap) {
    for (unsigned k = 0; k < nlone && !*at_cap; k++) {
        if (yield_now(cls, t0, PASS_BUDGET_NS, pass)) return false;
        if (role[lone_src[k]] != ROLE_FREE) continue;
        try_t t = try_pair(cls, lone_src[k], lone_dst[k], at_cap);
        if (t == TRY_STOP) return false;
        if (t == TRY_MESHED) pass->meshed++;
    }
    return true;
}

// Sources in address order: spans without aliases that start or extend a run are meshed
// at once; the lone pairs found on the way follow (also when three quarters of the time
// budget are gone, so a round cut short still makes them); then, with plenty of budget
// left, leaders with short chains.
static void mesh_candidates(unsigned cls, unsigned n, uint64_t t0, mh_pass_t *pass) {
    sort_by_address(n);
    memset(role, ROLE_FREE, n);
    bool at_cap = false;
    unsigned nlone = 0, i = 0;
    for (; i < n && !yield_now(cls, t0, PASS_BUDGET_NS * 3 / 4, pass); i++) {
        mh_span_t *s = cand[i], *lone;
        if (role[i] != ROLE_FREE || s->kind != cls || s->naliases) continue;
        try_t t = pair_source(cls, i, n, &at_cap, &lone);
        if (t == TRY_STOP) return;
        if (t == TRY_MESHED) pass->meshed++;
        if (lone) lone_src[nlone] = (uint16_t)i, lone_dst[nlone++] = lone;
    }
    if (!mesh_lone(cls, nlone, t0, pass, &at_cap) || i < n) {
        pass->truncated = true;
        return;
    }
    if (at_cap || !budget_plentiful()) return;
    for (i = 0; i < n; i++) {
        if (yield_now(cls, t0, PASS_BUDGET_NS, pass)) {
            pass->truncated = true;
            return;
        }
        mh_span_t *s = cand[i];
        if (role[i] != ROLE_FREE || s->kind != cls || !s->naliases || s->naliases > LONG_CHAIN) continue;
        try_t t = pair_leader(cls, i, n, &at_cap);
        if (t == TRY_STOP) return;
        if (t == TRY_MESHED) pass->meshed++;
    }
}

// Rounds of at most MAX_CANDIDATES spans each (gather, sort, pair, mesh) until every
// span that was on the partial list at the start has been looked at once or the time
// budget is spent. Small rounds put the first pairs within a fraction of the budget,
// however long the list; a round's candidates still number enough for the probes to
// find most pairs.
static mh_pass_t mesh_class_locked(unsigned cls, uint64_t t0) {
    mh_pass_t pass = {0, 0, false};
    if (!mh_arena_file_ok()) return pass; // one check of the heap file per pass
    unsigned todo = mh_gh_partial_count(cls);
    while (todo && !pass.truncated) {
        unsigned seen, n = gather(cls, todo < MAX_CANDIDATES ? todo : MAX_CANDIDATES, &seen);
        todo = seen < todo ? todo - seen : 0;
        pass.looked += seen;
        if (!seen) break;
        mesh_candidates(cls, n, t0, &pass);
        if (todo && yield_now(cls, t0, PASS_BUDGET_NS, &pass)) pass.truncated = true;
    }
    // Pairs found: another round (and the fuller destinations) likely holds more.
    if (pass.meshed >= REPASS_PAIRS) pass.truncated = true;
    return pass;
}

mh_pass_t mh_mesh_pass(unsigned cls, uint64_t t0) {
    MH_ASSERT(mh_mesh_class_meshable(cls));
    if (!rng_ready) {
        mh_rng_seed(&rng);
        rng_ready = true;
    }
    mh_gh_class_lock(cls);
    uint64_t start = mh_os_now_ns(); // the pause: how long the class is the pass's
    mh_gh_exclusive_begin(cls);
    mh_pass_t pass = mesh_class_locked(cls, t0);
    mh_gh_exclusive_end(cls);
    mh_gh_class_unlock(cls);
    mh_mstat_pass(mh_os_now_ns() - start, pass.meshed);
    return pass;
}

void mh_mesh_pass_fork_child(void) {
    rng_ready = false;
    budget.counted_ns = 0; // another process: its own mappings
}
