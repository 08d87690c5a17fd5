#!/usr/bin/env bats
# Real programs must behave identically with and without libmesh.
#
# Each @test is one call of same_output_with_mesh (see helper.bash): the
# command runs without and with LD_PRELOAD=$MESH_LIB (inherited by all child
# processes) in a fresh directory, and stdout + exit code must match.
# Adding a program = adding one line:   @test "name" { same_output_with_mesh CMD...; }
# For multi-step workloads, write a small function below and name it as CMD.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/programs.bats

load helper

setup() { mesh_setup; }

# ----------------------------------------------------------------- workloads
# Each runs in an empty scratch directory and prints a deterministic result.

git_workload() {
    export HOME="$PWD" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME="Mesh Test" GIT_AUTHOR_EMAIL="mesh@example.invalid"
    export GIT_COMMITTER_NAME="Mesh Test" GIT_COMMITTER_EMAIL="mesh@example.invalid"
    export GIT_AUTHOR_DATE="2021-02-03T04:05:06Z" GIT_COMMITTER_DATE="2021-02-03T04:05:06Z"
    git init -q -b main repo && cd repo || return 1
    local c
    mkdir d0 d1 d2 d3
    for c in $(seq 1 15); do
        # 40 files per commit, contents depend on the commit number
        awk -v c="$c" 'BEGIN { for (f = 1; f <= 40; f++) {
            out = "d" (f % 4) "/file" f ".txt"
            for (i = c; i <= f * 50 + c; i++) print f, i, i * f > out
            close(out) } }' || return 1
        if ((c % 5 == 0)); then git rm -q -f "d$((c % 4))/file$c.txt" || return 1; fi
        git add -A && git commit -q -m "commit $c" || return 1
    done
    git log --format='%H%s'
    git -c pack.threads=2 gc -q || return 1
    git -c pack.threads=2 repack -a -d -f -q --window=50 || return 1
    git fsck --full --strict 2>&1
    git count-objects -v | grep -E '^(count|in-pack|packs|garbage):'
    git rev-parse 'HEAD^{tree}'
    git diff --stat HEAD~7 HEAD | tail -n 1
}

gcc_workload() {
    gcc -O2 -Wall -o prog "$MESH_DATA_DIR/gcc_prog.c" && ./prog
}

gxx_workload() {
    g++ -O2 -std=c++17 -Wall -o prog "$MESH_DATA_DIR/gxx_prog.cc" && ./prog
}

bash_workload() {
    bash -c '
        set -e
        total=0
        declare -a arr
        for i in $(seq 1 250); do
            x=$(echo "$i" | tr 0-9 a-j)
            y=$( (echo "$i"; echo $((i * i))) | sort -n | tail -n 1 )
            z=$(printf "%s" "$x$y" | wc -c)
            arr[i]="$x:$y:$z"
            total=$((total + ${#x} + y % 97 + z))
        done
        declare -A h
        for i in "${!arr[@]}"; do h[${arr[i]}]=$i; done
        s=""
        for k in "${!h[@]}"; do s+="$k,"; done
        echo "total=$total keys=${#h[@]} len=${#s}"
        printf "%s\n" "${arr[@]}" | md5sum
        (for j in 1 2 3; do (echo "sub $j"; exit 0) | cat; done) | tr a-z A-Z
    '
}

# 500k lines generated deterministically, sorted with 2 threads, also with a
# small buffer so that sort spills to temporary files and merges
gen_lines() {
    awk 'BEGIN { s = 1; for (i = 0; i < 500000; i++) {
        s = (s * 1103515245 + 12345) % 2147483648
        printf "%010d %s%d\n", s % 100000000, substr("mesh-sort-key-abcdefgh", 1 + s % 13), i % 977 } }'
}
sort_workload() {
    gen_lines >data.txt
    sort --parallel=2 data.txt | md5sum
    sort --parallel=2 -S 2M -T . -k2,2 -k1,1n data.txt | md5sum
    sort --parallel=2 -u -t ' ' -k2,2 data.txt | wc -l
}

# a tree of files with varied sizes, generated deterministically
make_tree() {
    local d f
    for d in $(seq 1 12); do
        mkdir -p "tree/dir$d/sub$((d % 3))"
        for f in $(seq 1 15); do
            seq $((d * f)) $((d * f * 37 + f)) >"tree/dir$d/sub$((d % 3))/f$f.txt"
        done
        head -c $((d * 5000)) /dev/zero >"tree/dir$d/zeros.bin"
    done
}
tree_sums() { (cd "$1" && find . -type f | sort | xargs md5sum); }

tar_gzip_workload() {
    make_tree
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - tree | gzip -n -6 >t.tar.gz
    md5sum t.tar.gz
    mkdir out && tar -xzf t.tar.gz -C out || return 1
    diff -r tree out/tree && echo "trees identical"
    tree_sums out | md5sum
    gzip -dc t.tar.gz | tar -tvf - --numeric-owner | awk '{print $1, $3, $NF}' | md5sum
}

ls_cp_workload() {
    make_tree
    cp -r tree copy && cp -a tree copy2 || return 1
    diff -r tree copy && diff -r tree copy2 && echo "copies identical"
    ls -R copy | md5sum
    ls -1S copy/dir7/sub1 | head -n 5
    ls -la --time-style=+ copy2/dir3/sub0 | awk '{print $1, $5, $NF}' | md5sum
    tree_sums copy2 | md5sum
}

sed_awk_workload() {
    gen_lines | head -n 200000 >in.txt
    sed -E 's/^([0-9]{3})([0-9]+) ([a-z-]+)([0-9]+)$/\3|\4|\2\1/; /^k/d; s/e+/E/g' in.txt | md5sum
    awk '{ n[$2]++; s[$2] += substr($1, 1, 4) } END { for (k in n) print k, n[k], s[k] }' in.txt | sort | md5sum
    awk '{ w = w $2 } NR % 1000 == 0 { a[NR] = w; w = "" } END { t = 0; for (k in a) t += length(a[k]); print t }' in.txt
    sed -n '1000,1010p;20000q' in.txt | awk -F' ' '{ printf "%s;", toupper($2) } END { print "" }'
}

compress_workload() {
    gen_lines | head -n 300000 >in.txt
    if command -v xz >/dev/null; then
        xz -T2 -1 -c in.txt >in.txt.xz && md5sum in.txt.xz
        xz -T2 -dc in.txt.xz | cmp - in.txt && echo "xz round trip ok"
    fi
    if command -v bzip2 >/dev/null; then
        bzip2 -9 -c in.txt >in.txt.bz2 && md5sum in.txt.bz2
        bzip2 -dc in.txt.bz2 | cmp - in.txt && echo "bzip2 round trip ok"
    fi
    md5sum in.txt
}

make_workload() {
    printf '%s\n' \
        'PARTS := $(foreach i,1 2 3 4 5 6 7 8,part$(i).txt)' \
        'all: result.txt' \
        '	@md5sum result.txt' \
        '	@echo "words: $(words $(PARTS)) shell: $(shell echo hi | tr a-z A-Z)"' \
        'result.txt: $(PARTS)' \
        '	@cat $^ | sort -n > $@' \
        'part%.txt:' \
        '	@seq $* 3 $$(( $* * 2000 )) > $@' \
        'clean:' \
        '	@rm -f $(PARTS) result.txt' \
        '.PHONY: all clean' >Makefile
    make -s -j2 && make -s clean && make -s -j1 all
}

# ------------------------------------------------------------------- checks

@test "libmesh is really mapped into preloaded processes" {
    run env LD_PRELOAD="$MESH_LIB" cat /proc/self/maps
    assert_success
    assert_output --partial "$MESH_LIB"
    assert_mesh_mapped python3 -c 'import time; time.sleep(0.5)'
}

@test "python3: threads and big dicts" { PYTHONHASHSEED=0 same_output_with_mesh python3 "$MESH_DATA_DIR/py_threads.py"; }
@test "python3: threads and big dicts, PYTHONMALLOC=malloc" { PYTHONMALLOC=malloc same_output_with_mesh python3 "$MESH_DATA_DIR/py_threads.py" 30000; }
@test "perl: hashes, regexes, strings" { same_output_with_mesh perl "$MESH_DATA_DIR/perl_text.pl"; }
@test "git: init, commit, log, gc, repack, fsck" { same_output_with_mesh git_workload; }
@test "gcc: compile and run a C program" { same_output_with_mesh gcc_workload; }
@test "g++: compile and run a C++ program" { same_output_with_mesh gxx_workload; }
@test "bash: subshells, pipes, command substitution" { same_output_with_mesh bash_workload; }
@test "sort --parallel=2 on 500k lines" { same_output_with_mesh sort_workload; }
@test "tar + gzip round trip" { same_output_with_mesh tar_gzip_workload; }
@test "coreutils ls / cp" { same_output_with_mesh ls_cp_workload; }
@test "sed / awk text processing" { same_output_with_mesh sed_awk_workload; }
@test "xz / bzip2 round trip" { same_output_with_mesh compress_workload; }
@test "make -j2 on a tiny Makefile" { same_output_with_mesh make_workload; }
