/* Futures (include/formica/tasks.h): the result of one call run on a pool.
 *
 * A future has two owners, the call (the pool task) and the caller that got
 * the handle; refs counts them and whoever drops the last frees it.
 *
 * | field       | written                              | read                           |
 * |-------------|--------------------------------------|--------------------------------|
 * | fn, arg     | before the submit                    | the task                       |
 * | result      | the task, under lock, before done    | under lock, once done          |
 * | done        | under lock, atomic store release     | anywhere, atomic load acquire  |
 * | refs        | atomic RMW, acq_rel                  | -                              |
 *
 * refs: each side drops its reference as its very last use of the future;
 * acq_rel makes the other side's writes visible to the one that frees.
 */
#include <errno.h>

#include "internal.h"

struct fm_future {
    fm_call_fn fn;
    void *arg;
    void *result;
    _Atomic int done;
    _Atomic int refs;
    pthread_mutex_t lock;
    pthread_cond_t cv;
};

static void fm__future_free(struct fm_future *f)
{
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->lock);
    fm__sys.free(f);
}

static void fm__future_unref(struct fm_future *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        fm__future_free(f);
}

static void fm__future_run(void *arg)
{
    struct fm_future *f = arg;
    void *result = f->fn(f->arg);
    pthread_mutex_lock(&f->lock);
    f->result = result;
    atomic_store_explicit(&f->done, 1, memory_order_release);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->lock);
    fm__future_unref(f);
}

FM_API int fm_pool_call(fm_pool *p, fm_call_fn fn, void *arg, fm_future **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!p || !fn)
        return -EINVAL;
    struct fm_future *f = fm__sys.calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    int rc = fm__mutex_cond_init(&f->lock, &f->cv);
    if (rc) {
        fm__sys.free(f);
        return rc;
    }
    f->fn = fn;
    f->arg = arg;
    atomic_init(&f->refs, 2);
    if ((rc = FM__HANDLE_ADD(f, "future")) != 0) {
        fm__future_free(f);
        return rc;
    }
    rc = fm_pool_submit(p, fm__future_run, f);
    if (rc) {
        FM__HANDLE_REMOVE(f, "future", "fm_pool_call");
        fm__future_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

FM_API int fm_future_wait(fm_future *f, int64_t timeout_ns, void **result)
{
    if (!f)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&f->lock);
    if (!atomic_load_explicit(&f->done, memory_order_relaxed)) {
        int64_t deadline = fm__deadline_after(timeout_ns);
        while (!atomic_load_explicit(&f->done, memory_order_relaxed)) {
            if (fm__cond_wait_until(&f->cv, &f->lock, deadline) == ETIMEDOUT &&
                !atomic_load_explicit(&f->done, memory_order_relaxed)) {
                rc = -ETIMEDOUT;
                break;
            }
        }
    }
    if (rc == 0 && result)
        *result = f->result;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

FM_API int fm_future_done(const fm_future *f)
{
    if (!f)
        return -EINVAL;
    return atomic_load_explicit(&f->done, memory_order_acquire);
}

FM_API void fm_future_destroy(fm_future *f)
{
    if (!f)
        return;
    FM__HANDLE_REMOVE(f, "future", "fm_future_destroy");
    fm__future_unref(f);
}
