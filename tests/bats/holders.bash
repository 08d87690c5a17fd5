# holders.bash - real processes under libmesh for the bats tests of `meshctl stats
# --all`/`top` (top.bats) and `meshctl status` (status.bats): data/top_holder.c,
# started with LD_PRELOAD=$MESH_LIB, each killed by holders_kill.
#
# Usage in a .bats file (after `load helper`):
#     load holders
#     setup()      { holders_setup; }
#     teardown()   { holders_kill; }

# Per-test setup: the library (mesh_setup), a clean environment, meshctl, the holder
# (data/top_holder.c, compiled into $BATS_FILE_TMPDIR/bin by a file's first test),
# and no process started yet.
holders_setup() {
    mesh_setup || return 1
    mesh_clean_env
    [[ -x $MESHCTL ]] || fail "meshctl not found: $MESHCTL (set MESH_BUILD_DIR)"
    HOLDER="$BATS_FILE_TMPDIR/bin/top_holder"
    PIDS=()
    [[ -x $HOLDER ]] && return 0
    mkdir -p "${HOLDER%/*}"
    cc -O0 -fno-builtin -g -Wall -o "$HOLDER" "$BATS_TEST_DIRNAME/data/top_holder.c" -ldl ||
        fail "cannot compile data/top_holder.c"
}

# Every process a test started (holders, churn loops; their pids in PIDS) is killed.
holders_kill() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}

# start_holder VAR MODE [COMM] [ENV=VALUE...]: top_holder under libmesh; its pid goes
# into $VAR (and PIDS, for teardown) once it has written its pid file.
start_holder() {
    local var=$1 mode=$2 comm=${3:-} pidfile pid i
    shift 3 || shift $#
    pidfile="$BATS_TEST_TMPDIR/holder.$var.pid"
    env LD_PRELOAD="$MESH_LIB" "$@" "$HOLDER" "$pidfile" "$mode" ${comm:+"$comm"} \
        >"$BATS_TEST_TMPDIR/holder.$var.out" 2>"$BATS_TEST_TMPDIR/holder.$var.err" 3>&- &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 400; i++)); do
        [[ -s $pidfile ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [[ -s $pidfile ]] || fail "holder $var did not start: $(cat "$BATS_TEST_TMPDIR/holder.$var.err")"
    [[ $(cat "$pidfile") == "$pid" ]] || fail "holder $var: pid file says $(cat "$pidfile"), \$! is $pid"
    printf -v "$var" '%s' "$pid"
}

# churn_holders N: N loops that start and end short-lived libmesh processes for 60 s
# (processes that exit while meshctl reads them).
churn_holders() {
    local i
    for ((i = 0; i < $1; i++)); do
        (
            trap - ERR
            set +e
            export LD_PRELOAD="$MESH_LIB" MESH_FILE_FROM_MIB=0
            end=$((SECONDS + 60))
            while ((SECONDS < end)); do "$HOLDER" /dev/null exit; done
        ) 3>&- &
        PIDS+=("$!")
    done
}

# within_pct A B PCT [SLACK]: |A - B| <= PCT% of B + SLACK (integers; SLACK defaults to 0).
within_pct() {
    local d=$(($1 - $2))
    ((d < 0)) && d=$((-d))
    ((d * 100 <= $3 * $2 + ${4:-0} * 100))
}

# stats_field PID NAME: the first number of `meshctl stats PID`'s NAME line.
stats_field() {
    "$MESHCTL" stats "$1" | sed -n "s/^  $2 *= \([0-9]*\).*/\1/p"
}
