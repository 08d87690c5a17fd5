// test_span.c - span bitmaps: harvest, clear (double-free detection), claim, slots.
#include "harness.h"
#include "span.h"

static mh_span_t make_span(unsigned cls) {
    mh_span_t s = {0};
    s.start = 0x100000;
    s.pages = mh_classes[cls].pages;
    mh_span_init_small(&s, cls);
    return s;
}

static void harvest_takes_all_free(void) {
    mh_span_t s = make_span(mh_size_to_class(48)); // 85 objects: a partial last word
    uint8_t idx[MH_MAX_OBJS];
    CHECK_EQ(mh_span_harvest(&s, idx, MH_MAX_OBJS, 0), s.objs);
    CHECK_EQ(mh_span_in_use(&s), s.objs);
    CHECK_EQ(mh_span_harvest(&s, idx, MH_MAX_OBJS, 0), 0);
    CHECK(mh_span_valid(&s));
    CHECK(mh_span_clear(&s, 3));
    CHECK(mh_span_clear(&s, 84));
    CHECK(!mh_span_clear(&s, 3)); // second clear is a double free
    CHECK_EQ(mh_span_harvest(&s, idx, MH_MAX_OBJS, 0), 2);
    CHECK((idx[0] == 3 && idx[1] == 84) || (idx[0] == 84 && idx[1] == 3));
}

// A limited harvest takes exactly the free slots met walking circularly from its start
// slot, never more than asked, and never a slot twice; later harvests take the rest.
static void partial_harvest_walks_from_start(void) {
    mh_span_t s = make_span(mh_size_to_class(16)); // 256 objects: four full words
    uint8_t idx[MH_MAX_OBJS], seen[MH_MAX_OBJS] = {0};
    CHECK(mh_span_clear(&s, 0) == false); // fresh: all free
    CHECK_EQ(mh_span_harvest(&s, idx, 32, 250), 32);
    for (unsigned i = 0; i < 32; i++) { // 250..255, then 0..25
        unsigned want = i < 6 ? 250 + i : i - 6;
        CHECK_EQ(idx[i], want);
        seen[idx[i]]++;
    }
    CHECK_EQ(mh_span_in_use(&s), 32);
    CHECK_EQ(mh_span_harvest(&s, idx, 100, 100), 100); // 100..199
    CHECK(idx[0] == 100 && idx[99] == 199);
    for (unsigned i = 0; i < 100; i++) seen[idx[i]]++;
    unsigned rest = mh_span_harvest(&s, idx, 200, 3); // the 124 left, starting at 26
    CHECK_EQ(rest, 124);
    CHECK_EQ(idx[0], 26);
    for (unsigned i = 0; i < rest; i++) seen[idx[i]]++;
    for (unsigned i = 0; i < 256; i++) CHECK_EQ(seen[i], 1);
    CHECK_EQ(mh_span_harvest(&s, idx, 10, 7), 0);
    CHECK(mh_span_clear(&s, 5) && mh_span_clear(&s, 200));
    CHECK_EQ(mh_span_harvest(&s, idx, 1, 6), 1); // from 6 on: 200 comes before 5
    CHECK_EQ(idx[0], 200);
    CHECK_EQ(mh_span_harvest(&s, idx, 1, 6), 1);
    CHECK_EQ(idx[0], 5);
    CHECK(mh_span_valid(&s));
}

static void claim_one_by_one(void) {
    mh_span_t s = make_span(mh_size_to_class(1024));
    for (unsigned i = 0; i < s.objs; i++) CHECK(mh_span_claim_one(&s) >= 0);
    CHECK_EQ(mh_span_claim_one(&s), -1);
    CHECK_EQ(mh_span_in_use(&s), s.objs);
}

static void slot_lookup(void) {
    mh_span_t s = make_span(mh_size_to_class(48));
    CHECK_EQ(mh_span_slot(&s, s.start), 0);
    CHECK_EQ(mh_span_slot(&s, s.start + 48 * 7), 7);
    CHECK_EQ(mh_span_slot(&s, s.start + 48 * 7 + 8), -1); // interior pointer
    CHECK_EQ(mh_span_slot(&s, s.start + 48 * 85), -1);    // tail past the last object
}

static void generations_are_unique(void) {
    uint32_t a = mh_span_next_gen(), b = mh_span_next_gen();
    CHECK(a != b);
}

static void init_table(void) { mh_size_class_init(); }

// The bit-parallel popcount against a plain count, over edge words and a spread of
// patterns (an xorshift sequence).
static void popcount_matches_plain_count(void) {
    uint64_t x = 0x9E3779B97F4A7C15u;
    uint64_t edges[] = {0, 1, ~(uint64_t)0, (uint64_t)1 << 63, 0x8000000000000001u, 0x5555555555555555u};
    for (unsigned i = 0; i < 6 + 10000; i++) {
        uint64_t v = i < 6 ? edges[i] : (x ^= x << 13, x ^= x >> 7, x ^= x << 17);
        unsigned plain = 0;
        for (unsigned b = 0; b < 64; b++) plain += (unsigned)(v >> b & 1);
        CHECK_EQ(mh_popcount64(v), plain);
    }
}

TEST_MAIN(T(init_table), T(popcount_matches_plain_count), T(harvest_takes_all_free), T(partial_harvest_walks_from_start), T(claim_one_by_one), T(slot_lookup),
          T(generations_are_unique))
