#!/usr/bin/env bats
# Huge objects (4 GiB, 4 GiB + 1 page and 8 GiB) seen from outside the process: the
# statistics printed at exit (MALLOCSTATS=1 and 2) and `meshctl stats PID`.  A span's
# 32-bit page count shifted unwidened made such spans 0 or 4096 bytes long (b097b13):
# the exit statistics walked the arena forever under its lock, so the process never
# exited.  The objects are never touched beyond their first and last page, so they
# cost no memory; the tests check that they stay that way.  In-process interfaces
# (mallinfo2, malloc_stats, realloc, fork, malloc_trim) are in
# tests/stress/huge_objects.c.
#
#   MESH_LIB=/path/to/libmesh.so.1 MESH_BUILD_DIR=/path/to/build bats tests/bats/huge.bats

bats_require_minimum_version 1.5.0
load helper

MESHCTL="${MESH_BUILD_DIR:-$MESH_REPO_ROOT/build}/meshctl"

SIXTEEN_GIB_AND_A_PAGE=17179873280 # the three objects together
MEM_LIMIT_KB=262144                 # 256 MiB: far below any one of the objects

setup_file() {
    local bin="$BATS_FILE_TMPDIR/bin"
    mkdir -p "$bin"
    # huge MODE [PIDFILE]: allocate 4 GiB, 4 GiB + 1 page and 8 GiB, write a marker at
    # the first and the last byte of each, then
    #   hold       print "ok" and exit 0 holding them
    #   free       check the markers, free them, print "ok", exit 0
    #   wait FILE  write the pid to FILE.held; at SIGUSR1 check the markers, free them
    #              and write FILE.freed; at the next SIGUSR1 print "ok" and exit 0
    # An alarm ends it after 10 s (a hang, maybe at exit, is a failure, not a stuck run).
    cat >"$bin/huge.c" <<'EOF'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static const size_t size[3] = {(size_t)4 << 30, ((size_t)4 << 30) + 4096, (size_t)8 << 30};
static unsigned char *p[3];
static void check(void) {
    for (int i = 0; i < 3; i++)
        if (p[i][0] != 0x40 + i || p[i][size[i] - 1] != 0x50 + i) {
            fprintf(stderr, "huge: object %d lost its markers\n", i);
            exit(1);
        }
}
static void release(void) {
    check();
    for (int i = 0; i < 3; i++) free(p[i]);
}
static void put(const char *pidfile, const char *suffix) {
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s%s.tmp", pidfile, suffix);
    snprintf(path, sizeof path, "%s%s", pidfile, suffix);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror(path);
        exit(1);
    }
}
static void await_usr1(void) {
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigwait(&set, &sig) != 0) exit(1);
}
int main(int argc, char **argv) {
    alarm(10);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (argc < 2) return 2;
    for (int i = 0; i < 3; i++) {
        if (!(p[i] = malloc(size[i]))) {
            fprintf(stderr, "huge: malloc(%zu) failed\n", size[i]);
            return 1;
        }
        p[i][0] = 0x40 + i;
        p[i][size[i] - 1] = 0x50 + i;
    }
    if (!strcmp(argv[1], "free")) {
        release();
    } else if (!strcmp(argv[1], "wait") && argc > 2) {
        put(argv[2], ".held");
        await_usr1();
        release();
        put(argv[2], ".freed");
        await_usr1();
    } else if (strcmp(argv[1], "hold") != 0) {
        return 2;
    }
    printf("ok\n");
    return 0;
}
EOF
    cc -O0 -fno-builtin -g -Wall -o "$bin/huge" "$bin/huge.c" >"$bin/huge.log" 2>&1 ||
        { cat "$bin/huge.log" >&2; return 1; }
}

setup() {
    mesh_setup || return 1
    mesh_clean_env
    B="$BATS_FILE_TMPDIR/bin"
    HOLDER_PID=
    ulimit -c 0
}

teardown() {
    if [[ -n ${HOLDER_PID:-} ]]; then
        kill -KILL "$HOLDER_PID" 2>/dev/null || true
        wait "$HOLDER_PID" 2>/dev/null || true
    fi
}

# run_huge [VAR=VALUE...] MODE: the program under libmesh, bounded by timeout as well
# as by its own alarm; $output is stdout, $stderr is stderr
run_huge() {
    run --separate-stderr timeout -s KILL 30 env LD_PRELOAD="$MESH_LIB" "$@"
}

assert_exited_ok() {
    if [[ $status -ne 0 || $output != ok ]]; then
        fail "the program did not finish: exit status $status (142: its alarm ended a hang, 137: timeout),
stdout '$output'
--- stderr:
$stderr"
    fi
}

# stat_value NAME: the number after 'NAME =' in the statistics on stderr
stat_value() {
    sed -n "s/^ *$1 *= *\\([0-9][0-9]*\\).*/\\1/p" <<<"$stderr" | head -n 1
}

# large_objects: the number of large objects the statistics on stderr list
large_objects() {
    sed -n 's/^  allocated bytes .*, \([0-9][0-9]*\) large objects)$/\1/p' <<<"$stderr" | head -n 1
}

assert_stats_count() {
    local want=$1 got
    got=$(grep -c 'libmesh heap statistics (pid ' <<<"$stderr" || true)
    ((got == want)) || fail "$got statistics reports on stderr, expected $want
--- stderr:
$stderr"
}

# assert_at_least NAME VALUE MIN / assert_below NAME VALUE MAX
assert_at_least() {
    if [[ -z $2 ]] || (($2 < $3)); then
        fail "$1 is '$2', want at least $3
--- stderr:
$stderr"
    fi
}
assert_below() {
    if [[ -z $2 ]] || (($2 >= $3)); then
        fail "$1 is '$2', want less than $3
--- stderr:
$stderr"
    fi
}

# ---- statistics at exit ------------------------------------------------------------

@test "MALLOCSTATS=1 at exit with 4 GiB, 4 GiB + 1 page and 8 GiB held: printed, exit 0" {
    run_huge MALLOCSTATS=1 "$B/huge" hold
    assert_exited_ok
    assert_stats_count 1
    assert_at_least "allocated bytes" "$(stat_value 'allocated bytes')" $SIXTEEN_GIB_AND_A_PAGE
    assert_at_least "active bytes" "$(stat_value 'active bytes')" $SIXTEEN_GIB_AND_A_PAGE
    assert_at_least "mapped bytes" "$(stat_value 'mapped bytes')" $SIXTEEN_GIB_AND_A_PAGE
    assert_below "heap file bytes" "$(stat_value 'heap file bytes')" $((MEM_LIMIT_KB * 1024))
    assert_at_least "large objects" "$(large_objects)" 3
    if grep -q "per size class" <<<"$stderr"; then
        fail "MALLOCSTATS=1 printed the size class table: $stderr"
    fi
}

@test "MALLOCSTATS=2 at exit with the huge objects held: the class table too, exit 0" {
    run_huge MALLOCSTATS=2 "$B/huge" hold
    assert_exited_ok
    assert_stats_count 1
    grep -q "per size class" <<<"$stderr" || fail "MALLOCSTATS=2 printed no size class table: $stderr"
    assert_at_least "allocated bytes" "$(stat_value 'allocated bytes')" $SIXTEEN_GIB_AND_A_PAGE
    assert_below "heap file bytes" "$(stat_value 'heap file bytes')" $((MEM_LIMIT_KB * 1024))
}

@test "MALLOCSTATS=1 and 2 at exit after freeing the huge objects (free runs of 4 GiB and more)" {
    local level
    for level in 1 2; do
        run_huge MALLOCSTATS=$level "$B/huge" free
        assert_exited_ok
        assert_stats_count 1
        assert_below "allocated bytes" "$(stat_value 'allocated bytes')" $((1 << 30))
        assert_at_least "mapped bytes" "$(stat_value 'mapped bytes')" $SIXTEEN_GIB_AND_A_PAGE
        assert_equal "$(large_objects)" 0
    done
}

# ---- meshctl stats -----------------------------------------------------------------

# wait_for FILE: up to 10 s, while the holder lives
wait_for() {
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -s $1 ]] && return 0
        kill -0 "$HOLDER_PID" 2>/dev/null || break
        sleep 0.05
    done
    fail "the program did not get to $(basename "$1"): $(cat "$BATS_TEST_TMPDIR/holder.err")"
}

# meshctl stats PID: exit 0, and the process's RSS and heap file stay small
assert_ctl_stats() {
    run --separate-stderr timeout -s KILL 20 "$MESHCTL" stats "$HOLDER_PID"
    assert_success
    assert_equal "$stderr" ""
    assert_line --index 0 "pid $HOLDER_PID"
    local rss heap
    rss=$(sed -n 's/^  rss *= *\([0-9][0-9]*\) kB.*/\1/p' <<<"$output")
    heap=$(sed -n 's/^  heap file *= *\([0-9][0-9]*\) bytes.*/\1/p' <<<"$output")
    assert_line --regexp '^  pss +=  *[1-9][0-9]* kB$'
    assert_line --regexp '^  mesh count +=  *[0-9]+$'
    if [[ -z $rss ]] || ((rss >= MEM_LIMIT_KB)); then
        fail "rss '$rss' kB: the huge objects were touched
$output"
    fi
    if [[ -z $heap ]] || ((heap >= MEM_LIMIT_KB * 1024)); then
        fail "heap file '$heap' bytes: the huge objects were populated
$output"
    fi
}

@test "meshctl stats PID on a process holding, then having freed, the huge objects" {
    [[ -x $MESHCTL ]] || fail "meshctl not found: $MESHCTL (set MESH_BUILD_DIR)"
    local pidfile="$BATS_TEST_TMPDIR/huge.pid" out="$BATS_TEST_TMPDIR/holder.out"
    env LD_PRELOAD="$MESH_LIB" MALLOCSTATS=1 "$B/huge" wait "$pidfile" \
        >"$out" 2>"$BATS_TEST_TMPDIR/holder.err" 3>&- &
    HOLDER_PID=$!
    wait_for "$pidfile.held"
    assert_equal "$(cat "$pidfile.held")" "$HOLDER_PID"
    assert_ctl_stats

    kill -USR1 "$HOLDER_PID"
    wait_for "$pidfile.freed"
    assert_ctl_stats

    kill -USR1 "$HOLDER_PID"
    local rc=0
    wait "$HOLDER_PID" || rc=$?
    HOLDER_PID=
    stderr=$(cat "$BATS_TEST_TMPDIR/holder.err")
    ((rc == 0)) || fail "the program exited with $rc (142: its alarm ended a hang)
--- stderr:
$stderr"
    assert_equal "$(cat "$out")" ok
    assert_stats_count 1
    assert_below "allocated bytes" "$(stat_value 'allocated bytes')" $((1 << 30))
    assert_equal "$(large_objects)" 0
}
