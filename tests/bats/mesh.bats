#!/usr/bin/env bats
# Meshing in whole programs: Python's heap meshed and then forked, the VMA budget
# (MESH_MAX_ALIASES, MESH_MAX_MAP_COUNT), MESH_PERIOD_MS=0, MALLOCSTATS, and a
# thread that blocks every signal while writing into spans being meshed.
#
# Programs: data/mesh/py_mesh.py (Python, PYTHONMALLOC=malloc so every object
# comes from libmesh) and data/mesh/frag.c (fragmented C heaps).  Both print a
# deterministic result on stdout and libmesh's counters on stderr.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/mesh.bats

bats_require_minimum_version 1.5.0
load helper

setup_file() {
    local bin="$BATS_FILE_TMPDIR/bin"
    mkdir -p "$bin"
    cc -O0 -fno-builtin -g -Wall -o "$bin/frag" "$BATS_TEST_DIRNAME/data/mesh/frag.c" -pthread -ldl
}

setup() {
    mesh_setup || return 1
    # Meshing and its barrier with small heaps: the heap takes its memfd from the start.
    export MESH_FILE_FROM_MIB=0
    ulimit -c 0
    B="$BATS_FILE_TMPDIR/bin"
    D="$MESH_DATA_DIR/mesh"
    [[ -x $B/frag ]] || fail "frag did not compile"
}

# run_mesh ENV=VALUE... -- CMD...: run CMD under libmesh with extra environment,
# stdout in $output/$lines, stderr in $stderr/$stderr_lines
run_mesh() {
    local envs=()
    while [[ $1 != -- ]]; do
        envs+=("$1")
        shift
    done
    shift
    run --separate-stderr env LD_PRELOAD="$MESH_LIB" "${envs[@]}" "$@"
}

# stat NAME: a counter from the last "stats: ..." / "mesh: ..." line on stderr
stat_of() {
    local v
    v=$(grep -oE "(^| )$1=[0-9]+" <<<"$stderr" | tail -n 1 | cut -d= -f2)
    [[ -n $v ]] || fail "no $1=... in stderr: $stderr"
    echo "$v"
}

py_fork() { PYTHONMALLOC=malloc python3 "$MESH_DATA_DIR/mesh/py_mesh.py" fork; }
py_pool() { PYTHONMALLOC=malloc python3 "$MESH_DATA_DIR/mesh/py_mesh.py" pool; }

@test "python: heap meshed with mesh.compact via ctypes, then os.fork(): child and parent see intact data" {
    same_output_with_mesh py_fork
    run_mesh PYTHONMALLOC=malloc -- python3 "$D/py_mesh.py" fork
    assert_success
    assert_line "fork from the main thread: child ok, exit 0"
    assert_line "fork from a thread: child ok, exit 0"
    # the parent meshed before forking, each child meshed again on its own
    local parent
    parent=$(grep -oE '^mesh: parent .*mesh_count=[0-9]+' <<<"$stderr" | grep -oE '[0-9]+$')
    ((parent > 0)) || fail "the parent meshed nothing: $stderr"
    [[ $(grep -c '^mesh: child ' <<<"$stderr") -eq 2 ]] || fail "expected two child reports: $stderr"
}

@test "python: multiprocessing.Pool map works after meshing (and after meshing again)" {
    same_output_with_mesh py_pool
    run_mesh PYTHONMALLOC=malloc -- python3 "$D/py_mesh.py" pool
    assert_success
    assert_line "pool map: 6000 results, all correct"
    assert_line "second pool after more meshing: all correct"
    (($(stat_of mesh_count) > 0)) || fail "nothing was meshed: $stderr"
}

@test "MESH_MAX_ALIASES=20: exactly one 'meshing paused' line, output correct, at most 20 aliases" {
    same_output_with_mesh "$B/frag" compact
    run_mesh MESH_MAX_ALIASES=20 -- "$B/frag" compact
    assert_success
    local want
    want=$("$B/frag" compact)
    [[ $output == "$want" ]] || fail "output differs: '$output', without libmesh '$want'"
    local n
    n=$(grep -c 'libmesh: meshing paused' <<<"$stderr" || true)
    ((n == 1)) || fail "expected exactly one 'meshing paused' line, got $n: $stderr"
    ((n == $(grep -c '^libmesh:' <<<"$stderr"))) || fail "other libmesh lines on stderr: $stderr"
    local aliases count
    aliases=$(stat_of aliases)
    count=$(stat_of mesh_count)
    ((aliases <= 20)) || fail "stats.mesh_aliases is $aliases, above MESH_MAX_ALIASES=20"
    ((count >= 20)) || fail "only $count meshes: the budget was never reached, so the test proves nothing"
}

@test "MESH_MAX_MAP_COUNT=off suppresses the 'meshing paused' line" {
    run_mesh MESH_MAX_ALIASES=20 MESH_MAX_MAP_COUNT=off -- "$B/frag" compact
    assert_success
    refute [ -z "$output" ]
    if grep -q 'meshing paused' <<<"$stderr"; then
        fail "the line was printed with MESH_MAX_MAP_COUNT=off: $stderr"
    fi
    (($(stat_of aliases) <= 20)) || fail "budget not kept: $stderr"
}

@test "MESH_PERIOD_MS=0: frees and malloc_trim(0) never mesh (control: MESH_PERIOD_MS=1 does)" {
    run_mesh MESH_PERIOD_MS=0 -- "$B/frag" frees
    assert_success
    (($(stat_of mesh_count) == 0)) || fail "meshing happened with MESH_PERIOD_MS=0: $stderr"
    run_mesh MESH_PERIOD_MS=0 MESH_CLASS_AT_A_TIME=0 -- "$B/frag" trim
    assert_success
    (($(stat_of mesh_count) == 0)) || fail "malloc_trim meshed with MESH_PERIOD_MS=0: $stderr"
    run_mesh MESH_PERIOD_MS=1 -- "$B/frag" frees
    assert_success
    (($(stat_of mesh_count) > 0)) || fail "control run meshed nothing: the program does not trigger meshing"
    # and the results are those of a run without libmesh
    same_output_with_mesh env MESH_PERIOD_MS=0 "$B/frag" frees
}

@test "MALLOCSTATS=1 reports a mesh count > 0 for a fragmenting program (default settings, the memfd from the start)" {
    run_mesh MALLOCSTATS=1 -- "$B/frag" frees
    assert_success
    local line n
    line=$(grep -E '^ *mesh count *= *[0-9]+' <<<"$stderr") || fail "no 'mesh count' line at exit: $stderr"
    n=$(grep -oE '[0-9]+$' <<<"$line")
    ((n > 0)) || fail "MALLOCSTATS=1: mesh count is 0 at exit: $stderr"
    (($(stat_of mesh_count) == n)) || fail "MALLOCSTATS mesh count $n differs from stats.mesh_count: $stderr"
}

@test "a thread with every signal blocked survives writing into spans while they are meshed" {
    # Worker threads that block all signals (sigfillset + pthread_sigmask) are common;
    # a store into a span being meshed must not kill them.
    run_mesh -- "$B/frag" blocked 1500
    if ((status != 0)); then
        fail "exit status $status (139: killed by SIGSEGV): a store into a span being meshed from a thread with SIGSEGV blocked
stdout: $output
stderr: $stderr"
    fi
    assert_line "writer with all signals blocked survived"
    (($(stat_of mesh_count) > 0)) || fail "nothing was meshed: $stderr"
}

@test "a thread created with every signal blocked (pthread_attr_setsigmask_np) survives writing into spans being meshed" {
    run_mesh -- "$B/frag" attr-mask 1500
    if ((status != 0)); then
        fail "exit status $status (139: killed by SIGSEGV): the thread's initial signal mask (set by glibc with a raw rt_sigprocmask) blocks SIGSEGV
stdout: $output
stderr: $stderr"
    fi
    assert_line "writer with all signals blocked survived"
}

@test "a signal handler whose sa_mask holds every signal survives writing into spans being meshed" {
    # sigfillset(&sa.sa_mask) for a SIGUSR1 handler: the kernel blocks SIGSEGV while it runs
    run_mesh -- "$B/frag" handler-mask 1500
    if ((status != 0)); then
        fail "exit status $status (139: killed by SIGSEGV): a store into a span being meshed from a handler whose sa_mask blocks SIGSEGV
stdout: $output
stderr: $stderr"
    fi
    assert_line "writer with all signals blocked survived"
}
