/* sampler.c - libmesh benchmark helper: runs one command and measures it.
 * Forks and execs the command (optionally with LD_PRELOAD set for the
 * child only), samples Rss and Pss from /proc/PID/smaps_rollup every
 * INTERVAL ms while it runs, and measures its wall time on the monotonic
 * clock.  Wakes up as soon as the child exits (SIGCHLD), so the wall time
 * is not rounded to the sampling interval.  Kills the child after TIMEOUT s,
 * or when the sampler gets SIGINT/SIGTERM/SIGHUP.
 *
 * usage: sampler [-i MS] [-t SEC] [-p PRELOAD] [-o REPORT] -- CMD [ARG...]
 * Writes one line of key=value pairs to REPORT (default stderr):
 *   status=ok|exit:N|signal:N|timeout|interrupted:N wall_s= rss_peak_kib= pss_peak_kib=
 *   rss_last_kib= pss_last_kib= maxrss_kib= samples=
 * (*_last_* is the last sample taken before the child exited; maxrss_kib is
 * the kernel's exact RSS high-water mark from wait4.)
 * Exit status: the child's, 128+N if the child was killed by signal N (or
 * the sampler was interrupted by signal N), 124 on timeout,
 * 125 on a sampler error, 127 if the command could not be executed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long field_kib(const char *buf, const char *key)
{
    size_t klen = strlen(key);
    for (const char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, key, klen) == 0)
            return strtol(l + klen, NULL, 10);
    }
    return -1;
}

/* Reads Rss/Pss (KiB) of pid; returns 0 on success.  The file is opened
 * anew each time: an fd opened before exec would keep reading the old mm. */
static int sample(pid_t pid, long *rss, long *pss)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = 0;
    *rss = field_kib(buf, "Rss:");
    *pss = field_kib(buf, "Pss:");
    return (*rss < 0 || *pss < 0) ? -1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: sampler [-i MS] [-t SEC] [-p PRELOAD] [-o REPORT] -- CMD [ARG...]\n");
    exit(125);
}

int main(int argc, char **argv)
{
    double interval_ms = 10, timeout_s = 0;
    const char *preload = NULL, *report = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "+i:t:p:o:h")) != -1) {
        switch (opt) {
        case 'i': interval_ms = atof(optarg); break;
        case 't': timeout_s = atof(optarg); break;
        case 'p': preload = optarg; break;
        case 'o': report = optarg; break;
        default: usage();
        }
    }
    if (optind >= argc || interval_ms <= 0)
        usage();

    /* SIGCHLD wakes the sampling loop early; SIGINT/SIGTERM/SIGHUP make
     * it kill the child instead of leaving it running */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGCHLD);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);

    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("sampler: fork");
        return 125;
    }
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &sigs, NULL);
        if (preload) {
            if (*preload)
                setenv("LD_PRELOAD", preload, 1);
            else
                unsetenv("LD_PRELOAD");
        }
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "sampler: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }

    long rss_peak = 0, pss_peak = 0, rss_last = 0, pss_last = 0, samples = 0;
    int status = 0, timed_out = 0, stop_sig = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    double next = t0;
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &ru);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            perror("sampler: wait4");
            return 125;
        }
        long rss, pss;
        if (sample(pid, &rss, &pss) == 0 && rss > 0) { /* zombie reads as 0 */
            if (rss > rss_peak)
                rss_peak = rss;
            if (pss > pss_peak)
                pss_peak = pss;
            rss_last = rss;
            pss_last = pss;
            samples++;
        }
        if (stop_sig || (timeout_s > 0 && now() - t0 > timeout_s)) {
            kill(pid, SIGKILL);
            while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
                ;
            timed_out = !stop_sig;
            break;
        }
        /* sample on a fixed grid, but never sleep less than 1 ms so a slow
         * smaps_rollup read cannot turn the sampler into a busy loop */
        double t = now(), wait_s;
        next += interval_ms / 1000.0;
        if (next < t + 0.001)
            next = t + 0.001;
        wait_s = next - t;
        struct timespec iv = {(time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        int sig = sigtimedwait(&sigs, NULL, &iv); /* early when the child exits */
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
            stop_sig = sig;
    }
    double wall = now() - t0;

    char st[32];
    int rc;
    if (stop_sig) {
        snprintf(st, sizeof st, "interrupted:%d", stop_sig);
        rc = 128 + stop_sig;
    } else if (timed_out) {
        snprintf(st, sizeof st, "timeout");
        rc = 124;
    } else if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
        if (rc == 0)
            snprintf(st, sizeof st, "ok");
        else
            snprintf(st, sizeof st, "exit:%d", rc);
    } else if (WIFSIGNALED(status)) {
        snprintf(st, sizeof st, "signal:%d", WTERMSIG(status));
        rc = 128 + WTERMSIG(status);
    } else {
        snprintf(st, sizeof st, "unknown");
        rc = 125;
    }

    FILE *out = stderr;
    if (report && !(out = fopen(report, "w"))) {
        perror("sampler: report");
        return 125;
    }
    fprintf(out,
            "status=%s wall_s=%.6f rss_peak_kib=%ld pss_peak_kib=%ld rss_last_kib=%ld "
            "pss_last_kib=%ld maxrss_kib=%ld samples=%ld\n",
            st, wall, rss_peak, pss_peak, rss_last, pss_last, ru.ru_maxrss, samples);
    if (out != stderr && fclose(out) != 0) {
        perror("sampler: report");
        return 125;
    }
    return rc;
}
