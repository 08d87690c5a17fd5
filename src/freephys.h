// freephys.h - the mesh.freephys_thread helper (see freephys.c). Each entry point
// returns false when the helper is not running; the caller then does the work itself.
#ifndef MH_FREEPHYS_H
#define MH_FREEPHYS_H

#include "common.h"
#include "span.h"

bool mh_freephys_active(void);
// Starts the thread when the option is on; idempotent.
void mh_freephys_start(void);
// Queues a hole punch of the heap pages behind [start, start+len).
bool mh_freephys_punch(uintptr_t start, size_t len);
// Queues the reset and release of an alias (kind BUSY, off its chain).
bool mh_freephys_release(mh_span_t *alias);
// Asks the thread to give dirty pages beyond the budget back.
bool mh_freephys_purge(void);
// Work items done so far (punches and alias releases).
uint64_t mh_freephys_items_done(void);
// Does all queued work now, in the calling thread.
void mh_freephys_drain(void);
void mh_freephys_fork_prepare(void);
void mh_freephys_fork_parent(void);
void mh_freephys_fork_child(void);
// Starts the thread again in a fork child; after every other child handler.
void mh_freephys_fork_child_helpers(void);

#endif
