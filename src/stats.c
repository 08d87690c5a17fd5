// stats.c - on-demand statistics (see stats.h).
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "arena.h"
#include "log.h"
#include "str.h"
#include "thread_heap.h"

static void count_span(mh_span_t *s, void *arg) {
    mh_stats_t *st = arg;
    if (mh_span_is_small(s)) {
        st->allocated += (size_t)mh_span_in_use(s) * s->obj_size;
        st->small_spans++;
    } else {
        st->allocated += (size_t)s->pages << MH_PAGE_SHIFT;
        st->large_objects++;
    }
}

static void count_cached(mh_tlh_t *t, void *arg) {
    mh_stats_t *st = arg;
    st->threads++;
    for (unsigned c = 0; c < MH_NUM_CLASSES; c++) {
        size_t cached = (size_t)t->sv[c].n * mh_classes[c].size;
        st->allocated -= cached < st->allocated ? cached : st->allocated;
    }
}

// Parses "Pss:   1234 kB" out of smaps_rollup with plain read(2).
static size_t read_pss(void) {
    int saved = errno;
    size_t pss = 0;
    int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return 0;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    errno = saved;
    if (n <= 0) return 0;
    buf[n] = 0;
    for (char *p = buf; *p; p++) {
        if ((p == buf || p[-1] == '\n') && p[0] == 'P' && p[1] == 's' && p[2] == 's' && p[3] == ':') {
            size_t kb = 0;
            for (p += 4; *p == ' '; p++) {}
            for (; *p >= '0' && *p <= '9'; p++) kb = kb * 10 + (size_t)(*p - '0');
            pss = kb * 1024;
            break;
        }
    }
    return pss;
}

void mh_stats_collect(mh_stats_t *st) {
    *st = (mh_stats_t){0};
    mh_arena_for_each_span(count_span, st);
    mh_tlh_for_each(count_cached, st);
    mh_arena_stats_t a;
    mh_arena_stats(&a);
    st->active = a.active;
    st->mapped = a.mapped;
    st->dirty = a.dirty;
    st->memfd_bytes = a.file_bytes;
    st->memfd = a.memfd;
    st->regions = a.regions;
    st->resident = read_pss();
}

void mh_stats_print(void) {
    mh_stats_t st;
    mh_stats_collect(&st);
    char buf[1024];
    size_t n = mh_snprintf(buf, sizeof buf,
        "libmesh heap statistics\n"
        "  allocated bytes  = %zu  (objects in use; %zu small spans, %zu large objects)\n"
        "  active bytes     = %zu  (pages of live spans and large objects)\n"
        "  dirty bytes      = %zu  (free pages not yet returned to the system)\n"
        "  mapped bytes     = %zu  (address space in %zu regions, %s)\n"
        "  heap file bytes  = %zu  (physical pages the memfd holds)\n"
        "  resident PSS     = %zu  (whole process, /proc/self/smaps_rollup)\n"
        "  threads          = %zu\n",
        st.allocated, st.small_spans, st.large_objects, st.active, st.dirty, st.mapped,
        st.regions, st.memfd ? "memfd" : "private memory", st.memfd_bytes, st.resident,
        st.threads);
    mh_log_write(buf, n);
}
