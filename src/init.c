// init.c - lazy, re-entrancy-safe initialisation and the fork handlers (see init.h).
//
// The first malloc may come from ld.so, dlsym, libstdc++'s static init or another
// library's constructor, before our own constructors ran, so initialisation is done
// on demand by whichever thread gets there first. It never calls libc's allocator
// or stdio. Fork handlers take every allocator lock in rank order.
//
// Layer 7 (runtime): the top of the allocator; it calls every module's init and fork
// handlers in order, and nothing below calls it (the slow paths in alloc.c do).
#include "init.h"

#include <pthread.h>
#include <sched.h>

#include "arena.h"
#include "atomic.h"
#include "barrier.h"
#include "freephys.h"
#include "global_heap.h"
#include "helper.h"
#include "fault.h"
#include "mesh_sched.h"
#include "mesh_stats.h"
#include "os.h"
#include "settings.h"
#include "size_class.h"
#include "thread_heap.h"

enum { STATE_UNINIT = 0, STATE_BOOTSTRAP = 1, STATE_READY = 2 };

static _Atomic int init_state;
static __thread int init_owner MH_TLS_IE;

static void fork_prepare(void) {
    mh_freephys_drain(); // no queued page work crosses the fork
    mh_tlh_fork_prepare();
    mh_gh_fork_prepare();
    // A lost heap file may need the barrier to copy the heap safely: ready it first.
    bool barrier = mh_arena_file_lost() && mh_fault_ready();
    mh_arena_fork_prepare(mh_mstat_aliases() != 0, barrier);
    mh_freephys_fork_prepare(); // its queue lock is the innermost lock
}

static void fork_parent(void) {
    mh_arena_fork_parent();
    mh_gh_fork_parent();
    mh_tlh_fork_parent();
    mh_freephys_fork_parent();
}

static void fork_child(void) {
    mh_arena_canary_mark();
    mh_helper_fork_child(); // before any helper is started again
    mh_barrier_fork_child();
    mh_fault_fork_child();
    mh_mesh_fork_child();
    mh_arena_fork_child();
    mh_gh_fork_child();
    mh_tlh_fork_child();
    mh_freephys_fork_child();
    // Helper threads last: before mh_arena_fork_child the child's meshed spans still
    // share pages with the parent, and a helper would run (and allocate) on them.
    mh_mesh_fork_child_helpers();
    mh_freephys_fork_child_helpers();
}

// No prepare handler ran: the heap file is still shared with the parent, which goes on
// writing it. The child takes a copy of the heap as it is now (the best there is: the
// parent's writes since the clone may be in it) and carries on like a fork child.
void mh_init_raw_fork_child(void) {
    if (!mh_arena_canary_wiped()) return;
    mh_arena_raw_fork_copy();
    fork_child();
}

static void init_once(void) {
    init_owner = 1;
    mh_size_class_init();
    mh_gh_init();
    mh_store_release(&init_state, STATE_BOOTSTRAP); // re-entrant calls may allocate now
    mh_tlh_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    init_owner = 0;
    mh_store_release(&init_state, STATE_READY); // pairs with the acquire loads below
}

int mh_init_ensure(void) {
    int st = mh_load_acquire(&init_state);
    if (MH_LIKELY(st == STATE_READY)) return MH_INIT_READY;
    if (init_owner) return MH_INIT_BOOTSTRAP;
    int expected = STATE_UNINIT;
    if (mh_cas_seqcst(&init_state, &expected, STATE_BOOTSTRAP)) {
        init_once();
        return MH_INIT_READY;
    }
    while (mh_load_acquire(&init_state) != STATE_READY) sched_yield();
    return MH_INIT_READY;
}

// Initialise at load time too, so the first allocation of a program does not pay for
// it; the lazy path above still covers callers that run before this constructor.
// The configuration is read from here on, at the next allocation slow path - or now,
// when the program allocated before this constructor ran (C++ static init, another
// library's constructor) and might not reach a slow path again soon.
__attribute__((constructor)) static void mh_init_at_load(void) {
    (void)mh_init_ensure();
    mh_settings_allow();
    if (mh_arena_in_use()) mh_settings_service();
}
