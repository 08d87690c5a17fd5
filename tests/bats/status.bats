#!/usr/bin/env bats
# meshctl status's per-service view: real processes under libmesh (data/top_holder.c)
# placed in systemd services by a fake root's proc/PID/cgroup (--root reads ROOT/proc;
# no systemd involved), grouped under the services that have libmesh's drop-in, with
# the combined PSS, meshed bytes and saving that `meshctl stats PID` gives; the others
# counted apart; bad cgroup files, missing proc trees and processes that end mid-scan.
#
#   MESH_LIB=/path/to/libmesh.so.1 MESH_BUILD_DIR=/path/to/build bats tests/bats/status.bats

bats_require_minimum_version 1.5.0
load helper
load holders

setup() {
    holders_setup || return 1
    R="$BATS_TEST_TMPDIR/root"
    mkdir -p "$R/proc" "$R/etc/systemd/system"
}

teardown() {
    holders_kill
    [[ -z ${OPEN_ROOT:-} ]] || rm -rf "$OPEN_ROOT"
}

# dropin UNIT: libmesh's drop-in for UNIT in the fake root (only its name matters here).
dropin() {
    mkdir -p "$R/etc/systemd/system/$1.d"
    printf '[Service]\nEnvironment="LD_PRELOAD=%s"\n' "$MESH_LIB" >"$R/etc/systemd/system/$1.d/50-libmesh.conf"
}

# fake_proc PID CGROUP: ROOT/proc/PID reads the real process's files, but its cgroup
# file holds CGROUP (printf escapes allowed).
fake_proc() {
    local d="$R/proc/$1" f
    mkdir -p "$d"
    for f in fd maps map_files smaps_rollup comm; do
        ln -s "/proc/$1/$f" "$d/$f"
    done
    printf "$2" >"$d/cgroup"
}

# block HEADER: the lines of the status output from the line HEADER starts to the next
# line that is not indented.
block() {
    awk -v h="$1" 'index($0, h) == 1 { on = 1; print; next } on && /^[^ ]/ { exit } on { print }' <<<"$output"
}

# kb_of TEXT WHAT: the "(N kB)" after WHAT ("PSS" or "meshed") in TEXT's memory line.
kb_of() {
    sed -n "s/^  memory: .*$2 [0-9.]* [KMGT]*i*B (\([0-9]*\) kB).*/\1/p" <<<"$1"
}

# expect_group HEADER PID...: HEADER's processes are exactly PID..., with the figures
# expect_memory checks.
expect_group() {
    local header=$1 text p
    shift
    text=$(block "$header")
    [[ -n $text ]] || fail "no '$header' in: $output"
    grep -qx "  processes: $#: .*" <<<"$text" || fail "'$header' should have $# processes: $text"
    for p in "$@"; do
        grep -qE "^  processes: .*[: ]$p \(top_holder[ )]" <<<"$text" || fail "'$header' lacks $p: $text"
    done
    expect_memory "$header" "$@"
}

# expect_memory HEADER PID...: the PSS and meshed figures of HEADER's memory line agree
# within 1% (+ 4 kB for rounding each process to kB) with the sum of `meshctl stats PID`
# over PID...; its saving is meshed / (PSS + meshed). PSS may also drift by up to 64 kB
# per process between the two reads: a shared page's PSS is divided among the processes
# that map it at that moment, and the test's own commands come and go (the holders are
# a few hundred kB, mostly shared libraries; top.bats allows the same per process).
expect_memory() {
    local header=$1 text p pss=0 meshed=0 m got_pss got_meshed pct want
    shift
    text=$(block "$header")
    for p in "$@"; do
        pss=$((pss + $(stats_field "$p" pss)))
        m=$(stats_field "$p" 'meshed bytes')
        meshed=$((meshed + ${m:-0} / 1024))
    done
    got_pss=$(kb_of "$text" PSS)
    got_meshed=$(kb_of "$text" meshed)
    [[ -n $got_pss && -n $got_meshed ]] || fail "'$header' has no memory line: $text"
    within_pct "$got_pss" "$pss" 1 $((4 + 64 * $#)) || fail "'$header': PSS $got_pss kB, stats PID says $pss kB: $text"
    within_pct "$got_meshed" "$meshed" 1 4 || fail "'$header': meshed $got_meshed kB, stats PID says $meshed kB: $text"
    pct=$(sed -n 's/^  memory: .*saving \([0-9.]*\)%$/\1/p' <<<"$text")
    want=$(awk -v p="$got_pss" -v m="$got_meshed" 'BEGIN { printf "%.1f", p + m ? 100 * m / (p + m) : 0 }')
    awk -v a="$pct" -v b="$want" 'BEGIN { d = a - b; exit !(d < 0.15 && d > -0.15) }' ||
        fail "'$header': saving $pct%, want $want%: $text"
}

@test "status: each service with the drop-in lists its processes and their combined PSS, meshed bytes and saving" {
    start_holder A frag "" MESH_FILE_FROM_MIB=0
    start_holder B frag "" MESH_FILE_FROM_MIB=0
    start_holder C frag "" MESH_FILE_FROM_MIB=0
    start_holder D small "" MESH_FILE_FROM_MIB=0
    start_holder E frag "" MESH_FILE_FROM_MIB=0
    dropin demo.service
    dropin web@.service
    dropin idle.service
    mkdir -p "$R/etc/systemd/system/cron.service.d" # a drop-in, but not ours
    echo '[Service]' >"$R/etc/systemd/system/cron.service.d/10-local.conf"
    fake_proc "$A" '0::/system.slice/demo.service\n'
    # a cgroup the service made below its own (delegation)
    fake_proc "$B" '0::/system.slice/demo.service/worker/1\n'
    # cgroup v1: systemd's tree is the name=systemd hierarchy; a template instance
    fake_proc "$C" '12:pids:/system.slice/other.service\n4:memory:/\n1:name=systemd:/system.slice/system-web.slice/web@one.service\n0::/\n'
    fake_proc "$D" '0::/system.slice/cron.service\n'
    fake_proc "$E" '0::/user.slice/user-1000.slice/session-3.scope\n'
    run --separate-stderr "$MESHCTL" status --root "$R"
    assert_success
    assert_equal "$stderr" ""
    assert_line "service: demo.service (/etc/systemd/system/demo.service.d/50-libmesh.conf)"
    refute_line --partial "service: cron.service"
    expect_group "service: demo.service " "$A" "$B"
    expect_group "service: web@.service " "$C"
    expect_group "other processes using libmesh" "$D" "$E"
    assert_line "processes using libmesh now: 5"
    expect_memory "processes using libmesh now: 5" "$A" "$B" "$C" "$D" "$E"
    block "service: idle.service " | grep -qx '  processes: 0 (the service is not running.*' ||
        fail "idle.service should have no process: $output"
    # the others, and instances of a template, say where they run
    block "other processes" | grep -qF "$D (top_holder in cron.service)" || fail "$output"
    block "service: web@.service " | grep -qF "$C (top_holder in web@one.service)" || fail "$output"
    block "service: demo.service " | grep -qF "$A (top_holder)" || fail "$output"
    # the services come in name order, each before the others and the total
    diff <(grep -oE '^(service: [^ ]+|other processes|processes using)' <<<"$output") - <<'EOF' || fail "order: $output"
service: demo.service
service: idle.service
service: web@.service
other processes
processes using
EOF
}

@test "status: an instance's own drop-in wins over its template's; a service without processes under libmesh shows none" {
    start_holder A frag "" MESH_FILE_FROM_MIB=0
    dropin web@.service
    dropin web@two.service
    fake_proc "$A" '0::/system.slice/system-web.slice/web@two.service\n'
    run --separate-stderr "$MESHCTL" status --root "$R"
    assert_success
    expect_group "service: web@two.service " "$A"
    block "service: web@.service " | grep -qx '  processes: 0 .*' || fail "$output"
    block "other processes" | grep -qx '  processes: 0' || fail "$output"
}

@test "status: bad cgroup files cost one line each and count among the others; gone processes and other entries are skipped" {
    start_holder A frag "" MESH_FILE_FROM_MIB=0
    start_holder G small "" MESH_FILE_FROM_MIB=0
    start_holder Z small "" MESH_FILE_FROM_MIB=0
    start_holder U small "" MESH_FILE_FROM_MIB=0
    dropin demo.service
    fake_proc "$A" '0::/system.slice/demo.service\n'
    fake_proc "$G" 'this is not a cgroup file\n::\n:name=systemd:/x.service\nabc::/system.slice/demo.service\n'
    fake_proc "$Z" ''
    fake_proc "$U" '0::/system.slice/demo.service\n'
    rm "$R/proc/$U/cgroup"
    mkdir "$R/proc/$U/cgroup" # read() fails: EISDIR
    # a process that has ended: its entry is still in the tree, its files are gone
    true &
    local gone=$!
    wait "$gone" || true
    fake_proc "$gone" '0::/system.slice/demo.service\n'
    mkdir -p "$R/proc/4000000000" "$R/proc/sys" "$R/proc/12ab"
    ln -s "$A" "$R/proc/self"
    run --separate-stderr "$MESHCTL" status --root "$R"
    assert_success
    expect_group "service: demo.service " "$A"
    expect_group "other processes using libmesh" "$G" "$Z" "$U"
    assert_line "processes using libmesh now: 4"
    expect_memory "processes using libmesh now: 4" "$A" "$G" "$Z" "$U"
    [[ $(wc -l <<<"$stderr") -eq 3 ]] || fail "want 3 lines on stderr: $stderr"
    grep -qx "meshctl: status: $R/proc/$G/cgroup: no systemd cgroup line .*; process $G is counted among the others" <<<"$stderr" ||
        fail "garbage: $stderr"
    grep -qx "meshctl: status: $R/proc/$Z/cgroup: no systemd cgroup line .*; process $Z is counted among the others" <<<"$stderr" ||
        fail "empty: $stderr"
    grep -qx "meshctl: status: $R/proc/$U/cgroup: Is a directory; process $U is counted among the others" <<<"$stderr" ||
        fail "unreadable: $stderr"
    refute_output --partial "$gone ("
}

@test "status --root without ROOT/proc: the services, and one line saying the processes are not known" {
    rmdir "$R/proc"
    dropin demo.service
    run --separate-stderr "$MESHCTL" status --root "$R"
    assert_success
    assert_line "service: demo.service (/etc/systemd/system/demo.service.d/50-libmesh.conf)"
    assert_line "processes using libmesh now: not known (cannot read $R/proc: No such file or directory)"
    assert_equal "$(grep -c '^processes using libmesh' <<<"$output")" 1
    refute_line --partial "  processes:"
}

@test "status on the live /proc: processes that exit during the scan are left out without a word" {
    start_holder M frag "" MESH_FILE_FROM_MIB=0
    rmdir "$R/proc"
    ln -s /proc "$R/proc"
    churn_holders 4
    local i
    for i in $(seq 1 10); do
        run --separate-stderr "$MESHCTL" status --root "$R"
        assert_success
        assert_equal "$stderr" ""
        block "other processes" | grep -qE "[: ]$M \(top_holder" || fail "the long-lived holder is missing: $output"
    done
    # without --root: the same view of this machine
    run --separate-stderr "$MESHCTL" status
    assert_success
    assert_output --regexp "[: ]$M \\(top_holder"
}

@test "status: processes the caller may not read are named under their service" {
    [[ $(id -u) == 0 ]] || skip "needs root, to run meshctl as another user"
    command -v setpriv >/dev/null || skip "needs setpriv"
    # a root the other user can reach (bats' own directories are private)
    OPEN_ROOT=$(mktemp -d /tmp/meshctl-status.XXXXXX)
    R="$OPEN_ROOT/root"
    mkdir -p "$R/proc" "$R/etc/systemd/system"
    start_holder A frag "" MESH_FILE_FROM_MIB=0
    dropin demo.service
    fake_proc "$A" '0::/system.slice/demo.service\n'
    chmod -R a+rX "$OPEN_ROOT"
    run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups "$MESHCTL" status --root "$R"
    assert_success
    block "service: demo.service " | grep -qx "  could not be read (permission; run as their user or root): 1: $A (top_holder)" ||
        fail "$output"
    block "service: demo.service " | grep -qx "  processes: 0 .*" || fail "$output"
    assert_line "processes using libmesh now: 0 (and 1 that could not be read)"
}
