/* badptr.c - the system calls libmesh wraps, given bad pointers where the kernel
 * would answer EFAULT. Under libmesh, with its fault handler installed (mesh.compact
 * first) and the good buffers in heap objects of meshed classes (so the wrappers take
 * their bouncing paths), each call must fail with EFAULT as without libmesh - not
 * crash inside the wrapper - and a datagram or connection that a failed copy-back
 * throws away is thrown away the same way.
 * stdout: one line per call, "NAME: rc ERRNO-NAME"; the test compares the output
 * under libmesh with the output without it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)(unsigned long)0x10)

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static void show(const char *name, long rc) {
    printf("%s: %ld %s\n", name, rc, rc < 0 ? (errno == EFAULT ? "EFAULT" : strerror(errno)) : "ok");
    fflush(stdout);
}

int main(void) {
    mallctl_fn ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    void *warm[64];
    for (int i = 0; i < 64; i++) warm[i] = malloc(64);
    for (int i = 0; i < 64; i += 2) free(warm[i]);
    if (ctl) ctl("mesh.compact", NULL, NULL, NULL, 0); /* installs the fault handler */

    char *buf = malloc(256); /* a meshed class: the wrappers bounce into it */
    int dg[2], st[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg);
    socketpair(AF_UNIX, SOCK_STREAM, 0, st);

    write(st[1], "x", 1);
    show("readv, bad iovec array", readv(st[0], BAD, 2));
    struct iovec *iov = malloc(2 * sizeof *iov);
    iov[0] = (struct iovec){buf, 8};
    iov[1] = (struct iovec){BAD, 8};
    show("readv, second buffer bad", readv(st[0], iov, 2));
    show("preadv, bad iovec array", preadv(st[0], BAD, 2, 0));

    show("recvmsg, bad msghdr", recvmsg(dg[0], BAD, MSG_DONTWAIT));
    send(dg[1], "datagram", 8, 0);
    socklen_t *len = malloc(sizeof *len);
    *len = sizeof(struct sockaddr_un);
    show("recvfrom, bad address buffer", recvfrom(dg[0], buf, 64, MSG_DONTWAIT, BAD, len));
    show("recv after it (the datagram is gone)", recv(dg[0], buf, 64, MSG_DONTWAIT));
    send(dg[1], "datagram", 8, 0);
    show("recvfrom, bad length", recvfrom(dg[0], buf, 64, MSG_DONTWAIT, (struct sockaddr *)buf, BAD));
    show("recvmmsg, bad vector", recvmmsg(dg[0], BAD, 1, MSG_DONTWAIT, NULL));

    fd_set *set = malloc(sizeof *set);
    FD_ZERO(set);
    FD_SET(st[1], set);
    struct timeval tv = {0, 0};
    show("select, bad read set", select(st[1] + 1, BAD, set, NULL, &tv));
    show("poll, bad array", poll(BAD, 1, 0));

    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int *status = malloc(sizeof *status);
    show("wait4, bad rusage", wait4(pid, status, 0, BAD));
    show("waitpid after it (the child is reaped)", waitpid(pid, status, WNOHANG));

    printf("done\n");
    return 0;
}
