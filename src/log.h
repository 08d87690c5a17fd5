// log.h - libmesh's one failure policy, and its messages to stderr (through write(2);
// never allocates, never uses stdio). Every line starts with "libmesh: ".
//
// Layer 0 (base): depends on str only.
// The policy (design principle 1), one reporter per kind of failure:
//  - mh_corrupt: proven heap corruption (a double free, a wild pointer inside the
//    heap, a broken internal invariant). One line naming the fault, then abort().
//  - mh_degraded: a resource failure the heap survives (a mapping or descriptor the
//    kernel refuses, a descriptor closed behind our back, a thread that cannot start,
//    the VMA budget, a replaced fault handler). The caller has already fallen back to
//    something correct; this records the kind (meshctl shows it) and prints one line
//    per kind per process, then stays quiet (principle 2).
//  - mh_warn: what an operator asked for or must fix (configuration problems, verbose
//    output, statistics).
//  - mh_terminate: the C++ contract leaves no other way (operator new cannot throw).
#ifndef MH_LOG_H
#define MH_LOG_H

#include "common.h"

// Kinds of degradation; each is reported at most once (until re-armed).
typedef enum {
    MH_DEG_HANDLER = 0,    // the fault handler was replaced: meshing stopped
    MH_DEG_VMA_BUDGET,     // meshing paused at the VMA budget
    MH_DEG_FILE,           // the heap file is gone or refused: private memory from now on
    MH_DEG_FORK,           // a fork fell back to copies or to private memory
    MH_DEG_THREAD,         // a helper thread could not start
    MH_DEG_MIGRATION,      // a migration or mesh step could not finish or be undone
    MH_DEG_COUNT
} mh_degrade_t;

void mh_log_write(const char *s, size_t n);
void mh_log_write_fd(int fd, const char *s, size_t n);
void mh_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Records `what` and prints the line unless that kind was reported already. Returns
// true when the line was printed.
bool mh_degraded(mh_degrade_t what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Quiet degradations: recorded (meshctl shows them) but never printed.
void mh_degraded_quiet(mh_degrade_t what);
// The condition is over (the VMA budget has room again): the next one prints again.
void mh_degraded_clear(mh_degrade_t what);
// Bit k set: degradation k is in effect (or was, for the permanent ones).
uint32_t mh_degraded_mask(void);
// From now on the mask is mirrored into *slot too (the info page's word, so meshctl can
// say why meshing is paused without signalling the process). The slot stays mapped.
void mh_degraded_publish(_Atomic uint32_t *slot);
_Noreturn void mh_corrupt(const char *fmt, ...) __attribute__((format(printf, 1, 2))) MH_COLD;
_Noreturn void mh_terminate(const char *fmt, ...) __attribute__((format(printf, 1, 2))) MH_COLD;

#endif
