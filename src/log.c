// log.c - stderr output for the allocator (see log.h).
//
// Formats into a stack buffer and writes it with one write(2) so lines from
// different threads do not interleave. errno is preserved: callers may be inside
// free(), which must not change errno.
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "str.h"

void mh_log_write(const char *s, size_t n) { mh_log_write_fd(2, s, n); }

void mh_log_write_fd(int fd, const char *s, size_t n) {
    int saved = errno;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

static void vlog_line(const char *fmt, va_list ap) {
    char buf[512];
    size_t n = mh_snprintf(buf, sizeof buf, "libmesh: ");
    n += mh_vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    buf[n++] = '\n';
    mh_log_write(buf, n);
}

void mh_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap);
    va_end(ap);
}

void mh_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap);
    va_end(ap);
    abort();
}
