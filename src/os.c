// os.c - system-call layer (see os.h). All syscalls that change the address space or
// the arena file live here so the policy modules stay testable and readable.
//
// Layer 1 (platform).
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif
#ifndef MADV_REMOVE
#define MADV_REMOVE 9
#endif

// Runs a libc call that reports failure through errno, returning errno (0 on success)
// and leaving the program's errno untouched.
#define OS_CALL(expr)                                                                              \
    ({                                                                                             \
        int saved_ = errno, rc_ = 0;                                                               \
        if ((expr) < 0) rc_ = errno ? errno : EIO;                                                 \
        errno = saved_;                                                                            \
        rc_;                                                                                       \
    })

// The memfd goes above the descriptors programs usually manage themselves; half the
// soft limit, capped, so a program raising its own limit later is not crowded.
static int high_fd_floor(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 64) return 3;
    rlim_t floor = rl.rlim_cur / 2;
    return (int)(floor > 512 ? 512 : floor);
}

int mh_os_memfd_create(int *fd_out) {
    int saved = errno;
    long fd = syscall(SYS_memfd_create, "libmesh_arena", MFD_CLOEXEC);
    if (fd < 0) {
        int rc = errno;
        errno = saved;
        return rc;
    }
    int high = fcntl((int)fd, F_DUPFD_CLOEXEC, high_fd_floor());
    if (high >= 0) {
        close((int)fd);
        fd = high;
    }
    errno = saved;
    *fd_out = (int)fd;
    return 0;
}

// RLIMIT_FSIZE applies to the heap file as to any other: growing a file past it, or
// writing past it, would raise SIGXFSZ, which kills a program that does not expect it.
// So both are refused here first (EFBIG), and the caller falls back to private memory.
static bool past_fsize_limit(uint64_t end) {
    struct rlimit rl;
    return getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && end > rl.rlim_cur;
}

int mh_os_ftruncate(int fd, uint64_t size) {
    if (past_fsize_limit(size)) return EFBIG;
    return OS_CALL(ftruncate(fd, (off_t)size));
}

// fstat as a raw system call: libmesh exports an fstat of its own (wrap_io.c), and the
// heap's own bookkeeping must not go through the program-facing wrapper (its first
// use looks the next definition up with dlsym, possibly in the middle of a malloc).
static int raw_fstat(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }

int mh_os_file_id(int fd, uint64_t *dev, uint64_t *ino) {
    struct stat st;
    int rc = OS_CALL(raw_fstat(fd, &st));
    if (rc == 0) {
        *dev = st.st_dev;
        *ino = st.st_ino;
    }
    return rc;
}

int mh_os_close(int fd) { return OS_CALL(close(fd)); }

int mh_os_stat_fd(int fd, struct stat *st) { return OS_CALL(raw_fstat(fd, st)); }

int mh_os_file_blocks(int fd, uint64_t *bytes) {
    struct stat st;
    int rc = OS_CALL(raw_fstat(fd, &st));
    if (rc == 0) *bytes = (uint64_t)st.st_blocks * 512;
    return rc;
}

int mh_os_write_at(int fd, const void *buf, size_t len, uint64_t off) {
    if (past_fsize_limit(off + len)) return EFBIG;
    int saved = errno, rc = 0;
    while (len > 0) {
        ssize_t w = pwrite(fd, buf, len, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = w < 0 ? errno : EIO;
            break;
        }
        buf = (const char *)buf + w, len -= (size_t)w, off += (uint64_t)w;
    }
    errno = saved;
    return rc;
}

int mh_os_read_at(int fd, void *buf, size_t len, uint64_t off) {
    int saved = errno, rc = 0;
    while (len) {
        ssize_t n = syscall(SYS_pread64, fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? errno : EIO;
            break;
        }
        buf = (char *)buf + n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    errno = saved;
    return rc;
}

size_t mh_os_read_upto(int fd, void *buf, size_t n) {
    int saved = errno;
    size_t got = 0;
    while (got < n) {
        long r = syscall(SYS_read, fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    errno = saved;
    return got;
}

long mh_os_read_file(const char *path, char *buf, size_t n) {
    int saved = errno;
    long got = -1;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        got = syscall(SYS_read, fd, buf, n - 1);
        syscall(SYS_close, fd);
    }
    buf[got > 0 ? got : 0] = 0;
    errno = saved;
    return got;
}

int mh_os_seek_data(int fd, uint64_t off, uint64_t *data, uint64_t *hole) {
    int saved = errno, rc = 0;
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    off_t h = d < 0 ? -1 : lseek(fd, d, SEEK_HOLE);
    if (d < 0 || h < 0) rc = errno;
    else *data = (uint64_t)d, *hole = (uint64_t)h;
    errno = saved;
    return rc;
}

int mh_os_open_pagemap(void) {
    int saved = errno;
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    errno = saved;
    return fd;
}

// Every mapping of the heap carries MADV_NOHUGEPAGE: a huge page under a span would
// defeat meshing at 4 KiB, and a mapping whose flags differ from its neighbours' is a
// VMA of its own even where its file offsets continue theirs (arena.c counts VMAs on
// the rule that they merge).
int mh_os_map_file(void *addr, size_t len, int fd, uint64_t off, void **out) {
    int saved = errno;
    int flags = MAP_SHARED | MAP_NORESERVE | (addr ? MAP_FIXED : 0);
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE, flags, fd, (off_t)off);
    int rc = p == MAP_FAILED ? errno : 0;
    if (rc == 0) madvise(p, len, MADV_NOHUGEPAGE);
    errno = saved;
    if (rc == 0) *out = p;
    return rc;
}

int mh_os_map_anon(size_t len, void **out) {
    int saved = errno;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    int rc = p == MAP_FAILED ? errno : 0;
    errno = saved;
    if (rc == 0) *out = p;
    return rc;
}

int mh_os_map_private(void *addr, size_t len, int fd, uint64_t off) {
    int saved = errno;
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd,
                   (off_t)off);
    int rc = p == MAP_FAILED ? errno : 0;
    if (rc == 0) madvise(p, len, MADV_NOHUGEPAGE);
    errno = saved;
    return rc;
}

int mh_os_detach_pages(void *addr, size_t len, void **out) {
    int saved = errno;
    // A destination with the same offset within 2 MiB lets the kernel move whole
    // page-table pages instead of single entries.
    size_t pmd = (size_t)2 << 20;
    void *area = mmap(NULL, len + pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    int rc = 0;
    if (area == MAP_FAILED) {
        rc = errno;
    } else {
        uintptr_t a = (uintptr_t)area, want = (a & ~(pmd - 1)) + ((uintptr_t)addr & (pmd - 1));
        if (want < a) want += pmd;
        void *p = mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, (void *)want);
        if (p == MAP_FAILED) {
            rc = errno;
            munmap(area, len + pmd);
        } else {
            if (want > a) munmap(area, want - a); // the reservation around the moved pages
            if (a + len + pmd > want + len) munmap((void *)(want + len), a + len + pmd - (want + len));
            madvise(p, len, MADV_DONTFORK);
            *out = p;
        }
    }
    errno = saved;
    return rc;
}

int mh_os_map_anon_at(void *addr, size_t len) {
    int saved = errno;
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    int rc = p == MAP_FAILED ? errno : 0;
    if (rc == 0) madvise(p, len, MADV_NOHUGEPAGE);
    errno = saved;
    return rc;
}

int mh_os_unmap(void *addr, size_t len) { return OS_CALL(munmap(addr, len)); }

int mh_os_punch(int fd, uint64_t off, uint64_t len) {
    return OS_CALL(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len));
}

int mh_os_protect(void *addr, size_t len, bool read_only) {
    return OS_CALL(mprotect(addr, len, read_only ? PROT_READ : PROT_READ | PROT_WRITE));
}

int mh_os_release(void *addr, size_t len, bool shared) {
    return OS_CALL(madvise(addr, len, shared ? MADV_REMOVE : MADV_DONTNEED));
}

void mh_os_populate(void *addr, size_t len) { (void)OS_CALL(madvise(addr, len, MADV_POPULATE_READ)); }

int mh_os_wipe_on_fork(void *addr, size_t len) { return OS_CALL(madvise(addr, len, MADV_WIPEONFORK)); }

void mh_os_no_huge_pages(void *addr, size_t len) { (void)OS_CALL(madvise(addr, len, MADV_NOHUGEPAGE)); }

void mh_os_dump(void *addr, size_t len, bool include) {
    (void)OS_CALL(madvise(addr, len, include ? MADV_DODUMP : MADV_DONTDUMP));
}

int mh_os_move(void *from, size_t len, void *to) {
    int saved = errno;
    void *p = mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    int rc = p == MAP_FAILED ? errno : 0;
    errno = saved;
    return rc;
}

int mh_os_read_data(int fd, uint64_t off, size_t len, void *dst) {
    int saved = errno, rc = 0;
    uint64_t end = off + len, pos = off;
    while (pos < end && rc == 0) {
        off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
        if (data < 0 || (uint64_t)data >= end) break; // ENXIO: only holes remain
        off_t hole = lseek(fd, data, SEEK_HOLE);
        uint64_t stop = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
        rc = mh_os_read_at(fd, (char *)dst + ((uint64_t)data - off), stop - (uint64_t)data, (uint64_t)data);
        pos = stop;
    }
    errno = saved;
    return rc;
}

// Copies one data extent, with copy_file_range where the kernel supports it between
// these files and pread/pwrite through a stack buffer otherwise.
static int copy_extent(int from, int to, uint64_t off, uint64_t len) {
    loff_t in = (loff_t)off, outo = (loff_t)off;
    while (len > 0) {
        ssize_t n = copy_file_range(from, &in, to, &outo, len, 0);
        if (n > 0) {
            len -= (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    char buf[16384];
    while (len > 0) {
        size_t want = len < sizeof buf ? (size_t)len : sizeof buf;
        ssize_t r = syscall(SYS_pread64, from, buf, want, in);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? EIO : errno;
        ssize_t w = pwrite(to, buf, (size_t)r, outo);
        if (w < 0 && errno == EINTR) continue;
        if (w != r) return w < 0 ? errno : EIO;
        in += r, outo += r, len -= (uint64_t)r;
    }
    return 0;
}

int mh_os_copy_data(int from, int to, uint64_t off, uint64_t len) {
    if (past_fsize_limit(off + len)) return EFBIG;
    int saved = errno, rc = 0;
    uint64_t end = off + len, pos = off;
    while (pos < end) {
        off_t data = lseek(from, (off_t)pos, SEEK_DATA);
        if (data < 0 || (uint64_t)data >= end) break; // ENXIO: only holes remain
        off_t hole = lseek(from, data, SEEK_HOLE);
        uint64_t stop = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
        rc = copy_extent(from, to, (uint64_t)data, stop - (uint64_t)data);
        if (rc) break;
        pos = stop;
    }
    errno = saved;
    return rc;
}

// Parses the hexadecimal start address that begins a maps line.
static uintptr_t maps_line_start(const char *p, size_t n) {
    uintptr_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) break;
        v = v << 4 | (uintptr_t)d;
    }
    return v;
}

int mh_os_count_maps(const uintptr_t *lo, const uintptr_t *hi, unsigned n, size_t *inside, size_t *total) {
    int saved = errno;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = errno;
        errno = saved;
        return rc;
    }
    char buf[2048], head[20]; // head: the start of the line being read
    size_t hn = 0;
    bool at_line_start = true;
    *inside = *total = 0;
    for (;;) {
        long got = syscall(SYS_read, fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (long i = 0; i < got; i++) {
            if (at_line_start) hn = 0, at_line_start = false;
            if (buf[i] == '\n') {
                uintptr_t a = maps_line_start(head, hn);
                for (unsigned k = 0; k < n; k++)
                    if (a >= lo[k] && a < hi[k]) {
                        ++*inside;
                        break;
                    }
                ++*total;
                at_line_start = true;
            } else if (hn < sizeof head) {
                head[hn++] = buf[i];
            }
        }
    }
    syscall(SYS_close, fd);
    errno = saved;
    return 0;
}

void mh_os_exit(int status) {
    for (;;) syscall(SYS_exit_group, status);
}

uint64_t mh_os_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void mh_os_random(void *buf, size_t n) {
    int saved = errno;
    long got = syscall(SYS_getrandom, buf, n, 1 /* GRND_NONBLOCK */);
    if (got != (long)n) {
        // Early boot or a seccomp filter: mix clocks, pid and an address. Randomness
        // here spreads objects for meshing; it is not a security boundary.
        uint64_t x = mh_os_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)buf;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ((unsigned char *)buf)[i] = (unsigned char)(x >> 24);
        }
    }
    errno = saved;
}

int mh_os_page_size(void) { return (int)getauxval(AT_PAGESZ); }
