/* mesh.h - public API of libmesh, a compacting malloc for Linux.
 *
 * The standard allocation functions (malloc, free, ...) and the C++ operators are
 * provided under their usual names; this header adds libmesh's own entry points.
 */
#ifndef MESH_H
#define MESH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MESH_VERSION_MAJOR 1
#define MESH_VERSION_MINOR 0
#define MESH_VERSION_PATCH 0
#define MESH_VERSION "1.0.0"

/* Reads and/or writes a named value, jemalloc mallctl style.
 *   oldp/oldlenp: where to store the current value and its size (both NULL to skip);
 *   newp/newlen:  a new value, or NULL/0.
 * Returns 0, or an errno value: ENOENT (unknown name), EINVAL (wrong size or value),
 * EPERM (a read-only name written).
 *
 * Statistics (size_t, read-only): "stats.allocated" (bytes in objects in use),
 * "stats.active" (pages of live spans), "stats.resident" (this process's PSS),
 * "stats.mapped", "stats.dirty", "stats.memfd_bytes" (physical bytes of the heap
 * file), "stats.threads", "stats.meshed_bytes", "stats.meshed_hwm",
 * "stats.mesh_count", "stats.mesh_pause_p50_ns", "stats.mesh_pause_p99_ns",
 * "stats.mesh_pause_max_ns", "stats.mesh_aliases", "stats.mesh_passes",
 * "stats.fork_migrated" (bytes moved back onto the heap file after forks),
 * "stats.fork_migrating" (1 while heap pages a fork left copy-on-write remain).
 * Actions (optional size_t output: bytes released): "mesh.compact" (mesh every size
 * class now, then release free pages), "mesh.scavenge" and "arena.purge" (release
 * free pages).
 * Options, read and write, by their /etc/mesh.conf key (see mesh.conf(5) or
 * `meshctl config doc`): integers as int64_t (e.g. "mesh.period_ms"), booleans as
 * bool (e.g. "log.verbose"), names as const char * (e.g. "checks.thp",
 * "stats.signal"). A write takes precedence over the file and the environment.
 * "version" (const char *). */
int mesh_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

/* Usable size of an object allocated by libmesh, 0 for any other pointer. */
size_t mesh_usable_size(void *ptr);

/* 1 when ptr lies inside libmesh's heap address space, else 0. */
int mesh_in_bounds(const void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* MESH_H */
