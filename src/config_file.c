// config_file.c - /etc/mesh.conf reader (see config_file.h).
//
// Layer 7 (runtime).
#define _GNU_SOURCE
#include "config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_lib.h"
#include "os.h"
#include "str.h"

static const mh_libconfig_t *lc; // libconfig, loaded by the parse that needs it

typedef struct reporter_s {
    const char *name;
    mh_report_fn report;
    void *ctx;
    int problems;
} reporter_t;

static void problem(reporter_t *r, int line, const char *fmt, const char *a, const char *b) {
    char msg[512];
    size_t n = line > 0 ? mh_snprintf(msg, sizeof msg, "%s:%d: ", r->name, line)
                        : mh_snprintf(msg, sizeof msg, "%s: ", r->name);
    mh_snprintf(msg + n, sizeof msg - n, fmt, a, b);
    r->problems++;
    r->report(r->ctx, msg); // every one: the library sums them up, meshctl lists them
}

// ---- values ----------------------------------------------------------------------

static int setting_value(config_setting_t *s, int id, int64_t *out, char *why, size_t n) {
    int type = config_setting_type(s);
    switch (mh_opt_desc[id].type) {
    case MH_OT_INT:
        if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
            *out = lc->get_int64(s);
            if (*out >= mh_opt_desc[id].min && *out <= mh_opt_desc[id].max) return 0;
        }
        break;
    case MH_OT_BOOL:
        if (type == CONFIG_TYPE_BOOL) return *out = lc->get_bool(s), 0;
        if (type == CONFIG_TYPE_STRING && mh_opt_desc[id].max >= MH_AUTO) // "auto"
            return mh_opt_parse(id, lc->get_string(s), out, why, n);
        break;
    default: // ENUM and SIGNAL are strings
        if (type == CONFIG_TYPE_STRING)
            return mh_opt_parse(id, lc->get_string(s), out, why, n);
        break;
    }
    size_t len = mh_snprintf(why, n, "expected ");
    mh_opt_expect(id, why + len, n > len ? n - len : 0);
    return -1;
}

static void apply_setting(reporter_t *r, config_setting_t *s, const char *group) {
    char key[160];
    const char *name = config_setting_name(s);
    int line = (int)config_setting_source_line(s);
    mh_snprintf(key, sizeof key, "%s%s%s", group ? group : "", group ? "." : "", name ? name : "?");
    int id = mh_opt_find(key);
    if (id < 0) {
        problem(r, line, "unknown option '%s'%s", key, "; ignored");
        return;
    }
    int64_t v;
    char why[200];
    if (setting_value(s, id, &v, why, sizeof why) != 0) {
        problem(r, line, "%s: %s; ignored", key, why);
        return;
    }
    mh_opt_set(id, v, (mh_opt_origin_t){MH_SRC_FILE, line, NULL});
}

static void apply_root(reporter_t *r, config_t *cfg) {
    config_setting_t *root = config_root_setting(cfg);
    for (int i = 0; i < lc->length(root); i++) {
        config_setting_t *s = lc->get_elem(root, (unsigned)i);
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
            apply_setting(r, s, NULL);
            continue;
        }
        for (int j = 0; j < lc->length(s); j++)
            apply_setting(r, lc->get_elem(s, (unsigned)j), config_setting_name(s));
    }
}

// ---- parsing with recovery -----------------------------------------------------------

// Blanks line `line` (1-based) of buf so a retry skips it; false if there is none.
static int blank_line(char *buf, int line) {
    char *p = buf;
    for (int l = 1; l < line && *p; p++)
        if (*p == '\n') l++;
    if (!*p) return 0;
    for (; *p && *p != '\n'; p++) *p = ' ';
    return 1;
}

static void blank_binary(reporter_t *r, char *buf, size_t len) {
    int line = 1, reported = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && buf[i] != '\n') continue;
        int bad = 0;
        for (size_t k = start; k < i; k++) bad |= buf[k] == 0;
        if (bad) {
            for (size_t k = start; k < i; k++) buf[k] = ' ';
            if (!reported++) problem(r, line, "binary data in the file%s%s", "; line skipped", "");
        }
        line++;
        start = i + 1;
    }
}

// Blanks the last line with content (libconfig may report an error past the end).
static int blank_last_line(char *buf) {
    char *p = buf + mh_strlen(buf);
    while (p > buf && (p[-1] == '\n' || p[-1] == ' ' || p[-1] == '\t')) p--;
    if (p == buf) return 0;
    while (p > buf && p[-1] != '\n') *--p = ' ';
    return 1;
}

// Finds what libconfig would accept silently or mis-report: an unterminated block
// comment (it swallows the rest of the file), a string left open at the end of its
// line, and @include (reading other files is not allowed). Returns the line to blank
// (with *what set), or 0 when the text is clean.
static int prescan(const char *buf, const char **what, char **at) {
    enum { CODE, LINE_COMMENT, BLOCK_COMMENT, STRING } st = CODE;
    int line = 1, start_line = 0;
    const char *start = NULL;
    int line_has_code = 0;
    for (const char *p = buf; *p; p++) {
        char c = *p;
        if (c == '\n') {
            if (st == STRING) {
                *what = "unterminated string";
                *at = (char *)start;
                return start_line;
            }
            if (st == LINE_COMMENT) st = CODE;
            line++;
            line_has_code = 0;
            continue;
        }
        switch (st) {
        case CODE:
            if (c == '#' || (c == '/' && p[1] == '/')) st = LINE_COMMENT;
            else if (c == '/' && p[1] == '*') st = BLOCK_COMMENT, start = p, start_line = line, p++;
            else if (c == '"') st = STRING, start = p, start_line = line;
            else if (c == '@' && !line_has_code) {
                *what = "@include is not supported";
                *at = (char *)p;
                return line;
            }
            if (c != ' ' && c != '\t') line_has_code = 1;
            break;
        case BLOCK_COMMENT:
            if (c == '*' && p[1] == '/') st = CODE, p++;
            break;
        case STRING:
            if (c == '\\' && p[1] && p[1] != '\n') p++;
            else if (c == '"') st = CODE;
            break;
        case LINE_COMMENT: break;
        }
    }
    if (st == BLOCK_COMMENT || st == STRING) {
        *what = st == STRING ? "unterminated string" : "unterminated comment";
        *at = (char *)start;
        return start_line;
    }
    return 0;
}

static void clean_lexically(reporter_t *r, char *buf) {
    for (int guard = 0; guard < 64; guard++) {
        const char *what;
        char *at;
        int line = prescan(buf, &what, &at);
        if (!line) return;
        problem(r, line, "%s; line skipped%s", what, "");
        at[0] = ' '; // the opening '/*', quote or '@' goes even if the line is odd
        if (at[1] == '*') at[1] = ' ';
        blank_line(buf, line);
    }
}

// Anything but blanks and comments left in the (lexically clean) text.
static int has_settings(const char *buf) {
    for (const char *p = buf; *p; p++) {
        if (*p == '#' || (*p == '/' && p[1] == '/')) {
            while (*p && *p != '\n') p++;
            if (!*p) break;
        } else if (*p == '/' && p[1] == '*') {
            for (p += 2; *p && !(*p == '*' && p[1] == '/'); p++) {}
            if (!*p) break;
            p++;
        } else if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\f' && *p != '\v') {
            return 1;
        }
    }
    return 0;
}

int mh_config_parse_buffer(const char *name, char *buf, size_t len, mh_report_fn report,
                           void *ctx) {
    reporter_t r = {name, report, ctx, 0};
    buf[len] = 0;
    blank_binary(&r, buf, len);
    clean_lexically(&r, buf);
    if (!has_settings(buf)) return r.problems; // all comments (as shipped): libconfig is not needed
    if (!(lc = mh_libconfig())) {
        problem(&r, 0, "libconfig (" MH_LIBCONFIG_NAME ") cannot be loaded; the settings are ignored%s%s", "", "");
        return r.problems;
    }
    config_t cfg;
    for (int attempt = 0; attempt < 64; attempt++) {
        lc->init(&cfg);
        if (lc->read_string(&cfg, buf)) {
            apply_root(&r, &cfg);
            lc->destroy(&cfg);
            return r.problems;
        }
        int line = config_error_line(&cfg);
        char text[160];
        mh_snprintf(text, sizeof text, "%s", config_error_text(&cfg) ? config_error_text(&cfg) : "error");
        lc->destroy(&cfg);
        problem(&r, line, "%s; line skipped%s", text, "");
        if (line <= 0 || !(blank_line(buf, line) || blank_last_line(buf))) break;
    }
    problem(&r, 0, "cannot be parsed; using defaults%s%s", "", "");
    return r.problems;
}

// ---- files ---------------------------------------------------------------------------

static int trusted(const struct stat *st) {
    return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

int mh_config_read_file(const char *path, int missing_ok, int secure, mh_report_fn report,
                        void *ctx) {
    reporter_t r = {path, report, ctx, 0};
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        // strerrordesc_np, not strerror: strerror may take libc's locale lock, and
        // this runs inside whatever malloc call comes first after start-up, which
        // can be one made by setlocale with that lock held (bash does this). Only when
        // there is a problem: the message table is one more page to fault in at the
        // start of every process without the file.
        if (!(missing_ok && errno == ENOENT)) {
            const char *why = strerrordesc_np(errno);
            problem(&r, 0, "cannot open: %s%s", why ? why : "unknown error", "");
        }
        return r.problems;
    }
    struct stat st;
    char size[32];
    int rc = mh_os_stat_fd(fd, &st);
    if (rc != 0) {
        const char *why = strerrordesc_np(rc);
        problem(&r, 0, "cannot stat: %s; using defaults%s", why ? why : "unknown error", "");
    } else if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
        problem(&r, 0, "%s; using defaults%s", S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file", "");
    } else if (secure && !trusted(&st)) {
        problem(&r, 0, "ignored in a privileged program: not owned by root or writable by others%s%s", "", "");
    } else if ((size_t)st.st_size > MH_CONFIG_MAX_BYTES) {
        mh_snprintf(size, sizeof size, "%lld", (long long)st.st_size);
        problem(&r, 0, "too large (%s bytes, the limit is 1 MiB); using defaults%s", size, "");
    } else {
        char *buf = malloc((size_t)st.st_size + 1);
        size_t got = buf ? mh_os_read_upto(fd, buf, (size_t)st.st_size) : 0;
        if (!buf) problem(&r, 0, "out of memory reading it; using defaults%s%s", "", "");
        else r.problems += mh_config_parse_buffer(path, buf, got, report, ctx);
        free(buf);
    }
    close(fd);
    return r.problems;
}
