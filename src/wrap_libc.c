// wrap_libc.c - the exported C allocation API with glibc's observable semantics:
// errno = ENOMEM on failure, overflow checks, posix_memalign's EINVAL, realloc(p, 0)
// frees p and returns NULL, free(NULL) and frees of foreign pointers are no-ops, and
// free preserves errno. Everything else is delegated to alloc.c and alloc.h.
//
// Layer 8 (edges).
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "common.h"
#include "stats.h"

MH_INLINE void *enomem_if_null(void *p) {
    if (MH_UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

MH_COLD MH_NOINLINE static void *malloc_slow(size_t size) { return enomem_if_null(mh_malloc_slow(size)); }

MH_EXPORT void *malloc(size_t size) {
    void *p = mh_malloc_fast(size);
    return MH_LIKELY(p != NULL) ? p : malloc_slow(size);
}

MH_EXPORT void free(void *p) { mh_free(p, "free"); }

MH_EXPORT void cfree(void *p) { mh_free(p, "cfree"); }

MH_EXPORT void free_sized(void *p, size_t size) {
    (void)size;
    mh_free(p, "free_sized");
}

MH_EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
    (void)align, (void)size;
    mh_free(p, "free_aligned_sized");
}

MH_EXPORT void *calloc(size_t n, size_t size) { return enomem_if_null(mh_alloc_zeroed(n, size)); }

MH_EXPORT void *realloc(void *p, size_t size) {
    if (p && size == 0) { // glibc: free and return NULL
        mh_free(p, "realloc");
        return NULL;
    }
    return enomem_if_null(mh_realloc(p, size, "realloc"));
}

MH_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

// glibc's memalign rounds a non-power-of-two alignment up to the next power of two.
static size_t round_alignment(size_t align) {
    if (mh_is_pow2(align)) return align;
    size_t a = MH_MIN_ALIGN;
    while (a < align && a <= SIZE_MAX / 2) a <<= 1;
    return a < align ? 0 : a;
}

MH_EXPORT void *memalign(size_t align, size_t size) {
    size_t a = round_alignment(align);
    if (!a) {
        errno = EINVAL;
        return NULL;
    }
    return enomem_if_null(mh_alloc_aligned(a, size));
}

MH_EXPORT void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }

MH_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
    if (align % sizeof(void *) != 0 || !mh_is_pow2(align)) return EINVAL;
    int saved = errno;
    void *p = mh_alloc_aligned(align, size);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

MH_EXPORT void *valloc(size_t size) { return enomem_if_null(mh_alloc_aligned(MH_PAGE_SIZE, size)); }

MH_EXPORT void *pvalloc(size_t size) {
    size_t rounded = mh_align_up(size ? size : 1, MH_PAGE_SIZE);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return enomem_if_null(mh_alloc_aligned(MH_PAGE_SIZE, rounded));
}

MH_EXPORT size_t malloc_usable_size(void *p) { return mh_usable_size(p); }

MH_EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    return mh_trim() > 0;
}

MH_EXPORT int mallopt(int param, int value) {
    (void)param, (void)value;
    return 1; // accepted and ignored: libmesh has no glibc tunables
}

MH_EXPORT void malloc_stats(void) { mh_stats_print(2, 2); }

static size_t clamp_int(size_t v) { return v > (size_t)0x7fffffff ? 0x7fffffff : v; }

MH_EXPORT struct mallinfo2 mallinfo2(void) {
    mh_stats_t st;
    mh_stats_collect(&st);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.active + st.dirty;
    mi.uordblks = st.allocated;
    mi.fordblks = mi.arena > st.allocated ? mi.arena - st.allocated : 0;
    mi.fsmblks = st.dirty;
    mi.hblkhd = st.mapped;
    mi.keepcost = st.dirty;
    return mi;
}

MH_EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = (int)clamp_int(m2.arena);
    mi.uordblks = (int)clamp_int(m2.uordblks);
    mi.fordblks = (int)clamp_int(m2.fordblks);
    mi.fsmblks = (int)clamp_int(m2.fsmblks);
    mi.hblkhd = (int)clamp_int(m2.hblkhd);
    mi.keepcost = (int)clamp_int(m2.keepcost);
    return mi;
}
