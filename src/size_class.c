// size_class.c - builds the class table (see size_class.h).
//
// Layer 2 (primitives).
//
// Sizes follow jemalloc's spacing: 16-byte steps to 128, then four classes per
// doubling up to 16 KiB. For each class the span is the smallest page count whose
// tail waste is <= 2% and that holds at least 16 objects (or spans 8 pages), so a
// refill hands a thread a useful batch while a thread's attached span stays small.
#include "size_class.h"

mh_class_info_t mh_classes[MH_NUM_CLASSES];
uint8_t mh_class_of[(MH_SMALL_MAX >> 4) + 1];

static uint32_t class_size(unsigned i) {
    if (i < 8) return 16 * (i + 1);                    // 16 .. 128
    unsigned group = (i - 8) / 4, step = (i - 8) % 4; // 160,192,224,256 | 320..512 | ...
    uint32_t base = 128u << group;
    return base + (base / 4) * (step + 1);
}

static uint32_t tail_waste_permille(uint32_t pages, uint32_t size) {
    uint32_t bytes = pages * (uint32_t)MH_PAGE_SIZE;
    uint32_t objs = bytes / size;
    if (objs > MH_MAX_OBJS) objs = MH_MAX_OBJS;
    return (bytes - objs * size) * 1000 / bytes;
}

static uint32_t pick_pages(uint32_t size) {
    uint32_t best = 1, best_waste = 1001;
    for (uint32_t p = 1; p <= MH_MAX_SPAN_PAGES; p++) {
        uint32_t objs = p * (uint32_t)MH_PAGE_SIZE / size;
        if (objs > MH_MAX_OBJS || objs < 1) continue;
        uint32_t waste = tail_waste_permille(p, size);
        if (waste <= 20 && (objs >= 16 || p >= 8)) return p;
        if (waste < best_waste) best = p, best_waste = waste;
    }
    return best;
}

void mh_size_class_init(void) {
    for (unsigned i = 0; i < MH_NUM_CLASSES; i++) {
        mh_class_info_t *c = &mh_classes[i];
        c->size = class_size(i);
        c->pages = pick_pages(c->size);
        c->objs = c->pages * (uint32_t)MH_PAGE_SIZE / c->size;
        if (c->objs > MH_MAX_OBJS) c->objs = MH_MAX_OBJS;
        c->recip = (uint32_t)((((uint64_t)1 << 32) + c->size - 1) / c->size);
    }
    unsigned cls = 0;
    for (size_t k = 0; k <= (MH_SMALL_MAX >> 4); k++) {
        while (mh_classes[cls].size < k * 16) cls++;
        mh_class_of[k] = (uint8_t)cls;
    }
}
