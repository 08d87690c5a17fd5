// mesh_sched.h - when meshing and fork migration run: ticks from the free path, the
// background thread, explicit compaction, and the statistics they keep.
//
// Layer 6 (meshing): mesh, fault, arena (migration), helper.
// A tick (from a free, or from the background thread once the heap is large) runs
// passes over the classes most worth it within about 1 ms. After a fork, spans left
// copy-on-write are moved back onto the heap file in steps of at most 1 ms.
// Locking: one tick, pass or migration step at a time (the pass lock); a free reaches
// it at most once a period, through the rate limit's compare-and-swap, and never once
// the background thread runs.
#ifndef MH_MESH_SCHED_H
#define MH_MESH_SCHED_H

#include "common.h"
#include "mesh_stats.h"

// Runs a tick if mesh.period_ms has elapsed since the last one (cheap otherwise). hint:
// the class just freed into (meshed first when classes go one at a time), or
// MH_NUM_CLASSES for none. Called by the free paths once their own work is done.
void mh_mesh_maybe(unsigned hint);
// Meshes every class until no pass finds more (and finishes fork migration first);
// returns the pairs meshed. any_size: take the heap file now even if the heap is
// smaller than mesh.file_from_mib (mesh.compact; malloc_trim keeps the threshold).
size_t mh_mesh_compact(bool any_size);
// Finishes the migration of heap pages that forks left copy-on-write (also with
// meshing off: it gives the frozen heap file's memory back).
void mh_mesh_migrate_all(void);
// Meshes one class now (tests, benchmarks); returns the pairs meshed.
size_t mh_mesh_class(unsigned cls);
// The mesher's statistics, with the VMA budget and the migration state.
void mh_mesh_stats(mh_mesh_stats_t *out);

// Starts the background meshing thread (mesh.background_thread); idempotent.
void mh_mesh_start_background(void);
// Set when mesh.background_thread = auto wants the thread started; the free path calls
// mh_mesh_start_wanted once its own work is done (pthread_create may allocate).
extern _Atomic bool mh_mesh_bg_wanted MH_HIDDEN;
void mh_mesh_start_wanted(void);

// Fork child: resets the scheduler (the parent's thread and any pass in progress did
// not come along), and starts the thread again ("true") after every other child
// handler.
void mh_mesh_fork_child(void);
void mh_mesh_fork_child_helpers(void);

#endif
