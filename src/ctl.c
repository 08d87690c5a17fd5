// ctl.c - mesh_mallctl, mesh_usable_size and mesh_in_bounds (include/mesh.h).
//
// A table maps each name to a reader of a size_t statistic or to an action; values are
// computed on demand, nothing is counted on the fast paths.
#include "../include/mesh.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "common.h"
#include "stats.h"
#include "str.h"
#include "thread_heap.h"

typedef struct ctl_entry_s {
    const char *name;
    size_t offset; // into mh_stats_t, or (size_t)-1 for an action
} ctl_entry_t;

#define STAT(n, field) {n, offsetof(mh_stats_t, field)}
static const ctl_entry_t ctl_table[] = {
    STAT("stats.allocated", allocated), STAT("stats.active", active),
    STAT("stats.mapped", mapped),       STAT("stats.dirty", dirty),
    STAT("stats.memfd_bytes", memfd_bytes), STAT("stats.resident", resident),
    STAT("stats.threads", threads),     {"arena.purge", (size_t)-1},
};

static int write_out(void *oldp, size_t *oldlenp, const void *val, size_t len) {
    if (!oldp || !oldlenp) return 0;
    if (*oldlenp != len) return EINVAL;
    memcpy(oldp, val, len);
    return 0;
}

MH_EXPORT int mesh_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                           size_t newlen) {
    if (!name) return EINVAL;
    if (mh_streq(name, "version")) {
        if (newp || newlen) return EPERM;
        static const char *const version = MESH_VERSION;
        return write_out(oldp, oldlenp, &version, sizeof version);
    }
    for (size_t i = 0; i < sizeof ctl_table / sizeof ctl_table[0]; i++) {
        if (!mh_streq(name, ctl_table[i].name)) continue;
        if (ctl_table[i].offset == (size_t)-1) {
            size_t released = mh_trim();
            return write_out(oldp, oldlenp, &released, sizeof released);
        }
        if (newp || newlen) return EPERM;
        mh_stats_t st;
        mh_stats_collect(&st);
        size_t v;
        memcpy(&v, (const char *)&st + ctl_table[i].offset, sizeof v);
        return write_out(oldp, oldlenp, &v, sizeof v);
    }
    return ENOENT;
}

MH_EXPORT size_t mesh_usable_size(void *ptr) { return mh_tlh_usable_size(ptr); }

MH_EXPORT int mesh_in_bounds(const void *ptr) { return mh_arena_contains(ptr) ? 1 : 0; }
