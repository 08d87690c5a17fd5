// alloc.h - the allocation operations behind every exported entry point (C API, C++
// operators, mesh_* API): sizes, alignment, zeroing and resizing, with glibc's
// semantics. The wrappers add only errno handling and symbol names.
#ifndef MH_ALLOC_H
#define MH_ALLOC_H

#include "common.h"

// NULL on failure; the callers set errno.
void *mh_alloc_zeroed(size_t n, size_t size);
void *mh_alloc_aligned(size_t align, size_t size);
void *mh_realloc(void *p, size_t size, const char *who);
size_t mh_trim(void);

#endif
