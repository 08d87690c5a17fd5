// init.h - process-wide initialisation as a small state machine.
//
// UNINIT -> BOOTSTRAP (tables ready; the initialising thread may re-enter malloc, e.g.
// from pthread_key_create or pthread_atfork, and is served by the global paths) ->
// READY. Any thread can trigger it; others wait. Nothing here runs on the fast path:
// an uninitialised process simply has empty thread vectors.
//
// Layer 7 (runtime).
#ifndef MH_INIT_H
#define MH_INIT_H

#include "arena.h"
#include "common.h"

enum { MH_INIT_READY = 0, MH_INIT_BOOTSTRAP = 1 };

// Initialises the library if needed; returns MH_INIT_READY, or MH_INIT_BOOTSTRAP when
// called re-entrantly from inside initialisation.
int mh_init_ensure(void);

// A child made without fork handlers (a raw clone system call, _Fork) still maps the
// parent's heap file shared. The allocator's slow paths check the arena's fork canary
// (mh_fork_canary, arena.h), which such a child sees zeroed: one load.
void mh_init_raw_fork_child(void);
#define MH_CHECK_RAW_FORK()                                                               \
    do {                                                                                   \
        if (MH_UNLIKELY(*mh_fork_canary == 0)) mh_init_raw_fork_child();                  \
    } while (0)

#endif
