/* formica: the worker pool (fm_pool).
 *
 * Runs many small tasks on a bounded set of threads that grows on demand and
 * shrinks by itself: workers idle for longer than opts.expiry_ns exit.
 *
 * Two modes:
 *   hand-off (queue_capacity == 0): a submit hands the task straight to an idle
 *     worker, or starts a new worker while running < capacity, or else waits
 *     (blocking) or fails with -EAGAIN (non-blocking, or max_blocking reached).
 *   queue (queue_capacity > 0): tasks go through a bounded lock-free FIFO that the
 *     workers drain; a submit waits (or fails) only when the FIFO is full. The
 *     fast path for tiny tasks. The FIFO holds queue_capacity rounded up to a
 *     power of two (fm_pool_stats reports the real figure).
 *
 * Every call below may run concurrently with every other call on the same pool,
 * except fm_pool_destroy, which must be the last call on it (see docs/pool.md for
 * the full table). A task that was accepted (the submit returned 0) always runs,
 * also when the pool is released while the task is still queued.
 */
#ifndef FORMICA_POOL_H
#define FORMICA_POOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_pool fm_pool;
struct fm_task_info; /* formica/diag.h */

typedef struct fm_pool_opts {
    int64_t expiry_ns;     /* idle worker lifetime; 0 = 1 s; <0 = workers never expire */
    int prealloc;          /* start all workers at creation (finite capacity only) */
    int nonblocking;       /* submit never waits: -EAGAIN when saturated */
    int max_blocking;      /* most submitters blocked at once; 0 = no limit; beyond: -EAGAIN */
    size_t queue_capacity; /* 0 = hand-off mode (a task needs a free worker); >0 = bounded FIFO */
    size_t stack_size;     /* worker stack; 0 = library default (256 KiB) */
    const char *name;      /* thread-name prefix (names are "<name>-<n>"); NULL = "fm" */
    fm_task_fn fn;         /* bound function used by fm_pool_invoke */
    void (*on_worker_start)(void *ctx); /* runs first in every new worker thread */
    void (*on_worker_exit)(void *ctx);  /* runs last in every worker thread */
    void *ctx;                          /* passed to both hooks and on_slow_task */
    /* Slow-task watchdog (formica/diag.h): on_slow_task(info, ctx) runs on the
     * maintenance thread once for each task that has run longer than
     * slow_task_ns; NULL = a line on stderr. slow_task_ns <= 0: off. */
    int64_t slow_task_ns;
    void (*on_slow_task)(const struct fm_task_info *task, void *ctx);
} fm_pool_opts;

/* Counters to graph; a snapshot, each field read atomically but not all at
 * the same instant. */
struct fm_pool_stats {
    int capacity;            /* -1 if unlimited */
    int running;             /* live workers, busy or idle */
    int idle;                /* live workers waiting for a task */
    int waiting;             /* submitters blocked right now */
    size_t queued;           /* tasks in the FIFO (queue mode) */
    size_t queue_capacity;   /* real FIFO size; 0 in hand-off mode */
    uint64_t submitted;      /* tasks accepted */
    uint64_t completed;      /* tasks that returned */
    uint64_t rejected;       /* submits that failed: -EAGAIN, -ETIMEDOUT, -ESHUTDOWN, -EDEADLK */
    uint64_t threads_created;
    uint64_t threads_exited;
};

/* Creates a pool. capacity > 0, or FM_UNLIMITED. opts may be NULL; a zeroed
 * opts means all defaults. Returns 0, -EINVAL (capacity, prealloc with
 * FM_UNLIMITED, NULL out), -ENOMEM, or -EAGAIN (prealloc could not start its
 * threads). */
FM_API int fm_pool_new(fm_pool **out, int capacity, const fm_pool_opts *opts);

/* Runs fn(arg) on a worker. Blocks while the pool is saturated unless the pool
 * is non-blocking. Returns 0, -EINVAL (NULL p or fn), -ESHUTDOWN, -EAGAIN,
 * -EDEADLK (it would have to wait and the caller is a task of this pool), or
 * -ENOMEM. Lock-free in queue mode while the FIFO has room. */
FM_API int fm_pool_submit(fm_pool *p, fm_task_fn fn, void *arg);

/* As fm_pool_submit, waiting at most timeout_ns (FM_FOREVER: no bound; 0: do
 * not wait, -EAGAIN when saturated). -ETIMEDOUT when the time ran out. */
FM_API int fm_pool_submit_timeout(fm_pool *p, fm_task_fn fn, void *arg, int64_t timeout_ns);

/* Submits opts.fn(arg); -EINVAL if the pool has no bound function. */
FM_API int fm_pool_invoke(fm_pool *p, void *arg);

FM_API int fm_pool_running(const fm_pool *p);   /* live workers, busy or idle; -EINVAL on NULL */
FM_API int fm_pool_available(const fm_pool *p); /* cap - running (>= 0); -1 if unlimited */
FM_API int fm_pool_waiting(const fm_pool *p);   /* submitters blocked right now */
FM_API int fm_pool_cap(const fm_pool *p);       /* -1 if unlimited */

/* Changes the capacity of a live pool. Growing wakes blocked submitters at once;
 * shrinking lets idle surplus workers exit now and busy ones when they finish.
 * running never exceeds the capacity through new workers. -EINVAL: capacity <= 0,
 * or the pool is unlimited or preallocated. */
FM_API int fm_pool_tune(fm_pool *p, int capacity);

/* Waits until no task is queued or running. -ETIMEDOUT, or -EDEADLK when called
 * from one of the pool's own tasks. */
FM_API int fm_pool_wait(fm_pool *p, int64_t timeout_ns);

/* Closes the pool: later submits get -ESHUTDOWN, blocked submitters are woken
 * with -ESHUTDOWN, queued tasks still run, idle workers exit, busy workers exit
 * after their task. Idempotent; does not wait. */
FM_API int fm_pool_release(fm_pool *p);

/* fm_pool_release, then waits until every worker thread has exited and been
 * joined. -ETIMEDOUT, or -EDEADLK when called from one of the pool's tasks. */
FM_API int fm_pool_release_timeout(fm_pool *p, int64_t timeout_ns);

/* Reopens a released pool (a no-op on an open one). Workers start on demand,
 * or all at once for a preallocated pool. */
FM_API int fm_pool_reboot(fm_pool *p);

FM_API int fm_pool_is_closed(const fm_pool *p); /* 1 released, 0 open, -EINVAL on NULL */

/* Releases the pool, runs every queued task, joins every worker thread and
 * frees the pool: once it returns no thread of the pool exists. Must be the
 * last call on p; calling it from one of the pool's own tasks aborts with a
 * message. NULL is a no-op. */
FM_API void fm_pool_destroy(fm_pool *p);

/* Fills *out with a snapshot of the pool's counters. 0 or -EINVAL. */
FM_API int fm_pool_stats(const fm_pool *p, struct fm_pool_stats *out);

/* The default pool: unlimited capacity, all defaults, created on first use and
 * never destroyed. fm_submit(fn, arg) is fm_pool_submit(fm_default_pool(), fn, arg).
 * fm_default_pool returns NULL only if it cannot be created (out of memory). */
FM_API int fm_submit(fm_task_fn fn, void *arg);
FM_API fm_pool *fm_default_pool(void);

/* After fork(), in the child every pool is released (its threads do not exist
 * there) and tasks still queued in the parent are not run in the child;
 * fm_pool_reboot reopens a pool there. */

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_POOL_H */
