// alias.c - alias chains and alias release (see alias.h).
//
// Layer 4 (services): arena, freephys, mesh_stats.
#include "alias.h"

#include <string.h>

#include "arena.h"
#include "atomic.h"
#include "barrier.h"
#include "check.h"
#include "freephys.h"
#include "mesh_stats.h"

void mh_alias_adopt(mh_span_t *dst, mh_span_t *src, const uint64_t *live) {
    MH_ASSERT(src != dst && src->cls == dst->cls && mh_span_is_small(dst) && mh_span_is_small(src));
    MH_ASSERT(src->list == MH_LIST_NONE && mh_load_relaxed(&src->owner) == NULL);
    uint64_t own[MH_BITMAP_WORDS];
    memcpy(own, live, sizeof own);
    mh_span_t *last = src;
    for (mh_span_t *a = src->next_alias; a; a = a->next_alias) {
        for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) own[w] &= ~mh_load_relaxed(&a->bits[w]);
        a->leader = dst;
        last = a;
    }
    for (unsigned w = 0; w < MH_BITMAP_WORDS; w++) mh_store_relaxed(&src->bits[w], own[w]);
    last->next_alias = dst->next_alias;
    dst->next_alias = src;
    dst->naliases += 1 + src->naliases;
    MH_ASSERT(dst->naliases <= MH_BARRIER_MAX);
    src->naliases = 0;
    src->leader = dst;
    mh_plain_store_release(&src->kind, MH_KIND_ALIAS); // pairs: lock-free readers of kind
    mh_mstat_alias(src, true);
}

void mh_alias_release_now(mh_span_t *a) {
    mh_mstat_alias(a, false);
    a->leader = a->next_alias = NULL;
    a->kind = a->cls;
    if (mh_arena_reset_alias(a) != 0) {
        a->kind = MH_KIND_BUSY; // still maps someone else's pages: never reuse this range
        return;
    }
    mh_arena_free(a, true);
}

static void release_deferred(void *a) { mh_alias_release_now(a); }

void mh_alias_release(mh_span_t *a) {
    if (!mh_freephys_defer(release_deferred, a)) mh_alias_release_now(a);
}

void mh_alias_detach_all(mh_span_t *leader) {
    for (mh_span_t *a = leader->next_alias; a; a = a->next_alias) a->kind = MH_KIND_BUSY;
}

void mh_alias_release_all(mh_span_t *leader) {
    mh_span_t *a = leader->next_alias;
    leader->next_alias = NULL;
    leader->naliases = 0;
    while (a) {
        mh_span_t *next = a->next_alias;
        mh_alias_release(a);
        a = next;
    }
}

bool mh_alias_unlink_empty(mh_span_t *alias, uint32_t gen) {
    if (alias->gen != gen || alias->kind != MH_KIND_ALIAS || !mh_span_is_empty(alias)) return false;
    mh_span_t *leader = alias->leader, **link = &leader->next_alias;
    if (leader->views_split == MH_SPLIT_PINNED) return false; // another view may map its pages
    while (*link && *link != alias) link = &(*link)->next_alias;
    if (*link != alias) return false;
    *link = alias->next_alias;
    MH_ASSERT(leader->naliases > 0);
    leader->naliases--;
    alias->kind = MH_KIND_BUSY; // a racing second call sees it gone
    return true;
}
