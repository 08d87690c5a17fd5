// preload.c - libmesh's entry in /etc/ld.so.preload: add it, remove it, report it.
//
// The file belongs to nobody (no package owns it) and every dynamically linked
// program reads it at start, so: only our own entries are ever added or removed,
// other lines and comments are kept byte for byte, the mode and owner are kept, and
// every change is an atomic replace. ld.so's syntax: names separated by blanks,
// tabs, newlines or ':', '#' starts a comment to the end of the line.
//
// A marker file (MESH_PRELOAD_MARKER, holding the entry) records that the operator
// enabled libmesh system-wide, so the package's maintainer scripts can take the
// line out before the library is replaced and put it back after an upgrade.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meshctl.h"

#define PRELOAD_FILE "/etc/ld.so.preload"
#define PRELOAD_SEPS " \t\r:"

int is_mesh_library_token(const char *tok, size_t len) {
    if (len == 0 || tok[0] != '/') return 0;
    const char *base = tok;
    for (size_t i = 0; i < len; i++)
        if (tok[i] == '/') base = tok + i + 1;
    size_t blen = len - (size_t)(base - tok);
    if (blen < 10 || memcmp(base, "libmesh.so", 10) != 0) return 0;
    // Only version suffixes: ".1", ".1.0.0". Other libmesh* files are not ours.
    for (size_t i = 10; i < blen; i++) {
        char c = base[i];
        if (c == '.' ? i + 1 == blen || base[i + 1] == '.' : (c < '0' || c > '9')) return 0;
    }
    return 1;
}

void expand_preload_entry(const char *entry, char *out, size_t outlen) {
    // $LIB is the installed library's directory below /usr, as ld.so computes it.
    char lib[512] = "lib";
    const char *installed = MESH_LIBRARY_PATH;
    if (!strncmp(installed, "/usr/", 5)) {
        const char *end = strrchr(installed, '/');
        snprintf(lib, sizeof lib, "%.*s", (int)(end - installed - 5), installed + 5);
    }
    size_t o = 0;
    for (const char *p = entry; *p && o + 1 < outlen;) {
        size_t skip = !strncmp(p, "${LIB}", 6) ? 6 : !strncmp(p, "$LIB", 4) ? 4 : 0;
        if (skip) {
            o += (size_t)snprintf(out + o, outlen - o, "%s", lib);
            if (o >= outlen) o = outlen - 1;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
}

// Calls FN for each name on LINE (the part before '#'); FN returns nonzero to
// stop. Returns what FN returned last.
typedef int (*token_fn)(void *ctx, const char *tok, size_t len);

static int for_each_token(const char *line, size_t len, token_fn fn, void *ctx) {
    size_t i = 0;
    while (i < len && line[i] != '#') {
        size_t n = strcspn(line + i, PRELOAD_SEPS "#\n");
        if (i + n > len) n = len - i;
        if (n) {
            int r = fn(ctx, line + i, n);
            if (r) return r;
        }
        i += n ? n : 1;
    }
    return 0;
}

typedef struct {
    const char *root;
    int lineno;
    int found;
    int missing;
    char first[512];
    int quiet;
} scan_t;

static int note_token(void *ctx, const char *tok, size_t len) {
    scan_t *s = ctx;
    if (!is_mesh_library_token(tok, len)) return 0;
    char entry[512], real[600], path[1200];
    snprintf(entry, sizeof entry, "%.*s", (int)len, tok);
    expand_preload_entry(entry, real, sizeof real);
    snprintf(path, sizeof path, "%s%s", s->root, real);
    int exists = access(path, R_OK) == 0;
    if (!s->found++) snprintf(s->first, sizeof s->first, "%s", entry);
    s->missing += !exists;
    if (!s->quiet)
        printf("system-wide: %s (/etc/ld.so.preload line %d: %s)\n",
               exists ? "enabled" : "BROKEN, the library is missing; every program will warn",
               s->lineno, entry);
    return 0;
}

// Scans CONTENT for our entries; returns how many.
static int scan_entries(const char *content, const char *root, int quiet, scan_t *s) {
    memset(s, 0, sizeof *s);
    s->root = root;
    s->quiet = quiet;
    for (const char *line = content; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        s->lineno++;
        for_each_token(line, len, note_token, s);
        line = nl ? nl + 1 : NULL;
    }
    return s->found;
}

static void state_path(const char *root, const char *rel, char *out, size_t n) {
    snprintf(out, n, "%s%s", root, rel);
}

static int write_marker(const char *root, const char *entry) {
    char dir[1024], path[1024], data[600];
    state_path(root, MESH_STATE_DIR, dir, sizeof dir);
    state_path(root, MESH_PRELOAD_MARKER, path, sizeof path);
    if (make_dirs(dir, 0755) != 0) return -1;
    int n = snprintf(data, sizeof data, "%s\n", entry);
    return atomic_write_file(path, data, (size_t)n, 0644, 0, 0);
}

static void remove_marker(const char *root) {
    char path[1024], dir[1024];
    state_path(root, MESH_PRELOAD_MARKER, path, sizeof path);
    state_path(root, MESH_STATE_DIR, dir, sizeof dir);
    unlink(path);
    rmdir(dir);
}

// Reads ROOT/etc/ld.so.preload and its mode and owner. A missing file reads as
// empty with root:root 0644, the mode ld.so and every distribution expect.
static char *read_preload(const char *root, char *path, size_t plen, struct stat *st) {
    snprintf(path, plen, "%s" PRELOAD_FILE, root);
    char *content = read_text_file(path, 1 << 20);
    if (content) {
        if (stat(path, st) != 0) memset(st, 0, sizeof *st);
        return content;
    }
    if (errno != ENOENT) {
        fprintf(stderr, "meshctl: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    memset(st, 0, sizeof *st);
    st->st_mode = 0644;
    return strdup("");
}

int preload_enable(const char *root, const char *entry, const self_test_t *test) {
    char path[1024];
    struct stat st;
    char *content = read_preload(root, path, sizeof path, &st);
    if (!content) return EXIT_CANNOT;
    scan_t s;
    if (scan_entries(content, root, 1, &s)) {
        printf("libmesh is already enabled system-wide (%s in /etc/ld.so.preload)\n", s.first);
        free(content);
        if (write_marker(root, s.first) != 0)
            fprintf(stderr, "meshctl: warning: cannot record the state in %s%s: %s\n", root,
                    MESH_PRELOAD_MARKER, strerror(errno));
        return 0;
    }
    if (preload_self_test(test) != 0) {
        fprintf(stderr, "meshctl: the self-test failed (above); libmesh was not enabled\n");
        free(content);
        return EXIT_PROBLEMS;
    }
    size_t len = strlen(content);
    char *next;
    int n = asprintf(&next, "%s%s%s\n", content, len && content[len - 1] != '\n' ? "\n" : "", entry);
    free(content);
    if (n < 0) return EXIT_CANNOT;
    int rc = atomic_write_file(path, next, (size_t)n, st.st_mode & 07777, st.st_uid, st.st_gid);
    free(next);
    if (rc != 0) {
        fprintf(stderr, "meshctl: cannot write %s: %s (nothing was changed)\n", path, strerror(errno));
        return EXIT_CANNOT;
    }
    if (write_marker(root, entry) != 0)
        fprintf(stderr, "meshctl: warning: cannot record the state in %s%s: %s; a package upgrade "
                "will not restore the line\n", root, MESH_PRELOAD_MARKER, strerror(errno));
    printf("enabled system-wide: added %s to /etc/ld.so.preload\n"
           "Programs started from now on use libmesh; running ones are unchanged.\n"
           "Undo with: meshctl disable --system\n", entry);
    return 0;
}

// Rewrites one line without our entries. Returns 1 when something was removed;
// *OUT then holds the new line, or nothing when the line should go.
typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    int removed;
} line_t;

static int keep_token(void *ctx, const char *tok, size_t len) {
    line_t *l = ctx;
    if (is_mesh_library_token(tok, len)) {
        l->removed++;
        return 0;
    }
    if (l->len + len + 2 > l->cap) return 1;
    if (l->len) l->buf[l->len++] = ' ';
    memcpy(l->buf + l->len, tok, len);
    l->len += len;
    return 0;
}

static int strip_line(const char *line, size_t len, FILE *out) {
    char buf[8192];
    line_t l = {buf, 0, sizeof buf, 0};
    if (len >= sizeof buf || for_each_token(line, len, keep_token, &l) || !l.removed) {
        fwrite(line, 1, len, out);
        return 0;
    }
    const char *hash = memchr(line, '#', len);
    if (hash) {
        if (l.len) l.buf[l.len++] = ' ';
        size_t clen = len - (size_t)(hash - line);
        memcpy(l.buf + l.len, hash, clen);
        l.len += clen;
    }
    fwrite(l.buf, 1, l.len, out);
    return l.len ? 1 : 2;  // 2: the line is now empty and is dropped with its newline
}

static int only_blank(const char *s) {
    return s[strspn(s, " \t\r\n:")] == 0;
}

int preload_disable(const char *root) {
    char path[1024];
    struct stat st;
    char *content = read_preload(root, path, sizeof path, &st);
    if (!content) return EXIT_CANNOT;
    char *next = NULL;
    size_t nlen = 0;
    FILE *out = open_memstream(&next, &nlen);
    int removed = 0;
    for (const char *line = content; out && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        int r = strip_line(line, len, out);
        removed += r != 0;
        if (nl && r != 2) fputc('\n', out);
        line = nl ? nl + 1 : line + len;
    }
    if (!out || fclose(out) != 0) {
        free(content);
        return EXIT_CANNOT;
    }
    free(content);
    remove_marker(root);
    if (!removed) {
        printf("libmesh is not enabled system-wide (no libmesh entry in /etc/ld.so.preload)\n");
        free(next);
        return 0;
    }
    int rc = only_blank(next) ? unlink(path)
                              : atomic_write_file(path, next, nlen, st.st_mode & 07777, st.st_uid,
                                                  st.st_gid);
    free(next);
    if (rc != 0) {
        fprintf(stderr, "meshctl: cannot write %s: %s\n", path, strerror(errno));
        return EXIT_CANNOT;
    }
    printf("disabled system-wide: removed libmesh from /etc/ld.so.preload\n"
           "Programs started from now on use the system allocator; running ones keep libmesh "
           "until they exit.\n");
    return 0;
}

int preload_status(const char *root) {
    char path[1024], marker[1024];
    struct stat st;
    char *content = read_preload(root, path, sizeof path, &st);
    if (!content) return 1;
    scan_t s;
    int found = scan_entries(content, root, 0, &s);
    free(content);
    if (!found) printf("system-wide: not enabled\n");
    state_path(root, MESH_PRELOAD_MARKER, marker, sizeof marker);
    int marked = access(marker, F_OK) == 0;
    if (marked != (found > 0))
        printf("warning: %s %s, but /etc/ld.so.preload %s a libmesh entry; run meshctl %s --system "
               "to make them agree\n", MESH_PRELOAD_MARKER, marked ? "exists" : "is missing",
               found ? "has" : "has no", found ? "enable" : "disable");
    return s.missing > 0;
}
