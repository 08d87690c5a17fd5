#!/usr/bin/env bats
# Initialisation order: the first malloc may come from another library's
# constructor, from C++ static initialisation, from dlsym/dlopen, or from many
# threads at once; libmesh must serve all of them. Also: a process without
# memfd_create (seccomp) still runs on private memory, and large address-space
# use is not capped at a fixed arena size.

load helper

setup() { mesh_setup; }

@test "malloc from another library's constructor before ours" {
    cat > early.c <<'C'
#include <stdlib.h>
#include <string.h>
char *early_buf;
__attribute__((constructor(101))) static void early(void) {
    early_buf = malloc(100);
    strcpy(early_buf, "constructed");
    void *p = malloc(50000); free(p);
}
C
    cat > main.c <<'C'
#include <stdio.h>
#include <stdlib.h>
extern char *early_buf;
int main(void) { puts(early_buf); free(early_buf); return 0; }
C
    gcc -shared -fPIC -o libearly.so early.c
    gcc -o main main.c -L. -learly -Wl,-rpath,"$PWD"
    run with_mesh ./main
    assert_success
    assert_output "constructed"
}

@test "C++ static initialisation allocates before main" {
    cat > s.cc <<'C'
#include <cstdio>
#include <map>
#include <string>
#include <vector>
static std::map<std::string, std::vector<int>> table = [] {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 1000; i++) m["k" + std::to_string(i)].assign(i % 50, i);
    return m;
}();
int main() { std::printf("%zu %zu\n", table.size(), table["k999"].size()); }
C
    g++ -O1 -o s s.cc
    run with_mesh ./s
    assert_success
    assert_output "1000 49"
}

@test "dlopen and dlsym work under the preload" {
    cat > d.c <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
    void *h = dlopen("libm.so.6", RTLD_NOW);
    if (!h) { puts(dlerror()); return 1; }
    double (*c)(double) = (double (*)(double))dlsym(h, "cos");
    void *missing = dlsym(h, "no_such_symbol_here");
    printf("%.3f %s\n", c(0.0), missing ? "found" : dlerror() ? "error-set" : "none");
    dlclose(h);
    return 0;
}
C
    gcc -o d d.c -ldl
    run with_mesh ./d
    assert_success
    assert_output "1.000 error-set"
}

@test "many threads make their first allocation at once" {
    cat > t.c <<'C'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void *work(void *a) {
    char *p[100];
    for (int i = 0; i < 100; i++) { p[i] = malloc(16 + i * 40); memset(p[i], i, 16 + i * 40); }
    for (int i = 0; i < 100; i++) free(p[i]);
    return a;
}
int main(void) {
    pthread_t t[64];
    for (int i = 0; i < 64; i++) pthread_create(&t[i], 0, work, 0);
    for (int i = 0; i < 64; i++) pthread_join(t[i], 0);
    puts("done");
    return 0;
}
C
    gcc -O1 -pthread -o t t.c
    run with_mesh ./t
    assert_success
    assert_output "done"
}

@test "without memfd_create (seccomp) programs still run" {
    cat > nomemfd.c <<'C'
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_create, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 99;
    execvp(argv[1], argv + 1);
    return 98;
}
C
    gcc -o nomemfd nomemfd.c
    run with_mesh ./nomemfd python3 -c 'import os; d = {i: str(i) * 20 for i in range(100000)}; print(len(d)); print(any("memfd:libmesh" in l for l in open("/proc/self/maps")))'
    assert_success
    assert_output $'100000\nFalse'
    run with_mesh env MESH_FILE_FROM_MIB=0 python3 -c 'd = {i: str(i) for i in range(1000)}; print(any("memfd:libmesh" in l for l in open("/proc/self/maps")))'
    assert_output "True"
}

@test "a small program holds no heap descriptor; a heap past mesh.file_from_mib takes its memfd and keeps every object" {
    cat >memfds.py <<'PY'
import os, sys
def memfds():
    out = []
    for f in os.listdir("/proc/self/fd"):
        try:
            t = os.readlink("/proc/self/fd/" + f)
        except OSError:
            continue
        if "memfd:libmesh" in t:
            out.append(t)
    return out
if sys.argv[1] == "small":
    d = {i: str(i) for i in range(1000)}
    print(memfds())
else:
    d = {i: str(i) * 10 for i in range(400000)}
    for i in range(0, 400000, 3):
        del d[i]
    e = {i: str(i) * 30 for i in range(100000)}
    assert all(d[i] == str(i) * 10 for i in d) and all(e[i] == str(i) * 30 for i in e)
    print(len(memfds()) > 0)
PY
    run with_mesh python3 memfds.py small
    assert_success
    assert_output "[]"
    run with_mesh env MESH_FILE_FROM_MIB=8 python3 memfds.py large
    assert_success
    assert_output "True"
}

@test "more than 64 GiB of address space in live large blocks" {
    cat > big.c <<'C'
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    enum { N = 72 };
    char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc((size_t)1 << 30);
        if (!b[i]) { printf("failed at %d GiB\n", i); return 1; }
        b[i][0] = (char)i; b[i][(1 << 30) - 1] = (char)i;
    }
    for (int i = 0; i < N; i++) if (b[i][0] != (char)i) return 2;
    for (int i = 0; i < N; i++) free(b[i]);
    puts("72 GiB ok");
    return 0;
}
C
    gcc -O1 -o big big.c
    run with_mesh ./big
    assert_success
    assert_output "72 GiB ok"
}
