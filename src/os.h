// os.h - the only module that calls mmap, munmap, madvise, memfd_create, ftruncate,
// fallocate, copy_file_range and getrandom.
//
// Layer 1 (platform): system calls only. Calls of functions libmesh itself exports
// (pread, read, fstat) are made as raw system calls: the heap's own bookkeeping must
// never go through a program-facing wrapper.
// Contract: fallible calls return 0 or a positive errno value and never touch errno
// as seen by the program (it is saved and restored). Nothing here allocates or locks.
#ifndef MH_OS_H
#define MH_OS_H

#include <sys/stat.h>
#include <sys/types.h>

#include "common.h"

// How often a mapping that must not fail halfway (a fork's, a mesh being undone) is
// tried: EAGAIN and brief shortages pass. Fault-injection builds set 1, to reach the
// paths after a failure.
#ifndef MH_MAP_TRIES
#define MH_MAP_TRIES 8
#endif

// Creates an anonymous memory file, moved to a high descriptor number with
// close-on-exec (a daemon that closes low fds or dup2()s over them misses it).
int mh_os_memfd_create(int *fd_out);
// ftruncate; EFBIG (no SIGXFSZ) past RLIMIT_FSIZE.
int mh_os_ftruncate(int fd, uint64_t size);
// Identity of an open file, used to verify our memfd is still ours before use.
int mh_os_file_id(int fd, uint64_t *dev, uint64_t *ino);
int mh_os_close(int fd);
// fstat as a raw system call (libmesh exports an fstat of its own).
int mh_os_stat_fd(int fd, struct stat *st);
// Bytes of storage a file really holds (st_blocks * 512): the honest size of a memfd.
int mh_os_file_blocks(int fd, uint64_t *bytes);
// pwrite of all of buf; EFBIG (no SIGXFSZ) when it would end past RLIMIT_FSIZE.
int mh_os_write_at(int fd, const void *buf, size_t len, uint64_t off);
int mh_os_read_at(int fd, void *buf, size_t len, uint64_t off);
// Reads from fd's position until n bytes or the end (raw read system calls, EINTR
// retried); returns the bytes read.
size_t mh_os_read_upto(int fd, void *buf, size_t n);
// Reads up to n-1 bytes of a small file (/proc, /sys) into buf and terminates them;
// the bytes read, or -1.
long mh_os_read_file(const char *path, char *buf, size_t n);
// The data extent [*data, *hole) at or after off (SEEK_DATA/SEEK_HOLE); ENXIO: none.
int mh_os_seek_data(int fd, uint64_t off, uint64_t *data, uint64_t *hole);
// /proc/self/pagemap of this process (opened per use: a fork child is another
// process), or -1.
int mh_os_open_pagemap(void);
// Maps len bytes of fd at off (shared); at addr exactly when addr != NULL. Every heap
// mapping made here carries MADV_NOHUGEPAGE (see os.c).
int mh_os_map_file(void *addr, size_t len, int fd, uint64_t off, void **out);
// Maps len bytes of fd at off copy-on-write (MAP_PRIVATE) at addr exactly: the fork
// scheme's view of a frozen heap file.
int mh_os_map_private(void *addr, size_t len, int fd, uint64_t off);
// Moves the page tables of [addr, addr+len) (one mapping) to a fresh address and
// leaves the range mapped as before but with no pages populated (mremap with
// MREMAP_DONTUNMAP, Linux 5.13+ for file mappings). The moved copy is excluded from
// fork children. *out receives its address. Page tables move by whole tables when
// the alignment allows, so this is far cheaper than unmapping populated pages.
int mh_os_detach_pages(void *addr, size_t len, void **out);
// Private anonymous memory that is not charged until touched.
int mh_os_map_anon(size_t len, void **out);
// Fresh zero private anonymous pages at addr exactly (replacing what was there).
int mh_os_map_anon_at(void *addr, size_t len);
int mh_os_unmap(void *addr, size_t len);
// Punches [off, off+len) of a file (its pages are freed; reads return zeros).
int mh_os_punch(int fd, uint64_t off, uint64_t len);
// Changes the protection of a range: read-only (the mesh write barrier) or read/write.
int mh_os_protect(void *addr, size_t len, bool read_only);
// Gives physical pages back: punches the backing file of a shared mapping
// (MADV_REMOVE), or drops private anonymous pages (MADV_DONTNEED, reads zero after).
int mh_os_release(void *addr, size_t len, bool shared);
void mh_os_no_huge_pages(void *addr, size_t len);
// Maps the range's pages in now (MADV_POPULATE_READ, Linux 5.14+; best effort).
void mh_os_populate(void *addr, size_t len);
// MADV_WIPEONFORK: a fork child sees the range zeroed.
int mh_os_wipe_on_fork(void *addr, size_t len);
void mh_os_dump(void *addr, size_t len, bool include);
// Moves the pages of [from, from+len) (one mapping) to `to` exactly, replacing what
// was there (mremap): a private copy built elsewhere takes a range's place.
int mh_os_move(void *from, size_t len, void *to);
// Reads the data extents of [off, off+len) of fd into dst (holes are skipped: dst
// keeps what it had there, zeros for fresh anonymous memory).
int mh_os_read_data(int fd, uint64_t off, size_t len, void *dst);
// Copies the data extents (skipping holes) of [off, off+len) from one file to another.
int mh_os_copy_data(int from, int to, uint64_t off, uint64_t len);
// Counts the lines of /proc/self/maps (the process's VMAs) into *total, and those that
// start inside one of the n ranges [lo[i], hi[i]) into *inside. Reads in small pieces
// (it may run on a program thread's stack); 0 or an errno value.
int mh_os_count_maps(const uintptr_t *lo, const uintptr_t *hi, unsigned n, size_t *inside, size_t *total);
// Best-effort random bytes; never blocks and never fails (falls back to clocks).
void mh_os_random(void *buf, size_t n);
uint64_t mh_os_now_ns(void);
// Ends the process at once (the exit_group system call: no atexit handlers, no stdio).
_Noreturn void mh_os_exit(int status);
int mh_os_page_size(void);

#endif
