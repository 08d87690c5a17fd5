/* stress_util.h - helpers the fork stress programs share: async-signal-safe output
 * (they report from fork children, signal handlers and threads, so no stdio) and a
 * seeded splitmix64 generator, so a failing run can be replayed from its seed. */
#ifndef STRESS_UTIL_H
#define STRESS_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Writes msg to stderr with write(2) only. */
static inline void stress_say(const char *msg) {
    size_t n = strlen(msg);
    while (n > 0) {
        ssize_t w = write(2, msg, n);
        if (w <= 0)
            return;
        msg += w;
        n -= (size_t)w;
    }
}

/* Completes buf (holding a prefix of used bytes) with fmt and a newline, then writes
 * it to stderr. */
static inline void stress_vsay(char *buf, size_t size, size_t used, const char *fmt, va_list ap) {
    if (used < size)
        vsnprintf(buf + used, size - used, fmt, ap);
    strncat(buf, "\n", size - strlen(buf) - 1);
    stress_say(buf);
}

/* Writes "who (pid N): " and fmt's message as one line. */
static inline void stress_vreport(const char *who, const char *fmt, va_list ap) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s (pid %d): ", who, (int)getpid());
    stress_vsay(buf, sizeof buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : 0, fmt, ap);
}

static inline uint64_t stress_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
