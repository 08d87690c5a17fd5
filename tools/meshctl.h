// meshctl.h - declarations shared by meshctl's command files: exit codes, the
// compiled-in install paths, and the enablement building blocks (atomic file
// writes, /etc/ld.so.preload edits, systemd drop-ins, the preload self-test).
// meshctl is single-threaded; nothing here locks.
#ifndef MESHCTL_H
#define MESHCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "info.h"

#ifndef MESH_DEFAULT_CONF
#define MESH_DEFAULT_CONF "/etc/mesh.conf"
#endif
#ifndef MESH_LIBRARY_PATH
#define MESH_LIBRARY_PATH "/usr/lib/x86_64-linux-gnu/libmesh.so.1"
#endif
// What enable writes into /etc/ld.so.preload and drop-ins. "$LIB" is expanded by
// ld.so (lib/<triplet> on Debian, lib64 on RPM systems), so 32-bit processes on a
// multiarch host load their own build instead of failing with "wrong ELF class".
#ifndef MESH_PRELOAD_ENTRY
#define MESH_PRELOAD_ENTRY MESH_LIBRARY_PATH
#endif
#ifndef MESH_VERSION_STRING
#define MESH_VERSION_STRING "1.0.0"
#endif

enum { EXIT_PROBLEMS = 1, EXIT_USAGE = 2, EXIT_CANNOT = 3 };

#define MESH_STATE_DIR "/var/lib/libmesh"
#define MESH_PRELOAD_MARKER MESH_STATE_DIR "/preload-enabled"
#define MESH_DROPIN_NAME "50-libmesh.conf"

int usage_error(const char *fmt, const char *arg);

// A library path as written in a preload list: absolute, file name libmesh.so or
// libmesh.so.N[.N...]. Used to recognise our entries and nothing else.
int is_mesh_library_token(const char *tok, size_t len);

// Replaces PATH's content with DATA atomically (temporary file in the same
// directory, fsync, rename). MODE/UID/GID are applied to the new file. Returns 0,
// or -1 with errno set.
int atomic_write_file(const char *path, const char *data, size_t len, mode_t mode, uid_t uid,
                      gid_t gid);

// mkdir -p: creates DIR and its missing parents with MODE.
int make_dirs(const char *dir, mode_t mode);

// Reads a whole (small) text file into a malloc'd NUL-terminated buffer. Returns
// NULL with errno set; ENOENT is the caller's "no such file".
char *read_text_file(const char *path, size_t limit);

// Expands a preload entry's "$LIB" the way ld.so does on this system, for the
// self-test and for checks: the result is the installed library's path.
void expand_preload_entry(const char *entry, char *out, size_t outlen);

// What the self-test runs: the library as installed (a real path, under the root)
// and the root the configuration is read from.
typedef struct {
    const char *lib;
    const char *root;
} self_test_t;

// Runs the self-test. Prints what it runs and why it fails. Returns 0 when
// libmesh is safe to enable.
int preload_self_test(const self_test_t *t);

// /etc/ld.so.preload under ROOT.
int preload_enable(const char *root, const char *entry, const self_test_t *test);
int preload_disable(const char *root);
// Prints the system-wide state. Returns 1 when the file names a library that is missing.
int preload_status(const char *root);

// systemd drop-ins under ROOT.
int service_enable(const char *root, const char *name, const char *entry,
                   const self_test_t *test);
int service_disable(const char *root, const char *name);
// The units whose /etc/systemd/system/UNIT.d holds libmesh's drop-in (a template's
// drop-in, "foo@.service", covers its instances), sorted, at most MAX; each name is
// malloc'd. Returns how many.
int dropin_services(const char *root, char **names, int max);
// "foo@bar.service" -> "foo@.service"; -1 for a name that is no template instance.
int template_name(const char *unit, char *out, size_t n);

// What `stats PID` reads, shared with `stats --all` and `status` so their figures
// agree. DIR is the process's /proc directory (/proc/PID, or ROOT/proc/PID): its live
// libmesh heap file, its info page read into *info (-1 with errno set; ESRCH or
// ENOENT: none); whether its maps name
// /libmesh.so (1, 0, or -1 with errno); one "Field: N kB" value of a /proc file (-1
// when missing).
int open_heap_file(const char *dir, mh_info_t *info);
// Reads the info page of heap file fd into *info; false when it is not a live one.
bool read_heap_info(int fd, mh_info_t *info);
int maps_name_libmesh(const char *dir);
long read_kb(const char *file, const char *field);

// ---- the processes that use libmesh (tools/top.c) ----------------------------------
typedef struct {
    long pid;
    char comm[64];               // as /proc/PID/comm gives it, without the newline
    long long pss;               // bytes
    unsigned long long meshed;   // bytes meshed now (the saving)
    unsigned long long file;     // heap file bytes (allocated blocks)
    unsigned long long meshes;   // mesh count
    uint32_t degraded;           // mh_degrade_t bits from the info page
    bool has_file;
} mesh_proc_t;

typedef struct {
    long pid;
    char comm[64]; // empty when it cannot be read either
} proc_denied_t;

typedef struct {
    mesh_proc_t *rows; // sorted by saving, largest first
    size_t nrows, cap_rows;
    proc_denied_t *denied; // using libmesh, or maybe: not ours to read
    size_t ndenied, cap_denied;
} proc_scan_t;

typedef struct {
    unsigned long long pss, meshed, file, meshes;
    size_t processes, paused;
} proc_totals_t;

// Reads every process of PROC ("/proc", or ROOT/proc) but meshctl itself, without
// signals; processes that end meanwhile are left out. Returns 0, or -1 with errno set
// when PROC cannot be listed. proc_scan_free releases what it holds.
int proc_scan(proc_scan_t *s, const char *proc);
void proc_scan_free(proc_scan_t *s);
void proc_totals_add(proc_totals_t *t, const mesh_proc_t *r);
// meshed / (pss + meshed) in percent: the share of what the process would cost
// without meshing that meshing saves.
double saving_pct(unsigned long long pss, unsigned long long meshed);
// Bytes for a person: B, KiB, MiB, GiB, TiB with one decimal.
void human_bytes(unsigned long long v, char *out, size_t len);
// A command name for a table: 15 columns at most, anything unprintable as '?'.
void printable_comm(const char *s, char *out, size_t len);

// status: the services with the drop-in, each with its processes and their combined
// PSS, meshed bytes and saving, then the other processes using libmesh
// (tools/status_procs.c). Processes are read from ROOT/proc.
void status_services(const char *root);

// stats --all / top (tools/top.c); NAME is how the command was called.
int cmd_top(const char *name, int argc, char **argv);
int cmd_enable(int argc, char **argv);
int cmd_disable(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif
