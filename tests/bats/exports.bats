#!/usr/bin/env bats
# The dynamic symbol table of libmesh exports exactly the public API, and the
# SONAME is libmesh.so.1.
#
#   MESH_LIB=/path/to/libmesh.so.1 bats tests/bats/exports.bats

load helper

setup() { mesh_setup; }

# One symbol per line; keep sorted by topic, the test sorts itself. The last group is
# interposed for meshing's write barrier (EFAULT retries, SIGSEGV/SIGBUS chaining).
EXPECTED_SYMBOLS='
malloc
free
calloc
realloc
reallocarray
memalign
posix_memalign
aligned_alloc
valloc
pvalloc
malloc_usable_size
free_sized
free_aligned_sized
malloc_trim
cfree
mallinfo
mallinfo2
malloc_stats
mallopt
mesh_mallctl
mesh_usable_size
mesh_in_bounds
_Znwm
_Znam
_ZnwmRKSt9nothrow_t
_ZnamRKSt9nothrow_t
_ZnwmSt11align_val_t
_ZnamSt11align_val_t
_ZnwmSt11align_val_tRKSt9nothrow_t
_ZnamSt11align_val_tRKSt9nothrow_t
_ZdlPv
_ZdaPv
_ZdlPvm
_ZdaPvm
_ZdlPvRKSt9nothrow_t
_ZdaPvRKSt9nothrow_t
_ZdlPvSt11align_val_t
_ZdaPvSt11align_val_t
_ZdlPvmSt11align_val_t
_ZdaPvmSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t
_ZdaPvSt11align_val_tRKSt9nothrow_t
read
pread
pread64
readv
preadv
preadv64
recv
recvfrom
recvmsg
recvmmsg
accept
accept4
wait
waitpid
wait3
wait4
waitid
sigwaitinfo
sigtimedwait
select
pselect
poll
ppoll
epoll_wait
epoll_pwait
getrandom
getentropy
stat
lstat
fstat
fstatat
stat64
lstat64
fstat64
fstatat64
statx
readlink
readlinkat
getsockname
getpeername
getsockopt
pipe
pipe2
socketpair
sched_getaffinity
getdents64
getrusage
getcwd
sigaltstack
sigaction
signal
bsd_signal
sysv_signal
sigset
sigprocmask
pthread_sigmask
pthread_attr_setsigmask_np
'

# defined dynamic symbols, without version suffixes and without the
# version-definition symbols (type A, e.g. LIBMESH_1)
defined_symbols() {
    nm -D --defined-only "$MESH_LIB" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u
}

@test "nm -D --defined-only lists exactly the public API" {
    run nm -D --defined-only "$MESH_LIB"
    assert_success
    echo "$EXPECTED_SYMBOLS" | sed '/^$/d' | sort -u >expected.txt
    defined_symbols >actual.txt
    run diff expected.txt actual.txt
    if ((status != 0)); then
        {
            echo "exported symbols of $MESH_LIB differ from the expected list"
            echo "missing (expected, not exported):"
            comm -23 expected.txt actual.txt | sed 's/^/    /'
            echo "unexpected (exported, not in the list):"
            comm -13 expected.txt actual.txt | sed 's/^/    /'
        } | fail
    fi
}

@test "every exported symbol is a function (type T or W)" {
    run bash -c "nm -D --defined-only '$MESH_LIB' | awk '\$2 != \"A\" && \$2 != \"T\" && \$2 != \"W\" && \$2 != \"i\"'"
    assert_success
    assert_output ''
}

@test "SONAME is libmesh.so.1" {
    run readelf -d "$MESH_LIB"
    assert_success
    assert_line --regexp '\(SONAME\)[[:space:]]+Library soname: \[libmesh\.so\.1\]$'
}
