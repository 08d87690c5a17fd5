# postun.sh - post-uninstall scriptlet of the libmesh RPM
# (CPACK_RPM_RUNTIME_POST_UNINSTALL_SCRIPT_FILE). $1: 0 on the final erase. preun.sh
# already took libmesh out of /etc/ld.so.preload; forget that it was enabled
# system-wide, so that installing the package again never enables it.
/sbin/ldconfig
if [ "$1" = 0 ]; then
    rm -f /var/lib/libmesh/preload-enabled
    rmdir /var/lib/libmesh 2>/dev/null || true
fi
exit 0
