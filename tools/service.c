// service.c - libmesh for one systemd service: a drop-in
// /etc/systemd/system/NAME.service.d/50-libmesh.conf that sets LD_PRELOAD, merged
// with the LD_PRELOAD the unit already has, and its removal.
//
// The vendor unit and other drop-ins are never edited (that is the operator's and
// `systemctl edit`'s business). Because the drop-in replaces LD_PRELOAD as a whole,
// the value the unit would otherwise have is computed from the unit file and its
// drop-ins in systemd's order (unit first, then drop-ins sorted by file name, a
// name in /etc masking the same name in /run and /usr/lib) and kept after our
// library. A later drop-in or an EnvironmentFile= that sets LD_PRELOAD would win
// over ours, so enabling refuses and names it instead of writing a drop-in that
// does nothing.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meshctl.h"

static const char *const unit_dirs[] = {
    "/etc/systemd/system",   "/run/systemd/system", "/run/systemd/generator",
    "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
};
#define NDIRS (sizeof unit_dirs / sizeof unit_dirs[0])
#define MAX_DROPINS 64

typedef struct {
    char value[2048];   // effective LD_PRELOAD before our drop-in ("" when unset)
    int set;
    char set_by[1024];  // the file whose assignment is effective
    char blocker[1024]; // a file that would override our drop-in, if any
} env_state_t;

// NAME or NAME.service -> "NAME.service"; only names systemd accepts for units.
static int unit_name(const char *name, char *out, size_t n) {
    size_t len = strlen(name);
    if (len > 9 && !strcmp(name + len - 8, ".service")) len -= 8;
    if (len == 0 || len > 200 || name[0] == '.' || name[0] == '-') return -1;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.@-\\",
                    name[i]))
            return -1;
    snprintf(out, n, "%.*s.service", (int)len, name);
    return 0;
}

// "foo@bar.service" -> "foo@.service"; other names have no template.
int template_name(const char *unit, char *out, size_t n) {
    const char *at = strchr(unit, '@');
    if (!at || !strcmp(at, "@.service")) return -1;
    snprintf(out, n, "%.*s@.service", (int)(at - unit), unit);
    return 0;
}

static int find_unit_file(const char *root, const char *unit, char *out, size_t n) {
    char tmpl[256];
    const char *names[2] = {unit, template_name(unit, tmpl, sizeof tmpl) == 0 ? tmpl : NULL};
    for (int k = 0; k < 2 && names[k]; k++)
        for (size_t d = 0; d < NDIRS; d++) {
            snprintf(out, n, "%s%s/%s", root, unit_dirs[d], names[k]);
            if (access(out, R_OK) == 0) return 0;
        }
    return -1;
}

// One word of a systemd value: quotes group, a backslash takes the next character.
static int next_word(const char **p, char *out, size_t n) {
    const char *s = *p + strspn(*p, " \t");
    if (!*s) return 0;
    size_t o = 0;
    char quote = 0;
    for (; *s && (quote || (*s != ' ' && *s != '\t')); s++) {
        char c = *s;
        if (quote && c == quote) quote = 0;
        else if (!quote && (c == '"' || c == '\'')) quote = c;
        else {
            if (c == '\\' && s[1]) c = *++s;
            if (o + 1 < n) out[o++] = c;
        }
    }
    out[o] = 0;
    *p = s;
    return 1;
}

static void apply_environment(env_state_t *e, const char *value, const char *file, int ours_seen) {
    if (!*value) {  // "Environment=" with nothing resets the list
        e->set = 0;
        e->value[0] = 0;
        return;
    }
    char word[2048];
    for (const char *p = value; next_word(&p, word, sizeof word);) {
        if (strncmp(word, "LD_PRELOAD=", 11) != 0) continue;
        snprintf(e->value, sizeof e->value, "%s", word + 11);
        snprintf(e->set_by, sizeof e->set_by, "%s", file);
        e->set = 1;
        if (ours_seen) snprintf(e->blocker, sizeof e->blocker, "%s", file);
    }
}

static void check_environment_file(env_state_t *e, const char *root, const char *value) {
    char path[1200], word[1024];
    const char *p = value;
    if (!next_word(&p, word, sizeof word)) return;
    const char *name = word[0] == '-' ? word + 1 : word;
    snprintf(path, sizeof path, "%s%s", root, name);
    FILE *f = fopen(path, "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        const char *s = line + strspn(line, " \t");
        if (!strncmp(s, "export ", 7)) s += 7 + strspn(s + 7, " \t");
        if (!strncmp(s, "LD_PRELOAD=", 11))
            snprintf(e->blocker, sizeof e->blocker, "%.900s (EnvironmentFile=)", name);
    }
    if (f) fclose(f);
}

// Reads one unit file or drop-in and applies its [Service] environment settings.
static void read_unit_settings(env_state_t *e, const char *root, const char *path, int ours_seen) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[8192], logical[16384];
    int in_service = 0;
    logical[0] = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        int cont = len && line[len - 1] == '\\';
        if (cont) line[len - 1] = ' ';
        strncat(logical, line, sizeof logical - strlen(logical) - 1);
        if (cont) continue;
        const char *s = logical + strspn(logical, " \t");
        if (*s == '[') in_service = !strncmp(s, "[Service]", 9);
        else if (in_service && *s != '#' && *s != ';') {
            const char *eq = strchr(s, '=');
            size_t klen = eq ? (size_t)(eq - s) : 0;
            while (klen && (s[klen - 1] == ' ' || s[klen - 1] == '\t')) klen--;
            const char *v = eq ? eq + 1 + strspn(eq + 1, " \t") : NULL;
            if (v && klen == 11 && !strncmp(s, "Environment", 11))
                apply_environment(e, v, path + strlen(root), ours_seen);
            else if (v && klen == 15 && !strncmp(s, "EnvironmentFile", 15) && *v)
                check_environment_file(e, root, v);
        }
        logical[0] = 0;
    }
    fclose(f);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_base(const void *a, const void *b) {
    return strcmp(strrchr(*(char *const *)a, '/'), strrchr(*(char *const *)b, '/'));
}

// Drop-in file names of DIRNAME ("NAME.service.d") across the unit directories,
// each name once (the first directory in priority order wins), sorted by name.
static int collect_dropins(const char *root, const char *dirname, char **paths, int max) {
    int n = 0;
    for (size_t d = 0; d < NDIRS; d++) {
        char dir[1200];
        snprintf(dir, sizeof dir, "%s%s/%s", root, unit_dirs[d], dirname);
        DIR *dp = opendir(dir);
        for (struct dirent *de; dp && (de = readdir(dp));) {
            size_t len = strlen(de->d_name);
            if (len < 6 || strcmp(de->d_name + len - 5, ".conf")) continue;
            int dup = 0;
            for (int i = 0; i < n; i++)
                dup |= !strcmp(strrchr(paths[i], '/') + 1, de->d_name);
            if (dup || n == max) continue;
            if (asprintf(&paths[n], "%s/%s", dir, de->d_name) > 0) n++;
        }
        if (dp) closedir(dp);
    }
    qsort(paths, (size_t)n, sizeof paths[0], cmp_base);  // systemd orders drop-ins by name
    return n;
}

static void effective_environment(env_state_t *e, const char *root, const char *unit_file,
                                  const char *unit) {
    memset(e, 0, sizeof *e);
    read_unit_settings(e, root, unit_file, 0);
    char tmpl[256], dname[300];
    const char *names[2] = {template_name(unit, tmpl, sizeof tmpl) == 0 ? tmpl : NULL, unit};
    for (int k = 0; k < 2; k++) {
        if (!names[k]) continue;
        snprintf(dname, sizeof dname, "%s.d", names[k]);
        char *paths[MAX_DROPINS];
        int n = collect_dropins(root, dname, paths, MAX_DROPINS);
        for (int i = 0; i < n; i++) {
            const char *base = strrchr(paths[i], '/') + 1;
            int ours = !strcmp(base, MESH_DROPIN_NAME);
            if (!ours) read_unit_settings(e, root, paths[i], strcmp(base, MESH_DROPIN_NAME) > 0);
            free(paths[i]);
        }
    }
}

static int value_has_mesh(const char *value) {
    char word[1024];
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, " \t:");
        snprintf(word, sizeof word, "%.*s", (int)n, p);
        if (is_mesh_library_token(word, strlen(word))) return 1;
        p += n + (p[n] != 0);
    }
    return 0;
}

// systemctl daemon-reload, only on the live system with systemd running.
static void daemon_reload(const char *root, const char *unit) {
    if (*root || access("/run/systemd/system", F_OK) != 0) {
        printf("systemd is not running here; the change applies when systemd next loads %s\n", unit);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        execlp("systemctl", "systemctl", "daemon-reload", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "meshctl: warning: systemctl daemon-reload failed; run it yourself\n");
}

static void quote_value(const char *in, char *out, size_t n) {
    size_t o = 0;
    for (; *in && o + 2 < n; in++) {
        if (*in == '"' || *in == '\\') out[o++] = '\\';
        out[o++] = *in;
    }
    out[o] = 0;
}

int service_enable(const char *root, const char *name, const char *entry,
                   const self_test_t *test) {
    char unit[256], unit_file[1200], dir[1200], path[1300];
    if (unit_name(name, unit, sizeof unit) != 0)
        return usage_error("'%s' is not a valid service name", name);
    if (find_unit_file(root, unit, unit_file, sizeof unit_file) != 0) {
        fprintf(stderr, "meshctl: no unit file for %s in %s/etc/systemd/system, /run/systemd/system "
                "or /usr/lib/systemd/system; check the name (systemctl list-unit-files)\n", unit, root);
        return EXIT_CANNOT;
    }
    env_state_t e;
    effective_environment(&e, root, unit_file, unit);
    if (e.blocker[0]) {
        fprintf(stderr, "meshctl: %s sets LD_PRELOAD and overrides a drop-in named %s; add %s to "
                "its LD_PRELOAD instead (nothing was changed)\n", e.blocker, MESH_DROPIN_NAME, entry);
        return EXIT_PROBLEMS;
    }
    snprintf(dir, sizeof dir, "%s/etc/systemd/system/%s.d", root, unit);
    snprintf(path, sizeof path, "%s/" MESH_DROPIN_NAME, dir);
    if (e.set && value_has_mesh(e.value)) {
        printf("%s already preloads libmesh (LD_PRELOAD set in %s)\n", unit, e.set_by);
        return 0;
    }
    char merged[2600], quoted[5300], body[6000];
    snprintf(merged, sizeof merged, "%s%s%s", entry, e.set && e.value[0] ? " " : "",
             e.set ? e.value : "");
    quote_value(merged, quoted, sizeof quoted);
    int n = snprintf(body, sizeof body,
                     "# Written by meshctl: runs %s with libmesh.\n"
                     "# Undo with: meshctl disable --service %s\n"
                     "[Service]\n"
                     "Environment=\"LD_PRELOAD=%s\"\n", unit, unit, quoted);
    char *current = read_text_file(path, 1 << 16);
    int same = current && !strcmp(current, body);
    free(current);
    if (same) {
        printf("libmesh is already enabled for %s (%s)\n", unit, path);
        return 0;
    }
    if (preload_self_test(test) != 0) {
        fprintf(stderr, "meshctl: the self-test failed (above); libmesh was not enabled\n");
        return EXIT_PROBLEMS;
    }
    if (make_dirs(dir, 0755) != 0 || atomic_write_file(path, body, (size_t)n, 0644, 0, 0) != 0) {
        fprintf(stderr, "meshctl: cannot write %s: %s (nothing was changed)\n", path, strerror(errno));
        return EXIT_CANNOT;
    }
    printf("enabled for %s: wrote %s\n", unit, path);
    if (e.set && e.value[0])
        printf("kept the unit's LD_PRELOAD (%s, from %s) after libmesh\n", e.value, e.set_by);
    daemon_reload(root, unit);
    printf("Restart the service to apply: systemctl restart %s\n", unit);
    return 0;
}

int service_disable(const char *root, const char *name) {
    char unit[256], dir[1200], path[1300];
    if (unit_name(name, unit, sizeof unit) != 0)
        return usage_error("'%s' is not a valid service name", name);
    snprintf(dir, sizeof dir, "%s/etc/systemd/system/%s.d", root, unit);
    snprintf(path, sizeof path, "%s/" MESH_DROPIN_NAME, dir);
    if (unlink(path) != 0) {
        if (errno != ENOENT) {
            fprintf(stderr, "meshctl: cannot remove %s: %s\n", path, strerror(errno));
            return EXIT_CANNOT;
        }
        printf("libmesh is not enabled for %s (no %s)\n", unit, path);
        return 0;
    }
    rmdir(dir);  // only succeeds when no other drop-in is left
    printf("disabled for %s: removed %s\n", unit, path);
    daemon_reload(root, unit);
    printf("Restart the service to apply: systemctl restart %s\n", unit);
    return 0;
}

int dropin_services(const char *root, char **names, int max) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/etc/systemd/system", root);
    DIR *dp = opendir(dir);
    int n = 0;
    for (struct dirent *de; dp && (de = readdir(dp)) && n < max;) {
        size_t len = strlen(de->d_name);
        if (len < 11 || strcmp(de->d_name + len - 10, ".service.d")) continue;
        char path[1500];
        snprintf(path, sizeof path, "%s/%s/" MESH_DROPIN_NAME, dir, de->d_name);
        char *name = access(path, F_OK) == 0 ? strndup(de->d_name, len - 2) : NULL;
        if (name) names[n++] = name;
    }
    if (dp) closedir(dp);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    return n;
}
