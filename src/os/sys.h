/* The C library and system calls the library makes that can fail, and the
 * clock, called through one table so that tests can make them fail and move
 * time (tests/fault_util.h). Internal: hidden from the shared library; tests
 * that link formica_static reach it through this header.
 *
 * The defaults are the libc functions. The table is written only while no
 * thread of the library runs (a test's setup, before its first formica call),
 * so every read is a plain load: a call through it costs what a call through
 * the PLT costs. Every call site in src/ uses it; realloc has none, so the
 * table has no entry for it.
 */
#ifndef FM_OS_SYS_H
#define FM_OS_SYS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct fm__sys {
    void *(*malloc)(size_t size);
    void *(*calloc)(size_t n, size_t size);
    void *(*aligned_alloc)(size_t align, size_t size);
    void (*free)(void *p);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
    int (*munmap)(void *addr, size_t len);
    int (*mprotect)(void *addr, size_t len, int prot);
    int (*madvise)(void *addr, size_t len, int advice);
    int (*pthread_create)(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
    int (*clock_gettime)(clockid_t id, struct timespec *ts); /* MONOTONIC and _COARSE */
};

extern struct fm__sys fm__sys;

/* Added to every reading of the library's monotonic clock (fm__now_ns,
 * fm__now_coarse_ns) and taken off again where a deadline becomes a timed
 * wait (fm__timespec_of), so that tests can age workers, cached objects and
 * buffers without waiting. 0 unless a test moves it; it only grows. Relaxed:
 * a reader that sees the old value only acts a little later. */
extern _Atomic int64_t fm__clock_offset;

/* Moves the library's clock forward by ns (>= 0) and wakes the maintenance
 * thread, so that it looks at its deadlines by the new time at once (maint.c). */
void fm__clock_advance(int64_t ns);

#endif /* FM_OS_SYS_H */
