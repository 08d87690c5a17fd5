#!/usr/bin/env bats
# SIGSEGV/SIGBUS semantics with libmesh's write-barrier handler installed.
#
# libmesh installs its own SIGSEGV/SIGBUS handler (the mesh write barrier) and
# interposes sigaction()/signal() for those two signals; every fault that is not
# libmesh's must reach the program exactly as the kernel would deliver it.  The
# program data/mesh/sigtest.c installs libmesh's handler first (mesh.compact via
# dlsym), prints "barrier: libmesh" when the kernel's handler is libmesh's (so
# a test cannot pass vacuously), then exercises one case per MODE.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/signals.bats

bats_require_minimum_version 1.5.0
load helper

setup_file() {
    local bin="$BATS_FILE_TMPDIR/bin"
    mkdir -p "$bin"
    cc -O0 -fno-builtin -g -Wall -o "$bin/sigtest" "$BATS_TEST_DIRNAME/data/mesh/sigtest.c" -ldl
}

setup() {
    mesh_setup || return 1
    # Meshing and its barrier with small heaps: the heap takes its memfd from the start.
    export MESH_FILE_FROM_MIB=0
    ulimit -c 0 # the crash tests must not leave core files
    B="$BATS_FILE_TMPDIR/bin"
    [[ -x $B/sigtest ]] || fail "sigtest did not compile"
}

# sig MODE: run sigtest MODE under libmesh; stdout in $output, stderr apart
sig() {
    run --separate-stderr env LD_PRELOAD="$MESH_LIB" "$B/sigtest" "$@"
}

# the program's handler must have been behind libmesh's, or the test proves nothing
assert_barrier() {
    assert_line "barrier: libmesh"
}

assert_died_of() { # SIGNAL-NUMBER
    if ((status != 128 + $1)); then
        fail "expected death by signal $1 (exit status $((128 + $1))), got exit status $status
stdout:
$output
stderr:
$stderr"
    fi
}

@test "(a) SA_SIGINFO handler installed before libmesh's: a NULL-page store reaches it with si_addr, siglongjmp works" {
    sig siginfo-before
    assert_success
    assert_barrier
    assert_line "first fault: caught signal 11, calls 1, si_addr 0x10, si_code SEGV_MAPERR"
    assert_line "second fault: caught signal 11, calls 1, si_addr 0x10, si_code SEGV_MAPERR"
    assert_line "heap ok"
}

@test "(a) SA_SIGINFO handler installed after libmesh's: a NULL-page store reaches it with si_addr, siglongjmp works" {
    sig siginfo-after
    assert_success
    assert_barrier
    assert_line "first fault: caught signal 11, calls 1, si_addr 0x10, si_code SEGV_MAPERR"
    assert_line "second fault: caught signal 11, calls 1, si_addr 0x10, si_code SEGV_MAPERR"
    assert_line "heap ok"
}

@test "(b) handler without SA_SIGINFO (sigaction and signal()) is called with the signal number" {
    sig plain-handler
    assert_success
    assert_barrier
    assert_line "handler got signal 11, calls 1"
    sig signal-api
    assert_success
    assert_barrier
    assert_line "handler got signal 11, calls 1"
}

@test "(c) SA_RESETHAND, handler siglongjmps out: the second fault kills with SIGSEGV" {
    sig resethand-longjmp
    assert_barrier
    assert_line "first fault: caught signal 11, calls 1, si_addr 0x10, si_code SEGV_MAPERR"
    refute_line --partial "SA_RESETHAND not honoured"
    assert_died_of 11
}

@test "(c) SA_RESETHAND, handler returns: the re-executed store kills with SIGSEGV, handler ran once" {
    sig resethand-return
    assert_barrier
    assert_died_of 11
    [[ $(grep -c "handler called, returning" <<<"$output") -eq 1 ]] || fail "handler calls: $output"
    refute_line --partial "survived"
}

@test "(d) SIG_DFL (explicit, or never set): a NULL-page store kills with SIGSEGV, not SIGABRT" {
    sig dfl
    assert_barrier
    assert_line "faulting"
    refute_line --partial "survived"
    assert_died_of 11
    sig never
    assert_barrier
    assert_died_of 11
}

@test "(e) SIG_IGN: a real fault still kills with SIGSEGV" {
    sig ign
    assert_barrier
    assert_line "faulting"
    assert_died_of 11
}

@test "(e) SIG_IGN: SIGSEGV from kill() and SIGBUS from raise() are ignored, as without libmesh" {
    sig ign-kill
    [[ $stderr == *"barrier: libmesh"* ]] || fail "libmesh's handler is not installed: $stderr"
    same_output_with_mesh "$B/sigtest" ign-kill
}

@test "(f) sigaction(SIGSEGV, NULL, &old) and signal() report the program's own handlers back" {
    sig query
    assert_success
    same_output_with_mesh "$B/sigtest" query
}

@test "(f) sigset() and sysv_signal() handlers are reported back by sigaction(); libmesh's handler stays in front" {
    same_output_with_mesh "$B/sigtest" sigset
    sig sigset
    assert_success
    [[ $stderr == *"barrier after sigset: libmesh"* && $stderr == *"barrier after sysv_signal: libmesh"* ]] ||
        fail "sigset()/sysv_signal() replaced libmesh's SIGSEGV handler (the mesh write barrier): $stderr"
}

@test "(g) SIGBUS from a truncated file mapping reaches the program's SIGBUS handler" {
    sig sigbus-handler
    assert_success
    assert_line "caught signal 7 (SIGBUS 7), si_addr is the store's address 1, si_code BUS_ADRERR"
}

@test "(g) SIGBUS from a truncated file mapping kills with SIGBUS by default (exit 135)" {
    sig sigbus-dfl
    assert_line "touching a truncated mapping"
    refute_line "survived"
    assert_died_of 7
}

# start sigtest wait-kill under libmesh, wait for "ready", send SIGNAL, return its status
kill_from_outside() {
    local signal=$1 out="$BATS_TEST_TMPDIR/wait-kill.out" pid i rc=0
    LD_PRELOAD="$MESH_LIB" "$B/sigtest" wait-kill >"$out" 2>&1 &
    pid=$!
    for ((i = 0; i < 400; i++)); do
        grep -q '^ready' "$out" && break
        sleep 0.025
    done
    grep -q '^barrier: libmesh' "$out" || fail "libmesh's handler is not installed: $(cat "$out")"
    kill "-$signal" "$pid"
    wait "$pid" 2>/dev/null || rc=$?
    output=$(cat "$out")
    mapfile -t lines <"$out"
    stderr=""
    status=$rc
}

@test "(h) kill -SEGV / kill -BUS from outside with the default action kill with that signal" {
    kill_from_outside SEGV
    refute_line "no signal came"
    assert_died_of 11
    kill_from_outside BUS
    refute_line "no signal came"
    assert_died_of 7
}

@test "(i) SA_ONSTACK handler on a sigaltstack recovers from a stack overflow (installed after libmesh's)" {
    sig altstack
    assert_success
    assert_barrier
    assert_line "recovered from the stack overflow: signal 11, handler on the alternate stack 1"
    assert_line "recovered twice"
}

@test "(i) SA_ONSTACK handler on a sigaltstack recovers from a stack overflow (installed before libmesh's)" {
    sig altstack-before
    assert_success
    assert_barrier
    assert_line "recovered from the stack overflow: signal 11, handler on the alternate stack 1"
    assert_line "recovered twice"
}

@test "inside the program's handler SIGSEGV is blocked (no SA_NODEFER) and sa_mask applies, as without libmesh" {
    same_output_with_mesh "$B/sigtest" mask-in-handler
}

@test "a second fault inside the program's handler (no SA_NODEFER) kills with SIGSEGV, no re-entry" {
    sig nested
    assert_barrier
    assert_line "handler entered, faulting again inside it"
    refute_line --partial "re-entered"
    assert_died_of 11
}

@test "a handler that edits the ucontext (skips the faulting store) and returns resumes there" {
    same_output_with_mesh "$B/sigtest" skip-insn
}

@test "the program's own mprotect write barrier on heap memory: each fault reaches its handler promptly" {
    # 200 stores into a malloc'd page the program made read-only; its handler makes it
    # writable again.  Without libmesh this takes about 1 ms.
    sig gc-barrier
    assert_success
    assert_line "200 protected stores: handler calls 200, all SEGV_ACCERR at the store's address 1"
    local ms
    ms=$(sed -n 's/^elapsed_ms=//p' <<<"$stderr")
    ((ms < 250)) || fail "200 program-owned protection faults on heap memory took $ms ms (libmesh retries each one before passing it on)"
}

@test "SIGSEGV put back to the default behind libmesh's back: meshing goes on, the program reads the default, a fault still kills" {
    sig raw-reset-dfl
    assert_died_of 11
    assert_line "meshed after the reset: yes"
    assert_line "barrier: libmesh"
    assert_line "program reads: SIG_DFL"
    assert_line "objects intact"
    [[ "$stderr" != *"libmesh:"* ]] || fail "libmesh printed: $stderr"
}

@test "a SIGSEGV handler installed with a raw rt_sigaction: meshing stops with one warning, the handler gets its faults" {
    sig raw-rt-sigaction
    assert_success
    assert_line "meshes during the compactions: 0"
    assert_line "fault after the raw install: caught signal 11, calls 1, si_addr 0x10, si_code SEGV_MAPERR"
    assert_line "objects intact"
    assert_equal "$stderr" "libmesh: meshing stopped: the SIGSEGV/SIGBUS handler was replaced without sigaction() (a raw rt_sigaction system call); the heap is no longer compacted"
}
