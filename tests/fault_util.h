/* Fault injection for tests: hooks in the library's table of system calls
 * (src/os/sys.h) that count the library's calls, make a chosen one fail with
 * the errno a real failure has, and account for what the library holds.
 *
 * Kinds of calls:
 *   FAULT_ALLOC   malloc, calloc, aligned_alloc      fail: NULL, errno ENOMEM
 *   FAULT_MAP     mmap, mprotect                     fail: MAP_FAILED / -1, ENOMEM
 *   FAULT_THREAD  pthread_create                     fail: EAGAIN
 *   FAULT_UNMAP   munmap                             fail: -1, ENOMEM (the range
 *                 stays mapped; fault_release_kept unmaps it for the test)
 *   FAULT_ANY     the first three together (the Nth of any of them)
 *
 * fault_arm(kind, n, sticky) makes the nth call of that kind fail, and with
 * sticky every later one too, until fault_stop (or fault_disarm). Counters count from fault_arm.
 * The state lives in a shared mapping (fault_setup), so that a parent can read
 * what its child injected. Hooks are installed once by fault_setup, before the
 * library is first used (the table is read without synchronisation).
 *
 * Accounting: live_allocs counts the library's heap blocks not yet freed,
 * live_map the bytes it mapped and has not unmapped; both must be back to 0
 * once a test has destroyed everything and joined its threads.
 */
#ifndef FM_FAULT_UTIL_H
#define FM_FAULT_UTIL_H

#include "fm_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "../src/os/sys.h"

enum fault_kind { FAULT_ALLOC, FAULT_MAP, FAULT_THREAD, FAULT_UNMAP, FAULT_ANY, FAULT_KINDS };

static const char *const fault_kind_name[FAULT_KINDS] = {"alloc", "map", "thread", "unmap",
                                                         "any"};

#define FAULT_KEPT_MAX 64

struct fault_state {
    atomic_long calls[FAULT_KINDS];    /* since fault_arm; [FAULT_ANY]: the first three */
    atomic_long injected[FAULT_KINDS]; /* failures made, by kind of the call */
    atomic_long at;                    /* 0: no fault armed */
    atomic_int kind, sticky;
    atomic_long live_allocs, live_map, madvised;
    pthread_mutex_t kept_lock; /* process-shared: ranges a failed munmap left */
    int nkept;
    struct {
        void *p;
        size_t len;
    } kept[FAULT_KEPT_MAX];
};

static struct fault_state *fault;

/* 1 if this call (of kind k) is to fail. */
static inline int fault_hit(enum fault_kind k)
{
    long n = atomic_fetch_add(&fault->calls[k], 1) + 1;
    long any = k != FAULT_UNMAP ? atomic_fetch_add(&fault->calls[FAULT_ANY], 1) + 1 : 0;
    long at = atomic_load(&fault->at);
    if (!at)
        return 0;
    int fk = atomic_load(&fault->kind);
    long nth = fk == FAULT_ANY ? any : fk == (int)k ? n : 0;
    if (!nth || !(nth == at || (nth > at && atomic_load(&fault->sticky))))
        return 0;
    atomic_fetch_add(&fault->injected[k], 1);
    return 1;
}

static void *fault_counted(void *p)
{
    if (p)
        atomic_fetch_add(&fault->live_allocs, 1);
    return p;
}

static void *fault_malloc(size_t size)
{
    if (fault_hit(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return fault_counted(malloc(size));
}

static void *fault_calloc(size_t n, size_t size)
{
    if (fault_hit(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return fault_counted(calloc(n, size));
}

static void *fault_aligned_alloc(size_t align, size_t size)
{
    if (fault_hit(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return fault_counted(aligned_alloc(align, size));
}

static void fault_free(void *p)
{
    if (p)
        atomic_fetch_sub(&fault->live_allocs, 1);
    free(p);
}

static void *fault_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (fault_hit(FAULT_MAP)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        atomic_fetch_add(&fault->live_map, (long)len);
    return p;
}

static int fault_mprotect(void *addr, size_t len, int prot)
{
    if (fault_hit(FAULT_MAP)) {
        errno = ENOMEM;
        return -1;
    }
    return mprotect(addr, len, prot);
}

static int fault_munmap(void *addr, size_t len)
{
    if (fault_hit(FAULT_UNMAP)) {
        pthread_mutex_lock(&fault->kept_lock);
        if (fault->nkept == FAULT_KEPT_MAX)
            FM_FAIL("more than %d munmap failures kept", FAULT_KEPT_MAX);
        fault->kept[fault->nkept].p = addr;
        fault->kept[fault->nkept++].len = len;
        pthread_mutex_unlock(&fault->kept_lock);
        errno = ENOMEM;
        return -1;
    }
    int rc = munmap(addr, len);
    if (rc == 0)
        atomic_fetch_sub(&fault->live_map, (long)len);
    return rc;
}

static int fault_madvise(void *addr, size_t len, int advice)
{
    atomic_fetch_add(&fault->madvised, (long)len);
    return madvise(addr, len, advice);
}

static int fault_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                void *arg)
{
    if (fault_hit(FAULT_THREAD))
        return EAGAIN;
    return pthread_create(t, attr, fn, arg);
}

/* Maps the shared state and installs the hooks. Call once, before any
 * formica call, in the process whose children will inject faults. */
static inline void fault_setup(void)
{
    if (fault)
        return;
    fault = mmap(NULL, sizeof *fault, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (fault == MAP_FAILED)
        FM_FAIL("mmap: %s", strerror(errno));
    memset(fault, 0, sizeof *fault);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&fault->kept_lock, &a);
    pthread_mutexattr_destroy(&a);
    fm__sys.malloc = fault_malloc;
    fm__sys.calloc = fault_calloc;
    fm__sys.aligned_alloc = fault_aligned_alloc;
    fm__sys.free = fault_free;
    fm__sys.mmap = fault_mmap;
    fm__sys.mprotect = fault_mprotect;
    fm__sys.munmap = fault_munmap;
    fm__sys.madvise = fault_madvise;
    fm__sys.pthread_create = fault_pthread_create;
}

/* Clears every counter and arms the fault: the nth call of kind fails (and
 * every later one while sticky). n = 0: no fault, only counting. */
static inline void fault_arm(enum fault_kind kind, long n, int sticky)
{
    for (int k = 0; k < FAULT_KINDS; k++) {
        atomic_store(&fault->calls[k], 0);
        atomic_store(&fault->injected[k], 0);
    }
    atomic_store(&fault->live_allocs, 0);
    atomic_store(&fault->live_map, 0);
    atomic_store(&fault->madvised, 0);
    fault->nkept = 0;
    atomic_store(&fault->kind, (int)kind);
    atomic_store(&fault->sticky, sticky);
    atomic_store(&fault->at, n);
}

/* The fault stops: every later call succeeds. An unmap fault goes on: a
 * failed munmap reaches no caller (the library falls back to madvise or
 * keeps the range), so a scenario's whole run is exposed to it. */
static inline void fault_stop(void)
{
    if (atomic_load(&fault->kind) != FAULT_UNMAP)
        atomic_store(&fault->at, 0);
}

/* Every fault stops, unmap faults too. */
static inline void fault_disarm(void)
{
    atomic_store(&fault->at, 0);
}

static inline long fault_injected(void)
{
    long n = 0;
    for (int k = 0; k < FAULT_ANY; k++)
        n += atomic_load(&fault->injected[k]);
    return n;
}

/* Unmaps what failed munmaps left mapped; returns those bytes. */
static inline long fault_release_kept(void)
{
    long bytes = 0;
    pthread_mutex_lock(&fault->kept_lock);
    for (int i = 0; i < fault->nkept; i++) {
        munmap(fault->kept[i].p, fault->kept[i].len);
        bytes += (long)fault->kept[i].len;
    }
    fault->nkept = 0;
    pthread_mutex_unlock(&fault->kept_lock);
    atomic_fetch_sub(&fault->live_map, bytes);
    return bytes;
}

#endif /* FM_FAULT_UTIL_H */
