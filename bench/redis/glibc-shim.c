/* glibc-shim.c - LD_PRELOAD shim that gives a program glibc's malloc even
 * when it is linked against another allocator. Debian's redis-server is
 * linked against libjemalloc.so.2 and calls the unprefixed malloc/free, so
 * without this shim there is no way to run it on glibc's allocator. Every
 * entry point forwards to glibc's own implementation (__libc_malloc and
 * friends, or the libc.so.6 definition looked up with dlsym on a libc
 * handle), so the jemalloc that stays loaded only serves its mallctl
 * statistics calls and holds no objects.
 * Build: cc -O2 -shared -fPIC -o glibc-shim.so glibc-shim.c */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static size_t (*libc_usable)(void *);

static size_t (*usable_fn(void))(void *)
{
    if (!libc_usable) {
        void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        if (h)
            libc_usable = (size_t(*)(void *))dlsym(h, "malloc_usable_size");
    }
    return libc_usable;
}

void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void *memalign(size_t al, size_t n) { return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { return __libc_memalign(al, n); }
void *valloc(size_t n) { return __libc_memalign(4096, n); }
void *pvalloc(size_t n) { return __libc_memalign(4096, (n + 4095) & ~(size_t)4095); }

int posix_memalign(void **out, size_t al, size_t n)
{
    if (al < sizeof(void *) || (al & (al - 1)))
        return EINVAL;
    void *p = __libc_memalign(al, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

size_t malloc_usable_size(void *p)
{
    size_t (*f)(void *) = usable_fn();
    return f ? f(p) : 0;
}

/* C++ operators (libstdc++ is loaded by redis-server; jemalloc exports its own) */
void *_Znwm(size_t n) { return __libc_malloc(n ? n : 1); }
void *_Znam(size_t n) { return __libc_malloc(n ? n : 1); }
void _ZdlPv(void *p) { __libc_free(p); }
void _ZdaPv(void *p) { __libc_free(p); }
void _ZdlPvm(void *p, size_t n) { (void)n; __libc_free(p); }
void _ZdaPvm(void *p, size_t n) { (void)n; __libc_free(p); }
