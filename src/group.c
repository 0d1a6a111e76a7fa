/* Task groups (include/formica/tasks.h): jobs on a pool, the first failure,
 * cancellation, a limit on jobs in flight.
 *
 * Which lock each field needs ("lock" = fm_group.lock):
 *
 * | field      | written                          | read                        |
 * |------------|----------------------------------|-----------------------------|
 * | pool, limit| at creation only                 | anywhere                    |
 * | inflight   | under lock                       | under lock                  |
 * | err        | under lock (first non-zero only) | under lock                  |
 * | waiters    | under lock                       | under lock                  |
 * | cancelled  | under lock, atomic store release | anywhere, atomic load acquire |
 *
 * Invariants (under lock): inflight = jobs accepted (counted before they are
 * handed to the pool or run inline) and not yet returned; with limit > 0,
 * inflight <= limit except for jobs run inline by a nested submit, which use
 * the slot of the job that submits them (that job is paused meanwhile). done
 * is broadcast whenever inflight drops or the group is cancelled while
 * someone waits (wait, a submit at the limit, destroy).
 *
 * Each job goes to the pool as a small heap record (group, fn, arg): one
 * malloc and free per job. A thread-local chain of the jobs running on this
 * thread tells whether a caller is a job of a given group (nested submit,
 * wait from a job, destroy from a job).
 */
#include <errno.h>

#include "internal.h"

struct fm_group {
    fm_pool *pool;
    int limit;
    _Atomic int cancelled;
    pthread_mutex_t lock;
    pthread_cond_t done;
    int inflight;
    int err;
    int waiters;
};

struct fm__job {
    struct fm_group *g;
    fm_job_fn fn;
    void *arg;
};

/* The jobs running on this thread, innermost first (nested submits run
 * jobs inline, and a job may run a job of another group inline). */
struct fm__job_frame {
    const struct fm_group *g;
    struct fm__job_frame *up;
};
static _Thread_local struct fm__job_frame *fm__job_top;

static int fm__in_job_of(const struct fm_group *g)
{
    for (struct fm__job_frame *f = fm__job_top; f; f = f->up)
        if (f->g == g)
            return 1;
    return 0;
}

/* A job returned result (or was not handed over after all: result 0). The
 * job must not touch g after this: destroy may free it once the lock drops. */
static void fm__group_finish(struct fm_group *g, int result)
{
    pthread_mutex_lock(&g->lock);
    if (result != 0 && g->err == 0) {
        g->err = result;
        atomic_store_explicit(&g->cancelled, 1, memory_order_release);
    }
    g->inflight--;
    if (g->waiters)
        pthread_cond_broadcast(&g->done);
    pthread_mutex_unlock(&g->lock);
}

static void fm__group_exec(struct fm_group *g, fm_job_fn fn, void *arg)
{
    struct fm__job_frame frame = {g, fm__job_top};
    fm__job_top = &frame;
    int result = fn(arg);
    fm__job_top = frame.up;
    fm__group_finish(g, result);
}

/* The pool task of a job. */
static void fm__group_run(void *arg)
{
    struct fm__job job = *(struct fm__job *)arg;
    fm__sys.free(arg);
    fm__group_exec(job.g, job.fn, job.arg);
}

FM_API int fm_group_new(fm_group **out, fm_pool *p, int limit)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!p || limit < 0)
        return -EINVAL;
    struct fm_group *g = fm__sys.calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    int rc = fm__mutex_cond_init(&g->lock, &g->done);
    if (rc == 0 && (rc = FM__HANDLE_ADD(g, "group")) != 0) {
        pthread_cond_destroy(&g->done);
        pthread_mutex_destroy(&g->lock);
    }
    if (rc) {
        fm__sys.free(g);
        return rc;
    }
    g->pool = p;
    g->limit = limit;
    *out = g;
    return 0;
}

/* Takes a slot for one job. 0 and *inline_run = 1 when the caller is one of
 * g's jobs and the group is at its limit (the job then runs on the caller's
 * thread, in the caller's slot), or -ECANCELED. */
static int fm__group_admit(struct fm_group *g, int *inline_run)
{
    int rc = 0;
    *inline_run = 0;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        if (atomic_load_explicit(&g->cancelled, memory_order_relaxed)) {
            rc = -ECANCELED;
            break;
        }
        if (g->limit == 0 || g->inflight < g->limit)
            break;
        if (fm__in_job_of(g)) {
            /* Waiting would hold our slot while we wait for one: if every
             * job in flight did so, none would ever return. */
            *inline_run = 1;
            break;
        }
        g->waiters++;
        pthread_cond_wait(&g->done, &g->lock);
        g->waiters--;
    }
    if (rc == 0)
        g->inflight++;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

FM_API int fm_group_submit(fm_group *g, fm_job_fn fn, void *arg)
{
    if (!g || !fn)
        return -EINVAL;
    int inline_run;
    int rc = fm__group_admit(g, &inline_run);
    if (rc)
        return rc;
    if (inline_run) {
        fm__group_exec(g, fn, arg);
        return 0;
    }
    struct fm__job *job = fm__sys.malloc(sizeof *job);
    if (!job) {
        fm__group_finish(g, 0);
        return -ENOMEM;
    }
    *job = (struct fm__job){g, fn, arg};
    rc = fm_pool_submit(g->pool, fm__group_run, job);
    if (rc == 0)
        return 0;
    fm__sys.free(job);
    if (rc == -EDEADLK) {
        /* The caller is a task of the saturated pool: waiting for a worker
         * would wait for itself. It runs the job instead. */
        fm__group_exec(g, fn, arg);
        return 0;
    }
    fm__group_finish(g, 0);
    return rc;
}

FM_API int fm_group_wait(fm_group *g, int64_t timeout_ns)
{
    if (!g)
        return -EINVAL;
    if (fm__in_job_of(g))
        return -EDEADLK; /* its own job is in flight until it returns */
    int64_t deadline = fm__deadline_after(timeout_ns);
    int rc = 0;
    pthread_mutex_lock(&g->lock);
    g->waiters++;
    while (g->inflight > 0) {
        if (fm__cond_wait_until(&g->done, &g->lock, deadline) == ETIMEDOUT && g->inflight > 0) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    g->waiters--;
    if (rc == 0)
        rc = g->err;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

FM_API void fm_group_cancel(fm_group *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    /* release: a job that sees the flag also sees what the canceller did. */
    atomic_store_explicit(&g->cancelled, 1, memory_order_release);
    if (g->waiters)
        pthread_cond_broadcast(&g->done); /* submits blocked at the limit */
    pthread_mutex_unlock(&g->lock);
}

FM_API int fm_group_cancelled(const fm_group *g)
{
    if (!g)
        return -EINVAL;
    return atomic_load_explicit(&g->cancelled, memory_order_acquire);
}

FM_API void fm_group_destroy(fm_group *g)
{
    if (!g)
        return;
    if (fm__in_job_of(g))
        fm__die("fm_group_destroy called from inside a job of the group it destroys");
    FM__HANDLE_REMOVE(g, "group", "fm_group_destroy");
    pthread_mutex_lock(&g->lock);
    g->waiters++;
    while (g->inflight > 0)
        pthread_cond_wait(&g->done, &g->lock);
    g->waiters--;
    pthread_mutex_unlock(&g->lock);
    pthread_cond_destroy(&g->done);
    pthread_mutex_destroy(&g->lock);
    fm__sys.free(g);
}
