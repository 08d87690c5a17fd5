// options.c - option table, value parsing and precedence (see options.h).
//
// Layer 2 (primitives).
#include "options.h"

#include <signal.h>

#include "str.h"

static const char *const mh_thp_names[] = {"warn", "disable", "off", NULL};
static const char *const mh_warn_off_names[] = {"warn", "off", NULL};

#define TYPE_INT MH_OT_INT
#define TYPE_BOOL MH_OT_BOOL
#define TYPE_ENUM MH_OT_ENUM
#define TYPE_SIGNAL MH_OT_SIGNAL

const mh_opt_desc_t mh_opt_desc[MH_OPT_COUNT] = {
#define MH_OPTION(id, type, def, min, max, names, env, env_alt, key, doc)                         \
    {key, env, env_alt, doc, TYPE_##type, def, min, max, names},
#include "options.def"
#undef MH_OPTION
};

int64_t mh_opt[MH_OPT_COUNT] = {
#define MH_OPTION(id, type, def, min, max, names, env, env_alt, key, doc) def,
#include "options.def"
#undef MH_OPTION
};

mh_opt_origin_t mh_opt_origin[MH_OPT_COUNT];

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static int ieq(const char *a, const char *b) {
    while (*a && lower(*a) == lower(*b)) a++, b++;
    return *a == 0 && *b == 0;
}

int mh_opt_find(const char *key) {
    for (int i = 0; i < MH_OPT_COUNT; i++)
        if (mh_streq(mh_opt_desc[i].key, key)) return i;
    return -1;
}

// ---- signals -------------------------------------------------------------------

static const struct {
    const char *name;
    int signo;
} signals[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"CHLD", SIGCHLD},   {"CONT", SIGCONT},     {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},   {"URG", SIGURG},       {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

// Parses a decimal number in [0, limit] that fills the rest of s; -1 otherwise.
static int64_t parse_small_uint(const char *s, int64_t limit) {
    int64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > limit) return -1;
    }
    return v;
}

int mh_signal_parse(const char *name) {
    if (ieq(name, "off")) return 0;
    const char *n = name;
    if (lower(n[0]) == 's' && lower(n[1]) == 'i' && lower(n[2]) == 'g') n += 3;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (ieq(n, signals[i].name)) return signals[i].signo;
    // RTMIN+n: glibc keeps the first real-time signals for itself, so count from SIGRTMIN.
    const char *rt = "rtmin";
    size_t k = 0;
    while (rt[k] && lower(n[k]) == rt[k]) k++;
    if (!rt[k]) {
        int64_t off = n[k] == 0 ? 0 : n[k] == '+' ? parse_small_uint(n + k + 1, 64) : -1;
        if (off >= 0 && SIGRTMIN + off <= SIGRTMAX) return (int)(SIGRTMIN + off);
    }
    return -1;
}

const char *mh_signal_name(int signo, char *buf, size_t n) {
    if (signo == 0) return "off";
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (signals[i].signo == signo) {
            mh_snprintf(buf, n, "SIG%s", signals[i].name);
            return buf;
        }
    mh_snprintf(buf, n, "SIGRTMIN+%d", signo - SIGRTMIN);
    return buf;
}

// ---- values --------------------------------------------------------------------

static const char *skip_space(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

// Copies s without surrounding blanks into buf; NULL when it does not fit (no valid
// value is that long, and a truncated one must not be accepted).
static const char *trimmed(const char *s, char *buf, size_t n) {
    s = skip_space(s);
    size_t len = mh_strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n')) len--;
    if (len + 1 > n) return NULL;
    for (size_t i = 0; i < len; i++) buf[i] = s[i];
    buf[len] = 0;
    return buf;
}

// A shortened copy of s for messages.
static const char *shown(const char *s, char *buf, size_t n) {
    size_t len = 0;
    while (s[len] && len + 4 < n) buf[len] = s[len], len++;
    if (s[len]) buf[len++] = '.', buf[len++] = '.', buf[len++] = '.';
    buf[len] = 0;
    return buf;
}

static int parse_int(const char *s, int64_t *out) {
    int neg = 0;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    if (!*s) return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

// A BOOL option whose maximum is 2 also takes "auto" (mesh.background_thread).
static bool takes_auto(const mh_opt_desc_t *d) { return d->type == MH_OT_BOOL && d->max >= MH_AUTO; }

static int parse_bool(const char *s, int64_t *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (ieq(s, yes[i])) return *out = 1, 0;
        if (ieq(s, no[i])) return *out = 0, 0;
    }
    return -1;
}

size_t mh_opt_expect(int id, char *buf, size_t n) {
    const mh_opt_desc_t *d = &mh_opt_desc[id];
    switch (d->type) {
    case MH_OT_INT:
        return mh_snprintf(buf, n, "an integer from %lld to %lld", (long long)d->min, (long long)d->max);
    case MH_OT_BOOL: return mh_snprintf(buf, n, takes_auto(d) ? "true, false or \"auto\"" : "true or false");
    case MH_OT_SIGNAL: return mh_snprintf(buf, n, "\"off\" or a signal name such as \"SIGUSR2\"");
    case MH_OT_ENUM: {
        size_t len = mh_snprintf(buf, n, "one of");
        for (int i = 0; d->names[i]; i++)
            len += mh_snprintf(buf + len, n > len ? n - len : 0, "%s \"%s\"", i ? "," : "", d->names[i]);
        return len;
    }
    }
    return 0;
}

int mh_opt_parse(int id, const char *text, int64_t *out, char *why, size_t whylen) {
    const mh_opt_desc_t *d = &mh_opt_desc[id];
    char buf[64];
    const char *s = trimmed(text, buf, sizeof buf);
    int64_t v = 0;
    int rc = -1;
    switch (s ? d->type : (mh_opt_type_t)-1) {
    case MH_OT_INT: rc = parse_int(s, &v); break;
    case MH_OT_BOOL:
        rc = parse_bool(s, &v);
        if (rc != 0 && takes_auto(d) && ieq(s, "auto")) rc = 0, v = MH_AUTO;
        break;
    case MH_OT_SIGNAL: {
        int sig = mh_signal_parse(s);
        rc = sig < 0 ? -1 : 0;
        v = sig;
        break;
    }
    case MH_OT_ENUM:
        for (int i = 0; d->names[i]; i++)
            if (ieq(s, d->names[i])) rc = 0, v = i;
        break;
    default: break; // too long to be valid
    }
    if (rc == 0 && (v < d->min || v > d->max)) rc = -1;
    if (rc != 0) {
        size_t len = mh_snprintf(why, whylen, "expected ");
        mh_opt_expect(id, why + len, whylen > len ? whylen - len : 0);
        return -1;
    }
    *out = v;
    return 0;
}

size_t mh_opt_format(int id, int64_t v, char *buf, size_t n) {
    const mh_opt_desc_t *d = &mh_opt_desc[id];
    char sig[32];
    switch (d->type) {
    case MH_OT_BOOL: return mh_snprintf(buf, n, "%s", v == MH_AUTO ? "\"auto\"" : v ? "true" : "false");
    case MH_OT_ENUM: return mh_snprintf(buf, n, "\"%s\"", d->names[v]);
    case MH_OT_SIGNAL: return mh_snprintf(buf, n, "\"%s\"", mh_signal_name((int)v, sig, sizeof sig));
    default: return mh_snprintf(buf, n, "%lld", (long long)v);
    }
}

size_t mh_opt_format_origin(int id, const char *file, char *buf, size_t n) {
    const mh_opt_origin_t *o = &mh_opt_origin[id];
    switch (o->src) {
    case MH_SRC_FILE: return mh_snprintf(buf, n, "%s:%d", file ? file : "?", o->line);
    case MH_SRC_ENV: return mh_snprintf(buf, n, "env:%s", o->env);
    case MH_SRC_CTL: return mh_snprintf(buf, n, "mesh_mallctl");
    default: return mh_snprintf(buf, n, "default");
    }
}

void mh_opt_set(int id, int64_t v, mh_opt_origin_t origin) {
    if (origin.src < mh_opt_origin[id].src) return;
    mh_opt[id] = v;
    mh_opt_origin[id] = origin;
}

void mh_opt_reset_defaults(void) {
    for (int i = 0; i < MH_OPT_COUNT; i++) {
        mh_opt[i] = mh_opt_desc[i].def;
        mh_opt_origin[i] = (mh_opt_origin_t){MH_SRC_DEFAULT, 0, NULL};
    }
}

// Value of NAME in envp, or NULL.
static const char *env_lookup(char *const *envp, const char *name) {
    size_t n = mh_strlen(name);
    for (; envp && *envp; envp++) {
        const char *e = *envp;
        size_t i = 0;
        while (i < n && e[i] == name[i]) i++;
        if (i == n && e[n] == '=') return e + n + 1;
    }
    return NULL;
}

void mh_opt_apply_env_early(char *const *envp, int id) {
    const mh_opt_desc_t *d = &mh_opt_desc[id];
    const char *val = d->env ? env_lookup(envp, d->env) : NULL;
    int64_t v;
    char why[160];
    if (val && mh_opt_parse(id, val, &v, why, sizeof why) == 0)
        mh_opt_set(id, v, (mh_opt_origin_t){MH_SRC_ENV, 0, d->env});
}

void mh_opt_apply_env(char *const *envp, mh_report_fn report, void *ctx) {
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        const mh_opt_desc_t *d = &mh_opt_desc[id];
        // The primary name wins over the alias when both are set.
        const char *names[2] = {d->env_alt, d->env};
        for (int k = 0; k < 2; k++) {
            const char *val = names[k] ? env_lookup(envp, names[k]) : NULL;
            if (!val) continue;
            int64_t v;
            char why[160], line[320], text[48];
            if (mh_opt_parse(id, val, &v, why, sizeof why) != 0) {
                mh_snprintf(line, sizeof line, "%s=\"%s\": %s; ignored", names[k],
                            shown(val, text, sizeof text), why);
                report(ctx, line);
                continue;
            }
            mh_opt_set(id, v, (mh_opt_origin_t){MH_SRC_ENV, 0, names[k]});
        }
    }
}
