// mesh_stats.h - the mesher's counters: live aliases, meshed bytes on the info page,
// passes and pairs, the pause histogram, bytes moved back after forks.
//
// Layer 4 (services): written by meshing, alias release and fork migration; read by
// statistics, mesh_mallctl and the VMA budget.
// Locking: the alias count and the info-page counters are atomic; the pass counters
// and the pause histogram are written under the mesh pass lock, and mh_mesh_stats()
// (mesh_sched.c) reads them under it.
#ifndef MH_MESH_STATS_H
#define MH_MESH_STATS_H

#include "common.h"
#include "span.h"

typedef struct mh_mesh_stats_s {
    uint64_t passes, pairs, aliases;
    uint64_t heap_vmas, vma_limit, program_vmas; // the VMA budget (mesh.c)
    uint64_t vmas_per_alias_x1000;               // heap VMAs per meshed span, in thousandths
    uint64_t pause_p50_ns, pause_p99_ns, pause_max_ns;
    uint64_t migrated;  // bytes moved back onto the heap file after forks
    uint64_t migrating; // 1 while spans a fork left private remain
} mh_mesh_stats_t;

// Span s became an alias (add) or stopped being one: the alias count and the info
// page's mesh count and meshed bytes (with their high-water mark).
void mh_mstat_alias(const mh_span_t *s, bool add);
// Live aliases (virtual spans meshed onto another span's pages).
uint64_t mh_mstat_aliases(void);
// A pass over one class took ns and meshed pairs (pass lock held).
void mh_mstat_pass(uint64_t ns, size_t pairs);
void mh_mstat_migrated(size_t bytes);
// Fills passes, pairs, aliases, pauses and migrated (pass lock held).
void mh_mstat_read(mh_mesh_stats_t *out);

#endif
