// arena_fork.c - fork with copy-on-write heap pages, and the migration back.
//
// Layer 3 (memory): arena (its state, arena_internal.h), barrier, os, meta_heap.
// The heap is a MAP_SHARED memfd, so after a plain fork parent and child would write
// the same pages. In the prepare handler (every allocator lock held) the in-use part
// of each region is re-mapped MAP_PRIVATE from the same file: the kernel then gives
// parent and child ordinary copy-on-write, system calls included, for the cost of
// one mmap per run of spans. That file is frozen from then on: nobody maps it shared
// or writes it again. The untouched tail of every region goes onto a fresh file, one
// for the parent and one for the child, so new spans are shared and meshable at once.
// Meshed spans cannot go private (their virtual spans must keep sharing one page):
// the parent keeps them where they are and the child gets a copy of their pages in
// its own file - the only copy a fork makes, proportional to meshed bytes.
//
// A span or free run left on a frozen file is "stale" (backing != the arena's epoch).
// It works as ordinary private memory, is never meshed, and a stale free run gets
// fresh pages before reuse (arena.c). Migration moves live stale spans back onto the
// current file, span by span (2 MiB at a time for large ones) under the write barrier:
// protect, copy through the old mapping into the file, map the file over it. When a
// sweep finds nothing stale the frozen file is closed, and the kernel frees it once
// no process maps it.
//
// Failures degrade, never abort (log.h), and always leave every object intact:
//  - no memfd at fork time (EMFILE, seccomp): both processes carry on with private
//    memory, meshed spans included, and the heap is never meshed again;
//  - our descriptor closed or replaced behind our back: the child gets copies of the
//    live spans in a file of its own, taken with the heap write-protected until the
//    fork is done (one instant, while the program's other threads run); when no file
//    can be made, the heap goes private before the fork and stays so;
//  - a mapping the child cannot make: the child copies its heap into private memory
//    from the snapshot prepare wrote, and carries on without a heap file;
//  - a meshed leader whose aliases cannot all be moved by migration: the group stays
//    "split" (views_split): its virtual spans no longer share pages, every live object
//    is in the view it is live through, and forks copy it view by view.
//
// Locking: the fork handlers run with the arena locks held (init.c); migration takes
// the arena lock per span, with the caller holding the mesh pass lock (the barrier)
// and, for a meshed leader, its class lock.
#define _GNU_SOURCE
#include "arena.h"
#include "arena_internal.h"
#include "barrier.h"

#include "check.h"
#include "log.h"
#include "meta_heap.h"
#include "os.h"

#include <errno.h>
#include <string.h>

#define MIGRATE_CHUNK_PAGES 512 // 2 MiB of a large span per barrier raise

static uint64_t file_off(const region_t *g, uintptr_t va) { return g->file_off + (va - g->base); }

// Spans a fork must not map privately: meshed ones (their virtual spans share pages),
// and former leaders still mapped shared on a file an earlier fork froze (their
// aliases went away since; their pages are not in any private mapping).
static bool is_meshed(const mh_span_t *s) {
    return s->kind == MH_KIND_ALIAS || (mh_span_is_small(s) && (s->naliases || s->shared_frozen));
}

static const mh_span_t *leader_of(const mh_span_t *s) { return s->kind == MH_KIND_ALIAS ? s->leader : s; }


static int new_file(void) {
    int fd;
    if (mh_os_memfd_create(&fd) != 0) return -1;
    if (mh_os_ftruncate(fd, mh_arena_st.file_size) != 0) {
        mh_os_close(fd);
        return -1;
    }
    return fd;
}

static void set_current_fd(int fd) {
    mh_arena_st.fd = fd;
    if (fd >= 0 && mh_os_file_id(fd, &mh_arena_st.fd_dev, &mh_arena_st.fd_ino) != 0) mh_arena_st.fd = -1;
}

// Writes the content of a meshed group (leader s) to fd at off: the leader's view, and
// for a split group each alias's own live objects from its own view on top.
static int write_group(int fd, const mh_span_t *leader, uint64_t off) {
    int rc = mh_os_write_at(fd, (void *)leader->start, mh_span_bytes(leader), off);
    if (rc || !leader->views_split) return rc;
    for (const mh_span_t *a = leader->next_alias; a && rc == 0; a = a->next_alias)
        for (unsigned w = 0; w < MH_BITMAP_WORDS && rc == 0; w++)
            for (uint64_t m = mh_load_relaxed(&a->bits[w]); m && rc == 0; m &= m - 1) {
                size_t at = (w * 64 + (unsigned)__builtin_ctzll(m)) * (size_t)a->obj_size;
                rc = mh_os_write_at(fd, (void *)(a->start + at), a->obj_size, off + at);
            }
    return rc;
}

// ---- private copies (degraded forks) ---------------------------------------------------

// Fresh private pages over [va, va+len), tried MH_MAP_TRIES times. 0 or an errno value.
static int anon_at(uintptr_t va, size_t len) {
    int rc = 0;
    for (int tries = 0; tries < MH_MAP_TRIES; tries++)
        if ((rc = mh_os_map_anon_at((void *)va, len)) == 0) break;
    return rc;
}

// Replaces [va, va+len) with private anonymous pages holding what is now readable at
// view (view != NULL), or the data of fd at off. 0 or an errno value; on failure the
// range is as it was.
static int privatize(uintptr_t va, size_t len, const void *view, int fd, uint64_t off) {
    void *tmp;
    int rc = 0;
    for (int tries = 0; tries < MH_MAP_TRIES; tries++)
        if ((rc = mh_os_map_anon(len, &tmp)) == 0) break;
    if (rc) return rc;
    if (view) memcpy(tmp, view, len);
    else rc = mh_os_read_data(fd, off, len, tmp);
    if (rc == 0) rc = mh_os_move(tmp, len, (void *)va);
    if (rc) mh_os_unmap(tmp, len);
    else mh_os_no_huge_pages((void *)va, len);
    return rc;
}

// Every region's used part becomes private anonymous memory: live spans with their
// content (from fd's snapshot at their file offset, a meshed span's at its leader's,
// or - fd < 0 - from their own views), the rest fresh; the untouched tails fresh. The
// heap then has no file and works as one that never had a memfd. Meshed groups are
// split (their views are separate copies). False when a range could not be replaced.
static bool privatize_heap(int fd) {
    bool ok = true;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        if (!g->shared) continue;
        uintptr_t end = g->base + g->used;
        for (uintptr_t p = g->base; p < end;) {
            uintptr_t at = p;
            mh_span_t *s = mh_arena_walk(&p);
            if (!s || s->kind == MH_KIND_FREE || s->kind == MH_KIND_BUSY) {
                ok &= anon_at(at, p - at) == 0;
                continue;
            }
            const mh_span_t *l = leader_of(s);
            int rc = fd >= 0 ? privatize(s->start, mh_span_bytes(s), NULL, fd,
                                         file_off(&mh_arena_st.regions[l->region], l->start))
                             : privatize(s->start, mh_span_bytes(s), (void *)s->start, -1, 0);
            if (s->kind == MH_KIND_ALIAS && !s->leader->views_split) // separate copies now
                s->leader->views_split = MH_SPLIT_MIGRATION;
            ok &= rc == 0;
        }
        if (g->used < g->size) ok &= anon_at(end, g->size - g->used) == 0;
    }
    void *info = mh_arena_st.info;
    if (info) ok &= privatize((uintptr_t)info, MH_PAGE_SIZE, info, -1, 0) == 0;
    // Private anonymous memory from now on, the way a heap without memfd starts: runs
    // are released with MADV_DONTNEED, nothing is meshed, migrated or copied at fork.
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) mh_arena_st.regions[i].shared = false;
    mh_arena_vmas_unknown();
    mh_arena_st.fd = -1;
    mh_arena_st.all_current = true;
    mh_arena_st.stale_shared = false;
    mh_arena_st.privatized = true;
    mh_arena_st.private_partial |= !ok;
    return ok;
}

// Some of the heap is still the parent's pages (no memory for the mappings that would
// copy it): the child must not write into the parent's objects, so it ends with
// one line, as a child that could not start. The parent is untouched.
static void child_doomed(void) {
    mh_warn("fork: the child cannot separate its heap from the parent's (no memory for the "
            "mappings); the child exits");
    mh_os_exit(127);
}

// The child could not map its own heap (a descriptor or VMA limit): private copies
// from the snapshot prepare wrote to the child's file; when even that fails, the
// child ends (child_doomed).
static void child_go_private(void) {
    int cfd = mh_arena_st.child_fd;
    if (!privatize_heap(cfd))
        child_doomed();
    else
        mh_degraded(MH_DEG_FORK, "fork: the child's heap could not be mapped; it runs on private copies "
                    "and is no longer compacted");
    mh_os_close(cfd);
    mh_arena_st.child_fd = -1;
}

// ---- prepare: runs of current spans go private ------------------------------------

typedef struct {
    const region_t *g;
    int fd;            // the file being frozen
    uintptr_t lo, hi;  // pending run
    bool failed;
} runs_t;

// Replacing a populated shared mapping would unmap every page of it while fork waits,
// which costs about what the kernel's own fork spends copying page tables. Its page
// tables are moved aside instead (whole tables at a time) and unmapped after the fork
// (mh_arena_drop_detached); the fork child never sees them (MADV_DONTFORK).
static void detach_populated(uintptr_t lo, size_t len) {
    void *moved;
    if (len < ((size_t)2 << 20) || mh_arena_st.ndetached == MH_DETACHED_MAX) return;
    if (mh_os_detach_pages((void *)lo, len, &moved) != 0) return; // older kernel: unmapped in place
    mh_arena_st.detached[mh_arena_st.ndetached].addr = moved;
    mh_arena_st.detached[mh_arena_st.ndetached++].len = len;
}

size_t mh_arena_drop_detached(size_t max_bytes) {
    size_t dropped = 0;
    while (dropped < max_bytes) {
        mh_lock(&mh_arena_st.lock);
        unsigned n = mh_arena_st.ndetached;
        uintptr_t addr = 0;
        size_t len = 0;
        if (n) { // from the end of the last range, so an entry only ever shrinks
            size_t left = max_bytes - dropped, have = mh_arena_st.detached[n - 1].len;
            len = have < left ? have : left;
            addr = (uintptr_t)mh_arena_st.detached[n - 1].addr + (have - len);
            mh_arena_st.detached[n - 1].len -= len;
            if (!mh_arena_st.detached[n - 1].len) mh_arena_st.ndetached = n - 1;
        }
        mh_unlock(&mh_arena_st.lock);
        if (!n) break;
        mh_os_unmap((void *)addr, len); // outside the lock: this is the slow part
        dropped += len;
    }
    return dropped;
}

static void runs_flush(runs_t *r) {
    if (r->hi > r->lo) {
        detach_populated(r->lo, r->hi - r->lo);
        int rc = 0;
        for (int tries = 0; tries < MH_MAP_TRIES; tries++)
            if ((rc = mh_os_map_private((void *)r->lo, r->hi - r->lo, r->fd, file_off(r->g, r->lo))) == 0) break;
        if (rc) r->failed = true; // still shared on the file: see stale_shared
    }
    r->lo = r->hi = 0;
}

static void runs_add(runs_t *r, uintptr_t lo, uintptr_t hi) {
    if (r->hi != lo) runs_flush(r);
    if (r->hi == 0) r->lo = lo;
    r->hi = hi;
}

// The open file a span with this backing epoch maps, or -1 when we hold none.
static int file_of(uint32_t backing, const runs_t *r, uint32_t old_epoch) {
    if (backing == old_epoch) return r->fd;
    if (mh_arena_st.frozen_fd >= 0 && backing == mh_arena_st.frozen_epoch) return mh_arena_st.frozen_fd;
    return -1;
}

// Meshed spans: the parent keeps them; the child gets a copy of the group's content in
// cfd. Without files (degraded) every virtual span goes private on its own: the group
// is split from then on.
static void prepare_meshed(runs_t *r, mh_span_t *s, int cfd, uint32_t old_epoch) {
    runs_flush(r);
    mh_span_t *leader = s->kind == MH_KIND_ALIAS ? s->leader : s;
    const region_t *lg = &mh_arena_st.regions[leader->region];
    if (cfd < 0) {
        int fd = file_of(s->backing, r, old_epoch);
        if (fd >= 0 &&
            mh_os_map_private((void *)s->start, mh_span_bytes(s), fd, file_off(lg, leader->start)) != 0)
            r->failed = true;
        if (fd < 0 && privatize(s->start, mh_span_bytes(s), (void *)s->start, -1, 0) != 0) r->failed = true;
        if (leader->naliases && !leader->views_split) leader->views_split = MH_SPLIT_MIGRATION;
        return;
    }
    if (s == leader && write_group(cfd, s, file_off(r->g, s->start)) != 0) r->failed = true;
    if (s == leader) s->shared_frozen = 1; // the parent keeps it shared on the frozen file
    mh_arena_st.child_meshed++;
}

static void prepare_region(region_t *g, int old_fd, int pfd, int cfd, uint32_t old_epoch,
                           bool walk, bool *failed) {
    runs_t r = {g, old_fd, 0, 0, false};
    uintptr_t lo = g->base, end = g->base + g->used;
    if (!walk) {
        runs_add(&r, lo, end);
    } else {
        for (uintptr_t p = lo; p < end;) {
            uintptr_t at = p;
            mh_span_t *s = mh_arena_walk(&p);
            if (!s) runs_add(&r, at, p); // not a span start: keep it with the file
            else if (is_meshed(s)) prepare_meshed(&r, s, cfd, old_epoch);
            else if (s->backing == old_epoch) runs_add(&r, s->start, mh_span_end(s));
            else if (s->kind == MH_KIND_LARGE && s->moved) { // its migrated head is current
                uint32_t head = s->moved < s->pages ? s->moved : s->pages;
                runs_add(&r, s->start, s->start + ((uintptr_t)head << MH_PAGE_SHIFT));
                runs_flush(&r);
            }
            else runs_flush(&r); // already private (an earlier fork): the kernel copies it
            if (s && s->kind == MH_KIND_LARGE) s->moved = 0;
        }
    }
    runs_flush(&r);
    *failed |= r.failed;
    void *p;
    if (g->used < g->size) { // the untouched tail: fresh pages of the parent's new file
        size_t len = g->size - g->used;
        int rc = pfd >= 0 ? mh_os_map_file((void *)end, len, pfd, file_off(g, end), &p)
                          : mh_os_map_anon_at((void *)end, len);
        if (rc != 0) { // still the frozen file's, shared with the child: stale from now on
            mh_arena_retire_tail(g, old_epoch);
            *failed = true;
        }
    }
}

// Write-protects the used part of every shared region (the barrier), so that a copy of
// the heap taken while the program's other threads run is one instant of it.
static bool protect_heap(void) {
    uintptr_t start[MH_BARRIER_MAX];
    size_t len[MH_BARRIER_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < mh_arena_st.nregions && n < MH_BARRIER_MAX; i++)
        if (mh_arena_st.regions[i].shared && mh_arena_st.regions[i].used) {
            start[n] = mh_arena_st.regions[i].base;
            len[n++] = mh_arena_st.regions[i].used;
        }
    return n && mh_barrier_raise(n, start, len);
}

// Writes a copy of every live span (a meshed group's merged content at its leader's
// offset) to cfd. False on a failed write (ENOSPC, a file-size limit).
static bool copy_spans(int cfd) {
    bool ok = !mh_arena_st.info || mh_os_write_at(cfd, mh_arena_st.info, MH_PAGE_SIZE, 0) == 0;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        for (uintptr_t p = g->base; ok && g->shared && p < g->base + g->used;) {
            mh_span_t *s = mh_arena_walk(&p);
            if (!s || s->kind == MH_KIND_FREE || s->kind == MH_KIND_BUSY || s->kind == MH_KIND_ALIAS) continue;
            ok = (s->naliases ? write_group(cfd, s, file_off(g, s->start))
                              : mh_os_write_at(cfd, (void *)s->start, mh_span_bytes(s), file_off(g, s->start))) == 0;
        }
    }
    return ok;
}

// The info page (the file's first page): meshctl reads it from the current file, so
// parent and child each get a copy in their new file, and the frozen file's copy is
// marked retired (meshctl must not take its stale counters for live ones).
static void prepare_info(int old_fd, int pfd, int cfd, bool *failed) {
    void *info = mh_arena_st.info, *p;
    if (!info) return;
    bool ok = pfd >= 0 && mh_os_write_at(pfd, info, MH_PAGE_SIZE, 0) == 0 &&
              mh_os_write_at(cfd, info, MH_PAGE_SIZE, 0) == 0 && mh_os_map_file(info, MH_PAGE_SIZE, pfd, 0, &p) == 0;
    if (!ok && mh_os_map_private(info, MH_PAGE_SIZE, old_fd, 0) != 0) *failed = true;
    static const char retired[16];
    if (ok) (void)mh_os_write_at(old_fd, retired, sizeof retired, 0);
}

// Our descriptor was closed behind our back (or a mapping failed), so the frozen file
// cannot be mapped again: the child gets a copy of every live span in a file of its
// own. guard: the program's other threads may write meanwhile, so the heap is
// write-protected from before the copy until after the fork (fork_parent lowers it):
// the child's copy and the kernel's snapshot of everything else are one instant.
// Without a file for the copy, the heap goes private before the fork instead, so the
// kernel's copy-on-write separates the two processes.
static void prepare_copies(bool guard) {
    bool guarded = guard && protect_heap();
    int cfd = new_file();
    if (cfd >= 0 && copy_spans(cfd)) {
        mh_arena_st.child_fd = cfd;
        mh_arena_st.child_copies = true;
        mh_arena_st.guarded_fork = guarded;
        return;
    }
    if (cfd >= 0) mh_os_close(cfd);
    bool ok = privatize_heap(-1);
    if (guarded) mh_barrier_lower(!ok);
    if (ok)
        mh_degraded(MH_DEG_FILE, "the heap file's descriptor was closed and no new one can be made; the heap "
                    "runs on private memory and is no longer compacted");
    else
        mh_degraded(MH_DEG_FORK, "fork: no heap file for the child and the heap could not be made "
                    "private; the child exits (status 127), the parent carries on");
}

void mh_arena_raw_fork_copy(void) {
    mh_lock_reset(&mh_arena_st.lock); // whatever other threads held vanished with the clone
    mh_arena_vmas_unknown();
    mh_lock_reset(&mh_arena_st.purge_lock);
    mh_arena_st.child_fd = -1;
    mh_arena_st.child_copies = false;
    if (mh_arena_st.file_size == 0 || mh_arena_st.privatized) return;
    prepare_copies(false);
}

bool mh_arena_file_lost(void) {
    mh_lock(&mh_arena_st.lock);
    bool lost = mh_arena_st.file_size != 0 && !mh_arena_fd_still_ours() && !mh_arena_st.privatized;
    mh_unlock(&mh_arena_st.lock);
    return lost;
}

void mh_arena_fork_prepare(bool meshed, bool barrier) {
    mh_lock(&mh_arena_st.purge_lock);
    mh_lock(&mh_arena_st.lock);
    mh_arena_st.child_fd = -1;
    mh_arena_st.child_copies = false;
    mh_arena_st.child_meshed = 0;
    if (mh_arena_st.file_size == 0) return; // private memory only: the kernel's copy-on-write does it
    // Our descriptor is gone, or an earlier fork left stale spans mapped shared (the
    // kernel's copy-on-write would not separate them): the child gets copies.
    if (!mh_arena_fd_still_ours() || (mh_arena_st.stale_shared && !mh_arena_st.all_current)) {
        if (!mh_arena_st.privatized) prepare_copies(barrier);
        return;
    }
    int old_fd = mh_arena_st.fd, pfd = new_file(), cfd = pfd >= 0 ? new_file() : -1;
    if (cfd < 0 && pfd >= 0) {
        mh_os_close(pfd);
        pfd = -1;
    }
    uint32_t old_epoch = mh_arena_st.epoch;
    // One private mapping per region unless something needs telling apart: stale
    // spans of an earlier fork (already private) or meshed spans.
    bool walk = !mh_arena_st.all_current || meshed;
    bool failed = false;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++)
        if (mh_arena_st.regions[i].shared)
            prepare_region(&mh_arena_st.regions[i], old_fd, pfd, cfd, old_epoch, walk, &failed);
    prepare_info(old_fd, pfd, cfd, &failed);
    mh_arena_vmas_unknown();
    mh_arena_st.epoch++; // every span is stale now, in both processes
    mh_arena_st.all_current = false;
    mh_arena_st.sweep_found = false;
    mh_arena_st.sweep_stale = false;
    mh_arena_st.sweep_idle = false;
    mh_arena_st.sweep_region = 0;
    mh_arena_st.sweep_next = 0;
    if (mh_arena_st.frozen_fd >= 0) mh_os_close(mh_arena_st.frozen_fd); // its leaders stay where they are
    mh_arena_st.frozen_fd = old_fd; // kept until migrated: a failed leader move maps back onto it
    mh_arena_st.frozen_epoch = old_epoch;
    set_current_fd(pfd);
    mh_arena_st.child_fd = cfd;
    if (pfd < 0) mh_degraded(MH_DEG_FILE, "fork: no new heap file can be made; parent and child carry on "
                             "with private memory and are no longer compacted");
    if (failed) { // a mapping failed (VMA limit): whatever was not re-mapped is copied
        mh_arena_st.stale_shared = true;
        if (cfd >= 0) mh_os_close(cfd);
        mh_arena_st.child_fd = -1;
        int saved = mh_arena_st.fd;
        mh_arena_st.fd = old_fd;
        prepare_copies(barrier);
        mh_arena_st.fd = saved;
    }
}

void mh_arena_fork_parent(void) {
    if (mh_arena_st.guarded_fork) mh_barrier_lower(true); // see prepare_copies
    mh_arena_st.guarded_fork = false;
    if (mh_arena_st.child_fd >= 0) mh_os_close(mh_arena_st.child_fd);
    mh_arena_st.child_fd = -1;
    mh_unlock(&mh_arena_st.lock);
    mh_unlock(&mh_arena_st.purge_lock);
    // The moved-aside page tables are unmapped by the migration steps that follow, not
    // here: fork() would wait for it (about as long as the kernel's own fork takes to
    // copy them). Until then PSS counts those pages once more; memory holds them once.
}

// ---- child --------------------------------------------------------------------------

// A mapping in the child, tried a few times: a transient refusal (EAGAIN, memory the
// kernel is short of for a moment) must not send the child down the slow path.
static int child_map(void *addr, size_t len, int fd, uint64_t off, void **out) {
    int rc = 0;
    for (int tries = 0; tries < MH_MAP_TRIES; tries++)
        if ((rc = mh_os_map_file(addr, len, fd, off, out)) == 0) break;
    return rc;
}

// The child's own file over every region, then each alias onto its leader: the whole
// heap is current again (the copying path). False when a mapping failed.
static bool child_map_copies(void) {
    void *p;
    if (mh_arena_st.info && child_map(mh_arena_st.info, MH_PAGE_SIZE, mh_arena_st.child_fd, 0, &p) != 0)
        return false;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        if (!g->shared) continue;
        if (child_map((void *)g->base, g->size, mh_arena_st.child_fd, g->file_off, &p) != 0) return false;
    }
    set_current_fd(mh_arena_st.child_fd); // aliases are remapped onto it below
    mh_arena_st.epoch++;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        for (uintptr_t q = g->base; g->shared && q < g->base + g->used;) {
            mh_span_t *s = mh_arena_walk(&q);
            if (!s) continue;
            s->backing = mh_arena_st.epoch;
            s->moved = 0;
            s->shared_frozen = 0;
            if (s->kind == MH_KIND_ALIAS && mh_arena_remap_locked(s->start, mh_span_bytes(s), s->leader->start) != 0)
                return false;
            if (s->kind != MH_KIND_ALIAS) s->views_split = 0; // one copy of the merged content now
        }
    }
    mh_arena_st.all_current = true;
    return true;
}

// Meshed spans onto the copy of their group's pages that prepare wrote to the child's
// file; the untouched tails onto that file too. False when a mapping failed.
static bool child_map_meshed(void) {
    void *p;
    if (mh_arena_st.info && child_map(mh_arena_st.info, MH_PAGE_SIZE, mh_arena_st.child_fd, 0, &p) != 0)
        return false;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        if (!g->shared) continue;
        if (g->used < g->size &&
            child_map((void *)(g->base + g->used), g->size - g->used, mh_arena_st.child_fd,
                           file_off(g, g->base + g->used), &p) != 0)
            return false;
        for (uintptr_t q = g->base; mh_arena_st.child_meshed && q < g->base + g->used;) {
            mh_span_t *s = mh_arena_walk(&q);
            if (!s || !is_meshed(s)) continue;
            const mh_span_t *leader = leader_of(s);
            const region_t *lg = &mh_arena_st.regions[leader->region];
            if (child_map((void *)s->start, mh_span_bytes(s), mh_arena_st.child_fd,
                               file_off(lg, leader->start), &p) != 0)
                return false;
            s->backing = mh_arena_st.epoch;
            s->shared_frozen = 0;
            if (s->kind != MH_KIND_ALIAS) s->views_split = 0;
        }
    }
    return true;
}

void mh_arena_fork_child(void) {
    mh_arena_vmas_unknown();
    if (mh_arena_st.private_partial) child_doomed();
    if (mh_arena_st.child_fd >= 0) {
        bool ok = mh_arena_st.child_copies ? child_map_copies() : child_map_meshed();
        if (!ok) {
            child_go_private(); // closes child_fd
            if (mh_arena_st.frozen_fd >= 0) mh_os_close(mh_arena_st.frozen_fd);
            mh_arena_st.frozen_fd = -1;
        } else {
            int parents = mh_arena_st.child_copies ? -1 : mh_arena_st.fd;
            if (parents >= 0) mh_os_close(parents); // the parent's new file
            set_current_fd(mh_arena_st.child_fd);
            mh_arena_st.child_fd = -1;
        }
    }
    if (mh_arena_st.frozen_fd >= 0) { // the child's meshed spans are on its own file
        mh_os_close(mh_arena_st.frozen_fd);
        mh_arena_st.frozen_fd = -1;
    }
    mh_arena_st.child_copies = false;
    mh_arena_st.guarded_fork = false; // the barrier was reset; every range is remapped
    mh_arena_st.ndetached = 0; // MADV_DONTFORK: they are not in the child
    mh_lock_reset(&mh_arena_st.lock);
    mh_lock_reset(&mh_arena_st.purge_lock);
}

// ---- migration ------------------------------------------------------------------------

bool mh_arena_migration_idle(void) {
    return mh_plain_load_relaxed(&mh_arena_st.sweep_idle) || mh_plain_load_relaxed(&mh_arena_st.stalled);
}

// Nothing migrates without a heap file; the page tables a fork moved aside still go.
bool mh_arena_migration_pending(void) {
    bool stale = !mh_plain_load_relaxed(&mh_arena_st.all_current) && mh_plain_load_relaxed(&mh_arena_st.fd) >= 0;
    return stale || mh_plain_load_relaxed(&mh_arena_st.ndetached) != 0;
}

// A stale free run gets fresh pages of the current file in place (no copy).
static void refresh_run(mh_span_t *r) {
    if (mh_arena_fresh_map(&mh_arena_st.regions[r->region], r->start, mh_span_bytes(r)) != 0) return;
    mh_arena_run_unlink(r); // also clears its directory entries, as run_insert wants
    r->backing = mh_arena_st.epoch;
    mh_arena_run_insert(r, false);
}

// Live stale spans that move together in one extent: small spans without aliases
// and large ones of at most a chunk. Leaders and bigger large spans move alone.
static bool plain(const mh_span_t *s) {
    if (s->kind == MH_KIND_LARGE) return s->pages <= MIGRATE_CHUNK_PAGES && !s->moved;
    return mh_span_is_small(s) && !s->naliases;
}

static bool migratable(const mh_span_t *s) {
    if (mh_arena_st.fd < 0) return false; // no heap file (degraded): private memory for good
    if (s->kind == MH_KIND_LARGE) return true;
    if (!mh_span_is_small(s) || s->views_split) return false;
    // A leader on a file we no longer hold cannot be moved safely: it stays.
    return !s->naliases || (mh_arena_st.frozen_fd >= 0 && s->backing == mh_arena_st.frozen_epoch);
}

// Stale spans that keep the sweep going: not those of a split group, which stay where
// they are until they are freed.
static bool holds_sweep(const mh_span_t *s) {
    if (s->kind == MH_KIND_BUSY) return false;
    return !(s->kind == MH_KIND_ALIAS ? s->leader->views_split : s->views_split);
}

// all_current only when no stale span is left at all: a fork takes its one-mapping
// shortcut on it, which would map a leader still on a frozen file from the current one.
static void sweep_end(void) {
    if (!mh_arena_st.sweep_stale) {
        mh_arena_st.all_current = true;
        mh_arena_st.stale_shared = false;
        if (mh_arena_st.frozen_fd >= 0) mh_os_close(mh_arena_st.frozen_fd);
        mh_arena_st.frozen_fd = -1;
    }
    mh_arena_st.sweep_idle = mh_arena_st.sweep_stale && !mh_arena_st.sweep_found;
    mh_arena_st.sweep_found = false;
    mh_arena_st.sweep_stale = false;
    mh_arena_st.sweep_region = 0;
    mh_arena_st.sweep_next = 0;
}

void mh_arena_migration_stalled(void) { mh_plain_store_relaxed(&mh_arena_st.stalled, true); }

unsigned mh_arena_migrate_collect(mh_migrant_t *out, unsigned max, bool *ended) {
    unsigned n = 0;
    *ended = false;
    mh_migrant_t *ext = NULL; // the extent being grown
    mh_lock(&mh_arena_st.lock);
    while (n < max && !mh_arena_st.all_current) {
        if (mh_arena_st.sweep_region >= mh_arena_st.nregions) {
            sweep_end();
            *ended = true;
            break;
        }
        region_t *g = &mh_arena_st.regions[mh_arena_st.sweep_region];
        uintptr_t p = mh_arena_st.sweep_next > g->base ? mh_arena_st.sweep_next : g->base;
        if (!g->shared || p >= g->base + g->used) {
            mh_arena_st.sweep_region++;
            mh_arena_st.sweep_next = 0;
            ext = NULL;
            continue;
        }
        mh_span_t *s = mh_arena_walk(&p);
        mh_arena_st.sweep_next = p;
        bool stale = s && !mh_arena_is_current(s);
        if (stale && holds_sweep(s)) mh_arena_st.sweep_stale = true;
        if (stale && s->kind == MH_KIND_FREE) {
            refresh_run(s);
            mh_arena_st.sweep_found = true;
        }
        if (!stale || !migratable(s)) {
            ext = NULL;
            continue;
        }
        mh_arena_st.sweep_found = true;
        if (!plain(s)) {
            out[n++] = (mh_migrant_t){s, s->gen, s->kind, s->backing, s->start, mh_span_end(s)};
            ext = NULL;
        } else if (ext && ext->hi == s->start && ext->backing == s->backing &&
                   ((ext->hi - ext->lo) >> MH_PAGE_SHIFT) + s->pages <= MIGRATE_CHUNK_PAGES) {
            ext->hi = mh_span_end(s);
        } else {
            ext = &out[n++];
            *ext = (mh_migrant_t){NULL, 0, 0, s->backing, s->start, mh_span_end(s)};
        }
    }
    mh_unlock(&mh_arena_st.lock);
    return n;
}

// The extent still holds only plain stale spans, exactly tiling [lo, hi).
static bool extent_intact(uintptr_t lo, uintptr_t hi, uint32_t backing) {
    for (uintptr_t p = lo; p < hi;) {
        mh_span_t *s = mh_arena_walk(&p);
        if (!s || s->backing != backing || !plain(s) || mh_span_end(s) > hi) return false;
    }
    return true;
}

static void extent_mark_current(uintptr_t lo, uintptr_t hi) {
    for (uintptr_t p = lo; p < hi;) {
        mh_span_t *s = mh_arena_walk(&p);
        MH_ASSERT(s != NULL); // extent_intact held under the same lock
        s->backing = mh_arena_st.epoch;
        s->shared_frozen = 0;
    }
}

// Copies [lo, lo+len) through its private mapping into the current file, skipping
// pages that read as zero without reading them (which would allocate them): pages
// this process never populated (pagemap) that are holes in the frozen file. Pages
// of a file we no longer hold are all copied. The runs copied are recorded in *runs,
// so that only they are mapped in afterwards.
typedef struct {
    unsigned n;
    bool all; // everything was copied (or too many runs to list)
    struct { uintptr_t lo; size_t len; } run[MIGRATE_CHUNK_PAGES / 2];
} copied_t;

static int copy_run(const region_t *g, uintptr_t from, size_t len, copied_t *runs) {
    int rc = mh_os_write_at(mh_arena_st.fd, (void *)from, len, file_off(g, from));
    if (rc == 0 && runs->n < sizeof runs->run / sizeof runs->run[0]) {
        runs->run[runs->n].lo = from;
        runs->run[runs->n++].len = len;
    } else if (rc == 0) {
        runs->all = true;
    }
    return rc;
}

// anon: the pages are private anonymous memory (the heap before it took its file):
// only the ones present (or swapped) hold data.
static int copy_out(const region_t *g, uintptr_t lo, size_t len, bool know_frozen, bool anon, copied_t *runs) {
    uint64_t present[MIGRATE_CHUNK_PAGES];
    size_t npages = len >> MH_PAGE_SHIFT;
    runs->n = 0;
    runs->all = false;
    int pm = npages <= MIGRATE_CHUNK_PAGES ? mh_os_open_pagemap() : -1;
    bool sparse = pm >= 0 && (know_frozen || anon) &&
                  mh_os_read_at(pm, present, npages * sizeof present[0],
                                (lo >> MH_PAGE_SHIFT) * sizeof present[0]) == 0;
    if (pm >= 0) mh_os_close(pm);
    if (!sparse) {
        runs->all = true;
        return mh_os_write_at(mh_arena_st.fd, (void *)lo, len, file_off(g, lo));
    }
    uint64_t data_lo = 0, data_hi = 0; // the frozen file's data extent around the page
    size_t run = 0;                    // pages pending copy, ending at page i
    for (size_t i = 0; i <= npages; i++) {
        bool copy = false;
        if (i < npages) {
            uint64_t off = file_off(g, lo) + (i << MH_PAGE_SHIFT);
            if (off >= data_hi && (anon || mh_os_seek_data(mh_arena_st.frozen_fd, off, &data_lo, &data_hi) != 0))
                data_lo = data_hi = UINT64_MAX; // no data from off on
            copy = (present[i] >> 62) != 0 || (off >= data_lo && off < data_hi);
        }
        if (copy) {
            run++;
            continue;
        }
        if (run) {
            int rc = copy_run(g, lo + ((i - run) << MH_PAGE_SHIFT), run << MH_PAGE_SHIFT, runs);
            if (rc) return rc;
        }
        run = 0;
    }
    return 0;
}

// The pages just copied are in memory: map them, so the program takes no fault for
// them and PSS counts them again. Only those: populating a hole of the heap file
// would allocate a page for it.
static void populate_copied(uintptr_t lo, size_t len, const copied_t *runs) {
    if (runs->all) {
        mh_os_populate((void *)lo, len);
        return;
    }
    for (unsigned i = 0; i < runs->n; i++) mh_os_populate((void *)runs->run[i].lo, runs->run[i].len);
}

// Maps the current file over the leader's aliases. On failure the aliases already
// moved go back onto the frozen file; true in *split when even that failed (the group
// is then split: both files hold the same bytes now, and from here on every object is
// written through its own view).
static bool move_leader_aliases(mh_span_t *leader, const region_t *lg, bool *split) {
    void *p;
    uint64_t off = file_off(lg, leader->start);
    *split = false;
    for (mh_span_t *a = leader->next_alias; a; a = a->next_alias) {
        if (mh_os_map_file((void *)a->start, mh_span_bytes(a), mh_arena_st.fd, off, &p) == 0) {
            a->backing = mh_arena_st.epoch;
            continue;
        }
        for (mh_span_t *b = leader->next_alias; b != a; b = b->next_alias) {
            if (mh_os_map_file((void *)b->start, mh_span_bytes(b), mh_arena_st.frozen_fd, off, &p) == 0)
                b->backing = mh_arena_st.frozen_epoch;
            else
                *split = true;
        }
        return false;
    }
    return true;
}

// The range [lo, hi) to move now, or false when the item changed since collection.
static bool migrant_range(const mh_migrant_t *m, uintptr_t *lo, uintptr_t *hi) {
    mh_span_t *s = m->span;
    if (!s) {
        *lo = m->lo;
        *hi = m->hi;
        return extent_intact(m->lo, m->hi, m->backing) && m->backing != mh_arena_st.epoch;
    }
    if (s->gen != m->gen || s->kind != m->kind || mh_arena_is_current(s) || s->views_split) return false;
    // A leader whose aliases are being released (marked BUSY under the class lock we
    // hold, reset without it) is left alone: re-mapping an alias the releaser has just
    // reset would clobber whatever the arena put in its range since.
    if (s->kind != MH_KIND_LARGE && s->naliases)
        for (const mh_span_t *a = s->next_alias; a; a = a->next_alias)
            if (a->kind != MH_KIND_ALIAS) return false;
    *lo = s->start;
    *hi = mh_span_end(s);
    if (s->kind == MH_KIND_LARGE) {
        if (s->moved >= s->pages) { // shrunk while migrating: all of it is moved
            s->backing = mh_arena_st.epoch;
            s->moved = 0;
            return false;
        }
        size_t left = s->pages - s->moved;
        *lo += (uintptr_t)s->moved << MH_PAGE_SHIFT;
        *hi = *lo + ((left < MIGRATE_CHUNK_PAGES ? left : MIGRATE_CHUNK_PAGES) << MH_PAGE_SHIFT);
    }
    return true;
}

static void migrant_done(const mh_migrant_t *m, uintptr_t lo, uintptr_t hi) {
    mh_span_t *s = m->span;
    mh_arena_st.stalled = false; // progress
    if (!s) {
        extent_mark_current(lo, hi);
        return;
    }
    if (s->kind == MH_KIND_LARGE) {
        s->moved += (uint32_t)((hi - lo) >> MH_PAGE_SHIFT);
        if (s->moved < s->pages) return;
    }
    s->backing = mh_arena_st.epoch;
    s->moved = 0;
    s->shared_frozen = 0;
    for (mh_span_t *a = s->kind == MH_KIND_LARGE ? NULL : s->next_alias; a; a = a->next_alias)
        a->backing = mh_arena_st.epoch;
}

// Moves a leader's aliases after the leader; on failure puts the leader back too, and
// when a mapping cannot be put back, leaves the group split (see the file comment).
// True when the whole group moved.
static bool move_group(mh_span_t *s, const region_t *g, uintptr_t lo, uintptr_t hi) {
    bool split;
    if (move_leader_aliases(s, g, &split)) return true;
    void *p;
    if (!split && mh_os_map_file((void *)lo, hi - lo, mh_arena_st.frozen_fd, file_off(g, lo), &p) == 0)
        return false;
    s->views_split = MH_SPLIT_MIGRATION;
    s->backing = mh_arena_st.epoch; // the leader maps the current file; some aliases do not
    mh_degraded(MH_DEG_MIGRATION, "fork migration: a meshed span could not be moved back whole; it stays "
                "split across two heap files until it is freed");
    return false;
}

size_t mh_arena_migrate(const mh_migrant_t *m) {
    size_t moved = 0;
    uintptr_t lo, hi;
    mh_lock(&mh_arena_st.lock);
    if (!mh_arena_fd_still_ours() || !migrant_range(m, &lo, &hi)) {
        mh_unlock(&mh_arena_st.lock);
        return 0;
    }
    mh_span_t *s = m->span;
    const region_t *g = &mh_arena_st.regions[s ? s->region : mh_arena_dir_get(lo)->region];
    bool leader = s && s->kind != MH_KIND_LARGE && s->naliases;
    mh_arena_vmas_unknown(); // stale and current mappings meet here: counted again later
    uintptr_t starts[MH_BARRIER_MAX];
    size_t lens[MH_BARRIER_MAX];
    unsigned nr = 0;
    starts[nr] = lo;
    lens[nr++] = hi - lo;
    for (mh_span_t *a = leader ? s->next_alias : NULL; a && nr < MH_BARRIER_MAX; a = a->next_alias) {
        starts[nr] = a->start;
        lens[nr++] = mh_span_bytes(a);
    }
    // Which file the pages came from: the one the last fork froze, or an older one.
    bool know_frozen = mh_arena_st.frozen_fd >= 0 && m->backing == mh_arena_st.frozen_epoch;
    bool anon = m->backing == mh_arena_st.anon_epoch && mh_arena_st.anon_epoch != 0;
    void *p;
    // A range holding a thread's alternate signal stack is refused by the barrier: such
    // a span stays on the frozen file until the stack moves.
    copied_t runs;
    if (mh_barrier_raise(nr, starts, lens)) {
        bool ok = copy_out(g, lo, hi - lo, know_frozen && !leader, anon && !leader, &runs) == 0 &&
                  mh_os_map_file((void *)lo, hi - lo, mh_arena_st.fd, file_off(g, lo), &p) == 0;
        if (ok && leader) ok = move_group(s, g, lo, hi);
        mh_barrier_lower(!ok); // on failure the ranges left are still read-only
        if (ok) {
            moved = hi - lo;
            populate_copied(lo, moved, &runs);
            migrant_done(m, lo, hi);
        }
    }
    mh_unlock(&mh_arena_st.lock);
    return moved;
}
