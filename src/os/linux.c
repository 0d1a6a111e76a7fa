/* The platform layer: clocks, futexes, condition variables on the monotonic
 * clock, thread start. Linux only. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"

struct fm__sys fm__sys = {
    .malloc = malloc,
    .calloc = calloc,
    .aligned_alloc = aligned_alloc,
    .free = free,
    .mmap = mmap,
    .munmap = munmap,
    .mprotect = mprotect,
    .madvise = madvise,
    .pthread_create = pthread_create,
    .clock_gettime = clock_gettime,
};

_Atomic int64_t fm__clock_offset;

void fm__die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("formica: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static int64_t fm__clock_ns(clockid_t id)
{
    struct timespec ts;
    fm__sys.clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * FM__NSEC_PER_SEC + ts.tv_nsec +
           atomic_load_explicit(&fm__clock_offset, memory_order_relaxed);
}

int64_t fm__now_ns(void)
{
    return fm__clock_ns(CLOCK_MONOTONIC);
}

int64_t fm__now_coarse_ns(void)
{
    return fm__clock_ns(CLOCK_MONOTONIC_COARSE);
}

int64_t fm__deadline_after(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return INT64_MAX;
    int64_t now = fm__now_ns();
    return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

struct timespec fm__timespec_of(int64_t deadline_ns)
{
    deadline_ns -= atomic_load_explicit(&fm__clock_offset, memory_order_relaxed);
    struct timespec ts = {(time_t)(deadline_ns / FM__NSEC_PER_SEC),
                          (long)(deadline_ns % FM__NSEC_PER_SEC)};
    return ts;
}

int fm__cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc)
        return -rc;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return -rc;
}

int fm__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX)
        return pthread_cond_wait(c, m);
    struct timespec ts = fm__timespec_of(deadline_ns);
    return pthread_cond_timedwait(c, m, &ts);
}

void fm__futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    /* EAGAIN (value changed) and EINTR both mean: re-check. */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

int fm__futex_wait_until(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        fm__futex_wait(word, expected);
        return 0;
    }
    /* WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (plain WAIT a
     * relative one). */
    struct timespec ts = fm__timespec_of(deadline_ns);
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    return rc < 0 && errno == ETIMEDOUT ? ETIMEDOUT : 0;
}

void fm__futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

int fm__ncpu(void)
{
    static _Atomic int cached; /* 0 until first read; any racing reader computes the same */
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 && v < INT_MAX ? (int)v : 1;
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}

/* Starts fn(arg) with every signal blocked; stack_lo/stack_size: a stack the
 * caller owns, or NULL and a size for one from glibc (0 = its default). */
static int fm__thread_create(pthread_t *out, void *stack_lo, size_t stack_size,
                             void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    if (stack_lo)
        rc = pthread_attr_setstack(&attr, stack_lo, stack_size);
    else if (stack_size)
        rc = pthread_attr_setstacksize(&attr, stack_size < (size_t)PTHREAD_STACK_MIN
                                                  ? (size_t)PTHREAD_STACK_MIN
                                                  : stack_size);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits this mask */
    if (rc == 0) {
        fm__threads_started(1); /* fm_threads_live: counted before it can be joined */
        rc = fm__sys.pthread_create(out, &attr, fn, arg);
        if (rc)
            fm__threads_joined(1);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -rc;
}

int fm__thread_start(pthread_t *out, size_t stack_size, void *(*fn)(void *), void *arg)
{
    return fm__thread_create(out, NULL, stack_size, fn, arg);
}

size_t fm__page_size(void)
{
    static _Atomic size_t cached; /* any racing reader computes the same */
    size_t n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n == 0) {
        long v = sysconf(_SC_PAGESIZE);
        n = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}

static size_t fm__round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* ThreadSanitizer runs its own code on a thread's stack and refuses a
 * caller-provided stack under about 900 KiB. */
#if defined(__SANITIZE_THREAD__)
#define FM__STACK_MIN ((size_t)2 << 20)
#else
#define FM__STACK_MIN ((size_t)PTHREAD_STACK_MIN)
#endif

int fm__thread_map(struct fm__thread_map *m, size_t header_size, size_t stack_size)
{
    size_t page = fm__page_size();
    if (stack_size < FM__STACK_MIN)
        stack_size = FM__STACK_MIN;
    if (stack_size > SIZE_MAX / 2 || header_size > SIZE_MAX / 4)
        return -ENOMEM;
    m->header_size = fm__round_up(header_size, page);
    m->stack_size = fm__round_up(stack_size, page);
    m->size = m->header_size + page + m->stack_size;
    m->base = fm__sys.mmap(NULL, m->size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m->base == MAP_FAILED)
        return -ENOMEM;
    /* The guard page sits between the header and the stack: an overflowing
     * stack faults there instead of overwriting the header. */
    if (fm__sys.mprotect((char *)m->base + m->header_size, page, PROT_NONE) != 0) {
        fm__sys.munmap(m->base, m->size);
        return -ENOMEM;
    }
    return 0;
}

int fm__thread_start_mapped(pthread_t *out, const struct fm__thread_map *m,
                            void *(*fn)(void *), void *arg)
{
    void *stack_lo = (char *)m->base + m->header_size + fm__page_size();
    return fm__thread_create(out, stack_lo, m->stack_size, fn, arg);
}

void fm__thread_unmap(const struct fm__thread_map *m)
{
    fm__sys.munmap(m->base, m->size);
}

/* ---- memory for the buffer pool ---- */

void *fm__os_map(size_t size)
{
    void *p = fm__sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                           0);
    return p == MAP_FAILED ? NULL : p;
}

/* Maps size + align and unmaps the unaligned head and the tail. */
void *fm__os_map_aligned(size_t size, size_t align)
{
    if (size > SIZE_MAX - align)
        return NULL;
    char *raw = fm__os_map(size + align);
    if (!raw)
        return NULL;
    char *p = (char *)fm__round_up((uintptr_t)raw, align);
    if (p > raw)
        fm__sys.munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)(raw + size + align - (p + size));
    if (tail)
        fm__sys.munmap(p + size, tail);
    return p;
}

void fm__os_unmap(void *p, size_t size)
{
    /* munmap can fail with ENOMEM when splitting a mapping would pass
     * vm.max_map_count; the pages still go back, only the addresses stay. */
    if (fm__sys.munmap(p, size) != 0)
        fm__sys.madvise(p, size, MADV_DONTNEED);
}
