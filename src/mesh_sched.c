// mesh_sched.c - ticks, the background thread and fork-migration steps (see
// mesh_sched.h).
//
// Layer 6 (meshing): mesh, fault, barrier, arena, global_heap, freephys, helper.
// Locking: the pass lock serialises ticks, passes and migration steps (and with them
// the barrier, which is one raiser's). The rate limit's clock and last-tick time are
// atomics; tick state (dry classes, backoff) is written under the pass lock, or by the
// background thread that alone runs ticks once it exists.
#define _GNU_SOURCE
#include "mesh_sched.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "arena.h"
#include "atomic.h"
#include "fault.h"
#include "global_heap.h"
#include "helper.h"
#include "idle_gate.h"
#include "lock.h"
#include "log.h"
#include "mesh.h"
#include "options.h"
#include "os.h"

#define PASS_BUDGET_NS 1000000 // a tick meshes for about 1 ms (the pause bound)
#define CONTINUE_NS 10000000   // a truncated tick continues 10 ms later
#define DRY_MARGIN 8           // new partial spans that make a dry class worth a pass

static mh_lock_t pass_lock = MH_LOCK_INIT;
static _Atomic uint64_t last_pass_ns, last_migrate_ns;
static unsigned next_class, idle_passes;
// A class whose last full sweep (passes that together looked at every span its partial
// list held when the sweep began) found no pair is "dry" until enough new partial spans
// arrive (dry_at: its partial count then, plus one): passes go where pairs can be
// found, and a long list that yields nothing is not swept again and again.
static unsigned dry_at[MH_NUM_CLASSES];
static struct {
    unsigned target, seen; // the list's length when the sweep began; spans looked at since
    size_t meshed;
} sweep[MH_NUM_CLASSES];
static bool tick_more; // the last tick left work (written by the thread that ran it)

// The rate limit's clock (a vDSO read; every comparison uses this one clock).
static uint64_t coarse_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// ---- passes --------------------------------------------------------------------------

// A pass with the scheduler's bookkeeping (pass lock held). A pass that ends a sweep
// without a pair in it is not truncated: there is nothing left to try.
static mh_pass_t class_pass(unsigned cls, uint64_t t0) {
    if (!sweep[cls].target) sweep[cls].target = mh_gh_partial_count(cls) + 1;
    mh_pass_t pass = mh_mesh_pass(cls, t0);
    sweep[cls].seen += pass.looked;
    sweep[cls].meshed += pass.meshed;
    if (pass.meshed) dry_at[cls] = 0;
    if (sweep[cls].seen >= sweep[cls].target || !pass.looked) { // a whole sweep
        if (!sweep[cls].meshed) {
            dry_at[cls] = mh_gh_partial_count(cls) + 1;
            pass.truncated = false;
        }
        sweep[cls].target = sweep[cls].seen = 0;
        sweep[cls].meshed = 0;
    }
    return pass;
}

// ---- the heap file -------------------------------------------------------------------
// The heap moves onto its file (the memfd meshing needs) once it holds mesh.file_from_mib
// MiB, and only while meshing is on: small programs, and any program with meshing off,
// never hold the descriptor. What was allocated before moves onto the file through
// fork migration's steps (it is stale until then, and not meshed).

static void take_file_if_due(void) {
    if (mh_opt[MH_OPT_period_ms] <= 0) return;
    if (mh_arena_active_bytes() >= (size_t)mh_opt[MH_OPT_file_from_mib] << 20) (void)mh_arena_take_file();
}

// mh_mesh_class is for tests and benchmarks: the heap takes its file and moves onto it
// first, whatever its size, so the class can be meshed at once.
size_t mh_mesh_class(unsigned cls) {
    if (!mh_mesh_class_meshable(cls)) return 0;
    (void)mh_arena_take_file();
    mh_mesh_migrate_all();
    if (!mh_fault_ready()) return 0;
    mh_lock(&pass_lock);
    mh_mesh_budget_refresh();
    mh_pass_t pass = class_pass(cls, mh_os_now_ns());
    mh_unlock(&pass_lock);
    return pass.meshed;
}

void mh_mesh_stats(mh_mesh_stats_t *out) {
    size_t heap, limit, program;
    mh_lock(&pass_lock);
    mh_mstat_read(out);
    mh_mesh_vma_stats(&heap, &limit, &program);
    mh_unlock(&pass_lock);
    out->heap_vmas = heap;
    out->vma_limit = limit;
    out->program_vmas = program;
    out->vmas_per_alias_x1000 = out->aliases ? heap * 1000 / out->aliases : 0;
    out->migrating = mh_arena_migration_pending();
}

// ---- fork migration ------------------------------------------------------------------
// After a fork, spans left private on the frozen heap file are moved back onto the
// current one (arena_fork.c) in steps of at most 1 ms, one every 10 ms while work is
// left, from the same free paths that trigger meshing (and the background thread).
// malloc_trim and mesh.compact finish it at once.

#define MIGRATE_EVERY_NS 10000000
#define MIGRATE_BATCH 32
#define DROP_STEP ((size_t)64 << 20) // page tables a fork moved aside: ~1 ms to unmap

// Moves one collected item (repeatedly for a large span, 2 MiB at a time, while the
// budget lasts); the class lock for a meshed leader. Returns the bytes moved.
static size_t migrate_item(const mh_migrant_t *m, uint64_t t0, uint64_t budget_ns) {
    bool leader = m->span && m->kind < MH_NUM_CLASSES;
    size_t total = 0, moved;
    do {
        if (leader) mh_gh_class_lock(m->kind);
        moved = mh_arena_migrate(m);
        if (leader) mh_gh_class_unlock(m->kind);
        mh_mstat_migrated(moved);
        total += moved;
    } while (m->span && !leader && moved && mh_os_now_ns() - t0 <= budget_ns);
    return total;
}

// Pass lock held. Returns when the budget is spent or nothing is left.
static void migrate_locked(uint64_t budget_ns) {
    uint64_t t0 = mh_os_now_ns();
    mh_arena_drop_detached(budget_ns == UINT64_MAX ? SIZE_MAX : DROP_STEP);
    mh_migrant_t batch[MIGRATE_BATCH];
    size_t progress = 1; // bytes moved in this sweep: a sweep that moves nothing ends it
    while (mh_arena_migration_pending() && mh_os_now_ns() - t0 <= budget_ns) {
        bool ended;
        unsigned n = mh_arena_migrate_collect(batch, MIGRATE_BATCH, &ended);
        for (unsigned i = 0; i < n; i++) {
            progress += migrate_item(&batch[i], t0, budget_ns);
            if (mh_os_now_ns() - t0 > budget_ns) return; // the next sweep finds the rest
        }
        if (!ended && n) continue;
        // A sweep ended (or only page tables are left to drop). One that moved nothing
        // although spans were left (a mapping or the barrier keeps failing) ends the
        // step, and later steps come rarely.
        size_t dropped = mh_arena_drop_detached(DROP_STEP);
        if (!dropped && !progress) {
            mh_arena_migration_stalled();
            return;
        }
        progress = dropped;
    }
}

static void migrate_step(uint64_t budget_ns) {
    if (!mh_fault_ready()) return;
    mh_lock(&pass_lock);
    migrate_locked(budget_ns);
    mh_unlock(&pass_lock);
}

static void migrate_maybe(void) {
    if (!mh_arena_migration_pending()) return;
    uint64_t now = coarse_now_ns(), last = mh_load_relaxed(&last_migrate_ns);
    uint64_t every = mh_arena_migration_idle() ? (uint64_t)1000000000 : MIGRATE_EVERY_NS;
    if (now - last < every) return;
    if (!mh_cas_seqcst(&last_migrate_ns, &last, now)) return;
    migrate_step(PASS_BUDGET_NS);
}

void mh_mesh_migrate_all(void) {
    if (mh_arena_migration_pending()) migrate_step(UINT64_MAX);
}

// Every class until a pass over it ends with nothing left to try, in passes of at most
// the usual budget each, so a long compaction still never holds a class for more than
// about a millisecond at a time.
size_t mh_mesh_compact(bool any_size) {
    if (any_size) (void)mh_arena_take_file(); // mesh.compact asks for meshing, whatever the size
    else take_file_if_due();
    mh_mesh_migrate_all(); // meshable again first
    size_t total = 0;
    if (!mh_fault_ready()) return 0;
    mh_lock(&pass_lock);
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        if (!mh_mesh_class_meshable(c)) continue;
        for (unsigned round = 0; round < 100000; round++) {
            mh_mesh_budget_refresh();
            mh_pass_t pass = class_pass(c, mh_os_now_ns());
            total += pass.meshed;
            if (!pass.truncated) break;
            // Let waiting frees and faulting writers in between passes.
            mh_unlock(&pass_lock);
            mh_lock(&pass_lock);
        }
    }
    mh_unlock(&pass_lock);
    mh_store_relaxed(&last_pass_ns, coarse_now_ns());
    return total;
}

// ---- ticks ---------------------------------------------------------------------------

// The class to mesh next: the meshable class with the most partial spans (where
// fragmentation is), the class just freed into on a tie, else round-robin. Classes in
// done (bit per class) already had their pass this tick.
static bool worth_a_pass(unsigned k, uint64_t done) {
    if (!mh_mesh_class_meshable(k) || (done >> k & 1)) return false;
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

// Stale spans (on private memory or a frozen file) are not meshed, so a sweep made
// while a migration was pending can find a class dry that is full of pairs once its
// spans are current - and with the program idle, no new partial spans would ever wake
// it. When a migration completes, every class gets a fresh sweep. Pass lock held.
static void wake_after_migration(void) {
    static bool was_pending;
    bool pending = mh_arena_migration_pending();
    if (was_pending && !pending) {
        memset(dry_at, 0, sizeof dry_at);
        idle_passes = 0;
    }
    was_pending = pending;
}

// One tick. One class at a time: passes over the classes most worth it, one after
// another, all within one budget (a class whose list was exhausted early leaves the
// rest of the budget to the next). *more: work is left that a tick soon should do.
static size_t mesh_tick(unsigned hint, bool *more) {
    size_t meshed = 0;
    *more = false;
    if (!mh_fault_ready()) return 0;
    mh_lock(&pass_lock);
    mh_mesh_budget_refresh();
    wake_after_migration();
    uint64_t t0 = mh_os_now_ns(), done = 0;
    if (mh_opt[MH_OPT_class_at_a_time]) {
        for (unsigned cls; (cls = pick_class(hint, done)) < MH_NUM_CLASSES; hint = MH_NUM_CLASSES) {
            done |= (uint64_t)1 << cls;
            mh_pass_t pass = class_pass(cls, t0);
            meshed += pass.meshed;
            if (pass.truncated) *more = true;
            if (*more || mh_os_now_ns() - t0 > PASS_BUDGET_NS) break;
        }
        if (!*more) *more = pick_class(MH_NUM_CLASSES, done) < MH_NUM_CLASSES && meshed;
    } else {
        for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
            if (!mh_mesh_class_meshable(c)) continue;
            mh_pass_t pass = class_pass(c, mh_os_now_ns()); // each class its own budget
            meshed += pass.meshed;
            *more |= pass.truncated;
        }
    }
    mh_unlock(&pass_lock);
    return meshed;
}

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

static _Atomic int bg_state;            // 0 no background thread, 1 starting or running
static _Atomic uint32_t bg_free_flushes; // free-path ticks skipped since the thread last looked
static void auto_background(void);

void mh_mesh_maybe(unsigned hint) {
    if (mh_load_relaxed(&bg_state)) { // the thread meshes and migrates: frees never pause
        mh_fetch_add_relaxed(&bg_free_flushes, 1);
        return;
    }
    migrate_maybe(); // also with meshing off: it gives the frozen file's memory back
    int64_t period = mh_opt[MH_OPT_period_ms];
    if (period <= 0) return;
    uint64_t now = coarse_now_ns(), last = mh_load_relaxed(&last_pass_ns);
    // A tick that found nothing backs off: up to 32 periods between ticks.
    uint64_t wait = (uint64_t)period * 1000000u << (idle_passes < 5 ? idle_passes : 5);
    if (now - last < wait) return;
    if (!mh_cas_seqcst(&last_pass_ns, &last, now)) return; // another thread runs it
    take_file_if_due();
    auto_background();
    run_tick(hint, now);
}

// ---- background thread ---------------------------------------------------------------
// With mesh.background_thread, meshing and page release also happen while the program
// is idle (no frees to trigger them): every period (100 ms when meshing is off) the
// thread runs a mesh tick and returns dirty pages; while ticks leave work it runs the
// next one after BG_CONTINUE_NS while the program is idle, CONTINUE_NS while it is
// busy freeing. Each tick waits for the idle gate (idle_gate.c: a SCHED_IDLE thread
// that answers when a core has time nothing else wants), so on a loaded machine a
// backlog waits for idle time instead of taking it from the program; the tick itself
// runs at normal priority, because it holds locks and the write barrier that program
// threads (and fork) wait on (a tick holds one class for at most about 1 ms, and a
// program thread that needs that class meanwhile gives its core to the tick).
// "true" starts it at startup and again in a fork child (which has no threads but the
// forking one). "auto" (the default) starts it from a mesh tick once the heap holds
// AUTO_BACKGROUND_BYTES: the small, short-lived programs that make up most processes
// under a system-wide preload never get a thread, the servers that fragment do; a fork
// child starts its own only when it too runs a tick with a heap that large.

#define BG_CONTINUE_NS 200000
#define GATE_WAIT_NS 100000000ull // between checks for option changes and process end
#define AUTO_BACKGROUND_BYTES ((size_t)64 << 20)
// Busy: at least BUSY_FLUSHES free-path ticks skipped (each after tens of frees) since
// the last tick; a timer's few frees keep a program idle.
#define BUSY_FLUSHES 16

static bool bg_failed; // auto: a start failed (seccomp, thread limits); quiet, no retry

// Sleeps until the next tick is due: a period, backed off like the free-path ticks when
// ticks find nothing; with work left 0.2 ms while the program is idle, 10 ms while it is
// busy freeing (its own frees and allocations come first, and each mesh costs the
// program's threads a TLB shootdown).
static void bg_sleep(int64_t period) {
    uint64_t ns = (period > 0 ? (uint64_t)period : 100) * 1000000u;
    bool busy = mh_exchange_relaxed(&bg_free_flushes, 0) >= BUSY_FLUSHES;
    if (period > 0 && tick_more) ns = busy ? CONTINUE_NS : BG_CONTINUE_NS;
    else if (period > 0) ns <<= idle_passes < 5 ? idle_passes : 5;
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

// Waits until a core has had idle time (the idle gate); false when the thread should
// leave meanwhile. Without a gate thread (it could not start) the thread drops to
// SCHED_IDLE itself, the weaker fallback: its locks can then wait on idle time.
static bool bg_await_idle(uint64_t *alone_check) {
    static bool self_idle;
    for (;;) {
        if (!mh_opt[MH_OPT_background_thread] || mh_helper_alone(alone_check)) return false;
        if (self_idle) return true;
        mh_gate_t g = mh_idle_gate_wait(GATE_WAIT_NS);
        if (g == MH_GATE_OPEN) return true;
        if (g == MH_GATE_NONE) {
            struct sched_param idle = {0};
            pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle); // lowering needs no privilege
            self_idle = true;
        }
    }
}

static void *background_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "libmesh-bg", 0, 0, 0); // what top and ps show for it
    uint64_t alone_check = 0;
    for (;;) {
        bg_sleep(mh_opt[MH_OPT_period_ms]);
        if (!bg_await_idle(&alone_check)) break;
        take_file_if_due();
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
    if (!mh_cas_seqcst(&bg_state, &expected, 1)) return;
    if (!start_thread())
        mh_degraded(MH_DEG_THREAD, "mesh.background_thread: cannot start the thread; meshing stays on free paths");
}

// From a mesh tick: only asks for the thread. A tick runs inside free, in the middle
// of cache and bitmap updates, and pthread_create may call malloc and free; the thread
// is started by mh_mesh_start_wanted at the end of the free, where that is safe.
_Atomic bool mh_mesh_bg_wanted;

static void auto_background(void) {
    if (mh_opt[MH_OPT_background_thread] != MH_AUTO || bg_failed || mh_load_relaxed(&bg_state)) return;
    if (mh_arena_active_bytes() >= AUTO_BACKGROUND_BYTES) mh_store_release(&mh_mesh_bg_wanted, true);
}

void mh_mesh_start_wanted(void) {
    if (!mh_exchange_seqcst(&mh_mesh_bg_wanted, false)) return;
    int expected = 0;
    if (mh_cas_seqcst(&bg_state, &expected, 1) && !start_thread()) {
        bg_failed = true;
        mh_degraded_quiet(MH_DEG_THREAD); // auto: quiet (seccomp sandboxes, thread limits)
    }
}

// ---- fork ----------------------------------------------------------------------------

static bool bg_restart; // fork child: the parent had the thread and "true" asks for one

void mh_mesh_fork_child(void) {
    bg_restart = mh_load_relaxed(&bg_state) && mh_opt[MH_OPT_background_thread] == 1;
    mh_store_relaxed(&bg_state, 0); // the parent's thread did not come along
    mh_idle_gate_fork_child();
    mh_lock_reset(&pass_lock);
    tick_more = false;
    mh_store_relaxed(&mh_mesh_bg_wanted, false);
    mh_mesh_pass_fork_child();
}

// Last of the fork child handlers: until the arena's has run, the child's meshed spans
// still share pages with the parent, and a thread started earlier would run (and
// allocate) on them.
void mh_mesh_fork_child_helpers(void) {
    if (bg_restart) mh_mesh_start_background();
    bg_restart = false;
}
