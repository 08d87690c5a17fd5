// test_size_class.c - the class table: tail waste, object counts, smallest fit and
// exact slot division for every offset of every span.
#include "harness.h"
#include "size_class.h"

static void waste_and_counts(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        mh_class_info_t *k = &mh_classes[c];
        size_t bytes = (size_t)k->pages * MH_PAGE_SIZE;
        CHECK(k->objs >= 1 && k->objs <= MH_MAX_OBJS);
        CHECK(k->size % 16 == 0);
        CHECK((bytes - (size_t)k->objs * k->size) * 100 <= bytes * 2); // <= 2% tail waste
        CHECK(k->pages <= MH_MAX_SPAN_PAGES);
        if (c) CHECK(k->size > mh_classes[c - 1].size);
    }
    CHECK_EQ(mh_classes[MH_NUM_CLASSES - 1].size, MH_SMALL_MAX);
}

static void smallest_fit(void) {
    for (size_t n = 0; n <= MH_SMALL_MAX; n++) {
        unsigned c = mh_size_to_class(n);
        CHECK(mh_classes[c].size >= n);
        if (c > 0 && mh_classes[c - 1].size >= n) {
            CHECK(!"a smaller class fits");
            break;
        }
    }
    CHECK_EQ(mh_classes[mh_size_to_class(0)].size, 16);
}

static void exact_slots(void) {
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        mh_class_info_t *k = &mh_classes[c];
        uint32_t bytes = k->pages * (uint32_t)MH_PAGE_SIZE;
        int bad = 0;
        for (uint32_t off = 0; off < bytes; off++)
            if (mh_slot_of(off, k->recip) != off / k->size) bad++;
        CHECK_EQ(bad, 0);
    }
}

static void init_table(void) { mh_size_class_init(); }

TEST_MAIN(T(init_table), T(waste_and_counts), T(smallest_fit), T(exact_slots))
