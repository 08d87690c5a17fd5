# helper.bash - common setup for the libmesh bats suite.
#
# Usage in a .bats file:
#     load helper
#     setup() { mesh_setup; }
#
# Environment:
#     MESH_LIB  path of the library under test
#               (default: <repo root>/build/libmesh.so.1).  A missing library
#               is a test FAILURE, never a skip.

bats_load_library bats-support
bats_load_library bats-assert

MESH_REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
MESH_DATA_DIR="$BATS_TEST_DIRNAME/data"
: "${MESH_LIB:=$MESH_REPO_ROOT/build/libmesh.so.1}"
# the meshctl of the build under test
MESHCTL="${MESH_BUILD_DIR:-$MESH_REPO_ROOT/build}/meshctl"

# Per-test setup: check the library, make a scratch directory, pin locale/TZ.
mesh_setup() {
    if [[ ! -f "$MESH_LIB" ]]; then
        fail "libmesh under test not found: MESH_LIB=$MESH_LIB does not exist.
Build it first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)
or set MESH_LIB=/path/to/libmesh.so.1."
        return 1
    fi
    MESH_LIB="$(realpath "$MESH_LIB")"
    export MESH_LIB
    unset LD_PRELOAD
    export LC_ALL=C TZ=UTC
    MESH_WORK="$BATS_TEST_TMPDIR/work"
    mkdir -p "$MESH_WORK"
    cd "$MESH_WORK" || return 1
}

# Run CMD... with LD_PRELOAD=$MESH_LIB (exported, so children inherit it).
# Works for external commands and for shell functions (whose children are
# then preloaded).
# Only what a test sets may reach the library: every MESH_* variable and MALLOCSTATS
# unset, and MESH_CONF an empty file, never the host's /etc/mesh.conf.
mesh_clean_env() {
    unset MESH_CONF MESH_PERIOD_MS MESH_CLASS_AT_A_TIME MESH_BACKGROUND_THREAD \
        MESH_FREEPHYS_THREAD MESH_THP MESH_MAX_MAP_COUNT MALLOCSTATS MESH_STATS \
        MESH_STATS_SIGNAL MESH_VERBOSE MESH_FILE_FROM_MIB
    : >"$BATS_TEST_TMPDIR/empty.conf"
    export MESH_CONF="$BATS_TEST_TMPDIR/empty.conf"
}

with_mesh() {
    (
        set +eE +o pipefail
        trap - ERR
        export LD_PRELOAD="$MESH_LIB"
        "$@"
    )
}

# Run CMD... once without and once with LD_PRELOAD=$MESH_LIB.
#
# Both runs start in a fresh, empty directory with the same absolute path
# ($BATS_TEST_TMPDIR/same.N/run), so commands that create files or print
# paths behave identically.  LD_PRELOAD is exported, so every child process
# of the command is served by libmesh too.
#
# Fails (printing a diff, both exit codes and the stderr tails) when stdout
# or the exit code differ, when the preloaded run shows an ld.so preload
# error, or when the plain run fails (a test whose reference run fails proves
# nothing; set SAME_OUTPUT_ALLOW_FAILURE=1 to compare failing commands).
# CMD may be a shell function defined in the .bats file.
same_output_with_mesh() {
    _MESH_SAME_N=$((${_MESH_SAME_N:-0} + 1))
    local base="$BATS_TEST_TMPDIR/same.$_MESH_SAME_N"
    local plain_rc mesh_rc
    mkdir -p "$base"

    _mesh_run_in "$base" "" "$@" && plain_rc=0 || plain_rc=$?
    mv "$base/run" "$base/run.plain"

    _mesh_run_in "$base" "$MESH_LIB" "$@" && mesh_rc=0 || mesh_rc=$?
    mv "$base/run" "$base/run.mesh"

    local problems=()
    if [[ "${SAME_OUTPUT_ALLOW_FAILURE:-0}" != 1 && $plain_rc -ne 0 ]]; then
        problems+=("reference run (without libmesh) failed with exit code $plain_rc - the test itself is broken")
    fi
    if grep -q -e 'cannot be preloaded' -e 'ERROR: ld\.so' "$base/err.mesh"; then
        problems+=("the dynamic loader did not preload $MESH_LIB")
    fi
    if [[ $plain_rc -ne $mesh_rc ]]; then
        problems+=("exit code differs: without libmesh $plain_rc, with libmesh $mesh_rc")
    fi
    if ! cmp -s "$base/out.plain" "$base/out.mesh"; then
        problems+=("stdout differs")
    fi
    if ((${#problems[@]} == 0)); then
        return 0
    fi

    {
        echo "command: $*"
        printf '  - %s\n' "${problems[@]}"
        echo "--- stdout diff (without libmesh / with libmesh), first 60 lines:"
        diff -u --label plain --label mesh "$base/out.plain" "$base/out.mesh" | head -n 60
        echo "--- stderr without libmesh (last 20 lines):"
        tail -n 20 "$base/err.plain"
        echo "--- stderr with libmesh (last 20 lines):"
        tail -n 20 "$base/err.mesh"
    } | fail
}

# _mesh_run_in BASE PRELOAD CMD...: run CMD in BASE/run, stdout/stderr to
# BASE/{out,err}.{plain,mesh}; returns CMD's exit status.
_mesh_run_in() {
    local base=$1 preload=$2 tag=plain
    shift 2
    [[ -n $preload ]] && tag=mesh
    mkdir "$base/run" || return 97
    (
        # workloads run with ordinary shell semantics, not bats' errexit
        set +eE +o pipefail
        trap - ERR
        cd "$base/run" || exit 98
        if [[ -n $preload ]]; then
            export LD_PRELOAD="$preload"
        else
            unset LD_PRELOAD
        fi
        "$@"
    ) >"$base/out.$tag" 2>"$base/err.$tag" </dev/null
}

# Start CMD... under the preload, poll /proc/<pid>/maps until libmesh shows
# up (or the process ends), then wait for it.  Use a command that lives for
# a while, e.g.  assert_mesh_mapped python3 -c 'import time; time.sleep(1)'
assert_mesh_mapped() {
    local pid found=0 i
    LD_PRELOAD="$MESH_LIB" "$@" >/dev/null 2>"$BATS_TEST_TMPDIR/mapped.err" &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        if grep -qF "$MESH_LIB" "/proc/$pid/maps" 2>/dev/null; then
            found=1
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    local rc=0
    wait "$pid" || rc=$?
    if ((found == 0)); then
        fail "$MESH_LIB was not mapped into process $pid ($*); stderr: $(head -c 2000 "$BATS_TEST_TMPDIR/mapped.err")"
        return 1
    fi
    if ((rc != 0)); then
        fail "command '$*' under libmesh exited with $rc; stderr: $(head -c 2000 "$BATS_TEST_TMPDIR/mapped.err")"
        return 1
    fi
}

# Compile a C (or C++, by extension) source file to an executable, without
# libmesh (it is injected with LD_PRELOAD at run time).  -O0 and -fno-builtin
# keep the compiler from folding away malloc/free pairs under test.
# usage: mesh_compile SRC OUT [extra flags...]
mesh_compile() {
    local src=$1 out=$2
    shift 2
    local compiler=cc
    [[ $src == *.cc || $src == *.cpp ]] && compiler=c++
    run "$compiler" -O0 -fno-builtin -g -Wall -o "$out" "$src" "$@" -pthread -ldl
    if ((status != 0)); then
        fail "compiling $src failed:
$output"
        return 1
    fi
}
