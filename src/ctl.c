// ctl.c - mesh_mallctl, mesh_usable_size and mesh_in_bounds (include/mesh.h).
//
// Names resolve in order: "version", the statistics table, the actions, then every
// option by its key (read and write; a write takes precedence over file and
// environment). Values are computed on demand; nothing is counted on fast paths.
//
// Layer 8 (edges).
#include "../include/mesh.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "common.h"
#include "mesh_sched.h"
#include "options.h"
#include "settings.h"
#include "stats.h"
#include "str.h"

// Statistics: 8-byte counters of the heap statistics or of the mesher's. A heap
// statistic gathers only what it needs (a span walk, a read of PSS): monitoring that
// polls stats.memfd_bytes must not walk a heap of millions of objects each time.
enum { FROM_HEAP, FROM_MESH };
#define HEAP(n, field, what) {n, FROM_HEAP, what, offsetof(mh_stats_t, field)}
#define MESH(n, field) {n, FROM_MESH, 0, offsetof(mh_mesh_stats_t, field)}
static const struct {
    const char *name;
    int src, what;
    size_t offset;
} stat_table[] = {
    HEAP("stats.allocated", allocated, MH_STATS_WALK), HEAP("stats.active", active, 0),
    HEAP("stats.mapped", mapped, 0),       HEAP("stats.dirty", dirty, 0),
    HEAP("stats.memfd_bytes", memfd_bytes, 0), HEAP("stats.resident", resident, MH_STATS_PSS),
    HEAP("stats.threads", threads, MH_STATS_WALK), HEAP("stats.meshed_bytes", meshed_bytes, 0),
    HEAP("stats.mesh_count", mesh_count, 0), HEAP("stats.meshed_hwm", meshed_hwm, 0),
    MESH("stats.mesh_pause_p50_ns", pause_p50_ns), MESH("stats.mesh_pause_p99_ns", pause_p99_ns),
    MESH("stats.mesh_pause_max_ns", pause_max_ns), MESH("stats.mesh_aliases", aliases),
    MESH("stats.mesh_passes", passes),   MESH("stats.fork_migrated", migrated),
    MESH("stats.fork_migrating", migrating), MESH("stats.heap_vmas", heap_vmas),
    MESH("stats.vma_limit", vma_limit),  MESH("stats.program_vmas", program_vmas),
    MESH("stats.vmas_per_meshed_span_x1000", vmas_per_alias_x1000),
};

static int write_out(void *oldp, size_t *oldlenp, const void *val, size_t len) {
    if (!oldp || !oldlenp) return 0;
    if (*oldlenp != len) return EINVAL;
    memcpy(oldp, val, len);
    return 0;
}

static int read_stat(int src, int what, size_t offset, void *oldp, size_t *oldlenp, void *newp,
                     size_t newlen) {
    if (newp || newlen) return EPERM;
    if (oldlenp && *oldlenp != sizeof(size_t)) return EINVAL;
    union {
        mh_stats_t heap;
        mh_mesh_stats_t mesh;
    } st;
    if (src == FROM_MESH) mh_mesh_stats(&st.mesh);
    else mh_stats_collect_some(&st.heap, what);
    uint64_t v;
    memcpy(&v, (const char *)&st + offset, sizeof v);
    size_t out = (size_t)v;
    return write_out(oldp, oldlenp, &out, sizeof out);
}

// mesh.compact meshes every size class now, then releases free pages; mesh.scavenge
// and arena.purge release free pages.
static int run_action(const char *name, void *oldp, size_t *oldlenp) {
    if (!mh_streq(name, "mesh.compact") && !mh_streq(name, "mesh.scavenge") &&
        !mh_streq(name, "arena.purge"))
        return ENOENT;
    if (oldlenp && *oldlenp != sizeof(size_t)) return EINVAL;
    if (mh_streq(name, "mesh.compact")) mh_mesh_compact(true); // explicit: even with period 0
    size_t released = mh_arena_purge_all();
    return write_out(oldp, oldlenp, &released, sizeof released);
}

// Options: INT as int64_t, BOOL as bool (a BOOL that may be "auto" reads as true then),
// ENUM and SIGNAL as const char *.
static int option_ctl(int id, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
    const mh_opt_desc_t *d = &mh_opt_desc[id];
    size_t size = d->type == MH_OT_INT ? sizeof(int64_t) : d->type == MH_OT_BOOL ? sizeof(bool) : sizeof(const char *);
    if ((oldlenp && *oldlenp != size) || (newp && newlen != size)) return EINVAL;
    int64_t cur = mh_opt[id];
    static char sigbuf[32];
    if (oldp && oldlenp) {
        if (d->type == MH_OT_INT) memcpy(oldp, &cur, size);
        else if (d->type == MH_OT_BOOL) *(bool *)oldp = cur != 0;
        else if (d->type == MH_OT_ENUM) *(const char **)oldp = d->names[cur];
        else *(const char **)oldp = mh_signal_name((int)cur, sigbuf, sizeof sigbuf);
    }
    if (!newp) return 0;
    int64_t v;
    if (d->type == MH_OT_INT) memcpy(&v, newp, size);
    else if (d->type == MH_OT_BOOL) v = *(bool *)newp;
    else {
        char why[160];
        const char *s = *(const char **)newp;
        if (!s || mh_opt_parse(id, s, &v, why, sizeof why) != 0) return EINVAL;
    }
    if (v < d->min || v > d->max) return EINVAL;
    int64_t before = mh_opt[id];
    mh_opt_set(id, v, (mh_opt_origin_t){MH_SRC_CTL, 0, NULL});
    mh_settings_changed(id, before);
    mh_settings_publish();
    return 0;
}

MH_EXPORT int mesh_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                           size_t newlen) {
    if (!name) return EINVAL;
    if (mh_settings_pending()) mh_settings_service(); // file and env first
    if (mh_streq(name, "version")) {
        if (newp || newlen) return EPERM;
        static const char *const version = MESH_VERSION;
        return write_out(oldp, oldlenp, &version, sizeof version);
    }
    for (size_t i = 0; i < sizeof stat_table / sizeof stat_table[0]; i++)
        if (mh_streq(name, stat_table[i].name))
            return read_stat(stat_table[i].src, stat_table[i].what, stat_table[i].offset, oldp, oldlenp,
                             newp, newlen);
    int id = mh_opt_find(name);
    if (id >= 0) return option_ctl(id, oldp, oldlenp, newp, newlen);
    return run_action(name, oldp, oldlenp);
}

MH_EXPORT size_t mesh_usable_size(void *ptr) { return mh_usable_size(ptr); }

MH_EXPORT int mesh_in_bounds(const void *ptr) { return mh_arena_contains(ptr) ? 1 : 0; }
