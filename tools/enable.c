// enable.c - meshctl's enable, disable and status commands: where libmesh is
// turned on (system-wide through /etc/ld.so.preload, or per systemd service), the
// self-test that must pass first, and what runs with it now.
//
// Every command takes --root DIR to act on another root tree (an image, a
// container, a test overlay); paths it prints are then relative to that root.
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meshctl.h"

typedef struct {
    int system;
    const char *service;
    const char *root;
    const char *library;
} target_t;

static const char enable_usage[] =
    "usage: meshctl enable --system [--root DIR] [--library PATH]\n"
    "       meshctl enable --service NAME [--root DIR] [--library PATH]\n"
    "       meshctl disable --system | --service NAME [--root DIR]\n"
    "       meshctl status [--root DIR]\n";

static int parse_target(int argc, char **argv, target_t *t, int need_target, int allow_library) {
    memset(t, 0, sizeof *t);
    t->root = "";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--system")) t->system = 1;
        else if (!strcmp(a, "--service") && has_value) t->service = argv[++i];
        else if (!strcmp(a, "--root") && has_value) t->root = argv[++i];
        else if (!strcmp(a, "--library") && has_value && allow_library) t->library = argv[++i];
        else return usage_error("unexpected argument or missing value: '%s'", a);
    }
    if (!strcmp(t->root, "/")) t->root = "";
    if (need_target && t->system == !!t->service)
        return usage_error("%s", "say where: --system or --service NAME (one of them)");
    if (t->library && !is_mesh_library_token(t->library, strlen(t->library)))
        return usage_error("--library wants an absolute path to libmesh.so.N, got '%s'", t->library);
    return 0;
}

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

// Editing the live system needs root; say so before a self-test wastes time.
static int require_root(const target_t *t) {
    if (*t->root || geteuid() == 0) return 0;
    fprintf(stderr, "meshctl: %s needs root (or --root DIR for another tree)\n",
            t->system ? "/etc/ld.so.preload" : "/etc/systemd/system");
    return EXIT_CANNOT;
}

int cmd_enable(int argc, char **argv) {
    if (wants_help(argc, argv)) return fputs(enable_usage, stdout), 0;
    target_t t;
    int rc = parse_target(argc, argv, &t, 1, 1);
    if (rc || (rc = require_root(&t))) return rc;
    const char *entry = t.library ? t.library : MESH_PRELOAD_ENTRY;
    char real[600], lib[1200];
    expand_preload_entry(entry, real, sizeof real);
    snprintf(lib, sizeof lib, "%s%s", t.root, real);
    self_test_t test = {lib, t.root};
    return t.system ? preload_enable(t.root, entry, &test)
                    : service_enable(t.root, t.service, entry, &test);
}

int cmd_disable(int argc, char **argv) {
    if (wants_help(argc, argv)) return fputs(enable_usage, stdout), 0;
    target_t t;
    int rc = parse_target(argc, argv, &t, 1, 0);
    if (rc || (rc = require_root(&t))) return rc;
    return t.system ? preload_disable(t.root) : service_disable(t.root, t.service);
}

static int maps_have_mesh(const char *pid) {
    char path[300], line[1024];
    snprintf(path, sizeof path, "/proc/%s/maps", pid);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        char *name = strrchr(line, '/');
        found = name && !strncmp(name + 1, "libmesh.so", 10);
    }
    if (f) fclose(f);
    return found;
}

static void comm_of(const char *pid, char *out, size_t n) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(out, (int)n, f)) snprintf(out, n, "?");
    out[strcspn(out, "\n")] = 0;
    if (f) fclose(f);
}

// Processes that have libmesh mapped now (those whose maps this user may read).
static void process_status(void) {
    DIR *dp = opendir("/proc");
    int count = 0;
    char shown[512] = "";
    size_t used = 0;
    for (struct dirent *de; dp && (de = readdir(dp));) {
        if (!isdigit((unsigned char)de->d_name[0]) || !maps_have_mesh(de->d_name)) continue;
        char comm[64];
        comm_of(de->d_name, comm, sizeof comm);
        if (count++ < 8 && used < sizeof shown)
            used += (size_t)snprintf(shown + used, sizeof shown - used, "%s%s (%s)",
                                     used ? ", " : "", de->d_name, comm);
    }
    if (dp) closedir(dp);
    printf("processes using libmesh now: %d%s%s%s\n", count, count ? ": " : "", shown,
           count > 8 ? ", ..." : "");
}

int cmd_status(int argc, char **argv) {
    if (wants_help(argc, argv)) return fputs(enable_usage, stdout), 0;
    target_t t;
    int rc = parse_target(argc, argv, &t, 0, 0);
    if (rc) return rc;
    if (t.system || t.service) return usage_error("%s", "status takes only --root DIR");
    printf("library: %s\n", MESH_LIBRARY_PATH);
    printf("preload entry: %s\n", MESH_PRELOAD_ENTRY);
    int broken = preload_status(t.root);
    service_status(t.root);
    if (!*t.root) process_status();
    return broken ? EXIT_PROBLEMS : 0;
}
