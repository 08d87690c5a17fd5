// mesh_stats.c - the mesher's counters (see mesh_stats.h).
//
// Layer 4 (services): arena (the info page).
// Pauses go into a histogram with 8 buckets per power of two of nanoseconds, so a
// reported quantile is within 12.5% of the truth, and never above the exact maximum.
#include "mesh_stats.h"

#include "arena.h"
#include "atomic.h"
#include "info.h"

#define PAUSE_SUB 8                    // buckets per power of two of ns
#define PAUSE_BUCKETS (40 * PAUSE_SUB) // up to 2^42 ns

static _Atomic uint64_t aliases_live, migrated_bytes;
static uint64_t passes, pairs_total, pause_hist[PAUSE_BUCKETS], pause_max; // pass lock

void mh_mstat_alias(const mh_span_t *s, bool add) {
    if (add) mh_fetch_add_seqcst(&aliases_live, 1);
    else mh_fetch_sub_seqcst(&aliases_live, 1);
    mh_info_t *info = mh_arena_info_page();
    if (!info) return;
    uint64_t bytes = mh_span_bytes(s);
    if (!add) {
        mh_fetch_sub_seqcst(&info->meshed_bytes, bytes);
        return;
    }
    mh_fetch_add_seqcst(&info->mesh_count, 1);
    uint64_t now = mh_fetch_add_seqcst(&info->meshed_bytes, bytes) + bytes;
    if (now > mh_load_relaxed(&info->meshed_hwm)) mh_store_relaxed(&info->meshed_hwm, now);
}

uint64_t mh_mstat_aliases(void) { return mh_load_relaxed(&aliases_live); }

void mh_mstat_migrated(size_t bytes) { mh_fetch_add_relaxed(&migrated_bytes, bytes); }

// Bucket of a duration: its power of two and the next three bits below the top one.
static unsigned pause_bucket(uint64_t ns) {
    if (ns < PAUSE_SUB) return (unsigned)ns;
    unsigned top = 63u - (unsigned)__builtin_clzll(ns); // >= 3
    unsigned b = (top - 2) * PAUSE_SUB + (unsigned)((ns >> (top - 3)) & (PAUSE_SUB - 1));
    return b < PAUSE_BUCKETS ? b : PAUSE_BUCKETS - 1;
}

// The largest duration a bucket holds (what a quantile reports: an upper bound).
static uint64_t pause_bucket_max(unsigned b) {
    if (b < PAUSE_SUB) return b;
    unsigned top = b / PAUSE_SUB + 2, sub = b % PAUSE_SUB;
    return ((uint64_t)(PAUSE_SUB + sub + 1) << (top - 3)) - 1;
}

void mh_mstat_pass(uint64_t ns, size_t pairs) {
    pause_hist[pause_bucket(ns)]++;
    if (ns > pause_max) pause_max = ns;
    passes++;
    pairs_total += pairs;
}

static uint64_t pause_quantile(double q) {
    uint64_t total = 0, seen = 0;
    for (unsigned b = 0; b < PAUSE_BUCKETS; b++) total += pause_hist[b];
    for (unsigned b = 0; b < PAUSE_BUCKETS; b++) {
        seen += pause_hist[b];
        if (total && seen >= q * total) {
            uint64_t hi = pause_bucket_max(b);
            return hi < pause_max ? hi : pause_max;
        }
    }
    return 0;
}

void mh_mstat_read(mh_mesh_stats_t *out) {
    out->passes = passes;
    out->pairs = pairs_total;
    out->aliases = mh_load_relaxed(&aliases_live);
    out->pause_p50_ns = pause_quantile(0.5);
    out->pause_p99_ns = pause_quantile(0.99);
    out->pause_max_ns = pause_max;
    out->migrated = mh_load_relaxed(&migrated_bytes);
}
