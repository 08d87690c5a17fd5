// stats.c - on-demand statistics (see stats.h).
//
// Layer 7 (runtime): arena, thread_heap (cached slots), os, info.
#define _GNU_SOURCE
#include "stats.h"

#include <stdarg.h>
#include <unistd.h>

#include "arena.h"
#include "info.h"
#include "log.h"
#include "mesh_sched.h"
#include "os.h"
#include "str.h"
#include "thread_heap.h"

static void count_span(mh_span_t *s, void *arg) {
    mh_stats_t *st = arg;
    if (s->kind == MH_KIND_ALIAS) {
        st->cls[s->cls].aliases++;
        return;
    }
    if (!mh_span_is_small(s)) {
        st->large_bytes += mh_span_bytes(s);
        st->large_objects++;
        return;
    }
    mh_class_stats_t *c = &st->cls[s->kind];
    unsigned used = mh_span_in_use(s);
    st->allocated += (size_t)used * s->obj_size;
    st->small_spans++;
    c->spans++;
    c->in_use += used;
    c->occupancy[used * 10 / (s->objs + 1u)]++;
    if (mh_load_relaxed(&s->owner)) c->attached++;
    else if (s->list == MH_LIST_PARTIAL) c->partial++;
    else if (s->list == MH_LIST_EMPTY || s->list == MH_LIST_FRESH) c->empty++;
    else c->full++;
}

static void count_cached(mh_tlh_t *t, void *arg) {
    mh_stats_t *st = arg;
    st->threads++;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        size_t n = t->sv[c].n;
        st->cls[c].in_use -= n < st->cls[c].in_use ? n : st->cls[c].in_use;
        size_t cached = n * mh_classes[c].size;
        st->allocated -= cached < st->allocated ? cached : st->allocated;
    }
}

// Parses "Pss:   1234 kB" out of smaps_rollup.
static size_t read_pss(void) {
    char buf[4096];
    if (mh_os_read_file("/proc/self/smaps_rollup", buf, sizeof buf) <= 0) return 0;
    for (char *p = buf; *p; p++) {
        if ((p == buf || p[-1] == '\n') && p[0] == 'P' && p[1] == 's' && p[2] == 's' && p[3] == ':') {
            size_t kb = 0;
            for (p += 4; *p == ' '; p++) {}
            for (; *p >= '0' && *p <= '9'; p++) kb = kb * 10 + (size_t)(*p - '0');
            return kb * 1024;
        }
    }
    return 0;
}

void mh_stats_collect(mh_stats_t *st) { mh_stats_collect_some(st, MH_STATS_ALL); }

void mh_stats_collect_some(mh_stats_t *st, int what) {
    *st = (mh_stats_t){0};
    if (what & MH_STATS_WALK) {
        mh_arena_for_each_span(count_span, st);
        mh_tlh_for_each(count_cached, st);
        st->allocated += st->large_bytes;
    }
    mh_arena_stats_t a;
    mh_arena_stats(&a);
    st->active = a.active;
    st->mapped = a.mapped;
    st->dirty = a.dirty;
    st->memfd_bytes = a.file_bytes;
    st->memfd = a.memfd;
    st->regions = a.regions;
    if (what & MH_STATS_PSS) st->resident = read_pss();
    mh_info_t *info = mh_arena_info_page();
    if (info) {
        st->mesh_count = mh_load_relaxed(&info->mesh_count);
        st->meshed_bytes = mh_load_relaxed(&info->meshed_bytes);
        st->meshed_hwm = mh_load_relaxed(&info->meshed_hwm);
    }
}

// A report is formatted into a stack buffer that is written out whenever it fills:
// each report has its own (concurrent dumps never share a descriptor or a buffer).
typedef struct emitter_s {
    int fd;
    size_t n;
    char buf[2048];
} emitter_t;

static void emit(emitter_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(emitter_t *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (e->n + 200 > sizeof e->buf) { // flush before the buffer could overflow
        mh_log_write_fd(e->fd, e->buf, e->n);
        e->n = 0;
    }
    e->n += mh_vsnprintf(e->buf + e->n, sizeof e->buf - e->n, fmt, ap);
    va_end(ap);
}

static void print_classes(const mh_stats_t *st, emitter_t *e) {
    emit(e, "  per size class (spans by occupancy: 0-10%% ... 90-100%%)\n");
    emit(e, "  %6s %6s %9s %5s %5s %5s %5s %6s  %s\n", "size", "spans", "in use", "part", "full", "empty",
         "attch", "alias", "occupancy histogram");
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        const mh_class_stats_t *k = &st->cls[c];
        if (!k->spans) continue;
        emit(e, "  %6u %6zu %9zu %5zu %5zu %5zu %5zu %6zu ", mh_classes[c].size, k->spans, k->in_use,
             k->partial, k->full, k->empty, k->attached, k->aliases);
        for (int b = 0; b < 10; b++) emit(e, " %zu", k->occupancy[b]);
        emit(e, "\n");
    }
}

void mh_stats_print(int level, int fd) {
    mh_stats_t st;
    mh_stats_collect(&st);
    emitter_t e = {.fd = fd, .n = 0};
    emit(&e, "libmesh heap statistics (pid %d)\n", (int)getpid());
    emit(&e, "  allocated bytes  = %zu  (objects in use; %zu small spans, %zu large objects)\n",
         st.allocated, st.small_spans, st.large_objects);
    emit(&e, "  active bytes     = %zu  (pages of live spans and large objects)\n", st.active);
    emit(&e, "  dirty bytes      = %zu  (free pages not yet returned to the system)\n", st.dirty);
    emit(&e, "  mapped bytes     = %zu  (address space in %zu regions, %s)\n", st.mapped, st.regions,
         st.memfd ? "memfd" : "private memory");
    emit(&e, "  heap file bytes  = %zu  (physical pages the memfd holds)\n", st.memfd_bytes);
    emit(&e, "  resident PSS     = %zu  (whole process, /proc/self/smaps_rollup)\n", st.resident);
    emit(&e, "  mesh count       = %zu\n", st.mesh_count);
    emit(&e, "  meshed bytes     = %zu  (high-water mark %zu)\n", st.meshed_bytes, st.meshed_hwm);
    mh_mesh_stats_t ms;
    mh_mesh_stats(&ms);
    emit(&e, "  heap VMAs        = %zu  (%zu.%03zu per meshed span, %zu meshed spans; budget %zu, "
         "program %zu)\n", (size_t)ms.heap_vmas, (size_t)ms.vmas_per_alias_x1000 / 1000,
         (size_t)ms.vmas_per_alias_x1000 % 1000, (size_t)ms.aliases, (size_t)ms.vma_limit,
         (size_t)ms.program_vmas);
    emit(&e, "  threads          = %zu\n", st.threads);
    if (level >= 2) print_classes(&st, &e);
    mh_log_write_fd(fd, e.buf, e.n);
}
