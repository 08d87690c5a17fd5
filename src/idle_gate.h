// idle_gate.h - lets a helper thread wait until a core has time nothing else wants,
// without running at idle priority itself (see idle_gate.c).
//
// Layer 1 (platform).
#ifndef MH_IDLE_GATE_H
#define MH_IDLE_GATE_H

#include "common.h"

typedef enum {
    MH_GATE_OPEN,    // a core was idle just now: run a step
    MH_GATE_TIMEOUT, // still no idle time after the wait asked for: look again later
    MH_GATE_NONE,    // no gate thread (it could not start): the caller decides alone
} mh_gate_t;

// Waits at most timeout_ns for the gate thread (SCHED_IDLE) to be scheduled, starting
// it on first use. Only one thread (the background mesher) may call it.
mh_gate_t mh_idle_gate_wait(uint64_t timeout_ns);
// In a fork child: the gate thread did not come along.
void mh_idle_gate_fork_child(void);

#endif
