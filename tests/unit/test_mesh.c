// test_mesh.c - meshing: a pass finds pairs, every byte of every live object survives,
// the source's physical pages are released, aliases share pages with their leader,
// frees through aliases work and release the aliases, chains grow, the VMA budget
// holds, and a forked child sees the meshed heap intact.
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "freephys.h"
#include "harness.h"
#include "mesh.h"
#include "mesh_sched.h"
#include "options.h"
#include "alloc.h"
#include "thread_heap.h"

enum { N = 40000, SIZE = 64 };
static char *objs[N];
static int live[N];

static void fill(int i) {
    for (int k = 0; k < SIZE; k++) objs[i][k] = (char)(i * 31 + k);
}

static int intact(int i) {
    for (int k = 0; k < SIZE; k++)
        if (objs[i][k] != (char)(i * 31 + k)) return 0;
    return 1;
}

// A worker allocates N objects and frees ~85% at random, then exits: its spans end up
// detached and partly full - the fragmented heap meshing is for.
static void *fragment(void *arg) {
    (void)arg;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        objs[i] = mh_malloc(SIZE);
        fill(i);
        live[i] = 1;
    }
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 100 < 85) {
            mh_free(objs[i], "free");
            live[i] = 0;
        }
    }
    return NULL;
}

static void *free_all(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++)
        if (live[i]) {
            mh_free(objs[i], "free");
            live[i] = 0;
        }
    return NULL;
}

// Frees run on threads that then exit: a thread caches what it frees (also one that
// never allocates), and its exit returns the cache to the spans.
static void *free_every_third(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i += 3)
        if (live[i]) {
            mh_free(objs[i], "free");
            live[i] = 0;
        }
    return NULL;
}

static void *free_aliased(void *arg) { // what lives through aliases
    (void)arg;
    for (int i = 0; i < N; i++)
        if (live[i] && mh_dir_lookup(objs[i])->kind == MH_KIND_ALIAS) {
            mh_free(objs[i], "free");
            live[i] = 0;
        }
    return NULL;
}

static void run_thread(void *(*fn)(void *)) {
    pthread_t t;
    pthread_create(&t, NULL, fn, NULL);
    pthread_join(t, NULL);
}

static int count_bad(void) {
    int bad = 0;
    for (int i = 0; i < N; i++) bad += live[i] && !intact(i);
    return bad;
}

static unsigned cls_of_size(void) { return mh_size_to_class(SIZE); }

static void mesh_preserves_and_releases(void) {
    mh_opt[MH_OPT_period_ms] = 0; // only explicit passes in this test
    run_thread(fragment);
    mh_arena_stats_t before, after;
    mh_arena_purge_all();
    mh_arena_stats(&before);
    size_t pairs = 0; // a pass stops after 1 ms: on a loaded machine it takes several
    for (int i = 0; i < 10 && pairs <= 50; i++) pairs += mh_mesh_class(cls_of_size());
    mh_arena_stats(&after);
    printf("  meshed %zu pairs; heap file %zu -> %zu bytes\n", pairs, before.file_bytes, after.file_bytes);
    CHECK(pairs > 50);
    CHECK_EQ(count_bad(), 0);
    CHECK(after.file_bytes + pairs * 4096 / 2 <= before.file_bytes); // sources punched
    int aliased = 0;
    for (int i = 0; i < N && !aliased; i++) {
        if (!live[i]) continue;
        mh_span_t *s = mh_dir_lookup(objs[i]);
        if (s->kind != MH_KIND_ALIAS) continue;
        aliased = 1;
        // The alias and its leader are one physical page: a write shows through both.
        char *twin = (char *)s->leader->start + (objs[i] - (char *)s->start);
        objs[i][3] = 0x5a;
        CHECK(twin[3] == 0x5a);
        fill(i);
        CHECK_EQ(mh_usable_size(objs[i]), SIZE);
    }
    CHECK(aliased);
}

static void chains_grow(void) {
    mh_mesh_stats_t st0, st1;
    mh_mesh_stats(&st0);
    size_t more = 0;
    for (int round = 0; round < 4; round++) more += mh_mesh_class(cls_of_size());
    mh_mesh_stats(&st1);
    int longest = 0;
    for (int i = 0; i < N; i++) {
        if (!live[i]) continue;
        mh_span_t *s = mh_dir_lookup(objs[i]);
        mh_span_t *leader = s->kind == MH_KIND_ALIAS ? s->leader : s;
        if ((int)leader->naliases > longest) longest = (int)leader->naliases;
    }
    printf("  %zu more pairs, longest chain %d aliases\n", more, longest);
    CHECK(more > 0);
    CHECK(longest >= 2);
    CHECK_EQ(count_bad(), 0);
}

static void fork_sees_meshed_heap(void) {
    pid_t pid = fork();
    if (pid == 0) {
        int bad = count_bad();
        for (int i = 0; i < N; i += 2) // free through aliases and leaders in the child
            if (live[i]) {
                mh_free(objs[i], "free");
                live[i] = 0;
            }
        for (int i = 0; i < 5000; i++) mh_free(mh_malloc(SIZE), "free");
        bad += count_bad();
        _exit(bad ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(count_bad(), 0);
}

// After the fork above the parent's meshed spans stayed on the frozen heap file;
// migration moves leaders and aliases together onto the current file, every object
// stays intact (also written through aliases meanwhile), and meshing works again.
static void migration_keeps_meshed_spans(void) {
    CHECK(mh_arena_migration_pending());
    mh_mesh_stats_t before, after;
    mh_mesh_stats(&before);
    for (int i = 1; i < N; i += 2) // writes through leaders and aliases
        if (live[i]) fill(i);
    mh_mesh_migrate_all();
    CHECK(!mh_arena_migration_pending());
    mh_mesh_stats(&after);
    CHECK(after.migrated > before.migrated);
    CHECK_EQ(after.aliases, before.aliases);
    CHECK_EQ(count_bad(), 0);
    run_thread(free_every_third); // frees through aliases after migration
    size_t pairs = mh_mesh_class(cls_of_size());
    printf("  %zu pairs meshed after migration\n", pairs);
    CHECK(pairs > 0);
    CHECK_EQ(count_bad(), 0);
}

// Leaders a fork left on the file it froze, whose aliases go away before they are
// migrated, must still be private to each process at the next fork (they were once
// mapped shared on a file nothing maps privately).
static void former_leaders_stay_private(void) {
    run_thread(free_all);
    run_thread(fragment);
    size_t pairs = 0;
    for (int i = 0; i < 20 && pairs < 20; i++) pairs += mh_mesh_class(cls_of_size());
    CHECK(pairs > 0);
    for (int round = 0; round < 2; round++) { // two forks: the leaders' file is not the last frozen
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        waitpid(pid, NULL, 0);
    }
    run_thread(free_aliased); // the aliases go
    mh_mesh_migrate_all();
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < N; i++)
            if (live[i]) memset(objs[i], 0x77, SIZE); // must not reach the parent
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(count_bad(), 0);
    run_thread(free_all);
}

static void frees_release_aliases(void) {
    mh_mesh_stats_t st;
    mh_mesh_stats(&st);
    CHECK(st.aliases > 0);
    run_thread(free_all); // every object, most of them through aliases
    mh_mesh_stats(&st);
    CHECK_EQ(st.aliases, 0);
}

// With mesh.freephys_thread the punches after a mesh and the alias resets after
// frees happen on the helper thread: the heap file still shrinks, aliases still go.
static uint64_t file_bytes_after_helper(void) {
    mh_arena_stats_t st;
    for (int i = 0; i < 100; i++) { // the helper works asynchronously: up to 1 s
        mh_freephys_drain();
        usleep(10000);
    }
    mh_arena_stats(&st);
    return st.file_bytes;
}

static void freephys_thread_does_page_work(void) {
    mh_opt[MH_OPT_freephys_thread] = 1;
    mh_freephys_start();
    CHECK(mh_freephys_active());
    run_thread(fragment);
    // The last test ended with a fork: finish that migration first, or its copies
    // onto the new file would be counted against the punches measured here.
    mh_mesh_migrate_all();
    mh_arena_purge_all();
    uint64_t before = file_bytes_after_helper(), items = mh_freephys_items_done();
    size_t pairs = 0;
    for (int i = 0; i < 10 && pairs < 50; i++) pairs += mh_mesh_class(cls_of_size()); // 1 ms passes
    uint64_t after = file_bytes_after_helper();
    CHECK(mh_freephys_items_done() >= items + pairs); // one punch per pair, queued
    printf("  helper thread: %zu pairs; heap file %llu -> %llu bytes\n", pairs,
           (unsigned long long)before, (unsigned long long)after);
    CHECK(pairs >= 50);
    CHECK(after + pairs * 4096 / 2 <= before);
    CHECK_EQ(count_bad(), 0);
    run_thread(free_all);
    file_bytes_after_helper();
    mh_mesh_stats_t st;
    mh_mesh_stats(&st);
    CHECK_EQ(st.aliases, 0);
    mh_opt[MH_OPT_freephys_thread] = 0;
}

static void budget_holds(void) {
    mh_opt[MH_OPT_max_aliases] = 7;
    mh_opt[MH_OPT_max_map_count] = MH_CHECK_OFF; // no warning line in the test log
    run_thread(fragment);
    for (int round = 0; round < 3; round++) mh_mesh_class(cls_of_size());
    mh_mesh_stats_t st;
    mh_mesh_stats(&st);
    CHECK(st.aliases <= 7);
    CHECK(st.aliases >= 1);
    CHECK_EQ(count_bad(), 0);
    run_thread(free_all);
    mh_opt[MH_OPT_max_aliases] = 0;
}

TEST_MAIN(T(mesh_preserves_and_releases), T(chains_grow), T(fork_sees_meshed_heap),
          T(migration_keeps_meshed_spans),
          T(frees_release_aliases), T(former_leaders_stay_private),
          T(freephys_thread_does_page_work), T(budget_holds))
