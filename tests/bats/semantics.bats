#!/usr/bin/env bats
# Allocator semantics, checked with small programs compiled here (without
# libmesh) and run with LD_PRELOAD=$MESH_LIB.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/semantics.bats

bats_require_minimum_version 1.5.0
load helper

setup() {
    mesh_setup || return 1
    ulimit -c 0 # the abort tests must not leave core files
}

# build FILE: write stdin to FILE (.c or .cc) and compile it to FILE minus ext
build() {
    cat >"$1"
    mesh_compile "$1" "${1%.*}"
}

# run a command under libmesh, stdout and stderr captured separately
run_mesh() {
    run --separate-stderr env LD_PRELOAD="$MESH_LIB" "$@"
}

@test "malloc(0) returns unique non-NULL pointers" {
    build m0.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
static int cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}
int main(void) {
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        if (!p[i]) { printf("malloc(0) #%d returned NULL\n", i); return 1; }
    }
    qsort(p, N, sizeof p[0], cmp);
    for (int i = 1; i < N; i++)
        if (p[i] == p[i - 1]) { printf("malloc(0) returned %p twice\n", p[i]); return 1; }
    for (int i = 0; i < N; i++) free(p[i]);
    void *a = malloc(0), *b = malloc(0);
    if (!a || !b || a == b) { printf("after free: %p %p\n", a, b); return 1; }
    free(a); free(b);
    puts("ok");
    return 0;
}
EOF
    run_mesh ./m0
    assert_success
    assert_output "ok"
}

@test "malloc(SIZE_MAX/2) fails with NULL and errno ENOMEM" {
    build big.c <<'EOF'
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
static int check(size_t n) {
    errno = 0;
    void *p = malloc(n);
    if (p != NULL || errno != ENOMEM) {
        printf("malloc(%zu) = %p, errno %d (want NULL, ENOMEM=%d)\n", n, p, errno, ENOMEM);
        return 0;
    }
    return 1;
}
int main(void) {
    int ok = check(SIZE_MAX / 2) & check(SIZE_MAX) & check(SIZE_MAX - 4096) & check((size_t)1 << 62);
    void *q = malloc(100);   /* the allocator still works afterwards */
    if (!q) { puts("malloc(100) failed after huge requests"); return 1; }
    free(q);
    if (ok) puts("ok");
    return !ok;
}
EOF
    run_mesh ./big
    assert_success
    assert_output "ok"
}

@test "realloc to a huge size fails with ENOMEM and keeps the old block" {
    build rbig.c <<'EOF'
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *p = malloc(100);
    if (!p) return 1;
    memset(p, 'q', 100);
    errno = 0;
    void *q = realloc(p, SIZE_MAX / 2);
    if (q != NULL || errno != ENOMEM) { printf("realloc huge = %p errno %d\n", q, errno); return 1; }
    for (int i = 0; i < 100; i++)
        if (p[i] != 'q') { puts("old block changed"); return 1; }
    free(p);
    puts("ok");
    return 0;
}
EOF
    run_mesh ./rbig
    assert_success
    assert_output "ok"
}

@test "calloc overflow returns NULL with ENOMEM" {
    build cov.c <<'EOF'
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
static int check(size_t n, size_t m) {
    errno = 0;
    void *p = calloc(n, m);
    if (p != NULL || errno != ENOMEM) {
        printf("calloc(%zu, %zu) = %p, errno %d (want NULL, ENOMEM)\n", n, m, p, errno);
        return 0;
    }
    return 1;
}
int main(void) {
    int ok = check(SIZE_MAX / 2, 3) & check((size_t)1 << 33, (size_t)1 << 33) & check(SIZE_MAX, SIZE_MAX) &
             check(3, SIZE_MAX / 2) & check(SIZE_MAX / 2 + 1, 2);
    if (ok) puts("ok");
    return !ok;
}
EOF
    run_mesh ./cov
    assert_success
    assert_output "ok"
}

@test "reallocarray overflow returns NULL with ENOMEM and keeps the block" {
    build rao.c <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *p = malloc(16);
    if (!p) return 1;
    memcpy(p, "0123456789abcdef", 16);
    errno = 0;
    void *q = reallocarray(p, SIZE_MAX / 2, 4);
    if (q != NULL || errno != ENOMEM) { printf("reallocarray(p, SIZE_MAX/2, 4) = %p errno %d\n", q, errno); return 1; }
    if (memcmp(p, "0123456789abcdef", 16) != 0) { puts("block changed after failed reallocarray"); return 1; }
    errno = 0;
    q = reallocarray(NULL, (size_t)1 << 33, (size_t)1 << 33);
    if (q != NULL || errno != ENOMEM) { printf("reallocarray(NULL, 2^33, 2^33) = %p errno %d\n", q, errno); return 1; }
    p = reallocarray(p, 100, 8);
    if (!p || memcmp(p, "0123456789abcdef", 16) != 0) { puts("reallocarray(p, 100, 8) failed"); return 1; }
    free(p);
    puts("ok");
    return 0;
}
EOF
    run_mesh ./rao
    assert_success
    assert_output "ok"
}

@test "posix_memalign: EINVAL for alignment 0, 4, 24; 1 MiB alignment works" {
    build pma.c <<'EOF'
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    int ok = 1;
    size_t bad[] = {0, 4, 24, 3, 48};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = NULL;
        int rc = posix_memalign(&p, bad[i], 64);
        if (rc != EINVAL) { printf("posix_memalign(align %zu) returned %d, want EINVAL\n", bad[i], rc); ok = 0; }
    }
    size_t good[] = {sizeof(void *), 16, 64, 4096, 65536, (size_t)1 << 20};
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
        void *p = NULL;
        int rc = posix_memalign(&p, good[i], 1000);
        if (rc != 0 || !p || (uintptr_t)p % good[i]) {
            printf("posix_memalign(align %zu) = %d, %p\n", good[i], rc, p); ok = 0; continue;
        }
        memset(p, 1, 1000);
        free(p);
    }
    if (ok) puts("ok");
    return !ok;
}
EOF
    run_mesh ./pma
    assert_success
    assert_output "ok"
}

@test "free(NULL) is a no-op" {
    build fnull.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    void *volatile n = NULL;
    for (int i = 0; i < 1000; i++) free(n);
    char *p = malloc(10);
    if (!p) return 1;
    free(n);
    p[0] = 'x';
    free(p);
    puts("ok");
    return 0;
}
EOF
    run_mesh ./fnull
    assert_success
    assert_output "ok"
}

# double_free_test SIZE: free twice; must abort with one stderr line naming
# the problem and the address
double_free_test() {
    build "df$1.c" <<EOF
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    char *volatile p = malloc($1);
    if (!p) return 2;
    p[0] = 1;
    printf("%p\n", (void *)p);
    fflush(stdout);
    free(p);
    free(p);
    puts("double free was not detected");
    return 0;
}
EOF
    run_mesh "./df$1"
    local addr="${output%%$'\n'*}"
    addr="${addr#0x}"
    addr="${addr,,}"
    [[ -n $addr ]] || fail "program printed no address: '$output'"
    if ((status != 134)); then
        fail "expected abort (exit 134), got exit $status; stdout: $output; stderr: $stderr"
    fi
    if ((${#stderr_lines[@]} != 1)); then
        fail "expected exactly one line on stderr, got ${#stderr_lines[@]}:
$stderr"
    fi
    local line="${stderr_lines[0],,}"
    [[ $line == *"double free"* ]] || fail "stderr line does not say 'double free': ${stderr_lines[0]}"
    [[ $line == *"$addr"* ]] || fail "stderr line does not contain the address 0x$addr: ${stderr_lines[0]}"
}

@test "double free of a small object aborts with 'double free' and the address" {
    double_free_test 64
}

@test "double free of a large (1 MiB) object aborts with 'double free' and the address" {
    double_free_test 1048576
}

@test "free of an interior pointer of a live small object aborts with 'invalid pointer'" {
    build interior.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    char *volatile p = malloc(64);
    if (!p) return 2;
    p[0] = 1;
    free(p + 8);
    puts("interior free was not detected");
    return 0;
}
EOF
    run_mesh ./interior
    if ((status != 134)); then
        fail "expected abort (exit 134), got exit $status; stdout: $output; stderr: $stderr"
    fi
    [[ "${stderr,,}" == *"invalid pointer"* ]] || fail "stderr does not contain 'invalid pointer': $stderr"
}

@test "free of a pointer that was never allocated by us is ignored" {
    build foreign.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static char static_array[256];
int main(void) {
    char stack_var[64];
    char *volatile s = stack_var;
    char *volatile a = static_array;
    char *volatile m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 2;
    s[0] = 1;
    free(s);
    free(a);
    free(a + 16);
    free(m);
    free(m + 4096);
    char *p = malloc(100);   /* still works */
    if (!p) return 3;
    p[99] = 1;
    free(p);
    puts("ok");
    return 0;
}
EOF
    run_mesh ./foreign
    assert_success
    assert_output "ok"
}

@test "malloc and operator new resolve to libmesh" {
    build resolve.c <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
    const char *syms[] = {"malloc", "free", "calloc", "realloc", "posix_memalign", "aligned_alloc",
                          "malloc_usable_size", "_Znwm", "_ZdlPv"};
    for (unsigned i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(RTLD_DEFAULT, syms[i]);
        Dl_info info;
        if (!f || !dladdr(f, &info) || !info.dli_fname) { printf("%s unresolved\n", syms[i]); continue; }
        printf("%s %s\n", syms[i], info.dli_fname);
    }
    return 0;
}
EOF
    run_mesh ./resolve
    assert_success
    local line
    for line in "${lines[@]}"; do
        [[ $line == *" $MESH_LIB" ]] || fail "symbol not served by $MESH_LIB: $line"
    done
    assert_equal "${#lines[@]}" 9
}

@test "C++: new/delete, new[]/delete[], aligned new, nothrow new, containers" {
    build cxx.cc <<'EOF'
#include <cstdint>
#include <cstdio>
#include <map>
#include <new>
#include <string>
#include <vector>

struct alignas(64) Line { char b[64]; };
struct alignas(4096) Page { char b[4096]; };
struct Node { Node *next; std::string s; };

static int fails = 0;
#define CHECK(c) do { if (!(c)) { std::printf("check failed: %s (line %d)\n", #c, __LINE__); fails++; } } while (0)

int main() {
    // plain new/delete and arrays
    for (int i = 0; i < 1000; i++) {
        int *x = new int(i);
        CHECK(*x == i);
        delete x;
        char *arr = new char[i + 1];
        arr[i] = 'a';
        delete[] arr;
    }
    // aligned new (over-aligned types go through the align_val_t operators)
    for (int i = 0; i < 200; i++) {
        Line *l = new Line;
        CHECK(reinterpret_cast<std::uintptr_t>(l) % 64 == 0);
        l->b[63] = 1;
        delete l;
        Line *la = new Line[i + 1];
        CHECK(reinterpret_cast<std::uintptr_t>(la) % 64 == 0);
        la[i].b[0] = 2;
        delete[] la;
    }
    Page *pg = new Page[3];
    CHECK(reinterpret_cast<std::uintptr_t>(pg) % 4096 == 0);
    delete[] pg;
    void *ap = ::operator new(100, std::align_val_t(256));
    CHECK(reinterpret_cast<std::uintptr_t>(ap) % 256 == 0);
    ::operator delete(ap, 100, std::align_val_t(256));
    // nothrow new
    int *nt = new (std::nothrow) int[100];
    CHECK(nt != nullptr);
    delete[] nt;
    Line *ntl = new (std::nothrow) Line;
    CHECK(ntl != nullptr && reinterpret_cast<std::uintptr_t>(ntl) % 64 == 0);
    delete ntl;
    volatile std::size_t huge = SIZE_MAX / 4;
    char *hn = new (std::nothrow) char[huge];
    CHECK(hn == nullptr);
    bool threw = false;
    try {
        char *h = new char[huge];
        delete[] h;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    // containers
    std::map<std::string, std::vector<std::string>> m;
    for (int i = 0; i < 100000; i++) {
        std::string k = "key-" + std::to_string(i % 3000);
        m[k].push_back(std::string(i % 200, char('a' + i % 26)));
        if (i % 7 == 0 && !m[k].empty()) m[k].erase(m[k].begin());
    }
    std::size_t total = 0;
    for (auto &kv : m)
        for (auto &s : kv.second) total += s.size();
    std::vector<std::vector<int>> vv;
    for (int i = 0; i < 2000; i++) { vv.emplace_back(i, i); if (i % 3 == 0) vv.erase(vv.begin()); }
    Node *head = nullptr;
    for (int i = 0; i < 50000; i++) head = new Node{head, std::to_string(i)};
    std::size_t n = 0;
    while (head) { Node *nx = head->next; n += head->s.size(); delete head; head = nx; }
    std::printf("map %zu total %zu vv %zu nodes %zu\n", m.size(), total, vv.size(), n);
    if (fails == 0) std::puts("ok");
    return fails != 0;
}
EOF
    run env LD_PRELOAD= ./cxx
    assert_success
    local reference="$output"
    run_mesh ./cxx
    assert_success
    assert_output "$reference"
    assert_line "ok"
}
