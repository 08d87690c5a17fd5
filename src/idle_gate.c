// idle_gate.c - the idle gate: a tiny helper thread at SCHED_IDLE whose only work is to
// answer "a core was idle" when it gets to run, so that the background mesher can
// take only CPU time nothing else wants while itself running at normal priority.
//
// Why not run the mesher at SCHED_IDLE itself: a mesh tick holds the pass lock and a
// size class lock, and raises the write barrier. An idle-priority holder preempted by
// busy program threads kept them for seconds (priority inversion): frees and faulting
// writers of that class, mesh.compact and fork() (whose prepare handler takes every
// class lock) waited until the machine had idle time, which a loaded machine may not
// have for minutes. The gate holds nothing: when it is starved, only the mesher waits.
//
// Protocol: the mesher bumps `ask` and sleeps on `answer`; the gate sleeps on `ask`,
// and once scheduled stores the request it saw into `answer`. Both words are
// process-private futexes. One asker at a time (the background thread). The gate
// stays for the life of the process (a later mesher reuses it) and leaves with the
// other helpers once only helpers are left.
//
// Layer 1 (platform): helper (thread start), lock (futex), os (clock).
#define _GNU_SOURCE
#include "idle_gate.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>

#include "atomic.h"
#include "helper.h"
#include "lock.h"
#include "os.h"

static _Atomic uint32_t ask;     // requests made (futex word the gate sleeps on)
static _Atomic uint32_t answer;  // the last request the gate answered (the asker sleeps on it)
static _Atomic int state;        // 0 not running, 1 running, 2 could not start
#define GATE_IDLE_WAIT_NS 500000000ull // the gate's own wait: it notices the process ending

static struct timespec ts_of(uint64_t ns) {
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

static void *gate_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "libmesh-idle", 0, 0, 0);
    struct sched_param idle = {0};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle); // lowering needs no privilege
    uint64_t alone_check = 0;
    uint32_t seen = mh_load_acquire(&ask);
    while (!mh_helper_alone(&alone_check)) {
        uint32_t now = mh_load_acquire(&ask);
        if (now == seen) {
            struct timespec ts = ts_of(GATE_IDLE_WAIT_NS);
            mh_futex_wait(&ask, seen, &ts);
            continue;
        }
        // Running at all means this core had nothing else to run: answer.
        seen = now;
        mh_store_release(&answer, now);
        mh_futex_wake(&answer, 1);
    }
    mh_store_release(&state, 0);
    mh_helper_leaving();
    return NULL;
}

static bool gate_started(void) {
    int st = mh_load_acquire(&state);
    if (st == 1) return true;
    if (st != 0) return false; // it could not start: no second try
    mh_store_release(&state, 1);
    if (mh_helper_start(gate_main)) return true;
    mh_store_release(&state, 2);
    return false;
}

mh_gate_t mh_idle_gate_wait(uint64_t timeout_ns) {
    if (!gate_started()) return MH_GATE_NONE;
    uint32_t want = mh_fetch_add_seqcst(&ask, 1) + 1;
    mh_futex_wake(&ask, 1);
    uint64_t start = mh_os_now_ns();
    for (;;) {
        uint32_t got = mh_load_acquire(&answer);
        if ((int32_t)(got - want) >= 0) return MH_GATE_OPEN;
        uint64_t spent = mh_os_now_ns() - start;
        if (spent >= timeout_ns) return MH_GATE_TIMEOUT;
        struct timespec ts = ts_of(timeout_ns - spent);
        mh_futex_wait(&answer, got, &ts);
    }
}

void mh_idle_gate_fork_child(void) {
    mh_store_relaxed(&state, 0);
    mh_store_relaxed(&answer, mh_load_relaxed(&ask));
}
