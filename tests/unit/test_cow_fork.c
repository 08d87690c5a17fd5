// test_cow_fork.c - copy-on-write fork (arena_fork.c): after a fork both processes
// see their own heap; spans left copy-on-write are stale until migration moves them
// back onto the process's own heap file, after which nothing is lost (contents, zeroed
// pages for calloc, the file's size) and the heap can be meshed again; forks during
// migration and forks of forks work.
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "arena.h"
#include "harness.h"
#include "mesh.h"
#include "mesh_sched.h"
#include "options.h"
#include "thread_heap.h"

enum { N = 20000, BIG = 3 << 20 };
static unsigned char *objs[N];
static unsigned char *big;

static unsigned char pattern(int i, int k, int gen) { return (unsigned char)(i * 7 + k + gen * 13); }

static void stamp(int gen) {
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 48; k++) objs[i][k] = pattern(i, k, gen);
    for (size_t k = 0; k < BIG; k += 4096) big[k] = pattern((int)(k >> 12), 0, gen);
}

static int count_bad(int gen) {
    int bad = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 48; k++) bad += objs[i][k] != pattern(i, k, gen);
    for (size_t k = 0; k < BIG; k += 4096) bad += big[k] != pattern((int)(k >> 12), 0, gen);
    return bad;
}

static uint64_t file_bytes(void) {
    mh_arena_stats_t st;
    mh_arena_stats(&st);
    return st.file_bytes;
}

// Runs every migration step there is (what malloc_trim does first).
static void migrate_all(void) {
    mh_mesh_migrate_all();
    mh_arena_purge_all();
}

static int zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void setup(void) {
    mh_opt[MH_OPT_period_ms] = 0; // migration and meshing only when asked
    for (int i = 0; i < N; i++) objs[i] = mh_malloc(48);
    big = mh_malloc(BIG);
    stamp(1);
    CHECK(!mh_arena_migration_pending());
}

static void isolation_and_migration(void) {
    pid_t pid = fork();
    if (pid == 0) {
        int bad = count_bad(1);
        bad += !mh_arena_migration_pending();
        stamp(2); // the parent must not see this
        migrate_all();
        bad += mh_arena_migration_pending();
        bad += count_bad(2);
        _exit(bad ? 1 : 0);
    }
    CHECK(mh_arena_migration_pending());
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(count_bad(1), 0);
    stamp(3);
    migrate_all();
    CHECK(!mh_arena_migration_pending());
    mh_mesh_stats_t st;
    mh_mesh_stats(&st);
    CHECK(st.migrated >= BIG);
    CHECK_EQ(count_bad(3), 0);
}

// Memory freed before a fork is stale after it; calloc must still get zeros, in both
// processes, before and after migration.
static void calloc_zero_on_stale_runs(void) {
    enum { M = 64 };
    void *blocks[M];
    for (int i = 0; i < M; i++) {
        blocks[i] = mh_malloc(256 << 10);
        memset(blocks[i], 0xAB, 256 << 10);
    }
    for (int i = 0; i < M; i++) mh_free(blocks[i], "free");
    pid_t pid = fork();
    int bad = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < M; i++) {
            blocks[i] = mh_alloc_zeroed(1, 256 << 10);
            bad += !blocks[i] || !zero(blocks[i], 256 << 10);
            memset(blocks[i], 0xCD, 256 << 10);
        }
        for (int i = 0; i < M; i++) mh_free(blocks[i], "free");
        migrate_all();
    }
    if (pid == 0) _exit(bad ? 1 : 0);
    CHECK_EQ(bad, 0);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// A fork while the previous fork's migration is half done, and a fork in the child.
static void forks_during_migration(void) {
    stamp(4);
    pid_t first = fork();
    if (first == 0) _exit(count_bad(4) ? 1 : 0);
    // One bounded step: part of the heap is migrated, part is still copy-on-write.
    mh_opt[MH_OPT_period_ms] = 1;
    for (int i = 0; i < 200; i++) mh_free(mh_malloc(16), "free");
    mh_opt[MH_OPT_period_ms] = 0;
    pid_t second = fork();
    if (second == 0) {
        int bad = count_bad(4);
        stamp(5);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            int gbad = count_bad(5);
            stamp(6);
            migrate_all();
            _exit(gbad + count_bad(6) ? 1 : 0);
        }
        int st;
        waitpid(grandchild, &st, 0);
        bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        migrate_all();
        bad += count_bad(5);
        _exit(bad ? 1 : 0);
    }
    int status;
    waitpid(first, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    waitpid(second, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(count_bad(4), 0);
    migrate_all();
    CHECK(!mh_arena_migration_pending());
    CHECK_EQ(count_bad(4), 0);
}

// After the child is gone and migration is over, the heap file holds about what it
// held before the fork (nothing was duplicated for good).
static void file_size_returns(void) {
    migrate_all();
    uint64_t before = file_bytes();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status;
    waitpid(pid, &status, 0);
    stamp(7);
    migrate_all();
    uint64_t after = file_bytes();
    printf("  heap file %llu KiB before the fork, %llu KiB after migration\n",
           (unsigned long long)(before >> 10), (unsigned long long)(after >> 10));
    CHECK(after <= before + before / 20 + (1 << 20));
    CHECK_EQ(count_bad(7), 0);
}

TEST_MAIN({"setup", setup}, {"isolation_and_migration", isolation_and_migration},
          {"calloc_zero_on_stale_runs", calloc_zero_on_stale_runs},
          {"forks_during_migration", forks_during_migration},
          {"file_size_returns", file_size_returns})
