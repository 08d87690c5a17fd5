// freephys.h - the mesh.freephys_thread helper (see freephys.c). Each entry point
// returns false when the helper is not running; the caller then does the work itself.
//
// Layer 4 (services).
#ifndef MH_FREEPHYS_H
#define MH_FREEPHYS_H

#include "common.h"

bool mh_freephys_active(void);
// Starts the thread when the option is on; idempotent.
void mh_freephys_start(void);
// Queues a hole punch of the heap pages behind [start, start+len).
bool mh_freephys_punch(uintptr_t start, size_t len);
// Queues a call of fn(arg) behind the work queued so far (an alias release must come
// after the punch of its own pages).
bool mh_freephys_defer(void (*fn)(void *), void *arg);
// Asks the thread to give dirty pages beyond the budget back.
bool mh_freephys_purge(void);
// Work items done so far (punches and deferred calls).
uint64_t mh_freephys_items_done(void);
// Does all queued work now, in the calling thread.
void mh_freephys_drain(void);
void mh_freephys_fork_prepare(void);
void mh_freephys_fork_parent(void);
void mh_freephys_fork_child(void);
// Starts the thread again in a fork child; after every other child handler.
void mh_freephys_fork_child_helpers(void);

#endif
