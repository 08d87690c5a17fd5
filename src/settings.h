// settings.h - applies the configuration to the running process: reads the file and
// the environment once (lazily, at the first allocation slow path after libmesh's
// constructor ran, never under an allocator lock), runs the host checks, installs the
// statistics signal, prints verbose output, keeps the info page current, and prints
// statistics at exit.
//
// Layer 7 (runtime): config_file, options, checks, stats, mesh_sched, freephys.
// Locking: work for mh_settings_service is a word of MH_PENDING_* flags, set and taken
// atomically (a signal handler sets one).
#ifndef MH_SETTINGS_H
#define MH_SETTINGS_H

#include <stdint.h>

#include "atomic.h"
#include "common.h"

enum {
    MH_PENDING_LOAD = 1,    // read the file and the environment
    MH_PENDING_STATS = 2,   // the statistics signal arrived: dump
    MH_PENDING_PUBLISH = 4, // copy the options to the info page once it exists
};
extern _Atomic int mh_settings_work MH_HIDDEN; // MH_PENDING_* flags

// mh_settings_service() has work (one relaxed load: on every slow path).
MH_INLINE bool mh_settings_pending(void) { return mh_load_relaxed(&mh_settings_work) != 0; }

// Called from allocation slow paths; cheap when there is nothing to do.
void mh_settings_service(void);
// Called once from libmesh's constructor: from now on the configuration may be read.
void mh_settings_allow(void);
// Applies the effect of an option changed through mesh_mallctl (e.g. stats.signal).
void mh_settings_changed(int id, int64_t before);
// Re-publishes the options after a change through mesh_mallctl.
void mh_settings_publish(void);
// The configuration file that was read (or would have been).
const char *mh_settings_conf_path(void);

#endif
