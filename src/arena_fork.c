// arena_fork.c - fork with copy-on-write heap pages, and the migration back.
//
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
// A span or free run left on a frozen file is "stale" (backing != A.epoch). It works
// as ordinary private memory, is never meshed, and a stale free run gets fresh pages
// before reuse (arena.c). Migration moves live stale spans back onto the current
// file, span by span (2 MiB at a time for large ones) under the mesh write barrier:
// protect, copy through the old mapping into the file, map the file over it. When a
// sweep finds nothing stale the frozen file is closed, and the kernel frees it once
// no process maps it.
//
// Without a memfd at fork time (EMFILE, seccomp) both processes degrade to private
// memory only: everything, meshed spans included, is mapped private and the heap is
// never meshed again. Nothing aborts.
//
// Locking: the fork handlers run with the arena locks held (init.c); migration takes
// the arena lock per span, with the caller holding the mesh pass lock (the barrier)
// and, for a meshed leader, its class lock.
#define _GNU_SOURCE
#include "arena_internal.h"
#include "barrier.h"

#include "check.h"
#include "mesh.h"
#include "meta_heap.h"
#include "os.h"

#include <errno.h>

#define MIGRATE_CHUNK_PAGES 512 // 2 MiB of a large span per barrier raise

static uint64_t file_off(const region_t *g, uintptr_t va) { return g->file_off + (va - g->base); }

// Spans a fork must not map privately: meshed ones (their virtual spans share pages),
// and former leaders still mapped shared on a file an earlier fork froze (their
// aliases went away since; their pages are not in any private mapping).
static bool is_meshed(const mh_span_t *s) {
    return s->kind == MH_KIND_ALIAS || (mh_span_is_small(s) && (s->naliases || s->shared_frozen));
}

static bool is_info_region(const region_t *g) { return (void *)g->base == A.info; }

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
    if (len < ((size_t)2 << 20) || A.ndetached == MH_DETACHED_MAX) return;
    if (mh_os_detach_pages((void *)lo, len, &moved) != 0) return; // older kernel: unmapped in place
    A.detached[A.ndetached].addr = moved;
    A.detached[A.ndetached++].len = len;
}

size_t mh_arena_drop_detached(size_t max_bytes) {
    size_t dropped = 0;
    while (dropped < max_bytes) {
        mh_lock(&A.lock);
        unsigned n = A.ndetached;
        uintptr_t addr = 0;
        size_t len = 0;
        if (n) { // from the end of the last range, so an entry only ever shrinks
            size_t left = max_bytes - dropped, have = A.detached[n - 1].len;
            len = have < left ? have : left;
            addr = (uintptr_t)A.detached[n - 1].addr + (have - len);
            A.detached[n - 1].len -= len;
            if (!A.detached[n - 1].len) A.ndetached = n - 1;
        }
        mh_unlock(&A.lock);
        if (!n) break;
        mh_os_unmap((void *)addr, len); // outside the lock: this is the slow part
        dropped += len;
    }
    return dropped;
}

static void runs_flush(runs_t *r) {
    if (r->hi > r->lo) {
        detach_populated(r->lo, r->hi - r->lo);
        if (mh_os_map_private((void *)r->lo, r->hi - r->lo, r->fd, file_off(r->g, r->lo)) != 0)
            r->failed = true;
        else
            mh_os_no_huge_pages((void *)r->lo, r->hi - r->lo);
    }
    r->lo = r->hi = 0;
}

static void runs_add(runs_t *r, uintptr_t lo, uintptr_t hi) {
    if (r->hi != lo) runs_flush(r);
    if (r->hi == 0) r->lo = lo;
    r->hi = hi;
}

// Meshed spans: the parent keeps them; the child gets a copy of the leader's pages in
// cfd. Without files (degraded) every virtual span goes private on its own.
static void prepare_meshed(runs_t *r, mh_span_t *s, int cfd) {
    runs_flush(r);
    const mh_span_t *leader = s->kind == MH_KIND_ALIAS ? s->leader : s;
    if (cfd < 0) {
        const region_t *lg = &A.regions[leader->region];
        int fd = r->fd; // the current file, or for a former leader the one it is on
        if (s->shared_frozen && !s->naliases)
            fd = A.frozen_fd >= 0 && s->backing == A.frozen_epoch ? A.frozen_fd : -1;
        if (fd >= 0 &&
            mh_os_map_private((void *)s->start, mh_span_bytes(s), fd, file_off(lg, leader->start)) != 0)
            r->failed = true;
        return; // fd < 0: its file is gone; it stays shared (no file for a copy either)
    }
    if (s == leader &&
        mh_os_write_at(cfd, (void *)s->start, mh_span_bytes(s), file_off(r->g, s->start)) != 0)
        r->failed = true;
    if (s == leader) s->shared_frozen = 1; // the parent keeps it shared on the frozen file
    A.child_meshed++;
}

static void prepare_region(region_t *g, int old_fd, int pfd, int cfd, uint32_t old_epoch,
                           bool walk, bool *failed) {
    runs_t r = {g, old_fd, 0, 0, false};
    uintptr_t lo = g->base + (is_info_region(g) ? MH_PAGE_SIZE : 0), end = g->base + g->used;
    if (!walk) {
        runs_add(&r, lo, end);
    } else {
        for (uintptr_t p = lo; p < end;) {
            mh_span_t *s = mh_arena_dir_get(p);
            if (!s || s->start != p || !s->pages) { // not a span start: keep it with the file
                runs_add(&r, p, p + MH_PAGE_SIZE);
                p += MH_PAGE_SIZE;
                continue;
            }
            if (is_meshed(s)) prepare_meshed(&r, s, cfd);
            else if (s->backing == old_epoch) runs_add(&r, s->start, mh_span_end(s));
            else if (s->kind == MH_KIND_LARGE && s->moved) { // its migrated head is current
                uint32_t head = s->moved < s->pages ? s->moved : s->pages;
                runs_add(&r, s->start, s->start + ((uintptr_t)head << MH_PAGE_SHIFT));
                runs_flush(&r);
            }
            else runs_flush(&r); // already private (an earlier fork): the kernel copies it
            if (s->kind == MH_KIND_LARGE) s->moved = 0;
            p = mh_span_end(s);
        }
    }
    runs_flush(&r);
    *failed |= r.failed;
    void *p;
    if (g->used < g->size) { // the untouched tail: fresh pages of the parent's new file
        size_t len = g->size - g->used;
        int rc = pfd >= 0 ? mh_os_map_file((void *)end, len, pfd, file_off(g, end), &p)
                          : mh_os_map_anon_at((void *)end, len);
        if (rc == 0) mh_os_no_huge_pages((void *)end, len);
        else *failed = true;
    }
    if (is_info_region(g)) { // meshctl reads the info page from the current file
        bool ok = pfd >= 0 && mh_os_write_at(pfd, A.info, MH_PAGE_SIZE, g->file_off) == 0 &&
                  mh_os_write_at(cfd, A.info, MH_PAGE_SIZE, g->file_off) == 0 &&
                  mh_os_map_file(A.info, MH_PAGE_SIZE, pfd, g->file_off, &p) == 0;
        if (!ok && mh_os_map_private(A.info, MH_PAGE_SIZE, old_fd, g->file_off) != 0) *failed = true;
        // meshctl stats must not take the frozen file's stale copy for the live one.
        static const char retired[16];
        if (ok) (void)mh_os_write_at(old_fd, retired, sizeof retired, g->file_off);
    }
}

static int new_file(void) {
    int fd;
    if (mh_os_memfd_create(&fd) != 0) return -1;
    if (mh_os_ftruncate(fd, A.file_size) != 0) {
        mh_os_close(fd);
        return -1;
    }
    return fd;
}

static void set_current_fd(int fd) {
    A.fd = fd;
    if (fd >= 0 && mh_os_file_id(fd, &A.fd_dev, &A.fd_ino) != 0) A.fd = -1;
}

// Our descriptor was closed behind our back, so the frozen file cannot be mapped
// again: the child gets a copy of every live span in a file of its own instead.
static void prepare_copies(void) {
    int cfd = new_file();
    if (cfd < 0) mh_fatal("fork: cannot create the child's heap file");
    for (unsigned i = 0; i < A.nregions; i++) {
        region_t *g = &A.regions[i];
        for (uintptr_t p = g->base; g->shared && p < g->base + g->used;) {
            mh_span_t *s = mh_arena_dir_get(p);
            bool start = s && s->start == p && s->pages;
            if (start && s->kind != MH_KIND_FREE && s->kind != MH_KIND_BUSY &&
                s->kind != MH_KIND_ALIAS)
                (void)mh_os_write_at(cfd, (void *)s->start, mh_span_bytes(s), file_off(g, s->start));
            p = start ? mh_span_end(s) : p + MH_PAGE_SIZE;
        }
    }
    A.child_fd = cfd;
    A.child_copies = true;
}

void mh_arena_raw_fork_copy(void) {
    mh_lock_reset(&A.lock); // whatever other threads held vanished with the clone
    mh_lock_reset(&A.purge_lock);
    A.child_fd = -1;
    A.child_copies = false;
    if (A.file_size == 0) return;
    prepare_copies();
}

void mh_arena_fork_prepare(void) {
    mh_lock(&A.purge_lock);
    mh_lock(&A.lock);
    A.child_fd = -1;
    A.child_copies = false;
    A.child_meshed = 0;
    if (A.file_size == 0) return; // private memory only: the kernel's copy-on-write does it
    if (!mh_arena_fd_still_ours()) {
        prepare_copies();
        return;
    }
    int old_fd = A.fd, pfd = new_file(), cfd = pfd >= 0 ? new_file() : -1;
    if (cfd < 0 && pfd >= 0) {
        mh_os_close(pfd);
        pfd = -1;
    }
    uint32_t old_epoch = A.epoch;
    // One private mapping per region unless something needs telling apart: stale
    // spans of an earlier fork (already private) or meshed spans.
    bool walk = !A.all_current || mh_mesh_alias_count() != 0;
    bool failed = false;
    for (unsigned i = 0; i < A.nregions; i++)
        if (A.regions[i].shared) prepare_region(&A.regions[i], old_fd, pfd, cfd, old_epoch, walk, &failed);
    A.epoch++; // every span is stale now, in both processes
    A.all_current = false;
    A.sweep_found = false;
    A.sweep_stale = false;
    A.sweep_idle = false;
    A.sweep_region = 0;
    A.sweep_next = 0;
    if (A.frozen_fd >= 0) mh_os_close(A.frozen_fd); // its leaders stay where they are
    A.frozen_fd = old_fd; // kept until migrated: a failed leader move maps back onto it
    A.frozen_epoch = old_epoch;
    set_current_fd(pfd);
    A.child_fd = cfd;
    if (failed) { // a mapping failed (VMA limit): whatever was not re-mapped is copied
        if (cfd >= 0) mh_os_close(cfd);
        A.child_fd = -1;
        int saved = A.fd;
        A.fd = old_fd;
        prepare_copies();
        A.fd = saved;
    }
}

void mh_arena_fork_parent(void) {
    if (A.child_fd >= 0) mh_os_close(A.child_fd);
    A.child_fd = -1;
    mh_unlock(&A.lock);
    mh_unlock(&A.purge_lock);
    // The moved-aside page tables are unmapped by the migration steps that follow, not
    // here: fork() would wait for it (about as long as the kernel's own fork takes to
    // copy them). Until then PSS counts those pages once more; memory holds them once.
}

// ---- child --------------------------------------------------------------------------

// The child's own file over every region, then each alias onto its leader: the whole
// heap is current again (the copying path).
static void child_map_copies(void) {
    void *p;
    for (unsigned i = 0; i < A.nregions; i++) {
        region_t *g = &A.regions[i];
        if (!g->shared) continue;
        if (mh_os_map_file((void *)g->base, g->size, A.child_fd, g->file_off, &p) != 0)
            mh_fatal("fork: cannot map the child's heap");
        mh_os_no_huge_pages((void *)g->base, g->size);
    }
    A.epoch++;
    for (unsigned i = 0; i < A.nregions; i++) {
        region_t *g = &A.regions[i];
        for (uintptr_t q = g->base; g->shared && q < g->base + g->used;) {
            mh_span_t *s = mh_arena_dir_get(q);
            bool start = s && s->start == q && s->pages;
            if (start) {
                s->backing = A.epoch;
                s->moved = 0;
                s->shared_frozen = 0;
                if (s->kind == MH_KIND_ALIAS &&
                    mh_arena_remap(s->start, mh_span_bytes(s), s->leader->start) != 0)
                    mh_fatal("fork: cannot map a meshed span in the child");
            }
            q = start ? mh_span_end(s) : q + MH_PAGE_SIZE;
        }
    }
    A.all_current = true;
}

// Meshed spans onto the copy of their leader's pages that prepare wrote to the
// child's file; the untouched tails onto that file too.
static void child_map_meshed(void) {
    void *p;
    for (unsigned i = 0; i < A.nregions; i++) {
        region_t *g = &A.regions[i];
        if (!g->shared) continue;
        if (g->used < g->size &&
            mh_os_map_file((void *)(g->base + g->used), g->size - g->used, A.child_fd,
                           file_off(g, g->base + g->used), &p) != 0)
            mh_fatal("fork: cannot map the child's heap");
        if (is_info_region(g) && mh_os_map_file(A.info, MH_PAGE_SIZE, A.child_fd, g->file_off, &p) != 0)
            mh_fatal("fork: cannot map the child's heap");
        for (uintptr_t q = g->base; A.child_meshed && q < g->base + g->used;) {
            mh_span_t *s = mh_arena_dir_get(q);
            bool start = s && s->start == q && s->pages;
            if (start && is_meshed(s)) {
                const mh_span_t *leader = s->kind == MH_KIND_ALIAS ? s->leader : s;
                const region_t *lg = &A.regions[leader->region];
                if (mh_os_map_file((void *)s->start, mh_span_bytes(s), A.child_fd,
                                   file_off(lg, leader->start), &p) != 0)
                    mh_fatal("fork: cannot map a meshed span in the child");
                s->backing = A.epoch;
                s->shared_frozen = 0;
            }
            q = start ? mh_span_end(s) : q + MH_PAGE_SIZE;
        }
    }
}

void mh_arena_fork_child(void) {
    if (A.child_fd >= 0) {
        if (A.child_copies) child_map_copies();
        else child_map_meshed();
        if (A.fd >= 0) mh_os_close(A.fd); // the parent's file
        set_current_fd(A.child_fd);
        A.child_fd = -1;
    }
    if (A.frozen_fd >= 0) { // the child's meshed spans are on its own file
        mh_os_close(A.frozen_fd);
        A.frozen_fd = -1;
    }
    A.child_copies = false;
    A.ndetached = 0; // MADV_DONTFORK: they are not in the child
    mh_lock_reset(&A.lock);
    mh_lock_reset(&A.purge_lock);
}

// ---- migration ------------------------------------------------------------------------

bool mh_arena_migration_idle(void) { return __atomic_load_n(&A.sweep_idle, __ATOMIC_RELAXED); }

bool mh_arena_migration_pending(void) {
    return !__atomic_load_n(&A.all_current, __ATOMIC_RELAXED) ||
           __atomic_load_n(&A.ndetached, __ATOMIC_RELAXED) != 0;
}

// A stale free run gets fresh pages of the current file in place (no copy).
static void refresh_run(mh_span_t *r) {
    if (mh_arena_fresh_map(&A.regions[r->region], r->start, mh_span_bytes(r)) != 0) return;
    mh_arena_run_unlink(r); // also clears its directory entries, as run_insert wants
    r->backing = A.epoch;
    mh_arena_run_insert(r, false);
}

// Live stale spans that move together in one extent: small spans without aliases
// and large ones of at most a chunk. Leaders and bigger large spans move alone.
static bool plain(const mh_span_t *s) {
    if (s->kind == MH_KIND_LARGE) return s->pages <= MIGRATE_CHUNK_PAGES && !s->moved;
    return mh_span_is_small(s) && !s->naliases;
}

static bool migratable(const mh_span_t *s) {
    if (A.fd < 0) return false; // no heap file (degraded): private memory for good
    if (s->kind == MH_KIND_LARGE) return true;
    if (!mh_span_is_small(s)) return false;
    // A leader on a file we no longer hold cannot be moved safely: it stays.
    return !s->naliases || (A.frozen_fd >= 0 && s->backing == A.frozen_epoch);
}

// all_current only when no stale span is left at all: a fork takes its one-mapping
// shortcut on it, which would map a leader still on a frozen file from the current one.
static void sweep_end(void) {
    if (!A.sweep_stale) {
        A.all_current = true;
        if (A.frozen_fd >= 0) mh_os_close(A.frozen_fd);
        A.frozen_fd = -1;
    }
    A.sweep_idle = A.sweep_stale && !A.sweep_found;
    A.sweep_found = false;
    A.sweep_stale = false;
    A.sweep_region = 0;
    A.sweep_next = 0;
}

unsigned mh_arena_migrate_collect(mh_migrant_t *out, unsigned max) {
    unsigned n = 0;
    mh_migrant_t *ext = NULL; // the extent being grown
    mh_lock(&A.lock);
    while (n < max && !A.all_current) {
        if (A.sweep_region >= A.nregions) {
            sweep_end();
            break;
        }
        region_t *g = &A.regions[A.sweep_region];
        uintptr_t p = A.sweep_next > g->base ? A.sweep_next : g->base;
        if (!g->shared || p >= g->base + g->used) {
            A.sweep_region++;
            A.sweep_next = 0;
            ext = NULL;
            continue;
        }
        mh_span_t *s = mh_arena_dir_get(p);
        bool start = s && s->start == p && s->pages;
        A.sweep_next = start ? mh_span_end(s) : p + MH_PAGE_SIZE;
        bool stale = start && !mh_arena_is_current(s);
        if (stale && s->kind != MH_KIND_BUSY) A.sweep_stale = true;
        if (stale && s->kind == MH_KIND_FREE) {
            refresh_run(s);
            A.sweep_found = true;
        }
        if (!stale || !migratable(s)) {
            ext = NULL;
            continue;
        }
        A.sweep_found = true;
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
    mh_unlock(&A.lock);
    return n;
}

// The extent still holds only plain stale spans, exactly tiling [lo, hi).
static bool extent_intact(uintptr_t lo, uintptr_t hi, uint32_t backing) {
    for (uintptr_t p = lo; p < hi;) {
        mh_span_t *s = mh_arena_dir_get(p);
        if (!s || s->start != p || !s->pages || s->backing != backing || !plain(s) ||
            mh_span_end(s) > hi)
            return false;
        p = mh_span_end(s);
    }
    return true;
}

static void extent_mark_current(uintptr_t lo, uintptr_t hi) {
    for (uintptr_t p = lo; p < hi;) {
        mh_span_t *s = mh_arena_dir_get(p);
        s->backing = A.epoch;
        s->shared_frozen = 0;
        p = mh_span_end(s);
    }
}

// Copies [lo, lo+len) through its private mapping into the current file, skipping
// pages that read as zero without reading them (which would allocate them): pages
// this process never populated (pagemap) that are holes in the frozen file. Pages
// of a file we no longer hold are all copied.
static int copy_out(const region_t *g, uintptr_t lo, size_t len, bool know_frozen) {
    uint64_t present[MIGRATE_CHUNK_PAGES];
    size_t npages = len >> MH_PAGE_SHIFT;
    int pm = npages <= MIGRATE_CHUNK_PAGES ? mh_os_open_pagemap() : -1;
    bool sparse = pm >= 0 && know_frozen &&
                  mh_os_read_at(pm, present, npages * sizeof present[0],
                                (lo >> MH_PAGE_SHIFT) * sizeof present[0]) == 0;
    if (pm >= 0) mh_os_close(pm);
    if (!sparse) return mh_os_write_at(A.fd, (void *)lo, len, file_off(g, lo));
    uint64_t data_lo = 0, data_hi = 0; // the frozen file's data extent around the page
    size_t run = 0;                    // pages pending copy, ending at page i
    for (size_t i = 0; i <= npages; i++) {
        bool copy = false;
        if (i < npages) {
            uint64_t off = file_off(g, lo) + (i << MH_PAGE_SHIFT);
            if (off >= data_hi && mh_os_seek_data(A.frozen_fd, off, &data_lo, &data_hi) != 0)
                data_lo = data_hi = UINT64_MAX; // no data from off on
            copy = (present[i] >> 62) != 0 || (off >= data_lo && off < data_hi);
        }
        if (copy) {
            run++;
            continue;
        }
        if (run) {
            uintptr_t from = lo + ((i - run) << MH_PAGE_SHIFT);
            int rc = mh_os_write_at(A.fd, (void *)from, run << MH_PAGE_SHIFT, file_off(g, from));
            if (rc) return rc;
        }
        run = 0;
    }
    return 0;
}

// Maps the current file over the leader's aliases; back onto the frozen file on failure.
static bool move_leader_aliases(mh_span_t *leader, const region_t *lg) {
    void *p;
    uint64_t off = file_off(lg, leader->start);
    for (mh_span_t *a = leader->next_alias; a; a = a->next_alias) {
        if (mh_os_map_file((void *)a->start, mh_span_bytes(a), A.fd, off, &p) == 0) continue;
        for (mh_span_t *b = leader->next_alias; b != a; b = b->next_alias)
            if (mh_os_map_file((void *)b->start, mh_span_bytes(b), A.frozen_fd, off, &p) != 0)
                mh_fatal("fork migration: cannot restore a meshed span");
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
        return extent_intact(m->lo, m->hi, m->backing) && m->backing != A.epoch;
    }
    if (s->gen != m->gen || s->kind != m->kind || mh_arena_is_current(s)) return false;
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
            s->backing = A.epoch;
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
    if (!s) {
        extent_mark_current(lo, hi);
        return;
    }
    if (s->kind == MH_KIND_LARGE) {
        s->moved += (uint32_t)((hi - lo) >> MH_PAGE_SHIFT);
        if (s->moved < s->pages) return;
    }
    s->backing = A.epoch;
    s->moved = 0;
    s->shared_frozen = 0;
    for (mh_span_t *a = s->kind == MH_KIND_LARGE ? NULL : s->next_alias; a; a = a->next_alias)
        a->backing = A.epoch;
}

size_t mh_arena_migrate(const mh_migrant_t *m, const mh_guard_t *guard) {
    size_t moved = 0;
    uintptr_t lo, hi;
    mh_lock(&A.lock);
    // A thread's alternate signal stack must stay writable: the barrier's handler runs
    // on it. Such a span stays on the frozen file until the stack moves.
    if (!mh_arena_fd_still_ours() || !migrant_range(m, &lo, &hi) || mh_barrier_altstack_in(lo, hi)) {
        mh_unlock(&A.lock);
        return 0;
    }
    mh_span_t *s = m->span;
    const region_t *g = &A.regions[s ? s->region : mh_arena_dir_get(lo)->region];
    bool leader = s && s->kind != MH_KIND_LARGE && s->naliases;
    uintptr_t starts[MH_GUARD_MAX];
    size_t lens[MH_GUARD_MAX];
    unsigned nr = 0;
    starts[nr] = lo;
    lens[nr++] = hi - lo;
    for (mh_span_t *a = leader ? s->next_alias : NULL; a && nr < MH_GUARD_MAX; a = a->next_alias) {
        starts[nr] = a->start;
        lens[nr++] = mh_span_bytes(a);
    }
    // Which file the pages came from: the one the last fork froze, or an older one.
    bool know_frozen = A.frozen_fd >= 0 && m->backing == A.frozen_epoch;
    void *p;
    if (guard->raise(nr, starts, lens)) {
        bool ok = copy_out(g, lo, hi - lo, know_frozen && !leader) == 0 &&
                  mh_os_map_file((void *)lo, hi - lo, A.fd, file_off(g, lo), &p) == 0;
        if (ok && leader && !move_leader_aliases(s, g)) {
            if (mh_os_map_file((void *)lo, hi - lo, A.frozen_fd, file_off(g, lo), &p) != 0)
                mh_fatal("fork migration: cannot restore a meshed span");
            ok = false;
        }
        guard->lower(!ok); // on failure the ranges are still read-only
        if (ok) {
            moved = hi - lo;
            if (moved > MH_PAGE_SIZE) mh_os_no_huge_pages((void *)lo, moved);
            // The pages are in memory (just copied): map them, so the program takes no
            // fault for them and PSS counts them again.
            mh_os_populate((void *)lo, moved);
            migrant_done(m, lo, hi);
        }
    }
    mh_unlock(&A.lock);
    return moved;
}
