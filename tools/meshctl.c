// meshctl.c - the operator's command for libmesh: inspect and check configuration,
// check the host, read a running process's heap statistics, run a command under
// libmesh. It links the library's own option table and configuration reader, so it
// validates exactly as the library reads.
//
// Exit codes: 0 success; 1 problems found (invalid configuration, failed check);
// 2 usage error; 3 the operation could not be done (no such process, permission,
// process not using libmesh, missing library).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checks.h"
#include "config_file.h"
#include "info.h"
#include "meshctl.h"
#include "options.h"

extern char **environ;

static const char usage_text[] =
    "usage: meshctl COMMAND [ARGS]\n"
    "  config show [FILE]    every option, its effective value and its source\n"
    "  config check [FILE]   validate a configuration file (exit 1 on problems)\n"
    "  config template       print a mesh.conf with every option commented\n"
    "  config doc [--format markdown|man|man-env]\n"
    "                        print the option table (markdown, or man(7) for the man pages)\n"
    "  check [--root DIR]    check the host: THP, vm.max_map_count, memfd,\n"
    "                        /etc/ld.so.preload, the configuration (exit 1 on problems)\n"
    "  stats PID             heap statistics of a process running libmesh\n"
    "  stats --all [--json] [--watch SECONDS]\n"
    "                        every libmesh process: PSS, meshed bytes, saving, heap\n"
    "                        file, meshes, whether meshing is paused and why; totals\n"
    "  top [--json] [--watch SECONDS]\n"
    "                        the same as stats --all\n"
    "  run [--] CMD [ARGS]   run CMD with libmesh preloaded\n"
    "  enable --system       self-test, then add libmesh to /etc/ld.so.preload\n"
    "  enable --service NAME self-test, then preload libmesh in NAME.service\n"
    "  disable --system | --service NAME\n"
    "                        undo enable (only libmesh's own line or drop-in)\n"
    "  status                where libmesh is enabled, which processes use it\n"
    "                        (enable, disable and status take --root DIR)\n"
    "  --help, --version\n"
    "FILE defaults to $MESH_CONF, else " MESH_DEFAULT_CONF ".\n"
    "Exit codes: 0 ok, 1 problems found, 2 usage error, 3 operation not possible.\n";

int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "meshctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'meshctl --help'.\n");
    return EXIT_USAGE;
}

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

// ---- config ------------------------------------------------------------------------

typedef struct {
    FILE *out;
    int count;
} report_ctx_t;

static void report_line(void *ctx, const char *line) {
    report_ctx_t *r = ctx;
    fprintf(r->out, "%s\n", line);
    r->count++;
}

static const char *config_path(int argc, char **argv, int *explicit_path) {
    const char *env = getenv("MESH_CONF");
    *explicit_path = argc > 0 || (env && *env);
    if (argc > 0) return argv[0];
    return env && *env ? env : MESH_DEFAULT_CONF;
}

static int config_show(int argc, char **argv) {
    int explicit_path;
    const char *path = config_path(argc, argv, &explicit_path);
    report_ctx_t r = {stderr, 0};
    mh_config_read_file(path, !explicit_path, 0, report_line, &r);
    mh_opt_apply_env(environ, report_line, &r);
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        char val[64], from[300];
        mh_opt_format(id, mh_opt[id], val, sizeof val);
        mh_opt_format_origin(id, path, from, sizeof from);
        printf("%s = %s  # %s\n", mh_opt_desc[id].key, val, from);
    }
    return r.count ? EXIT_PROBLEMS : 0;
}

static int config_check(int argc, char **argv) {
    int explicit_path;
    const char *path = config_path(argc, argv, &explicit_path);
    report_ctx_t r = {stdout, 0};
    struct stat st;
    if (!explicit_path && stat(path, &st) != 0 && errno == ENOENT) {
        printf("%s: no configuration file; defaults apply\n", path);
        return 0;
    }
    mh_config_read_file(path, 0, 0, report_line, &r);
    if (!r.count) printf("%s: ok\n", path);
    return r.count ? EXIT_PROBLEMS : 0;
}

static void print_group_header(const char *key, char *last_group) {
    size_t g = strcspn(key, ".");
    if (strncmp(last_group, key, g) == 0 && last_group[g] == 0) return;
    snprintf(last_group, 32, "%.*s", (int)g, key);
    printf("\n%s = {\n", last_group);
}

static int config_template(void) {
    printf("# mesh.conf - libmesh runtime configuration (libconfig syntax).\n"
           "#\n"
           "# Every setting is optional; the commented values are the defaults.\n"
           "# Precedence, lowest first: default < this file < MESH_* environment\n"
           "# variables < mesh_mallctl(). Programs running setuid/setgid or with file\n"
           "# capabilities ignore the environment and read this file only when it is\n"
           "# owned by root and not writable by group or others.\n"
           "# Check a change with: meshctl config check\n");
    char group[32] = "";
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        const mh_opt_desc_t *d = &mh_opt_desc[id];
        int was_open = group[0] != 0;
        size_t g = strcspn(d->key, ".");
        if (!(strncmp(group, d->key, g) == 0 && group[g] == 0) && was_open) printf("};\n");
        print_group_header(d->key, group);
        char val[64], expect[160];
        mh_opt_format(id, d->def, val, sizeof val);
        mh_opt_expect(id, expect, sizeof expect);
        printf("  # %s\n  # Accepts %s. Environment: %s%s%s.\n  # %s = %s;\n", d->doc, expect,
               d->env, d->env_alt ? " or " : "", d->env_alt ? d->env_alt : "", d->key + g + 1, val);
    }
    printf("};\n");
    return 0;
}

// ---- config doc: the option table for the README (markdown) and the man pages --------
// tools/gen-docs pastes these outputs into README.md, mesh.conf(5) and libmesh(3), and
// tests/bats/docs.bats checks they are still equal, so the documentation cannot drift
// from options.def.

static void doc_markdown(void) {
    printf("| file key (and mesh_mallctl name) | environment | default | accepts | meaning |\n");
    printf("|---|---|---|---|---|\n");
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        const mh_opt_desc_t *d = &mh_opt_desc[id];
        char val[64], expect[160];
        mh_opt_format(id, d->def, val, sizeof val);
        mh_opt_expect(id, expect, sizeof expect);
        printf("| `%s` | `%s`%s%s%s | `%s` | %s | %s |\n", d->key, d->env, d->env_alt ? ", `" : "",
               d->env_alt ? d->env_alt : "", d->env_alt ? "`" : "", val, expect, d->doc);
    }
}

// Writes s as troff text. A backslash is troff's escape character, so it becomes \e.
// In literal text (keys, variable names, values) '-' becomes \-: a plain '-' is a
// hyphen, which groff may render as U+2010 and which then cannot be copied into a
// shell or a file. A newline would start a new input line, where a leading '.' or
// '\'' is a request, so it becomes a blank; at_line_start guards the first character
// with \& for the same reason.
static void troff_put(const char *s, int literal, int at_line_start) {
    if (at_line_start && (*s == '.' || *s == '\'')) fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\') fputs("\\e", stdout);
        else if (*s == '-' && literal) fputs("\\-", stdout);
        else if (*s == '\n') putchar(' ');
        else putchar(*s);
    }
}

static void troff_bold(const char *s) {
    fputs("\\fB", stdout);
    troff_put(s, 1, 0);
    fputs("\\fR", stdout);
}

// The one-line doc as a sentence on a line of its own: capitalised, with a full stop.
static void troff_sentence(const char *doc) {
    if (!doc[0]) return;
    char first[2] = {doc[0] >= 'a' && doc[0] <= 'z' ? (char)(doc[0] - 'a' + 'A') : doc[0], 0};
    troff_put(first, 0, 1);
    troff_put(doc + 1, 0, 0);
    printf(".\n");
}

static const char *const doc_type_name[] = {"integer", "boolean", "string", "string"};
static const char *const doc_ctl_type[] = {"int64_t", "bool", "const char *", "const char *"};

// "Environment: MESH_X." or "Environment: MALLOCSTATS or MESH_STATS (MALLOCSTATS wins
// when both are set)." - options.c applies the alias first and the primary name after.
static void doc_man_env_line(const mh_opt_desc_t *d) {
    fputs("Environment: ", stdout);
    troff_bold(d->env);
    if (d->env_alt) {
        fputs(" or ", stdout);
        troff_bold(d->env_alt);
        fputs(" (", stdout);
        troff_bold(d->env);
        fputs(" wins when both are set)", stdout);
    }
    printf(".\n");
}

// One .TP entry per option, with a .SS heading for each libconfig group (the part of
// the key before the dot), in options.def order like the markdown table. Headings
// and tags are text lines after the macro, so no macro argument needs quoting.
static void doc_man(void) {
    char group[32] = "";
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        const mh_opt_desc_t *d = &mh_opt_desc[id];
        size_t g = strcspn(d->key, ".");
        if (strncmp(group, d->key, g) != 0 || group[g] != 0) {
            snprintf(group, sizeof group, "%.*s", (int)g, d->key);
            printf(".SS\n");
            troff_put(group, 1, 1);
            printf("\n");
        }
        char val[64], expect[160];
        mh_opt_format(id, d->def, val, sizeof val);
        mh_opt_expect(id, expect, sizeof expect);
        printf(".TP\n");
        troff_bold(d->key);
        printf(" (%s, default ", doc_type_name[d->type]);
        troff_bold(val);
        printf(")\n");
        troff_sentence(d->doc);
        printf(".br\nAccepts ");
        troff_put(expect, 0, 0);
        printf(".\n.br\n");
        doc_man_env_line(d);
        printf(".br\n\\fBmesh_mallctl\\fR() name: ");
        troff_bold(d->key);
        printf(", as \\fB%s\\fR.\n", doc_ctl_type[d->type]);
    }
}

// The ENVIRONMENT list of libmesh(3): one .TP entry per variable name, so the
// alias (MESH_STATS) has its own entry pointing at the primary name.
static void doc_man_environment(void) {
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        const mh_opt_desc_t *d = &mh_opt_desc[id];
        char val[64], expect[160];
        mh_opt_format(id, d->def, val, sizeof val);
        mh_opt_expect(id, expect, sizeof expect);
        printf(".TP\n");
        troff_bold(d->env);
        printf("\n");
        troff_sentence(d->doc);
        printf("Overrides ");
        troff_bold(d->key);
        printf(" of \\fBmesh.conf\\fR(5); accepts ");
        troff_put(expect, 0, 0);
        printf("; the default is ");
        troff_bold(val);
        printf(".\n");
        if (!d->env_alt) continue;
        printf(".TP\n");
        troff_bold(d->env_alt);
        printf("\nThe same as ");
        troff_bold(d->env);
        printf(", which wins when both are set.\n");
    }
}

// config doc [--format markdown|man|man-env]: markdown is the README's table, man the
// OPTIONS of mesh.conf(5), man-env the ENVIRONMENT of libmesh(3).
static int config_doc(int argc, char **argv) {
    const char *format = "markdown";
    if (argc == 2 && !strcmp(argv[0], "--format")) format = argv[1];
    else if (argc == 1 && !strncmp(argv[0], "--format=", 9)) format = argv[0] + 9;
    else if (argc) return usage_error("config doc: unexpected argument '%s'", argv[0]);
    if (!strcmp(format, "markdown")) doc_markdown();
    else if (!strcmp(format, "man")) doc_man();
    else if (!strcmp(format, "man-env")) doc_man_environment();
    else return usage_error("config doc: unknown format '%s' (markdown, man or man-env)", format);
    return 0;
}

static int cmd_config(int argc, char **argv) {
    if (argc < 1 || wants_help(argc, argv)) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: meshctl config show|check [FILE] | template | doc [--format markdown|man|man-env]\n");
        return argc < 1 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[0], "show") && argc <= 2) return config_show(argc - 1, argv + 1);
    if (!strcmp(argv[0], "check") && argc <= 2) return config_check(argc - 1, argv + 1);
    if (!strcmp(argv[0], "template") && argc == 1) return config_template();
    if (!strcmp(argv[0], "doc")) return config_doc(argc - 1, argv + 1);
    return usage_error("config: unknown subcommand or extra arguments: '%s'", argv[0]);
}

// ---- check -------------------------------------------------------------------------

// ld.so.preload holds library names separated by blanks, tabs, newlines or ':', with
// '#' starting a comment to the end of the line.
static int check_preload(const char *root) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/etc/ld.so.preload", root);
    FILE *f = fopen(path, "r");
    int bad = 0, found = 0, n = 0;
    while (f && fgets(line, sizeof line, f)) {
        n++;
        line[strcspn(line, "#\n")] = 0;
        for (char *save = NULL, *tok = strtok_r(line, " \t:", &save); tok; tok = strtok_r(NULL, " \t:", &save)) {
            if (!strstr(tok, "libmesh")) continue;
            found = 1;
            char target[1100];
            snprintf(target, sizeof target, "%s%s", root, tok);
            if (access(target, R_OK) != 0) {
                printf("FAIL  /etc/ld.so.preload:%d: %s does not exist; every program will warn\n", n, tok);
                bad = 1;
            } else {
                printf("ok    /etc/ld.so.preload:%d: libmesh enabled system-wide (%s)\n", n, tok);
            }
        }
    }
    if (f) fclose(f);
    if (!found) printf("ok    /etc/ld.so.preload: libmesh not enabled system-wide\n");
    return bad;
}

// vm.max_map_count: libmesh's heap may use the limit less a reserve for the program (a
// quarter of it, at least 4096; src/mesh.c) less the program's own mappings, and each
// meshed span costs VMAs. Below 4096 nothing is left for the heap (FAIL); below the
// 1048576 of the libmesh package's sysctl drop-in (and Fedora's default) large heaps
// stop meshing early (warn). The hint depends on whether the drop-in is installed.
#define MAP_COUNT_WANT 1048576L
#define MAP_COUNT_DROPIN "/usr/lib/sysctl.d/10-libmesh.conf"

static int check_max_map_count(const char *root) {
    long maps = mh_check_max_map_count(root);
    if (maps < 0) {
        printf("warn  vm.max_map_count: cannot be read\n");
        return 0;
    }
    long reserve = maps / 4 > 4096 ? maps / 4 : 4096, heap = maps > reserve ? maps - reserve : 0;
    if (maps >= MAP_COUNT_WANT) {
        printf("ok    vm.max_map_count is %ld: it leaves libmesh's heap at most %ld VMAs, less the "
               "program's own mappings\n", maps, heap);
        return 0;
    }
    char path[512];
    snprintf(path, sizeof path, "%s%s", root, MAP_COUNT_DROPIN);
    int installed = access(path, F_OK) == 0;
    if (maps < 4096)
        printf("FAIL  vm.max_map_count is %ld: it leaves libmesh's heap no VMAs (a reserve of 4096 "
               "stays for the program), so nothing is meshed; ", maps);
    else
        printf("warn  vm.max_map_count is %ld: it leaves libmesh's heap at most %ld VMAs, less the "
               "program's own mappings, so meshing stops early; ", maps, heap);
    if (installed)
        printf("%s is installed but not in force (a later sysctl.d file may set it lower; in a "
               "container the host sets it): sysctl -w vm.max_map_count=%ld\n", MAP_COUNT_DROPIN,
               MAP_COUNT_WANT);
    else
        printf("raise it: sysctl -w vm.max_map_count=%ld, or at boot with the libmesh package's "
               "%s\n", MAP_COUNT_WANT, MAP_COUNT_DROPIN);
    return maps < 4096;
}

static int cmd_check(int argc, char **argv) {
    const char *root = "";
    if (wants_help(argc, argv)) {
        printf("usage: meshctl check [--root DIR]\n");
        return 0;
    }
    if (argc == 2 && !strcmp(argv[0], "--root")) root = argv[1];
    else if (argc) return usage_error("check: unexpected argument '%s'", argv[0]);
    int problems = 0;
    char msg[512], sel[32], path[512];
    if (mh_check_thp(root, msg, sizeof msg)) {
        printf("FAIL  %s\n", msg);
        problems++;
    } else {
        snprintf(path, sizeof path, "%s/sys/kernel/mm/transparent_hugepage/shmem_enabled", root);
        if (mh_check_read_selector(path, sel, sizeof sel) == 0)
            printf("ok    transparent huge pages: shmem_enabled is '%s'\n", sel);
        else
            printf("ok    transparent huge pages: not supported by this kernel\n");
    }
    problems += check_max_map_count(root);
    long fd = syscall(SYS_memfd_create, "meshctl_check", 1U);
    if (fd < 0) {
        printf("FAIL  memfd_create: %s: libmesh falls back to private memory and cannot mesh\n",
               strerror(errno));
        problems++;
    } else {
        close((int)fd);
        printf("ok    memfd_create works\n");
    }
    problems += check_preload(root);
    const char *env = getenv("MESH_CONF");
    snprintf(path, sizeof path, "%s%s", root, env && *env && !*root ? env : MESH_DEFAULT_CONF);
    report_ctx_t r = {stdout, 0};
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        printf("ok    %s: no configuration file; defaults apply\n", path);
    } else {
        mh_config_read_file(path, 0, 0, report_line, &r);
        if (r.count) {
            printf("FAIL  %s has %d problem%s (above)\n", path, r.count, r.count > 1 ? "s" : "");
            problems++;
        } else {
            printf("ok    %s is valid\n", path);
        }
    }
    return problems ? EXIT_PROBLEMS : 0;
}

// ---- stats -------------------------------------------------------------------------

// One "Field: N kB" value of a /proc file; -1 (errno from the open) when not there.
long read_kb(const char *file, const char *field) {
    FILE *f = fopen(file, "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

bool read_heap_info(int fd, mh_info_t *info) {
    return pread(fd, info, sizeof *info, 0) == (ssize_t)sizeof *info &&
           memcmp(info->magic, MH_INFO_MAGIC, sizeof MH_INFO_MAGIC) == 0;
}

// Opens the process's libmesh heap file through PROCDIR/fd (PROCDIR: /proc/PID) and
// reads its info page into *info; -1 with errno set.
int open_heap_file(const char *procdir, mh_info_t *info) {
    char dir[1100], link[1400], target[512];
    snprintf(dir, sizeof dir, "%s/fd", procdir);
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int fd = -1, err = ESRCH;
    while ((e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (!strstr(target, "memfd:libmesh_arena")) continue;
        fd = open(link, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            continue;
        }
        // A process that forked recently also holds the heap file the fork froze,
        // whose info page was retired (magic cleared): take the live one.
        if (read_heap_info(fd, info)) break;
        close(fd);
        fd = -1;
        err = ENOENT;
    }
    closedir(d);
    if (fd < 0) errno = err;
    return fd;
}

static int cmd_stats(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--all")) return cmd_top("stats --all", argc, argv);
    if (wants_help(argc, argv)) {
        printf("usage: meshctl stats PID | --all [--json] [--watch SECONDS]\n");
        return 0;
    }
    if (argc != 1 || strspn(argv[0], "0123456789") != strlen(argv[0]) || !*argv[0])
        return usage_error("stats: expected one process id, got '%s'", argc ? argv[0] : "");
    const char *pid = argv[0];
    char path[128];
    snprintf(path, sizeof path, "/proc/%s", pid);
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "meshctl: stats: no process %s\n", pid);
        return EXIT_CANNOT;
    }
    mh_info_t info;
    int fd = open_heap_file(path, &info);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        fprintf(stderr, "meshctl: stats: no permission to read process %s (run as its user or root)\n", pid);
        return EXIT_CANNOT;
    }
    if (fd < 0 && maps_name_libmesh(path) > 0) { // libmesh, whose heap has not taken its file (yet)
        snprintf(path, sizeof path, "/proc/%s/smaps_rollup", pid);
        printf("pid %s\n", pid);
        printf("  rss             = %ld kB\n", read_kb(path, "Rss"));
        printf("  pss             = %ld kB\n", read_kb(path, "Pss"));
        printf("  heap file       = none (the heap is on private memory and not meshed: smaller than "
               "mesh.file_from_mib, meshing off, or no memfd here)\n");
        return 0;
    }
    if (fd < 0) {
        fprintf(stderr, "meshctl: stats: process %s is not running libmesh (no libmesh heap file)\n", pid);
        return EXIT_CANNOT;
    }
    struct stat st;
    int st_rc = fstat(fd, &st);
    close(fd);
    if (st_rc != 0) {
        fprintf(stderr, "meshctl: stats: process %s: cannot stat its heap file: %s\n", pid, strerror(errno));
        return EXIT_CANNOT;
    }
    snprintf(path, sizeof path, "/proc/%s/smaps_rollup", pid);
    printf("pid %s\n", pid);
    printf("  rss             = %ld kB (counts a meshed page once per virtual alias)\n", read_kb(path, "Rss"));
    printf("  pss             = %ld kB\n", read_kb(path, "Pss"));
    printf("  heap file       = %lld bytes (physical pages of the libmesh heap)\n", (long long)st.st_blocks * 512);
    printf("  meshed bytes    = %llu (high-water mark %llu)\n", (unsigned long long)info.meshed_bytes,
           (unsigned long long)info.meshed_hwm);
    printf("  mesh count      = %llu\n", (unsigned long long)info.mesh_count);
    printf("  configuration   = %.*s\n", (int)sizeof info.conf_path, info.conf_path);
    static const char *const src[] = {"default", "file", "env", "mesh_mallctl"};
    for (int id = 0; id < MH_OPT_COUNT && id < (int)info.nopts; id++) {
        char val[64];
        int64_t v = info.options[id];
        if (v < mh_opt_desc[id].min || v > mh_opt_desc[id].max) v = mh_opt_desc[id].def;
        mh_opt_format(id, v, val, sizeof val);
        printf("  %s = %s  # %s\n", mh_opt_desc[id].key, val, src[info.sources[id] & 3]);
    }
    return 0;
}

// ---- run ---------------------------------------------------------------------------

static int cmd_run(int argc, char **argv) {
    // Only meshctl's own options come before the command; the command's are its own.
    if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: meshctl run [--] CMD [ARGS...]\n");
        return 0;
    }
    if (argc > 0 && !strcmp(argv[0], "--")) argc--, argv++;
    if (argc == 0) return usage_error("run: %s", "no command given");
    const char *lib = getenv("MESH_LIB");
    if (!lib || !*lib) lib = MESH_LIBRARY_PATH;
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "meshctl: run: cannot read the library %s: %s\n", lib, strerror(errno));
        return EXIT_CANNOT;
    }
    const char *old = getenv("LD_PRELOAD");
    char *value;
    if (asprintf(&value, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0)
        return EXIT_CANNOT;
    setenv("LD_PRELOAD", value, 1);
    execvp(argv[0], argv);
    fprintf(stderr, "meshctl: run: cannot run '%s': %s\n", argv[0], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);  // keep stdout and stderr lines in order
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("meshctl (libmesh) %s\n", MESH_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "stats")) return cmd_stats(argc - 2, argv + 2);
    if (!strcmp(cmd, "top")) return cmd_top("top", argc - 2, argv + 2);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "enable")) return cmd_enable(argc - 2, argv + 2);
    if (!strcmp(cmd, "disable")) return cmd_disable(argc - 2, argv + 2);
    if (!strcmp(cmd, "status")) return cmd_status(argc - 2, argv + 2);
    return usage_error("unknown command '%s'", cmd);
}
