// wrap.h - what the interposed libc functions (wrap_posix.c, wrap_io.c) share: finding
// libc's own definition of the function they replace.
//
// Layer 8 (edges).
// A lookup happens once per function; two threads racing on the first call store the
// same value, so the pointer needs no lock.
#ifndef MH_WRAP_H
#define MH_WRAP_H

#include <dlfcn.h>
#include <errno.h>

// Declares `static type var` holding the next definition of name (NULL if none).
#define MH_NEXT(var, type, name)                                                                   \
    static __typeof__(type) var;                                                                   \
    if (!var) var = (type)dlsym(RTLD_NEXT, name)

// The next definition as real_, or return -1 with errno ENOSYS when there is none.
#define MH_REAL(type, name)                                                                        \
    MH_NEXT(real_, type, name);                                                                    \
    if (!real_) {                                                                                  \
        errno = ENOSYS;                                                                            \
        return -1;                                                                                 \
    }

#endif
