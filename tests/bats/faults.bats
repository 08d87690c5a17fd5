#!/usr/bin/env bats
# faults.bats - libmesh under failing system calls and tight resource limits. The
# failure policy (src/log.h, src/arena_fork.c): nothing aborts on a resource failure,
# the heap falls back to something correct (private memory, copies) and says so once
# per kind; no object is lost; malloc returns NULL, with errno ENOMEM, only when memory
# is really not there.
#
# The workload is tests/faults/driver (phases: small objects of meshable sizes, 80%
# freed, mesh.compact, a second thread freeing across threads, fork, realloc chains,
# calloc with reuse, aligned and large objects, descriptor trouble, fork again, large
# objects freed and calloc'd again, malloc_trim; every kept object checked against its
# pattern, calloc'd memory checked for zeros). The failures:
#   failshim.so    LD_PRELOAD shim loaded before libmesh: memfd_create, mmap, mremap,
#                  madvise, mprotect, fallocate, ftruncate fail with an errno - from the
#                  first call ("start"), or once the driver is up: every call ("all"),
#                  every call after the first K ("after:K"), every Nth ("nth:N"), at
#                  random ("random:PCT", fixed seeds);
#   seccomp        a filter returning an errno: from exec on (seccomp-run), or installed
#                  by the driver after start-up (--seccomp=CALL);
#   limits         RLIMIT_AS (above and below what the driver needs), RLIMIT_FSIZE (1 MiB,
#                  0), RLIMIT_NOFILE (16; with every descriptor closed; with every
#                  descriptor taken before a fork), vm.max_map_count (4096, 20000).
# Each case asserts: exit 0 (no SIGABRT/SIGSEGV/SIGBUS/SIGXFSZ, no hang), every object
# intact (fork children included), NULL only with ENOMEM and only where the case lets
# memory run out (mmap failures, RLIMIT_AS below the driver's needs), nothing but
# "libmesh: " lines on stderr and at most one line per kind and process (lines are
# compared with their numbers blanked; at most 1 + forks copies, at most 6 kinds).
#
# The matrix (case, outcome, failures injected, libmesh lines) is written to
# $BATS_FILE_TMPDIR/matrix.txt and $MESH_BUILD_DIR/tests/faults/matrix.txt and printed
# as "# " lines at the end.
#
# vm.max_map_count is machine-wide (no namespace has its own): those two cases need
# root; each saves the value, sets it for one driver run (about a second) and restores
# it on every way out (a trap in the shell that set it, and teardown). Other processes
# of the machine see the low value during that run.
#
#   MESH_LIB=build/libmesh.so.1 MESH_BUILD_DIR=build bats tests/bats/faults.bats
#   bats -f 'mprotect' tests/bats/faults.bats          # one call's cases
# FAULT_WATCHDOG (default 5 s): a phase of the driver (or a fork child) still going
# after that is a hang (the driver names the phase; a normal phase takes well under a
# second); FAULT_SMALL: small objects per phase (default 10000).

load helper

FAULTS_DIR="${MESH_BUILD_DIR:-$MESH_REPO_ROOT/build}/tests/faults"
: "${FAULT_WATCHDOG:=5}"
: "${FAULT_SMALL:=10000}"
MATRIX="$BATS_FILE_TMPDIR/matrix.txt"
# the driver with the arguments every case uses
DRIVER=("$FAULTS_DIR/driver" "--small=$FAULT_SMALL" "--watchdog=$FAULT_WATCHDOG")

setup_file() {
    # injected: failures failshim made in the driver process ("-": seccomp or a limit)
    printf '%-40s | %-44s | %-9s | %s\n' "case" "outcome" "injected" "libmesh lines on stderr" >"$MATRIX"
}

teardown_file() {
    cp "$MATRIX" "$FAULTS_DIR/matrix.txt" 2>/dev/null || true
    sed 's/^/# /' "$MATRIX" >&3
}

setup() {
    mesh_setup
    mesh_clean_env
    local f
    for f in driver failshim.so seccomp-run; do
        if [[ ! -e $FAULTS_DIR/$f ]]; then
            fail "$FAULTS_DIR/$f not found: build the tests first (tools/build) or set MESH_BUILD_DIR"
            return 1
        fi
    done
}

teardown() {
    # a max_map_count case that did not get to restore the value (killed): do it here
    if [[ -f $BATS_TEST_TMPDIR/map_count.saved ]]; then
        cat "$BATS_TEST_TMPDIR/map_count.saved" >/proc/sys/vm/max_map_count 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------- running a case

# _fault_exec DIR LIMITS CMD...: runs CMD in a subshell with `ulimit LIMITS` (words,
# may be empty), stdout to DIR/out and stderr to DIR/err through pipes (a regular file
# would be subject to RLIMIT_FSIZE), its exit status to DIR/rc. A backstop timeout
# kills what the driver's own watchdog did not end.
_fault_exec() {
    local d=$1 limits=$2
    shift 2
    rm -f "$d/err.fifo"
    mkfifo "$d/err.fifo"
    cat "$d/err.fifo" >"$d/err" &
    local cat_pid=$!
    (
        set +eE +o pipefail
        trap - ERR
        (
            # shellcheck disable=SC2086 # LIMITS are words for ulimit
            if [[ -n $limits ]]; then ulimit $limits || exit 97; fi
            exec timeout -k 5 90 "$@"
        )
        echo $? >"$d/rc"
    ) 2>"$d/err.fifo" 3>&- 4>&- </dev/null | cat >"$d/out"
    wait "$cat_pid" || true
}


# fault_case NAME EXPECT LIMITS CMD...: runs one case, adds its row to the matrix and
# fails the test unless the outcome is acceptable. EXPECT: "ok" (everything works, no
# NULL at all) or "enomem" (NULL with ENOMEM allowed: memory really runs out; a fork
# child that can map nothing may end with exit 127 and its one line).
fault_case() {
    local name=$1 expect=$2 limits=$3
    shift 3
    local d="$BATS_TEST_TMPDIR/case"
    mkdir -p "$d"
    : >"$d/shim.log"
    _fault_exec "$d" "$limits" "$@"
    _fault_judge "$name" "$expect" "$d"
}

_sig_name() { kill -l "$1" 2>/dev/null | sed 's/^/SIG/' || echo "signal $1"; }

_fault_judge() {
    local name=$1 expect=$2 d=$3
    local rc result problems=() outcome
    rc=$(cat "$d/rc" 2>/dev/null || echo 255)
    result=$(grep -m1 '^driver: result=' "$d/out" || true)
    _kv() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$result"; }
    local res nenomem corrupt nother child_fail forks
    res=$(sed -n 's/^driver: result=\([^ ]*\).*/\1/p' <<<"$result")
    nenomem=$(_kv null_enomem) corrupt=$(_kv corrupt) nother=$(_kv null_other)
    child_fail=$(_kv child_fail) forks=$(_kv forks)

    if ((rc == 124 || rc == 137)); then
        outcome="HANG (killed by the backstop timeout)"
    elif ((rc == 3)) && grep -q ': HANG: ' "$d/out"; then
        outcome="HANG in $(sed -n "s/^\\(driver[-a-z]*\\): HANG: .*during phase '\\(.*\\)'.*/\\1: \\2/p" "$d/out" | head -n1)"
    elif ((rc > 128)); then
        outcome="killed by $(_sig_name $((rc - 128)))"
    elif [[ -z $result ]]; then
        outcome="no result line (exit $rc)"
    elif [[ $res == FAIL && $expect == enomem ]] && ((corrupt == 0 && nother == 0)) &&
        (($(grep -c '^driver: fork #[0-9] child exited 127$' "$d/out" || true) == child_fail)) &&
        grep -q 'the child cannot separate its heap' "$d/err"; then
        # mmap refused for good in a fork child: it cannot stop sharing pages with the
        # parent, so it ends with one line (exit 127); the parent must be intact
        outcome="ok, child exited 127 x$child_fail (no mmap)"
    elif [[ $res == FAIL ]]; then
        outcome="FAIL corrupt=$corrupt null_other=$nother child_fail=$child_fail"
    elif ((rc != 0)); then
        outcome="exit $rc"
    elif [[ $res == enomem ]]; then
        outcome="ok, malloc NULL/ENOMEM x$nenomem"
        [[ $expect == enomem ]] || problems+=("malloc returned NULL ($nenomem times, ENOMEM) though memory was there")
    else
        outcome="ok"
    fi
    [[ $outcome == ok* ]] || problems+=("outcome: $outcome")
    grep -q '^driver-child: .*problems' "$d/out" && problems+=("a fork child found problems")

    # stderr: libmesh's lines only, one per kind and process
    local stray lines distinct maxrep
    stray=$(grep -v '^libmesh: ' "$d/err" | head -n 5 || true)
    [[ -z $stray ]] || problems+=("stderr holds other lines: $stray")
    lines=$(grep -c '^libmesh: ' "$d/err" || true)
    distinct=$(grep '^libmesh: ' "$d/err" | sed 's/[0-9][0-9]*/N/g' | sort -u | wc -l)
    maxrep=$(grep '^libmesh: ' "$d/err" | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $1 }')
    if ((${maxrep:-0} > 1 + ${forks:-0})); then
        problems+=("one libmesh line repeated $maxrep times (processes: $((1 + ${forks:-0})))")
    fi
    ((distinct <= 6)) || problems+=("$distinct different libmesh lines (there are 6 kinds)")

    local injected=-
    if grep -q '^driver: HANG: .* injected=[0-9]' "$d/out"; then # no exit, no shim line
        injected=$(sed -n 's/^driver: HANG: .* injected=\([0-9]*\).*/\1/p' "$d/out" | head -n 1)
    elif [[ -s $d/shim.log ]]; then
        # the driver's own line: the last one (it waits for its children); a child's
        # count starts from the parent's at the fork
        injected=$(sed -n 's/.* injected=\([0-9]*\).*/\1/p' "$d/shim.log" | tail -n 1)
    fi
    local summary="none"
    if ((lines > 0)); then
        summary="$lines: $(grep '^libmesh: ' "$d/err" | sed "s/^libmesh: //; s|$MESH_CONF|\$MESH_CONF|" |
            cut -c1-72 | sort -u | paste -sd '|' | sed 's/|/ | /g')"
    fi
    printf '%-40s | %-44s | %-9s | %s\n' "$name" "$outcome" "$injected" "$summary" >>"$MATRIX"

    if ((${#problems[@]})); then
        {
            echo "case: $name"
            printf '  - %s\n' "${problems[@]}"
            echo "--- driver stdout (last 25 lines):"
            tail -n 25 "$d/out"
            echo "--- stderr (first 20 lines):"
            head -n 20 "$d/err"
            echo "--- failshim:"
            cat "$d/shim.log"
        } | fail
    fi
}

# shim_case CALL MODE EXPECT [ERRNO]: the driver under failshim. MODE "start": every
# call from exec on; "after:K": every call after the first K once the driver is up;
# otherwise armed by the driver after start-up (FAIL_ARM=manual) with FAIL_MODE=MODE.
shim_case() {
    local call=$1 mode=$2 expect=$3 err=${4:-ENOMEM}
    local arm=manual fmode=$mode name="$call $mode" after=0
    [[ $mode == start ]] && arm=auto fmode=all
    [[ $mode == after:* ]] && fmode=all after=${mode#after:}
    [[ $err != ENOMEM ]] && name="$name $err"
    fault_case "$name" "$expect" "" env \
        LD_PRELOAD="$FAULTS_DIR/failshim.so $MESH_LIB" FAIL_CALLS="$call" FAIL_MODE="$fmode" \
        FAIL_ARM="$arm" FAIL_AFTER="$after" FAIL_SEED=$((${#call} * 7 + ${#mode})) FAIL_ERRNO="$err" \
        FAIL_LOG="$BATS_TEST_TMPDIR/case/shim.log" "${DRIVER[@]}"
}

# seccomp_exec_case CALL: CALL fails with EPERM from exec on (seccomp-run).
seccomp_exec_case() {
    fault_case "seccomp exec $1 EPERM" ok "" "$FAULTS_DIR/seccomp-run" "$1" EPERM \
        env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

# seccomp_late_case CALL EXPECT: the driver installs the filter after start-up.
seccomp_late_case() {
    fault_case "seccomp after start $1 EPERM" "$2" "" env LD_PRELOAD="$MESH_LIB" \
        "${DRIVER[@]}" --seccomp="$1" --seccomp-errno=EPERM
}

# ---------------------------------------------------------------- the tools themselves

ALL_CALLS=memfd_create,mmap,mremap,madvise,mprotect,fallocate,ftruncate

@test "harness: failshim fails each wrapped call, libc and raw syscall(2) alike" {
    run env LD_PRELOAD="$FAULTS_DIR/failshim.so" FAIL_CALLS=$ALL_CALLS FAIL_ERRNO=EAGAIN \
        "$FAULTS_DIR/driver" --selftest
    assert_success
    assert_output "driver: selftest memfd_create=EAGAIN syscall_memfd_create=EAGAIN mmap=EAGAIN mremap=EAGAIN madvise=EAGAIN mprotect=EAGAIN ftruncate=EAGAIN fallocate=EAGAIN"
    run env LD_PRELOAD="$FAULTS_DIR/failshim.so" FAIL_CALLS=mmap "$FAULTS_DIR/driver" --selftest
    assert_output "driver: selftest memfd_create=0 syscall_memfd_create=0 mmap=ENOMEM mremap=0 madvise=0 mprotect=0 ftruncate=0 fallocate=0"
}

@test "harness: the seccomp filter fails what it is told, from exec or installed later" {
    run "$FAULTS_DIR/seccomp-run" memfd_create,ftruncate,fallocate,madvise,mremap EPERM "$FAULTS_DIR/driver" --selftest
    assert_success
    assert_output "driver: selftest memfd_create=EPERM syscall_memfd_create=EPERM mmap=0 mremap=EPERM madvise=EPERM mprotect=0 ftruncate=EPERM fallocate=EPERM"
    run "$FAULTS_DIR/driver" --selftest --seccomp=$ALL_CALLS --seccomp-errno=ENOSYS
    assert_success
    assert_output "driver: selftest memfd_create=ENOSYS syscall_memfd_create=ENOSYS mmap=ENOSYS mremap=ENOSYS madvise=ENOSYS mprotect=ENOSYS ftruncate=ENOSYS fallocate=ENOSYS"
}

# ---------------------------------------------------------------- failshim
# (mmap: malloc may run out of memory, NULL with ENOMEM is allowed; nothing else may
# cost a NULL, the heap has fallbacks for all of them. nth:3 instead of nth:7 for the
# calls made only a few times a run: memfd_create, mremap, ftruncate.)

@test "failshim: memfd_create start" { shim_case memfd_create start ok; }
@test "failshim: memfd_create all" { shim_case memfd_create all ok; }
@test "failshim: memfd_create nth:2" { shim_case memfd_create nth:2 ok; }
@test "failshim: memfd_create nth:3" { shim_case memfd_create nth:3 ok; }
@test "failshim: memfd_create random:5" { shim_case memfd_create random:5 ok; }
@test "failshim: memfd_create random:30" { shim_case memfd_create random:30 ok; }

@test "failshim: mmap start" { shim_case mmap start enomem; }
@test "failshim: mmap all" { shim_case mmap all enomem; }
@test "failshim: mmap nth:2" { shim_case mmap nth:2 enomem; }
@test "failshim: mmap nth:7" { shim_case mmap nth:7 enomem; }
@test "failshim: mmap random:5" { shim_case mmap random:5 enomem; }
@test "failshim: mmap random:30" { shim_case mmap random:30 enomem; }

@test "failshim: mremap start" { shim_case mremap start ok; }
@test "failshim: mremap all" { shim_case mremap all ok; }
@test "failshim: mremap nth:2" { shim_case mremap nth:2 ok; }
@test "failshim: mremap nth:3" { shim_case mremap nth:3 ok; }
@test "failshim: mremap random:5" { shim_case mremap random:5 ok; }
@test "failshim: mremap random:30" { shim_case mremap random:30 ok; }

@test "failshim: madvise start" { shim_case madvise start ok; }
@test "failshim: madvise all" { shim_case madvise all ok; }
@test "failshim: madvise nth:2" { shim_case madvise nth:2 ok; }
@test "failshim: madvise nth:7" { shim_case madvise nth:7 ok; }
@test "failshim: madvise random:5" { shim_case madvise random:5 ok; }
@test "failshim: madvise random:30" { shim_case madvise random:30 ok; }

@test "failshim: mprotect start" { shim_case mprotect start ok; }
@test "failshim: mprotect all" { shim_case mprotect all ok; }
@test "failshim: mprotect nth:2" { shim_case mprotect nth:2 ok; }
@test "failshim: mprotect nth:7" { shim_case mprotect nth:7 ok; }
@test "failshim: mprotect random:5" { shim_case mprotect random:5 ok; }
@test "failshim: mprotect random:30" { shim_case mprotect random:30 ok; }

@test "failshim: fallocate start" { shim_case fallocate start ok; }
@test "failshim: fallocate all" { shim_case fallocate all ok; }
@test "failshim: fallocate nth:2" { shim_case fallocate nth:2 ok; }
@test "failshim: fallocate nth:7" { shim_case fallocate nth:7 ok; }
@test "failshim: fallocate random:5" { shim_case fallocate random:5 ok; }
@test "failshim: fallocate random:30" { shim_case fallocate random:30 ok; }

@test "failshim: ftruncate start" { shim_case ftruncate start ok; }
@test "failshim: ftruncate all" { shim_case ftruncate all ok; }
@test "failshim: ftruncate nth:2" { shim_case ftruncate nth:2 ok; }
@test "failshim: ftruncate nth:3" { shim_case ftruncate nth:3 ok; }
@test "failshim: ftruncate random:5" { shim_case ftruncate random:5 ok; }
@test "failshim: ftruncate random:30" { shim_case ftruncate random:30 ok; }

# the errnos real systems give: old kernels, file systems without hole punching,
# MADV_REMOVE refused, a transient EAGAIN from mmap
@test "failshim: memfd_create start ENOSYS" { shim_case memfd_create start ok ENOSYS; }
@test "failshim: fallocate all EOPNOTSUPP" { shim_case fallocate all ok EOPNOTSUPP; }
@test "failshim: madvise all EINVAL" { shim_case madvise all ok EINVAL; }
@test "failshim: mmap random:30 EAGAIN" { shim_case mmap random:30 enomem EAGAIN; }

# everything fails from the middle of the run on (the heap has grown, meshed, forked)
@test "failshim: mmap after:300" { shim_case mmap after:300 enomem; }
@test "failshim: mprotect after:100" { shim_case mprotect after:100 ok; }
@test "failshim: madvise after:1000" { shim_case madvise after:1000 ok; }
@test "failshim: fallocate after:300" { shim_case fallocate after:300 ok; }

# ---------------------------------------------------------------- seccomp

# from exec on, every call (the loader needs mmap and mprotect, so not those)
@test "seccomp from exec: memfd_create EPERM" { seccomp_exec_case memfd_create; }
@test "seccomp from exec: ftruncate EPERM" { seccomp_exec_case ftruncate; }
@test "seccomp from exec: fallocate EPERM" { seccomp_exec_case fallocate; }
@test "seccomp from exec: madvise EPERM" { seccomp_exec_case madvise; }
@test "seccomp from exec: mremap EPERM" { seccomp_exec_case mremap; }

# installed by the driver after start-up, in every thread
@test "seccomp after start-up: memfd_create EPERM" { seccomp_late_case memfd_create ok; }
@test "seccomp after start-up: mmap EPERM" { seccomp_late_case mmap enomem; }
@test "seccomp after start-up: mremap EPERM" { seccomp_late_case mremap ok; }
@test "seccomp after start-up: madvise EPERM" { seccomp_late_case madvise ok; }
@test "seccomp after start-up: mprotect EPERM" { seccomp_late_case mprotect ok; }
@test "seccomp after start-up: fallocate EPERM" { seccomp_late_case fallocate ok; }
@test "seccomp after start-up: ftruncate EPERM" { seccomp_late_case ftruncate ok; }

# ---------------------------------------------------------------- limits

# The driver's address space without limits (KiB): its VmSize at start and VmPeak,
# measured once per file run.
baseline_vm() {
    local f="$BATS_FILE_TMPDIR/baseline"
    if [[ ! -s $f ]]; then
        local out
        out=$(LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}" 2>/dev/null | grep '^driver: result=')
        echo "$(sed -n 's/.* vm_start_kb=\([0-9]*\).*/\1/p' <<<"$out") $(sed -n 's/.* vm_peak_kb=\([0-9]*\).*/\1/p' <<<"$out")" >"$f"
    fi
    cat "$f"
}

@test "RLIMIT_AS: above what the driver needs" {
    local start peak
    read -r start peak < <(baseline_vm)
    [[ -n $peak ]] || fail "the baseline run gave no VmPeak"
    local as=$((peak + 65536))
    fault_case "RLIMIT_AS peak+64MiB (${as}K)" ok "-v $as" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

@test "RLIMIT_AS: below what the driver needs" {
    local start peak
    read -r start peak < <(baseline_vm)
    [[ -n $peak ]] || fail "the baseline run gave no VmPeak"
    local as=$((peak * 4 / 10))
    fault_case "RLIMIT_AS 40% of peak (${as}K)" enomem "-v $as" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

@test "RLIMIT_AS: hardly more than the program itself" {
    local start peak
    read -r start peak < <(baseline_vm)
    [[ -n $start ]] || fail "the baseline run gave no VmSize"
    local as=$((start + 24576))
    fault_case "RLIMIT_AS start+24MiB (${as}K)" enomem "-v $as" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

@test "RLIMIT_FSIZE: 1 MiB" {
    fault_case "RLIMIT_FSIZE 1 MiB" ok "-f 1024" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

@test "RLIMIT_FSIZE: 0" {
    fault_case "RLIMIT_FSIZE 0" ok "-f 0" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

@test "RLIMIT_NOFILE: 16" {
    fault_case "RLIMIT_NOFILE 16" ok "-n 16" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
}

@test "RLIMIT_NOFILE: 16, every descriptor closed, then fork" {
    fault_case "RLIMIT_NOFILE 16 + close all fds" ok "-n 16" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}" --close-fds
}

@test "RLIMIT_NOFILE: 16, every descriptor taken, then fork" {
    fault_case "RLIMIT_NOFILE 16 + fds exhausted" ok "-n 16" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}" --fd-hog
}

# map_count_case VALUE: one driver run with vm.max_map_count at VALUE, restored by the
# shell that set it on every way out (and by teardown, should that shell be killed).
map_count_case() {
    local want=$1 f=/proc/sys/vm/max_map_count saved
    saved=$(cat "$f")
    if ! (echo "$saved" >"$f") 2>/dev/null; then
        skip "cannot write $f (vm.max_map_count is machine-wide: needs root)"
    fi
    echo "$saved" >"$BATS_TEST_TMPDIR/map_count.saved"
    # shellcheck disable=SC2016 # expanded by the inner shell
    fault_case "vm.max_map_count $want" ok "" bash -c '
        f=/proc/sys/vm/max_map_count saved=$1 want=$2
        shift 2
        restore() { echo "$saved" >"$f"; }
        trap restore EXIT
        trap "restore; exit 143" TERM
        trap "restore; exit 130" INT
        trap "restore; exit 129" HUP
        echo "$want" >"$f" || exit 96
        "$@"
    ' map-count "$saved" "$want" env LD_PRELOAD="$MESH_LIB" "${DRIVER[@]}"
    [[ $(cat "$f") == "$saved" ]] || fail "vm.max_map_count is $(cat "$f"), not the saved $saved"
}

@test "vm.max_map_count: 4096" { map_count_case 4096; }
@test "vm.max_map_count: 20000" { map_count_case 20000; }
