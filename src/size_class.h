// size_class.h - the small-object size classes: size -> class, class -> object size,
// span pages and objects per span.
//
// Layer 2 (primitives).
//
// Invariants (checked by tests/unit/test_size_class.c): classes are multiples of 16;
// every class's span wastes at most 2% of its bytes at the tail; at most 256 objects
// per span; mh_size_to_class(n) is the smallest class whose size is >= n.
// The table is filled once by mh_size_class_init() before the first allocation and is
// read-only afterwards, so lookups need no locking.
#ifndef MH_SIZE_CLASS_H
#define MH_SIZE_CLASS_H

#include "common.h"

#define MH_NUM_CLASSES 36

typedef struct mh_class_info_s {
    uint32_t size;  // object size in bytes
    uint32_t pages; // span length in pages
    uint32_t objs;  // objects per span
    uint32_t recip; // ceil(2^32 / size): slot = (offset * recip) >> 32, exact for spans
} mh_class_info_t;

extern mh_class_info_t mh_classes[MH_NUM_CLASSES] MH_HIDDEN;
extern uint8_t mh_class_of[(MH_SMALL_MAX >> 4) + 1] MH_HIDDEN;

void mh_size_class_init(void);

MH_INLINE unsigned mh_size_to_class(size_t size) { return mh_class_of[(size + 15) >> 4]; }

// Offset of a pointer inside its span -> slot index, by multiplication.
MH_INLINE uint32_t mh_slot_of(uint32_t offset, uint32_t recip) {
    return (uint32_t)(((uint64_t)offset * recip) >> 32);
}

#endif
