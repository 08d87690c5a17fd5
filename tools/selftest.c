// selftest.c - the check meshctl runs before it enables libmesh anywhere.
//
// With /etc/ld.so.preload a broken library is loaded into every program, sudo and
// dpkg included, so enabling must be refused unless the library as installed, with
// the configuration as it is now, runs real programs cleanly: dynamically linked
// ones, one that forks constantly, and multi-threaded ones. A program passes when
// it exits 0, prints what it should, prints nothing on stderr (a config error line
// would otherwise appear in every process) and really had libmesh mapped.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config_file.h"
#include "meshctl.h"

#define TEST_TIMEOUT_MS 30000

typedef struct {
    const char *what;
    const char *argv[5];
    const char *expect;  // a line stdout must contain; NULL: the library's path
    int optional;        // skipped when the program is not installed
} probe_t;

static const char py_threads[] =
    "import threading\n"
    "r = []\n"
    "def work():\n"
    "    d = {i: str(i) * 3 for i in range(20000)}\n"
    "    r.append(sum(len(v) for v in d.values()))\n"
    "ts = [threading.Thread(target=work) for _ in range(4)]\n"
    "[t.start() for t in ts]\n"
    "[t.join() for t in ts]\n"
    "print(len(r), r[0])\n";

static const probe_t probes[] = {
    {"library is loaded", {"cat", "/proc/self/maps"}, NULL, 0},
    {"shell with 100 subshells",
     {"sh", "-c", "i=0; while [ $i -lt 100 ]; do i=$((i+1)); x=$(echo $i); done; echo $x"},
     "100", 0},
    {"multi-threaded sort",
     {"sh", "-c", "seq 1 200000 | sort -n --parallel=2 -S 8M | tail -n 1"}, "200000", 0},
    {"python3 with 4 threads", {"python3", "-c", py_threads}, "4 266670", 1},
    {"perl hash of 50000 keys",
     {"perl", "-e", "my %h; $h{$_} = $_ x 3 for 1..50000; print scalar(keys %h), qq(\\n)"},
     "50000", 1},
};

static int in_path(const char *prog) {
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
        if (access(buf, X_OK) == 0) return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Reads both pipes until they close or the deadline passes. Returns 0, or -1 on timeout.
static int drain(int out_fd, int err_fd, char *out, size_t on, char *err, size_t en) {
    struct pollfd p[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    size_t lens[2] = {0, 0}, caps[2] = {on - 1, en - 1};
    char *bufs[2] = {out, err};
    long deadline = now_ms() + TEST_TIMEOUT_MS;
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        long left = deadline - now_ms();
        if (left <= 0) return -1;
        if (poll(p, 2, (int)left) < 0 && errno != EINTR) return -1;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents) continue;
            char sink[4096];
            size_t room = caps[i] - lens[i];
            ssize_t n = read(p[i].fd, room ? bufs[i] + lens[i] : sink, room ? room : sizeof sink);
            if (n > 0 && room) lens[i] += (size_t)n;
            if (n == 0 || (n < 0 && errno != EINTR)) p[i].fd = -1;
        }
    }
    out[lens[0]] = 0;
    err[lens[1]] = 0;
    return 0;
}

// Runs one probe with LIB preloaded. Returns 0 when it passed.
static int run_probe(const probe_t *t, const char *lib, const char *conf) {
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        setenv("LD_PRELOAD", lib, 1);
        // On the live system the library finds the configuration exactly as every
        // program will; in another root tree it is pointed at that tree's file.
        if (conf) setenv("MESH_CONF", conf, 1);
        else unsetenv("MESH_CONF");
        execvp(t->argv[0], (char *const *)t->argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    static char out[1 << 16], err[4096];
    int timed_out = pid > 0 ? drain(po[0], pe[0], out, sizeof out, err, sizeof err) : -1;
    close(po[0]);
    close(pe[0]);
    int status = 0;
    if (pid > 0 && timed_out) kill(pid, SIGKILL);
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    const char *expect = t->expect ? t->expect : lib;
    const char *why = timed_out ? "did not finish in 30 s"
                      : WIFSIGNALED(status) ? strsignal(WTERMSIG(status))
                      : WEXITSTATUS(status) ? "exited with an error"
                      : err[0]              ? "wrote to stderr"
                      : !strstr(out, expect) ? (t->expect ? "printed the wrong result"
                                                          : "libmesh was not loaded")
                                             : NULL;
    printf("self-test: %-28s %s\n", t->what, why ? "FAILED" : "ok");
    if (why) {
        printf("  %s: %s (exit status %d)\n", t->argv[0], why, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        if (err[0]) printf("  stderr: %.*s\n", (int)strcspn(err, "\n"), err);
    }
    return why ? 1 : 0;
}

static void report_config(void *ctx, const char *line) {
    (*(int *)ctx)++;
    printf("  %s\n", line);
}

// The configuration the probes run with: none set on the live system; in another
// root, that root's file, or an empty file when it has none (the library reports
// a MESH_CONF that names no file, which would fail every probe).
static const char *probe_conf(const char *root, char *path, size_t n, char *scratch) {
    if (!*root) return NULL;
    snprintf(path, n, "%s%s", root, MESH_DEFAULT_CONF);
    if (access(path, F_OK) == 0) return path;
    int fd = mkstemp(scratch);
    if (fd < 0) return path;
    close(fd);
    return scratch;
}

int preload_self_test(const self_test_t *t) {
    if (access(t->lib, R_OK) != 0) {
        printf("self-test: the library %s cannot be read: %s\n", t->lib, strerror(errno));
        return 1;
    }
    char conf_path[1200], live[] = MESH_DEFAULT_CONF, scratch[] = "/tmp/meshctl-conf-XXXXXX";
    const char *conf = probe_conf(t->root, conf_path, sizeof conf_path, scratch);
    int problems = 0;
    mh_config_read_file(conf ? conf : live, 1, 0, report_config, &problems);
    printf("self-test: %-28s %s\n", "configuration is valid", problems ? "FAILED" : "ok");
    if (problems) {
        printf("  fix %s first (meshctl config check): every program would print this\n",
               conf ? conf : live);
        if (conf == scratch) unlink(scratch);
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        if (probes[i].optional && !in_path(probes[i].argv[0])) {
            printf("self-test: %-28s skipped (%s is not installed)\n", probes[i].what,
                   probes[i].argv[0]);
            continue;
        }
        failed += run_probe(&probes[i], t->lib, conf) != 0;
    }
    if (conf == scratch) unlink(scratch);
    return failed != 0;
}
