// test_no_memfd.c - when memfd_create is refused (seccomp, old kernels) the allocator
// still works, on private anonymous memory, including across fork.
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "harness.h"
#include "alloc.h"
#include "thread_heap.h"

// Makes memfd_create fail with ENOSYS for this process, as a sandbox would.
static int deny_memfd(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_create, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void works_without_memfd(void) {
    CHECK(deny_memfd() == 0);
    char *small[1000], *large = mh_malloc(5 << 20);
    for (int i = 0; i < 1000; i++) {
        small[i] = mh_malloc(40 + i);
        memset(small[i], i & 0xff, 40 + i);
    }
    memset(large, 9, 5 << 20);
    mh_arena_stats_t st;
    mh_arena_stats(&st);
    CHECK(!st.memfd);
    pid_t pid = fork();
    if (pid == 0) {
        small[0][0] = 'c';
        _exit(large[12345] == 9 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(small[0][0] == 0);
    for (int i = 0; i < 1000; i++) {
        CHECK((unsigned char)small[i][39 + i] == (i & 0xff));
        mh_free(small[i], "free");
    }
    mh_free(large, "free");
    mh_arena_purge_all(); // releasing private pages works too
}

TEST_MAIN(T(works_without_memfd))
