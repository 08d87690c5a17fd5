// top.c - `meshctl stats --all` and its alias `meshctl top`: one row per process
// that uses libmesh, with what meshing saves it, and the machine's totals.
//
// Everything comes from what the processes already publish, as `meshctl stats PID`
// reads it (the same functions, so the totals are the sum of its figures): the info
// page of the heap file through /proc/PID/fd (meshed bytes, mesh count, the degraded
// reasons), the file's allocated blocks, /proc/PID/smaps_rollup (PSS) and
// /proc/PID/comm. No signal is sent and no process is stopped.
//
// Invariants:
//  - a process is listed when it holds a live libmesh heap file, or when its maps name
//    /libmesh.so (a heap still on private memory: no heap file, nothing meshed; or a
//    heap whose descriptor is gone, its info page read through map_files);
//  - a process that ends while it is read is left out without a word (ENOENT or ESRCH
//    at any step); one the caller may not read is counted and named, never dropped;
//  - saving is the meshed bytes; its share is meshed / (PSS + meshed), PSS being what
//    the process costs now and PSS + meshed what it would cost without meshing.
// The heap file is found first (a few readlinks), so the maps of a process with a
// large meshed heap (many VMAs) are not read; other processes' maps are scanned in
// fixed-size chunks up to the first /libmesh.so.
// The scan (proc_scan) is shared with `meshctl status`, which groups its rows by
// systemd service (tools/status_procs.c); it reads any /proc-shaped tree (ROOT/proc
// for --root).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "info.h"
#include "log.h"
#include "meshctl.h"

#define TEXT_DENIED_NAMED 12 // the text output names this many unreadable processes
#define PROC_DIR 1100             // /proc/PID or ROOT/proc/PID
#define PROC_PATH (PROC_DIR + 64) // a file below it

typedef mesh_proc_t row_t;
typedef proc_scan_t scan_t;

// What each degraded reason is called in the table and in JSON; pause marks the ones
// under which meshing does not go on (the rest are fallbacks the heap carries on with).
static const struct {
    const char *text, *json;
    bool pause;
} reasons[MH_DEG_COUNT] = {
    [MH_DEG_HANDLER] = {"handler replaced", "handler_replaced", true},
    [MH_DEG_VMA_BUDGET] = {"VMA budget", "vma_budget", true},
    [MH_DEG_FILE] = {"descriptor gone", "descriptor_gone", true},
    [MH_DEG_FORK] = {"fork fallback", "fork_fallback", false},
    [MH_DEG_THREAD] = {"thread failed", "thread_failed", false},
    [MH_DEG_MIGRATION] = {"migration failed", "migration_failed", false},
};

static uint32_t pause_bits(uint32_t degraded) {
    uint32_t m = 0;
    for (int k = 0; k < MH_DEG_COUNT; k++)
        if (reasons[k].pause && (degraded & (1u << k))) m |= 1u << k;
    return m;
}

// ---- reading one process ----------------------------------------------------------

static bool denied_err(int err) { return err == EACCES || err == EPERM; }

// DIR/comm (DIR: /proc/PID) without its newline; "" when it cannot be read.
static void read_comm(const char *dir, char *out, size_t len) {
    char path[PROC_PATH];
    snprintf(path, sizeof path, "%s/comm", dir);
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    if (n <= 0) return;
    out[n] = 0;
    if (n > 0 && out[n - 1] == '\n') out[n - 1] = 0;
}

// Whether DIR/maps names /libmesh.so: 1 yes, 0 no, -1 with errno when it cannot be
// read. Read in fixed chunks, keeping the tail of each so a name split across two
// reads is still found; it stops at the first match (libmesh maps early in most
// processes' library area, after the heap).
int maps_name_libmesh(const char *dir) {
    static const char needle[] = "/libmesh.so";
    enum { KEEP = sizeof needle - 2 };
    char path[PROC_PATH], buf[32768];
    snprintf(path, sizeof path, "%s/maps", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t have = 0;
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0) break;
        have += (size_t)n;
        if (memmem(buf, have, needle, sizeof needle - 1)) {
            found = 1;
            break;
        }
        if (have > KEEP) {
            memmove(buf, buf + have - KEEP, KEEP);
            have = KEEP;
        }
    }
    close(fd);
    return found;
}

// The heap figures from an open heap file and its (valid) info page; false when the
// file cannot be looked at.
static bool read_heap(int fd, const mh_info_t *info, row_t *r) {
    struct stat st;
    if (fstat(fd, &st) != 0) return false;
    r->has_file = true;
    r->meshed = info->meshed_bytes;
    r->meshes = info->mesh_count;
    r->degraded = info->degraded & ((1u << MH_DEG_COUNT) - 1);
    r->file = (unsigned long long)st.st_blocks * 512;
    return true;
}

// A heap whose descriptor is gone (closed behind libmesh's back) still has its info
// page mapped: the maps line of the heap file at offset 0, one page long, opened through
// /proc/PID/map_files (which needs root). Only for libmesh processes without a heap
// descriptor, so the line-by-line read of their maps is rare.
static int open_mapped_info(const char *dir) {
    char path[PROC_PATH], line[1024];
    snprintf(path, sizeof path, "%s/maps", dir);
    FILE *f = fopen(path, "re");
    int fd = -1;
    while (f && fd < 0 && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off;
        if (!strstr(line, "memfd:libmesh_arena") || sscanf(line, "%lx-%lx %*s %lx", &lo, &hi, &off) != 3 ||
            off != 0 || hi - lo != 4096)
            continue;
        snprintf(path, sizeof path, "%s/map_files/%lx-%lx", dir, lo, hi);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (f) fclose(f);
    return fd;
}

static void *grow(void *p, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return p;
    size_t c = *cap ? *cap * 2 : 64;
    void *q = realloc(p, c * size);
    if (!q) {
        perror("meshctl");
        exit(EXIT_CANNOT);
    }
    *cap = c;
    return q;
}

static void add_denied(scan_t *s, const char *dir, long pid) {
    s->denied = grow(s->denied, &s->cap_denied, s->ndenied, sizeof *s->denied);
    proc_denied_t *d = &s->denied[s->ndenied++];
    d->pid = pid;
    read_comm(dir, d->comm, sizeof d->comm);
}

// One /proc entry, DIR (/proc/PID): a row, a denied entry, or nothing (not libmesh, or
// gone).
static void scan_pid(scan_t *s, const char *dir, long pid) {
    row_t r = {.pid = pid, .pss = -1};
    mh_info_t info;
    int fd = open_heap_file(dir, &info);
    int fd_err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        bool ok = read_heap(fd, &info, &r);
        close(fd);
        if (!ok) fd = -1; // a heap file without a valid info page yet: as with no file
    }
    if (fd < 0) {
        int m = maps_name_libmesh(dir);
        if (m < 0 && denied_err(errno)) add_denied(s, dir, pid);
        if (m <= 0) return; // not libmesh, or gone
        if (denied_err(fd_err)) { // libmesh, but its heap file is not ours to read
            add_denied(s, dir, pid);
            return;
        }
        int mapped = open_mapped_info(dir);
        if (mapped >= 0) {
            if (read_heap_info(mapped, &info)) read_heap(mapped, &info, &r);
            close(mapped);
        }
    }
    char path[PROC_PATH];
    snprintf(path, sizeof path, "%s/smaps_rollup", dir);
    errno = 0;
    long pss_kb = read_kb(path, "Pss");
    if (pss_kb < 0) { // denied, or it ended meanwhile (gone, or a zombie: no Pss line)
        if (denied_err(errno)) add_denied(s, dir, pid);
        return;
    }
    r.pss = (long long)pss_kb * 1024;
    read_comm(dir, r.comm, sizeof r.comm);
    s->rows = grow(s->rows, &s->cap_rows, s->nrows, sizeof *s->rows);
    s->rows[s->nrows++] = r;
}

// Largest saving first; then larger PSS, then lower PID, so the order is stable.
static int by_saving(const void *a, const void *b) {
    const row_t *x = a, *y = b;
    if (x->meshed != y->meshed) return x->meshed > y->meshed ? -1 : 1;
    if (x->pss != y->pss) return x->pss > y->pss ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

// Every process of PROC but meshctl itself (whose own heap is not of interest).
int proc_scan(scan_t *s, const char *proc) {
    s->nrows = s->ndenied = 0;
    DIR *d = opendir(proc);
    if (!d) return -1;
    long self = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!*e->d_name || strspn(e->d_name, "0123456789") != strlen(e->d_name)) continue;
        long pid = strtol(e->d_name, NULL, 10);
        if (pid == self) continue;
        char dir[PROC_DIR];
        snprintf(dir, sizeof dir, "%s/%s", proc, e->d_name);
        scan_pid(s, dir, pid);
    }
    closedir(d);
    qsort(s->rows, s->nrows, sizeof *s->rows, by_saving);
    return 0;
}

void proc_scan_free(scan_t *s) {
    free(s->rows);
    free(s->denied);
    *s = (scan_t){0};
}

// ---- output ------------------------------------------------------------------------

void proc_totals_add(proc_totals_t *t, const row_t *r) {
    t->pss += (unsigned long long)r->pss;
    t->meshed += r->meshed;
    t->file += r->file;
    t->meshes += r->meshes;
    t->processes++;
    t->paused += pause_bits(r->degraded) != 0;
}

static proc_totals_t totals_of(const scan_t *s) {
    proc_totals_t t = {0};
    for (size_t i = 0; i < s->nrows; i++) proc_totals_add(&t, &s->rows[i]);
    return t;
}

// meshed / (pss + meshed): the share of what the process would cost without meshing.
double saving_pct(unsigned long long pss, unsigned long long meshed) {
    return pss + meshed ? 100.0 * (double)meshed / (double)(pss + meshed) : 0.0;
}

// Bytes for a person: B, KiB, MiB, GiB, TiB with one decimal.
void human_bytes(unsigned long long v, char *out, size_t len) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 4) x /= 1024, u++;
    if (u == 0) snprintf(out, len, "%llu B", v);
    else snprintf(out, len, "%.1f %s", x, unit[u]);
}

// A command name for the table: 15 columns at most, anything unprintable as '?'.
void printable_comm(const char *s, char *out, size_t len) {
    size_t i = 0;
    for (; *s && i + 1 < len && i < 15; s++) {
        unsigned char c = (unsigned char)*s;
        out[i++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    out[i] = 0;
}

// The PAUSED column: "no", or the pause reasons; "no heap file" without one.
static void pause_text(const row_t *r, char *out, size_t len) {
    if (!r->has_file) {
        snprintf(out, len, "no heap file");
        return;
    }
    uint32_t p = pause_bits(r->degraded);
    size_t n = 0;
    out[0] = 0;
    for (int k = 0; k < MH_DEG_COUNT; k++)
        if (p & (1u << k)) n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s", n ? ", " : "", reasons[k].text);
    if (!p) snprintf(out, len, "no");
}

static void print_row(long pid, const char *comm, unsigned long long pss, unsigned long long meshed, bool has_file,
                      unsigned long long file, unsigned long long meshes, const char *paused) {
    char c[16], p[24], m[24], f[24], pid_s[24];
    printable_comm(comm, c, sizeof c);
    human_bytes(pss, p, sizeof p);
    human_bytes(meshed, m, sizeof m);
    if (has_file) human_bytes(file, f, sizeof f);
    else snprintf(f, sizeof f, "-");
    if (pid >= 0) snprintf(pid_s, sizeof pid_s, "%ld", pid);
    else snprintf(pid_s, sizeof pid_s, "total");
    printf("%7s %-15s %10s %10s %6.1f%% %10s %8llu  %s\n", pid_s, c, p, m, saving_pct(pss, meshed), f, meshes,
           paused);
}

// The unreadable processes, after the table: how many, and which (the first few).
static void print_denied(const scan_t *s) {
    if (!s->ndenied) return;
    printf("%zu process%s could not be read (permission; run as their user or root):", s->ndenied,
           s->ndenied > 1 ? "es" : "");
    for (size_t i = 0; i < s->ndenied && i < TEXT_DENIED_NAMED; i++) {
        char c[16];
        printable_comm(s->denied[i].comm, c, sizeof c);
        printf("%s %ld%s%s%s", i ? "," : "", s->denied[i].pid, *c ? " (" : "", c, *c ? ")" : "");
    }
    if (s->ndenied > TEXT_DENIED_NAMED) printf(", and %zu more (--json lists all)", s->ndenied - TEXT_DENIED_NAMED);
    printf("\n");
}

static void print_table(const scan_t *s) {
    printf("%7s %-15s %10s %10s %7s %10s %8s  %s\n", "PID", "COMMAND", "PSS", "MESHED", "SAVING", "HEAP FILE",
           "MESHES", "PAUSED");
    for (size_t i = 0; i < s->nrows; i++) {
        const row_t *r = &s->rows[i];
        char why[128];
        pause_text(r, why, sizeof why);
        print_row(r->pid, r->comm, (unsigned long long)r->pss, r->meshed, r->has_file, r->file, r->meshes, why);
    }
    proc_totals_t t = totals_of(s);
    char why[64];
    snprintf(why, sizeof why, "%zu process%s, %zu paused", s->nrows, s->nrows == 1 ? "" : "es", t.paused);
    print_row(-1, "", t.pss, t.meshed, true, t.file, t.meshes, why);
    print_denied(s);
}

// A JSON string: quotes, backslashes and control characters escaped; bytes that are
// not UTF-8 (comm is cut at 15 bytes, maybe inside a character) become U+FFFD.
static void json_string(const char *s) {
    putchar('"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') printf("\\%c", c), p++;
        else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c), p++;
        else if (c < 0x80) putchar(c), p++;
        else {
            int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            int ok = n > 0;
            for (int k = 1; ok && k < n; k++) ok = (p[k] & 0xc0) == 0x80;
            if (ok && n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) ok = 0;
            if (ok && n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) ok = 0;
            if (ok) fwrite(p, 1, (size_t)n, stdout), p += n;
            else fputs("\\ufffd", stdout), p++;
        }
    }
    putchar('"');
}

static void json_reasons(uint32_t bits) {
    putchar('[');
    int first = 1;
    for (int k = 0; k < MH_DEG_COUNT; k++)
        if (bits & (1u << k)) printf("%s\"%s\"", first ? "" : ",", reasons[k].json), first = 0;
    putchar(']');
}

static void json_row(const row_t *r) {
    printf("{\"pid\":%ld,\"command\":", r->pid);
    json_string(r->comm);
    printf(",\"pss_bytes\":%lld,\"meshed_bytes\":%llu,\"saving_percent\":%.2f,\"heap_file\":%s,"
           "\"heap_file_bytes\":%llu,\"mesh_count\":%llu,\"paused\":%s,\"paused_why\":",
           r->pss, r->meshed, saving_pct((unsigned long long)r->pss, r->meshed), r->has_file ? "true" : "false",
           r->file, r->meshes, pause_bits(r->degraded) ? "true" : "false");
    json_reasons(pause_bits(r->degraded));
    printf(",\"degraded\":");
    json_reasons(r->degraded);
    putchar('}');
}

// One object on one line (so --watch --json is a stream of JSON lines).
static void print_json(const scan_t *s) {
    printf("{\"processes\":[");
    for (size_t i = 0; i < s->nrows; i++) {
        if (i) putchar(',');
        json_row(&s->rows[i]);
    }
    proc_totals_t t = totals_of(s);
    printf("],\"totals\":{\"processes\":%zu,\"pss_bytes\":%llu,\"meshed_bytes\":%llu,\"saving_percent\":%.2f,"
           "\"heap_file_bytes\":%llu,\"mesh_count\":%llu,\"paused\":%zu,\"unreadable\":%zu},\"unreadable\":[",
           s->nrows, t.pss, t.meshed, saving_pct(t.pss, t.meshed), t.file, t.meshes, t.paused, s->ndenied);
    for (size_t i = 0; i < s->ndenied; i++) {
        printf("%s{\"pid\":%ld,\"command\":", i ? "," : "", s->denied[i].pid);
        if (s->denied[i].comm[0]) json_string(s->denied[i].comm);
        else printf("null");
        putchar('}');
    }
    printf("]}\n");
}

// ---- the command -------------------------------------------------------------------

// --watch's argument: a positive, finite number of seconds (at most a day).
static bool parse_seconds(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v <= 0 || v > 86400) return false;
    *out = v;
    return true;
}

static void sleep_seconds(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int top_usage(const char *name) {
    printf("usage: meshctl %s [--json] [--watch SECONDS]\n", name);
    return 0;
}

// One-line error (no "Try --help" line: the line says what is wrong), exit 2.
static int top_error(const char *name, const char *what, const char *arg) {
    fprintf(stderr, "meshctl: %s: ", name);
    fprintf(stderr, what, arg);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

int cmd_top(const char *name, int argc, char **argv) {
    bool json = false;
    double watch = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return top_usage(name);
        if (!strcmp(a, "--all")) continue;
        if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--watch") || !strncmp(a, "--watch=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : i + 1 < argc ? argv[++i] : NULL;
            if (!v) return top_error(name, "--watch needs a number of seconds%s", "");
            if (!parse_seconds(v, &watch))
                return top_error(name, "--watch takes a positive number of seconds (at most 86400), not '%s'", v);
        } else
            return top_error(name, "unexpected argument '%s' (usage: --json, --watch SECONDS)", a);
    }
    scan_t s = {0};
    for (;;) {
        if (proc_scan(&s, "/proc") != 0) {
            fprintf(stderr, "meshctl: %s: cannot read /proc: %s\n", name, strerror(errno));
            proc_scan_free(&s);
            return EXIT_CANNOT;
        }
        if (watch > 0 && !json) printf("\033[H\033[2J");
        if (json) print_json(&s);
        else print_table(&s);
        fflush(stdout);
        if (watch <= 0) break;
        sleep_seconds(watch);
    }
    proc_scan_free(&s);
    return 0;
}
