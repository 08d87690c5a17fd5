# post.sh - post-install scriptlet of the libmesh RPM
# (CPACK_RPM_RUNTIME_POST_INSTALL_SCRIPT_FILE). $1: 1 on install, 2 on upgrade.
# RPM runs the new package's post-install scriptlet before the old one's pre-uninstall
# scriptlet, and that strips /etc/ld.so.preload only on a final erase (preun.sh), so an
# upgrade keeps libmesh enabled; this also restores the line from the marker
# /var/lib/libmesh/preload-enabled where it is missing. Installing never enables anything.
/sbin/ldconfig

# BEGIN mesh_preload_restore -- keep identical to the copy in debian/libmesh1.postinst
# Appends the entry recorded in the marker to /etc/ld.so.preload when: the marker holds
# an absolute libmesh path, that library exists ($LIB tried as lib/<triplet>, lib64
# and lib), /etc/ld.so.preload has no libmesh line yet, and a shell started with the
# library preloaded works. Writes a temporary file in /etc and renames it (atomic);
# a new file gets mode 0644, an existing one keeps its mode, owner and lines.
mesh_preload_restore() {
    mesh_f=/etc/ld.so.preload
    mesh_marker=/var/lib/libmesh/preload-enabled
    mesh_re='^[[:space:]]*([^[:space:]#]*/)?libmesh\.so(\.[0-9]+)*[[:space:]]*(#.*)?$'
    [ -f "$mesh_marker" ] || return 0
    mesh_line=$(sed -n -E '/[^[:space:]]/{s/^[[:space:]]+//;s/[[:space:]]+$//;p;q;}' "$mesh_marker")
    mesh_path=$(printf '%s\n' "$mesh_line" | sed -E 's/[[:space:]]*#.*$//')
    case "$mesh_path" in
        /*) ;;
        *) mesh_path= ;;
    esac
    if [ -z "$mesh_path" ] || ! printf '%s\n' "$mesh_line" | grep -Eq "$mesh_re"; then
        echo "libmesh: $mesh_marker does not name a libmesh library; not re-enabling it system-wide" >&2
        return 0
    fi
    if [ -f "$mesh_f" ] && grep -Eq "$mesh_re" "$mesh_f"; then
        return 0
    fi
    mesh_found=
    for mesh_candidate in $(printf '%s\n' "$mesh_path" | sed 's|\$LIB|lib/*|g') \
                          $(printf '%s\n' "$mesh_path" | sed 's|\$LIB|lib64|g') \
                          $(printf '%s\n' "$mesh_path" | sed 's|\$LIB|lib|g'); do
        if [ -f "$mesh_candidate" ]; then
            mesh_found=$mesh_candidate
            break
        fi
    done
    if [ -z "$mesh_found" ]; then
        echo "libmesh: $mesh_path does not exist; not re-enabling it system-wide" >&2
        return 0
    fi
    if [ "$(LD_PRELOAD="$mesh_path" /bin/sh -c 'echo ok' 2>/dev/null)" != ok ]; then
        echo "libmesh: a shell with $mesh_path preloaded failed; not re-enabling it system-wide." >&2
        echo "libmesh: run 'meshctl enable --system' to try again." >&2
        return 0
    fi
    mesh_tmp=$(mktemp "$mesh_f.libmesh.XXXXXX") || return 1
    if [ -f "$mesh_f" ]; then
        if ! cp -p "$mesh_f" "$mesh_tmp"; then
            rm -f "$mesh_tmp"
            return 1
        fi
        if [ -s "$mesh_tmp" ] && [ -n "$(tail -c 1 "$mesh_tmp")" ]; then
            echo >>"$mesh_tmp"
        fi
    else
        chmod 0644 "$mesh_tmp"
    fi
    if ! printf '%s\n' "$mesh_line" >>"$mesh_tmp"; then
        rm -f "$mesh_tmp"
        return 1
    fi
    mv -f "$mesh_tmp" "$mesh_f"
    echo "libmesh: enabled system-wide again ($mesh_line in /etc/ld.so.preload)"
}
# END mesh_preload_restore

mesh_preload_restore || exit 1
exit 0
