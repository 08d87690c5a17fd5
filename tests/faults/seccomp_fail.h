/*
 * seccomp_fail.h - a seccomp filter that makes chosen system calls fail with an errno
 * (SECCOMP_RET_ERRNO), every call from the moment it is installed, in every thread
 * (SECCOMP_FILTER_FLAG_TSYNC) and in every child. Shared by seccomp-run.c (installs
 * it, then execs a program) and driver.c (installs it after its start-up).
 *
 * seccomp_fail_install("memfd_create,fallocate", ENOMEM): 0, or an errno value; an
 * unknown name is EINVAL. The filter never allocates and needs no library.
 */
#ifndef SECCOMP_FAIL_H
#define SECCOMP_FAIL_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SECCOMP_FAIL_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_FAIL_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp_fail.h: add this architecture's AUDIT_ARCH value"
#endif

static const struct {
    const char *name;
    int nr;
} seccomp_fail_table[] = {
    {"memfd_create", SYS_memfd_create}, {"mmap", SYS_mmap},           {"mremap", SYS_mremap},
    {"madvise", SYS_madvise},           {"mprotect", SYS_mprotect},   {"fallocate", SYS_fallocate},
    {"ftruncate", SYS_ftruncate},       {"pwrite64", SYS_pwrite64},   {"copy_file_range", SYS_copy_file_range},
    {"munmap", SYS_munmap},
};

#define SECCOMP_FAIL_MAX 16

/* The errno a name ("ENOMEM") or number stands for; dflt for NULL or unknown. */
static inline int seccomp_fail_errno(const char *s, int dflt) {
    static const struct { const char *name; int val; } tab[] = {
        {"ENOMEM", ENOMEM}, {"EAGAIN", EAGAIN}, {"EPERM", EPERM},   {"EACCES", EACCES},
        {"ENOSPC", ENOSPC}, {"EFBIG", EFBIG},   {"EINVAL", EINVAL}, {"EMFILE", EMFILE},
        {"ENFILE", ENFILE}, {"ENOSYS", ENOSYS}, {"EIO", EIO},       {"EOPNOTSUPP", EOPNOTSUPP},
    };
    if (!s || !*s) return dflt;
    if (*s >= '0' && *s <= '9') {
        int v = 0;
        for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (*s - '0');
        return v > 0 && v < 4096 ? v : dflt;
    }
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i].name, s) == 0) return tab[i].val;
    return dflt;
}

static inline int seccomp_fail_install(const char *names, int err) {
    int nrs[SECCOMP_FAIL_MAX];
    unsigned n = 0;
    const char *p = names;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = -1;
        for (size_t i = 0; i < sizeof seccomp_fail_table / sizeof seccomp_fail_table[0]; i++)
            if (strlen(seccomp_fail_table[i].name) == len && strncmp(seccomp_fail_table[i].name, p, len) == 0)
                found = seccomp_fail_table[i].nr;
        if (found < 0 || n == SECCOMP_FAIL_MAX) return EINVAL;
        nrs[n++] = found;
        p = end ? end + 1 : NULL;
    }
    /* arch check, load nr, one JEQ per call (to the ERRNO return), allow */
    struct sock_filter f[4 + SECCOMP_FAIL_MAX + 2];
    unsigned k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_FAIL_ARCH, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (unsigned i = 0; i < n; i++) /* match: jump over the rest and the ALLOW */
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[i], (unsigned char)(n - i), 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA));
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) return errno;
    return 0;
}

#endif
