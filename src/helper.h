// helper.h - libmesh's helper threads: start them, and let them leave once only
// helpers are left, so they never keep a process alive (see helper.c).
//
// Layer 1 (platform).
#ifndef MH_HELPER_H
#define MH_HELPER_H

#include "common.h"

// Starts fn on a detached thread with the program's signals blocked; false if it cannot.
bool mh_helper_start(void *(*fn)(void *));
// A helper calls this right before it returns.
void mh_helper_leaving(void);
// True when every thread but the helpers has ended (main thread included): the
// helper should return now. Checks at most every 500 ms (*last_check_ns: the
// helper's own clock, start at 0).
bool mh_helper_alone(uint64_t *last_check_ns);
// In a fork child: no helper came along.
void mh_helper_fork_child(void);

#endif
