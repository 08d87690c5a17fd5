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
 * Returns 0, or an errno value: ENOENT (unknown name), EINVAL (wrong size),
 * EPERM (read-only name written).
 * Names: "version" (const char *), "stats.allocated", "stats.active", "stats.mapped",
 * "stats.dirty", "stats.memfd_bytes", "stats.resident" (this process's PSS),
 * "stats.threads" (all size_t), and the action "arena.purge" (releases every free
 * dirty page; optional size_t output: bytes released). */
int mesh_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

/* Usable size of an object allocated by libmesh, 0 for any other pointer. */
size_t mesh_usable_size(void *ptr);

/* 1 when ptr lies inside libmesh's heap address space, else 0. */
int mesh_in_bounds(const void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* MESH_H */
