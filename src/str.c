// str.c - allocation-free formatting (see str.h for the supported subset).
//
// Layer 0 (base).
//
// Invariant: output never overruns buf; conversions the subset does not know are
// copied through literally so a bad format string shows up in the message.
#include "str.h"

#include <stdint.h>

size_t mh_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

int mh_streq(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void out_char(out_t *o, char c) {
    if (o->len + 1 < o->cap) o->buf[o->len] = c;
    o->len++;
}

static void out_padded(out_t *o, const char *s, size_t n, int width, int left, char pad) {
    int fill = width > (int)n ? width - (int)n : 0;
    if (!left)
        while (fill-- > 0) out_char(o, pad);
    for (size_t i = 0; i < n; i++) out_char(o, s[i]);
    if (left)
        while (fill-- > 0) out_char(o, ' ');
}

// Renders v in base 10 or 16 into the end of tmp; returns the first digit.
static char *format_unsigned(char *end, uint64_t v, unsigned base) {
    static const char digits[] = "0123456789abcdef";
    *--end = 0;
    do {
        *--end = digits[v % base];
        v /= base;
    } while (v);
    return end;
}

static uint64_t take_unsigned(va_list *ap, int lng) {
    if (lng >= 2) return va_arg(*ap, unsigned long long);
    if (lng == 1) return va_arg(*ap, unsigned long);
    return va_arg(*ap, unsigned int);
}

static int64_t take_signed(va_list *ap, int lng) {
    if (lng >= 2) return va_arg(*ap, long long);
    if (lng == 1) return va_arg(*ap, long);
    return va_arg(*ap, int);
}

static void format_number(out_t *o, char conv, va_list *ap, int lng, int width, int left,
                          char pad) {
    char tmp[32];
    char *s;
    int neg = 0;
    if (conv == 'd' || conv == 'i') {
        int64_t v = take_signed(ap, lng);
        neg = v < 0;
        s = format_unsigned(tmp + sizeof tmp, neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10);
    } else if (conv == 'p') {
        s = format_unsigned(tmp + sizeof tmp, (uintptr_t)va_arg(*ap, void *), 16);
        *--s = 'x';
        *--s = '0';
    } else {
        s = format_unsigned(tmp + sizeof tmp, take_unsigned(ap, lng), conv == 'x' ? 16 : 10);
    }
    if (neg) *--s = '-';
    out_padded(o, s, mh_strlen(s), width, left, pad);
}

size_t mh_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap0) {
    out_t o = {buf, n, 0};
    va_list ap;
    va_copy(ap, ap0);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            out_char(&o, *f);
            continue;
        }
        const char *start = f++;
        int left = 0, width = 0, lng = 0;
        char pad = ' ';
        for (; *f == '-' || *f == '0'; f++) {
            if (*f == '-') left = 1;
            else pad = '0';
        }
        for (; *f >= '0' && *f <= '9'; f++) width = width * 10 + (*f - '0');
        for (; *f == 'l' || *f == 'z'; f++) lng += (*f == 'z') ? 1 : 1;
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            out_padded(&o, s, mh_strlen(s), width, left, ' ');
            break;
        }
        case 'c': out_char(&o, (char)va_arg(ap, int)); break;
        case '%': out_char(&o, '%'); break;
        case 'd': case 'i': case 'u': case 'x': case 'p':
            format_number(&o, *f, &ap, lng, width, left, left ? ' ' : pad);
            break;
        default: // unknown conversion: copy it through literally
            for (const char *c = start; c <= f && *c; c++) out_char(&o, *c);
            if (!*f) f--;
        }
    }
    va_end(ap);
    if (n) buf[o.len < n ? o.len : n - 1] = 0;
    return o.len < n ? o.len : (n ? n - 1 : 0);
}

size_t mh_snprintf(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t r = mh_vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}
