// config_file.h - reads /etc/mesh.conf (libconfig syntax) into the option table.
//
// Layer 7 (runtime).
//
// The only module that uses libconfig and libc's allocating functions: it runs after
// the heap can serve requests, never under an allocator lock. Bad input never stops
// the program and never loses what can still be read: each problem becomes one report
// (the library prints only the first and how many there were; meshctl lists them all)
// naming FILE:LINE (syntax errors are reported and the offending line skipped,
// then parsing resumes); unknown keys, wrong types and out-of-range values are
// reported and skipped. A missing default file is silent.
#ifndef MH_CONFIG_FILE_H
#define MH_CONFIG_FILE_H

#include <stddef.h>

#include "options.h"

#define MH_CONFIG_MAX_BYTES ((size_t)1 << 20)

// Parses a configuration held in buf (len bytes, modified in place; any bytes) and
// applies it to the options as source `name`. Returns the number of problems.
int mh_config_parse_buffer(const char *name, char *buf, size_t len, mh_report_fn report,
                           void *ctx);
// Reads and applies the file at path. missing_ok: no report when it does not exist.
// secure: only read a file owned by root and not writable by group or others.
// Returns the number of problems reported.
int mh_config_read_file(const char *path, int missing_ok, int secure, mh_report_fn report,
                        void *ctx);

#endif
