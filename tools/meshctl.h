// meshctl.h - declarations shared by meshctl's command files: exit codes, the
// compiled-in install paths, and the enablement building blocks (atomic file
// writes, /etc/ld.so.preload edits, systemd drop-ins, the preload self-test).
// meshctl is single-threaded; nothing here locks.
#ifndef MESHCTL_H
#define MESHCTL_H

#include <stddef.h>
#include <sys/types.h>

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
// Prints which services carry libmesh's drop-in; returns how many.
int service_status(const char *root);

// What `stats PID` reads, shared with `stats --all` so their figures agree: the
// process's live libmesh heap file (-1 with errno set; ESRCH or ENOENT: none), and
// one "Field: N kB" value of a /proc file (-1 when missing).
int open_heap_file(const char *pid);
long read_kb(const char *file, const char *field);

// stats --all / top (tools/top.c); NAME is how the command was called.
int cmd_top(const char *name, int argc, char **argv);
int cmd_enable(int argc, char **argv);
int cmd_disable(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif
