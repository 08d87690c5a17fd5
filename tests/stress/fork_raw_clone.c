// fork_raw_clone.c - children made without fork handlers: a raw clone system call
// and _Fork(). Their heap must still be their own: once the child has entered the
// allocator, its writes to objects it inherited must not show in the parent, and it
// can allocate and free. (What a child writes before its first allocation is out of
// reach: POSIX limits such children to async-signal-safe calls.)
// With RAW_CLONE_LATE_FILE=1 the heap starts on private memory (run it with a large
// MESH_FILE_FROM_MIB) and takes its file only when mesh.compact asks, after the
// objects exist: the fork canary, made with the file, must be there by then.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t _Fork(void);

enum { N = 20000, ROUNDS = 20 };
static char *objs[N];

static int child_body(int go_fd) {
    char go;
    if (read(go_fd, &go, 1) != 1) return 3;
    void *volatile first = malloc(100); // the first allocator entry in the child
    free(first);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += objs[i][5] != 'p';
    for (int i = 0; i < N; i++) memset(objs[i], 'c', 40);
    for (int i = 0; i < 50000; i++) {
        char *volatile q = malloc(16 + i % 2000);
        q[0] = 1;
        free(q);
    }
    return bad ? 1 : 0;
}

static int run(int use_fork_call) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pid = use_fork_call ? _Fork() : (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(child_body(fds[0]));
    if (pid < 0) {
        perror("fork_raw_clone: clone");
        return 1;
    }
    if (write(fds[1], "g", 1) != 1) return 1;
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    close(fds[1]);
    int leaked = 0;
    for (int i = 0; i < N; i++) leaked += objs[i][7] != 'p';
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || leaked) {
        fprintf(stderr, "fork_raw_clone: %s child status %d, %d parent objects changed by it\n",
                use_fork_call ? "_Fork" : "clone", status, leaked);
        return 1;
    }
    return 0;
}

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

// mesh.compact takes the heap file whatever the heap's size; true once it holds it.
static int take_file_late(void) {
    mallctl_fn ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    size_t released, memfd = 0, len = sizeof released;
    if (!ctl || ctl("mesh.compact", &released, &len, NULL, 0) != 0) return 0;
    len = sizeof memfd;
    return ctl("stats.memfd_bytes", &memfd, &len, NULL, 0) == 0 && memfd > 0;
}

int main(void) {
    for (int i = 0; i < N; i++) {
        objs[i] = malloc(40);
        memset(objs[i], 'p', 40);
    }
    const char *late = getenv("RAW_CLONE_LATE_FILE");
    if (late && *late == '1' && !take_file_late()) {
        fprintf(stderr, "fork_raw_clone: the heap did not take its file at mesh.compact\n");
        return 1;
    }
    int failed = 0;
    for (int r = 0; r < ROUNDS; r++) failed += run(r & 1);
    if (failed) return 1;
    printf("fork_raw_clone: %d raw clone and _Fork children, parent intact\n", ROUNDS);
    return 0;
}
