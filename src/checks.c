// checks.c - THP and max_map_count checks (see checks.h).
//
// Layer 2 (primitives): os, str.
#include "checks.h"

#include "os.h"
#include "str.h"

static long read_small(const char *root, const char *path, char *buf, size_t n) {
    char full[512];
    mh_snprintf(full, sizeof full, "%s%s", root ? root : "", path);
    return mh_os_read_file(full, buf, n);
}

int mh_check_read_selector(const char *path, char *buf, size_t n) {
    char raw[256];
    if (read_small("", path, raw, sizeof raw) <= 0) return -1;
    const char *open_br = raw;
    while (*open_br && *open_br != '[') open_br++;
    if (!*open_br) return -1;
    size_t k = 0;
    for (const char *p = open_br + 1; *p && *p != ']' && k + 1 < n; p++) buf[k++] = *p;
    buf[k] = 0;
    return 0;
}

const char *mh_check_thp(const char *root, char *buf, size_t n) {
    char path[512], mode[32];
    mh_snprintf(path, sizeof path, "%s/sys/kernel/mm/transparent_hugepage/shmem_enabled", root ? root : "");
    if (mh_check_read_selector(path, mode, sizeof mode) != 0) return NULL; // no THP support
    if (!mh_streq(mode, "force")) return NULL;
    mh_snprintf(buf, n,
                "transparent huge pages: /sys/kernel/mm/transparent_hugepage/shmem_enabled is "
                "'force', which puts huge pages under the heap despite MADV_NOHUGEPAGE; set it "
                "to 'advise' or 'never' (echo advise > /sys/kernel/mm/transparent_hugepage/"
                "shmem_enabled)");
    return buf;
}

long mh_check_max_map_count(const char *root) {
    char buf[32];
    if (read_small(root, "/proc/sys/vm/max_map_count", buf, sizeof buf) <= 0) return -1;
    long v = 0;
    for (const char *p = buf; *p >= '0' && *p <= '9'; p++) v = v * 10 + (*p - '0');
    return buf[0] >= '0' && buf[0] <= '9' ? v : -1;
}
