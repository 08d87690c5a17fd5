#!/usr/bin/env bats
# Secure execution: a setuid program run by an unprivileged user must ignore every
# MESH_* variable, MALLOCSTATS and MESH_CONF (glibc's ld.so does not strip them).

load helper

setup() {
    mesh_setup
    [ "$(id -u)" -eq 0 ] || skip "needs root to make a setuid-root helper"
    command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"
    # A world-readable copy of the library and the helper in a traversable directory.
    SEC="$BATS_TEST_TMPDIR/sec"
    mkdir -p "$SEC"
    chmod 755 "$BATS_TEST_TMPDIR" "$SEC"
    d="$BATS_TEST_TMPDIR"
    while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
    cp "$MESH_LIB" "$SEC/libmesh.so.1"
    chmod 644 "$SEC/libmesh.so.1"
    cat > "$SEC/probe.c" <<'C'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
int mesh_mallctl(const char *, void *, size_t *, void *, size_t);
int main(void) {
    free(malloc(100)); /* reads the configuration */
    int64_t period; size_t len = sizeof period;
    mesh_mallctl("mesh.period_ms", &period, &len, NULL, 0);
    int64_t at_exit; len = sizeof at_exit;
    mesh_mallctl("stats.at_exit", &at_exit, &len, NULL, 0);
    printf("secure=%lu period=%lld at_exit=%lld\n", getauxval(AT_SECURE), (long long)period, (long long)at_exit);
    return 0;
}
C
    gcc -o "$SEC/probe" "$SEC/probe.c" -L"$SEC" -l:libmesh.so.1 -Wl,-rpath,"$SEC"
    cp "$SEC/probe" "$SEC/probe-setuid"
    chown root:root "$SEC/probe-setuid"
    chmod 4755 "$SEC/probe-setuid"
    printf 'mesh = { period_ms = 42; };\nlog = { verbose = true; };\n' > "$SEC/evil.conf"
    chmod 644 "$SEC/evil.conf"
}

run_as_nobody() {
    env MESH_PERIOD_MS=7 MALLOCSTATS=1 MESH_VERBOSE=1 MESH_CONF="$SEC/evil.conf" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

@test "a normal program honours MESH_* and MESH_CONF" {
    run run_as_nobody "$SEC/probe"
    assert_success
    assert_line "secure=0 period=7 at_exit=1"
    assert_line --partial "libmesh: option mesh.period_ms = 7  # env:MESH_PERIOD_MS"
}

@test "a setuid program ignores MESH_*, MALLOCSTATS and MESH_CONF" {
    run run_as_nobody "$SEC/probe-setuid"
    assert_success
    assert_output "secure=1 period=100 at_exit=0"
}
