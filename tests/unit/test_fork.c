// test_fork.c - after fork, parent and child never see each other's heap writes, the
// child can allocate and free (also objects of threads that did not survive the fork),
// and threads allocating during the fork do not break either side.
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "alloc.h"
#include "thread_heap.h"

enum { N = 5000 };
static char *objs[N];
static atomic_int stop;

static void *allocator_thread(void *arg) {
    (void)arg;
    void *keep[64] = {0};
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        unsigned k = i % 64;
        if (keep[k]) mh_free(keep[k], "free");
        keep[k] = mh_malloc(16 + (i * 37) % 3000);
        memset(keep[k], 1, 16);
    }
    for (unsigned k = 0; k < 64; k++) mh_free(keep[k], "free");
    return NULL;
}

static int child_checks(void) {
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (objs[i][0] != 'p' || objs[i][1] != (char)i) bad++;
    for (int i = 0; i < N; i++) objs[i][0] = 'c'; // must not reach the parent
    for (int i = 0; i < N; i += 2) mh_free(objs[i], "free");
    for (int i = 0; i < 20000; i++) mh_free(mh_malloc(16 + i % 5000), "free");
    return bad;
}

static void isolation_under_load(void) {
    for (int i = 0; i < N; i++) {
        objs[i] = mh_malloc(32 + (i % 7) * 100);
        objs[i][0] = 'p';
        objs[i][1] = (char)i;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, allocator_thread, NULL);
    for (int round = 0; round < 20; round++) {
        int pipefd[2];
        CHECK(pipe(pipefd) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            char go;
            close(pipefd[1]);
            if (read(pipefd[0], &go, 1) != 1) _exit(3);
            // The parent has written 'P' by now: the child must still see 'p'.
            _exit(child_checks() ? 1 : 0);
        }
        close(pipefd[0]);
        for (int i = 0; i < N; i++) objs[i][0] = 'P';
        CHECK(write(pipefd[1], "g", 1) == 1);
        close(pipefd[1]);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        int seen_child = 0;
        for (int i = 0; i < N; i++) {
            seen_child += objs[i][0] == 'c';
            objs[i][0] = 'p';
        }
        CHECK_EQ(seen_child, 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

TEST_MAIN(T(isolation_under_load))
