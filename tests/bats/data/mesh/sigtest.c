/* sigtest.c - SIGSEGV/SIGBUS semantics of a program whose allocator (libmesh)
 * has its own SIGSEGV/SIGBUS handler for the mesh write barrier.
 *
 * usage: sigtest MODE
 * Every mode first makes sure libmesh's handler is installed (mesh.compact via
 * dlsym installs it; without libmesh this is a no-op) - except where a mode
 * installs its own handler first on purpose.  "barrier: libmesh" is printed
 * when the kernel's SIGSEGV handler is not the program's own, i.e. libmesh sits
 * in front of it.  Output is flushed before every fault, so what a test sees
 * is what happened before the process died.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#pragma GCC diagnostic ignored "-Winfinite-recursion"

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static sigjmp_buf g_env;
static volatile sig_atomic_t g_calls, g_sig, g_code;
static void *volatile g_addr;
static volatile int g_segv_blocked = -1, g_usr1_blocked = -1, g_on_altstack = -1;
static char *g_alt;
static size_t g_alt_size = 1 << 16;

#define BAD_ADDR ((volatile int *)(uintptr_t)0x10)

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* async-signal-safe line */
static void say(const char *s) {
    ssize_t r = write(1, s, strlen(s));
    (void)r;
}

static void install_mesh(void) {
    mallctl_fn ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    /* a little heap first, so there is something to look at */
    void *p[64];
    for (int i = 0; i < 64; i++)
        p[i] = malloc(64);
    for (int i = 0; i < 64; i += 2)
        free(p[i]);
    if (ctl)
        ctl("mesh.compact", NULL, NULL, NULL, 0);
    for (int i = 1; i < 64; i += 2)
        free(p[i]);
}

/* The kernel's struct sigaction on x86-64, for raw rt_sigaction calls. */
typedef struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
} kernel_sigaction_t;

/* Is the handler the kernel has for sig something other than `mine`? */
static void report_barrier_to(FILE *f, const char *label, int sig, void *mine) {
    kernel_sigaction_t k;
    syscall(SYS_rt_sigaction, sig, NULL, &k, 8);
    fprintf(f, "%s: %s\n", label,
            k.handler != mine && k.handler != (void *)SIG_DFL && k.handler != (void *)SIG_IGN ? "libmesh" : "none");
    fflush(f);
}

static void report_barrier(int sig, void *mine) { report_barrier_to(stdout, "barrier", sig, mine); }

static void h_info(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    g_calls++;
    g_sig = sig;
    g_code = si->si_code;
    g_addr = si->si_addr;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    g_segv_blocked = sigismember(&cur, SIGSEGV);
    g_usr1_blocked = sigismember(&cur, SIGUSR1);
    char here;
    g_on_altstack = g_alt && &here >= g_alt && &here < g_alt + g_alt_size;
    siglongjmp(g_env, 1);
}

static void h_plain(int sig) {
    g_calls++;
    g_sig = sig;
    siglongjmp(g_env, 1);
}

static void h_return(int sig) { /* returns: the faulting store runs again */
    (void)sig;
    g_calls++;
    say("handler called, returning\n");
}

static void h_nested(int sig) {
    (void)sig;
    g_calls++;
    if (g_calls > 1) {
        say("handler re-entered: SIGSEGV was not blocked inside the handler\n");
        _exit(5);
    }
    say("handler entered, faulting again inside it\n");
    *BAD_ADDR = 2;
    say("second fault inside the handler returned\n");
    _exit(6);
}

static char *g_page;
static volatile int g_gc_ok = 1;
static void h_unprotect(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    g_calls++;
    char *a = si->si_addr;
    if (si->si_code != SEGV_ACCERR || a < g_page || a >= g_page + 4096)
        g_gc_ok = 0;
    mprotect(g_page, 4096, PROT_READ | PROT_WRITE);
}

static void h_exit3(int sig) {
    (void)sig;
    say("program handler called\n");
    _exit(3);
}

static void set(int sig, void (*h)(int, siginfo_t *, void *), void (*ph)(int), int flags, int usr1_in_mask) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (usr1_in_mask)
        sigaddset(&sa.sa_mask, SIGUSR1);
    if (h)
        sa.sa_sigaction = h;
    else
        sa.sa_handler = ph;
    sa.sa_flags = flags | (h ? SA_SIGINFO : 0);
    if (sigaction(sig, &sa, NULL) != 0) {
        out("sigaction: %s\n", strerror(errno));
        exit(2);
    }
}

static const char *code_name(int sig, int code) {
    if (sig == SIGSEGV)
        return code == SEGV_MAPERR ? "SEGV_MAPERR" : code == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
    if (sig == SIGBUS)
        return code == BUS_ADRERR ? "BUS_ADRERR" : code == BUS_OBJERR ? "BUS_OBJERR" : "other";
    return "other";
}

/* One NULL-page store that the program's handler catches with siglongjmp. */
static int fault_caught(const char *label) {
    g_calls = 0;
    if (sigsetjmp(g_env, 1) == 0) {
        *BAD_ADDR = 1;
        out("%s: the store did not fault\n", label);
        return 0;
    }
    out("%s: caught signal %d, calls %d, si_addr %p, si_code %s\n", label, (int)g_sig, (int)g_calls, g_addr,
        code_name((int)g_sig, (int)g_code));
    return 1;
}

static volatile char *truncated_mapping(void) {
    char path[] = "/tmp/sigtest.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, 8192) != 0) {
        out("tmp file: %s\n", strerror(errno));
        exit(2);
    }
    unlink(path);
    volatile char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        out("mmap: %s\n", strerror(errno));
        exit(2);
    }
    if (ftruncate(fd, 0) != 0)
        exit(2);
    return m;
}

static int recurse(int depth) {
    volatile char pad[512];
    pad[0] = (char)depth;
    pad[511] = (char)depth;
    return recurse(depth + 1) + pad[0] + pad[511];
}

static const char *hname(void *h, void *a, void *b) {
    return h == (void *)SIG_DFL ? "SIG_DFL" : h == (void *)SIG_IGN ? "SIG_IGN" : h == a ? "h1" : h == b ? "h2" : "?";
}

#if defined(__x86_64__)
static void skip_handler(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)si;
    ucontext_t *uc = ctx;
    g_calls++;
    uc->uc_mcontext.gregs[REG_RIP] += 7;
}
#endif

static void h1(int s) { (void)s; }
static void h2(int s) { (void)s; }

/* A fragmented class for the raw-sigaction modes: 20,000 objects of 64 B, seven in
   eight freed, each survivor filled with its index. */
enum { FRAG_N = 20000 };
static unsigned char *frag_obj[FRAG_N];

static void fragment_heap(void) {
    for (int i = 0; i < FRAG_N; i++) {
        frag_obj[i] = malloc(64);
        memset(frag_obj[i], i & 0xff, 64);
    }
    for (int i = 0; i < FRAG_N; i++)
        if (i % 8)
            free(frag_obj[i]), frag_obj[i] = NULL;
}

/* Meshes made by five mesh.compact calls (0 without libmesh). */
static size_t meshes_during_compactions(void) {
    mallctl_fn ctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mesh_mallctl");
    size_t before = 0, after = 0, len = sizeof before;
    if (ctl) {
        ctl("stats.mesh_count", &before, &len, NULL, 0);
        for (int i = 0; i < 5; i++)
            ctl("mesh.compact", NULL, NULL, NULL, 0);
        ctl("stats.mesh_count", &after, &len, NULL, 0);
    }
    return after - before;
}

/* Every survivor still holds its bytes; says which one does not, or "objects intact". */
static int fragment_intact(void) {
    for (int i = 0; i < FRAG_N; i += 8)
        for (int b = 0; b < 64; b++)
            if (frag_obj[i][b] != (unsigned char)(i & 0xff)) {
                out("object %d corrupted\n", i);
                return 0;
            }
    out("objects intact\n");
    return 1;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";

    if (!strcmp(m, "siginfo-before") || !strcmp(m, "siginfo-after")) {
        int before = !strcmp(m, "siginfo-before");
        if (before)
            set(SIGSEGV, h_info, NULL, 0, 0);
        install_mesh();
        if (!before)
            set(SIGSEGV, h_info, NULL, 0, 0);
        report_barrier(SIGSEGV, (void *)h_info);
        int ok = fault_caught("first fault") && fault_caught("second fault");
        /* the heap still works after the program handled faults */
        char *p = malloc(100);
        strcpy(p, "heap ok");
        out("%s\n", p);
        free(p);
        return ok ? 0 : 1;
    }
    if (!strcmp(m, "plain-handler") || !strcmp(m, "signal-api")) {
        install_mesh();
        if (!strcmp(m, "plain-handler"))
            set(SIGSEGV, NULL, h_plain, 0, 0);
        else
            signal(SIGSEGV, h_plain);
        report_barrier(SIGSEGV, (void *)h_plain);
        g_calls = 0;
        if (sigsetjmp(g_env, 1) == 0) {
            *BAD_ADDR = 1;
            out("no fault\n");
            return 1;
        }
        out("handler got signal %d, calls %d\n", (int)g_sig, (int)g_calls);
        return 0;
    }
    if (!strcmp(m, "resethand-longjmp")) {
        install_mesh();
        set(SIGSEGV, h_info, NULL, SA_RESETHAND, 0);
        report_barrier(SIGSEGV, (void *)h_info);
        fault_caught("first fault");
        out("second fault next: SA_RESETHAND restored the default action\n");
        g_calls = 0;
        if (sigsetjmp(g_env, 1) == 0)
            *BAD_ADDR = 1;
        out("second fault went to the handler again (calls %d): SA_RESETHAND not honoured\n", (int)g_calls);
        return 3;
    }
    if (!strcmp(m, "resethand-return")) {
        install_mesh();
        set(SIGSEGV, NULL, h_return, SA_RESETHAND, 0);
        report_barrier(SIGSEGV, (void *)h_return);
        *BAD_ADDR = 1;
        out("survived (calls %d)\n", (int)g_calls);
        return 3;
    }
    if (!strcmp(m, "dfl") || !strcmp(m, "ign") || !strcmp(m, "never")) {
        install_mesh();
        if (strcmp(m, "never")) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = !strcmp(m, "dfl") ? SIG_DFL : SIG_IGN;
            sigaction(SIGSEGV, &sa, NULL);
        }
        report_barrier(SIGSEGV, NULL);
        out("faulting\n");
        *BAD_ADDR = 1;
        out("survived a NULL-page store\n");
        return 3;
    }
    if (!strcmp(m, "ign-kill")) {
        install_mesh();
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        report_barrier_to(stderr, "barrier", SIGSEGV, NULL);
        kill(getpid(), SIGSEGV);
        out("SIGSEGV from kill() ignored\n");
        raise(SIGBUS);
        out("SIGBUS from raise() ignored\n");
        return 0;
    }
    if (!strcmp(m, "query")) {
        /* what sigaction/signal report back must be what the program installed */
        set(SIGSEGV, NULL, h1, SA_RESTART, 0); /* before libmesh's handler */
        install_mesh();
        struct sigaction old;
        sigaction(SIGSEGV, NULL, &old);
        out("after install: SIGSEGV handler %s\n", hname((void *)old.sa_handler, h1, h2));
        set(SIGSEGV, h_info, NULL, SA_ONSTACK | SA_RESTART | SA_NODEFER, 1);
        memset(&old, 0, sizeof old);
        sigaction(SIGSEGV, NULL, &old);
        out("SIGSEGV: same function %d, SA_SIGINFO %d, SA_ONSTACK %d, SA_RESTART %d, SA_NODEFER %d, "
            "SA_RESETHAND %d, SIGUSR1 in mask %d, SIGUSR2 in mask %d\n",
            old.sa_sigaction == h_info, !!(old.sa_flags & SA_SIGINFO), !!(old.sa_flags & SA_ONSTACK),
            !!(old.sa_flags & SA_RESTART), !!(old.sa_flags & SA_NODEFER), !!(old.sa_flags & SA_RESETHAND),
            sigismember(&old.sa_mask, SIGUSR1), sigismember(&old.sa_mask, SIGUSR2));
        void (*prev)(int);
        prev = signal(SIGSEGV, h1);
        out("signal(SIGSEGV, h1) returned %s\n", prev == (void (*)(int))h_info ? "h_info" : "?");
        prev = signal(SIGSEGV, h2);
        out("signal(SIGSEGV, h2) returned %s\n", hname((void *)prev, h1, h2));
        prev = signal(SIGSEGV, SIG_DFL);
        out("signal(SIGSEGV, SIG_DFL) returned %s\n", hname((void *)prev, h1, h2));
        prev = signal(SIGSEGV, SIG_IGN);
        out("signal(SIGSEGV, SIG_IGN) returned %s\n", hname((void *)prev, h1, h2));
        sigaction(SIGSEGV, NULL, &old);
        out("now: %s\n", hname((void *)old.sa_handler, h1, h2));
        prev = signal(SIGBUS, h2);
        out("signal(SIGBUS, h2) returned %s\n", hname((void *)prev, h1, h2));
        struct sigaction bus;
        sigaction(SIGBUS, NULL, &bus);
        out("SIGBUS now: %s, SA_RESTART %d, SA_SIGINFO %d\n", hname((void *)bus.sa_handler, h1, h2),
            !!(bus.sa_flags & SA_RESTART), !!(bus.sa_flags & SA_SIGINFO));
        /* a bad signal number is still an error */
        errno = 0;
        int rc = sigaction(SIGKILL, &bus, NULL);
        out("sigaction(SIGKILL) = %d, errno %s\n", rc, errno == EINVAL ? "EINVAL" : "other");
        return 0;
    }
    if (!strcmp(m, "sigset")) {
        /* sigset() and sysv_signal() are other ways to install a SIGSEGV handler */
        install_mesh();
        sigset(SIGSEGV, h1);
        struct sigaction old;
        sigaction(SIGSEGV, NULL, &old);
        out("after sigset(SIGSEGV, h1): sigaction reports %s\n", hname((void *)old.sa_handler, h1, h2));
        report_barrier_to(stderr, "barrier after sigset", SIGSEGV, (void *)h1);
        sysv_signal(SIGSEGV, h2);
        sigaction(SIGSEGV, NULL, &old);
        out("after sysv_signal(SIGSEGV, h2): sigaction reports %s\n", hname((void *)old.sa_handler, h1, h2));
        report_barrier_to(stderr, "barrier after sysv_signal", SIGSEGV, (void *)h2);
        return 0;
    }
    if (!strcmp(m, "mask-in-handler")) {
        install_mesh();
        set(SIGSEGV, h_info, NULL, 0, 1);
        if (!fault_caught("fault"))
            return 1;
        out("inside the handler: SIGSEGV blocked %d, SIGUSR1 (sa_mask) blocked %d\n", (int)g_segv_blocked,
            (int)g_usr1_blocked);
        sigset_t cur;
        sigprocmask(SIG_SETMASK, NULL, &cur);
        out("after siglongjmp: SIGSEGV blocked %d, SIGUSR1 blocked %d\n", sigismember(&cur, SIGSEGV),
            sigismember(&cur, SIGUSR1));
        return 0;
    }
    if (!strcmp(m, "nested")) {
        install_mesh();
        set(SIGSEGV, NULL, h_nested, 0, 0);
        report_barrier(SIGSEGV, (void *)h_nested);
        *BAD_ADDR = 1;
        return 3;
    }
    if (!strcmp(m, "skip-insn")) {
#if defined(__x86_64__)
        /* the handler steps over the faulting 6-byte store and returns */
        install_mesh();
        set(SIGSEGV, skip_handler, NULL, 0, 0);
        volatile int after = 0;
        __asm__ volatile("xor %%eax, %%eax\n\t"
                         "movl $1, 0x10(%%rax)\n\t" /* c7 40 10 01 00 00 00: 7 bytes */
                         "movl $7, %0\n\t"
                         : "=m"(after)
                         :
                         : "rax", "memory");
        out("continued after the skipped store: %d, handler calls %d\n", after, (int)g_calls);
        return 0;
#else
        out("continued after the skipped store: 7, handler calls 1\n");
        return 0;
#endif
    }
    if (!strcmp(m, "sigbus-handler") || !strcmp(m, "sigbus-dfl")) {
        install_mesh();
        volatile char *p = truncated_mapping();
        if (!strcmp(m, "sigbus-handler")) {
            set(SIGBUS, h_info, NULL, 0, 0);
            if (sigsetjmp(g_env, 1) == 0) {
                p[100] = 1;
                out("no SIGBUS\n");
                return 1;
            }
            out("caught signal %d (SIGBUS %d), si_addr is the store's address %d, si_code %s\n", (int)g_sig,
                SIGBUS, g_addr == (void *)(p + 100), code_name((int)g_sig, (int)g_code));
            return 0;
        }
        out("touching a truncated mapping\n");
        p[100] = 1;
        out("survived\n");
        return 3;
    }
    if (!strcmp(m, "wait-kill")) {
        install_mesh();
        report_barrier(SIGSEGV, NULL);
        out("ready\n");
        for (int i = 0; i < 400; i++)
            usleep(50 * 1000);
        out("no signal came\n");
        return 3;
    }
    if (!strcmp(m, "altstack") || !strcmp(m, "altstack-before")) {
        int before = !strcmp(m, "altstack-before");
        g_alt = malloc(g_alt_size);
        stack_t ss = {.ss_sp = g_alt, .ss_size = g_alt_size, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0) {
            out("sigaltstack: %s\n", strerror(errno));
            return 2;
        }
        if (before)
            set(SIGSEGV, h_info, NULL, SA_ONSTACK, 0);
        install_mesh();
        if (!before)
            set(SIGSEGV, h_info, NULL, SA_ONSTACK, 0);
        report_barrier(SIGSEGV, (void *)h_info);
        out("recursing\n");
        if (sigsetjmp(g_env, 1) == 0) {
            recurse(0);
            return 1;
        }
        out("recovered from the stack overflow: signal %d, handler on the alternate stack %d\n", (int)g_sig,
            (int)g_on_altstack);
        /* and once more: the handler must still be in place */
        if (sigsetjmp(g_env, 1) == 0) {
            recurse(0);
            return 1;
        }
        out("recovered twice\n");
        return 0;
    }
    if (!strcmp(m, "gc-barrier")) {
        /* the program's own write barrier on heap memory (as garbage collectors and
           guard-page debuggers do): mprotect a malloc'd page read-only, the handler
           makes it writable again and returns */
        install_mesh();
        if (posix_memalign((void **)&g_page, 4096, 4096) != 0)
            return 2;
        set(SIGSEGV, h_unprotect, NULL, 0, 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 200; i++) {
            mprotect(g_page, 4096, PROT_READ);
            ((volatile char *)g_page)[i * 16] = (char)i;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        out("200 protected stores: handler calls %d, all SEGV_ACCERR at the store's address %d\n", (int)g_calls,
            (int)g_gc_ok);
        fprintf(stderr, "elapsed_ms=%ld\n", ms);
        return 0;
    }
    if (!strcmp(m, "exit3-handler")) {
        install_mesh();
        set(SIGSEGV, NULL, h_exit3, 0, 0);
        *BAD_ADDR = 1;
        return 4;
    }
    if (!strcmp(m, "raw-rt-sigaction")) {
        /* The handler goes in with a raw rt_sigaction, around libmesh's sigaction: the
           next mesh pass must notice, stop meshing (one warning) and leave the
           program's handler in charge of its faults. */
        install_mesh();
        fragment_heap();
        kernel_sigaction_t k;
        syscall(SYS_rt_sigaction, SIGSEGV, NULL, &k, 8); /* libc's restorer, from the installed action */
        k.handler = (void *)h_info;
        k.flags = SA_SIGINFO | 0x04000000; /* SA_RESTORER (not in the user headers) */
        k.mask = 0;
        if (syscall(SYS_rt_sigaction, SIGSEGV, &k, NULL, 8) != 0) {
            out("raw rt_sigaction: %s\n", strerror(errno));
            return 2;
        }
        size_t meshed = meshes_during_compactions();
        out("meshes during the compactions: %zu\n", meshed);
        int ok = fault_caught("fault after the raw install");
        if (!fragment_intact())
            return 1;
        return ok ? 0 : 1;
    }
    if (!strcmp(m, "raw-reset-dfl")) {
        /* Something outside libmesh's sigaction (exec'd code sharing memory, a libc
           internal path, the program with a raw rt_sigaction) puts SIGSEGV back to the
           default: meshing must go on with libmesh's handler back in place, the
           program must read back the default, and a real fault must still kill. */
        install_mesh();
        fragment_heap();
        kernel_sigaction_t k;
        memset(&k, 0, sizeof k); /* SIG_DFL */
        if (syscall(SYS_rt_sigaction, SIGSEGV, &k, NULL, 8) != 0) {
            out("raw rt_sigaction: %s\n", strerror(errno));
            return 2;
        }
        size_t meshed = meshes_during_compactions();
        out("meshed after the reset: %s\n", meshed ? "yes" : "no");
        report_barrier_to(stdout, "barrier", SIGSEGV, NULL);
        struct sigaction cur;
        sigaction(SIGSEGV, NULL, &cur);
        out("program reads: %s\n", cur.sa_handler == SIG_DFL ? "SIG_DFL" : "something else");
        if (!fragment_intact())
            return 1;
        fflush(stdout);
        *BAD_ADDR = 1; /* the default action: death by SIGSEGV */
        return 4;
    }
    fprintf(stderr, "unknown mode %s\n", m);
    return 2;
}

