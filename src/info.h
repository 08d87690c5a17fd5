// info.h - the heap's public info page: the first page of the arena's memfd holds
// counters and the options in effect, so `meshctl stats PID` can read them through
// /proc/PID/fd without signalling or stopping the process.
//
// Layer 2 (primitives).
//
// Written by the owning process only (counters atomically); readers may see a
// slightly stale snapshot. Layout is versioned by magic.
#ifndef MH_INFO_H
#define MH_INFO_H

#include "atomic.h"
#include "common.h"

#define MH_INFO_MAGIC "libmesh-info-v1"
#define MH_INFO_MAX_OPTS 32

typedef struct mh_info_s {
    char magic[16];
    uint32_t nopts;
    // Bit k: degradation k (mh_degrade_t, log.h) in effect, or happened for the permanent
    // ones; log.c mirrors its mask here. It was the spare word `pad`, zero in older
    // libraries, so the layout and the magic are unchanged.
    _Atomic uint32_t degraded;
    _Atomic uint64_t mesh_count;   // meshes performed
    _Atomic uint64_t meshed_bytes; // bytes currently shared by meshing
    _Atomic uint64_t meshed_hwm;   // high-water mark of meshed_bytes
    int64_t options[MH_INFO_MAX_OPTS];
    uint8_t sources[MH_INFO_MAX_OPTS]; // mh_opt_src_t
    char conf_path[256];
} mh_info_t;

_Static_assert(sizeof(mh_info_t) <= 4096, "the info page is one page");

#endif
