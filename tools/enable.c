// enable.c - meshctl's enable, disable and status commands: where libmesh is
// turned on (system-wide through /etc/ld.so.preload, or per systemd service), the
// self-test that must pass first, and what runs with it now.
//
// Every command takes --root DIR to act on another root tree (an image, a
// container, a test overlay); paths it prints are then relative to that root, and
// status reads the processes from ROOT/proc (tools/status_procs.c).
#define _GNU_SOURCE
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

int cmd_status(int argc, char **argv) {
    if (wants_help(argc, argv)) return fputs(enable_usage, stdout), 0;
    target_t t;
    int rc = parse_target(argc, argv, &t, 0, 0);
    if (rc) return rc;
    if (t.system || t.service) return usage_error("%s", "status takes only --root DIR");
    printf("library: %s\n", MESH_LIBRARY_PATH);
    printf("preload entry: %s\n", MESH_PRELOAD_ENTRY);
    int broken = preload_status(t.root);
    status_services(t.root);
    return broken ? EXIT_PROBLEMS : 0;
}
