// mesh.h - meshing: merges detached spans of one size class whose live objects sit at
// non-overlapping slots onto one physical span, remapping the other's virtual pages.
//
// A tick (from a free, or the background thread once the heap is large) runs passes
// over the classes most worth it within about 1 ms. A pass takes one class, under that
// class's lock and with its bitmaps exclusive (free sections drained), and in rounds
// of up to 1024 spans finds pairs with the split mesher (shuffle the candidates,
// halve, probe t = 64 partners each) and meshes them: write-protect the
// source and its aliases, copy live objects to the same offsets in the destination,
// map every source virtual range onto the destination's file pages, punch the
// source's file pages, release the barrier. Aliases are counted against a VMA budget
// derived from vm.max_map_count; at the budget meshing pauses (one warning) and
// resumes when aliases are reclaimed. Nothing here aborts: a failing mprotect or mmap
// unwinds the pair and stops the pass.
#ifndef MH_MESH_H
#define MH_MESH_H

#include "common.h"
#include "span.h"

// Only classes up to this size are meshed: larger ones hold stdio and directory
// buffers that libc fills with its own (not interposable) system calls, and system
// calls into smaller objects are bounced (wrap_io.c) within this size.
#define MH_MESH_MAX_SIZE 2048

// Runs a pass if mesh.period_ms has elapsed since the last one (cheap otherwise). hint:
// the class just freed into (meshed first when classes go one at a time), or
// MH_NUM_CLASSES for round-robin.
void mh_mesh_maybe(unsigned hint);
// Runs a full pass over every class now; returns the number of pairs meshed.
size_t mh_mesh_compact(void);
// Finishes the migration of heap pages that forks left copy-on-write (also with
// meshing off: it gives the frozen heap file's memory back).
void mh_mesh_migrate_all(void);
// Meshes one class now (tests, benchmarks); returns the pairs meshed.
size_t mh_mesh_class(unsigned cls);

// An alias's own live set became empty: reset it early (takes the class lock).
void mh_mesh_alias_emptied(unsigned cls, mh_span_t *alias, uint32_t gen);
// Marks the aliases of an empty leader that is leaving its class (class lock held), so
// a racing mh_mesh_alias_emptied leaves them to mh_mesh_release_aliases.
void mh_mesh_detach_aliases(mh_span_t *leader);
// Resets every alias of leader (empty, off every list) to its own pages and frees them.
void mh_mesh_release_aliases(mh_span_t *leader);
// Releases one alias (kind BUSY, off its chain) now; the freephys thread's work item.
void mh_mesh_release_alias_now(mh_span_t *a);

// Write barrier support for the fault handler and the syscall wrappers: the current
// epoch (odd while a pair is being meshed), whether addr lies in a range protected by
// the pair being meshed, and a wait for the epoch to move on.
uint64_t mh_mesh_epoch(void);
bool mh_mesh_protects(uintptr_t addr);
void mh_mesh_wait(uint64_t epoch);

typedef struct mh_mesh_stats_s {
    uint64_t passes, pairs, aliases, budget;
    uint64_t pause_p50_ns, pause_p99_ns, pause_max_ns;
    uint64_t migrated;  // bytes moved back onto the heap file after forks
    uint64_t migrating; // 1 while spans a fork left private remain
} mh_mesh_stats_t;
void mh_mesh_stats(mh_mesh_stats_t *out);
// Live aliases (virtual spans meshed onto another span's pages).
uint64_t mh_mesh_alias_count(void);

// Starts the background meshing thread (mesh.background_thread); idempotent.
void mh_mesh_start_background(void);
// Set when mesh.background_thread = auto wants the thread started; the free path calls
// mh_mesh_start_wanted once its own work is done (pthread_create may allocate).
extern _Atomic bool mh_mesh_bg_wanted;
void mh_mesh_start_wanted(void);
void mh_mesh_fork_child(void);
// Starts the background thread again in a fork child ("true"); after every other
// child handler.
void mh_mesh_fork_child_helpers(void);

#endif
