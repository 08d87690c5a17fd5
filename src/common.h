// common.h - base types, layout constants and compiler helpers shared by every module.
//
// Layer 0 (base).
//
// Invariants: the heap works in 4 KiB pages (x86-64/Linux); every object is 16-byte
// aligned; a span holds at most MH_MAX_OBJS objects so one 256-bit bitmap covers it.
// Locking: none (constants and macros only).
#ifndef MH_COMMON_H
#define MH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MH_PAGE_SHIFT 12
#define MH_PAGE_SIZE ((size_t)1 << MH_PAGE_SHIFT)
#define MH_MIN_ALIGN 16
#define MH_MAX_OBJS 256          // objects per span; one 256-bit bitmap
#define MH_BITMAP_WORDS (MH_MAX_OBJS / 64)
#define MH_SMALL_MAX 16384       // largest size served by size classes
#define MH_MAX_SPAN_PAGES 16     // largest small span

#define MH_LIKELY(x) __builtin_expect(!!(x), 1)
#define MH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MH_NOINLINE __attribute__((noinline))
#define MH_COLD __attribute__((cold))
#define MH_INLINE static inline __attribute__((always_inline))
#define MH_TLS_IE __attribute__((tls_model("initial-exec")))
#define MH_EXPORT __attribute__((visibility("default")))
// For declarations of libmesh's own globals: -fvisibility=hidden covers definitions
// only, and an extern declaration without it is reached through the GOT (one more
// load on the malloc and free fast paths).
#define MH_HIDDEN __attribute__((visibility("hidden")))
#define MH_UNUSED __attribute__((unused))

#ifndef MESH_DEBUG
#define MESH_DEBUG 0
#endif
// Build flags as constants so every configuration compiles every line.
static const bool mh_cfg_debug = MESH_DEBUG > 0;

MH_INLINE size_t mh_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
MH_INLINE size_t mh_pages_for(size_t bytes) { return (bytes + MH_PAGE_SIZE - 1) >> MH_PAGE_SHIFT; }
MH_INLINE bool mh_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

#endif
