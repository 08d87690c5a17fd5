// arena.c - regions, page directory and free page runs (see arena.h for the model).
//
// Layer 3 (memory): os, meta_heap, span. The one upward need (handing purges to the
// freephys thread) is a purger callback that thread installs.
#define _GNU_SOURCE
#include "arena.h"
#include "arena_internal.h"

#include "check.h"
#include "checks.h"
#include "info.h"
#include "lock.h"
#include "log.h"
#include "meta_heap.h"
#include "options.h"
#include "os.h"

#include <errno.h>
#include <sys/auxv.h>

arena_state_t mh_arena_st = {.lock = MH_LOCK_INIT, .purge_lock = MH_LOCK_INIT, .fd = -1, .epoch = 1,
                   .all_current = true, .child_fd = -1, .frozen_fd = -1,
                                 .vmas_exact = true};

mh_span_t **mh_dir_top[MH_DIR_TOP];
static mh_meta_pool_t span_pool = MH_META_POOL_INIT(sizeof(mh_span_t));

static int map_counted(const region_t *g, mh_span_t *s, uintptr_t va, size_t len, uint64_t off);

// ---- directory -------------------------------------------------------------------

static mh_span_t **dir_slot(uintptr_t p) {
    mh_span_t **leaf = mh_dir_top[p >> MH_DIR_TOP_SHIFT];
    return &leaf[(p >> MH_PAGE_SHIFT) & (MH_DIR_LEAF - 1)];
}

static void dir_set(uintptr_t p, mh_span_t *s) { mh_plain_store_relaxed(dir_slot(p), s); }
static mh_span_t *dir_get(uintptr_t p) { return *dir_slot(p); }
mh_span_t *mh_arena_dir_get(uintptr_t p) { return dir_get(p); }

static void dir_set_range(mh_span_t *s, mh_span_t *value) {
    for (uintptr_t p = s->start; p < mh_span_end(s); p += MH_PAGE_SIZE) dir_set(p, value);
}

static uint16_t *class_slot(uintptr_t p) {
    mh_span_t **leaf = mh_dir_top[p >> MH_DIR_TOP_SHIFT];
    return (uint16_t *)(leaf + MH_DIR_LEAF) + ((p >> MH_PAGE_SHIFT) & (MH_DIR_LEAF - 1));
}

void mh_arena_set_class(mh_span_t *s, unsigned cls) {
    MH_ASSERT(cls < MH_NUM_CLASSES && s->pages <= MH_MAX_SPAN_PAGES);
    unsigned page = 0;
    for (uintptr_t p = s->start; p < mh_span_end(s); p += MH_PAGE_SIZE, page++)
        mh_plain_store_relaxed(class_slot(p), mh_dir_entry_make(cls, page));
}

static void clear_class(mh_span_t *s) {
    for (uintptr_t p = s->start; p < mh_span_end(s); p += MH_PAGE_SIZE) mh_plain_store_relaxed(class_slot(p), 0);
}

// Leaves are published with release so lock-free readers see a mapped leaf.
static int dir_cover(uintptr_t base, size_t size) {
    for (uintptr_t t = base >> MH_DIR_TOP_SHIFT; t <= (base + size - 1) >> MH_DIR_TOP_SHIFT; t++) {
        if (mh_dir_top[t]) continue;
        void *leaf;
        int rc = mh_meta_map(MH_DIR_LEAF_BYTES, &leaf);
        if (rc) return rc;
        mh_plain_store_release(&mh_dir_top[t], (mh_span_t **)leaf); // pairs: mh_dir_lookup
    }
    return 0;
}

// ---- bins ------------------------------------------------------------------------

static unsigned bin_of(size_t pages) {
    if (pages <= 32) return (unsigned)pages - 1;
    unsigned lg = 63u - (unsigned)__builtin_clzll(pages);
    unsigned b = 32 + (lg - 5) * 4 + (unsigned)((pages >> (lg - 2)) & 3);
    return b < NBINS ? b : NBINS - 1;
}

static bins_t *bins_for(const mh_span_t *run) { return run->list == MH_LIST_DIRTY ? &mh_arena_st.dirty : &mh_arena_st.clean; }

static void lru_unlink(mh_span_t *r) {
    if (r->lru_prev) r->lru_prev->lru_next = r->lru_next;
    else mh_arena_st.lru_head = r->lru_next;
    if (r->lru_next) r->lru_next->lru_prev = r->lru_prev;
    else mh_arena_st.lru_tail = r->lru_prev;
    r->lru_prev = r->lru_next = NULL;
}

static void lru_append(mh_span_t *r) {
    r->lru_next = NULL;
    r->lru_prev = mh_arena_st.lru_tail;
    if (mh_arena_st.lru_tail) mh_arena_st.lru_tail->lru_next = r;
    else mh_arena_st.lru_head = r;
    mh_arena_st.lru_tail = r;
}

static void run_unlink(mh_span_t *r) {
    bins_t *b = bins_for(r);
    unsigned i = bin_of(r->pages);
    if (r->prev) r->prev->next = r->next;
    else b->head[i] = r->next;
    if (r->next) r->next->prev = r->prev;
    if (!b->head[i]) b->nonempty[i / 64] &= ~((uint64_t)1 << (i % 64));
    if (r->list == MH_LIST_DIRTY) {
        lru_unlink(r);
        mh_arena_st.dirty_pages -= r->pages;
    }
    r->prev = r->next = NULL;
}

static void run_link(mh_span_t *r, bool dirty) {
    MH_ASSERT(r->pages > 0 && (r->start & (MH_PAGE_SIZE - 1)) == 0);
    MH_ASSERT(r->start >= mh_arena_st.regions[r->region].base &&
              mh_span_end(r) <= mh_arena_st.regions[r->region].base + mh_arena_st.regions[r->region].size);
    r->kind = MH_KIND_FREE;
    r->list = dirty ? MH_LIST_DIRTY : MH_LIST_CLEAN;
    bins_t *b = bins_for(r);
    unsigned i = bin_of(r->pages);
    r->prev = NULL;
    r->next = b->head[i];
    if (r->next) r->next->prev = r;
    b->head[i] = r;
    b->nonempty[i / 64] |= (uint64_t)1 << (i % 64);
    if (dirty) {
        lru_append(r);
        mh_arena_st.dirty_pages += r->pages;
    }
    dir_set(r->start, r);
    dir_set(mh_span_end(r) - MH_PAGE_SIZE, r);
}

// Merges r (not linked) with free neighbours of the same state, then links it.
static void run_insert(mh_span_t *r, bool dirty) {
    unsigned want = dirty ? MH_LIST_DIRTY : MH_LIST_CLEAN;
    region_t *g = &mh_arena_st.regions[r->region];
    if (r->start > g->base) {
        mh_span_t *prev = dir_get(r->start - MH_PAGE_SIZE);
        if (prev && prev->kind == MH_KIND_FREE && prev->list == want && mh_span_end(prev) == r->start &&
            mh_arena_is_current(prev) == mh_arena_is_current(r)) {
            run_unlink(prev);
            dir_set(mh_span_end(prev) - MH_PAGE_SIZE, NULL);
            dir_set(r->start, NULL);
            r->start = prev->start;
            r->pages += prev->pages;
            mh_meta_free(&span_pool, prev);
        }
    }
    uintptr_t end = mh_span_end(r);
    if (end < g->base + g->used) {
        mh_span_t *next = dir_get(end);
        if (next && next->kind == MH_KIND_FREE && next->list == want && next->start == end &&
            mh_arena_is_current(next) == mh_arena_is_current(r)) {
            run_unlink(next);
            dir_set(next->start, NULL);
            dir_set(end - MH_PAGE_SIZE, NULL);
            r->pages += next->pages;
            mh_meta_free(&span_pool, next);
        }
    }
    run_link(r, dirty);
}

void mh_arena_run_unlink(mh_span_t *r) {
    run_unlink(r);
    dir_set(r->start, NULL);
    dir_set(mh_span_end(r) - MH_PAGE_SIZE, NULL);
}

void mh_arena_run_insert(mh_span_t *r, bool dirty) { run_insert(r, dirty); }

// A run of >= pages pages from the bins, unlinked; NULL when none.
static mh_span_t *bins_take(bins_t *b, size_t pages) {
    unsigned i = bin_of(pages);
    int scanned = 0;
    for (mh_span_t *r = b->head[i]; r && scanned < 16; r = r->next, scanned++)
        if (r->pages >= pages) {
            run_unlink(r);
            return r;
        }
    for (unsigned w = (i + 1) / 64; w < BIN_WORDS; w++) {
        uint64_t m = b->nonempty[w];
        if (w == (i + 1) / 64) m &= ~(uint64_t)0 << ((i + 1) % 64);
        if (!m) continue;
        mh_span_t *r = b->head[w * 64 + (unsigned)__builtin_ctzll(m)];
        run_unlink(r);
        return r;
    }
    return NULL;
}

// ---- regions ---------------------------------------------------------------------

bool mh_arena_fd_still_ours(void) {
    uint64_t dev, ino;
    if (mh_arena_st.fd < 0) return false;
    if (mh_os_file_id(mh_arena_st.fd, &dev, &ino) == 0 && dev == mh_arena_st.fd_dev && ino == mh_arena_st.fd_ino) return true;
    mh_arena_st.fd = -1; // closed or replaced behind our back: new regions go private
    mh_degraded_quiet(MH_DEG_FILE); // meshctl says why meshing stopped
    return false;
}

static void (*info_hook)(void); // see mh_arena_set_info_hook

void mh_arena_set_info_hook(void (*fn)(void)) {
    mh_plain_store_release(&info_hook, fn);
    if (mh_plain_load_acquire(&mh_arena_st.info)) fn(); // the page came first
}

static const unsigned char canary_fallback = 1; // no page: detection off
volatile const unsigned char *mh_fork_canary = &canary_fallback;
static volatile unsigned char *canary_page;

// Arena lock held (or single-threaded start-up). The page is marked before it is
// published, so no thread ever reads 0 from it in the parent.
static void canary_make(void) {
    void *p;
    if (canary_page || mh_os_map_anon(MH_PAGE_SIZE, &p) != 0) return;
    if (mh_os_wipe_on_fork(p, MH_PAGE_SIZE) != 0) {
        mh_os_unmap(p, MH_PAGE_SIZE);
        return;
    }
    canary_page = p;
    canary_page[0] = 1;
    mh_plain_store_release(&mh_fork_canary, canary_page); // pairs: the dependent loads of readers
}

void mh_arena_canary_mark(void) {
    if (canary_page) canary_page[0] = 1;
}

bool mh_arena_canary_wiped(void) { return canary_page && !canary_page[0]; }

// The heap file, with its first page mapped as the info page (meshctl reads it from
// file offset 0); regions take the file from the second page on. Nothing happens
// when it cannot be had (seccomp, an old kernel, RLIMIT_NOFILE or RLIMIT_FSIZE): the
// heap stays on private memory.
static void open_memfd(void) {
    mh_arena_st.fd_tried = true;
    int fd;
    void *info;
    if (mh_os_memfd_create(&fd) != 0) return;
    canary_make(); // before anything of the heap is shared (and only with a file)
    if (mh_os_file_id(fd, &mh_arena_st.fd_dev, &mh_arena_st.fd_ino) != 0 || mh_os_ftruncate(fd, MH_PAGE_SIZE) != 0 ||
        mh_os_map_file(NULL, MH_PAGE_SIZE, fd, 0, &info) != 0) {
        mh_os_close(fd);
        return;
    }
    mh_arena_st.fd = fd;
    mh_arena_st.file_size = MH_PAGE_SIZE;
    mh_plain_store_release(&mh_arena_st.info, info); // pairs: mh_arena_info_page
    mh_degraded_publish(&((mh_info_t *)info)->degraded); // meshctl shows why meshing paused
    void (*hook)(void) = mh_plain_load_acquire(&info_hook);
    if (hook) hook(); // after the page is published: a racing registration may call it too
}

static int map_region(size_t size, region_t *g) {
    void *p;
    if (mh_arena_fd_still_ours() && mh_os_ftruncate(mh_arena_st.fd, mh_arena_st.file_size + size) == 0 &&
        mh_os_map_file(NULL, size, mh_arena_st.fd, mh_arena_st.file_size, &p) == 0) {
        g->file_off = mh_arena_st.file_size;
        g->shared = true;
        mh_arena_st.file_size += size;
    } else { // no heap file, or RLIMIT_FSIZE refuses to grow it: private memory, quietly
        int rc = mh_os_map_anon(size, &p);
        if (rc) return rc;
        g->shared = false;
        if (mh_arena_st.fd_tried && mh_arena_st.file_size) mh_degraded_quiet(MH_DEG_FILE);
    }
    g->base = (uintptr_t)p;
    g->size = size;
    g->used = g->dump_mark = 0;
    return 0;
}

// The heap starts on private memory and takes its file (what meshing needs) once it
// is large enough to be worth meshing (mh_arena_take_file): small and short-lived
// programs never hold the descriptor, nor pay for shared-memory page faults. With the
// threshold at 0 the first region already takes it.
// The configuration is read only after the heap works; MESH_FILE_FROM_MIB is looked up
// here, at the first region, so that 0 takes effect from the first allocation.
extern char **environ;
static bool file_from_start(void) {
    if (!mh_arena_st.nregions && !getauxval(AT_SECURE)) mh_opt_apply_env_early(environ, MH_OPT_file_from_mib);
    return mh_opt[MH_OPT_file_from_mib] == 0;
}

// Adds a region able to hold at least min_bytes; falls back to smaller sizes when the
// address space is limited (RLIMIT_AS, overcommit policy).
static region_t *add_region(size_t min_bytes) {
    if (mh_arena_st.nregions == MAX_REGIONS) return NULL;
    if (!mh_arena_st.fd_tried && file_from_start()) open_memfd();
    if (!mh_arena_st.next_region) mh_arena_st.next_region = FIRST_REGION;
    size_t need = mh_align_up(min_bytes, (size_t)2 << 20);
    size_t size = mh_arena_st.next_region > need ? mh_arena_st.next_region : need;
    region_t *g = &mh_arena_st.regions[mh_arena_st.nregions];
    if (map_region(size, g) != 0 && (size == need || map_region(need, g) != 0)) return NULL;
    if (dir_cover(g->base, g->size) != 0) {
        mh_os_unmap((void *)g->base, g->size);
        return NULL;
    }
    mh_os_no_huge_pages((void *)g->base, g->size);
    // Core dumps: the first step is dumpable from the start (the region is added to be
    // used at once), the rest once used (tail_take). One call instead of excluding all
    // and including the head: a system call and a VMA split less for every process.
    size_t head = g->size < DUMP_STEP ? g->size : DUMP_STEP;
    if (g->size > head) mh_os_dump((void *)(g->base + head), g->size - head, false);
    g->dump_mark = head;
    mh_arena_st.map_gen++;
    if (mh_arena_st.next_region < MAX_REGION) mh_arena_st.next_region *= 2;
    mh_plain_store_release(&mh_arena_st.nregions, mh_arena_st.nregions + 1); // pairs: mh_arena_contains
    return g;
}

// The region's untouched tail could not be mapped onto the current file (a VMA
// limit, a failed mmap): it still maps what it mapped before, so it must never be
// handed out as current. It becomes a free run with that old backing - take_run gives
// a stale run fresh pages before reuse - or, without metadata for the run, it is
// never handed out at all. Arena lock held.
void mh_arena_retire_tail(region_t *g, uint32_t backing) {
    mh_span_t *rest = g->size > g->used ? mh_meta_alloc(&span_pool) : NULL;
    if (rest) {
        rest->start = g->base + g->used;
        rest->pages = (uint32_t)((g->size - g->used) >> MH_PAGE_SHIFT);
        rest->region = (uint16_t)(g - mh_arena_st.regions);
        rest->backing = backing;
    }
    g->used = g->size;
    if (rest) run_insert(rest, false);
}

// Carves pages from the never-used tail of the newest region, adding one if needed.
static mh_span_t *tail_take(size_t pages) {
    size_t bytes = pages << MH_PAGE_SHIFT;
    region_t *g = mh_arena_st.nregions ? &mh_arena_st.regions[mh_arena_st.nregions - 1] : NULL;
    if (!g || g->size - g->used < bytes) {
        mh_span_t *rest = NULL;
        if (g && g->size > g->used && !(rest = mh_meta_alloc(&span_pool))) return NULL;
        region_t *ng = add_region(bytes);
        if (!ng) {
            if (rest) mh_meta_free(&span_pool, rest);
            return NULL;
        }
        if (rest) { // keep the old tail usable as a clean run
            rest->start = g->base + g->used;
            rest->pages = (g->size - g->used) >> MH_PAGE_SHIFT;
            rest->region = (uint16_t)(g - mh_arena_st.regions);
            rest->backing = mh_arena_st.epoch;
            g->used = g->size;
            run_insert(rest, false);
        }
        g = ng;
        if (g->size - g->used < bytes) return NULL;
    }
    mh_span_t *s = mh_meta_alloc(&span_pool);
    if (!s) return NULL;
    s->start = g->base + g->used;
    s->pages = (uint32_t)pages;
    s->region = (uint16_t)(g - mh_arena_st.regions);
    s->backing = mh_arena_st.epoch; // a fork maps every region's untouched tail onto the new file
    g->used += bytes;
    while (g->dump_mark < g->used && g->dump_mark < g->size) { // core dumps: the used part
        size_t step = g->size - g->dump_mark < DUMP_STEP ? g->size - g->dump_mark : DUMP_STEP;
        mh_os_dump((void *)(g->base + g->dump_mark), step, true);
        g->dump_mark += step;
        mh_arena_st.map_gen++;
    }
    return s;
}

// Splits [s->start, s->start + keep pages) off s; the rest becomes a free run.
static bool split_tail(mh_span_t *s, size_t keep, bool dirty) {
    if (s->pages == keep) return true;
    mh_span_t *rest = mh_meta_alloc(&span_pool);
    if (!rest) return false;
    rest->start = s->start + (keep << MH_PAGE_SHIFT);
    rest->pages = (uint32_t)(s->pages - keep);
    rest->region = s->region;
    rest->backing = s->backing;
    s->pages = (uint32_t)keep;
    run_insert(rest, dirty);
    return true;
}

static bool split_head(mh_span_t *s, size_t drop, bool dirty) {
    if (!drop) return true;
    mh_span_t *head = mh_meta_alloc(&span_pool);
    if (!head) return false;
    head->start = s->start;
    head->pages = (uint32_t)drop;
    head->region = s->region;
    head->backing = s->backing;
    s->start += drop << MH_PAGE_SHIFT;
    s->pages -= (uint32_t)drop;
    run_insert(head, dirty);
    return true;
}

// ---- allocation ------------------------------------------------------------------

static mh_span_t *take_run(size_t want, bool *dirty) {
    mh_span_t *r = bins_take(&mh_arena_st.dirty, want);
    *dirty = r != NULL;
    if (!r) r = bins_take(&mh_arena_st.clean, want);
    if (r) {
        dir_set(r->start, NULL);
        dir_set(mh_span_end(r) - MH_PAGE_SIZE, NULL);
        if (mh_arena_is_current(r)) return r;
        // Left on a file a fork froze: fresh zero pages of the current file first.
        if (mh_arena_fresh_map(&mh_arena_st.regions[r->region], r->start, mh_span_bytes(r)) == 0) {
            r->backing = mh_arena_st.epoch;
            *dirty = false;
            return r;
        }
        run_insert(r, true);
        *dirty = false;
    }
    return tail_take(want);
}

// Arena lock held.
int mh_arena_fresh_map(const region_t *g, uintptr_t va, size_t len) {
    mh_arena_st.map_gen++;
    if (!mh_arena_fd_still_ours()) return mh_os_map_anon_at((void *)va, len);
    uint64_t off = g->file_off + (va - g->base);
    int rc = mh_os_punch(mh_arena_st.fd, off, len); // the range may hold data from before a fork
    mh_span_t *s = dir_get(va);
    return rc ? rc : map_counted(g, s && s->start == va ? s : NULL, va, len, off);
}

// A run taken from the bins becomes a live span (arena lock held).
static void make_live(mh_span_t *s, bool map_all) {
    s->kind = MH_KIND_LARGE;
    s->list = MH_LIST_NONE;
    s->moved = 0;
    s->shared_frozen = 0;
    s->views_split = 0;
    s->maps_off = 0;
    s->objs = 1;
    s->gen = mh_span_next_gen();
    if (map_all) dir_set_range(s, s);
    else dir_set(s->start, s);
    mh_arena_st.active_pages += s->pages;
}

// The heap takes its file as soon as it has grown to the threshold (and meshing is
// on), from the allocation that crosses it: the later, the more there is to move.
static void take_file_when_grown(void) {
    if (mh_plain_load_relaxed(&mh_arena_st.fd_tried) || mh_opt[MH_OPT_period_ms] <= 0) return;
    if (mh_arena_active_bytes() >= (size_t)mh_opt[MH_OPT_file_from_mib] << 20) (void)mh_arena_take_file();
}

mh_span_t *mh_arena_alloc(size_t pages, size_t align_pages, bool map_all, bool *zeroed) {
    if (pages == 0 || pages > ((size_t)1 << 31) || align_pages > ((size_t)1 << 30)) return NULL;
    size_t want = pages + (align_pages > 1 ? align_pages - 1 : 0);
    mh_lock(&mh_arena_st.lock);
    bool dirty;
    mh_span_t *s = take_run(want, &dirty);
    if (s) {
        size_t align_bytes = align_pages << MH_PAGE_SHIFT;
        size_t drop = align_pages > 1
                          ? (mh_align_up(s->start, align_bytes) - s->start) >> MH_PAGE_SHIFT : 0;
        if (!split_head(s, drop, dirty) || !split_tail(s, pages, dirty)) {
            run_insert(s, dirty);
            s = NULL;
        }
    }
    if (s) {
        make_live(s, map_all);
        *zeroed = !dirty;
    }
    mh_unlock(&mh_arena_st.lock);
    take_file_when_grown();
    return s;
}

unsigned mh_arena_alloc_spans(size_t pages, unsigned count, mh_span_t **out) {
    if (pages == 0 || pages > MH_MAX_SPAN_PAGES || count == 0) return 0;
    mh_lock(&mh_arena_st.lock);
    bool dirty;
    unsigned n = 0;
    mh_span_t *run = take_run(pages * count, &dirty);
    if (run && !split_tail(run, pages * count, dirty)) {
        run_insert(run, dirty);
        run = NULL;
    }
    while (run) { // carve spans off its head: adjacent, in address order
        mh_span_t *s = run, *rest = NULL;
        if (s->pages > pages) {
            rest = mh_meta_alloc(&span_pool);
            if (!rest) { // no descriptor: the rest stays free
                run_insert(s, dirty);
                break;
            }
            rest->start = s->start + (pages << MH_PAGE_SHIFT);
            rest->pages = (uint32_t)(s->pages - pages);
            rest->region = s->region;
            rest->backing = s->backing;
            s->pages = (uint32_t)pages;
        }
        make_live(s, true);
        out[n++] = s;
        run = rest;
    }
    mh_unlock(&mh_arena_st.lock);
    take_file_when_grown();
    return n;
}

// ---- release ---------------------------------------------------------------------

static bool (*purger_fn)(void); // see mh_arena_set_purger

static size_t dirty_budget(void) {
    size_t b = mh_arena_st.active_pages / 8;
    return b > DIRTY_MIN_PAGES ? b : DIRTY_MIN_PAGES;
}

// Gives a free run's pages back (the run is BUSY: ours alone, no lock needed). A
// stale run cannot be punched through its mapping (a private mapping would fall back
// to the frozen file's data), so it gets fresh pages of the current file instead.
// True when the run now reads as zero. The epoch cannot change here: fork holds
// purge_lock.
static bool release_run(mh_span_t *r) {
    region_t *g = &mh_arena_st.regions[r->region];
    size_t len = mh_span_bytes(r);
    // (private_partial: part of a "private" region may still be a shared mapping of
    // the file, where MADV_DONTNEED does not zero)
    if (!g->shared) return !mh_arena_st.private_partial && mh_os_release((void *)r->start, len, false) == 0;
    if (r->backing == mh_arena_st.epoch && mh_arena_st.fd >= 0 && mh_os_release((void *)r->start, len, true) == 0)
        return true;
    mh_lock(&mh_arena_st.lock); // the mapping change is counted under the lock
    int rc = mh_arena_fresh_map(g, r->start, len);
    mh_unlock(&mh_arena_st.lock);
    if (rc != 0) return false;
    r->backing = mh_arena_st.epoch;
    return true;
}

// Releases the oldest dirty runs until at most `target` dirty pages remain. The runs
// are parked as BUSY (never coalesced) while madvise runs without the arena lock.
static size_t purge_to(size_t target) {
    size_t released = 0;
    mh_lock(&mh_arena_st.purge_lock);
    for (;;) {
        mh_span_t *batch[PURGE_BATCH];
        unsigned n = 0;
        mh_lock(&mh_arena_st.lock);
        while (n < PURGE_BATCH && mh_arena_st.dirty_pages > target && mh_arena_st.lru_head) {
            mh_span_t *r = mh_arena_st.lru_head;
            run_unlink(r);
            r->kind = MH_KIND_BUSY;
            batch[n++] = r;
        }
        mh_unlock(&mh_arena_st.lock);
        if (!n) break;
        bool clean[PURGE_BATCH], any = false;
        for (unsigned i = 0; i < n; i++) {
            clean[i] = release_run(batch[i]);
            released += clean[i] ? mh_span_bytes(batch[i]) : 0;
            any |= clean[i];
        }
        mh_lock(&mh_arena_st.lock);
        for (unsigned i = 0; i < n; i++) {
            dir_set(batch[i]->start, NULL);
            dir_set(mh_span_end(batch[i]) - MH_PAGE_SIZE, NULL);
            run_insert(batch[i], !clean[i]);
        }
        mh_unlock(&mh_arena_st.lock);
        // Nothing could be given back (madvise or the heap file refuses): the runs went
        // back to the dirty list, and taking them again would only fail again.
        if (!any) break;
    }
    mh_unlock(&mh_arena_st.purge_lock);
    return released;
}

void mh_arena_free(mh_span_t *s, bool map_all) {
    MH_ASSERT(s->pages > 0 && mh_arena_st.active_pages >= s->pages);
    // Before taking the lock: a big madvise must not stall other threads. A stale span
    // is left dirty (its pages are replaced when the run is purged or reused).
    // Only where the release means zero pages: private memory, or the current file
    // (a span left on a frozen file, or mapped privately by a fork that had no new
    // file, would fall back to old data or refuse).
    const region_t *g = &mh_arena_st.regions[s->region];
    bool release_now = s->pages >= RELEASE_AT_FREE_PAGES && mh_arena_is_current(s) &&
                       !mh_plain_load_relaxed(&mh_arena_st.private_partial) &&
                       (!g->shared || mh_plain_load_relaxed(&mh_arena_st.fd) >= 0) &&
                       mh_os_release((void *)s->start, mh_span_bytes(s), g->shared) == 0;
    mh_lock(&mh_arena_st.lock);
    if (map_all) {
        dir_set_range(s, NULL);
        clear_class(s);
    } else {
        dir_set(s->start, NULL);
    }
    mh_arena_st.active_pages -= s->pages;
    s->owner = NULL;
    run_insert(s, !release_now);
    bool purge = mh_arena_st.dirty_pages > dirty_budget();
    size_t target = dirty_budget() / 2;
    mh_unlock(&mh_arena_st.lock);
    bool (*purger)(void) = mh_plain_load_acquire(&purger_fn); // pairs: mh_arena_set_purger
    if (purge && !(purger && purger())) purge_to(target);
}

void mh_arena_set_purger(bool (*purger)(void)) { mh_plain_store_release(&purger_fn, purger); }

void mh_arena_purge_excess(void) {
    mh_lock(&mh_arena_st.lock);
    bool purge = mh_arena_st.dirty_pages > dirty_budget();
    size_t target = dirty_budget() / 2;
    mh_unlock(&mh_arena_st.lock);
    if (purge) purge_to(target);
}

size_t mh_arena_purge_all(void) { return purge_to(0); }

bool mh_arena_resize(mh_span_t *s, size_t new_pages) {
    if (new_pages == 0 || new_pages > ((size_t)1 << 31)) return false;
    bool ok = false;
    mh_lock(&mh_arena_st.lock);
    if (new_pages <= s->pages) {
        size_t old = s->pages;
        ok = split_tail(s, new_pages, true);
        if (ok) mh_arena_st.active_pages -= old - s->pages;
    } else {
        uintptr_t end = mh_span_end(s);
        region_t *g = &mh_arena_st.regions[s->region];
        mh_span_t *next = end < g->base + g->used ? dir_get(end) : NULL;
        size_t extra = new_pages - s->pages;
        if (next && next->kind == MH_KIND_FREE && next->start == end && next->pages >= extra &&
            mh_arena_is_current(next) == mh_arena_is_current(s)) {
            bool dirty = next->list == MH_LIST_DIRTY;
            run_unlink(next);
            dir_set(next->start, NULL);
            dir_set(mh_span_end(next) - MH_PAGE_SIZE, NULL);
            s->pages += next->pages;
            mh_meta_free(&span_pool, next);
            ok = split_tail(s, new_pages, dirty);
            if (!ok) s->pages = (uint32_t)(new_pages - extra); // cannot happen: no metadata
            else mh_arena_st.active_pages += extra;
        }
    }
    mh_unlock(&mh_arena_st.lock);
    return ok;
}

bool mh_arena_in_use(void) { return mh_plain_load_acquire(&mh_arena_st.nregions) != 0; } // pairs: add_region

void *mh_arena_info_page(void) { return mh_plain_load_acquire(&mh_arena_st.info); } // pairs: open_memfd

// ---- taking the heap file -------------------------------------------------------------
// Every region the heap has so far becomes part of the new file: its untouched tail is
// mapped from the file at once (nothing to copy), and its used part is left stale, as
// a fork leaves it: live spans move onto the file through migration (arena_fork.c),
// copying only the pages they use, free runs get file pages when they are reused or
// the sweep passes. Until a span has moved it is not meshed.

static bool take_file_locked(void) {
    open_memfd();
    if (mh_arena_st.fd < 0) return false;
    size_t total = mh_arena_st.file_size;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) total += mh_arena_st.regions[i].size;
    if (mh_os_ftruncate(mh_arena_st.fd, total) != 0) { // RLIMIT_FSIZE: stay private
        mh_os_close(mh_arena_st.fd);
        mh_arena_st.fd = -1;
        mh_plain_store_release(&mh_arena_st.info, NULL);
        return false;
    }
    mh_arena_st.anon_epoch = mh_arena_st.epoch++; // what is there now is stale, from private memory
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        g->file_off = mh_arena_st.file_size;
        mh_arena_st.file_size += g->size;
        g->shared = true;
        void *p;
        size_t tail = g->size - g->used;
        if (tail && mh_os_map_file((void *)(g->base + g->used), tail, mh_arena_st.fd,
                                   g->file_off + g->used, &p) != 0)
            mh_arena_retire_tail(g, mh_arena_st.anon_epoch); // still private memory
        g->dump_mark = g->size; // a new mapping is dumpable: so is the whole region now
    }
    mh_arena_st.all_current = mh_arena_st.nregions == 0;
    mh_arena_st.sweep_found = mh_arena_st.sweep_stale = mh_arena_st.sweep_idle = false;
    mh_arena_st.sweep_region = 0;
    mh_arena_st.sweep_next = 0;
    mh_arena_vmas_unknown();
    return true;
}

// shmem_enabled = force puts huge pages under the heap file despite MADV_NOHUGEPAGE:
// worth a line, but only in a process whose heap is on its file - the others never
// use shmem, and start-up does not pay for reading sysfs. Once per process.
void mh_arena_check_thp(void) {
    static _Atomic bool done;
    if (!mh_plain_load_relaxed(&mh_arena_st.info) || mh_exchange_seqcst(&done, true)) return;
    char msg[512];
    if (mh_opt[MH_OPT_thp] != MH_THP_OFF && mh_check_thp("", msg, sizeof msg)) mh_warn("%s", msg);
}

bool mh_arena_take_file(void) {
    if (mh_plain_load_acquire(&mh_arena_st.fd_tried)) return mh_arena_st.fd >= 0;
    mh_lock(&mh_arena_st.purge_lock);
    mh_lock(&mh_arena_st.lock);
    bool took = !mh_arena_st.fd_tried, ok = took ? take_file_locked() : mh_arena_st.fd >= 0;
    mh_unlock(&mh_arena_st.lock);
    mh_unlock(&mh_arena_st.purge_lock);
    if (took && ok) mh_arena_check_thp();
    return ok;
}

bool mh_arena_contains(const void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    unsigned n = mh_plain_load_acquire(&mh_arena_st.nregions); // pairs: add_region
    for (unsigned i = 0; i < n; i++)
        if (p >= mh_arena_st.regions[i].base && p < mh_arena_st.regions[i].base + mh_arena_st.regions[i].size) return true;
    return false;
}

// ---- meshing support -------------------------------------------------------------

static const region_t *region_of(uintptr_t p) {
    for (unsigned i = 0; i < mh_arena_st.nregions; i++)
        if (p >= mh_arena_st.regions[i].base && p < mh_arena_st.regions[i].base + mh_arena_st.regions[i].size) return &mh_arena_st.regions[i];
    return NULL;
}

bool mh_arena_file_ok(void) { return mh_arena_fd_still_ours(); }

bool mh_arena_span_shared(const mh_span_t *s) {
    return mh_arena_st.regions[s->region].shared && s->backing == mh_arena_st.epoch && mh_arena_st.fd >= 0;
}

// ---- VMA accounting -------------------------------------------------------------------
// The kernel merges neighbouring mappings of one file whose offsets continue and whose
// flags match. Every mapping of a shared region is made here, all with the same flags
// (shared, no reserve, read/write, MADV_NOHUGEPAGE), and a region is dumpable up to
// its dump mark: so a shared region is one VMA, plus one while its dump mark is inside
// it, plus one for every page boundary where the file offset does not continue (a
// "break": a meshed alias maps its leader's pages). Breaks change only at the edges of
// a range being remapped. Protections the barrier changes for a moment are not
// counted (the budget keeps room for them).

static uint64_t file_off_of(const region_t *g, uintptr_t va) { return g->file_off + (va - g->base); }

// The file offset the page at p (in region g) maps; arena lock held.
static uint64_t page_off(const region_t *g, uintptr_t p) {
    mh_span_t *s = dir_get(p);
    return s && s->maps_off ? s->maps_off + (p - s->start) : file_off_of(g, p);
}

// Breaks at the two edges of [va, va+len) if the range mapped offsets from off on,
// given everything around it as it is now.
static long edge_breaks(const region_t *g, uintptr_t va, size_t len, uint64_t off) {
    long n = 0;
    uintptr_t end = va + len;
    if (va > g->base) n += page_off(g, va - MH_PAGE_SIZE) + MH_PAGE_SIZE != off;
    if (end < g->base + g->size && end != g->base + g->dump_mark) n += off + len != page_off(g, end);
    return n;
}

// The change in breaks if [va, va+len) of g (one span, mapped uniformly) mapped from off.
static long breaks_delta(const region_t *g, uintptr_t va, size_t len, uint64_t off) {
    return edge_breaks(g, va, len, off) - edge_breaks(g, va, len, page_off(g, va));
}

static size_t region_vmas(const region_t *g) {
    return 1 + (g->dump_mark > 0 && g->dump_mark < g->size);
}

size_t mh_arena_vmas(bool *exact) {
    mh_lock(&mh_arena_st.lock);
    size_t n = mh_arena_st.vma_breaks;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++)
        if (mh_arena_st.regions[i].shared) n += region_vmas(&mh_arena_st.regions[i]);
    if (exact) *exact = mh_arena_st.vmas_exact && mh_arena_st.all_current;
    mh_unlock(&mh_arena_st.lock);
    return n;
}

uint64_t mh_arena_map_gen(void) {
    mh_lock(&mh_arena_st.lock);
    uint64_t gen = mh_arena_st.map_gen;
    mh_unlock(&mh_arena_st.lock);
    return gen;
}

void mh_arena_vmas_set(size_t counted, uint64_t gen) {
    mh_lock(&mh_arena_st.lock);
    if (gen == mh_arena_st.map_gen) {
        size_t base = 0;
        for (unsigned i = 0; i < mh_arena_st.nregions; i++)
            if (mh_arena_st.regions[i].shared) base += region_vmas(&mh_arena_st.regions[i]);
        mh_arena_st.vma_breaks = counted > base ? counted - base : 0;
        mh_arena_st.vmas_exact = true;
    }
    mh_unlock(&mh_arena_st.lock);
}

unsigned mh_arena_ranges(uintptr_t *lo, uintptr_t *hi, unsigned max) {
    unsigned n = mh_plain_load_acquire(&mh_arena_st.nregions), k = 0; // pairs: add_region
    for (unsigned i = 0; i < n && k < max; i++, k++) {
        lo[k] = mh_arena_st.regions[i].base;
        hi[k] = mh_arena_st.regions[i].base + mh_arena_st.regions[i].size;
    }
    return k;
}

long mh_arena_remap_cost(uintptr_t va, size_t len, uintptr_t target) {
    mh_lock(&mh_arena_st.lock);
    const region_t *g = region_of(va), *tg = region_of(target);
    long cost = g && tg ? breaks_delta(g, va, len, file_off_of(tg, target)) : 2;
    mh_unlock(&mh_arena_st.lock);
    return cost;
}

// Maps [va, va+len) (one span's range, s) from the current file at off, keeping the
// count: s->maps_off records what it maps. Arena lock held.
static int map_counted(const region_t *g, mh_span_t *s, uintptr_t va, size_t len, uint64_t off) {
    long delta = breaks_delta(g, va, len, off);
    void *p;
    int rc = mh_os_map_file((void *)va, len, mh_arena_st.fd, off, &p);
    if (rc) return rc;
    if (s) s->maps_off = off == file_off_of(g, va) ? 0 : off;
    mh_arena_st.vma_breaks = (size_t)((long)mh_arena_st.vma_breaks + delta);
    mh_arena_st.map_gen++;
    return 0;
}

int mh_arena_remap_locked(uintptr_t va, size_t len, uintptr_t target) {
    const region_t *g = region_of(va), *tg = region_of(target);
    if (!g || !tg || !tg->shared || mh_arena_st.fd < 0) return EINVAL;
    mh_span_t *s = dir_get(va);
    return map_counted(g, s && s->start == va ? s : NULL, va, len, file_off_of(tg, target));
}

int mh_arena_remap(uintptr_t va, size_t len, uintptr_t target) {
    mh_lock(&mh_arena_st.lock);
    int rc = mh_arena_remap_locked(va, len, target);
    mh_unlock(&mh_arena_st.lock);
    return rc;
}

int mh_arena_punch_range(uintptr_t start, size_t len) {
    const region_t *g = region_of(start);
    if (!g || !g->shared || !mh_arena_fd_still_ours()) return EBADF;
    return mh_os_punch(mh_arena_st.fd, g->file_off + (start - g->base), len);
}

int mh_arena_punch(const mh_span_t *s) {
    if (s->backing != mh_arena_st.epoch) return EBADF; // its pages are on a frozen file
    return mh_arena_punch_range(s->start, mh_span_bytes(s));
}

void mh_arena_dir_point(const mh_span_t *s, mh_span_t *value) {
    for (uintptr_t p = s->start; p < mh_span_end(s); p += MH_PAGE_SIZE) dir_set(p, value);
}

unsigned mh_arena_regions(void) { return mh_plain_load_acquire(&mh_arena_st.nregions); }

// ---- stats and walking -------------------------------------------------------------

size_t mh_arena_active_bytes(void) {
    return mh_plain_load_relaxed(&mh_arena_st.active_pages) << MH_PAGE_SHIFT;
}

void mh_arena_stats(mh_arena_stats_t *out) {
    mh_lock(&mh_arena_st.lock);
    out->mapped = 0;
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) out->mapped += mh_arena_st.regions[i].size;
    out->regions = mh_arena_st.nregions;
    out->active = mh_arena_st.active_pages << MH_PAGE_SHIFT;
    out->dirty = mh_arena_st.dirty_pages << MH_PAGE_SHIFT;
    out->memfd = mh_arena_st.fd >= 0;
    int fd = mh_arena_st.fd;
    mh_unlock(&mh_arena_st.lock);
    out->file_bytes = 0;
    if (fd >= 0) {
        uint64_t b;
        if (mh_os_file_blocks(fd, &b) == 0) out->file_bytes = b;
    }
}

void mh_arena_for_each_span(void (*fn)(mh_span_t *, void *), void *arg) {
    mh_lock(&mh_arena_st.lock);
    for (unsigned i = 0; i < mh_arena_st.nregions; i++) {
        region_t *g = &mh_arena_st.regions[i];
        for (uintptr_t p = g->base; p < g->base + g->used;) {
            mh_span_t *s = mh_arena_walk(&p);
            if (s && s->kind != MH_KIND_FREE && s->kind != MH_KIND_BUSY) fn(s, arg);
        }
    }
    mh_unlock(&mh_arena_st.lock);
}

int mh_arena_reset_alias(mh_span_t *a) {
    mh_lock(&mh_arena_st.lock);
    int rc = mh_arena_fresh_map(&mh_arena_st.regions[a->region], a->start, mh_span_bytes(a));
    if (rc == 0) a->backing = mh_arena_st.epoch;
    mh_unlock(&mh_arena_st.lock);
    return rc;
}
