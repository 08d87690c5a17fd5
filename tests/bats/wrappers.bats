#!/usr/bin/env bats
# The system calls libmesh wraps for the mesh write barrier (src/wrap_io.c), given bad
# pointers: every call must answer as the kernel would without libmesh (EFAULT, a
# datagram or a reaped child gone the same way), never crash inside the wrapper.
# The program data/mesh/badptr.c prints one line per call; the output under libmesh
# must equal the output without it.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/wrappers.bats

bats_require_minimum_version 1.5.0
load helper

setup_file() {
    local bin="$BATS_FILE_TMPDIR/bin"
    mkdir -p "$bin"
    cc -O0 -g -Wall -Wno-stringop-overread -Wno-nonnull -o "$bin/badptr" \
        "$BATS_TEST_DIRNAME/data/mesh/badptr.c" -ldl
}

setup() {
    mesh_setup || return 1
    # Meshing and its barrier with small heaps: the heap takes its memfd from the start.
    export MESH_FILE_FROM_MIB=0
    B="$BATS_FILE_TMPDIR/bin"
    [[ -x $B/badptr ]] || fail "badptr did not compile"
}

@test "bad pointers to the wrapped calls get the kernel's answers (EFAULT), as without libmesh" {
    run --separate-stderr "$B/badptr"
    assert_success
    local plain=$output
    assert_line "readv, bad iovec array: -1 EFAULT"
    assert_line "recvmsg, bad msghdr: -1 EFAULT"
    assert_line "select, bad read set: -1 EFAULT"
    assert_line "wait4, bad rusage: -1 EFAULT"
    assert_line "done"
    run --separate-stderr env LD_PRELOAD="$MESH_LIB" "$B/badptr"
    assert_success
    assert_equal "$stderr" ""
    assert_equal "$output" "$plain"
}
