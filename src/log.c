// log.c - the failure reporters and stderr output (see log.h).
//
// Layer 0 (base).
// Formats into a stack buffer and writes it with one write(2) so lines from
// different threads do not interleave. errno is preserved: callers may be inside
// free(), which must not change errno. The degradation mask is one atomic word.
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "str.h"

_Static_assert(MH_DEG_COUNT <= 16, "printed and in-effect bits share one word");

static _Atomic uint32_t degraded; // bit k: kind k in effect; bit 16+k: kind k printed
static _Atomic(_Atomic uint32_t *) published; // the info page's copy of the in-effect bits

// Applies the same change to the published copy: or and and commute, so concurrent
// changes leave both words equal (atomic stores only: no locks on these paths).
static void mirror(uint32_t set, uint32_t clear) {
    _Atomic uint32_t *slot = mh_load_seqcst(&published);
    if (!slot) return;
    if (set) mh_fetch_or_seqcst(slot, set & 0xffffu);
    if (clear) mh_fetch_and_seqcst(slot, ~(clear & 0xffffu));
}

void mh_degraded_publish(_Atomic uint32_t *slot) {
    mh_store_seqcst(&published, slot);
    mh_store_seqcst(slot, mh_degraded_mask());
}

void mh_log_write(const char *s, size_t n) { mh_log_write_fd(2, s, n); }

// The raw system call: libmesh's own output must not go through a wrapper.
void mh_log_write_fd(int fd, const char *s, size_t n) {
    int saved = errno;
    while (n > 0) {
        ssize_t w = syscall(SYS_write, fd, s, n);
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

bool mh_degraded(mh_degrade_t what, const char *fmt, ...) {
    uint32_t bits = (1u << what) | (1u << (16 + what));
    uint32_t was = mh_fetch_or_seqcst(&degraded, bits);
    mirror(1u << what, 0);
    if (was & (1u << (16 + what))) return false;
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap);
    va_end(ap);
    return true;
}

void mh_degraded_quiet(mh_degrade_t what) {
    mh_fetch_or_seqcst(&degraded, 1u << what);
    mirror(1u << what, 0);
}

void mh_degraded_clear(mh_degrade_t what) {
    uint32_t was = mh_fetch_and_seqcst(&degraded, ~((1u << what) | (1u << (16 + what))));
    if (was & (1u << what)) mirror(0, 1u << what); // often called with nothing to clear
}

uint32_t mh_degraded_mask(void) { return mh_load_relaxed(&degraded) & 0xffffu; }

void mh_corrupt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap);
    va_end(ap);
    abort();
}

void mh_terminate(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog_line(fmt, ap);
    va_end(ap);
    abort();
}
