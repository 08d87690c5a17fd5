// status_procs.c - what `meshctl status` shows of the processes that use libmesh: for
// each service with libmesh's drop-in, its processes and their combined PSS, meshed
// bytes and saving; then the other processes using libmesh (preloaded system-wide or
// by hand, or in a service without the drop-in), and the machine's total.
//
// The processes and their figures come from proc_scan (tools/top.c), the scan of
// `meshctl top`, so they are the figures of `meshctl stats PID`. A process's systemd
// unit is read from PROC/PID/cgroup, never asked of systemd, so this works where
// systemd does not run (a container, an image, a test's fake root: PROC is ROOT/proc
// with --root):
//  - the path is that of the "name=systemd" hierarchy (cgroup v1 and hybrid), else
//    that of the unified one ("0::PATH", cgroup v2);
//  - the unit is the path's first component that ends in ".service": systemd nests
//    slices around services, never a service in a service, and what a service
//    delegates below itself ("/system.slice/foo.service/sub") is still that service
//    (for a user manager, "user@1000.service", its user units are its processes);
//  - a template instance "foo@bar.service" is covered by the drop-in of
//    "foo@bar.service", else by that of its template "foo@.service".
// A process that ends while it is read is left out without a word, as in `top`; a
// cgroup file that cannot be read or names no systemd path costs one line on stderr,
// and its process is counted among the others.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshctl.h"

#define MAX_SERVICES 256
#define PIDS_NAMED 16 // each group names this many processes, then counts the rest
#define UNIT_LEN 256

// Where a process is counted: the index of its drop-in service, the others
// (nservices), or nowhere (-1: it ended meanwhile).
typedef struct {
    int group;
    char unit[UNIT_LEN]; // its service, "" when it is in none
} place_t;

typedef struct {
    const proc_scan_t *scan;
    place_t *rows, *denied; // one per scan row, one per unreadable process
    char **services;
    int nservices;
} view_t;

// ---- the unit of a process ----------------------------------------------------------

// How a cgroup file line "ID:CONTROLLERS:PATH" names systemd's tree: 2 the name=systemd
// hierarchy, 1 the unified one (ID 0, no controllers), 0 neither or not such a line.
// *PATH is set for 1 and 2.
static int systemd_line(const char *line, const char **path) {
    const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c1 == line || strspn(line, "0123456789") != (size_t)(c1 - line) || c2[1] != '/')
        return 0;
    *path = c2 + 1;
    for (const char *c = c1 + 1; c < c2;) { // the comma-separated controllers
        size_t n = strcspn(c, ",:");
        if (n == 12 && !strncmp(c, "name=systemd", 12)) return 2;
        c += n + (c[n] == ',');
    }
    return c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
}

// The first component of PATH that names a service, into OUT; false when none does.
static bool service_of_path(const char *path, char *out, size_t len) {
    for (const char *p = path; *p;) {
        p += strspn(p, "/");
        size_t n = strcspn(p, "/");
        if (n > 8 && n < len && !strncmp(p + n - 8, ".service", 8)) {
            snprintf(out, len, "%.*s", (int)n, p);
            return true;
        }
        p += n;
    }
    return false;
}

typedef enum { UNIT_FOUND, UNIT_NONE, UNIT_GONE, UNIT_BAD } unit_result_t;

// The service PID runs in, from PROC/PID/cgroup. UNIT_BAD leaves in WHY what is wrong.
static unit_result_t unit_of(const char *proc, long pid, char *unit, size_t len, char *why,
                             size_t whylen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%ld/cgroup", proc, pid);
    unit[0] = 0;
    char *text = read_text_file(path, 1 << 16);
    if (!text) {
        if (errno == ENOENT || errno == ESRCH) return UNIT_GONE;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return UNIT_BAD;
    }
    const char *best = NULL;
    int rank = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *p;
        int r = systemd_line(line, &p);
        if (r > rank) rank = r, best = p;
    }
    unit_result_t res = UNIT_NONE;
    if (!best) {
        snprintf(why, whylen, "%s: no systemd cgroup line (0::/PATH or N:name=systemd:/PATH)", path);
        res = UNIT_BAD;
    } else if (service_of_path(best, unit, len))
        res = UNIT_FOUND;
    free(text);
    return res;
}

// The index of the drop-in service that covers UNIT (the instance's own first, then
// its template's); -1 when none does.
static int service_index(const view_t *v, const char *unit) {
    char tmpl[UNIT_LEN];
    for (int i = 0; i < v->nservices; i++)
        if (!strcmp(v->services[i], unit)) return i;
    if (template_name(unit, tmpl, sizeof tmpl) != 0) return -1;
    for (int i = 0; i < v->nservices; i++)
        if (!strcmp(v->services[i], tmpl)) return i;
    return -1;
}

// Places one process: its group, or -1 when it ended meanwhile.
static void place(const view_t *v, const char *proc, long pid, place_t *out) {
    char why[1400];
    switch (unit_of(proc, pid, out->unit, sizeof out->unit, why, sizeof why)) {
    case UNIT_GONE:
        out->group = -1;
        return;
    case UNIT_BAD:
        fprintf(stderr, "meshctl: status: %s; process %ld is counted among the others\n", why, pid);
        break;
    default:
        break;
    }
    int i = out->unit[0] ? service_index(v, out->unit) : -1;
    out->group = i >= 0 ? i : v->nservices;
}

// ---- output -------------------------------------------------------------------------

// "PID (comm)", or "PID (comm in unit)" when its unit is not the group's name (an
// instance of a template, or one of the others).
static void print_process(long pid, const char *comm, const char *unit, const char *group) {
    char c[16];
    printable_comm(comm, c, sizeof c);
    bool with_unit = *unit && (!group || strcmp(unit, group) != 0);
    printf("%ld (%s%s%s)", pid, *c ? c : "?", with_unit ? " in " : "", with_unit ? unit : "");
}

// One line listing the group's processes of one kind (readable rows, or unreadable).
static void print_members(const view_t *v, int g, bool denied, const char *label) {
    const proc_scan_t *s = v->scan;
    size_t total = denied ? s->ndenied : s->nrows, n = 0;
    const place_t *pl = denied ? v->denied : v->rows;
    const char *group = g < v->nservices ? v->services[g] : NULL;
    for (size_t i = 0; i < total; i++) n += pl[i].group == g;
    if (denied && !n) return;
    printf("  %s: %zu", label, n);
    size_t shown = 0;
    for (size_t i = 0; i < total && shown < PIDS_NAMED; i++) {
        if (pl[i].group != g) continue;
        fputs(shown++ ? ", " : ": ", stdout);
        if (denied) print_process(s->denied[i].pid, s->denied[i].comm, pl[i].unit, group);
        else print_process(s->rows[i].pid, s->rows[i].comm, pl[i].unit, group);
    }
    if (n > shown) printf(", and %zu more", n - shown);
    if (!n && g < v->nservices)
        printf(" (the service is not running, or was not restarted since libmesh was enabled)");
    printf("\n");
}

// "  memory: PSS 14.2 MiB (14562 kB), meshed 3.1 MiB (3172 kB), saving 17.9%".
static void print_memory(const proc_totals_t *t) {
    char pss[24], meshed[24];
    human_bytes(t->pss, pss, sizeof pss);
    human_bytes(t->meshed, meshed, sizeof meshed);
    printf("  memory: PSS %s (%llu kB), meshed %s (%llu kB), saving %.1f%%\n", pss, t->pss / 1024, meshed,
           t->meshed / 1024, saving_pct(t->pss, t->meshed));
}

// Group G's processes, their combined figures, and those that could not be read.
static void print_group(const view_t *v, int g) {
    proc_totals_t t = {0};
    for (size_t i = 0; i < v->scan->nrows; i++)
        if (v->rows[i].group == g) proc_totals_add(&t, &v->scan->rows[i]);
    print_members(v, g, false, "processes");
    if (t.processes) print_memory(&t);
    print_members(v, g, true, "could not be read (permission; run as their user or root)");
}

// Each service with the drop-in, with its group when the processes were read.
static void print_services(const view_t *v) {
    if (!v->nservices) printf("services: none\n");
    for (int g = 0; g < v->nservices; g++) {
        printf("service: %s (/etc/systemd/system/%s.d/" MESH_DROPIN_NAME ")\n", v->services[g], v->services[g]);
        if (v->rows) print_group(v, g);
    }
}

static void print_view(const view_t *v) {
    print_services(v);
    printf("other processes using libmesh (in no service with the drop-in):\n");
    print_group(v, v->nservices);
    proc_totals_t t = {0};
    size_t unreadable = 0;
    for (size_t i = 0; i < v->scan->nrows; i++)
        if (v->rows[i].group >= 0) proc_totals_add(&t, &v->scan->rows[i]);
    for (size_t i = 0; i < v->scan->ndenied; i++) unreadable += v->denied[i].group >= 0;
    printf("processes using libmesh now: %zu", t.processes);
    if (unreadable) printf(" (and %zu that could not be read)", unreadable);
    printf("\n");
    if (t.processes) print_memory(&t);
}

// ---- the command's part --------------------------------------------------------------

static place_t *place_all(const view_t *v, const char *proc, size_t n, bool denied) {
    place_t *pl = calloc(n ? n : 1, sizeof *pl);
    if (!pl) {
        perror("meshctl");
        exit(EXIT_CANNOT);
    }
    for (size_t i = 0; i < n; i++)
        place(v, proc, denied ? v->scan->denied[i].pid : v->scan->rows[i].pid, &pl[i]);
    return pl;
}

void status_services(const char *root) {
    char *services[MAX_SERVICES], proc[1100];
    proc_scan_t scan = {0};
    view_t v = {.scan = &scan, .services = services};
    v.nservices = dropin_services(root, services, MAX_SERVICES);
    snprintf(proc, sizeof proc, "%s/proc", root);
    if (proc_scan(&scan, proc) != 0) {
        int err = errno;
        print_services(&v);
        errno = err;
        printf("processes using libmesh now: not known (cannot read %s: %s)\n", proc, strerror(errno));
    } else {
        v.rows = place_all(&v, proc, scan.nrows, false);
        v.denied = place_all(&v, proc, scan.ndenied, true);
        print_view(&v);
        free(v.rows);
        free(v.denied);
    }
    proc_scan_free(&scan);
    for (int g = 0; g < v.nservices; g++) free(services[g]);
}
