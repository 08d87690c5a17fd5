// fault.h - the write barrier's SIGSEGV/SIGBUS handler, and the program's own handlers
// for those two signals.
//
// Layer 4 (services): reads the barrier (barrier.h) and the arena's bounds.
// While a span is being meshed or migrated its pages are read-only; a thread that
// writes there faults, the handler sees the address is protected by the barrier,
// waits for the epoch to move on and returns, so the store retries against the new
// mapping. Every other fault reaches the program's handler exactly as the kernel would
// have delivered it; with no handler (SIG_DFL or SIG_IGN) the original signal kills
// the process with its normal status and core. sigaction()/signal() are interposed
// (wrap_posix.c) so the program installs and reads back its own handlers.
// Locking: one lock serialises our install with the program's sigaction calls for
// SIGSEGV/SIGBUS; the handler itself reads the program's actions without locks.
#ifndef MH_FAULT_H
#define MH_FAULT_H

#include <signal.h>

#include "common.h"

// Installs the handler (idempotent), then checks it is still the kernel's: false once
// a raw rt_sigaction replaced it (meshing and fork migration stop for good, with one
// warning). Nothing is installed before the first mesh or migration asks for this.
bool mh_fault_ready(void);
// The interposed sigaction: SIGSEGV and SIGBUS are kept for the program once our
// handler is in; other signals pass through with those two taken out of sa_mask.
int mh_fault_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
// Our handler is installed (from the first mesh pass on).
bool mh_fault_installed(void);
// Copies n bytes of program memory that may be a bad pointer; false (nothing or part
// copied) if it faulted, or if our handler is not installed yet.
bool mh_fault_copy(void *dst, const void *src, size_t n);
void mh_fault_fork_child(void);

#endif
