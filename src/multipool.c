/* Several worker pools behind one balancer (include/formica/multipool.h).
 *
 * Which lock each field needs:
 *
 * | field        | written                          | read                  |
 * |--------------|----------------------------------|-----------------------|
 * | npools, lb,  | at creation only                 | anywhere              |
 * |   has_fn, pools[] |                             |                       |
 * | next         | anywhere, atomic RMW (relaxed)   | -                     |
 * | closed       | under lock, atomic store         | anywhere, atomic load |
 *
 * lock serialises release/reboot so that closed and the pools' own states
 * change together; submit never takes it. A submit that raced a release may
 * still reach a pool: the pool is released first (below), so it gets
 * -ESHUTDOWN from the pool itself.
 */
#include <errno.h>
#include <string.h>

#include "pool_internal.h"

struct fm_multipool {
    int npools;
    fm_lb lb;
    int has_fn;
    _Atomic unsigned next; /* round-robin position and least-tasks tie-break start */
    _Atomic int closed;
    pthread_mutex_t lock;
    fm_pool *pools[];
};

/* Tasks a pool has in hand: blocked submitters, plus busy workers and
 * queued tasks. In hand-off mode the busy workers are the live ones minus
 * the credits (workers idle or just done and not yet promised to a task);
 * in queue mode the live ones minus the idle list, plus the FIFO. A racy
 * estimate from relaxed loads, which is all a balancer needs. */
static long fm__pool_load(struct fm_pool *p)
{
    long load = atomic_load_explicit(&p->running, memory_order_relaxed);
    if (p->queue_mode)
        load += (long)fm__fifo_count(&p->fifo) -
                atomic_load_explicit(&p->nidle, memory_order_relaxed);
    else
        load -= fm__hand_credits(atomic_load_explicit(&p->hand, memory_order_relaxed));
    if (load < 0)
        load = 0;
    return load + atomic_load_explicit(&p->waiting, memory_order_relaxed);
}

/* A hint that a submit to p would not wait: a free credit or FIFO cell, or a
 * worker that can still be started. */
static int fm__pool_looks_free(struct fm_pool *p)
{
    if (p->queue_mode ? fm__fifo_has_room(&p->fifo)
                      : fm__hand_credits(atomic_load_explicit(&p->hand, memory_order_relaxed)) > 0)
        return 1;
    return fm__pool_can_spawn(p);
}

/* The index of the pool for the next task. The scan for the least loaded
 * starts at a rotating position and keeps the first minimum it meets, so ties
 * go to each of the equal pools in turn (the Go original always picks the
 * first of them, which piles a light load onto pool 0). Round robin takes the
 * next pool in turn, or the first after it that looks free when that one
 * does not, so that a task does not wait behind a busy pool while another has
 * room. */
static int fm__multipool_pick(struct fm_multipool *m)
{
    unsigned start = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed) %
                     (unsigned)m->npools;
    if (m->npools == 1)
        return 0;
    int best = (int)start;
    if (m->lb == FM_LB_ROUND_ROBIN) {
        for (int i = 0; i < m->npools; i++) {
            int k = (int)((start + (unsigned)i) % (unsigned)m->npools);
            if (fm__pool_looks_free(m->pools[k]))
                return k;
        }
        return best;
    }
    long best_load = fm__pool_load(m->pools[best]);
    for (int i = 1; i < m->npools && best_load > 0; i++) {
        int k = (int)((start + (unsigned)i) % (unsigned)m->npools);
        long load = fm__pool_load(m->pools[k]);
        if (load < best_load) {
            best = k;
            best_load = load;
        }
    }
    return best;
}

static int fm__multipool_submit(struct fm_multipool *m, fm_task_fn fn, void *arg)
{
    if (FM__UNLIKELY(atomic_load_explicit(&m->closed, memory_order_acquire)))
        return -ESHUTDOWN;
    int first = fm__multipool_pick(m);
    int rc = fm_pool_submit(m->pools[first], fn, arg);
    if (FM__LIKELY(rc != -EAGAIN && rc != -EDEADLK))
        return rc;
    /* The chosen pool would make the task wait (or the caller deadlock): try
     * the others without waiting; if none takes it, the first error stands. */
    for (int i = 1; i < m->npools; i++) {
        int k = (first + i) % m->npools;
        if (fm_pool_submit_timeout(m->pools[k], fn, arg, 0) == 0)
            return 0;
    }
    return rc;
}

FM_API int fm_multipool_new(fm_multipool **out, int npools, int capacity_each, fm_lb lb,
                            const fm_pool_opts *opts)
{
    if (!out || npools <= 0 || npools > FM_MULTIPOOL_MAX ||
        (lb != FM_LB_ROUND_ROBIN && lb != FM_LB_LEAST_TASKS))
        return -EINVAL;
    *out = NULL;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): pools holds pointers */
    struct fm_multipool *m = fm__sys.calloc(1, sizeof *m + (size_t)npools * sizeof m->pools[0]);
    if (!m)
        return -ENOMEM;
    int rc = -pthread_mutex_init(&m->lock, NULL);
    if (rc) {
        fm__sys.free(m);
        return rc;
    }
    m->lb = lb;
    m->has_fn = opts && opts->fn;
    for (int i = 0; i < npools && rc == 0; i++) {
        rc = fm_pool_new(&m->pools[i], capacity_each, opts);
        if (rc == 0)
            m->npools = i + 1;
    }
    if (rc == 0)
        rc = FM__HANDLE_ADD(m, "multipool");
    if (rc) {
        for (int i = 0; i < m->npools; i++)
            fm_pool_destroy(m->pools[i]);
        pthread_mutex_destroy(&m->lock);
        fm__sys.free(m);
        return rc;
    }
    *out = m;
    return 0;
}

FM_API int fm_multipool_submit(fm_multipool *m, fm_task_fn fn, void *arg)
{
    if (FM__UNLIKELY(!m || !fn))
        return -EINVAL;
    return fm__multipool_submit(m, fn, arg);
}

FM_API int fm_multipool_invoke(fm_multipool *m, void *arg)
{
    if (!m || !m->has_fn)
        return -EINVAL;
    return fm__multipool_submit(m, m->pools[0]->opts.fn, arg);
}

FM_API fm_pool *fm_multipool_pool(fm_multipool *m, int index)
{
    if (!m || index < 0 || index >= m->npools)
        return NULL;
    return m->pools[index];
}

FM_API int fm_multipool_npools(const fm_multipool *m)
{
    return m ? m->npools : -EINVAL;
}

/* ---- counters: sums over the pools ---- */

static int fm__multipool_sum(const fm_multipool *m, int (*get)(const fm_pool *))
{
    if (!m)
        return -EINVAL;
    long sum = 0;
    for (int i = 0; i < m->npools; i++) {
        int v = get(m->pools[i]);
        if (v < 0) /* unlimited: the sum is unlimited too */
            return -1;
        sum += v;
    }
    return sum > INT32_MAX ? INT32_MAX : (int)sum;
}

FM_API int fm_multipool_running(const fm_multipool *m)
{
    return fm__multipool_sum(m, fm_pool_running);
}

FM_API int fm_multipool_available(const fm_multipool *m)
{
    return fm__multipool_sum(m, fm_pool_available);
}

FM_API int fm_multipool_waiting(const fm_multipool *m)
{
    return fm__multipool_sum(m, fm_pool_waiting);
}

FM_API int fm_multipool_cap(const fm_multipool *m)
{
    return fm__multipool_sum(m, fm_pool_cap);
}

FM_API int fm_multipool_is_closed(const fm_multipool *m)
{
    return m ? atomic_load_explicit(&m->closed, memory_order_acquire) : -EINVAL;
}

/* ---- tune, release, reboot, destroy ---- */

FM_API int fm_multipool_tune(fm_multipool *m, int capacity_each)
{
    if (!m || capacity_each <= 0)
        return -EINVAL;
    for (int i = 0; i < m->npools; i++) {
        int rc = fm_pool_tune(m->pools[i], capacity_each);
        if (rc)
            return rc;
    }
    return 0;
}

FM_API int fm_multipool_release_timeout(fm_multipool *m, int64_t timeout_ns)
{
    if (!m)
        return -EINVAL;
    int64_t deadline = fm__deadline_after(timeout_ns);
    pthread_mutex_lock(&m->lock);
    /* release: pairs with the acquire load in submit. The pools are released
     * before anyone waits, so that all of them wind down at once. */
    atomic_store_explicit(&m->closed, 1, memory_order_release);
    for (int i = 0; i < m->npools; i++)
        fm_pool_release(m->pools[i]);
    pthread_mutex_unlock(&m->lock);
    int rc = 0;
    for (int i = 0; i < m->npools && rc == 0; i++) {
        int64_t now = fm__now_ns(), left;
        if (deadline == INT64_MAX)
            left = FM_FOREVER;
        else
            left = deadline > now ? deadline - now : 0;
        rc = fm_pool_release_timeout(m->pools[i], left);
    }
    return rc;
}

FM_API int fm_multipool_reboot(fm_multipool *m)
{
    if (!m)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->npools; i++) {
        int r = fm_pool_reboot(m->pools[i]);
        if (r && !rc)
            rc = r;
    }
    atomic_store_explicit(&m->closed, 0, memory_order_release);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

FM_API void fm_multipool_destroy(fm_multipool *m)
{
    if (!m)
        return;
    FM__HANDLE_REMOVE(m, "multipool", "fm_multipool_destroy");
    atomic_store_explicit(&m->closed, 1, memory_order_release);
    for (int i = 0; i < m->npools; i++)
        fm_pool_destroy(m->pools[i]);
    pthread_mutex_destroy(&m->lock);
    fm__sys.free(m);
}
