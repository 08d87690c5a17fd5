// options.h - the option table (options.def), current values and where each came from.
//
// Layer 2 (primitives).
//
// Precedence, lowest first: default < file < environment < mesh_mallctl; a source only
// replaces a value set by a lower or equal one. Values are plain int64 read without
// locks (a racing reader sees the old or the new value). Parsing here never allocates,
// so the same code serves the library, meshctl and the fuzzers.
#ifndef MH_OPTIONS_H
#define MH_OPTIONS_H

#include "common.h"

typedef enum {
#define MH_OPTION(id, type, def, min, max, names, env, env_alt, key, doc) MH_OPT_##id,
#include "options.def"
#undef MH_OPTION
    MH_OPT_COUNT
} mh_opt_id_t;

typedef enum { MH_OT_INT, MH_OT_BOOL, MH_OT_ENUM, MH_OT_SIGNAL } mh_opt_type_t;
typedef enum { MH_SRC_DEFAULT, MH_SRC_FILE, MH_SRC_ENV, MH_SRC_CTL } mh_opt_src_t;
enum { MH_THP_WARN = 0, MH_THP_DISABLE = 1, MH_THP_OFF = 2 };
enum { MH_CHECK_WARN = 0, MH_CHECK_OFF = 1 };
enum { MH_AUTO = 2 }; // the third value of a BOOL option whose maximum is 2

typedef struct mh_opt_desc_s {
    const char *key, *env, *env_alt, *doc;
    mh_opt_type_t type;
    int64_t def, min, max;
    const char *const *names; // ENUM: value i is names[i]
} mh_opt_desc_t;

typedef struct mh_opt_origin_s {
    mh_opt_src_t src;
    int line;            // MH_SRC_FILE
    const char *env;     // MH_SRC_ENV: the variable's name
} mh_opt_origin_t;

extern const mh_opt_desc_t mh_opt_desc[MH_OPT_COUNT] MH_HIDDEN;
extern int64_t mh_opt[MH_OPT_COUNT] MH_HIDDEN;
extern mh_opt_origin_t mh_opt_origin[MH_OPT_COUNT] MH_HIDDEN;

// Receives one complete problem line (without the "libmesh: " prefix or newline).
typedef void (*mh_report_fn)(void *ctx, const char *line);

// Option with this file key / mallctl name, or -1.
int mh_opt_find(const char *key);
// Parses text for option id. Returns 0, or writes the reason ("expected ...") to why.
int mh_opt_parse(int id, const char *text, int64_t *out, char *why, size_t whylen);
// Describes the accepted values of an option ("an integer from 0 to 2", ...).
size_t mh_opt_expect(int id, char *buf, size_t n);
// Renders a value as it would be written in the file.
size_t mh_opt_format(int id, int64_t v, char *buf, size_t n);
// Renders where the value came from: default, FILE:LINE, env:NAME or mesh_mallctl.
size_t mh_opt_format_origin(int id, const char *file, char *buf, size_t n);
// Sets a value if src ranks at least as high as the current value's source.
void mh_opt_set(int id, int64_t v, mh_opt_origin_t origin);
void mh_opt_reset_defaults(void);
// Applies one option's variable from envp now, silently (a bad value is reported by
// mh_opt_apply_env later): for what the first allocation already depends on. The
// caller skips it in secure-execution programs, as mh_opt_apply_env's caller does.
void mh_opt_apply_env_early(char *const *envp, int id);
// Applies MESH_* (and MALLOCSTATS) from envp; bad values are reported and skipped.
void mh_opt_apply_env(char *const *envp, mh_report_fn report, void *ctx);

// Signal number for a name such as "SIGUSR2", "usr2" or "RTMIN+3"; 0 for "off"; -1 bad.
int mh_signal_parse(const char *name);
const char *mh_signal_name(int signo, char *buf, size_t n);

#endif
