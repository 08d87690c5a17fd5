# preun.sh - pre-uninstall scriptlet of the libmesh RPM
# (CPACK_RPM_RUNTIME_PRE_UNINSTALL_SCRIPT_FILE). $1: 0 on the final erase, 1 when an
# upgrade removes the old version. On upgrade RPM runs the old package's pre-uninstall
# scriptlet after the new one's post-install scriptlet, and the library file stays; so
# only a final erase takes libmesh out of /etc/ld.so.preload, before the file goes away.
# Only basic tools: meshctl (libmesh-common) may be gone already.

# BEGIN mesh_preload_strip -- keep identical to the copy in debian/libmesh1.prerm
# Removes the lines of /etc/ld.so.preload that hold nothing but a path whose file name
# is libmesh.so or libmesh.so.<digits>[.<digits>...] (blanks and a trailing # comment
# aside); keeps every other line, the file's mode and owner; deletes the file when only
# blank lines remain. Writes a temporary file in /etc and renames it (atomic).
mesh_preload_strip() {
    mesh_f=/etc/ld.so.preload
    mesh_re='^[[:space:]]*([^[:space:]#]*/)?libmesh\.so(\.[0-9]+)*[[:space:]]*(#.*)?$'
    [ -f "$mesh_f" ] || return 0
    if grep -Eq "$mesh_re" "$mesh_f"; then
        mesh_tmp=$(mktemp "$mesh_f.libmesh.XXXXXX") || return 1
        if ! cp -p "$mesh_f" "$mesh_tmp" || ! sed -E "\\|$mesh_re|d" "$mesh_f" >"$mesh_tmp"; then
            rm -f "$mesh_tmp"
            return 1
        fi
        if grep -q '[^[:space:]]' "$mesh_tmp"; then
            mv -f "$mesh_tmp" "$mesh_f" || { rm -f "$mesh_tmp"; return 1; }
        else
            rm -f "$mesh_tmp" "$mesh_f"
        fi
        echo "libmesh: removed libmesh from /etc/ld.so.preload"
    fi
    if [ -f "$mesh_f" ] &&
        grep -Eq '(^|[[:space:]:])([^[:space:]:#]*/)?libmesh\.so(\.[0-9]+)*([[:space:]:#]|$)' "$mesh_f"; then
        echo "libmesh: /etc/ld.so.preload still names libmesh on a line with other entries; remove it there by hand" >&2
    fi
}
# END mesh_preload_strip

if [ "$1" = 0 ]; then
    mesh_preload_strip || exit 1
fi
exit 0
