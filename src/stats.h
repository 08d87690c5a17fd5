// stats.h - heap statistics gathered on demand (no counters on the fast paths).
//
// allocated = bytes of slots marked in use (including slots cached in thread vectors,
// which are subtracted) plus large objects; active/dirty/mapped come from the arena;
// resident is this process's PSS from /proc/self/smaps_rollup (RSS double-counts
// meshed pages, PSS does not). Collection takes the arena and list locks briefly.
#ifndef MH_STATS_H
#define MH_STATS_H

#include "common.h"

typedef struct mh_stats_s {
    size_t allocated, active, mapped, dirty, memfd_bytes, resident;
    size_t small_spans, large_objects, threads, regions;
    bool memfd;
} mh_stats_t;

void mh_stats_collect(mh_stats_t *st);
// Writes a human-readable report to fd 2.
void mh_stats_print(void);

#endif
