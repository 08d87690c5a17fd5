// atomic.h - every atomic access in libmesh goes through these wrappers, whose names
// carry the memory order.
//
// Layer 0 (base): no dependencies.
// Two families: mh_* take a pointer to an _Atomic object (C11 <stdatomic.h>);
// mh_plain_* take a pointer to a plain object that is shared lock-free (directory
// entries, a span's kind byte, fields published once under a lock and read without
// it), through the compiler's __atomic builtins. Every acquire/release use names its
// partner in a comment at the call site.
// Locking: none.
#ifndef MH_ATOMIC_H
#define MH_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>

#define mh_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define mh_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define mh_load_seqcst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define mh_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define mh_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define mh_store_seqcst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define mh_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define mh_fetch_add_seqcst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define mh_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define mh_fetch_sub_release(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define mh_fetch_sub_seqcst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define mh_fetch_and_seqcst(p, v) atomic_fetch_and_explicit((p), (v), memory_order_seq_cst)
#define mh_fetch_or_seqcst(p, v) atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
#define mh_exchange_relaxed(p, v) atomic_exchange_explicit((p), (v), memory_order_relaxed)
#define mh_exchange_acquire(p, v) atomic_exchange_explicit((p), (v), memory_order_acquire)
#define mh_exchange_release(p, v) atomic_exchange_explicit((p), (v), memory_order_release)
#define mh_exchange_seqcst(p, v) atomic_exchange_explicit((p), (v), memory_order_seq_cst)
#define mh_cas_acq_rel(p, e, v)                                                                    \
    atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_acq_rel,                   \
                                            memory_order_acquire)
#define mh_cas_seqcst(p, e, v)                                                                     \
    atomic_compare_exchange_strong_explicit((p), (e), (v), memory_order_seq_cst,                   \
                                            memory_order_seq_cst)

#define mh_plain_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define mh_plain_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mh_plain_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define mh_plain_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define mh_plain_cas_acq_rel(p, e, v)                                                              \
    __atomic_compare_exchange_n((p), (e), (v), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

#endif
