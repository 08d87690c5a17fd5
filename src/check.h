// check.h - assertion tiers. MH_ASSERT (and MH_ASSUME) is compiled in every build but
// checked only in builds with MESH_DEBUG (CI runs the unit and stress tests against
// one); MH_CHECK is always on and guards metadata integrity. Both fail through
// mh_corrupt(): a broken invariant means the heap's own state cannot be trusted.
//
// Layer 0 (base).
#ifndef MH_CHECK_H
#define MH_CHECK_H

#include "log.h"

#define MH_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (MH_UNLIKELY(!(cond)))                                                                  \
            mh_corrupt("internal check failed: %s (%s:%d)", #cond, __FILE__, __LINE__);           \
    } while (0)

#define MH_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (mh_cfg_debug) MH_CHECK(cond);                                                          \
    } while (0)

// An invariant the compiler may build on (an impossible branch is dropped); checked
// like MH_ASSERT in MESH_DEBUG builds.
#define MH_ASSUME(cond)                                                                            \
    do {                                                                                           \
        MH_ASSERT(cond);                                                                           \
        if (!(cond)) __builtin_unreachable();                                                      \
    } while (0)

#endif
