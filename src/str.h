// str.h - allocation-free string helpers and a small vsnprintf subset.
//
// Layer 0 (base).
//
// Used by logging and stats output, which must work inside malloc and in a
// SIGSEGV handler: nothing here allocates, locks or touches errno.
// Supported conversions: %s %c %d %i %u %x %p %% with flags '-' '0', a width,
// and the length modifiers l, ll, z.
#ifndef MH_STR_H
#define MH_STR_H

#include <stdarg.h>
#include <stddef.h>

size_t mh_strlen(const char *s);
// Returns 1 when both strings are equal.
int mh_streq(const char *a, const char *b);
// Formats into buf (always NUL-terminated when n > 0); returns the length written.
size_t mh_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
size_t mh_snprintf(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
