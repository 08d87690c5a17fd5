#!/usr/bin/env bats
# meshctl stats --all and its alias top: every process under libmesh, read from what
# the processes publish, against real processes started here (data/top_holder.c):
# rows, sorting, totals, agreement with `meshctl stats PID`, --json, --watch, processes
# that end during the scan, and processes the caller may not read.
#
#   MESH_LIB=/path/to/libmesh.so.1 MESH_BUILD_DIR=/path/to/build bats tests/bats/top.bats

bats_require_minimum_version 1.5.0
load helper
load holders

setup() {
    holders_setup || return 1
}

teardown() {
    holders_kill
}

# The four kinds of process a machine shows: meshed, paused at the VMA budget (a cap
# of 5 meshed spans), a heap on its file with nothing meshed, a heap with no file yet.
start_mix() {
    start_holder MESHED frag "" MESH_FILE_FROM_MIB=0
    start_holder PAUSED frag "" MESH_FILE_FROM_MIB=0 MESH_MAX_ALIASES=5
    start_holder FILED small "" MESH_FILE_FROM_MIB=0
    start_holder NOFILE small "" MESH_FILE_FROM_MIB=64
}

# json_field JSON PID FIELD: that process's FIELD ("" when the pid is not listed).
json_field() {
    python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
for p in doc["processes"]:
    if p["pid"] == int(sys.argv[2]):
        v = p[sys.argv[3]]
        print(json.dumps(v) if isinstance(v, (list, bool)) else v)
' "$1" "$2" "$3"
}

@test "stats --all: one row per libmesh process with its figures, a totals line; plain processes are not listed" {
    start_mix
    sleep 60 3>&- &
    local plain=$!
    PIDS+=("$plain")
    run --separate-stderr "$MESHCTL" stats --all
    assert_success
    assert_equal "$stderr" ""
    assert_line --index 0 --regexp '^ +PID COMMAND +PSS +MESHED +SAVING +HEAP FILE +MESHES +PAUSED$'
    assert_line --regexp "^ *$MESHED top_holder .* [1-9][0-9.]* (KiB|MiB|GiB) +[0-9.]+% .* no\$"
    assert_line --regexp "^ *$PAUSED top_holder .* VMA budget\$"
    assert_line --regexp "^ *$FILED top_holder .* 0 B +0\\.0% +[0-9.]+ (KiB|MiB) +0  no\$"
    assert_line --regexp "^ *$NOFILE top_holder .* 0 B +0\\.0% +- +0  no heap file\$"
    assert_line --regexp '^  total .* [0-9]+ process(es)?, [0-9]+ paused$'
    refute_line --regexp "^ *$plain "
    # meshctl itself is not listed (it is not under libmesh here anyway)
    refute_line --regexp "^ *$$ "
}

@test "top is stats --all" {
    start_mix
    run --separate-stderr "$MESHCTL" top
    assert_success
    assert_equal "$stderr" ""
    local top=$output p
    for p in "$MESHED" "$PAUSED" "$FILED" "$NOFILE"; do
        grep -qE "^ *$p top_holder " <<<"$top" || fail "top lacks $p: $top"
    done
    run --separate-stderr "$MESHCTL" top --json
    assert_success
    python3 -m json.tool <<<"$output" >/dev/null || fail "top --json is not JSON: $output"
}

@test "--json: valid JSON, rows sorted by saving, totals the sum of the rows, pause reasons" {
    start_mix
    run --separate-stderr "$MESHCTL" stats --all --json
    assert_success
    assert_equal "$stderr" ""
    printf '%s\n' "$output" | python3 -m json.tool >/dev/null || fail "not JSON: $output"
    python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
rows, t = doc["processes"], doc["totals"]
assert isinstance(doc["unreadable"], list), doc
assert t["unreadable"] == len(doc["unreadable"]), t
saving = [p["meshed_bytes"] for p in rows]
assert saving == sorted(saving, reverse=True), saving
for key in ("pss_bytes", "meshed_bytes", "heap_file_bytes", "mesh_count"):
    assert t[key] == sum(p[key] for p in rows), key
assert t["processes"] == len(rows)
assert t["paused"] == sum(1 for p in rows if p["paused"])
for p in rows:
    want = 100.0 * p["meshed_bytes"] / (p["pss_bytes"] + p["meshed_bytes"]) if p["pss_bytes"] + p["meshed_bytes"] else 0
    assert abs(p["saving_percent"] - want) < 0.01, p
' "$output" || fail "inconsistent JSON: $output"
    local json=$output
    assert_equal "$(json_field "$json" "$PAUSED" paused)" "true"
    assert_equal "$(json_field "$json" "$PAUSED" paused_why)" '["vma_budget"]'
    assert_equal "$(json_field "$json" "$MESHED" paused)" "false"
    assert_equal "$(json_field "$json" "$MESHED" heap_file)" "true"
    assert_equal "$(json_field "$json" "$NOFILE" heap_file)" "false"
    assert_equal "$(json_field "$json" "$NOFILE" meshed_bytes)" "0"
    assert_equal "$(json_field "$json" "$NOFILE" command)" "top_holder"
    (($(json_field "$json" "$MESHED" meshed_bytes) > 0)) || fail "nothing meshed in $MESHED: $json"
}

@test "rows and totals agree with meshctl stats PID" {
    start_mix
    run --separate-stderr "$MESHCTL" stats --all --json
    assert_success
    local json=$output p sum_all=0 sum_stats=0 pss_all pss_stats meshed
    for p in "$MESHED" "$PAUSED" "$FILED"; do
        assert_equal "$(json_field "$json" "$p" meshed_bytes)" "$(stats_field "$p" 'meshed bytes')"
        assert_equal "$(json_field "$json" "$p" mesh_count)" "$(stats_field "$p" 'mesh count')"
        assert_equal "$(json_field "$json" "$p" heap_file_bytes)" "$(stats_field "$p" 'heap file')"
    done
    # PSS moves a little whenever another process maps or unmaps the same libraries
    for p in "$MESHED" "$PAUSED" "$FILED" "$NOFILE"; do
        pss_all=$(($(json_field "$json" "$p" pss_bytes) / 1024))
        pss_stats=$(stats_field "$p" pss)
        sum_all=$((sum_all + pss_all + $(json_field "$json" "$p" meshed_bytes) / 1024))
        meshed=$(stats_field "$p" 'meshed bytes') # none without a heap file
        sum_stats=$((sum_stats + pss_stats + ${meshed:-0} / 1024))
        within_pct "$pss_all" "$pss_stats" 5 64 || fail "pid $p: PSS $pss_all kB in stats --all, $pss_stats kB in stats PID"
    done
    within_pct "$sum_all" "$sum_stats" 1 || fail "totals differ by more than 1%: $sum_all kB vs $sum_stats kB"
}

@test "a heap whose descriptor was closed behind libmesh's back: listed, paused, 'descriptor gone'" {
    start_holder GONE closefd "" MESH_FILE_FROM_MIB=0
    run --separate-stderr "$MESHCTL" stats --all --json
    assert_success
    local json=$output
    [[ -n $(json_field "$json" "$GONE" pid) ]] || fail "$GONE is not listed: $json"
    # its info page is still mapped; /proc/PID/map_files, where it is read, needs root
    [[ $(id -u) == 0 ]] || skip "the info page of a heap without a descriptor is read as root only"
    assert_equal "$(json_field "$json" "$GONE" paused_why)" '["descriptor_gone"]'
    (($(json_field "$json" "$GONE" meshed_bytes) > 0)) || fail "its meshed bytes are lost: $json"
    run --separate-stderr "$MESHCTL" top
    assert_success
    assert_line --regexp "^ *$GONE top_holder .* descriptor gone\$"
}

@test "--json escapes command names: quotes, backslashes, control characters" {
    local name=$'q"b\\c\td'
    start_holder ODD small "$name" MESH_FILE_FROM_MIB=0
    run --separate-stderr "$MESHCTL" stats --all --json
    assert_success
    printf '%s\n' "$output" | python3 -m json.tool >/dev/null || fail "not JSON: $output"
    [[ $(json_field "$output" "$ODD" command) == "$name" ]] ||
        fail "command is '$(json_field "$output" "$ODD" command)', want '$name'"
    run --separate-stderr "$MESHCTL" stats --all
    assert_success
    assert_line --regexp "^ *$ODD q\"b\\\\c\\?d "
}

@test "--watch SECONDS redraws the table until interrupted" {
    start_holder MESHED frag "" MESH_FILE_FROM_MIB=0
    local out="$BATS_TEST_TMPDIR/watch.out" rc=0
    timeout -s INT 2 "$MESHCTL" top --watch 0.3 >"$out" 2>"$BATS_TEST_TMPDIR/watch.err" || rc=$?
    assert_equal "$rc" 124
    local clears headers
    clears=$(grep -c $'\e\[H\e\[2J' "$out" || true)
    headers=$(grep -c 'PID COMMAND' "$out" || true)
    ((clears >= 2 && headers >= 2)) || fail "redrawn $clears times, $headers tables: $(cat -v "$out")"
    grep -qE "^ *$MESHED top_holder " "$out" || fail "the holder is not in the table: $(cat -v "$out")"
    # --json --watch: one JSON object per line
    rc=0
    timeout -s INT 1.5 "$MESHCTL" stats --all --json --watch=0.3 >"$out" || rc=$?
    assert_equal "$rc" 124
    (($(wc -l <"$out") >= 2)) || fail "fewer than two snapshots: $(cat "$out")"
    local line
    while IFS= read -r line; do
        python3 -m json.tool <<<"$line" >/dev/null || fail "not a JSON line: $line"
    done <"$out"
}

@test "a bad --watch argument: one-line error on stderr, exit 2" {
    local arg
    for arg in 0 -1 abc "" 1e999 nan inf 2x 100000; do
        run --separate-stderr "$MESHCTL" stats --all --watch "$arg"
        [[ $status -eq 2 && -z $output && $stderr == "meshctl: "* && $(wc -l <<<"$stderr") -eq 1 ]] ||
            fail "--watch '$arg': exit $status, stdout '$output', stderr '$stderr'"
    done
    for args in "top --watch" "top --bogus" "stats --all 123" "top --watch=0"; do
        # shellcheck disable=SC2086
        run --separate-stderr "$MESHCTL" $args
        [[ $status -eq 2 && -z $output && $stderr == "meshctl: "* && $(wc -l <<<"$stderr") -eq 1 ]] ||
            fail "$args: exit $status, stdout '$output', stderr '$stderr'"
    done
    run "$MESHCTL" top --help
    assert_success
    assert_output --partial "usage: meshctl top"
}

@test "processes that exit during the scan are left out without a word" {
    start_holder MESHED frag "" MESH_FILE_FROM_MIB=0
    churn_holders 4
    local i
    for i in $(seq 1 15); do
        run --separate-stderr "$MESHCTL" stats --all --json
        assert_success
        assert_equal "$stderr" ""
        printf '%s\n' "$output" | python3 -m json.tool >/dev/null || fail "not JSON: $output"
        [[ -n $(json_field "$output" "$MESHED" pid) ]] || fail "the long-lived holder is missing: $output"
        run --separate-stderr "$MESHCTL" top
        assert_success
        assert_equal "$stderr" ""
    done
}

@test "processes the caller may not read are counted and named" {
    [[ $(id -u) == 0 ]] || skip "needs root, to run meshctl as another user"
    command -v setpriv >/dev/null || skip "needs setpriv"
    start_holder MESHED frag "" MESH_FILE_FROM_MIB=0
    local out="$BATS_TEST_TMPDIR/nobody.json" rc=0
    chmod 0755 "$BATS_TEST_TMPDIR"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$MESHCTL" stats --all --json >"$out" || rc=$?
    assert_equal "$rc" 0
    python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
pid = int(sys.argv[2])
assert all(p["pid"] != pid for p in doc["processes"]), "listed although unreadable"
named = [u for u in doc["unreadable"] if u["pid"] == pid]
assert named and named[0]["command"] == "top_holder", doc["unreadable"]
assert doc["totals"]["unreadable"] == len(doc["unreadable"]) >= 1
' "$out" "$MESHED" || fail "$(cat "$out")"
    run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups "$MESHCTL" top
    assert_success
    assert_line --regexp '^[1-9][0-9]* process(es)? could not be read \(permission; run as their user or root\): [0-9]+'
}
