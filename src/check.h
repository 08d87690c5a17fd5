// check.h - assertion tiers. MH_ASSERT is compiled in debug builds only; MH_CHECK is
// always on and guards metadata integrity, failing through mh_fatal().
#ifndef MH_CHECK_H
#define MH_CHECK_H

#include "log.h"

#define MH_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (MH_UNLIKELY(!(cond)))                                                                  \
            mh_fatal("internal check failed: %s (%s:%d)", #cond, __FILE__, __LINE__);             \
    } while (0)

#define MH_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (mh_cfg_debug) MH_CHECK(cond);                                                          \
    } while (0)

#endif
