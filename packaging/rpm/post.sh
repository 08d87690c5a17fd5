# post.sh - post-install scriptlet of the libmesh RPM
# (CPACK_RPM_RUNTIME_POST_INSTALL_SCRIPT_FILE). $1: 1 on install, 2 on upgrade.
# RPM runs the new package's post-install scriptlet before the old one's pre-uninstall
# scriptlet, and that strips /etc/ld.so.preload only on a final erase (preun.sh), so an
# upgrade keeps libmesh enabled; this also restores the line from the marker
# /var/lib/libmesh/preload-enabled where it is missing. Installing never enables anything.
# The package also ships /usr/lib/sysctl.d/10-libmesh.conf (vm.max_map_count = 1048576,
# see mesh.conf(5)); like Fedora's %sysctl_apply this applies it on install and upgrade,
# but only upwards and never as a reason to fail (debian/libmesh.postinst does the same).
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

# BEGIN mesh_sysctl_apply -- keep identical to the copy in debian/libmesh.postinst
# Applies /usr/lib/sysctl.d/10-libmesh.conf to the running kernel when the limit in
# force is below 1048576, by writing /proc/sys/vm/max_map_count (sysctl(8) is in
# procps, which need not be installed); a higher limit stays. An /etc or /run
# sysctl.d file of the same name replaces ours (sysctl.d(5)): then nothing is applied.
# A limit that cannot be read or written (no /proc, a read-only /proc/sys in a
# container) costs one line on stderr; the function always returns 0.
mesh_sysctl_apply() {
    mesh_want=1048576
    mesh_proc=/proc/sys/vm/max_map_count
    mesh_dropin=/usr/lib/sysctl.d/10-libmesh.conf
    for mesh_mask in /etc/sysctl.d/10-libmesh.conf /run/sysctl.d/10-libmesh.conf; do
        if [ -e "$mesh_mask" ] || [ -L "$mesh_mask" ]; then
            return 0
        fi
    done
    mesh_now=$(cat "$mesh_proc" 2>/dev/null) || mesh_now=
    case "$mesh_now" in
        '' | *[!0-9]*)
            echo "libmesh: cannot read $mesh_proc; $mesh_dropin applies from the next boot" >&2
            return 0
            ;;
    esac
    if [ "$mesh_now" -ge "$mesh_want" ]; then
        return 0
    fi
    # A subshell: a failed redirection must not end the script.
    if (printf '%s\n' "$mesh_want" >"$mesh_proc") 2>/dev/null &&
        [ "$(cat "$mesh_proc" 2>/dev/null)" = "$mesh_want" ]; then
        echo "libmesh: raised vm.max_map_count from $mesh_now to $mesh_want ($mesh_dropin)"
    else
        echo "libmesh: cannot raise vm.max_map_count from $mesh_now to $mesh_want here (read-only /proc/sys?); $mesh_dropin applies from the next boot" >&2
    fi
    return 0
}
# END mesh_sysctl_apply

mesh_sysctl_apply
mesh_preload_restore || exit 1
exit 0
