#!/usr/bin/env bats
# fork.bats - programs that fork a lot behave the same under libmesh (issue 6): a bash
# script built on subshells, a Python multiprocessing pool, `git gc` on a repository
# with a few hundred commits, and Redis' BGSAVE snapshot of a ~300 MB dataset that is
# being modified while the child saves it.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/fork.bats
#   MESH_FORK_REDIS_MB=1000 bats -f redis tests/bats/fork.bats    # a bigger Redis
#
# The Redis test needs redis-server and redis-cli (Debian: redis-server, redis-tools;
# tools/deps installs them); it is skipped, saying why, only when they cannot be
# installed.

load helper

setup() {
    mesh_setup || return 1
    # Copy-on-write forks of the heap file with small heaps: the memfd from the start.
    export MESH_FILE_FROM_MIB=0
}

teardown() {
    redis_stop_all
}

# /proc/stat "processes": tasks created since boot, all of the machine (a lower bound
# check of how many forks a workload really did).
forks_so_far() {
    awk '$1 == "processes" { print $2 }' /proc/stat
}

# ------------------------------------------------------------------ bash subshells

# A script whose work is done by forks: command substitutions in loops, pipelines,
# subshells, process substitution, background jobs - more than 2000 forks - on top
# of a bash heap of a few MB (a large array), so every fork has a heap to deal with.
write_subshell_script() {
    cat >"$1" <<'EOF'
set -u
declare -a big
for ((i = 0; i < 30000; i++)); do big[i]="element-$i-$((i * 7919 % 10007))"; done
declare -A seen
total=0
for i in $(seq 1 400); do
    sq=$(echo $((i * i)))
    rev=$(printf '%s\n' "$sq" | rev)
    top=$( (echo "item-$i"; echo "$rev"; echo "${big[i * 50]}") | tr a-z A-Z | sort -r | head -n 1)
    words=($(echo "$i $sq $rev" | tr ' ' '\n' | sort -u))
    seen[$rev]=$i
    total=$((total + ${#words[@]}))
    echo "$i $sq $rev $top ${#words[@]}"
done
echo "distinct reversed squares: ${#seen[@]}"
while read -r a b; do echo "$b:$a"; done < <(seq 1 300 | awk '{ print $1, $1 * 3 }') | sha256sum
echo "lines: $(for j in $(seq 1 200); do printf 'x%.0s' $(seq 1 $((j % 17 + 1))); echo; done | wc -c)"
echo "deep: $(echo $(echo $(echo $(echo "${big[29999]}"))))"
for k in 1 2 3 4 5 6 7 8; do (echo "job $k $(echo $((k * k)))" >"job.$k") & done
wait
cat job.* | sort
f() { local x; x=$(echo "$1" | sed 's/[0-9]/#/g'); echo "$x"; }
for i in $(seq 1 100); do f "$i-${big[i]}"; done | sort | uniq -c | sort -rn | head -n 5
echo "total words: $total, big: ${#big[@]}"
EOF
}

@test "bash: a script of subshells and pipelines (2000+ forks) prints the same under libmesh" {
    write_subshell_script "$MESH_WORK/subshells.sh"
    local before after
    before=$(forks_so_far)
    same_output_with_mesh bash "$MESH_WORK/subshells.sh"
    after=$(forks_so_far)
    # two runs (without and with libmesh), each well over 2000 forks
    if ((after - before < 4000)); then
        fail "expected more than 4000 processes for the two runs, /proc/stat counted $((after - before))"
    fi
}

# ------------------------------------------------------------------ python

# A Pool(4) of forked workers maps over 2000 items; each worker reads a ~40 MB
# structure the parent built before the fork and returns a digest that the parent
# recomputes. Run with pymalloc (default) and with every allocation going to malloc.
POOL_SCRIPT='
import hashlib, multiprocessing as mp
data = {i: ("v%d-" % i) * (i % 40 + 1) for i in range(200000)}
blobs = [bytes([i % 251]) * (i % 3000) for i in range(4000)]
def work(i):
    s = data[i * 97 % 200000] + str(i * i)
    tmp = [s * (j % 5 + 1) for j in range(50)]
    return i, hashlib.sha256(s.encode() + blobs[i % 4000]).hexdigest(), sum(map(len, tmp))
if __name__ == "__main__":
    ctx = mp.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.map(work, range(2000), chunksize=7)
    bad = [r for r in results if r != work(r[0])]
    assert [r[0] for r in results] == list(range(2000)), "results out of order or missing"
    assert not bad, "%d results differ, first %r" % (len(bad), bad[:1])
    print("pool ok", len(results), hashlib.sha256(repr(results).encode()).hexdigest())
'

@test "python3: multiprocessing Pool(4).map over 2000 items gives the same results under libmesh" {
    same_output_with_mesh python3 -c "$POOL_SCRIPT"
    run cat "$BATS_TEST_TMPDIR/same.1/out.mesh"
    assert_output --partial "pool ok 2000"
}

@test "python3 (PYTHONMALLOC=malloc): multiprocessing Pool(4).map over 2000 items under libmesh" {
    export PYTHONMALLOC=malloc
    same_output_with_mesh python3 -c "$POOL_SCRIPT"
    run cat "$BATS_TEST_TMPDIR/same.1/out.mesh"
    assert_output --partial "pool ok 2000"
}

# ------------------------------------------------------------------ git gc

# Builds a repository of 300 commits with git fast-import, adds 20 more with
# `git commit` (loose objects), runs `git gc` and an aggressive repack (each forks
# several git processes; pack-objects uses threads), and prints what must not change.
git_gc_workload() {
    export HOME="$PWD" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME="Mesh Test" GIT_AUTHOR_EMAIL="mesh@example.invalid"
    export GIT_COMMITTER_NAME="Mesh Test" GIT_COMMITTER_EMAIL="mesh@example.invalid"
    git init -q -b main repo && cd repo || return 1
    awk -v n=300 'BEGIN {
        for (c = 1; c <= n; c++) {
            print "commit refs/heads/main"
            print "mark :" c
            printf "committer Mesh Test <mesh@example.invalid> %d +0000\n", 1600000000 + c * 60
            msg = "commit " c
            printf "data %d\n%s\n", length(msg), msg
            if (c > 1) print "from :" (c - 1)
            for (f = 0; f < 4; f++) {
                path = "dir" ((c + f) % 7) "/file" ((c * 3 + f) % 40) ".txt"
                body = ""
                for (l = 0; l < 40 + (c * f) % 60; l++) body = body sprintf("%d %d %d\n", c, f, l * c + f)
                printf "M 100644 inline %s\ndata %d\n%s\n", path, length(body), body
            }
            print ""
        }
    }' | git fast-import --quiet || return 1
    git reset -q --hard main || return 1
    local c
    for c in $(seq 1 20); do
        export GIT_AUTHOR_DATE="2021-02-03T04:05:$((c + 10))Z" GIT_COMMITTER_DATE="2021-02-03T04:05:$((c + 10))Z"
        seq "$c" $((c * 37)) >"dir$((c % 7))/extra$c.txt"
        git add -A && git commit -q -m "porcelain commit $c" || return 1
    done
    git rev-list --count HEAD
    git log --format='%H %s' | sha256sum
    git -c gc.auto=0 -c pack.threads=2 gc --prune=now --quiet || return 1
    git -c pack.threads=2 gc --aggressive --prune=now --quiet || return 1
    git fsck --full --strict 2>&1 && echo "fsck ok"
    git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
    git rev-list --all --objects | sha256sum
    git rev-parse 'HEAD^{tree}'
    git archive --format=tar HEAD | sha256sum
}

# A fork while a helper thread migrates the parent's heap, with faulthandler's
# alternate signal stack in the heap: when the program wrote into a span being
# migrated, the barrier's handler had to run on that stack, which was read-only too,
# and the kernel killed the process (found in CPython's test_posix; 2-15% of runs).
FORK_ALTSTACK_SCRIPT='
import os
r, w = os.pipe()
fin_r, fin_w = os.pipe()
os.register_at_fork(before=lambda: os.write(w, b"A"), after_in_parent=lambda: os.write(w, b"C"),
                    after_in_child=lambda: os.write(w, b"E"))
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(fin_r, 1)
    os._exit(0)
os.close(w)
with open(r, "rb") as f:
    data = f.read()
os.write(fin_w, b"!")
os.waitpid(pid, 0)
print(sorted(data))
'

@test "python3 -X faulthandler, fork with the background thread migrating: 40 runs, none dies" {
    local i out
    for ((i = 0; i < 40; i++)); do
        out=$(env LD_PRELOAD="$MESH_LIB" PYTHONMALLOC=malloc MESH_PERIOD_MS=1 MESH_BACKGROUND_THREAD=true \
            python3 -X faulthandler -c "$FORK_ALTSTACK_SCRIPT" 2>&1) ||
            fail "run $i: exit status $? ($out)"
        # Under load, a process of the pyenv shim (bash, before the interpreter) now and
        # then finds SIGSEGV reset to SIG_DFL and stops meshing with one warning (cause
        # not found yet; see README Limits): allowed here, anything else is not.
        out=$(grep -v '^libmesh: meshing stopped: the SIGSEGV/SIGBUS handler was replaced' <<<"$out")
        assert_equal "$out" "[65, 67, 69]"
    done
}

@test "git: 320 commits, git gc --aggressive and fsck give the same results under libmesh" {
    same_output_with_mesh git_gc_workload
    run cat "$BATS_TEST_TMPDIR/same.1/out.mesh"
    assert_line "320"
    assert_line "fsck ok"
    assert_line "count: 0"
}

# ------------------------------------------------------------------ redis BGSAVE

REDIS_PIDS_FILE() { echo "$BATS_TEST_TMPDIR/redis.pids"; }

redis_require() {
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        timeout 900 "$MESH_REPO_ROOT/tools/deps" </dev/null >"$BATS_TEST_TMPDIR/deps.log" 2>&1 || true
    fi
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        skip "redis-server/redis-cli are not installed and tools/deps could not install them: $(tail -n 1 "$BATS_TEST_TMPDIR/deps.log")"
    fi
}

# redis_start NAME PRELOAD(0|1) [server args...]: starts redis-server on a unix socket
# in $BATS_TEST_TMPDIR/NAME (its --dir too), waits until it answers and has loaded its
# data. Prints nothing; sets REDIS_SOCK and REDIS_PID.
redis_start() {
    local name=$1 preload=$2
    shift 2
    local dir=$BATS_TEST_TMPDIR/$name
    mkdir -p "$dir"
    REDIS_SOCK=$dir/redis.sock
    if [[ $preload == 1 ]]; then
        env LD_PRELOAD="$MESH_LIB" redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
            --save '' --appendonly no --dir "$dir" --dbfilename dump.rdb --enable-debug-command yes \
            --daemonize no --logfile "$dir/redis.log" "$@" >"$dir/stdout" 2>&1 3>&- &
    else
        env -u LD_PRELOAD redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
            --save '' --appendonly no --dir "$dir" --dbfilename dump.rdb --enable-debug-command yes \
            --daemonize no --logfile "$dir/redis.log" "$@" >"$dir/stdout" 2>&1 3>&- &
    fi
    REDIS_PID=$!
    echo "$REDIS_PID" >>"$(REDIS_PIDS_FILE)"
    local i
    for ((i = 0; i < 1200; i++)); do
        if [[ $(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null) == PONG ]] &&
            redis-cli -s "$REDIS_SOCK" info persistence 2>/dev/null | grep -q '^loading:0'; then
            return 0
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "redis-server ($name) did not come up; its log: $(tail -n 20 "$dir/redis.log" 2>/dev/null) $(cat "$dir/stdout")"
}

redis_stop_all() {
    local f pid i
    f=$(REDIS_PIDS_FILE)
    [[ -f $f ]] || return 0
    while read -r pid; do
        kill -TERM "$pid" 2>/dev/null || continue
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done <"$f"
    rm -f "$f"
}

rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }

# value of FIELD in `INFO SECTION`
redis_info() { rcli info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }

redis_pipe() { # generator-args...
    local out
    out=$(python3 "$MESH_DATA_DIR/fork_redis_load.py" "$@" 2>>"$BATS_TEST_TMPDIR/load.log" |
        redis-cli -s "$REDIS_SOCK" --pipe 2>&1)
    if ! grep -q 'errors: 0,' <<<"$out"; then
        fail "redis-cli --pipe ($*) failed: $(tail -n 3 <<<"$out")"
        return 1
    fi
}

@test "redis: BGSAVE under libmesh while the dataset changes: the dump loads back with the same DBSIZE and digest" {
    redis_require
    local mb=${MESH_FORK_REDIS_MB:-300}
    redis_start main 1
    grep -q 'libmesh_arena' "/proc/$REDIS_PID/maps" ||
        fail "redis-server runs with LD_PRELOAD=$MESH_LIB but has no libmesh_arena mapping: libmesh is not serving it"
    local main_pid=$REDIS_PID main_sock=$REDIS_SOCK

    redis_pipe fill "$mb" 1234 || return 1
    local keys digest used
    keys=$(rcli dbsize)
    digest=$(rcli debug digest)
    used=$(redis_info memory used_memory_human)
    [[ $keys -gt 1000 && $digest =~ ^[0-9a-f]{40}$ ]] || fail "unexpected DBSIZE '$keys' or DEBUG DIGEST '$digest'"

    # Make the child's save take a few seconds (statistically sleep 1 us per 1/N keys,
    # a Redis test knob), so that the writes below happen while it saves.
    rcli config set rdb-key-save-delay "-$((keys / 30000 + 1))" >/dev/null
    [[ $(rcli bgsave) == "Background saving started" ]] || fail "BGSAVE did not start"
    local fork_us
    fork_us=$(redis_info stats latest_fork_usec)
    redis_pipe mutate $((mb / 10 + 1)) 99 || return 1
    local overlapped
    overlapped=$(redis_info persistence rdb_bgsave_in_progress)
    rcli config set rdb-key-save-delay 0 >/dev/null
    local i
    for ((i = 0; i < 3000; i++)); do
        [[ $(redis_info persistence rdb_bgsave_in_progress) == 0 ]] && break
        sleep 0.1
    done
    [[ $(redis_info persistence rdb_bgsave_in_progress) == 0 ]] || fail "BGSAVE did not finish within 300 s"
    local status
    status=$(redis_info persistence rdb_last_bgsave_status)
    [[ $status == ok ]] || fail "BGSAVE failed (rdb_last_bgsave_status:$status); log: $(tail -n 20 "$BATS_TEST_TMPDIR/main/redis.log")"
    local keys_after digest_after
    keys_after=$(rcli dbsize)
    digest_after=$(rcli debug digest)
    [[ $digest_after != "$digest" ]] || fail "the writes during BGSAVE changed nothing (test broken)"
    echo "# redis ${mb} MB requested, used_memory $used, $keys keys; fork took ${fork_us} us (INFO latest_fork_usec); writes overlapped the save: $([[ $overlapped == 1 ]] && echo yes || echo no)" >&3

    # the parent keeps serving: its data must still be readable and consistent
    [[ $(REDIS_SOCK=$main_sock rcli ping) == PONG ]] || fail "the libmesh redis-server stopped answering after BGSAVE"

    # a second server without libmesh loads the dump
    mkdir -p "$BATS_TEST_TMPDIR/check"
    cp "$BATS_TEST_TMPDIR/main/dump.rdb" "$BATS_TEST_TMPDIR/check/dump.rdb"
    redis_start check 0
    ! grep -q 'libmesh' "/proc/$REDIS_PID/maps" || fail "the checking redis-server has libmesh mapped"
    local keys_loaded digest_loaded
    keys_loaded=$(rcli dbsize)
    digest_loaded=$(rcli debug digest)
    [[ $keys_loaded == "$keys" ]] || fail "the dump has $keys_loaded keys, the dataset had $keys when BGSAVE forked (the server has $keys_after now)"
    [[ $digest_loaded == "$digest" ]] || fail "the dump's DEBUG DIGEST $digest_loaded differs from the dataset's at fork time, $digest (now $digest_after): the snapshot is not the state at fork"
    # and the libmesh server's live data is still intact
    REDIS_SOCK=$main_sock
    [[ $(rcli dbsize) == "$keys_after" && $(rcli debug digest) == "$digest_after" ]] ||
        fail "the libmesh redis-server's data changed after the save"
    kill -0 "$main_pid" || fail "the libmesh redis-server died"
}
