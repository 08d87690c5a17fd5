/*
 * seccomp-run.c - runs a program with chosen system calls failing from its first
 * instruction on: every call, in every thread and child (a seccomp filter returning
 * SECCOMP_RET_ERRNO; see seccomp_fail.h).
 *
 * usage: seccomp-run CALLS ERRNO PROGRAM [ARG...]
 *   CALLS  comma-separated: memfd_create, mremap, madvise, fallocate, ftruncate, ...
 *          (mmap and mprotect fail the dynamic loader itself; fail those after
 *          start-up with driver --seccomp instead)
 *   ERRNO  ENOMEM, EPERM, ENOSYS, ... or a number
 * Exit: the program's status; 125 when the filter cannot be installed, 127 when exec
 * fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "seccomp_fail.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: seccomp-run CALLS ERRNO PROGRAM [ARG...]\n");
        return 125;
    }
    int rc = seccomp_fail_install(argv[1], seccomp_fail_errno(argv[2], ENOMEM));
    if (rc != 0) {
        fprintf(stderr, "seccomp-run: cannot install the filter for '%s': %s\n", argv[1], strerror(rc));
        return 125;
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "seccomp-run: cannot run %s: %s\n", argv[3], strerror(errno));
    return 127;
}
