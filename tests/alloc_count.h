/* Counts heap allocations: this header defines malloc, calloc, realloc,
 * free and the aligned allocators; they forward to glibc's __libc_* entry
 * points and count every call in an atomic counter. Definitions in the
 * executable take precedence over libc's for every caller, the library and
 * libc included. Include it in exactly one file of a test program, and build
 * that program only without sanitizers (they bring allocators of their own).
 *
 * n_allocs counts malloc, calloc, realloc and the aligned allocators;
 * n_frees counts free of a non-NULL pointer.
 */
#ifndef FM_ALLOC_COUNT_H
#define FM_ALLOC_COUNT_H

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t align, size_t size);

static atomic_long n_allocs;
static atomic_long n_frees;

static inline void count_alloc(void) { atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed); }

void *malloc(size_t size)
{
    count_alloc();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    count_alloc();
    return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
    count_alloc();
    return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
    if (ptr)
        atomic_fetch_add_explicit(&n_frees, 1, memory_order_relaxed);
    __libc_free(ptr);
}

void *memalign(size_t align, size_t size)
{
    count_alloc();
    return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    count_alloc();
    return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    count_alloc();
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size)
{
    count_alloc();
    return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

#endif /* FM_ALLOC_COUNT_H */
