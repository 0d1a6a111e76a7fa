/* The worker pool's blocked submitters: each waits on a condition variable of
 * its own, linked in arrival order on the pool's waiter list, so that a wake-up
 * reaches a chosen submitter and, in hand-off mode, a worker can take over the
 * task of the one blocked the longest (fm__pool_take_waiter_locked).
 *
 * Every function here runs with the pool lock held. A waiter is on the list
 * only while it sleeps; whoever wakes it unlinks it first, so that one wake-up
 * is never spent twice on the same waiter. */
#include "pool_internal.h"

static void fm__waiter_unlink_locked(struct fm_pool *p, struct fm__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->waiters_tail = w->prev;
    w->linked = 0;
}

/* Sleeps until woken, taken over or the deadline; ETIMEDOUT or 0. The caller
 * counted itself in waiting and reads w->taken afterwards. */
int fm__pool_wait_room_locked(struct fm_pool *p, struct fm__waiter *w, int64_t deadline)
{
    w->taken = 0;
    w->linked = 1;
    w->next = NULL;
    w->prev = p->waiters_tail;
    if (p->waiters_tail)
        p->waiters_tail->next = w;
    else
        p->waiters = w;
    p->waiters_tail = w;
    int rc = 0;
    while (w->linked && rc == 0)
        rc = fm__cond_wait_until(&w->wake, &p->lock, deadline);
    if (w->linked) /* timed out */
        fm__waiter_unlink_locked(p, w);
    return w->taken ? 0 : rc;
}

static void fm__waiter_wake_locked(struct fm_pool *p, struct fm__waiter *w)
{
    fm__waiter_unlink_locked(p, w);
    pthread_cond_signal(&w->wake);
}

/* Room was freed: the submitter blocked the longest retries. */
void fm__pool_signal_room_locked(struct fm_pool *p)
{
    if (p->waiters)
        fm__waiter_wake_locked(p, p->waiters);
}

/* Every blocked submitter retries (capacity grew, the pool closed, a failed
 * start gave its slot back). */
void fm__pool_broadcast_room_locked(struct fm_pool *p)
{
    while (p->waiters)
        fm__waiter_wake_locked(p, p->waiters);
}

/* Hand-off mode: a worker that just ended its task takes the task of the
 * submitter blocked the longest, which then returns 0 as if it had claimed
 * the worker itself. The worker stays busy (no credit, no looker), so the
 * task starts at once, and the submitter's wake-up runs beside it instead of
 * before it. Not once the pool is closed: those submitters get -ESHUTDOWN. */
int fm__pool_take_waiter_locked(struct fm_pool *p, fm_task_fn *fn, void **arg)
{
    struct fm__waiter *w = p->waiters;
    if (!w || atomic_load_explicit(&p->closed, memory_order_relaxed))
        return 0;
    *fn = w->fn;
    *arg = w->arg;
    w->taken = 1;
    /* It no longer waits; counted off here, so that other workers ending a
     * task do not take the lock for it. */
    atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
    fm__waiter_wake_locked(p, w);
    return 1;
}
