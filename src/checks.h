// checks.h - host checks that decide whether libmesh can work well here:
// transparent huge pages under the heap, and the vm.max_map_count budget.
//
// They read a few small files under a root directory ("" for the real /sys and
// /proc; meshctl's tests pass a fake tree) with open/read only: under
// /etc/ld.so.preload every process runs them, so they cost microseconds and print
// nothing on a healthy machine.
//
// Layer 2 (primitives).
#ifndef MH_CHECKS_H
#define MH_CHECKS_H

#include <stddef.h>

// The THP problem for the heap, or NULL when the settings are harmless. With
// MADV_NOHUGEPAGE on every mapping we make, only shmem_enabled = "force" (which
// overrides the advice) puts huge pages under the heap.
const char *mh_check_thp(const char *root, char *buf, size_t n);
// vm.max_map_count, or -1 when it cannot be read.
long mh_check_max_map_count(const char *root);
// Reads the bracketed choice of a sysfs selector ("always [madvise] never") into buf.
int mh_check_read_selector(const char *path, char *buf, size_t n);

#endif
