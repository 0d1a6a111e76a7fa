/* formica: task groups (fm_group) and futures (fm_future) on a worker pool.
 *
 * A group runs jobs (int fn(void *arg), 0 = success) on a pool and collects
 * the first failure:
 *   - fm_group_wait waits until every accepted job has returned and gives the
 *     first non-zero job result, or 0;
 *   - the first failing job cancels the group: later submits get -ECANCELED,
 *     running jobs can poll fm_group_cancelled and stop early; jobs accepted
 *     before the cancel still run (each job owns its argument);
 *   - limit > 0 bounds the jobs in flight: a submit blocks while that many
 *     are accepted and unfinished.
 * Jobs may submit to their own group. Such a nested submit never waits for
 * itself: when the group is at its limit, or the pool is saturated and would
 * make a task of its own wait (fm_pool_submit's -EDEADLK), the job is run
 * right away on the submitting thread (its result counts like any other).
 *
 * A future carries the result of one call, fn(arg), run on a pool by
 * fm_pool_call. It is shared by the call and its owner: destroying it before
 * the call has finished is fine (the result is dropped; the call still runs
 * to its end and the memory is freed by whichever side finishes last).
 *
 * | call                   | may run concurrently with             | blocks                       |
 * |------------------------|---------------------------------------|------------------------------|
 * | fm_group_submit        | everything on the group but destroy   | at the limit, or as the pool |
 * | fm_group_wait          | everything on the group but destroy   | until its jobs returned      |
 * | fm_group_cancel        | everything on the group but destroy   | no (group lock)              |
 * | fm_group_cancelled     | everything on the group but destroy   | no (wait-free)               |
 * | fm_group_destroy       | nothing: the last call on the group   | until its jobs returned      |
 * | fm_pool_call           | everything on the pool but destroy    | as fm_pool_submit            |
 * | fm_future_wait         | everything on the future but destroy  | until done or the timeout    |
 * | fm_future_destroy      | the call itself; nothing else         | no                           |
 *
 * Waiting from inside a task (fm_group_wait, fm_future_wait) is fine in a
 * hand-off pool, where an accepted job always has a worker; in a queue-mode
 * pool it can deadlock when every worker waits for jobs still in the FIFO.
 * fm_group_wait from one of the group's own jobs returns -EDEADLK.
 *
 * Memory ordering: everything a thread did before a successful submit (or
 * call) happens-before the job runs; everything a job did happens-before
 * fm_group_wait returns (for a call: fm_future_wait returning 0).
 */
#ifndef FORMICA_TASKS_H
#define FORMICA_TASKS_H

#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*fm_job_fn)(void *arg);    /* returns 0 or an error code */
typedef void *(*fm_call_fn)(void *arg); /* its return value is the future's result */

typedef struct fm_group fm_group;
typedef struct fm_future fm_future;

/* A group that runs its jobs on p. limit: most jobs in flight, 0 = no limit.
 * -EINVAL (NULL out or p, limit < 0), -ENOMEM. */
FM_API int fm_group_new(fm_group **out, fm_pool *p, int limit);

/* Runs fn(arg) as a job of g. 0, -EINVAL (NULL g or fn), -ECANCELED (g is
 * cancelled, also while blocked at the limit), -ENOMEM, or what the pool's
 * submit returns (-ESHUTDOWN, -EAGAIN for a non-blocking pool). */
FM_API int fm_group_submit(fm_group *g, fm_job_fn fn, void *arg);

/* Waits until every accepted job has returned; then the first non-zero job
 * result, or 0. -ETIMEDOUT, -EINVAL, -EDEADLK from one of g's own jobs. The
 * group stays usable (the result is kept; a cancelled group stays cancelled). */
FM_API int fm_group_wait(fm_group *g, int64_t timeout_ns);

/* Cancels g: later submits and submits blocked at the limit get -ECANCELED.
 * Idempotent; running jobs are not interrupted. NULL is a no-op. */
FM_API void fm_group_cancel(fm_group *g);

/* 1 once g is cancelled (by fm_group_cancel or a failing job), else 0;
 * -EINVAL on NULL. */
FM_API int fm_group_cancelled(const fm_group *g);

/* Waits for every accepted job, then frees g. Must be the last call on g
 * (debug builds abort on a second destroy); from inside one of g's jobs it
 * aborts with a message. NULL is a no-op. */
FM_API void fm_group_destroy(fm_group *g);

/* Runs fn(arg) on p; *out receives a future for its result. 0, -EINVAL (NULL
 * p, fn or out), -ENOMEM, or what fm_pool_submit returns (*out is then NULL). */
FM_API int fm_pool_call(fm_pool *p, fm_call_fn fn, void *arg, fm_future **out);

/* Waits for the call's result: 0 with *result set (result may be NULL), or
 * -ETIMEDOUT, -EINVAL. May be called again, from any thread. */
FM_API int fm_future_wait(fm_future *f, int64_t timeout_ns, void **result);

/* 1 once the call has returned, 0 before; -EINVAL on NULL. */
FM_API int fm_future_done(const fm_future *f);

/* Gives the owner's share of f back. Before the call finished the result is
 * dropped (if it points to memory, the call should free it itself). Must be
 * the last call on f (debug builds abort on a second destroy). NULL: no-op. */
FM_API void fm_future_destroy(fm_future *f);

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_TASKS_H */
