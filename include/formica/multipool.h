/* formica: several worker pools behind one balancer (fm_multipool).
 *
 * A multipool owns npools fm_pool of capacity_each workers each, all made
 * with the same opts. A submit picks one pool:
 *   FM_LB_ROUND_ROBIN  the pools in turn;
 *   FM_LB_LEAST_TASKS  the pool with the fewest tasks in hand (busy workers,
 *                      queued tasks and blocked submitters); among equals the
 *                      choice rotates, so equally loaded pools share the work.
 * If the chosen pool turns the task away with -EAGAIN (saturated and
 * non-blocking, or its max_blocking reached) or -EDEADLK (a task of that pool
 * would wait for it), the others are tried in turn without waiting before the
 * error is returned: one busy pool does not reject work another could take.
 *
 * | call                                  | may run concurrently with       | progress / blocking          |
 * |---------------------------------------|---------------------------------|------------------------------|
 * | submit, invoke                        | everything but destroy          | as fm_pool_submit            |
 * | pool, running, available, waiting, cap| everything but destroy          | wait-free (atomic loads)     |
 * | tune, reboot                          | everything but destroy          | each pool's lock in turn     |
 * | release_timeout                       | everything but destroy          | blocks up to the timeout     |
 * | destroy                               | nothing: the last call          | joins every worker thread    |
 *
 * The pools returned by fm_multipool_pool belong to the multipool: use them
 * (submit, stats, dump, wait), never destroy them.
 */
#ifndef FORMICA_MULTIPOOL_H
#define FORMICA_MULTIPOOL_H

#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fm_lb { FM_LB_ROUND_ROBIN, FM_LB_LEAST_TASKS } fm_lb;

typedef struct fm_multipool fm_multipool;

/* Creates npools pools of capacity_each (> 0 or FM_UNLIMITED) with opts (may
 * be NULL). -EINVAL: NULL out, npools <= 0 or > FM_MULTIPOOL_MAX, an unknown
 * balancer, or what fm_pool_new rejects; -ENOMEM; -EAGAIN (prealloc). */
#define FM_MULTIPOOL_MAX 4096
FM_API int fm_multipool_new(fm_multipool **out, int npools, int capacity_each, fm_lb lb,
                            const fm_pool_opts *opts);

/* Submits fn(arg) to the pool the balancer picks (see above). Returns as
 * fm_pool_submit; -ESHUTDOWN once the multipool is released. */
FM_API int fm_multipool_submit(fm_multipool *m, fm_task_fn fn, void *arg);

/* Submits opts.fn(arg); -EINVAL if the opts had no fn. */
FM_API int fm_multipool_invoke(fm_multipool *m, void *arg);

/* The pool at index (0 .. npools-1), or NULL for a bad index or NULL m. */
FM_API fm_pool *fm_multipool_pool(fm_multipool *m, int index);

FM_API int fm_multipool_npools(const fm_multipool *m); /* -EINVAL on NULL */

/* Sums over the pools; -EINVAL on NULL. available and cap are -1 when the
 * pools are unlimited. */
FM_API int fm_multipool_running(const fm_multipool *m);
FM_API int fm_multipool_available(const fm_multipool *m);
FM_API int fm_multipool_waiting(const fm_multipool *m);
FM_API int fm_multipool_cap(const fm_multipool *m);

/* fm_pool_tune(pool, capacity_each) on every pool; the first error, if any
 * (the pools before it are tuned). */
FM_API int fm_multipool_tune(fm_multipool *m, int capacity_each);

/* Releases every pool (later submits: -ESHUTDOWN) and waits, within one
 * shared timeout, until every worker thread of every pool has exited.
 * -ETIMEDOUT (the multipool stays released), -EDEADLK from a task of one of
 * its pools. */
FM_API int fm_multipool_release_timeout(fm_multipool *m, int64_t timeout_ns);

/* Reopens a released multipool and its pools. */
FM_API int fm_multipool_reboot(fm_multipool *m);

FM_API int fm_multipool_is_closed(const fm_multipool *m); /* 1, 0, -EINVAL */

/* Destroys every pool (each runs its queued tasks and joins its threads) and
 * frees m. Must be the last call on m; a second destroy of the same handle is
 * a bug that debug builds (FM_DEBUG) detect and abort on. NULL is a no-op. */
FM_API void fm_multipool_destroy(fm_multipool *m);

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_MULTIPOOL_H */
