/*
 * failshim.c - an LD_PRELOAD shim that makes chosen memory system calls fail.
 *
 * Load it BEFORE libmesh, so libmesh's references to mmap & co. bind here:
 *     LD_PRELOAD="failshim.so libmesh.so.1" FAIL_CALLS=mmap FAIL_MODE=nth:3 prog
 *
 * Wrapped: mmap (mmap64), mremap, madvise, mprotect, fallocate (fallocate64),
 * ftruncate (ftruncate64), memfd_create, and syscall(2) for the same system calls
 * made raw (libmesh makes memfd_create with syscall(SYS_memfd_create, ...)).
 *
 * Environment (read once, on the first wrapped call or in the constructor):
 *   FAIL_CALLS  comma-separated names: memfd_create, mmap, mremap, madvise, mprotect,
 *               fallocate, ftruncate; each may carry its own errno ("fallocate:ENOSPC").
 *               Unset or empty: nothing fails (the shim only counts).
 *   FAIL_MODE   all | nth:N (every Nth call after FAIL_AFTER fails) | random:PCT
 *               (each call fails with probability PCT percent, from FAIL_SEED). Default all.
 *   FAIL_SEED   seed for random (default 1). Call k of a function fails or not from the
 *               seed and k alone, so a single-threaded run replays exactly.
 *   FAIL_AFTER  the first K calls of each listed function go through (default 0).
 *   FAIL_ARM    "manual": nothing fails until the program calls failshim_arm() (found
 *               with dlsym(RTLD_DEFAULT, "failshim_arm")); calls before count toward
 *               nothing. Default: armed from the start.
 *   FAIL_ERRNO  the errno of an injected failure: a name (ENOMEM, EAGAIN, ...) or a
 *               number. Default ENOMEM.
 *   FAIL_TRACE  1: each injected failure writes "failshim: injected NAME" and the call's
 *               backtrace to stderr (to find which caller mishandles it; the unwinder
 *               is loaded in the constructor, before anything is failed).
 *   FAIL_LOG    a file; at exit every process (fork children too) appends one line:
 *               "failshim pid=P mmap=calls/failed ... injected=N". Nothing goes to stderr.
 *
 * Rules it keeps, since it runs inside malloc: it never allocates (no stdio, static
 * state only), the real functions are looked up lazily with dlsym(RTLD_NEXT) with a
 * per-thread guard, and a lookup that re-enters the shim makes the system call
 * directly instead. Counters are atomics; errno is set only on an injected failure.
 *
 * Exported for programs: failshim_arm(), failshim_disarm(), failshim_injected().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

enum { K_MEMFD, K_MMAP, K_MREMAP, K_MADVISE, K_MPROTECT, K_FALLOCATE, K_FTRUNCATE, K_COUNT };
static const char *const kname[K_COUNT] = {"memfd_create", "mmap",      "mremap",   "madvise",
                                           "mprotect",     "fallocate", "ftruncate"};

enum { M_ALL, M_NTH, M_RANDOM };

static struct {
    int mode;
    unsigned long nth, pct, after;
    uint64_t seed;
    int err[K_COUNT]; // 0: this function is not failed
    char log[512];
    bool trace;
} cfg;

static atomic_int cfg_state;   // 0 not read, 1 reading, 2 read
static atomic_int armed = 1;   // FAIL_ARM=manual clears it until failshim_arm()
static atomic_ulong calls[K_COUNT], failed[K_COUNT];

/* ---- raw system calls, for a lookup that re-enters the shim ---------------------- */
static long raw6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
                  x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e,
                  x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    long ret = x0;
#else
#error "failshim: raw system calls are written for x86_64 and aarch64"
#endif
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

/* ---- configuration (no allocation: getenv and static buffers) -------------------- */
static int parse_errno(const char *s, int dflt) {
    static const struct { const char *name; int val; } tab[] = {
        {"ENOMEM", ENOMEM}, {"EAGAIN", EAGAIN}, {"EPERM", EPERM},   {"EACCES", EACCES},
        {"ENOSPC", ENOSPC}, {"EFBIG", EFBIG},   {"EINVAL", EINVAL}, {"EMFILE", EMFILE},
        {"ENFILE", ENFILE}, {"ENOSYS", ENOSYS}, {"EIO", EIO},       {"EINTR", EINTR},
        {"EBADF", EBADF},   {"ENODEV", ENODEV}, {"EOPNOTSUPP", EOPNOTSUPP},
        {"EBUSY", EBUSY},   {"EFAULT", EFAULT},
    };
    if (!s || !*s) return dflt;
    if (*s >= '0' && *s <= '9') {
        int v = atoi(s);
        return v > 0 ? v : dflt;
    }
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i].name, s) == 0) return tab[i].val;
    return dflt;
}

static void read_config(void) {
    int st = atomic_load(&cfg_state);
    if (st == 2) return;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&cfg_state, &expect, 1)) {
        while (atomic_load(&cfg_state) != 2) { /* another thread reads it: a moment */
        }
        return;
    }
    int dflt = parse_errno(getenv("FAIL_ERRNO"), ENOMEM);
    const char *calls_s = getenv("FAIL_CALLS");
    if (calls_s) {
        char buf[512];
        size_t n = strlen(calls_s);
        if (n >= sizeof buf) n = sizeof buf - 1;
        memcpy(buf, calls_s, n);
        buf[n] = 0;
        for (char *tok = buf, *next; tok && *tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = 0;
            char *colon = strchr(tok, ':');
            if (colon) *colon++ = 0;
            for (int k = 0; k < K_COUNT; k++)
                if (strcmp(tok, kname[k]) == 0) cfg.err[k] = parse_errno(colon, dflt);
        }
    }
    const char *mode = getenv("FAIL_MODE");
    cfg.mode = M_ALL;
    if (mode && strncmp(mode, "nth:", 4) == 0) {
        cfg.mode = M_NTH;
        cfg.nth = strtoul(mode + 4, NULL, 10);
        if (cfg.nth == 0) cfg.nth = 1;
    } else if (mode && strncmp(mode, "random:", 7) == 0) {
        cfg.mode = M_RANDOM;
        cfg.pct = strtoul(mode + 7, NULL, 10);
    }
    const char *seed = getenv("FAIL_SEED");
    cfg.seed = seed ? strtoull(seed, NULL, 0) : 1;
    const char *after = getenv("FAIL_AFTER");
    cfg.after = after ? strtoul(after, NULL, 10) : 0;
    const char *arm = getenv("FAIL_ARM");
    if (arm && strcmp(arm, "manual") == 0) atomic_store(&armed, 0);
    const char *trace = getenv("FAIL_TRACE");
    cfg.trace = trace && *trace == '1';
    const char *log = getenv("FAIL_LOG");
    if (log) {
        size_t n = strlen(log);
        if (n < sizeof cfg.log) memcpy(cfg.log, log, n + 1);
    }
    atomic_store(&cfg_state, 2);
}

static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Counts a call of kind k; returns the errno to fail it with, or 0 to let it through. */
static int decide(int k) {
    read_config();
    if (!cfg.err[k] || !atomic_load_explicit(&armed, memory_order_relaxed)) return 0;
    unsigned long n = atomic_fetch_add(&calls[k], 1) + 1; // 1-based, armed calls only
    if (n <= cfg.after) return 0;
    unsigned long m = n - cfg.after;
    bool fail = cfg.mode == M_ALL ||
                (cfg.mode == M_NTH && m % cfg.nth == 0) ||
                (cfg.mode == M_RANDOM && mix(cfg.seed * 0x100000001b3ULL ^ (uint64_t)k << 56 ^ m) % 100 < cfg.pct);
    if (!fail) return 0;
    atomic_fetch_add(&failed[k], 1);
    if (cfg.trace) {
        void *frames[24];
        int nf = backtrace(frames, 24);
        (void)!write(2, "failshim: injected ", 19);
        (void)!write(2, kname[k], strlen(kname[k]));
        (void)!write(2, "\n", 1);
        backtrace_symbols_fd(frames, nf, 2);
    }
    return cfg.err[k];
}

// The unwinder is loaded on its first use (it allocates): here, before anything fails.
__attribute__((constructor)) static void trace_warm(void) {
    const char *trace = getenv("FAIL_TRACE");
    if (trace && *trace == '1') {
        void *frame[2];
        (void)backtrace(frame, 2);
    }
}

/* ---- the real functions ----------------------------------------------------------- */
static __thread int resolving;

static void *next_fn(const char *name, void *_Atomic *slot) {
    void *p = atomic_load_explicit(slot, memory_order_acquire);
    if (p || resolving) return p; // NULL while resolving: the caller goes raw
    resolving = 1;
    p = dlsym(RTLD_NEXT, name);
    resolving = 0;
    if (p) atomic_store_explicit(slot, p, memory_order_release);
    return p;
}

#define REAL(type, name)                                                                           \
    static void *_Atomic slot_##name;                                                              \
    type real = (type)next_fn(#name, &slot_##name)

typedef void *(*mmap_t)(void *, size_t, int, int, int, off_t);
typedef void *(*mremap_t)(void *, size_t, size_t, int, ...);
typedef int (*madvise_t)(void *, size_t, int);
typedef int (*mprotect_t)(void *, size_t, int);
typedef int (*fallocate_t)(int, int, off_t, off_t);
typedef int (*ftruncate_t)(int, off_t);
typedef int (*memfd_t)(const char *, unsigned);
typedef long (*syscall_t)(long, ...);

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    int e = decide(K_MMAP);
    if (e) {
        errno = e;
        return MAP_FAILED;
    }
    REAL(mmap_t, mmap);
    if (real) return real(addr, len, prot, flags, fd, off);
    long r = raw6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
    return r == -1 ? MAP_FAILED : (void *)r;
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    int e = decide(K_MREMAP);
    if (e) {
        errno = e;
        return MAP_FAILED;
    }
    REAL(mremap_t, mremap);
    if (real) return real(old, old_len, new_len, flags, new_addr);
    long r = raw6(SYS_mremap, (long)old, (long)old_len, (long)new_len, flags, (long)new_addr, 0);
    return r == -1 ? MAP_FAILED : (void *)r;
}

EXPORT int madvise(void *addr, size_t len, int advice) {
    int e = decide(K_MADVISE);
    if (e) {
        errno = e;
        return -1;
    }
    REAL(madvise_t, madvise);
    if (real) return real(addr, len, advice);
    return (int)raw6(SYS_madvise, (long)addr, (long)len, advice, 0, 0, 0);
}

EXPORT int mprotect(void *addr, size_t len, int prot) {
    int e = decide(K_MPROTECT);
    if (e) {
        errno = e;
        return -1;
    }
    REAL(mprotect_t, mprotect);
    if (real) return real(addr, len, prot);
    return (int)raw6(SYS_mprotect, (long)addr, (long)len, prot, 0, 0, 0);
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len) {
    int e = decide(K_FALLOCATE);
    if (e) {
        errno = e;
        return -1;
    }
    REAL(fallocate_t, fallocate);
    if (real) return real(fd, mode, off, len);
    return (int)raw6(SYS_fallocate, fd, mode, (long)off, (long)len, 0, 0);
}
EXPORT int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

EXPORT int ftruncate(int fd, off_t len) {
    int e = decide(K_FTRUNCATE);
    if (e) {
        errno = e;
        return -1;
    }
    REAL(ftruncate_t, ftruncate);
    if (real) return real(fd, len);
    return (int)raw6(SYS_ftruncate, fd, (long)len, 0, 0, 0, 0);
}
EXPORT int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

EXPORT int memfd_create(const char *name, unsigned flags) {
    int e = decide(K_MEMFD);
    if (e) {
        errno = e;
        return -1;
    }
    REAL(memfd_t, memfd_create);
    if (real) return real(name, flags);
    return (int)raw6(SYS_memfd_create, (long)name, flags, 0, 0, 0, 0);
}

/* syscall(2): the raw forms of the same calls are counted and failed alike. */
EXPORT long syscall(long n, ...) {
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e6 = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    int k = -1;
    switch (n) {
    case SYS_memfd_create: k = K_MEMFD; break;
    case SYS_mmap: k = K_MMAP; break;
    case SYS_mremap: k = K_MREMAP; break;
    case SYS_madvise: k = K_MADVISE; break;
    case SYS_mprotect: k = K_MPROTECT; break;
    case SYS_fallocate: k = K_FALLOCATE; break;
    case SYS_ftruncate: k = K_FTRUNCATE; break;
    }
    if (k >= 0) {
        int e = decide(k);
        if (e) {
            errno = e;
            return -1;
        }
    }
    REAL(syscall_t, syscall);
    if (real) return real(n, a, b, c, d, e6, f);
    return raw6(n, a, b, c, d, e6, f);
}

/* ---- control and the summary line ---------------------------------------------- */
EXPORT void failshim_arm(void);
EXPORT void failshim_disarm(void);
EXPORT unsigned long failshim_injected(void);

EXPORT void failshim_arm(void) {
    read_config();
    atomic_store(&armed, 1);
}

EXPORT void failshim_disarm(void) {
    read_config();
    atomic_store(&armed, 0);
}

EXPORT unsigned long failshim_injected(void) {
    unsigned long t = 0;
    for (int k = 0; k < K_COUNT; k++) t += atomic_load(&failed[k]);
    return t;
}

static size_t put_str(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at + 1 < cap) buf[at++] = *s++;
    buf[at] = 0;
    return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long v) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (n && at + 1 < cap) buf[at++] = tmp[--n];
    buf[at] = 0;
    return at;
}

__attribute__((constructor(101))) static void failshim_init(void) {
    read_config();
    // Look the functions up now, outside any malloc, where possible.
    static void *_Atomic pre[8];
    static const char *const names[8] = {"mmap", "mremap", "madvise", "mprotect", "fallocate",
                                         "ftruncate", "memfd_create", "syscall"};
    for (int i = 0; i < 8; i++) (void)next_fn(names[i], &pre[i]);
}

__attribute__((destructor)) static void failshim_fini(void) {
    if (!cfg.log[0]) return;
    char line[1024];
    size_t at = put_str(line, 0, sizeof line, "failshim pid=");
    at = put_num(line, at, sizeof line, (unsigned long)getpid());
    for (int k = 0; k < K_COUNT; k++) {
        if (!cfg.err[k]) continue;
        at = put_str(line, at, sizeof line, " ");
        at = put_str(line, at, sizeof line, kname[k]);
        at = put_str(line, at, sizeof line, "=");
        at = put_num(line, at, sizeof line, atomic_load(&calls[k]));
        at = put_str(line, at, sizeof line, "/");
        at = put_num(line, at, sizeof line, atomic_load(&failed[k]));
    }
    at = put_str(line, at, sizeof line, " injected=");
    at = put_num(line, at, sizeof line, failshim_injected());
    at = put_str(line, at, sizeof line, "\n");
    int saved = errno;
    int fd = (int)raw6(SYS_openat, AT_FDCWD, (long)cfg.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644, 0, 0);
    if (fd >= 0) {
        (void)raw6(SYS_write, fd, (long)line, (long)at, 0, 0, 0);
        (void)raw6(SYS_close, fd, 0, 0, 0, 0, 0);
    }
    errno = saved;
}
