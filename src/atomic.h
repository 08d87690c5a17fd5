// atomic.h - thin <stdatomic.h> wrappers whose names carry the memory order.
//
// Every acquire/release use names its partner in a comment at the call site.
// Locking: none.
#ifndef MH_ATOMIC_H
#define MH_ATOMIC_H

#include <stdatomic.h>

#define mh_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define mh_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define mh_load_seqcst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define mh_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define mh_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define mh_store_seqcst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define mh_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define mh_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define mh_fetch_and_seqcst(p, v) atomic_fetch_and_explicit((p), (v), memory_order_seq_cst)
#define mh_fetch_or_seqcst(p, v) atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
#define mh_exchange_seqcst(p, v) atomic_exchange_explicit((p), (v), memory_order_seq_cst)
#define mh_cas_acq_rel(p, e, v)                                                                    \
    atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_acq_rel,                   \
                                            memory_order_acquire)

#endif
