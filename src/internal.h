/* formica internals: shared by every module, never installed.
 *
 * Naming: fm__module_verb for internal functions (hidden by -fvisibility=hidden),
 * FM__ for internal macros.
 */
#ifndef FM_INTERNAL_H
#define FM_INTERNAL_H

#include <formica.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "os/sys.h" /* malloc, mmap, pthread_create, the clock: through fm__sys */

/* Two cache lines: adjacent-line prefetch on x86 pulls lines in pairs, so hot
 * shared fields written by different threads sit this far apart. */
#define FM__CACHELINE 128
#define FM__ALIGNED __attribute__((aligned(FM__CACHELINE)))

#define FM__LIKELY(x) __builtin_expect(!!(x), 1)
#define FM__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Debug builds check internal invariants and misuse and abort with a message;
 * release builds compile the checks out. */
#ifdef FM_DEBUG
#define FM__ASSERT(cond)                                                                 \
    do {                                                                                 \
        if (!(cond))                                                                     \
            fm__die("%s:%d: assertion failed: %s", __FILE__, __LINE__, #cond);          \
    } while (0)
#else
#define FM__ASSERT(cond) ((void)0)
#endif

/* handles.c: in debug builds a set of live handles, so that destroying one
 * that is not live (a double destroy) aborts with a message. kind is a string
 * literal naming the type; the same pointer must be passed to add and remove.
 * Add returns 0, or -ENOMEM (the handle is not tracked: its constructor fails). */
#ifdef FM_DEBUG
int fm__handle_add(const void *h, const char *kind);
void fm__handle_remove(const void *h, const char *kind, const char *call);
#define FM__HANDLE_ADD(h, kind) fm__handle_add((h), (kind))
#define FM__HANDLE_REMOVE(h, kind, call) fm__handle_remove((h), (kind), (call))
#else
#define FM__HANDLE_ADD(h, kind) 0
#define FM__HANDLE_REMOVE(h, kind, call) ((void)0)
#endif

/* Prints "formica: <message>" to stderr and aborts. For misuse that cannot be
 * reported through a return value (for example destroy from inside a task). */
__attribute__((noreturn, format(printf, 1, 2))) void fm__die(const char *fmt, ...);

/* ---- os/linux.c: the platform layer ---- */

#define FM__NSEC_PER_SEC INT64_C(1000000000)

int64_t fm__now_ns(void);        /* CLOCK_MONOTONIC */
int64_t fm__now_coarse_ns(void); /* CLOCK_MONOTONIC_COARSE: a few ns, ~4 ms resolution */

/* deadline in CLOCK_MONOTONIC nanoseconds for a relative timeout; INT64_MAX for
 * a negative (forever) timeout; saturates instead of overflowing. */
int64_t fm__deadline_after(int64_t timeout_ns);

/* Absolute CLOCK_MONOTONIC timespec of a deadline, for pthread_cond_timedwait on
 * a condition variable created by fm__cond_init. */
struct timespec fm__timespec_of(int64_t deadline_ns);
int fm__cond_init(pthread_cond_t *c); /* a condvar that times out on CLOCK_MONOTONIC */

/* A default mutex and an fm__cond_init condvar; 0, or a negative errno with
 * neither left initialised. */
static inline int fm__mutex_cond_init(pthread_mutex_t *m, pthread_cond_t *c)
{
    int rc = -pthread_mutex_init(m, NULL);
    if (rc == 0 && (rc = fm__cond_init(c)) != 0)
        pthread_mutex_destroy(m);
    return rc;
}

/* Waits on cond until signalled or the deadline (INT64_MAX: no deadline).
 * Returns 0 or ETIMEDOUT. Spurious wakeups are possible, as with the pthread call. */
int fm__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ns);

/* Futex wait/wake on a 32-bit word, process-private. wait returns when *word
 * != expected, when woken, or spuriously; callers re-check in a loop. */
void fm__futex_wait(_Atomic uint32_t *word, uint32_t expected);
void fm__futex_wake(_Atomic uint32_t *word, int count);
/* As fm__futex_wait, but gives up at deadline_ns (CLOCK_MONOTONIC; INT64_MAX:
 * never). ETIMEDOUT once the deadline passed, else 0. */
int fm__futex_wait_until(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns);

int fm__ncpu(void); /* online CPUs, at least 1; read once */

/* Hint to the CPU that this is a spin-wait loop. */
static inline void fm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* diag.c: the count behind fm_threads_live. started: before pthread_create
 * (undone with joined if it fails); joined: after pthread_join. */
void fm__threads_started(int n);
void fm__threads_joined(int n);
void fm__threads_after_fork(void); /* the count is 0 in a fork child */

/* Starts a detached-from-signals thread: all signals blocked in it, so a
 * program's asynchronous signals go to its own threads. stack_size 0 = default. */
int fm__thread_start(pthread_t *out, size_t stack_size, void *(*fn)(void *), void *arg);

/* A thread's memory in one mapping of its own: [header][guard page][stack].
 * The header holds the thread's bookkeeping, so starting a thread allocates
 * nothing from malloc; after the thread is joined, fm__thread_unmap gives all
 * of it back to the OS at once (glibc would keep its stack, with every page a
 * task ever touched, in a cache of its own). */
struct fm__thread_map {
    void *base; /* the header, page-aligned */
    size_t size, header_size, stack_size;
};
int fm__thread_map(struct fm__thread_map *m, size_t header_size, size_t stack_size); /* 0, -ENOMEM */
int fm__thread_start_mapped(pthread_t *out, const struct fm__thread_map *m,
                            void *(*fn)(void *), void *arg);
void fm__thread_unmap(const struct fm__thread_map *m);

/* Anonymous private memory, zeroed, for the buffer pool. map and map_aligned
 * return NULL when the kernel refuses; sizes are multiples of the page size,
 * align a power of two multiple of it. unmap gives the memory back at once
 * (RSS drops as it returns). */
size_t fm__page_size(void);
void *fm__os_map(size_t size);
void *fm__os_map_aligned(size_t size, size_t align);
void fm__os_unmap(void *p, size_t size);

/* ---- maint.c: the library's one maintenance thread ----
 *
 * Clients (pools with expiry, later object pools and buffer pools) register a
 * tick function and ask for a tick at a deadline. The thread starts on the
 * first request and sleeps until the earliest requested deadline; with no
 * request pending it sleeps without a timeout, so an idle process pays no CPU.
 *
 * | call                  | may run concurrently with          | lock it takes      |
 * |-----------------------|------------------------------------|--------------------|
 * | fm__maint_register    | everything                         | maint lock         |
 * | fm__maint_request     | everything, also from inside tick  | maint lock         |
 * | fm__maint_start       | everything, also from inside tick  | maint lock         |
 * | fm__maint_unregister  | everything but a tick of itself     | maint lock; waits  |
 * |                       | (never call it from its own tick)  | out its running tick|
 *
 * Lock order: a client's own lock may be held while calling fm__maint_request
 * (client lock -> maint lock); tick is called with no maint lock held.
 */
typedef struct fm__maint_client fm__maint_client;
struct fm__maint_client {
    /* Called on the maintenance thread at or after the requested deadline;
     * returns the next deadline wanted, or INT64_MAX for none. */
    int64_t (*tick)(fm__maint_client *c, int64_t now_ns);
    /* Below: maint lock. */
    int64_t deadline;            /* INT64_MAX: no tick wanted */
    fm__maint_client *next, *prev;
    int registered;
};

void fm__maint_register(fm__maint_client *c);
void fm__maint_unregister(fm__maint_client *c);
/* Asks for a tick no later than deadline_ns. Cheap when an earlier or equal
 * deadline is already pending. Returns 0 or a negative errno if the thread
 * could not be started (the request stays pending and is retried on the next
 * request). */
int fm__maint_request(fm__maint_client *c, int64_t deadline_ns);
/* A client's one-shot timer: *armed is 1 from a successful arm until the
 * client's tick stores 0. Asks for a tick after delay_ns unless armed is set
 * already (one load when it is), so that a burst of callers makes one
 * request per disarm. seq_cst, both the load and the exchange: callers pair
 * them with a seq_cst write of their own (the Dekker handshakes of objpool.c
 * and bufpool_decay.c, whose ticks clear armed and then look again). When
 * the thread cannot be started armed goes back to 0, so a later call retries. */
void fm__maint_arm(fm__maint_client *c, _Atomic int *armed, int64_t delay_ns);
/* Starts the thread now, from the calling thread, if it is not running yet;
 * 0 or a negative errno. For a caller that does not want the first request
 * to start it from another thread. */
int fm__maint_start(void);

/* ---- fork.c: fork() support ----
 *
 * fm__atfork_init registers, once, the library's handlers, which call each
 * module's below in the library's lock order (the table in fork.c). Every
 * module calls it before it first takes a lock that fork must not inherit
 * held. Prepare takes the module's locks; parent releases them; child makes
 * them anew and forgets the threads that do not exist in the child. */
void fm__atfork_init(void);
void fm__pool_atfork_prepare(void);
void fm__pool_atfork_parent(void);
void fm__pool_atfork_child(void);
void fm__objpool_atfork_prepare_outer(void);
void fm__objpool_atfork_prepare_inner(void);
void fm__objpool_atfork_parent_inner(void);
void fm__objpool_atfork_parent_outer(void);
void fm__objpool_atfork_child_inner(void);
void fm__objpool_atfork_child_outer(void);
void fm__tc_atfork_prepare(void);
void fm__tc_atfork_parent(void);
void fm__tc_atfork_child(void);
void fm__bufpool_atfork_prepare(void);
void fm__bufpool_atfork_parent(void);
void fm__bufpool_atfork_child(void);
void fm__maint_atfork_prepare(void);
void fm__maint_atfork_parent(void);
void fm__maint_atfork_child(void);

#endif /* FM_INTERNAL_H */
