#!/usr/bin/env bats
# meshctl enable/disable/status on scratch root trees (--root): /etc/ld.so.preload
# edits keep every other line and the file mode, are idempotent and refuse after a
# failed self-test; systemd drop-ins merge the unit's LD_PRELOAD. Nothing here
# touches the real /etc.

load helper

setup() {
    mesh_setup
    MESHCTL="${MESH_BUILD_DIR:-$MESH_REPO_ROOT/build}/meshctl"
    R="$BATS_TEST_TMPDIR/root"
    # The library where this meshctl believes it is installed, inside the root.
    LIBPATH=$("$MESHCTL" status --root / | sed -n 's/^library: //p')
    # What enable writes: LIBPATH, or the same with ld.so's $LIB token.
    ENTRY=$("$MESHCTL" status --root / | sed -n 's/^preload entry: //p')
    mkdir -p "$R/etc" "$R$(dirname "$LIBPATH")"
    cp "$MESH_LIB" "$R$LIBPATH"
}

entry() { sed -n 's/^enabled system-wide: added \(.*\) to .*/\1/p' <<<"$1"; }

@test "enable --system appends one line after the self-test, keeps other lines and the mode" {
    printf '# local\n/usr/lib/other.so:/opt/x.so # keep\n/tmp/last.so' >"$R/etc/ld.so.preload"
    chmod 0640 "$R/etc/ld.so.preload"
    run "$MESHCTL" enable --system --root "$R"
    assert_success
    assert_line --regexp '^self-test: library is loaded +ok$'
    assert_line --regexp '^self-test: multi-threaded sort +ok$'
    e=$(entry "$output")
    [ -n "$e" ]
    [ "$(stat -c %a "$R/etc/ld.so.preload")" = 640 ]
    diff <(printf '# local\n/usr/lib/other.so:/opt/x.so # keep\n/tmp/last.so\n%s\n' "$e") "$R/etc/ld.so.preload"
    [ "$(cat "$R/var/lib/libmesh/preload-enabled")" = "$e" ]
    # Idempotent: a second enable changes nothing.
    cp "$R/etc/ld.so.preload" "$BATS_TEST_TMPDIR/before"
    run "$MESHCTL" enable --system --root "$R"
    assert_success
    assert_output --partial "already enabled"
    cmp "$BATS_TEST_TMPDIR/before" "$R/etc/ld.so.preload"
    run "$MESHCTL" status --root "$R"
    assert_success
    assert_line "system-wide: enabled (/etc/ld.so.preload line 4: $e)"
}

@test "disable --system removes only libmesh entries, also mid-line, and the marker" {
    mkdir -p "$R/var/lib/libmesh"
    echo "$LIBPATH" >"$R/var/lib/libmesh/preload-enabled"
    printf '/a.so %s:/b.so # c\n%s\n/usr/lib/libmeshoptimizer.so\n' "$LIBPATH" "$LIBPATH" >"$R/etc/ld.so.preload"
    chmod 0600 "$R/etc/ld.so.preload"
    run "$MESHCTL" disable --system --root "$R"
    assert_success
    assert_output --partial "disabled system-wide"
    diff <(printf '/a.so /b.so # c\n/usr/lib/libmeshoptimizer.so\n') "$R/etc/ld.so.preload"
    [ "$(stat -c %a "$R/etc/ld.so.preload")" = 600 ]
    [ ! -e "$R/var/lib/libmesh/preload-enabled" ]
    run "$MESHCTL" disable --system --root "$R"
    assert_success
    assert_output --partial "not enabled"
}

@test "disable --system deletes a file that held only our line; enable creates it 0644" {
    run "$MESHCTL" enable --system --root "$R"
    assert_success
    [ "$(stat -c %a "$R/etc/ld.so.preload")" = 644 ]
    run "$MESHCTL" disable --system --root "$R"
    assert_success
    [ ! -e "$R/etc/ld.so.preload" ]
    run "$MESHCTL" status --root "$R"
    assert_line "system-wide: not enabled"
}

@test "enable refuses when the configuration is broken or the library is missing" {
    echo 'mesh = { period_ms = "soon"; };' >"$R/etc/mesh.conf"
    run "$MESHCTL" enable --system --root "$R"
    assert_failure 1
    assert_line --regexp '^self-test: configuration is valid +FAILED$'
    [ ! -e "$R/etc/ld.so.preload" ]
    rm "$R/etc/mesh.conf" "$R$LIBPATH"
    run "$MESHCTL" enable --system --root "$R"
    assert_failure 1
    assert_output --partial "cannot be read"
    [ ! -e "$R/etc/ld.so.preload" ]
}

@test "enable refuses a library that crashes programs" {
    # A stand-in libmesh.so.1 whose constructor kills the process.
    printf '#include <stdlib.h>\n__attribute__((constructor)) static void c(void) { abort(); }\n' >bad.c
    cc -shared -fPIC -o "$R$LIBPATH" bad.c
    run "$MESHCTL" enable --system --root "$R"
    assert_failure 1
    assert_output --partial "FAILED"
    [ ! -e "$R/etc/ld.so.preload" ]
}

@test "status reports a preload entry whose library is missing" {
    echo "/usr/lib/nowhere/libmesh.so.1" >"$R/etc/ld.so.preload"
    run "$MESHCTL" status --root "$R"
    assert_failure 1
    assert_output --partial "BROKEN"
}

@test "usage errors: no target, both targets, bad service name, bad --library" {
    run "$MESHCTL" enable --root "$R"
    assert_failure 2
    run "$MESHCTL" enable --system --service x --root "$R"
    assert_failure 2
    run "$MESHCTL" enable --service '../evil' --root "$R"
    assert_failure 2
    run "$MESHCTL" enable --system --library relative/libmesh.so.1 --root "$R"
    assert_failure 2
    run "$MESHCTL" enable --system --library /usr/lib/libfoo.so --root "$R"
    assert_failure 2
}

write_unit() {
    mkdir -p "$R/usr/lib/systemd/system"
    cat >"$R/usr/lib/systemd/system/$1.service" <<UNIT
[Unit]
Description=test unit $1

[Service]
ExecStart=/bin/sleep 1000
$2
UNIT
}

@test "enable --service writes a drop-in that keeps the unit's LD_PRELOAD" {
    write_unit demo 'Environment="LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libsnoopy.so" FOO=1'
    run "$MESHCTL" enable --service demo --root "$R"
    assert_success
    assert_output --partial "systemctl restart demo.service"
    f="$R/etc/systemd/system/demo.service.d/50-libmesh.conf"
    [ -f "$f" ]
    grep -qxF "Environment=\"LD_PRELOAD=$ENTRY /usr/lib/x86_64-linux-gnu/libsnoopy.so\"" "$f"
    [ "$(stat -c %a "$f")" = 644 ]
    run "$MESHCTL" enable --service demo.service --root "$R"
    assert_success
    assert_output --partial "already enabled for demo.service"
    run "$MESHCTL" status --root "$R"
    assert_line "service: demo.service (/etc/systemd/system/demo.service.d/50-libmesh.conf)"
    if command -v systemd-analyze >/dev/null; then
        # verify loads the drop-in next to a unit file; any complaint is a failure.
        cp "$R/usr/lib/systemd/system/demo.service" "$R/etc/systemd/system/"
        run systemd-analyze verify "$R/etc/systemd/system/demo.service"
        assert_success
        assert_output ""
    fi
    run "$MESHCTL" disable --service demo --root "$R"
    assert_success
    [ ! -e "$f" ]
    [ ! -d "$R/etc/systemd/system/demo.service.d" ]
}

@test "enable --service merges drop-ins in order and refuses a later override" {
    write_unit web 'Environment=LD_PRELOAD=/first.so'
    mkdir -p "$R/etc/systemd/system/web.service.d"
    printf '[Service]\nEnvironment=LD_PRELOAD=/second.so\n' >"$R/etc/systemd/system/web.service.d/10-a.conf"
    run "$MESHCTL" enable --service web --root "$R"
    assert_success
    grep -qxF "Environment=\"LD_PRELOAD=$ENTRY /second.so\"" "$R/etc/systemd/system/web.service.d/50-libmesh.conf"
    printf '[Service]\nEnvironment=LD_PRELOAD=/third.so\n' >"$R/etc/systemd/system/web.service.d/override.conf"
    run "$MESHCTL" enable --service web --root "$R"
    assert_failure 1
    assert_output --partial "override.conf sets LD_PRELOAD"
}

@test "enable --service for a template instance and an unknown unit" {
    write_unit 'worker@' ''
    run "$MESHCTL" enable --service worker@3 --root "$R"
    assert_success
    [ -f "$R/etc/systemd/system/worker@3.service.d/50-libmesh.conf" ]
    run "$MESHCTL" enable --service nosuch --root "$R"
    assert_failure 3
    assert_output --partial "no unit file for nosuch.service"
}

@test "enable on the live system needs root" {
    [ "$(id -u)" = 0 ] || skip "runs as root to drop to nobody"
    command -v setpriv >/dev/null || skip "setpriv missing"
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$MESHCTL" enable --system
    assert_failure 3
    assert_output --partial "needs root"
}
