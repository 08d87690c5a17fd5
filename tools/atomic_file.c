// atomic_file.c - whole-file reads and atomic replacement of system files for
// meshctl. A reader of /etc/ld.so.preload or a unit drop-in (every starting
// process, or systemd) must see the old file or the new one, never a partial one:
// the new content goes to a temporary file in the same directory, is synced, given
// the old file's mode and owner, and renamed over the target.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meshctl.h"

char *read_text_file(const char *path, size_t limit) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (len + 1 >= cap) {
            if (cap >= limit) {
                errno = EFBIG;
                free(buf);
                buf = NULL;
                break;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (n == 0) {
            buf[len] = 0;
            break;
        }
        len += (size_t)n;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

static int write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

// The directory is synced too, so that after a crash the rename is either there
// or not, never a directory entry pointing at an empty file.
static void sync_parent(const char *path) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int atomic_write_file(const char *path, const char *data, size_t len, mode_t mode, uid_t uid,
                      gid_t gid) {
    char tmp[4200], copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    char *slash = strrchr(copy, '/');
    if (slash) {
        *slash = 0;
        snprintf(tmp, sizeof tmp, "%s/.%s.meshctl-XXXXXX", copy[0] ? copy : "/", slash + 1);
    } else {
        snprintf(tmp, sizeof tmp, ".%s.meshctl-XXXXXX", path);
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) return -1;
    if (write_all(fd, data, len) != 0 || fchmod(fd, mode) != 0 ||
        (fchown(fd, uid, gid) != 0 && errno != EPERM) || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    sync_parent(path);
    return 0;
}

int make_dirs(const char *dir, mode_t mode) {
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(path, mode) != 0 && errno != EEXIST) return -1;
        if (!c) return 0;
        *p = c;
    }
}
