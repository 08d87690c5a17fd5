// log.h - messages to stderr through write(2); never allocates, never uses stdio.
//
// Every line starts with "libmesh: ". mh_fatal() is only for proven heap corruption
// (design principle 1): it prints one line and calls abort().
#ifndef MH_LOG_H
#define MH_LOG_H

#include "common.h"

void mh_log_write(const char *s, size_t n);
void mh_log_write_fd(int fd, const char *s, size_t n);
void mh_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void mh_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2))) MH_COLD;

#endif
