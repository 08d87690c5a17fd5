// stats.h - heap statistics gathered on demand (no counters on the fast paths).
//
// allocated = bytes of slots marked in use (minus slots cached in thread vectors)
// plus large objects; active/dirty/mapped come from the arena; resident is this
// process's PSS from /proc/self/smaps_rollup (RSS double-counts meshed pages, PSS
// does not); meshing counters come from the info page. Collection takes the arena and
// thread-list locks briefly; it never allocates.
//
// Layer 7 (runtime).
#ifndef MH_STATS_H
#define MH_STATS_H

#include "common.h"
#include "size_class.h"

typedef struct mh_class_stats_s {
    size_t spans, in_use, partial, full, empty, attached, aliases;
    size_t occupancy[10]; // spans by in-use fraction: [0,10%), [10,20%), ..., [90,100%]
} mh_class_stats_t;

typedef struct mh_stats_s {
    size_t allocated, active, mapped, dirty, memfd_bytes, resident;
    size_t small_spans, large_objects, large_bytes, threads, regions;
    size_t mesh_count, meshed_bytes, meshed_hwm;
    bool memfd;
    mh_class_stats_t cls[MH_NUM_CLASSES];
} mh_stats_t;

// What a collection gathers beyond the cheap counters (arena totals, heap file,
// mesh counters): a walk of every span and thread cache (allocated, per class,
// threads), and this process's PSS (a read of smaps_rollup, which walks every mapping).
enum { MH_STATS_WALK = 1, MH_STATS_PSS = 2, MH_STATS_ALL = 3 };
void mh_stats_collect_some(mh_stats_t *st, int what);
// Everything.
void mh_stats_collect(mh_stats_t *st);
// Writes a report to fd: level 1 totals, level 2 also per size class (attached spans
// count the slots their thread has cached as in use).
void mh_stats_print(int level, int fd);

#endif
