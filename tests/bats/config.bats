#!/usr/bin/env bats
# Run-time configuration: the configuration file (MESH_CONF / /etc/mesh.conf), the
# MESH_* environment, mesh_mallctl, the messages for bad input, statistics at exit
# and on a signal. Small programs are compiled once per file (without libmesh) and
# run with LD_PRELOAD=$MESH_LIB.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/config.bats

bats_require_minimum_version 1.5.0
load helper

# key | value in the file | shown | environment variable | value there | shown |
# value written with mesh_mallctl | shown | mesh_mallctl type (i: int64_t, b: bool,
# s: const char *).  "shown" is how the verbose listing prints the value;
# mesh_mallctl returns the same without the quotes.  The environment value differs
# from the file value, the mesh_mallctl value from the environment one.  log.verbose
# is tested on its own.  A test checks that this table covers src/options.def.
OPTIONS=(
    'mesh.period_ms|250|250|MESH_PERIOD_MS|300|300|400|400|i'
    'mesh.class_at_a_time|false|false|MESH_CLASS_AT_A_TIME|yes|true|false|false|b'
    'mesh.background_thread|true|true|MESH_BACKGROUND_THREAD|off|false|true|true|b'
    'mesh.freephys_thread|true|true|MESH_FREEPHYS_THREAD|0|false|true|true|b'
    'mesh.max_aliases|5000|5000|MESH_MAX_ALIASES|6000|6000|7000|7000|i'
    'mesh.file_from_mib|16|16|MESH_FILE_FROM_MIB|32|32|48|48|i'
    'checks.thp|"disable"|"disable"|MESH_THP|off|"off"|warn|"warn"|s'
    'checks.max_map_count|"off"|"off"|MESH_MAX_MAP_COUNT|WARN|"warn"|off|"off"|s'
    'stats.at_exit|1|1|MALLOCSTATS|2|2|0|0|i'
    'stats.signal|"SIGUSR1"|"SIGUSR1"|MESH_STATS_SIGNAL|usr2|"SIGUSR2"|RTMIN+3|"SIGRTMIN+3"|s'
)

# the defaults as the verbose listing prints them (MESH_VERBOSE=1 set)
DEFAULTS=(
    'mesh.period_ms = 100  # default'
    'mesh.class_at_a_time = true  # default'
    'mesh.background_thread = "auto"  # default'
    'mesh.freephys_thread = false  # default'
    'mesh.max_aliases = 0  # default'
    'mesh.file_from_mib = 16  # default'
    'checks.thp = "warn"  # default'
    'checks.max_map_count = "warn"  # default'
    'stats.at_exit = 0  # default'
    'stats.signal = "off"  # default'
    'log.verbose = true  # env:MESH_VERBOSE'
)

# every option key, in table order, from the option table itself
option_keys() {
    grep -oE '"[a-z_]+\.[a-z_]+"' "$MESH_REPO_ROOT/src/options.def" | tr -d '"'
}

setup_file() {
    local bin="$BATS_FILE_TMPDIR/bin" lib
    mkdir -p "$bin"
    local cflags=(-O0 -fno-builtin -g -Wall -I"$MESH_REPO_ROOT/include")

    # alloc [STATUS [_exit|close-stderr]]: allocate, print "hello", leave with STATUS
    cat >"$bin/alloc.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int status = argc > 1 ? atoi(argv[1]) : 0;
    for (size_t i = 1; i <= 64; i++) {
        char *p = malloc(i * 24);
        if (!p) return 99;
        memset(p, (int)i, i * 24);
        free(p);
    }
    printf("hello\n");
    fflush(stdout);
    if (argc > 2 && !strcmp(argv[2], "_exit")) _exit(status);
    if (argc > 2 && !strcmp(argv[2], "close-stderr")) close(2);
    return status;
}
EOF

    # ctl T:NAME | T:NAME=VALUE ...: read or write options with mesh_mallctl, where T
    # is the type: i (int64_t), b (bool) or s (const char *)
    cat >"$bin/ctl.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef int (*ctl_fn)(const char *, void *, size_t *, void *, size_t);
int main(int argc, char **argv) {
    free(malloc(32)); /* the configuration is read at the first allocation */
    ctl_fn ctl = (ctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!ctl) { puts("mesh_mallctl not found"); return 99; }
    for (int a = 1; a < argc; a++) {
        char name[128], *eq, type = argv[a][0];
        if (!type || argv[a][1] != ':') { printf("bad argument %s\n", argv[a]); return 98; }
        snprintf(name, sizeof name, "%s", argv[a] + 2);
        eq = strchr(name, '=');
        int rc;
        if (eq) {
            *eq++ = 0;
            int64_t i = strtoll(eq, NULL, 10);
            bool b = !strcmp(eq, "true");
            const char *s = eq;
            switch (type) {
            case 'i': rc = ctl(name, NULL, NULL, &i, sizeof i); break;
            case 'b': rc = ctl(name, NULL, NULL, &b, sizeof b); break;
            default: rc = ctl(name, NULL, NULL, &s, sizeof s); break;
            }
            printf("set %s=%s rc=%d\n", name, eq, rc);
        } else {
            int64_t i = -1; bool b = false; const char *s = "?";
            size_t n;
            switch (type) {
            case 'i': n = sizeof i; rc = ctl(name, &i, &n, NULL, 0); printf("%s=%lld", name, (long long)i); break;
            case 'b': n = sizeof b; rc = ctl(name, &b, &n, NULL, 0); printf("%s=%s", name, b ? "true" : "false"); break;
            default: n = sizeof s; rc = ctl(name, &s, &n, NULL, 0); printf("%s=%s", name, s); break;
            }
            printf(" rc=%d\n", rc);
        }
    }
    return 0;
}
EOF

    # errs: mesh_mallctl error codes; prints "ok" or one FAIL line per mismatch
    cat >"$bin/errs.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mesh.h"
typedef int (*ctl_fn)(const char *, void *, size_t *, void *, size_t);
static int failures;
static const char *ename(int e) {
    static char buf[32];
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    default: snprintf(buf, sizeof buf, "%d", e); return buf;
    }
}
#define EXPECT(call, want)                                                                \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        if (rc_ != (want)) {                                                              \
            printf("FAIL line %d: %s returned %s, expected %s\n", __LINE__, #call,         \
                   ename(rc_), ename(want));                                              \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)
#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) { printf("FAIL line %d: ", __LINE__); printf(__VA_ARGS__); puts(""); failures++; } \
    } while (0)
int main(void) {
    free(malloc(64));
    ctl_fn ctl = (ctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    if (!ctl) { puts("mesh_mallctl not found"); return 2; }
    size_t sz = 0, n;
    int64_t i64;
    int32_t i32 = 0;
    bool b;
    const char *s;

    /* unknown names */
    n = sizeof sz; EXPECT(ctl("no.such.name", &sz, &n, NULL, 0), ENOENT);
    EXPECT(ctl("no.such.name", NULL, NULL, NULL, 0), ENOENT);
    i64 = 5; EXPECT(ctl("no.such.option", NULL, NULL, &i64, sizeof i64), ENOENT);
    EXPECT(ctl("", NULL, NULL, NULL, 0), ENOENT);
    EXPECT(ctl("mesh", NULL, NULL, NULL, 0), ENOENT);
    EXPECT(ctl("MESH.PERIOD_MS", NULL, NULL, NULL, 0), ENOENT);
    EXPECT(ctl("mesh.period_ms.x", NULL, NULL, NULL, 0), ENOENT);
    EXPECT(ctl(NULL, NULL, NULL, NULL, 0), EINVAL);

    /* version */
    s = NULL; n = sizeof s; EXPECT(ctl("version", &s, &n, NULL, 0), 0);
    CHECK(s && !strcmp(s, MESH_VERSION), "version is \"%s\", mesh.h says \"%s\"", s ? s : "(null)", MESH_VERSION);
    n = sizeof i32; EXPECT(ctl("version", &i32, &n, NULL, 0), EINVAL);
    s = "9.9.9"; EXPECT(ctl("version", NULL, NULL, &s, sizeof s), EPERM);

    /* statistics: size_t, read-only */
    static const char *const stats[] = {"stats.allocated", "stats.active", "stats.resident",
        "stats.mapped", "stats.dirty", "stats.memfd_bytes", "stats.threads",
        "stats.meshed_bytes", "stats.mesh_count", NULL};
    for (int k = 0; stats[k]; k++) {
        const char *name = stats[k];
        n = sizeof sz;
        int rc = ctl(name, &sz, &n, NULL, 0);
        CHECK(rc == 0, "read %s returned %s", name, ename(rc));
        n = sizeof i32; rc = ctl(name, &i32, &n, NULL, 0);
        CHECK(rc == EINVAL, "read %s with a 4-byte buffer returned %s, expected EINVAL", name, ename(rc));
        sz = 0; rc = ctl(name, NULL, NULL, &sz, sizeof sz);
        CHECK(rc == EPERM, "write %s returned %s, expected EPERM", name, ename(rc));
        n = sizeof sz; rc = ctl(name, &sz, &n, &sz, sizeof sz);
        CHECK(rc == EPERM, "read+write %s returned %s, expected EPERM", name, ename(rc));
    }
    void *big = malloc(1 << 20);
    n = sizeof sz; EXPECT(ctl("stats.allocated", &sz, &n, NULL, 0), 0);
    CHECK(sz >= (1 << 20), "stats.allocated is %zu with 1 MiB live", sz);
    n = sizeof sz; EXPECT(ctl("stats.threads", &sz, &n, NULL, 0), 0);
    CHECK(sz >= 1, "stats.threads is %zu", sz);
    free(big);

    /* options: wrong sizes */
    n = sizeof i32; EXPECT(ctl("mesh.period_ms", &i32, &n, NULL, 0), EINVAL);
    i32 = 5; EXPECT(ctl("mesh.period_ms", NULL, NULL, &i32, sizeof i32), EINVAL);
    n = sizeof i64; EXPECT(ctl("log.verbose", &i64, &n, NULL, 0), EINVAL);
    i64 = 1; EXPECT(ctl("log.verbose", NULL, NULL, &i64, sizeof i64), EINVAL);
    n = sizeof b; EXPECT(ctl("checks.thp", &b, &n, NULL, 0), EINVAL);
    n = sizeof i32; EXPECT(ctl("stats.signal", &i32, &n, NULL, 0), EINVAL);

    /* options: bad values are EINVAL and change nothing */
    i64 = -1; EXPECT(ctl("mesh.period_ms", NULL, NULL, &i64, sizeof i64), EINVAL);
    i64 = 86400001; EXPECT(ctl("mesh.period_ms", NULL, NULL, &i64, sizeof i64), EINVAL);
    i64 = 3; EXPECT(ctl("stats.at_exit", NULL, NULL, &i64, sizeof i64), EINVAL);
    s = "sometimes"; EXPECT(ctl("checks.thp", NULL, NULL, &s, sizeof s), EINVAL);
    s = NULL; EXPECT(ctl("checks.thp", NULL, NULL, &s, sizeof s), EINVAL);
    s = "disable"; EXPECT(ctl("checks.max_map_count", NULL, NULL, &s, sizeof s), EINVAL);
    s = "SIGFOO"; EXPECT(ctl("stats.signal", NULL, NULL, &s, sizeof s), EINVAL);
    s = "RTMIN+99"; EXPECT(ctl("stats.signal", NULL, NULL, &s, sizeof s), EINVAL);
    n = sizeof i64; EXPECT(ctl("mesh.period_ms", &i64, &n, NULL, 0), 0);
    CHECK(i64 == 100, "mesh.period_ms is %lld after rejected writes, expected 100", (long long)i64);
    n = sizeof i64; EXPECT(ctl("stats.at_exit", &i64, &n, NULL, 0), 0);
    CHECK(i64 == 0, "stats.at_exit is %lld after a rejected write, expected 0", (long long)i64);
    n = sizeof s; EXPECT(ctl("checks.thp", &s, &n, NULL, 0), 0);
    CHECK(s && !strcmp(s, "warn"), "checks.thp is %s after rejected writes", s ? s : "(null)");
    n = sizeof s; EXPECT(ctl("stats.signal", &s, &n, NULL, 0), 0);
    CHECK(s && !strcmp(s, "off"), "stats.signal is %s after rejected writes", s ? s : "(null)");

    /* read and write in one call: the old value comes back, the new one is set */
    i64 = 86400000; int64_t old = -1; n = sizeof old;
    EXPECT(ctl("mesh.period_ms", &old, &n, &i64, sizeof i64), 0);
    CHECK(old == 100, "old mesh.period_ms is %lld, expected 100", (long long)old);
    n = sizeof i64; EXPECT(ctl("mesh.period_ms", &i64, &n, NULL, 0), 0);
    CHECK(i64 == 86400000, "mesh.period_ms is %lld after writing 86400000", (long long)i64);

    /* actions */
    n = sizeof sz; EXPECT(ctl("mesh.compact", &sz, &n, NULL, 0), 0);
    n = sizeof sz; EXPECT(ctl("mesh.scavenge", &sz, &n, NULL, 0), 0);
    EXPECT(ctl("arena.purge", NULL, NULL, NULL, 0), 0);
    n = sizeof i32; EXPECT(ctl("arena.purge", &i32, &n, NULL, 0), EINVAL);

    if (!failures) puts("ok");
    return failures != 0;
}
EOF

    # sigdump [--ctl SIGNAL] [CMD ARGS...]: raise(SIGUSR2), then allocate for a while,
    # then exec CMD.  With --ctl, stats.signal is first set with mesh_mallctl.
    cat >"$bin/sigdump.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
typedef int (*ctl_fn)(const char *, void *, size_t *, void *, size_t);
static void say(const char *s) { (void)!write(2, s, strlen(s)); }
int main(int argc, char **argv) {
    free(malloc(16));
    int a = 1;
    if (argc > 2 && !strcmp(argv[1], "--ctl")) {
        ctl_fn ctl = (ctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
        const char *sig = argv[2];
        char buf[64];
        snprintf(buf, sizeof buf, "mesh_mallctl rc=%d\n", ctl ? ctl("stats.signal", NULL, NULL, &sig, sizeof sig) : -1);
        say(buf);
        a = 3;
    }
    say("before raise\n");
    raise(SIGUSR2);
    say("after raise\n");
    for (int i = 0; i < 100000; i++) {
        void *p = malloc(16 + (size_t)(i % 1024) * 16);
        if (!p) return 9;
        free(p);
    }
    say("loop done\n");
    if (a < argc) {
        execvp(argv[a], argv + a);
        say("exec failed\n");
        return 5;
    }
    return 0;
}
EOF

    # forker: allocate, then fork 3 children that allocate and exit(0)
    cat >"$bin/forker.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    free(malloc(16));
    for (int i = 0; i < 3; i++) {
        pid_t p = fork();
        if (p < 0) return 3;
        if (p == 0) {
            for (int k = 0; k < 1000; k++) free(malloc(16 + (size_t)k));
            exit(0);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 4;
    }
    puts("parent done");
    return 0;
}
EOF

    # early [write]: mesh_mallctl before the program's first allocation (linked to
    # libmesh, so nothing else has to be resolved or allocated first)
    cat >"$bin/early.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mesh.h"
static void say(const char *s) { (void)!write(1, s, strlen(s)); }
int main(int argc, char **argv) {
    char buf[128];
    int64_t v = -1;
    size_t n = sizeof v;
    if (argc > 1 && !strcmp(argv[1], "write")) {
        int64_t w = 400;
        snprintf(buf, sizeof buf, "early write rc=%d\n", mesh_mallctl("mesh.period_ms", NULL, NULL, &w, sizeof w));
    } else {
        int rc = mesh_mallctl("mesh.period_ms", &v, &n, NULL, 0);
        snprintf(buf, sizeof buf, "early=%lld rc=%d\n", (long long)v, rc);
    }
    say(buf);
    free(malloc(100));
    mesh_mallctl("mesh.period_ms", &v, &n, NULL, 0);
    snprintf(buf, sizeof buf, "late=%lld\n", (long long)v);
    say(buf);
    return 0;
}
EOF

    local p
    for p in alloc ctl errs sigdump forker; do
        cc "${cflags[@]}" -o "$bin/$p" "$bin/$p.c" -ldl >"$bin/$p.log" 2>&1 ||
            { cat "$bin/$p.log" >&2; return 1; }
    done
    if [[ -f $MESH_LIB ]]; then
        lib="$(realpath "$MESH_LIB")"
        cc "${cflags[@]}" -o "$bin/early" "$bin/early.c" "$lib" -Wl,-rpath,"$(dirname "$lib")" \
            >"$bin/early.log" 2>&1 || { cat "$bin/early.log" >&2; return 1; }
    fi
}

setup() {
    mesh_setup || return 1
    mesh_clean_env
    B="$BATS_FILE_TMPDIR/bin"
    CONF="$MESH_DATA_DIR/config"
    ulimit -c 0
}

# run_mesh [VAR=VALUE...] CMD [ARGS...]: $output is stdout, $stderr is stderr
run_mesh() {
    run --separate-stderr env LD_PRELOAD="$MESH_LIB" "$@"
}

# The alloc program's stdout and exit status are what they are without libmesh.
assert_unchanged() {
    local want=$1
    if [[ $status -ne $want || $output != hello ]]; then
        fail "the program's behaviour changed: exit status $status (want $want), stdout '$output' (want 'hello')
--- stderr:
$stderr"
    fi
}

# stderr without the host-dependent THP warning
err_text() {
    grep -v '^libmesh: transparent huge pages' <<<"$stderr" || true
}

assert_err_line() {
    local want=$1
    grep -qxF -- "$want" <<<"$stderr" ||
        fail "stderr lacks the line
  $want
--- stderr:
$stderr"
}

refute_err_match() {
    local pattern=$1
    if grep -qE -- "$pattern" <<<"$stderr"; then
        fail "stderr has a line matching /$pattern/:
$(grep -E -- "$pattern" <<<"$stderr")"
    fi
}

# count_err FIXED-STRING: how many stderr lines contain it
count_err() {
    grep -cF -- "$1" <<<"$stderr" || true
}

# assert_err_count N FIXED-STRING
assert_err_count() {
    local want=$1 text=$2 got
    got=$(count_err "$text")
    ((got == want)) || fail "'$text' appears $got times on stderr, expected $want
--- stderr:
$stderr"
}

# No 'libmesh: ' line that is neither an option listing nor the THP warning.
refute_problems() {
    local bad
    bad=$(grep '^libmesh: ' <<<"$stderr" | grep -v -e '^libmesh: option ' -e '^libmesh: transparent huge pages' || true)
    [[ -z $bad ]] || fail "unexpected messages:
$bad"
}

# ---- defaults and every option ----------------------------------------------------

@test "the OPTIONS table of this file covers every option in src/options.def" {
    local key row uncovered=()
    while read -r key; do
        [[ $key == log.verbose ]] && continue
        for row in "${OPTIONS[@]}"; do
            [[ ${row%%|*} == "$key" ]] && continue 2
        done
        uncovered+=("$key")
    done < <(option_keys)
    ((${#uncovered[@]} == 0)) || fail "options without a row in OPTIONS (config.bats): ${uncovered[*]}"
}

@test "MESH_VERBOSE=1 lists every option once with its default and nothing else" {
    run_mesh MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    local key line n
    n=$(option_keys | wc -l)
    assert_equal "$(err_text | wc -l)" "$n"
    assert_equal "$(err_text | grep -c '^libmesh: option ')" "$n"
    while read -r key; do
        assert_err_count 1 "libmesh: option $key = "
    done < <(option_keys)
    for line in "${DEFAULTS[@]}"; do
        assert_err_line "libmesh: option $line"
    done
    # in table order
    assert_equal "$(err_text | sed 's/^libmesh: option \([^ ]*\) .*/\1/')" "$(option_keys)"
}

@test "without MESH_VERBOSE and with valid settings the library prints nothing" {
    run_mesh MESH_CONF="$CONF/valid.conf" MESH_PERIOD_MS=300 "$B/alloc" 7
    assert_unchanged 7
    assert_equal "$(err_text)" ""
}

@test "every option can be set in the configuration file" {
    local row key fval fshown ename evalue eshown cval cshown type conf="$BATS_TEST_TMPDIR/one.conf"
    for row in "${OPTIONS[@]}"; do
        IFS='|' read -r key fval fshown ename evalue eshown cval cshown type <<<"$row"
        printf '# %s\n%s = { %s = %s; };\n' "$key" "${key%%.*}" "${key#*.}" "$fval" >"$conf"
        run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option $key = $fshown  # $conf:2"
        refute_problems
    done
    printf 'log = {\n  verbose = true;\n};\n' >"$conf"
    run_mesh MESH_CONF="$conf" "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option log.verbose = true  # $conf:2"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"
}

@test "one file sets all options at once (data/config/all-options.conf)" {
    local f="$CONF/all-options.conf"
    run_mesh MESH_CONF="$f" "$B/alloc" 7
    assert_unchanged 7
    assert_equal "$(err_text | grep '^libmesh: option')" "libmesh: option mesh.period_ms = 250  # $f:3
libmesh: option mesh.class_at_a_time = false  # $f:4
libmesh: option mesh.background_thread = true  # $f:5
libmesh: option mesh.freephys_thread = true  # $f:6
libmesh: option mesh.max_aliases = 5000  # $f:7
libmesh: option mesh.file_from_mib = 16  # $f:8
libmesh: option checks.thp = \"disable\"  # $f:11
libmesh: option checks.max_map_count = \"off\"  # $f:12
libmesh: option stats.at_exit = 1  # $f:15
libmesh: option stats.signal = \"SIGUSR1\"  # $f:16
libmesh: option log.verbose = true  # $f:19"
    refute_problems
    assert_err_count 1 "libmesh heap statistics" # stats.at_exit = 1
}

@test "every option can be set in the environment" {
    local row key fval fshown ename evalue eshown cval cshown type
    for row in "${OPTIONS[@]}"; do
        IFS='|' read -r key fval fshown ename evalue eshown cval cshown type <<<"$row"
        run_mesh "$ename=$evalue" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option $key = $eshown  # env:$ename"
        refute_problems
    done
    run_mesh MESH_VERBOSE=on "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option log.verbose = true  # env:MESH_VERBOSE"
}

@test "the environment wins over the file, for every option" {
    local row key fval fshown ename evalue eshown cval cshown type conf="$BATS_TEST_TMPDIR/one.conf"
    for row in "${OPTIONS[@]}"; do
        IFS='|' read -r key fval fshown ename evalue eshown cval cshown type <<<"$row"
        printf '%s = { %s = %s; };\n' "${key%%.*}" "${key#*.}" "$fval" >"$conf"
        run_mesh MESH_CONF="$conf" "$ename=$evalue" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option $key = $eshown  # env:$ename"
        refute_problems
    done
    # log.verbose: the file turns it on, the environment off - and the other way round
    printf 'log = { verbose = true; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=0 "$B/alloc" 7
    assert_unchanged 7
    assert_equal "$(err_text)" ""
    printf 'log = { verbose = false; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option log.verbose = true  # env:MESH_VERBOSE"
}

@test "a mesh_mallctl write wins over the environment and the file, for every option" {
    local row key fval fshown ename evalue eshown cval cshown type conf="$BATS_TEST_TMPDIR/one.conf"
    for row in "${OPTIONS[@]}" 'log.verbose|false|false|MESH_VERBOSE|1|true|false|false|b'; do
        IFS='|' read -r key fval fshown ename evalue eshown cval cshown type <<<"$row"
        printf '%s = { %s = %s; };\n' "${key%%.*}" "${key#*.}" "$fval" >"$conf"
        run_mesh MESH_CONF="$conf" "$ename=$evalue" "$B/ctl" "$type:$key" "$type:$key=$cval" "$type:$key"
        assert_success
        assert_equal "$output" "$key=${eshown//\"/} rc=0
set $key=$cval rc=0
$key=${cshown//\"/} rc=0"
    done
}

@test "boolean environment values: 1/0, true/false, yes/no, on/off in any case" {
    local v
    for v in 1 true TRUE yes Yes on ON; do
        run_mesh MESH_BACKGROUND_THREAD="$v" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option mesh.background_thread = true  # env:MESH_BACKGROUND_THREAD"
    done
    for v in 0 false False no NO off Off; do
        run_mesh MESH_CLASS_AT_A_TIME="$v" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option mesh.class_at_a_time = false  # env:MESH_CLASS_AT_A_TIME"
    done
}

@test "mesh.background_thread takes \"auto\" besides true and false, in the environment and the file" {
    run_mesh MESH_BACKGROUND_THREAD=AUTO MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option mesh.background_thread = \"auto\"  # env:MESH_BACKGROUND_THREAD"
    local f="$BATS_TEST_TMPDIR/auto.conf"
    printf 'mesh = { background_thread = "auto"; };\nmesh.period_ms = 50;\n' >"$f"
    run_mesh MESH_CONF="$f" MESH_BACKGROUND_THREAD= MESH_VERBOSE=1 "$B/alloc" 7
    assert_err_line "libmesh: option mesh.background_thread = \"auto\"  # $f:1"
    printf 'mesh = { background_thread = "sometimes"; };\n' >"$f"
    run_mesh MESH_CONF="$f" "$B/alloc" 7
    assert_unchanged 7
    assert_equal "$(err_text)" "libmesh: $f:1: mesh.background_thread: expected true, false or \"auto\"; ignored"
    run_mesh MESH_BACKGROUND_THREAD=2 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: MESH_BACKGROUND_THREAD=\"2\": expected true, false or \"auto\"; ignored"
}

@test "signal names: SIGUSR2, usr2, RTMIN+3, SIGRTMIN+3, off" {
    local v shown
    for v in SIGUSR2:SIGUSR2 usr2:SIGUSR2 sigusr1:SIGUSR1 RTMIN+3:SIGRTMIN+3 SIGRTMIN+3:SIGRTMIN+3 \
        rtmin:SIGRTMIN+0 off:off OFF:off; do
        shown=${v#*:}
        run_mesh MESH_STATS_SIGNAL="${v%%:*}" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option stats.signal = \"$shown\"  # env:MESH_STATS_SIGNAL"
        refute_problems
    done
}

@test "integer values in the file: bounds, hexadecimal, 64-bit" {
    local conf="$BATS_TEST_TMPDIR/int.conf" v
    for v in 0:0 86400000:86400000 0x10:16 250L:250; do
        printf 'mesh = { period_ms = %s; };\n' "${v%%:*}" >"$conf"
        run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option mesh.period_ms = ${v#*:}  # $conf:1"
        refute_problems
    done
}

# ---- bad input in the file ---------------------------------------------------------

@test "bad settings: one line for the file (the first, and how many more), meshctl lists each with file:line, the valid ones still apply" {
    local f="$CONF/problems.conf"
    run "$MESH_BUILD_DIR/meshctl" config check "$f"
    [ "$status" -eq 1 ]
    assert_equal "$(grep -F "$f:" <<<"$output")" "$f:2: unknown option 'mesh.bogus'; ignored
$f:4: mesh.class_at_a_time: expected true or false; ignored
$f:8: checks.thp: expected one of \"warn\", \"disable\", \"off\"; ignored
$f:12: stats.at_exit: expected an integer from 0 to 2; ignored
$f:13: stats.signal: expected \"off\" or a signal name such as \"SIGUSR2\"; ignored
$f:15: log.verbose: expected true or false; ignored"
    run_mesh MESH_CONF="$f" "$B/alloc" 7
    assert_unchanged 7
    assert_equal "$(err_text)" "libmesh: $f:2: unknown option 'mesh.bogus'; ignored (and 5 more problems in $f: 'meshctl config check $f' lists them all)"

    run_mesh MESH_CONF="$f" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option mesh.period_ms = 250  # $f:3"
    assert_err_line "libmesh: option mesh.background_thread = true  # $f:5"
    assert_err_line "libmesh: option checks.max_map_count = \"off\"  # $f:9"
    assert_err_line "libmesh: option mesh.class_at_a_time = true  # default"
    assert_err_line "libmesh: option checks.thp = \"warn\"  # default"
    assert_err_line "libmesh: option stats.at_exit = 0  # default"
    assert_err_line "libmesh: option stats.signal = \"off\"  # default"
}

@test "bad integer values in the file: each one message, the next line still applies" {
    local conf="$BATS_TEST_TMPDIR/x.conf" v
    for v in -5 86400001 '"250"' 2.5 '[1, 2]' 99999999999999999999 true '{ a = 1; }'; do
        printf 'stats = { at_exit = 1; };\nmesh = { period_ms = %s; };\nchecks = { thp = "off"; };\n' "$v" >"$conf"
        run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: $conf:2: mesh.period_ms: expected an integer from 0 to 86400000; ignored"
        assert_err_count 1 "$conf:2:"
        assert_err_line "libmesh: option mesh.period_ms = 100  # default"
        assert_err_line "libmesh: option stats.at_exit = 1  # $conf:1"
        assert_err_line "libmesh: option checks.thp = \"off\"  # $conf:3"
    done
}

@test "unknown keys: top-level, unknown group, nested group" {
    local conf="$BATS_TEST_TMPDIR/x.conf"
    printf 'period_ms = 3;\nmeshh = { period_ms = 3; };\nmesh = { sub = { x = 1; }; };\nmesh = 5;\n' >"$conf"
    printf 'stats = { at_exit = 2; };\n' >>"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $conf:1: unknown option 'period_ms'; ignored (and 3 more problems in $conf: 'meshctl config check $conf' lists them all)"
    assert_err_line "libmesh: option stats.at_exit = 2  # $conf:5"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"
    run "$MESH_BUILD_DIR/meshctl" config check "$conf"
    grep -qF "$conf:2: unknown option 'meshh.period_ms'; ignored" <<<"$output" || fail "$output"
    grep -qF "$conf:3: unknown option 'mesh.sub'; ignored" <<<"$output" || fail "$output"
}

@test "syntax errors skip their line; parsing resumes (data/config/syntax.conf)" {
    local f="$CONF/syntax.conf"
    run_mesh MESH_CONF="$f" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $f:4: syntax error; line skipped (and 1 more problem in $f: 'meshctl config check $f' lists them all)"
    assert_err_count 1 "syntax error"
    assert_err_line "libmesh: option mesh.period_ms = 250  # $f:2"
    assert_err_line "libmesh: option checks.max_map_count = \"off\"  # $f:6"
    assert_err_line "libmesh: option stats.at_exit = 0  # default"
}

@test "a syntax error on the first line; the second line still applies" {
    local conf="$BATS_TEST_TMPDIR/x.conf"
    printf 'mesh = { period_ms = ; };\nstats = { at_exit = 1; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $conf:1: syntax error; line skipped"
    assert_err_line "libmesh: option stats.at_exit = 1  # $conf:2"
}

@test "an unterminated comment is reported, not silently swallowing later settings" {
    local conf="$BATS_TEST_TMPDIR/x.conf"
    printf 'mesh = { period_ms = 250; };\n/* unterminated\nstats = { at_exit = 1; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option mesh.period_ms = 250  # $conf:1"
    # line 3 lies inside the comment; whether it then applies or not, the file's
    # problem must be reported
    grep -q "^libmesh: $conf" <<<"$stderr" ||
        fail "no message about $conf, though its line 3 does not apply
--- stderr:
$stderr"
}

@test "ten problems: one line (the first, and how many more), meshctl config check lists all ten" {
    local conf="$BATS_TEST_TMPDIR/many.conf" i
    # libconfig refuses a second group of the same name, so use distinct groups
    for i in 1 2 3 4 5 6 7 8 9 10; do printf 'g%d = { bogus = 1; };\n' "$i"; done >"$conf"
    printf 'stats = { at_exit = 1; };\n' >>"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $conf:1: unknown option 'g1.bogus'; ignored (and 9 more problems in $conf: 'meshctl config check $conf' lists them all)"
    assert_err_line "libmesh: option stats.at_exit = 1  # $conf:11"
    (($(grep -c "^libmesh: $conf:" <<<"$stderr") == 1)) || fail "more than one line about $conf: $stderr"
    run "$MESH_BUILD_DIR/meshctl" config check "$conf"
    [ "$status" -eq 1 ]
    for i in 1 2 3 4 5 6 7 8 9 10; do
        grep -qF "$conf:$i: unknown option 'g$i.bogus'; ignored" <<<"$output" || fail "meshctl config check misses line $i: $output"
    done
}

@test "4 KiB of random bytes as the configuration: at most one libmesh line, the program runs" {
    local conf="$BATS_TEST_TMPDIR/random.conf"
    head -c 4096 /dev/urandom >"$conf"
    run_mesh MESH_CONF="$conf" "$B/alloc" 7
    assert_unchanged 7
    (($(grep -c '^libmesh: ' <<<"$stderr") <= 1)) || fail "more than one libmesh line: $stderr"
}

@test "values longer than 63 characters are judged whole, not truncated" {
    local pad conf="$BATS_TEST_TMPDIR/x.conf"
    pad=$(printf '%70s' '')
    run_mesh MESH_THP="off${pad}junk" MESH_PERIOD_MS="1${pad}junk" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option checks.thp = \"warn\"  # default"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"
    assert_err_count 1 'libmesh: MESH_THP="'
    assert_err_count 1 'libmesh: MESH_PERIOD_MS="'

    printf 'checks = { thp = "disable%sjunk"; };\n' "$pad" >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $conf:1: checks.thp: expected one of \"warn\", \"disable\", \"off\"; ignored"
}

# ---- bad input in the environment --------------------------------------------------

@test "bad environment values: one message each, valid variables and the file still apply" {
    run_mesh MESH_CONF="$CONF/valid.conf" MESH_VERBOSE=1 \
        MESH_PERIOD_MS=abc MESH_CLASS_AT_A_TIME=maybe MESH_BACKGROUND_THREAD=2 MESH_THP=sometimes \
        MESH_MAX_MAP_COUNT=disable MALLOCSTATS=3 MESH_STATS_SIGNAL=SIGKILL MESH_FREEPHYS_THREAD=on \
        "$B/alloc" 7
    assert_unchanged 7
    assert_err_line 'libmesh: MESH_PERIOD_MS="abc": expected an integer from 0 to 86400000; ignored'
    assert_err_line 'libmesh: MESH_CLASS_AT_A_TIME="maybe": expected true or false; ignored'
    assert_err_line 'libmesh: MESH_BACKGROUND_THREAD="2": expected true, false or "auto"; ignored'
    assert_err_line 'libmesh: MESH_THP="sometimes": expected one of "warn", "disable", "off"; ignored'
    assert_err_line 'libmesh: MESH_MAX_MAP_COUNT="disable": expected one of "warn", "off"; ignored'
    assert_err_line 'libmesh: MALLOCSTATS="3": expected an integer from 0 to 2; ignored'
    assert_err_line 'libmesh: MESH_STATS_SIGNAL="SIGKILL": expected "off" or a signal name such as "SIGUSR2"; ignored'
    # the file's values stay where the environment was bad
    local f="$CONF/valid.conf"
    assert_err_line "libmesh: option mesh.period_ms = 250  # $f:3"
    assert_err_line "libmesh: option mesh.class_at_a_time = false  # $f:4"
    assert_err_line "libmesh: option stats.signal = \"SIGUSR2\"  # $f:6"
    assert_err_line "libmesh: option mesh.freephys_thread = true  # env:MESH_FREEPHYS_THREAD"
    assert_err_count 7 "; ignored"
}

@test "environment integers: empty, signs, overflow, blanks around the number" {
    local v
    for v in '' '-1' '86400001' '99999999999999999999999' '12abc' '0x10'; do
        run_mesh MESH_PERIOD_MS="$v" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: MESH_PERIOD_MS=\"$v\": expected an integer from 0 to 86400000; ignored"
        assert_err_line "libmesh: option mesh.period_ms = 100  # default"
    done
    for v in ' 250 ' '+250' '0250'; do
        run_mesh MESH_PERIOD_MS="$v" MESH_VERBOSE=1 "$B/alloc" 7
        assert_unchanged 7
        assert_err_line "libmesh: option mesh.period_ms = 250  # env:MESH_PERIOD_MS"
        refute_problems
    done
}

@test "MESH_STATS is an alias of MALLOCSTATS; MALLOCSTATS wins when both are set" {
    run_mesh MESH_STATS=1 MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option stats.at_exit = 1  # env:MESH_STATS"
    assert_err_count 1 "libmesh heap statistics"

    run_mesh MESH_STATS=1 MALLOCSTATS=2 MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option stats.at_exit = 2  # env:MALLOCSTATS"
    assert_err_count 1 "per size class"

    run_mesh MESH_STATS=2 MALLOCSTATS=0 "$B/alloc" 7
    assert_unchanged 7
    assert_err_count 0 "libmesh heap statistics"
}

# ---- files that cannot be used -----------------------------------------------------

@test "a missing MESH_CONF file is reported once; the environment still applies" {
    local missing="$BATS_TEST_TMPDIR/no-such.conf"
    run_mesh MESH_CONF="$missing" MESH_PERIOD_MS=300 MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $missing: cannot open: No such file or directory"
    assert_err_count 1 "cannot open"
    assert_err_line "libmesh: option mesh.period_ms = 300  # env:MESH_PERIOD_MS"
}

@test "a directory as MESH_CONF: 'is a directory; using defaults'" {
    local dir="$BATS_TEST_TMPDIR/conf.d"
    mkdir "$dir"
    run_mesh MESH_CONF="$dir" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $dir: is a directory; using defaults"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"
}

@test "a FIFO or a device as MESH_CONF: 'is not a regular file', and no hang" {
    local fifo="$BATS_TEST_TMPDIR/conf.fifo"
    mkfifo "$fifo"
    run --separate-stderr timeout 20 env LD_PRELOAD="$MESH_LIB" MESH_CONF="$fifo" "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $fifo: is not a regular file; using defaults"

    run_mesh MESH_CONF=/dev/null "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: /dev/null: is not a regular file; using defaults"
}

@test "an unreadable MESH_CONF file: 'cannot open: Permission denied'" {
    # root reads a mode-000 file anyway, so there is nothing to test as root
    if [[ $(id -u) -eq 0 ]]; then
        skip "running as root: a chmod 000 file is still readable"
    fi
    local conf="$BATS_TEST_TMPDIR/secret.conf"
    printf 'mesh = { period_ms = 250; };\n' >"$conf"
    chmod 000 "$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $conf: cannot open: Permission denied"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"
}

# pad_to FILE SIZE: append blanks (a text file, unlike truncate's NUL bytes)
pad_to() {
    local have
    have=$(stat -c %s "$1")
    head -c $(($2 - have)) /dev/zero | tr '\0' ' ' >>"$1"
    assert_equal "$(stat -c %s "$1")" "$2"
}

@test "a 100 MB (sparse) file and a 2 MB file are too large; exactly 1 MiB is read" {
    local big="$BATS_TEST_TMPDIR/big.conf" two="$BATS_TEST_TMPDIR/two.conf"
    printf 'mesh = { period_ms = 250; };\n' >"$big"
    truncate -s 100M "$big"
    run_mesh MESH_CONF="$big" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $big: too large (104857600 bytes, the limit is 1 MiB); using defaults"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"

    printf 'mesh = { period_ms = 250; };\n' >"$two"
    pad_to "$two" 2097152
    run_mesh MESH_CONF="$two" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $two: too large (2097152 bytes, the limit is 1 MiB); using defaults"
    assert_err_line "libmesh: option mesh.period_ms = 100  # default"

    local mib="$BATS_TEST_TMPDIR/mib.conf"
    printf 'mesh = { period_ms = 250; };\n' >"$mib"
    pad_to "$mib" 1048576
    run_mesh MESH_CONF="$mib" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option mesh.period_ms = 250  # $mib:1"
    refute_problems
    printf ' ' >>"$mib"
    run_mesh MESH_CONF="$mib" "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $mib: too large (1048577 bytes, the limit is 1 MiB); using defaults"
}

@test "binary garbage (4 KiB, fixed seed): one line about the file, meshctl names the binary data once, a valid last line applies" {
    local bin="$BATS_TEST_TMPDIR/garbage.conf" nlines
    python3 -c '
import random, sys
r = random.Random(1234)
sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(4096)))' >"$bin"
    printf '\nstats = { at_exit = 2; };\n' >>"$bin"
    nlines=$(wc -l <"$bin")
    run_mesh MESH_CONF="$bin" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    (($(grep -c "^libmesh: $bin" <<<"$stderr") == 1)) || fail "not one line about $bin: $stderr"
    assert_err_line "libmesh: option stats.at_exit = 2  # $bin:$nlines"
    assert_err_count 1 "per size class"
    run "$MESH_BUILD_DIR/meshctl" config check "$bin"
    (($(grep -c "binary data in the file; line skipped" <<<"$output") == 1)) || fail "$output"
    grep -qE "^$bin:[0-9]+: binary data in the file; line skipped\$" <<<"$output" ||
        fail "no file:line on the binary data message: $output"
}

@test "a NUL byte on one line: that line is skipped with file:line, the others apply" {
    local conf="$BATS_TEST_TMPDIR/nul.conf"
    printf 'mesh = { period_ms = 250; };\ncheck\0s = { thp = "off"; };\nstats = { at_exit = 1; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: $conf:2: binary data in the file; line skipped"
    assert_err_line "libmesh: option mesh.period_ms = 250  # $conf:1"
    assert_err_line "libmesh: option checks.thp = \"warn\"  # default"
    assert_err_line "libmesh: option stats.at_exit = 1  # $conf:3"
}

@test "CRLF line endings and comments of every libconfig style are accepted" {
    local conf="$BATS_TEST_TMPDIR/crlf.conf"
    printf '# hash\r\n// slashes\r\n/* block */ mesh = { period_ms = 250; };\r\nstats = { at_exit = 0; };\r\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_VERBOSE=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_line "libmesh: option mesh.period_ms = 250  # $conf:3"
    refute_problems
}

# ---- once per process --------------------------------------------------------------

@test "messages and the listing appear once per process, also when it forks" {
    local conf="$BATS_TEST_TMPDIR/x.conf"
    printf 'mesh = { bogus = 1; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" MESH_PERIOD_MS=abc MESH_VERBOSE=1 "$B/forker"
    assert_success
    assert_output "parent done"
    assert_err_count 1 "unknown option 'mesh.bogus'"
    assert_err_count 1 'MESH_PERIOD_MS="abc"'
    assert_err_count 1 "libmesh: option mesh.period_ms ="
    assert_err_count "$(option_keys | wc -l)" "libmesh: option "
}

@test "MALLOCSTATS=1 with fork: one report per process that exits normally" {
    run_mesh MALLOCSTATS=1 "$B/forker"
    assert_success
    assert_output "parent done"
    assert_err_count 4 "libmesh heap statistics (pid "
    local pids
    pids=$(grep -o 'libmesh heap statistics (pid [0-9]*' <<<"$stderr" | sort -u | wc -l)
    assert_equal "$pids" 4
}

# ---- statistics at exit ------------------------------------------------------------

@test "MALLOCSTATS=1 prints totals at exit, =2 adds the size class table" {
    run_mesh MALLOCSTATS=1 "$B/alloc" 7
    assert_unchanged 7
    assert_err_count 1 "libmesh heap statistics (pid "
    grep -qE '^ +threads += 1$' <<<"$stderr" || fail "no 'threads = 1' line in the statistics: $stderr"
    assert_err_count 0 "per size class"

    run_mesh MALLOCSTATS=2 "$B/alloc" 7
    assert_unchanged 7
    assert_err_count 1 "libmesh heap statistics (pid "
    assert_err_count 1 "per size class"

    run_mesh MALLOCSTATS=0 "$B/alloc" 7
    assert_unchanged 7
    assert_equal "$(err_text)" ""
}

@test "stats.at_exit from the file; the environment overrides it" {
    local conf="$BATS_TEST_TMPDIR/x.conf"
    printf 'stats = { at_exit = 2; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" "$B/alloc" 7
    assert_unchanged 7
    assert_err_count 1 "per size class"
    run_mesh MESH_CONF="$conf" MALLOCSTATS=0 "$B/alloc" 7
    assert_unchanged 7
    assert_err_count 0 "libmesh heap statistics"
}

@test "_exit prints no statistics" {
    run_mesh MALLOCSTATS=2 "$B/alloc" 7 _exit
    assert_unchanged 7
    assert_err_count 0 "libmesh heap statistics"
    assert_equal "$(err_text)" ""
}

@test "statistics at exit still reach the original stderr when the program closed fd 2" {
    run_mesh MALLOCSTATS=1 "$B/alloc" 7 close-stderr
    assert_unchanged 7
    assert_err_count 1 "libmesh heap statistics (pid "
}

@test "stats.at_exit written with mesh_mallctl decides what happens at exit" {
    run_mesh "$B/ctl" i:stats.at_exit=1
    assert_success
    assert_output "set stats.at_exit=1 rc=0"
    assert_err_count 1 "libmesh heap statistics (pid "
    run_mesh MALLOCSTATS=2 "$B/ctl" i:stats.at_exit=0
    assert_success
    assert_err_count 0 "libmesh heap statistics"
}

# ---- statistics on a signal --------------------------------------------------------

@test "stats.signal: raise(SIGUSR2) dumps statistics at a later allocation, not in the handler" {
    run_mesh MESH_STATS_SIGNAL=SIGUSR2 "$B/sigdump"
    assert_success
    assert_err_count 1 "libmesh heap statistics (pid "
    assert_err_count 1 "per size class"
    local order
    order=$(grep -nE '^(before raise|after raise|loop done|libmesh heap statistics)' <<<"$stderr" | cut -d: -f2- | sed 's/ (pid.*//')
    assert_equal "$order" "before raise
after raise
libmesh heap statistics
loop done"
}

@test "stats.signal from the file works the same" {
    run_mesh MESH_CONF="$CONF/valid.conf" "$B/sigdump"
    assert_success
    assert_err_count 1 "libmesh heap statistics (pid "
}

@test "stats.signal: a program it execs does not have SIGUSR2 blocked" {
    run_mesh MESH_STATS_SIGNAL=SIGUSR2 "$B/sigdump" grep -E '^Sig(Blk|Ign):' /proc/self/status
    assert_success
    assert_err_count 1 "libmesh heap statistics (pid "
    local blk ign
    blk=$(sed -n 's/^SigBlk:\t*//p' <<<"$output")
    ign=$(sed -n 's/^SigIgn:\t*//p' <<<"$output")
    [[ -n $blk && -n $ign ]] || fail "no SigBlk/SigIgn in the exec'd program's status: $output"
    # SIGUSR2 is signal 12: bit 11 of the masks
    (((16#$blk >> 11) & 1)) && fail "SIGUSR2 is blocked in the exec'd program (SigBlk $blk)"
    (((16#$ign >> 11) & 1)) && fail "SIGUSR2 is ignored in the exec'd program (SigIgn $ign)"
    true
}

@test "without stats.signal, SIGUSR2 keeps its default action (the program dies)" {
    run_mesh "$B/sigdump"
    assert_equal "$status" $((128 + 12))
    assert_err_count 0 "libmesh heap statistics"
}

@test "stats.signal written with mesh_mallctl takes effect" {
    run_mesh "$B/sigdump" --ctl SIGUSR2
    assert_err_line "mesh_mallctl rc=0"
    assert_success
    assert_err_count 1 "libmesh heap statistics (pid "
}

@test "stats.signal = off written with mesh_mallctl stops the dumps" {
    run_mesh MESH_STATS_SIGNAL=SIGUSR2 "$B/sigdump" --ctl off
    assert_err_line "mesh_mallctl rc=0"
    # with the signal off, SIGUSR2 is back to its default action or at least no dump
    assert_err_count 0 "libmesh heap statistics"
}

# ---- checks.thp ------------------------------------------------------------------

@test "checks.thp = disable turns THP off for the process (file and environment)" {
    grep -q '^THP_enabled:' /proc/self/status || skip "this kernel has no THP_enabled in /proc/PID/status"
    local conf="$BATS_TEST_TMPDIR/x.conf"
    run_mesh MESH_THP=disable grep '^THP_enabled:' /proc/self/status
    assert_success
    assert_output $'THP_enabled:\t0'
    printf 'checks = { thp = "disable"; };\n' >"$conf"
    run_mesh MESH_CONF="$conf" grep '^THP_enabled:' /proc/self/status
    assert_success
    assert_output $'THP_enabled:\t0'
    run_mesh MESH_THP=warn grep '^THP_enabled:' /proc/self/status
    assert_success
    assert_output $'THP_enabled:\t1'
}

# ---- mesh_mallctl ----------------------------------------------------------------

@test "mesh_mallctl: ENOENT for unknown names, EINVAL for wrong sizes and bad values, EPERM for statistics" {
    run_mesh "$B/errs"
    assert_success
    assert_output "ok"
}

@test "mesh_mallctl reads the configured value even before the program's first allocation" {
    [[ -x $B/early ]] || fail "the early program was not built (MESH_LIB=$MESH_LIB)"
    run --separate-stderr env MESH_PERIOD_MS=300 "$B/early"
    assert_success
    assert_output "early=300 rc=0
late=300"
}

@test "a mesh_mallctl write before the first allocation still wins over the environment" {
    [[ -x $B/early ]] || fail "the early program was not built (MESH_LIB=$MESH_LIB)"
    run --separate-stderr env MESH_PERIOD_MS=300 "$B/early" write
    assert_success
    assert_output "early write rc=0
late=400"
}

@test "a missing MESH_CONF file in a program whose first malloc is inside setlocale (bash)" {
    # bash allocates first from setlocale(), holding libc's locale lock; reporting
    # the missing file must not take that lock again (this hung with strerror).
    run timeout 20 env LD_PRELOAD="$MESH_LIB" MESH_CONF=/nonexistent/mesh.conf bash -c 'echo hi'
    assert_success
    assert_line "hi"
    assert_line "libmesh: /nonexistent/mesh.conf: cannot open: No such file or directory"
    [ "${#lines[@]}" -eq 2 ]
}

@test "libconfig is loaded only for a file with settings in it; without libconfig the settings are ignored with one line" {
    printf '# only comments, as shipped\n// and more\n/* block\n   comment */\n\n' >comments.conf
    printf 'mesh = { period_ms = 250; };\n' >settings.conf
    maps() { MESH_CONF="$1" with_mesh sh -c 'grep -c "libconfig\.so" /proc/self/maps; true'; }
    run maps "$PWD/comments.conf"
    assert_output "0"
    run maps /nonexistent/mesh.conf
    assert_output --partial "0"
    run maps "$PWD/settings.conf"
    [ "$output" -gt 0 ] || fail "a file with a setting did not load libconfig: $output"
    # A root without libconfig (a chroot, a container): the library still loads, the
    # program runs, and the file costs one line.
    if ! unshare --mount --propagation private true 2>/dev/null; then
        skip "unshare --mount does not work here"
    fi
    lib=$(awk '/libconfig\.so/ {print $6; exit}' < <(MESH_CONF="$PWD/settings.conf" with_mesh cat /proc/self/maps))
    [ -n "$lib" ] || fail "libconfig not found in the maps"
    : >empty.so
    run --separate-stderr unshare --mount --propagation private sh -c \
        "mount --bind '$PWD/empty.so' '$lib' && MESH_CONF='$PWD/settings.conf' LD_PRELOAD='$MESH_LIB' MESH_VERBOSE=1 sh -c 'echo ran'"
    assert_success
    assert_output "ran"
    [[ "$stderr" == *"libconfig (libconfig.so."*") cannot be loaded; the settings are ignored"* ]] || fail "stderr: $stderr"
    [[ "$stderr" != *"mesh.period_ms = 250"* ]] || fail "a setting applied without libconfig: $stderr"
}
