// settings.h - applies the configuration to the running process: reads the file and
// the environment once (lazily, at the first allocation slow path after libmesh's
// constructor ran, never under an allocator lock), runs the host checks, installs the
// statistics signal, prints verbose output, keeps the info page current, and prints
// statistics at exit.
#ifndef MH_SETTINGS_H
#define MH_SETTINGS_H

#include <stdint.h>

#include "atomic.h"

extern _Atomic int mh_settings_pending; // nonzero: mh_settings_service() has work

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
