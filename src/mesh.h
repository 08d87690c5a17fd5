// mesh.h - meshing: merges detached spans of one size class whose live objects sit at
// non-overlapping slots onto one physical span, remapping the other's virtual pages.
//
// Layer 6 (meshing): the class bins, alias chains, the barrier and the arena.
// A pass takes one class, under that class's lock and with its bitmaps exclusive (free
// sections drained), and in rounds of up to 1024 spans finds pairs (each source tries
// the partners that extend a neighbouring alias, then t = 64 random ones) and meshes
// them:
// write-protect the source and its aliases, copy live objects to the same offsets in
// the destination, map every source virtual range onto the destination's file pages,
// punch the source's file pages, release the barrier. Sources are paired so that the
// aliases they become continue each other's mappings (fewer VMAs), and every mesh is
// checked against a VMA budget derived from vm.max_map_count and the program's own
// mappings; at the budget only meshes that cost no VMA go on (one warning), and the
// rest resumes when aliases are reclaimed. Nothing here aborts: a failing mprotect or
// mmap unwinds the pair and stops the pass. When passes run is mesh_sched.c's business.
// Locking: the caller holds the mesh pass lock (one pass, and one barrier, at a time).
#ifndef MH_MESH_H
#define MH_MESH_H

#include "common.h"

// Only classes up to this size are meshed: larger ones hold stdio and directory
// buffers that libc fills with its own (not interposable) system calls, and system
// calls into smaller objects are bounced (wrap_io.c) within this size.
#define MH_MESH_MAX_SIZE 2048

// What one pass did: pairs meshed, and whether it stopped with work left (its time
// budget ran out, or it meshed enough that another shuffle likely finds more).
typedef struct mh_pass_s {
    size_t meshed;
    unsigned looked; // spans of the class's partial list it looked at
    bool truncated;
} mh_pass_t;

// One pass over class cls within the budget that started at t0 (a tick's classes share
// one budget). Pass lock held; the fault handler installed and intact.
mh_pass_t mh_mesh_pass(unsigned cls, uint64_t t0);
// The class takes part in meshing at all.
bool mh_mesh_class_meshable(unsigned cls);
// Recounts the program's mappings for the VMA budget when that is due (pass lock held,
// no class lock: it reads /proc/self/maps).
void mh_mesh_budget_refresh(void);
// The heap's VMAs, the most the budget allows it, and the program's own mappings at the
// last count of /proc/self/maps (counted now if never yet). Pass lock held.
void mh_mesh_vma_stats(size_t *heap, size_t *limit, size_t *program);
// Fork child: a fresh seed for the candidate shuffle.
void mh_mesh_pass_fork_child(void);

#endif
