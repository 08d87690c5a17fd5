// wrap_cxx.c - the C++ operator new/delete family under their Itanium-mangled names,
// written in C so the library needs no C++ runtime.
//
// Throwing forms loop on std::get_new_handler() like the standard requires and throw
// std::bad_alloc through libstdc++'s __throw_bad_alloc when no handler is left. Those
// libstdc++ symbols are weak: a program that calls operator new has libstdc++ loaded.
// nothrow forms return NULL without calling the handler.
//
// Layer 8 (edges).
#include <stddef.h>

#include "alloc.h"
#include "common.h"
#include "log.h"

typedef void (*new_handler_fn)(void);
extern new_handler_fn _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak));

MH_COLD MH_NOINLINE static void *retry_new(size_t size, size_t align) {
    for (;;) {
        void *p = align ? mh_alloc_aligned(align, size) : mh_malloc(size);
        if (p) return p;
        new_handler_fn h = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (h) {
            h();
            continue;
        }
        if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
        mh_terminate("operator new: out of memory for %zu bytes and no C++ runtime to throw", size);
    }
}

MH_INLINE void *op_new(size_t size) {
    void *p = mh_malloc_fast(size);
    return MH_LIKELY(p != NULL) ? p : retry_new(size, 0);
}

MH_INLINE void *op_new_aligned(size_t size, size_t align) {
    void *p = mh_alloc_aligned(align, size);
    return MH_LIKELY(p != NULL) ? p : retry_new(size, align);
}

#define NOTHROW_T const void *
#define ALIGN_T size_t

// new
MH_EXPORT void *_Znwm(size_t n) { return op_new(n); }
MH_EXPORT void *_Znam(size_t n) { return op_new(n); }
MH_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, NOTHROW_T t) { (void)t; return mh_malloc(n); }
MH_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, NOTHROW_T t) { (void)t; return mh_malloc(n); }
MH_EXPORT void *_ZnwmSt11align_val_t(size_t n, ALIGN_T a) { return op_new_aligned(n, a); }
MH_EXPORT void *_ZnamSt11align_val_t(size_t n, ALIGN_T a) { return op_new_aligned(n, a); }
MH_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, ALIGN_T a, NOTHROW_T t) {
    (void)t;
    return mh_alloc_aligned(a, n);
}
MH_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, ALIGN_T a, NOTHROW_T t) {
    (void)t;
    return mh_alloc_aligned(a, n);
}

// delete
MH_EXPORT void _ZdlPv(void *p) { mh_free(p, "operator delete"); }
MH_EXPORT void _ZdaPv(void *p) { mh_free(p, "operator delete[]"); }
MH_EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; mh_free(p, "operator delete"); }
MH_EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; mh_free(p, "operator delete[]"); }
MH_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, NOTHROW_T t) { (void)t; mh_free(p, "operator delete"); }
MH_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, NOTHROW_T t) { (void)t; mh_free(p, "operator delete[]"); }
MH_EXPORT void _ZdlPvSt11align_val_t(void *p, ALIGN_T a) { (void)a; mh_free(p, "operator delete"); }
MH_EXPORT void _ZdaPvSt11align_val_t(void *p, ALIGN_T a) { (void)a; mh_free(p, "operator delete[]"); }
MH_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, ALIGN_T a) {
    (void)n, (void)a;
    mh_free(p, "operator delete");
}
MH_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, ALIGN_T a) {
    (void)n, (void)a;
    mh_free(p, "operator delete[]");
}
MH_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, ALIGN_T a, NOTHROW_T t) {
    (void)a, (void)t;
    mh_free(p, "operator delete");
}
MH_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, ALIGN_T a, NOTHROW_T t) {
    (void)a, (void)t;
    mh_free(p, "operator delete[]");
}
