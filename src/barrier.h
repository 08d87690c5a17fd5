// barrier.h - the write barrier: the ranges of the heap that are read-only while their
// pages are being moved (a mesh, or a fork migration), and the epoch that tells a
// waiting thread when that is over.
//
// Layer 3 (memory): below meshing and fork migration, which both raise it; the fault
// handler (fault.c) and the system-call wrappers read it.
// Invariants: the epoch is odd exactly while ranges are protected; at most one raiser
// at a time (callers hold the mesh pass lock). Ranges that hold a thread's alternate
// signal stack are never protected: the fault handler runs on that stack, and the
// kernel could not write its signal frame into a read-only page.
// Locking: the epoch and the ranges are written by the one raiser and read lock-free
// (acquire) by faulting threads; the alternate-stack registry has a lock of its own.
#ifndef MH_BARRIER_H
#define MH_BARRIER_H

#include "common.h"

#define MH_BARRIER_MAX 256 // ranges raised at once: a span and every alias of it

// Write-protects the n ranges [start[i], start[i]+len[i]) and makes the epoch odd.
// False (nothing protected) when n is too large, a range holds an alternate signal
// stack, or mprotect fails.
bool mh_barrier_raise(unsigned n, const uintptr_t *start, const size_t *len);
// Ends the barrier: unprotect makes the ranges writable again first (a failed move;
// a completed one has remapped them writable already). Wakes every waiter. Nothing
// when it is not up (the raiser's own write lowered it already).
void mh_barrier_lower(bool unprotect_all);
// [lo, lo + len) (a range raised before) was left read-only because mprotect refused
// to lift the protection. The caller may map it again (a fresh mapping is writable)
// and then forget it.
bool mh_barrier_is_stuck(uintptr_t lo, size_t len);
void mh_barrier_forget_stuck(uintptr_t lo, size_t len);
// The epoch now (acquire): odd while ranges are protected.
uint32_t mh_barrier_epoch(void);
// addr lies in a range the current barrier protects.
bool mh_barrier_protects(uintptr_t addr);
// Waits until the epoch is no longer e (returns at once when e is even).
void mh_barrier_wait(uint32_t e);
// The calling thread raised the barrier that is up now. It cannot wait for itself: a
// write of its own into a protected range (a fork handler of another library's, run
// while the fork keeps the heap protected) lowers the barrier instead.
bool mh_barrier_mine(void);

// addr lies in a range mprotect refused to make writable again after a barrier: 1 when
// it is writable now (the faulting write can be retried), -1 when it still is not (the
// mesher maps such a range afresh: the writer waits a little and retries), 0 when addr
// is in no such range.
int mh_barrier_unstick(uintptr_t addr);

// sigaltstack bookkeeping: the calling thread's alternate stack is [lo, lo+size) (or
// none any more); only stacks inside the heap are recorded.
void mh_barrier_note_altstack(uintptr_t lo, size_t size, bool enable);
// Some recorded alternate stack overlaps [lo, hi).
bool mh_barrier_altstack_in(uintptr_t lo, uintptr_t hi);
void mh_barrier_fork_child(void);

#endif
