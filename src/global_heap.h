// global_heap.h - per-size-class bins of detached spans, attach/detach, remote frees,
// frees from threads without a heap, and large objects.
//
// Layer 5 (heap).
// Each class has a lock guarding its lists: partial (detached, some slots free) and
// empty (detached, no slot in use; a few kept per class, the rest returned to the
// arena). A detached full span is on no list until a free makes room. Remote frees
// clear a bitmap bit without locks and take the class lock only when the span changes
// list. Lock order: class locks in class order, then the arena's locks.
#ifndef MH_GLOBAL_HEAP_H
#define MH_GLOBAL_HEAP_H

#include "common.h"
#include "rng.h"
#include "shuffle.h"
#include "span.h"

struct mh_tlh_s;

// Refills an empty vector, up to its capacity: first with free slots of the attached
// span (freed remotely, or left by a partial fill), else by detaching it and attaching
// a span with free slots. False when out of memory.
bool mh_gh_refill(mh_sv_t *sv, unsigned cls, struct mh_tlh_s *owner, mh_rng_t *rng);
// Returns the oldest count cached objects of a vector to their spans' bitmaps. Frees
// into spans are what fragments a class: the caller may want a mesh tick afterwards.
void mh_gh_flush(mh_sv_t *sv, uint32_t count, const char *who);
// Returns all of a vector's cached objects and detaches its span (thread exit, fork).
// tolerant: skip slots already free (another thread's vector seen by a fork child).
void mh_gh_release(mh_sv_t *sv, bool tolerant);
// Frees small object p straight into its span's bitmap (no thread cache). who names
// the API call in corruption messages. Returns the class freed into.
unsigned mh_gh_free_remote(void *p, const char *who);
// One object for a thread that has no heap (exiting, or during bootstrap).
void *mh_gh_alloc_orphan(unsigned cls);
// Large object of size bytes aligned to align (a power of two); *zeroed set when the
// memory is known to be zero.
void *mh_gh_large_alloc(size_t size, size_t align, bool *zeroed);
void mh_gh_large_free(mh_span_t *s, void *p, const char *who);
// Aborts with one line naming the call and address (proven heap corruption).
_Noreturn void mh_gh_corrupt(const char *who, const char *what, const void *p);

// For the mesher: class lock, exclusive access to the class's bitmaps (waits for
// free sections to drain; class lock held), list access, re-filing and release.
void mh_gh_class_lock(unsigned cls);
void mh_gh_class_unlock(unsigned cls);
void mh_gh_exclusive_begin(unsigned cls);
void mh_gh_exclusive_end(unsigned cls);
mh_span_t *mh_gh_partial_head(unsigned cls);
unsigned mh_gh_partial_count(unsigned cls);
// A thread waits for the class lock (held by the caller): a mesh pass makes way.
bool mh_gh_class_contended(unsigned cls);
void mh_gh_unlist(unsigned cls, mh_span_t *s);
// Moves the partial list's head up to and including last to its end (O(1)).
void mh_gh_partial_rotate(unsigned cls, mh_span_t *last);
mh_span_t *mh_gh_refile(unsigned cls, mh_span_t *s);
void mh_gh_release_span(mh_span_t *s);

// Sizes the per-class empty-span caches; called once by init after the class table.
void mh_gh_init(void);
void mh_gh_fork_prepare(void);
void mh_gh_fork_parent(void);
void mh_gh_fork_child(void);

#endif
