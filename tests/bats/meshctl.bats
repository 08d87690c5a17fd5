#!/usr/bin/env bats
# meshctl: config show/check/template/doc, check (against fake roots under
# $BATS_TEST_TMPDIR, never the host's /etc), stats PID, run, usage and exit codes
# (0 ok, 1 problems found, 2 usage error, 3 operation not possible).
#
#   MESH_LIB=/path/to/libmesh.so.1 MESH_BUILD_DIR=/path/to/build bats tests/bats/meshctl.bats

bats_require_minimum_version 1.5.0
load helper

# every option key, in table order, from the option table itself
KEYS=$(grep -oE '"[a-z_]+\.[a-z_]+"' "$MESH_REPO_ROOT/src/options.def" | tr -d '"')
NKEYS=$(wc -l <<<"$KEYS")

setup_file() {
    local bin="$BATS_FILE_TMPDIR/bin"
    mkdir -p "$bin"
    # a second preload library for `meshctl run` with an existing LD_PRELOAD
    printf 'int meshctl_test_extra(void) { return 42; }\n' >"$bin/extra.c"
    cc -shared -fPIC -o "$bin/libextra_preload.so" "$bin/extra.c" || return 1
    # holder.py PIDFILE [PERIOD_MS]: optionally set mesh.period_ms with mesh_mallctl,
    # write its own pid to PIDFILE, then sleep (bounded, in case nobody kills it)
    cat >"$bin/holder.py" <<'EOF'
import ctypes, os, sys, time
if len(sys.argv) > 2:
    v = ctypes.c_int64(int(sys.argv[2]))
    rc = ctypes.CDLL(None).mesh_mallctl(b"mesh.period_ms", None, None, ctypes.byref(v), ctypes.c_size_t(8))
    if rc != 0:
        sys.exit("mesh_mallctl returned %d" % rc)
data = [bytearray(100) for _ in range(1000)]
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
EOF
}

setup() {
    mesh_setup || return 1
    unset MESH_CONF MESH_PERIOD_MS MESH_CLASS_AT_A_TIME MESH_BACKGROUND_THREAD \
        MESH_FREEPHYS_THREAD MESH_THP MESH_MAX_MAP_COUNT MALLOCSTATS MESH_STATS \
        MESH_STATS_SIGNAL MESH_VERBOSE
    [[ -x $MESHCTL ]] || fail "meshctl not found: $MESHCTL (set MESH_BUILD_DIR)"
    B="$BATS_FILE_TMPDIR/bin"
    CONF="$MESH_DATA_DIR/config"
    HOLDER_PID=
}

teardown() {
    if [[ -n ${HOLDER_PID:-} ]]; then
        kill "$HOLDER_PID" 2>/dev/null || true
    fi
    if [[ -n ${PLAIN_PID:-} ]]; then
        kill "$PLAIN_PID" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
}

run_ctl() {
    run --separate-stderr "$MESHCTL" "$@"
}

assert_stderr_has() {
    grep -qF -- "$1" <<<"$stderr" || fail "stderr lacks '$1'
--- stderr:
$stderr"
}

# make_root [SHMEM_ENABLED [MAX_MAP_COUNT]]: a fake root for `meshctl check --root`
make_root() {
    ROOT="$BATS_TEST_TMPDIR/root"
    mkdir -p "$ROOT/sys/kernel/mm/transparent_hugepage" "$ROOT/proc/sys/vm" "$ROOT/etc"
    printf '%s\n' "${1:-always within_size advise [never] deny force}" \
        >"$ROOT/sys/kernel/mm/transparent_hugepage/shmem_enabled"
    printf '%s\n' "${2:-1048576}" >"$ROOT/proc/sys/vm/max_map_count"
}

# ---- general -----------------------------------------------------------------------

@test "meshctl --help, -h and help print the usage on stdout and exit 0" {
    local h
    for h in --help -h help; do
        run_ctl "$h"
        assert_success
        assert_line --index 0 "usage: meshctl COMMAND [ARGS]"
        assert_line --partial "config show [FILE]"
        assert_line --partial "config check [FILE]"
        assert_line --partial "config template"
        assert_line --partial "config doc"
        assert_line --partial "check [--root DIR]"
        assert_line --partial "stats PID"
        assert_line --partial "run [--] CMD [ARGS]"
        assert_equal "$stderr" ""
    done
}

@test "meshctl --version matches MESH_VERSION in include/mesh.h" {
    local v
    v=$(sed -n 's/^#define MESH_VERSION "\(.*\)"$/\1/p' "$MESH_REPO_ROOT/include/mesh.h")
    [[ -n $v ]]
    run_ctl --version
    assert_success
    assert_output "meshctl (libmesh) $v"
}

@test "usage errors exit 2 with a message on stderr" {
    run_ctl
    assert_equal "$status" 2
    assert_stderr_has "usage: meshctl COMMAND"

    run_ctl frobnicate
    assert_equal "$status" 2
    assert_stderr_has "meshctl: unknown command 'frobnicate'"
    assert_stderr_has "Try 'meshctl --help'."
    assert_output ""

    local args
    for args in "config" "config frob" "config show a b" "config check a b" "config template x" \
        "config doc x" "check --root" "check --bogus" "check --root a b" "stats" "stats abc" \
        "stats 1 2" "stats -5" "stats 12x" "run" "run --"; do
        # shellcheck disable=SC2086
        run_ctl $args
        [[ $status -eq 2 ]] || fail "meshctl $args: exit $status, expected 2 (stdout '$output', stderr '$stderr')"
    done
}

@test "usage errors print their message on stderr, and nothing on stdout" {
    local args
    for args in "config" "config frob" "check --bogus" "stats abc" "run" "run --"; do
        # shellcheck disable=SC2086
        run_ctl $args
        assert_equal "$status" 2
        [[ -n $stderr && -z $output ]] ||
            fail "meshctl $args: stdout '$output', stderr '$stderr' (want the message on stderr only)"
    done
}

@test "subcommand --help exits 0" {
    local args
    for args in "config --help" "check --help" "stats --help" "run --help"; do
        # shellcheck disable=SC2086
        run_ctl $args
        [[ $status -eq 0 ]] || fail "meshctl $args: exit $status"
        assert_output --partial "usage: meshctl"
    done
}

# ---- config template / doc ---------------------------------------------------------

@test "config template is exactly etc/mesh.conf" {
    run_ctl config template
    assert_success
    diff -u "$MESH_REPO_ROOT/etc/mesh.conf" <(printf '%s\n' "$output") ||
        fail "meshctl config template differs from etc/mesh.conf (diff above)"
}

@test "config template is valid, and uncommented it sets every option to its default" {
    local t="$BATS_TEST_TMPDIR/template.conf" u="$BATS_TEST_TMPDIR/uncommented.conf"
    "$MESHCTL" config template >"$t"
    run_ctl config check "$t"
    assert_success
    assert_output "$t: ok"

    sed 's/^  # \([a-z_]* = .*;\)$/  \1/' "$t" >"$u"
    run_ctl config show "$u"
    assert_success
    assert_equal "$stderr" ""
    assert_equal "$(grep -c "  # $u:[0-9]*\$" <<<"$output")" "$NKEYS"
    assert_line --regexp "^mesh.period_ms = 100  # $u:[0-9]+\$"
    assert_line --regexp "^checks.thp = \"warn\"  # $u:[0-9]+\$"
    assert_line --regexp "^stats.signal = \"off\"  # $u:[0-9]+\$"
    assert_line --regexp "^log.verbose = false  # $u:[0-9]+\$"
}

@test "config doc: a markdown table with one row per option" {
    run_ctl config doc
    assert_success
    assert_line --index 0 "| file key (and mesh_mallctl name) | environment | default | accepts | meaning |"
    assert_line --index 1 "|---|---|---|---|---|"
    assert_equal "${#lines[@]}" $((NKEYS + 2))
    local k
    while read -r k; do
        assert_line --partial "| \`$k\` |"
    done <<<"$KEYS"
    assert_line --partial '| `stats.at_exit` | `MALLOCSTATS`, `MESH_STATS` | `0` |'
}

# ---- config show -------------------------------------------------------------------

@test "config show FILE: every option, value and source; exit 0" {
    local f="$CONF/valid.conf"
    run_ctl config show "$f"
    assert_success
    assert_equal "$stderr" ""
    assert_line "mesh.period_ms = 250  # $f:3"
    assert_line "mesh.class_at_a_time = false  # $f:4"
    assert_line "mesh.background_thread = \"auto\"  # default"
    assert_line "mesh.freephys_thread = false  # default"
    assert_line "checks.thp = \"warn\"  # default"
    assert_line "checks.max_map_count = \"warn\"  # default"
    assert_line "stats.at_exit = 0  # default"
    assert_line "stats.signal = \"SIGUSR2\"  # $f:6"
    assert_line "log.verbose = false  # default"
    # one line per option, in table order
    assert_equal "$(sed 's/ = .*//' <<<"$output")" "$KEYS"
}

@test "config show: the environment overrides the file and is named as the source" {
    local f="$CONF/valid.conf"
    run --separate-stderr env MESH_PERIOD_MS=300 MESH_STATS=2 "$MESHCTL" config show "$f"
    assert_success
    assert_line "mesh.period_ms = 300  # env:MESH_PERIOD_MS"
    assert_line "mesh.class_at_a_time = false  # $f:4"
    assert_line "stats.at_exit = 2  # env:MESH_STATS"
}

@test "config show uses MESH_CONF when no FILE is given; FILE wins over MESH_CONF" {
    local f="$CONF/valid.conf" g="$CONF/all-options.conf"
    run --separate-stderr env MESH_CONF="$f" "$MESHCTL" config show
    assert_success
    assert_line "mesh.period_ms = 250  # $f:3"
    run --separate-stderr env MESH_CONF="$f" "$MESHCTL" config show "$g"
    assert_success
    assert_line "log.verbose = true  # $g:19"
}

@test "config show FILE with problems: problems on stderr, valid values shown, exit 1" {
    local f="$CONF/problems.conf"
    run_ctl config show "$f"
    assert_failure 1
    assert_equal "$stderr" "$f:2: unknown option 'mesh.bogus'; ignored
$f:4: mesh.class_at_a_time: expected true or false; ignored
$f:8: checks.thp: expected one of \"warn\", \"disable\", \"off\"; ignored
$f:12: stats.at_exit: expected an integer from 0 to 2; ignored
$f:13: stats.signal: expected \"off\" or a signal name such as \"SIGUSR2\"; ignored
$f:15: log.verbose: expected true or false; ignored"
    assert_line "mesh.period_ms = 250  # $f:3"
    assert_line "mesh.background_thread = true  # $f:5"
    assert_line "checks.max_map_count = \"off\"  # $f:9"
    assert_line "checks.thp = \"warn\"  # default"
    assert_equal "${#lines[@]}" "$NKEYS"
}

@test "config show: a bad environment value is a problem too (exit 1)" {
    run --separate-stderr env MESH_PERIOD_MS=abc "$MESHCTL" config show "$CONF/valid.conf"
    assert_failure 1
    assert_equal "$stderr" 'MESH_PERIOD_MS="abc": expected an integer from 0 to 86400000; ignored'
    assert_line "mesh.period_ms = 250  # $CONF/valid.conf:3"
}

@test "config show: missing file, directory, too large file -> exit 1, defaults shown" {
    local missing="$BATS_TEST_TMPDIR/none.conf" dir="$BATS_TEST_TMPDIR/d" big="$BATS_TEST_TMPDIR/big.conf"
    mkdir "$dir"
    truncate -s 100M "$big"
    run_ctl config show "$missing"
    assert_failure 1
    assert_equal "$stderr" "$missing: cannot open: No such file or directory"
    assert_line "mesh.period_ms = 100  # default"

    run --separate-stderr env MESH_CONF="$missing" "$MESHCTL" config show
    assert_failure 1
    assert_equal "$stderr" "$missing: cannot open: No such file or directory"

    run_ctl config show "$dir"
    assert_failure 1
    assert_equal "$stderr" "$dir: is a directory; using defaults"

    run_ctl config show "$big"
    assert_failure 1
    assert_equal "$stderr" "$big: too large (104857600 bytes, the limit is 1 MiB); using defaults"
    assert_equal "${#lines[@]}" "$NKEYS"
}

# ---- config check ------------------------------------------------------------------

@test "config check on a valid file: 'FILE: ok', exit 0" {
    local f
    for f in "$CONF/valid.conf" "$CONF/all-options.conf" "$MESH_REPO_ROOT/etc/mesh.conf"; do
        run_ctl config check "$f"
        assert_success
        assert_output "$f: ok"
        assert_equal "$stderr" ""
    done
    : >"$BATS_TEST_TMPDIR/empty.conf"
    run_ctl config check "$BATS_TEST_TMPDIR/empty.conf"
    assert_success
    assert_output "$BATS_TEST_TMPDIR/empty.conf: ok"
}

@test "config check on a file with problems: FILE:LINE lines on stdout, exit 1" {
    local f="$CONF/problems.conf"
    run_ctl config check "$f"
    assert_failure 1
    assert_output "$f:2: unknown option 'mesh.bogus'; ignored
$f:4: mesh.class_at_a_time: expected true or false; ignored
$f:8: checks.thp: expected one of \"warn\", \"disable\", \"off\"; ignored
$f:12: stats.at_exit: expected an integer from 0 to 2; ignored
$f:13: stats.signal: expected \"off\" or a signal name such as \"SIGUSR2\"; ignored
$f:15: log.verbose: expected true or false; ignored"

    f="$CONF/syntax.conf"
    run_ctl config check "$f"
    assert_failure 1
    assert_output "$f:4: syntax error; line skipped
$f:5: syntax error; line skipped"
}

@test "config check: missing, directory, too large, binary -> exit 1" {
    local missing="$BATS_TEST_TMPDIR/none.conf" dir="$BATS_TEST_TMPDIR/d"
    local big="$BATS_TEST_TMPDIR/big.conf" bin="$BATS_TEST_TMPDIR/bin.conf"
    mkdir "$dir"
    truncate -s 2M "$big"
    printf 'mesh = { period_ms = 250; };\n\0\1\2\n' >"$bin"

    run_ctl config check "$missing"
    assert_failure 1
    assert_output "$missing: cannot open: No such file or directory"
    run_ctl config check "$dir"
    assert_failure 1
    assert_output "$dir: is a directory; using defaults"
    run_ctl config check "$big"
    assert_failure 1
    assert_output "$big: too large (2097152 bytes, the limit is 1 MiB); using defaults"
    run_ctl config check "$bin"
    assert_failure 1
    assert_output "$bin:2: binary data in the file; line skipped"
}

@test "config check without FILE checks MESH_CONF" {
    run --separate-stderr env MESH_CONF="$CONF/problems.conf" "$MESHCTL" config check
    assert_failure 1
    assert_line --index 0 "$CONF/problems.conf:2: unknown option 'mesh.bogus'; ignored"
    run --separate-stderr env MESH_CONF="$CONF/valid.conf" "$MESHCTL" config check
    assert_success
    assert_output "$CONF/valid.conf: ok"
}

@test "config check without FILE and without /etc/mesh.conf: defaults apply, exit 0" {
    [[ -e /etc/mesh.conf ]] && skip "this host has an /etc/mesh.conf"
    run_ctl config check
    assert_success
    assert_output "/etc/mesh.conf: no configuration file; defaults apply"
}

# ---- check -------------------------------------------------------------------------

@test "check --root on a healthy root: every line ok, exit 0" {
    make_root
    run_ctl check --root "$ROOT"
    assert_success
    assert_output "ok    transparent huge pages: shmem_enabled is 'never'
ok    vm.max_map_count is 1048576: it leaves libmesh's heap at most 786432 VMAs, less the program's own mappings
ok    memfd_create works
ok    /etc/ld.so.preload: libmesh not enabled system-wide
ok    $ROOT/etc/mesh.conf: no configuration file; defaults apply"
}

@test "check: THP shmem_enabled - only [force] fails" {
    local sel
    for sel in always within_size advise never deny; do
        make_root "$(sed "s/\\b$sel\\b/[$sel]/" <<<"always within_size advise never deny force")"
        run_ctl check --root "$ROOT"
        assert_success
        assert_line "ok    transparent huge pages: shmem_enabled is '$sel'"
    done
    make_root "always within_size advise never deny [force]"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line --regexp "^FAIL  transparent huge pages: .*shmem_enabled is 'force'"
    refute_line --partial "ok    transparent huge pages"
}

@test "check: no THP support (file missing) is fine" {
    make_root
    rm "$ROOT/sys/kernel/mm/transparent_hugepage/shmem_enabled"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "ok    transparent huge pages: not supported by this kernel"
}

@test "check: vm.max_map_count below 4096 fails, below 1048576 warns with the heap's share, else ok" {
    local raise="raise it: sysctl -w vm.max_map_count=1048576, or at boot with the libmesh package's /usr/lib/sysctl.d/10-libmesh.conf"
    make_root "" 4095
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line "FAIL  vm.max_map_count is 4095: it leaves libmesh's heap no VMAs (a reserve of 4096 stays for the program), so nothing is meshed; $raise"

    make_root "" 4096
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "warn  vm.max_map_count is 4096: it leaves libmesh's heap at most 0 VMAs, less the program's own mappings, so meshing stops early; $raise"

    # the reserve is 4096 up to 16384, a quarter above
    make_root "" 10000
    run_ctl check --root "$ROOT"
    assert_success
    assert_line --partial "warn  vm.max_map_count is 10000: it leaves libmesh's heap at most 5904 VMAs,"

    # Debian's default
    make_root "" 65530
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "warn  vm.max_map_count is 65530: it leaves libmesh's heap at most 49148 VMAs, less the program's own mappings, so meshing stops early; $raise"

    make_root "" 1048575
    run_ctl check --root "$ROOT"
    assert_success
    assert_line --partial "warn  vm.max_map_count is 1048575: it leaves libmesh's heap at most 786432 VMAs,"

    make_root "" 1048576
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "ok    vm.max_map_count is 1048576: it leaves libmesh's heap at most 786432 VMAs, less the program's own mappings"

    make_root "" 2097152
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "ok    vm.max_map_count is 2097152: it leaves libmesh's heap at most 1572864 VMAs, less the program's own mappings"
    refute_line --partial "sysctl -w"
}

@test "check: a low vm.max_map_count with the sysctl drop-in installed says it is not in force" {
    make_root "" 65530
    mkdir -p "$ROOT/usr/lib/sysctl.d"
    printf 'vm.max_map_count = 1048576\n' >"$ROOT/usr/lib/sysctl.d/10-libmesh.conf"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "warn  vm.max_map_count is 65530: it leaves libmesh's heap at most 49148 VMAs, less the program's own mappings, so meshing stops early; /usr/lib/sysctl.d/10-libmesh.conf is installed but not in force (a later sysctl.d file may set it lower; in a container the host sets it): sysctl -w vm.max_map_count=1048576"

    make_root "" 1000
    mkdir -p "$ROOT/usr/lib/sysctl.d"
    printf 'vm.max_map_count = 1048576\n' >"$ROOT/usr/lib/sysctl.d/10-libmesh.conf"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line --regexp "^FAIL  vm.max_map_count is 1000: .* /usr/lib/sysctl.d/10-libmesh.conf is installed but not in force "

    make_root "" 1048576
    mkdir -p "$ROOT/usr/lib/sysctl.d"
    printf 'vm.max_map_count = 1048576\n' >"$ROOT/usr/lib/sysctl.d/10-libmesh.conf"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line --partial "ok    vm.max_map_count is 1048576:"
}

@test "check: unreadable or garbage vm.max_map_count warns, exit 0" {
    make_root
    rm "$ROOT/proc/sys/vm/max_map_count"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "warn  vm.max_map_count: cannot be read"
    printf 'abc\n' >"$ROOT/proc/sys/vm/max_map_count"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "warn  vm.max_map_count: cannot be read"
}

@test "check: /etc/ld.so.preload naming an existing libmesh is ok, a missing one fails" {
    make_root
    mkdir -p "$ROOT/usr/lib"
    : >"$ROOT/usr/lib/libmesh.so.1"
    printf '/usr/lib/libother.so\n/usr/lib/libmesh.so.1\n' >"$ROOT/etc/ld.so.preload"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "ok    /etc/ld.so.preload:2: libmesh enabled system-wide (/usr/lib/libmesh.so.1)"

    printf '/usr/lib/x86_64-linux-gnu/libmesh.so.1\n' >"$ROOT/etc/ld.so.preload"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line "FAIL  /etc/ld.so.preload:1: /usr/lib/x86_64-linux-gnu/libmesh.so.1 does not exist; every program will warn"

    printf '/usr/lib/libother.so\n' >"$ROOT/etc/ld.so.preload"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "ok    /etc/ld.so.preload: libmesh not enabled system-wide"
}

@test "check: a commented-out libmesh line in /etc/ld.so.preload is not a failure" {
    # ld.so ignores everything after '#' in /etc/ld.so.preload
    make_root
    printf '# /usr/lib/x86_64-linux-gnu/libmesh.so.1 (disabled)\n' >"$ROOT/etc/ld.so.preload"
    run_ctl check --root "$ROOT"
    assert_success
    refute_line --partial "FAIL"
}

@test "check: /etc/ld.so.preload entries separated by blanks or ':' are judged one by one" {
    # ld.so splits the file at blanks, tabs, newlines and ':'
    make_root
    mkdir -p "$ROOT/usr/lib"
    : >"$ROOT/usr/lib/libmesh.so.1"
    : >"$ROOT/usr/lib/libother.so"
    local content
    for content in '/usr/lib/libother.so /usr/lib/libmesh.so.1' '/usr/lib/libmesh.so.1:/usr/lib/libother.so' \
        '/usr/lib/libmesh.so.1   ' $'\t/usr/lib/libmesh.so.1'; do
        printf '%s\n' "$content" >"$ROOT/etc/ld.so.preload"
        run_ctl check --root "$ROOT"
        [[ $status -eq 0 ]] || fail "ld.so.preload '$content': exit $status
$output"
        assert_line --partial "libmesh enabled system-wide"
    done
}

@test "check: ROOT/etc/mesh.conf is validated; problems make it fail" {
    make_root
    cp "$CONF/valid.conf" "$ROOT/etc/mesh.conf"
    run_ctl check --root "$ROOT"
    assert_success
    assert_line "ok    $ROOT/etc/mesh.conf is valid"

    printf 'mesh = {\n  bogus = 1;\n};\n' >"$ROOT/etc/mesh.conf"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line "$ROOT/etc/mesh.conf:2: unknown option 'mesh.bogus'; ignored"
    assert_line "FAIL  $ROOT/etc/mesh.conf has 1 problem (above)"

    cp "$CONF/problems.conf" "$ROOT/etc/mesh.conf"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line "FAIL  $ROOT/etc/mesh.conf has 6 problems (above)"

    rm "$ROOT/etc/mesh.conf"
    mkdir "$ROOT/etc/mesh.conf"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_line "$ROOT/etc/mesh.conf: is a directory; using defaults"
}

@test "check --root ignores MESH_CONF (it checks ROOT/etc/mesh.conf)" {
    make_root
    run --separate-stderr env MESH_CONF="$CONF/problems.conf" "$MESHCTL" check --root "$ROOT"
    assert_success
    assert_line "ok    $ROOT/etc/mesh.conf: no configuration file; defaults apply"
}

@test "check: everything wrong at once -> every FAIL line, exit 1" {
    make_root "always within_size advise never deny [force]" 1000
    printf '/usr/lib/libmesh.so.1\n' >"$ROOT/etc/ld.so.preload"
    printf 'stats = { at_exit = 9; };\n' >"$ROOT/etc/mesh.conf"
    run_ctl check --root "$ROOT"
    assert_failure 1
    assert_equal "$(grep -c '^FAIL  ' <<<"$output")" 4
}

# ---- stats -------------------------------------------------------------------------

# start_holder [VAR=VALUE...] [-- PERIOD_MS]: python3 under libmesh; sets HOLDER_PID
start_holder() {
    local envs=() extra=() pidfile="$BATS_TEST_TMPDIR/holder.pid" i
    while (($#)); do
        if [[ $1 == -- ]]; then
            shift
            extra=("$@")
            break
        fi
        envs+=("$1")
        shift
    done
    rm -f "$pidfile"
    # The heap takes its file from the start (mesh.file_from_mib = 0), so there is an info
    # page for meshctl stats to read, however small the holder's heap is.
    env LD_PRELOAD="$MESH_LIB" MESH_FILE_FROM_MIB=0 "${envs[@]}" python3 "$B/holder.py" "$pidfile" "${extra[@]}" \
        >/dev/null 2>"$BATS_TEST_TMPDIR/holder.err" 3>&- &
    for ((i = 0; i < 200; i++)); do
        [[ -s $pidfile ]] && break
        sleep 0.05
    done
    [[ -s $pidfile ]] || fail "the libmesh process did not start: $(cat "$BATS_TEST_TMPDIR/holder.err")"
    HOLDER_PID=$(cat "$pidfile")
}

@test "stats PID of a libmesh process: pss, heap file, mesh count, options with sources" {
    local conf="$BATS_TEST_TMPDIR/x.conf"
    printf 'mesh = { class_at_a_time = false; };\n' >"$conf"
    start_holder MESH_CONF="$conf" MESH_PERIOD_MS=300
    run_ctl stats "$HOLDER_PID"
    assert_success
    assert_equal "$stderr" ""
    assert_line --index 0 "pid $HOLDER_PID"
    assert_line --regexp '^  rss +=  *[0-9]+ kB'
    assert_line --regexp '^  pss +=  *[1-9][0-9]* kB$'
    assert_line --regexp '^  heap file +=  *[1-9][0-9]* bytes'
    assert_line --regexp '^  meshed bytes +=  *[0-9]+ \(high-water mark [0-9]+\)$'
    assert_line --regexp '^  mesh count +=  *[0-9]+$'
    assert_line "  configuration   = $conf"
    assert_line "  mesh.period_ms = 300  # env"
    assert_line "  mesh.class_at_a_time = false  # file"
    assert_line "  checks.thp = \"warn\"  # default"
    assert_line "  log.verbose = false  # default"
    local k
    while read -r k; do
        assert_line --regexp "^  ${k//./\\.} = .*  # (default|file|env|mesh_mallctl)\$"
    done <<<"$KEYS"
}

@test "stats PID of a libmesh process whose heap has no file yet: rss, pss, and why there is no heap file" {
    start_holder MESH_FILE_FROM_MIB=64
    run_ctl stats "$HOLDER_PID"
    assert_success
    assert_equal "$stderr" ""
    assert_line --index 0 "pid $HOLDER_PID"
    assert_line --regexp '^  pss +=  *[1-9][0-9]* kB$'
    assert_line --regexp '^  heap file += none \(the heap is on private memory and not meshed'
}

@test "stats PID shows a value written with mesh_mallctl as such" {
    start_holder MESH_PERIOD_MS=300 -- 777
    run_ctl stats "$HOLDER_PID"
    assert_success
    assert_line "  mesh.period_ms = 777  # mesh_mallctl"
}

@test "stats PID of a process without libmesh: exit 3, clear message" {
    sleep 30 3>&- &
    PLAIN_PID=$!
    run_ctl stats "$PLAIN_PID"
    assert_failure 3
    assert_output ""
    assert_equal "$stderr" "meshctl: stats: process $PLAIN_PID is not running libmesh (no libmesh heap file)"
}

@test "stats PID of no process: exit 3, clear message" {
    local pid
    pid=$(($(cat /proc/sys/kernel/pid_max) + 1))
    run_ctl stats "$pid"
    assert_failure 3
    assert_equal "$stderr" "meshctl: stats: no process $pid"
}

# ---- run ---------------------------------------------------------------------------

@test "run [--] CMD: the command runs with libmesh mapped" {
    run --separate-stderr env MESH_LIB="$MESH_LIB" "$MESHCTL" run -- cat /proc/self/maps
    assert_success
    assert_output --partial "$MESH_LIB"
    run --separate-stderr env MESH_LIB="$MESH_LIB" "$MESHCTL" run cat /proc/self/maps
    assert_success
    assert_output --partial "$MESH_LIB"
}

@test "run: LD_PRELOAD is MESH_LIB, an existing LD_PRELOAD is kept after it" {
    local extra_lib="$B/libextra_preload.so"
    run --separate-stderr env MESH_LIB="$MESH_LIB" "$MESHCTL" run -- sh -c 'printf "%s\n" "$LD_PRELOAD"'
    assert_success
    assert_output "$MESH_LIB"

    run --separate-stderr env MESH_LIB="$MESH_LIB" LD_PRELOAD="$extra_lib" "$MESHCTL" run -- sh -c 'printf "%s\n" "$LD_PRELOAD"'
    assert_success
    assert_output "$MESH_LIB:$extra_lib"

    run --separate-stderr env MESH_LIB="$MESH_LIB" LD_PRELOAD="$extra_lib" "$MESHCTL" run -- cat /proc/self/maps
    assert_success
    assert_output --partial "$MESH_LIB"
    assert_output --partial "$extra_lib"
}

@test "run: the command's exit status, stdin and stdout pass through" {
    run env MESH_LIB="$MESH_LIB" "$MESHCTL" run -- sh -c 'exit 42'
    assert_equal "$status" 42
    run bash -c 'printf "a\nb\n" | MESH_LIB="$1" "$2" run -- sort -r' _ "$MESH_LIB" "$MESHCTL"
    assert_success
    assert_output $'b\na'
}

@test "run: arguments after CMD belong to CMD, even -h and --help" {
    run --separate-stderr env MESH_LIB="$MESH_LIB" "$MESHCTL" run echo -h --help
    assert_success
    assert_output "-h --help"
}

@test "run: a missing library exits 3, a missing command 127, a non-executable one 126" {
    run --separate-stderr env MESH_LIB="$BATS_TEST_TMPDIR/no-libmesh.so" "$MESHCTL" run -- true
    assert_failure 3
    assert_equal "$stderr" "meshctl: run: cannot read the library $BATS_TEST_TMPDIR/no-libmesh.so: No such file or directory"

    run -127 --separate-stderr env MESH_LIB="$MESH_LIB" "$MESHCTL" run -- no-such-command-for-meshctl
    assert_failure 127
    assert_equal "$stderr" "meshctl: run: cannot run 'no-such-command-for-meshctl': No such file or directory"

    : >"$BATS_TEST_TMPDIR/not-executable"
    run --separate-stderr env MESH_LIB="$MESH_LIB" "$MESHCTL" run -- "$BATS_TEST_TMPDIR/not-executable"
    assert_failure 126
    assert_stderr_has "meshctl: run: cannot run '$BATS_TEST_TMPDIR/not-executable': Permission denied"
}

@test "run without MESH_LIB uses the installed library path (exit 3 when it is not installed)" {
    local installed
    installed=$(strings "$MESHCTL" 2>/dev/null | grep -m1 '/libmesh\.so\.1$' || true)
    [[ -n $installed ]] || skip "cannot find the built-in library path in meshctl"
    [[ -e $installed ]] && skip "libmesh is installed at $installed"
    run --separate-stderr env -u MESH_LIB "$MESHCTL" run -- true
    assert_failure 3
    assert_equal "$stderr" "meshctl: run: cannot read the library $installed: No such file or directory"
}
