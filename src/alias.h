// alias.h - alias chains: a meshed span's virtual range, now mapped onto another span's
// (its leader's) file pages, and how it gets its own pages back.
//
// Layer 4 (services): below the class bins (global_heap.c), which call these under
// their class lock, and the mesher, which links new aliases.
// Invariants (span.h): a leader's bitmap is the union of the live slots of all its
// virtual ranges; an alias's bitmap holds the slots live through its own range; an
// alias is on its leader's chain exactly while its kind is MH_KIND_ALIAS; naliases is
// the chain's length. An alias leaves the chain (kind BUSY) before it is released, so
// a racing second release finds it gone.
// Locking: linking and unlinking under the class lock; the release itself (remap onto
// the alias's own punched pages, return the range to the arena) runs without it.
#ifndef MH_ALIAS_H
#define MH_ALIAS_H

#include "common.h"
#include "span.h"

// Makes src, and src's own chain, aliases of dst; live: src's live slots. Bookkeeping
// only (the pages were remapped by the caller); class lock held.
void mh_alias_adopt(mh_span_t *dst, mh_span_t *src, const uint64_t *live);
// Takes an emptied alias (generation gen, nothing live through it) off its leader's
// chain; true when the caller must release it (class lock held).
bool mh_alias_unlink_empty(mh_span_t *alias, uint32_t gen);
// Marks the aliases of an empty leader that is leaving its class (class lock held), so
// a racing mh_alias_unlink_empty leaves them to mh_alias_release_all.
void mh_alias_detach_all(mh_span_t *leader);
// Releases every alias of leader (empty, off every list).
void mh_alias_release_all(mh_span_t *leader);
// Releases one alias that is off its chain: through the freephys thread when it runs
// (after the punch that mesh queued there), else now.
void mh_alias_release(mh_span_t *a);
// Releases now: resets the alias onto its own file pages and returns the range to the
// arena (a range that cannot be reset is never reused).
void mh_alias_release_now(mh_span_t *a);

#endif
