// barrier.h - the write barrier's fault handler and the program's own SIGSEGV/SIGBUS
// handlers.
//
// While a span is being meshed its pages are read-only; a thread that writes there
// faults, the handler sees the address is being meshed, waits for the pair to finish
// (futex on the mesh epoch) and returns so the store retries against the new mapping.
// Every other fault reaches the program's handler exactly as the kernel would have
// delivered it; with no handler (SIG_DFL or SIG_IGN) the original signal kills the
// process with its normal status and core. sigaction()/signal() are interposed so the
// program installs and reads back its own handlers for these two signals.
#ifndef MH_BARRIER_H
#define MH_BARRIER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Installs the handler (once, idempotent). Nothing is installed until the first pass.
void mh_barrier_install(void);
// The interposed sigaction for SIGSEGV and SIGBUS; other signals pass through.
int mh_barrier_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
// False when SIGSEGV or SIGBUS no longer reaches our handler (a raw rt_sigaction).
bool mh_barrier_intact(void);
// Our handler is installed (from the first mesh pass on).
bool mh_barrier_installed(void);
// Copies n bytes of program memory that may be a bad pointer; false (nothing or part
// copied) if it faulted, or if our handler is not installed yet.
bool mh_barrier_copy(void *dst, const void *src, size_t n);
// sigaltstack bookkeeping: the calling thread's alternate stack is [lo, lo+size) (or
// none); spans that overlap a recorded stack in the heap must never be protected.
void mh_barrier_note_altstack(uintptr_t lo, size_t size, bool enable);
bool mh_barrier_altstack_in(uintptr_t lo, uintptr_t hi);
void mh_barrier_fork_child(void);

#endif
