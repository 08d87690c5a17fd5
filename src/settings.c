// settings.c - process-wide configuration effects (see settings.h).
//
// Layer 7 (runtime). The statistics signal is installed through the barrier-aware
// sigaction (fault.c), deliberately: it keeps SIGSEGV/SIGBUS out of the handler's mask.
#define _GNU_SOURCE
#include "settings.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>

#include "arena.h"
#include "checks.h"
#include "config_file.h"
#include "freephys.h"
#include "info.h"
#include "log.h"
#include "fault.h"
#include "mesh_sched.h"
#include "options.h"
#include "stats.h"
#include "str.h"

#ifndef MESH_DEFAULT_CONF
#define MESH_DEFAULT_CONF "/etc/mesh.conf"
#endif

extern char **environ;

enum { LOAD_BLOCKED = 0, LOAD_ALLOWED, LOAD_RUNNING, LOAD_DONE };
static _Atomic int load_state;
_Atomic int mh_settings_work;
static volatile sig_atomic_t stats_requested;
static char conf_path[256] = MESH_DEFAULT_CONF;
static int exit_stats_fd = 2; // a copy of stderr: programs often close fd 2 at exit

static void report_warn(void *ctx, const char *line) {
    (void)ctx;
    mh_warn("%s", line);
}

// The file's problems in one line (design principle 2: under a system-wide preload a
// broken file is read by every process): the first, and how many more there are.
typedef struct {
    int n;
    long first_line; // the line the first problem is on (0: the file as a whole)
    char first[400];
} file_problems_t;

// The line number of a "FILE:LINE: ..." report (0 for "FILE: ...").
static long report_line(const char *msg) {
    size_t k = mh_strlen(conf_path);
    long line = 0;
    if (msg[k] != ':') return 0;
    for (const char *p = msg + k + 1; *p >= '0' && *p <= '9'; p++) line = line * 10 + (*p - '0');
    return line;
}

static void report_file(void *ctx, const char *msg) {
    file_problems_t *fp = ctx;
    long line = report_line(msg);
    if (fp->n++ == 0 || line < fp->first_line) {
        fp->first_line = line;
        mh_snprintf(fp->first, sizeof fp->first, "%s", msg);
    }
}

static void read_file(int missing_ok, int secure) {
    file_problems_t fp = {0, 0, ""};
    mh_config_read_file(conf_path, missing_ok, secure, report_file, &fp);
    if (fp.n == 1) mh_warn("%s", fp.first);
    else if (fp.n > 1)
        mh_warn("%s (and %d more problem%s in %s: 'meshctl config check %s' lists them all)", fp.first, fp.n - 1,
                fp.n > 2 ? "s" : "", conf_path, conf_path);
}

const char *mh_settings_conf_path(void) { return conf_path; }

static void stats_signal_handler(int sig) {
    (void)sig;
    stats_requested = 1; // the dump runs later, outside the handler
    mh_fetch_or_seqcst(&mh_settings_work, MH_PENDING_STATS);
}

static void install_stats_signal(int signo) {
    struct sigaction old, sa;
    if (mh_fault_sigaction(signo, NULL, &old) != 0) return;
    char name[32];
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
        mh_warn("stats.signal %s: the program already handles this signal; not installed",
                mh_signal_name(signo, name, sizeof name));
        return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stats_signal_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    mh_fault_sigaction(signo, &sa, NULL);
}

// Puts back the default action for a signal we installed the stats handler on.
static void remove_stats_signal(int signo) {
    struct sigaction cur;
    if (signo <= 0 || mh_fault_sigaction(signo, NULL, &cur) != 0 || cur.sa_handler != stats_signal_handler)
        return;
    memset(&cur, 0, sizeof cur);
    cur.sa_handler = SIG_DFL;
    mh_fault_sigaction(signo, &cur, NULL);
}

void mh_settings_changed(int id, int64_t before) {
    if (id == MH_OPT_background_thread && mh_opt[id] == 1) mh_mesh_start_background();
    if (id == MH_OPT_freephys_thread && mh_opt[id]) mh_freephys_start();
    if (id != MH_OPT_stats_signal || before == mh_opt[id]) return;
    remove_stats_signal((int)before);
    if (mh_opt[id]) install_stats_signal((int)mh_opt[id]);
}

static void print_verbose(void) {
    for (int id = 0; id < MH_OPT_COUNT; id++) {
        char val[64], from[300];
        mh_opt_format(id, mh_opt[id], val, sizeof val);
        mh_opt_format_origin(id, conf_path, from, sizeof from);
        mh_warn("option %s = %s  # %s", mh_opt_desc[id].key, val, from);
    }
}

static void apply_effects(void) {
    mh_arena_check_thp(); // only with the heap on its file (else when it takes it)
    if (mh_opt[MH_OPT_thp] == MH_THP_DISABLE) prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    if (mh_opt[MH_OPT_stats_signal]) install_stats_signal((int)mh_opt[MH_OPT_stats_signal]);
    if (mh_opt[MH_OPT_verbose]) print_verbose();
    if (mh_opt[MH_OPT_background_thread] == 1) mh_mesh_start_background(); // auto: from a tick
    if (mh_opt[MH_OPT_freephys_thread]) mh_freephys_start();
    if (mh_opt[MH_OPT_stats_at_exit] > 0) {
        int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
        if (fd >= 0) exit_stats_fd = fd;
    }
}

static void load(void) {
    int secure = getauxval(AT_SECURE) != 0;
    int missing_ok = 1;
    if (!secure) { // MESH_CONF and MESH_* are ignored in setuid/setgid/capability programs
        const char *alt = getenv("MESH_CONF");
        if (alt && *alt) {
            mh_snprintf(conf_path, sizeof conf_path, "%s", alt);
            missing_ok = 0;
        }
    }
    read_file(missing_ok, secure);
    if (!secure) mh_opt_apply_env(environ, report_warn, NULL);
    apply_effects();
}

// The heap took its file: publish from the next slow path (under the arena lock here).
static void info_page_made(void) { mh_fetch_or_seqcst(&mh_settings_work, MH_PENDING_PUBLISH); }

void mh_settings_publish(void) {
    mh_info_t *info = mh_arena_info_page();
    if (!info) return; // info_page_made asks again once there is a page
    info->nopts = MH_OPT_COUNT;
    for (int id = 0; id < MH_OPT_COUNT && id < MH_INFO_MAX_OPTS; id++) {
        info->options[id] = mh_opt[id];
        info->sources[id] = (uint8_t)mh_opt_origin[id].src;
    }
    mh_snprintf(info->conf_path, sizeof info->conf_path, "%s", conf_path);
    memcpy(info->magic, MH_INFO_MAGIC, sizeof MH_INFO_MAGIC);
}

void mh_settings_allow(void) {
    mh_arena_set_info_hook(info_page_made);
    int expected = LOAD_BLOCKED;
    mh_cas_seqcst(&load_state, &expected, LOAD_ALLOWED);
    mh_fetch_or_seqcst(&mh_settings_work, MH_PENDING_LOAD);
}

void mh_settings_service(void) {
    int expected = LOAD_ALLOWED;
    if (mh_cas_seqcst(&load_state, &expected, LOAD_RUNNING)) {
        load();
        mh_store_release(&load_state, LOAD_DONE);
        mh_settings_publish();
        mh_fetch_and_seqcst(&mh_settings_work, ~MH_PENDING_LOAD);
    }
    if (mh_load_acquire(&load_state) != LOAD_DONE) return; // pairs with the store above
    int pending = mh_exchange_seqcst(&mh_settings_work, 0);
    if (pending & MH_PENDING_PUBLISH) mh_settings_publish();
    if ((pending & MH_PENDING_STATS) || stats_requested) {
        stats_requested = 0;
        mh_stats_print(2, 2);
    }
}

// Statistics at normal exit (a program that ends with _exit prints nothing).
__attribute__((destructor)) static void print_stats_at_exit(void) {
    if (mh_load_acquire(&load_state) == LOAD_DONE && mh_opt[MH_OPT_stats_at_exit] > 0)
        mh_stats_print((int)mh_opt[MH_OPT_stats_at_exit], exit_stats_fd);
}
