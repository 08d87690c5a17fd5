#!/usr/bin/env bats
# Packages: the Debian source package (debian/, dpkg-buildpackage) and the CPack .deb
# and .rpm packages (packaging/cmake/MeshCPack.cmake). Their lint, their contents, the
# find_package(mesh) and pkg-config consumers, and what installing, enabling,
# upgrading and removing does to a system. Everything that installs runs inside
# `unshare --mount` with overlays on /etc, /usr and /var: the host's dpkg database,
# /etc/ld.so.preload and /usr are never touched. vm.max_map_count, which the libmesh
# package raises, is machine-wide (no namespace has its own): each such root has a file
# of its own bind-mounted over /proc/sys/vm/max_map_count (in_root), so no test writes
# the machine's value.
#
# setup_file builds every package once, from a copy of the source tree (the files git
# knows, committed or not) in a temporary directory; nothing is written to the
# repository. Needs root, unshare and overlayfs, and skips each test otherwise; the
# build tools (debhelper, lintian, rpm, rpmlint) come from tools/deps.

load helper
bats_require_minimum_version 1.5.0

VERSION=1.0.0

setup_file() {
    export PKG_W="$BATS_FILE_TMPDIR/pkg"
    export PKG_SRC="$PKG_W/src"
    export PKG_SKIP=""
    mkdir -p "$PKG_W"
    if [[ $(id -u) != 0 ]]; then
        PKG_SKIP="needs root: the packages are installed with dpkg inside a mount namespace"
        return 0
    fi
    mkdir -p "$PKG_W/probe/upper" "$PKG_W/probe/work" "$PKG_W/probe/mnt"
    if ! unshare --mount --propagation private true 2>/dev/null; then
        PKG_SKIP="unshare --mount does not work here"
        return 0
    fi
    if ! unshare --mount --propagation private mount -t overlay overlay \
        -o "lowerdir=/etc,upperdir=$PKG_W/probe/upper,workdir=$PKG_W/probe/work" \
        "$PKG_W/probe/mnt" 2>/dev/null; then
        PKG_SKIP="overlayfs cannot be mounted here"
        return 0
    fi
    # The installs must not change the machine's vm.max_map_count (see in_root).
    echo 1 >"$PKG_W/probe/max_map_count"
    if ! unshare --mount --propagation private sh -c \
        'mount --bind "$1" /proc/sys/vm/max_map_count && [ "$(cat /proc/sys/vm/max_map_count)" = 1 ]' \
        probe "$PKG_W/probe/max_map_count" 2>/dev/null; then
        PKG_SKIP="no file can be bind-mounted over /proc/sys/vm/max_map_count: installing would change the machine's"
        return 0
    fi
    export MULTIARCH ARCH
    MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
    ARCH=$(dpkg --print-architecture)
    # a bash of its own: errexit does not work in a function called as a condition
    if ! MESH_REPO_ROOT=$MESH_REPO_ROOT VERSION=$VERSION \
        bash -euo pipefail -c "$(declare -f copy_tree build_all); build_all" \
        >"$PKG_W/build.log" 2>&1; then
        echo "building the packages failed; the end of $PKG_W/build.log:"
        tail -n 80 "$PKG_W/build.log"
        return 1
    fi
}

setup() {
    [[ -z $PKG_SKIP ]] || skip "$PKG_SKIP"
    export LC_ALL=C TZ=UTC
    unset LD_PRELOAD
}

# ---- building ---------------------------------------------------------------------------

# Copies the files git knows (tracked and untracked-but-not-ignored) to DIR.
copy_tree() {
    local dir=$1
    mkdir -p "$dir"
    if git -C "$MESH_REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$MESH_REPO_ROOT" &&
            git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
            tar --null -T - -cf -) | tar -C "$dir" -xf -
    else
        tar -C "$MESH_REPO_ROOT" --exclude='./build*' --exclude=.git -cf - . | tar -C "$dir" -xf -
    fi
}

# Builds: the Debian packages 1.0.0-1 (deb1/), the CPack .deb (cdeb/) and .rpm
# (crpm/) packages, a DESTDIR install (destdir/), and then Debian packages 1.0.0-2
# with a changed default mesh.conf (deb2/) for the upgrade.
build_all() {
    local t0=$SECONDS jobs
    jobs=$(nproc)
    copy_tree "$PKG_SRC"
    echo "== dpkg-buildpackage 1.0.0-1"
    (cd "$PKG_SRC" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -b -us -uc)
    mkdir "$PKG_W/deb1"
    mv "$PKG_W"/*.deb "$PKG_W"/*.changes "$PKG_W"/*.buildinfo "$PKG_W/deb1/"
    echo "== CPack DEB"
    cmake -S "$PKG_SRC" -B "$PKG_W/cdeb" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF
    cmake --build "$PKG_W/cdeb" -j"$jobs"
    (cd "$PKG_W/cdeb" && cpack -G DEB)
    DESTDIR="$PKG_W/destdir" cmake --install "$PKG_W/cdeb"
    echo "== CPack RPM"
    cmake -S "$PKG_SRC" -B "$PKG_W/crpm" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib64 \
        -DBUILD_TESTING=OFF
    cmake --build "$PKG_W/crpm" -j"$jobs"
    (cd "$PKG_W/crpm" && cpack -G RPM)
    echo "== dpkg-buildpackage 1.0.0-2"
    {
        printf 'libmesh (%s-2) unstable; urgency=medium\n\n  * Rebuild for the upgrade test.\n\n' "$VERSION"
        printf ' -- libmesh tests <tests@example.invalid>  %s\n\n' "$(date -R)"
        cat "$PKG_SRC/debian/changelog"
    } >"$PKG_W/changelog" && mv "$PKG_W/changelog" "$PKG_SRC/debian/changelog"
    echo '# (default changed in 1.0.0-2)' >>"$PKG_SRC/etc/mesh.conf"
    (cd "$PKG_SRC" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -b -us -uc)
    mkdir "$PKG_W/deb2"
    mv "$PKG_W"/*.deb "$PKG_W"/*.changes "$PKG_W"/*.buildinfo "$PKG_W/deb2/"
    echo "== built in $((SECONDS - t0)) s"
}

# ---- helpers ----------------------------------------------------------------------------

# in_root NAME SCRIPT: runs SCRIPT with bash -e in a new mount namespace where /etc,
# /usr and /var are overlays whose changes persist in $PKG_W/root.NAME, so that a
# later test goes on where an earlier one stopped. Every program started there sees
# the overlay's /etc/ld.so.preload. vm.max_map_count is not per namespace, so the
# root's own file $PKG_W/root.NAME/max_map_count (made with $MMC_START, default
# 65530, Debian's default) is bind-mounted over /proc/sys/vm/max_map_count: what the
# maintainer scripts read and write there is that file; without it nothing runs.
# Afterwards the machine's value is read again: had it become the 1048576 the scripts
# write, the test fails (exit 95). It is not written back: other programs on this
# machine (bench/mesh-report --max-map-count) may set it meanwhile.
in_root() {
    local ov="$PKG_W/root.$1" d
    for d in etc usr var; do mkdir -p "$ov/$d.upper" "$ov/$d.work"; done
    export T="$ov/tmp"   # scratch files of the scripts
    mkdir -p "$T"
    [[ -e $ov/max_map_count ]] || printf '%s\n' "${MMC_START:-65530}" >"$ov/max_map_count"
    # /etc last: once it is mounted, every new process reads its ld.so.preload. PATH:
    # the system's programs, not shims a user's PATH may put first (pyenv's python3).
    PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --mount --propagation private bash -c '
        mmc_before=$(cat /proc/sys/vm/max_map_count)
        mount --bind "$1/max_map_count" /proc/sys/vm/max_map_count || exit 96
        [ "$(stat -c %d:%i /proc/sys/vm/max_map_count)" = "$(stat -c %d:%i "$1/max_map_count")" ] || exit 96
        for d in usr var etc; do
            mount -t overlay "libmesh-test-$d" \
                -o "lowerdir=/$d,upperdir=$1/$d.upper,workdir=$1/$d.work" "/$d" || exit 97
        done
        cd / && bash -e -o pipefail -c "$2" && rc=0 || rc=$?
        umount /proc/sys/vm/max_map_count && mmc_after=$(cat /proc/sys/vm/max_map_count) || exit 96
        if [ "$mmc_after" != "$mmc_before" ] && [ "$mmc_after" = 1048576 ]; then
            echo "in_root: the machine vm.max_map_count went from $mmc_before to 1048576 meanwhile" >&2
            exit 95
        fi
        exit $rc' in_root "$ov" "$2"
}

# Lists the non-directory members of a .deb's data (ARCHIVE data) or control
# (ARCHIVE control) part, one path per line, sorted, without the leading "./".
deb_members() {
    local part=--fsys-tarfile
    [[ $2 == control ]] && part=--ctrl-tarfile
    dpkg-deb "$part" "$1" | tar -tvf - | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' | sort
}

# The workloads run with libmesh preloaded through /etc/ld.so.preload. Each prints
# what it computed and whether libmesh is mapped into it ("mesh").
WORKLOADS='
bash -c '\''a=(); for i in $(seq 1000); do a+=("x$i"); done; echo "bash ${#a[@]}"
           grep -q "/libmesh\.so" /proc/$$/maps && echo "bash mesh"'\''
python3 -c '\''import json; d = [{"k": i} for i in range(50000)]; print("python3", len(json.dumps(d)))
print("python3 mesh" if "/libmesh.so" in open("/proc/self/maps").read() else "python3 no")'\''
perl -e '\''my %h; $h{$_} = "x" x ($_ % 100) for 1..20000; print "perl ", scalar(keys %h), "\n";
          open my $f, "<", "/proc/self/maps"; print grep(m{/libmesh\.so}, <$f>) ? "perl mesh\n" : "perl no\n"'\''
python3 -c '\''
import threading
r = []
def work():
    d = {i: str(i) * 3 for i in range(20000)}
    r.append(sum(len(v) for v in d.values()))
ts = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print("threads", len(r), len(set(r)))
print("threads mesh" if "/libmesh.so" in open("/proc/self/maps").read() else "threads no")'\''
seq 200000 | shuf | sort -n --parallel=2 -S 8M | cmp -s - <(seq 200000) && echo "sort ok"
{ sleep 1 | sort --parallel=2 >/dev/null & pid=$!; sleep 0.3
  grep -q "/libmesh\.so" /proc/$pid/maps && echo "sort mesh"; wait $pid; }
'
WORKLOADS_OUT='bash 1000
bash mesh
python3 688890
python3 mesh
perl 20000
perl mesh
threads 4 1
threads mesh
sort ok
sort mesh'

# ---- the Debian source package ----------------------------------------------------------

@test "dpkg-buildpackage: libmesh1, libmesh-dev and libmesh, lintian clean but for overrides" {
    for p in libmesh1 libmesh-dev libmesh; do
        [[ -f $PKG_W/deb1/${p}_$VERSION-1_$ARCH.deb ]] || fail "no ${p}_$VERSION-1_$ARCH.deb"
    done
    run --separate-stderr lintian -I --pedantic "$PKG_W/deb1/libmesh_$VERSION-1_$ARCH.changes"
    assert_success
    ! grep -E '^[EW]: ' <<<"$output" || fail "lintian reports errors or warnings (above)"
}

@test "Debian packages: sections, Multi-Arch, architecture and dependencies" {
    d="$PKG_W/deb1"
    f() { dpkg-deb -f "$d/${1}_$VERSION-1_$ARCH.deb" "$2"; }
    [ "$(f libmesh1 Section)" = libs ]
    [ "$(f libmesh1 Multi-Arch)" = same ]
    [[ "$(f libmesh1 Depends)" == *libc6* && "$(f libmesh1 Depends)" == *libconfig9* ]]
    [ "$(f libmesh-dev Section)" = libdevel ]
    [ "$(f libmesh-dev Multi-Arch)" = same ]
    [ "$(f libmesh-dev Depends)" = "libmesh1 (= $VERSION-1)" ]
    [ "$(f libmesh Section)" = admin ]
    [ "$(f libmesh Multi-Arch)" = foreign ]
    [ "$(f libmesh Architecture)" = "$ARCH" ]
    [[ "$(f libmesh Depends)" == "libmesh1 (>= $VERSION-1), "* ]]
}

# The files of each package, the same for dh and CPack (the CMake export file is
# named after the build type: None for dh, RelWithDebInfo for CPack).
expected_files() {
    case $1 in
    libmesh1) printf '%s\n' "usr/lib/$MULTIARCH/libmesh.so.1" "usr/lib/$MULTIARCH/libmesh.so.1.0.0" \
        usr/share/doc/libmesh1/changelog.Debian.gz usr/share/doc/libmesh1/copyright \
        usr/share/lintian/overrides/libmesh1 ;;
    libmesh-dev) printf '%s\n' usr/include/mesh.h "usr/lib/$MULTIARCH/libmesh.so" \
        "usr/lib/$MULTIARCH/pkgconfig/mesh.pc" "usr/lib/$MULTIARCH/cmake/mesh/meshConfig.cmake" \
        "usr/lib/$MULTIARCH/cmake/mesh/meshConfigVersion.cmake" \
        "usr/lib/$MULTIARCH/cmake/mesh/meshTargets.cmake" \
        "usr/lib/$MULTIARCH/cmake/mesh/meshTargets-BUILDTYPE.cmake" \
        usr/share/doc/libmesh-dev/changelog.Debian.gz usr/share/doc/libmesh-dev/copyright \
        usr/share/lintian/overrides/libmesh-dev ;;
    libmesh) printf '%s\n' etc/mesh.conf usr/lib/sysctl.d/10-libmesh.conf usr/sbin/meshctl \
        usr/share/man/man3/libmesh.3.gz \
        usr/share/man/man5/mesh.conf.5.gz usr/share/man/man8/meshctl.8.gz \
        usr/share/doc/libmesh/README.md.gz usr/share/doc/libmesh/changelog.Debian.gz \
        usr/share/doc/libmesh/copyright usr/share/lintian/overrides/libmesh ;;
    esac | sort
}

# check_deb_contents DIR: files, control files, conffiles and scripts of the three .debs.
check_deb_contents() {
    local d=$1 p
    for p in libmesh1 libmesh-dev libmesh; do
        diff -u <(expected_files $p) \
            <(deb_members "$d/${p}_$VERSION-1_$ARCH.deb" data |
                sed 's/meshTargets-[a-z]*\.cmake$/meshTargets-BUILDTYPE.cmake/') ||
            fail "$p: unexpected files (diff above: - expected, + in the package)"
    done
    diff -u <(printf '%s\n' control md5sums postinst postrm prerm shlibs symbols triggers) \
        <(deb_members "$d/libmesh1_$VERSION-1_$ARCH.deb" control) || fail "libmesh1: control files"
    diff -u <(printf '%s\n' conffiles control md5sums postinst) \
        <(deb_members "$d/libmesh_$VERSION-1_$ARCH.deb" control) || fail "libmesh: control files"
    diff -u <(printf '%s\n' control md5sums) \
        <(deb_members "$d/libmesh-dev_$VERSION-1_$ARCH.deb" control) || fail "libmesh-dev: control files"
    local ctl="$BATS_TEST_TMPDIR/ctl"
    rm -rf "$ctl" "$ctl.c"
    dpkg-deb -e "$d/libmesh1_$VERSION-1_$ARCH.deb" "$ctl"
    dpkg-deb -e "$d/libmesh_$VERSION-1_$ARCH.deb" "$ctl.c"
    [ "$(cat "$ctl.c/conffiles")" = /etc/mesh.conf ]
    grep -qx 'activate-noawait ldconfig' "$ctl/triggers"
    [ "$(sed -n 1p "$ctl/symbols")" = "libmesh.so.1 libmesh1 #MINVER#" ]
    grep -qx '\* Build-Depends-Package: libmesh-dev' "$ctl/symbols"
    grep -qx " malloc@Base $VERSION" "$ctl/symbols"
    grep -qx "libmesh 1 libmesh1 (>= $VERSION.*)" "$ctl/shlibs"
    for s in postinst prerm postrm; do
        diff -u <(grep -v '^#DEBHELPER#$' "$PKG_SRC/debian/libmesh1.$s" | grep -v '^$') \
            <(grep -v '^$' "$ctl/$s" | grep -v '^# Automatically added by\|^# End automatically') ||
            fail "libmesh1 $s differs from debian/libmesh1.$s"
    done
    diff -u <(grep -v '^#DEBHELPER#$' "$PKG_SRC/debian/libmesh.postinst" | grep -v '^$') \
        <(grep -v '^$' "$ctl.c/postinst" | grep -v '^# Automatically added by\|^# End automatically') ||
        fail "libmesh postinst differs from debian/libmesh.postinst"
    # the sysctl drop-in: packaging/sysctl/10-libmesh.conf, no conffile (checked above)
    dpkg-deb --fsys-tarfile "$d/libmesh_$VERSION-1_$ARCH.deb" |
        tar -xOf - ./usr/lib/sysctl.d/10-libmesh.conf >"$BATS_TEST_TMPDIR/sysctl.conf"
    cmp "$PKG_SRC/packaging/sysctl/10-libmesh.conf" "$BATS_TEST_TMPDIR/sysctl.conf"
    [ "$(grep -v '^#' "$BATS_TEST_TMPDIR/sysctl.conf")" = "vm.max_map_count = 1048576" ]
    # stripped, and the library owns no directory outside its own
    dpkg-deb --fsys-tarfile "$d/libmesh1_$VERSION-1_$ARCH.deb" |
        tar -xOf - "./usr/lib/$MULTIARCH/libmesh.so.1.0.0" >"$BATS_TEST_TMPDIR/lib.so"
    ! readelf -S "$BATS_TEST_TMPDIR/lib.so" | grep -q '\.debug_info' || fail "libmesh.so.1.0.0 is not stripped"
}

@test "Debian packages: files in the right packages, conffiles, maintainer scripts, symbols" {
    check_deb_contents "$PKG_W/deb1"
}

# ---- CPack ------------------------------------------------------------------------------

@test "CPack DEB: the same packages, files and scripts as debian/; lintian clean but for overrides" {
    d="$PKG_W/cdeb"
    check_deb_contents "$d"
    [ "$(dpkg-deb -f "$d/libmesh-dev_$VERSION-1_$ARCH.deb" Depends)" = "libmesh1 (= $VERSION-1)" ]
    [[ "$(dpkg-deb -f "$d/libmesh_$VERSION-1_$ARCH.deb" Depends)" == "libmesh1 (>= $VERSION-1)"* ]]
    [ "$(dpkg-deb -f "$d/libmesh_$VERSION-1_$ARCH.deb" Architecture)" = "$ARCH" ]
    [ "$(dpkg-deb -f "$d/libmesh1_$VERSION-1_$ARCH.deb" Description | head -1)" = \
        "compacting malloc for Linux - shared library" ]
    run --separate-stderr lintian -I --pedantic "$d"/*.deb
    assert_success
    ! grep -E '^[EW]: ' <<<"$output" || fail "lintian reports errors or warnings (above)"
}

@test "CPack RPM: rpmlint clean, %config(noreplace) /etc/mesh.conf, rpm -V after an install" {
    d="$PKG_W/crpm"
    lib="$d/libmesh-$VERSION-1.x86_64.rpm"
    common="$d/libmesh-common-$VERSION-1.x86_64.rpm"
    devel="$d/libmesh-devel-$VERSION-1.x86_64.rpm"
    ls "$lib" "$common" "$devel"
    run rpmlint -c "$PKG_SRC/packaging/rpm/rpmlint.toml" "$lib" "$common" "$devel"
    assert_success
    assert_output --partial "0 errors, 0 warnings"
    [ "$(rpm -qpc "$common" 2>/dev/null)" = /etc/mesh.conf ]
    rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$common" 2>/dev/null | grep -qx 'cn /etc/mesh.conf'
    diff -u <(printf '%s\n' /usr/lib/sysctl.d/10-libmesh.conf /usr/lib64/libmesh.so.1 \
        /usr/lib64/libmesh.so.1.0.0 /usr/share/licenses/libmesh /usr/share/licenses/libmesh/LICENSE) \
        <(rpm -qpl "$lib" 2>/dev/null)
    # the sysctl drop-in is in the package named libmesh (whose %post applies it), as in
    # the .deb; not %config (an /etc/sysctl.d file of the same name replaces it)
    rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$lib" 2>/dev/null |
        grep -qx ' /usr/lib/sysctl.d/10-libmesh.conf'
    ! rpm -qpl "$common" "$devel" 2>/dev/null | grep -q sysctl || fail "sysctl drop-in outside libmesh"
    rpm -qpl "$devel" 2>/dev/null | grep -qx /usr/lib64/libmesh.so
    rpm -qpl "$devel" 2>/dev/null | grep -qx /usr/lib64/cmake/mesh/meshConfig.cmake
    rpm -qpl "$common" 2>/dev/null | grep -qx /usr/sbin/meshctl
    [ "$(rpm -qp --qf '%{ARCH}' "$common" 2>/dev/null)" = x86_64 ]
    rpm -qpR "$common" 2>/dev/null | grep -qx "libmesh(x86-64) >= $VERSION-1"
    rpm -qpR "$devel" 2>/dev/null | grep -qx "libmesh(x86-64) = $VERSION-1"
    rpm -qp --provides "$lib" 2>/dev/null | grep -qx 'libmesh.so.1()(64bit)'
    # The scriptlets are packaging/rpm/*.sh, % included.
    rpm -qp --scripts "$lib" 2>/dev/null >"$BATS_TEST_TMPDIR/scripts"
    grep -q "printf '%s\\\\n'" "$BATS_TEST_TMPDIR/scripts"
    grep -qx '    mesh_preload_strip || exit 1' "$BATS_TEST_TMPDIR/scripts"
    grep -qx 'mesh_sysctl_apply' "$BATS_TEST_TMPDIR/scripts"
    # A scratch RPM root: files unpack where rpm -V expects them (no scriptlets: the
    # scratch root has no /bin/sh).
    r="$BATS_TEST_TMPDIR/rpmroot"
    mkdir -p "$r"
    rpm --root "$r" --initdb
    run rpm --root "$r" -i --nodeps --noscripts "$lib" "$common" "$devel"
    assert_success
    run rpm --root "$r" -V --nodeps libmesh libmesh-common libmesh-devel
    assert_success
    assert_output ""
    [ -x "$r/usr/lib64/libmesh.so.1.0.0" ]
    cmp "$PKG_SRC/packaging/sysctl/10-libmesh.conf" "$r/usr/lib/sysctl.d/10-libmesh.conf"
    echo '# edited' >>"$r/etc/mesh.conf"
    run rpm --root "$r" -V --nodeps libmesh-common
    assert_failure
    assert_output --regexp '^S\.5\.\.\.\.T\.  c /etc/mesh.conf$'
}

@test "cpack refuses a generator whose package layout the build tree does not have" {
    run bash -c "cd '$PKG_W/crpm' && cpack -G DEB"
    assert_failure
    assert_output --partial "configure a build tree with -DMESH_INSTALL_LAYOUT=deb"
}

# ---- consumers --------------------------------------------------------------------------

CONSUMER_C='#include <mesh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *p = malloc(100);
    const char *v = NULL;
    size_t len = sizeof v;
    if (!p || mesh_mallctl("version", &v, &len, NULL, 0) != 0) return 1;
    strcpy(p, "hello");
    printf("%s %s in_bounds=%d usable=%d\n", p, v, mesh_in_bounds(p), mesh_usable_size(p) >= 100);
    free(p);
    return 0;
}'
CONSUMER_CMAKE='cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(mesh 1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE mesh::mesh)'

@test "find_package(mesh) and pkg-config consumers build and run against a DESTDIR tree" {
    D="$PKG_W/destdir"
    c="$BATS_TEST_TMPDIR/consumer"
    mkdir -p "$c"
    printf '%s\n' "$CONSUMER_C" >"$c/consumer.c"
    printf '%s\n' "$CONSUMER_CMAKE" >"$c/CMakeLists.txt"
    run cmake -S "$c" -B "$c/build" -DCMAKE_PREFIX_PATH="$D/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    assert_success
    run cmake --build "$c/build"
    assert_success
    run env LD_LIBRARY_PATH="$D/usr/lib/$MULTIARCH" "$c/build/consumer"
    assert_success
    assert_output "hello $VERSION in_bounds=1 usable=1"
    # the program is linked with the DESTDIR copy
    LD_LIBRARY_PATH="$D/usr/lib/$MULTIARCH" ldd "$c/build/consumer" | grep -q "$D/usr/lib/$MULTIARCH/libmesh.so.1"

    export PKG_CONFIG_LIBDIR="$D/usr/lib/$MULTIARCH/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D"
    run pkg-config --modversion mesh
    assert_output "$VERSION"
    run pkg-config --cflags --libs mesh
    assert_success
    [ "$(echo $output)" = "-I$D/usr/include -L$D/usr/lib/$MULTIARCH -lmesh" ]
    # shellcheck disable=SC2046
    cc -o "$c/pc" "$c/consumer.c" $(pkg-config --cflags --libs mesh)
    run env LD_LIBRARY_PATH="$D/usr/lib/$MULTIARCH" "$c/pc"
    assert_success
    assert_output "hello $VERSION in_bounds=1 usable=1"
}

# ---- the maintainer scripts on their own -----------------------------------------------

@test "RPM scriptlets carry the same shell functions as the Debian maintainer scripts (ld.so.preload, sysctl)" {
    block() { sed -n "/^# BEGIN $1 /,/^# END $1\$/p" "$2" | tail -n +2; }
    diff -u <(block mesh_preload_strip "$PKG_SRC/debian/libmesh1.prerm") \
        <(block mesh_preload_strip "$PKG_SRC/packaging/rpm/preun.sh")
    diff -u <(block mesh_preload_restore "$PKG_SRC/debian/libmesh1.postinst") \
        <(block mesh_preload_restore "$PKG_SRC/packaging/rpm/post.sh")
    diff -u <(block mesh_sysctl_apply "$PKG_SRC/debian/libmesh.postinst") \
        <(block mesh_sysctl_apply "$PKG_SRC/packaging/rpm/post.sh")
    [ -n "$(block mesh_preload_strip "$PKG_SRC/packaging/rpm/preun.sh")" ]
    [ -n "$(block mesh_preload_restore "$PKG_SRC/packaging/rpm/post.sh")" ]
    [ -n "$(block mesh_sysctl_apply "$PKG_SRC/packaging/rpm/post.sh")" ]
}

@test "maintainer scripts: strip only libmesh lines, keep mode and owner, restore from the marker" {
    export D="$PKG_SRC/debian" R="$PKG_SRC/packaging/rpm" MESHLIB="$PKG_W/cdeb/libmesh.so.1.0.0"
    run in_root scripts '
        P=/etc/ld.so.preload M=/var/lib/libmesh/preload-enabled E="/usr/\$LIB/libmesh.so.1"
        L=/usr/lib/$MULTIARCH/libmesh.so.1
        check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fi; }
        rm -f $P $L; rm -rf /var/lib/libmesh

        # prerm: whole libmesh lines go, everything else stays, mode and owner too
        printf "# admin\n/usr/lib/libfoo.so\n  $E   # meshctl\nlibmesh.so\n/x/libmesh.so.1.0.0\n/x/libmesh.so.1x\n/a.so libmesh.so.1\n\n" >$P
        chmod 0640 $P; chown daemon $P
        out=$(sh $D/libmesh1.prerm remove 2>&1)
        check "[ \"\$(cat $P)\" = \"\$(printf \"# admin\n/usr/lib/libfoo.so\n/x/libmesh.so.1x\n/a.so libmesh.so.1\n\")\" ]" "prerm keeps other lines"
        check "[ \"\$(stat -c %a:%U $P)\" = 640:daemon ]" "prerm keeps mode and owner"
        check "[[ \$out == *\"still names libmesh on a line with other entries\"* ]]" "prerm warns about a mixed line"
        check "! ls /etc/ld.so.preload.* 2>/dev/null" "no temporary file left"
        # a file with nothing else goes; no file: nothing happens; no libmesh line: untouched
        printf "\n$E\n \n" >$P
        sh $D/libmesh1.prerm upgrade >/dev/null
        check "[ ! -e $P ]" "prerm deletes a file left with blank lines only"
        check "sh $D/libmesh1.prerm deconfigure" "prerm without the file succeeds"
        check "[ ! -e $P ]" "prerm creates no file"
        printf "/usr/lib/libfoo.so\n" >$P; touch -d 2001-01-01 $P; i=$(stat -c %i:%Y $P)
        sh $D/libmesh1.prerm remove
        check "[ \"\$(stat -c %i:%Y $P)\" = $i ]" "prerm leaves a file without libmesh alone"
        rm -f $P

        # postinst: nothing without the marker
        sh $D/libmesh1.postinst configure
        check "[ ! -e $P ]" "postinst without marker creates nothing"
        mkdir -p /var/lib/libmesh && echo "$E" >$M
        sh $D/libmesh1.postinst configure 2>/dev/null
        check "[ ! -e $P ]" "postinst does not list a library that is not there"
        cp $MESHLIB $L
        printf "/usr/lib/libfoo.so # no newline" >$P; chmod 0600 $P
        sh $D/libmesh1.postinst configure >/dev/null 2>&1 || true
        printf "%s\n" "/usr/lib/libfoo.so # no newline" "$E" >$T/expected
        check "cmp -s $P $T/expected" "postinst appends the marker line"
        check "[ \"\$(stat -c %a $P)\" = 600 ]" "postinst keeps the mode"
        sh $D/libmesh1.postinst abort-upgrade >/dev/null 2>&1 || true
        check "[ \$(grep -c libmesh $P) = 1 ]" "postinst adds the line once"
        rm -f $P
        sh $D/libmesh1.postinst abort-remove >/dev/null 2>&1 || true
        echo "$E" >$T/expected
        check "cmp -s $P $T/expected && [ \$(stat -c %a $P) = 644 ]" "postinst creates the file 0644"
        rm -f $P; echo /usr/lib/libevil.so >$M
        sh $D/libmesh1.postinst configure 2>/dev/null
        check "[ ! -e $P ]" "postinst ignores a marker that names no libmesh"
        echo "$E" >$M
        sh $D/libmesh1.postrm remove
        check "[ ! -e $M ] && [ ! -e /var/lib/libmesh ]" "postrm removes the marker and its directory"

        # RPM: preun strips only on the final erase, post restores, postun forgets
        mkdir -p /var/lib/libmesh && echo "$E" >$M && echo "$E" >$P
        sh $R/preun.sh 1
        check "cmp -s $P $T/expected" "preun 1 (upgrade) keeps the line"
        sh $R/preun.sh 0 >/dev/null
        check "[ ! -e $P ]" "preun 0 (erase) strips the line"
        sh $R/post.sh 2 >/dev/null
        check "cmp -s $P $T/expected" "post restores the line from the marker"
        sh $R/postun.sh 1
        check "[ -e $M ]" "postun 1 keeps the marker"
        sh $R/postun.sh 0
        check "[ ! -e $M ]" "postun 0 removes the marker"
        rm -f $P $L
    '
    output=$(grep -v "^ERROR: ld.so: object" <<<"$output")   # from the preload lists tried
    assert_success
    refute_output --partial FAIL
    assert_line "ok: postun 0 removes the marker"
}

# The root's own vm.max_map_count file (in_root) stands for the kernel's: each case sets
# it, runs the postinst or %post, and reads what is left in it.
@test "maintainer scripts: vm.max_map_count raised to 1048576 only from below, never lowered, never fatal" {
    export D="$PKG_SRC/debian" R="$PKG_SRC/packaging/rpm"
    run in_root sysctl '
        M=/proc/sys/vm/max_map_count   # the file of this root, bind-mounted by in_root
        W=/usr/lib/sysctl.d/10-libmesh.conf
        check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fi; }
        mmc() { printf "%s\n" "$1" >$M; }
        run_script() { "$@" >$T/out 2>$T/err && rc=0 || rc=$?; }

        mmc 65530
        run_script sh $D/libmesh.postinst configure
        check "[ \$(cat $M) = 1048576 ]" "postinst configure raises 65530 to 1048576"
        check "[ \$rc = 0 ] && [ \"\$(cat $T/out)\" = \"libmesh: raised vm.max_map_count from 65530 to 1048576 ($W)\" ] && [ ! -s $T/err ]" "and says so in one line"
        run_script sh $D/libmesh.postinst configure
        check "[ \$rc = 0 ] && [ \$(cat $M) = 1048576 ] && [ ! -s $T/out ] && [ ! -s $T/err ]" "at 1048576: nothing written, nothing said"
        mmc 1048575
        sh $D/libmesh.postinst configure >/dev/null
        check "[ \$(cat $M) = 1048576 ]" "1048575 is raised too"
        mmc 2097152
        run_script sh $D/libmesh.postinst configure
        check "[ \$rc = 0 ] && [ \$(cat $M) = 2097152 ] && [ ! -s $T/out ] && [ ! -s $T/err ]" "postinst never lowers 2097152"
        mmc 65530
        for a in abort-upgrade abort-remove abort-deconfigure; do sh $D/libmesh.postinst $a; done
        check "[ \$(cat $M) = 65530 ]" "abort-* apply nothing"
        check "! sh $D/libmesh.postinst bogus 2>/dev/null" "postinst rejects an unknown argument"

        # the administrator replaced the drop-in with one of the same name
        mkdir -p /etc/sysctl.d && : >/etc/sysctl.d/10-libmesh.conf
        sh $D/libmesh.postinst configure
        check "[ \$(cat $M) = 65530 ]" "an /etc/sysctl.d/10-libmesh.conf keeps the limit as it is"
        rm /etc/sysctl.d/10-libmesh.conf
        ln -s /dev/null /etc/sysctl.d/10-libmesh.conf
        sh $D/libmesh.postinst configure
        check "[ \$(cat $M) = 65530 ]" "so does one linked to /dev/null"
        rm /etc/sysctl.d/10-libmesh.conf

        # a read-only /proc/sys (a container): one line on stderr, the install goes on
        mount -o remount,bind,ro $M
        run_script sh $D/libmesh.postinst configure
        check "[ \$rc = 0 ] && [ \$(cat $M) = 65530 ]" "read-only: postinst succeeds, the limit stays"
        check "[ ! -s $T/out ] && [ \$(wc -l <$T/err) = 1 ] && grep -q \"^libmesh: cannot raise vm.max_map_count from 65530 to 1048576 here\" $T/err" "read-only: one line says so"
        run_script sh $R/post.sh 1
        check "[ \$rc = 0 ] && [ \$(cat $T/out $T/err | grep -c .) = 1 ] && [ \$(cat $M) = 65530 ]" "read-only: RPM %post succeeds with one line"
        mount -o remount,bind,rw $M
        # a value that is no number: not touched
        mmc garbage
        run_script sh $D/libmesh.postinst configure
        check "[ \$rc = 0 ] && [ \$(cat $M) = garbage ] && [ \"\$(cat $T/err)\" = \"libmesh: cannot read $M; $W applies from the next boot\" ]" "unreadable: postinst succeeds with one line"

        # RPM %post: $1 is 1 on install, 2 on upgrade; both apply, upwards only
        mmc 65530
        run_script sh $R/post.sh 1
        check "[ \$rc = 0 ] && [ \$(cat $M) = 1048576 ] && grep -qx \"libmesh: raised vm.max_map_count from 65530 to 1048576 ($W)\" $T/out" "RPM %post 1 raises 65530"
        mmc 262144
        sh $R/post.sh 2 >/dev/null
        check "[ \$(cat $M) = 1048576 ]" "RPM %post 2 raises 262144"
        mmc 4194304
        run_script sh $R/post.sh 2
        check "[ \$rc = 0 ] && [ \$(cat $M) = 4194304 ] && [ ! -s $T/out ]" "RPM %post never lowers 4194304"
    '
    assert_success
    refute_output --partial FAIL
    assert_line "ok: RPM %post never lowers 4194304"
    [ "$(grep -c '^ok: ' <<<"$output")" = 16 ]
}

# ---- dpkg: install, enable, upgrade, remove (one root, in order) -----------------------

@test "dpkg -i: installs without enabling anything; libmesh-dev consumers build" {
    export DEBS="$PKG_W/deb1" c="$BATS_TEST_TMPDIR/consumer"
    mkdir -p "$c"
    printf '%s\n' "$CONSUMER_C" >"$c/consumer.c"
    printf '%s\n' "$CONSUMER_CMAKE" >"$c/CMakeLists.txt"
    run in_root dpkg '
        dpkg -i $DEBS/libmesh1_*.deb $DEBS/libmesh-dev_*.deb $DEBS/libmesh_*.deb >/dev/null
        dpkg-query -W -f="\${Package} \${Version} \${db:Status-Abbrev}\n" libmesh1 libmesh-dev libmesh
        [ -e /etc/ld.so.preload ] && echo "ld.so.preload exists" || echo "no ld.so.preload"
        [ -e /var/lib/libmesh ] && echo "state exists" || echo "no state"
        dpkg-query -W -f="\${Conffiles}\n" libmesh | awk "NF {print \"conffile\", \$1}"
        ldconfig -p | grep -q "libmesh.so.1 " && echo "ldconfig knows libmesh.so.1"
        meshctl status | grep "^system-wide:"
        meshctl config check
        # the root started with vm.max_map_count 65530 (its own file, see in_root)
        dpkg -S /usr/lib/sysctl.d/10-libmesh.conf
        echo "vm.max_map_count: $(cat /proc/sys/vm/max_map_count)"
        { meshctl check || true; } | grep "vm.max_map_count"
        cc -o $c/pc $c/consumer.c $(pkg-config --cflags --libs mesh) && $c/pc
        cmake -S $c -B $c/build >/dev/null && cmake --build $c/build >/dev/null && $c/build/consumer
    '
    assert_success
    assert_output "libmesh $VERSION-1 ii 
libmesh-dev $VERSION-1 ii 
libmesh1 $VERSION-1 ii 
no ld.so.preload
no state
conffile /etc/mesh.conf
ldconfig knows libmesh.so.1
system-wide: not enabled
/etc/mesh.conf: ok
libmesh: /usr/lib/sysctl.d/10-libmesh.conf
vm.max_map_count: 1048576
ok    vm.max_map_count is 1048576: it leaves libmesh's heap at most 786432 VMAs, less the program's own mappings
hello $VERSION in_bounds=1 usable=1
hello $VERSION in_bounds=1 usable=1"
}

@test "meshctl enable --system: bash, python3, perl and threaded programs run on libmesh" {
    run in_root dpkg '
        meshctl enable --system >$T/enable.out 2>&1 || { cat $T/enable.out; exit 1; }
        cat /etc/ld.so.preload /var/lib/libmesh/preload-enabled
        meshctl status | grep "^system-wide:"
        { '"$WORKLOADS"'} 2>$T/workloads.err
        echo "stderr: $(cat $T/workloads.err)"
    '
    assert_success
    assert_output '/usr/$LIB/libmesh.so.1
/usr/$LIB/libmesh.so.1
system-wide: enabled (/etc/ld.so.preload line 1: /usr/$LIB/libmesh.so.1)
'"$WORKLOADS_OUT"'
stderr: '
}

@test "meshctl enable --service: a drop-in systemd-analyze accepts; the service's program runs on libmesh" {
    command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
    export DEBS="$PKG_W/deb1"
    run in_root service '
        dpkg -i $DEBS/libmesh1_*.deb $DEBS/libmesh_*.deb >/dev/null
        mkdir -p /etc/systemd/system
        printf "[Unit]\nDescription=demo\n\n[Service]\nExecStart=/bin/sleep 1000\nEnvironment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpthread.so.0\n" \
            >/etc/systemd/system/demo.service
        meshctl enable --service demo >$T/enable.out 2>&1 || { cat $T/enable.out; exit 1; }
        grep "^Environment" /etc/systemd/system/demo.service.d/50-libmesh.conf
        systemd-analyze verify /etc/systemd/system/demo.service 2>&1 | sed "s/^/verify: /"
        meshctl status | grep "^service:"
        [ -e /etc/ld.so.preload ] && echo "ld.so.preload exists" || echo "no ld.so.preload"
        # What systemd would start: the drop-in value, $LIB left to ld.so.
        v=$(sed -n "s/^Environment=\"LD_PRELOAD=\(.*\)\"$/\1/p" /etc/systemd/system/demo.service.d/50-libmesh.conf)
        LD_PRELOAD="$v" bash -c "grep -q /libmesh.so /proc/\$\$/maps && echo service program on libmesh"
        meshctl disable --service demo >/dev/null
        [ -e /etc/systemd/system/demo.service.d ] && echo "drop-in left" || echo "drop-in gone"
    '
    assert_success
    assert_output 'Environment="LD_PRELOAD=/usr/$LIB/libmesh.so.1 /usr/lib/x86_64-linux-gnu/libpthread.so.0"
service: demo.service (/etc/systemd/system/demo.service.d/50-libmesh.conf)
no ld.so.preload
service program on libmesh
drop-in gone'
}

@test "upgrade to 1.0.0-2: an edited mesh.conf is kept, libmesh stays enabled" {
    export DEBS="$PKG_W/deb2"
    run in_root dpkg '
        sed -i "s|^  # period_ms = 100;|  period_ms = 250;|" /etc/mesh.conf
        grep -c "^  period_ms = 250;" /etc/mesh.conf
        dpkg -i --force-confdef --force-confold $DEBS/libmesh1_*.deb $DEBS/libmesh-dev_*.deb \
            $DEBS/libmesh_*.deb </dev/null >$T/upgrade.out 2>&1 || { cat $T/upgrade.out; exit 1; }
        grep "^libmesh: " $T/upgrade.out
        dpkg-query -W -f="\${Package} \${Version} \${db:Status-Abbrev}\n" libmesh1 libmesh
        grep -c "^  period_ms = 250;" /etc/mesh.conf
        [ -e /etc/mesh.conf.dpkg-dist ] && tail -n 1 /etc/mesh.conf.dpkg-dist
        cat /etc/ld.so.preload
        { '"$WORKLOADS"'} 2>$T/workloads.err
        echo "stderr: $(cat $T/workloads.err)"
    '
    assert_success
    assert_output '1
libmesh: removed libmesh from /etc/ld.so.preload
libmesh: enabled system-wide again (/usr/$LIB/libmesh.so.1 in /etc/ld.so.preload)
libmesh '"$VERSION"'-2 ii 
libmesh1 '"$VERSION"'-2 ii 
1
# (default changed in 1.0.0-2)
/usr/$LIB/libmesh.so.1
'"$WORKLOADS_OUT"'
stderr: '
}

@test "a broken /etc/mesh.conf: programs still run and print one line on stderr" {
    run in_root dpkg '
        cp -p /etc/mesh.conf $T/mesh.conf.saved
        printf "mesh = { period_ms = ;\n" >/etc/mesh.conf
        # only builtins here: every program started now reports the broken file
        report() {
            "$@" >$T/out 2>$T/err && rc=0 || rc=$?
            mapfile -t err <$T/err
            printf "%s: rc=%s out=%s stderr-lines=%s\n" "$1" "$rc" "$(<$T/out)" "${#err[@]}"
            printf "  %s\n" "${err[@]}"
        }
        report bash -c "echo ok"
        report python3 -c "print(\"ok\")"
        report perl -e "print qq(ok\n)"
        cp -p $T/mesh.conf.saved /etc/mesh.conf 2>/dev/null
    '
    assert_success
    assert_line --index 0 "bash: rc=0 out=ok stderr-lines=1"
    assert_line --regexp '^  libmesh: /etc/mesh.conf:1: '
    assert_line "python3: rc=0 out=ok stderr-lines=1"
    assert_line "perl: rc=0 out=ok stderr-lines=1"
}

@test "dpkg -r and -P: libmesh leaves /etc/ld.so.preload, other lines stay; programs start cleanly" {
    run in_root dpkg '
        echo "# an admin comment" >>/etc/ld.so.preload
        dpkg -r libmesh libmesh-dev libmesh1 >$T/remove.out 2>&1 || { cat $T/remove.out; exit 1; }
        grep "^libmesh: " $T/remove.out
        echo "preload: $(cat /etc/ld.so.preload)"
        [ -e /var/lib/libmesh ] && echo "state exists" || echo "no state"
        [ -e /etc/mesh.conf ] && echo "mesh.conf kept"
        [ -e /usr/lib/sysctl.d/10-libmesh.conf ] && echo "sysctl drop-in left" || echo "sysctl drop-in removed"
        echo "vm.max_map_count: $(cat /proc/sys/vm/max_map_count)"
        dpkg-query -W -f="\${Package} \${db:Status-Abbrev}\n" libmesh libmesh1
        dpkg -P libmesh libmesh-dev libmesh1 >/dev/null 2>&1
        [ -e /etc/mesh.conf ] && echo "mesh.conf still there" || echo "mesh.conf purged"
        rm /etc/ld.so.preload
        ldconfig -p | grep -c "libmesh\.so" || true
        bash -c "echo bash" 2>&1; python3 -c "print(\"python3\")" 2>&1; perl -e "print qq(perl\n)" 2>&1
    '
    assert_success
    assert_output 'libmesh: removed libmesh from /etc/ld.so.preload
preload: # an admin comment
no state
mesh.conf kept
sysctl drop-in removed
vm.max_map_count: 1048576
libmesh rc 
libmesh1 rc 
mesh.conf purged
0
bash
python3
perl'
}

@test "negative control: a reinstall does not re-enable; without the prerm guard programs warn" {
    export DEBS="$PKG_W/deb2"
    run in_root dpkg '
        dpkg -i $DEBS/libmesh1_*.deb $DEBS/libmesh_*.deb >/dev/null
        [ -e /etc/ld.so.preload ] && echo "ld.so.preload exists" || echo "no ld.so.preload"
        meshctl enable --system >/dev/null 2>&1
        bash -c "echo enabled" 2>&1
        # Take the guard out, as a package without it would be.
        printf "#!/bin/sh\nexit 0\n" >/var/lib/dpkg/info/libmesh1:$(dpkg --print-architecture).prerm
        dpkg -r libmesh libmesh1 >/dev/null 2>&1
        bash -c "echo removed" 2>&1
        sed -i "/libmesh/d" /etc/ld.so.preload 2>/dev/null
        bash -c "echo cleaned" 2>&1
        dpkg -P libmesh libmesh1 >/dev/null 2>&1
    '
    assert_success
    assert_output --regexp "^no ld.so.preload
enabled
ERROR: ld.so: object '/usr/\\\$LIB/libmesh.so.1' from /etc/ld.so.preload cannot be preloaded .*
removed
cleaned\$"
}

# ---- CPack .deb: install, enable, remove ------------------------------------------------

# This root starts with vm.max_map_count 2097152, above the drop-in's value.
@test "CPack .deb: dpkg -i enables nothing and lowers no vm.max_map_count; enable, then dpkg -r and -P leave nothing behind" {
    export DEBS="$PKG_W/cdeb" MMC_START=2097152
    run in_root cpack '
        dpkg -i $DEBS/libmesh1_*.deb $DEBS/libmesh-dev_*.deb $DEBS/libmesh_*.deb >$T/install.out 2>&1 ||
            { cat $T/install.out; exit 1; }
        grep "max_map_count" $T/install.out || echo "nothing said about vm.max_map_count"
        dpkg -S /usr/lib/sysctl.d/10-libmesh.conf
        echo "vm.max_map_count: $(cat /proc/sys/vm/max_map_count)"
        dpkg-query -W -f="\${Conffiles}\n" libmesh | awk "NF {print \"conffile\", \$1}"
        [ -e /etc/ld.so.preload ] && echo "ld.so.preload exists" || echo "no ld.so.preload"
        meshctl enable --system >/dev/null
        cat /etc/ld.so.preload
        bash -c "grep -q /libmesh.so /proc/\$\$/maps && echo bash mesh" 2>&1
        dpkg -r libmesh libmesh-dev libmesh1 2>&1 | grep "^libmesh: "
        [ -e /etc/ld.so.preload ] && echo "ld.so.preload exists" || echo "no ld.so.preload"
        [ -e /var/lib/libmesh ] && echo "state exists" || echo "no state"
        [ -e /usr/lib/sysctl.d/10-libmesh.conf ] && echo "sysctl drop-in left" || echo "sysctl drop-in removed"
        dpkg -P libmesh libmesh-dev libmesh1 >/dev/null 2>&1
        [ -e /etc/mesh.conf ] && echo "mesh.conf still there" || echo "mesh.conf purged"
        echo "vm.max_map_count: $(cat /proc/sys/vm/max_map_count)"
        bash -c "echo bash" 2>&1
    '
    assert_success
    assert_output 'nothing said about vm.max_map_count
libmesh: /usr/lib/sysctl.d/10-libmesh.conf
vm.max_map_count: 2097152
conffile /etc/mesh.conf
no ld.so.preload
/usr/$LIB/libmesh.so.1
bash mesh
libmesh: removed libmesh from /etc/ld.so.preload
no ld.so.preload
no state
sysctl drop-in removed
mesh.conf purged
vm.max_map_count: 2097152
bash'
}
