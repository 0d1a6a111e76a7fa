/* The worker pool's blocked submitters: each sleeps on a futex word of its
 * own, linked in arrival order on the pool's waiter list, so that a wake-up
 * reaches a chosen submitter and, in hand-off mode, a worker can take over the
 * task of the one blocked the longest (fm__pool_take_waiter_locked).
 *
 * A wake-up has two steps. Under the pool lock the waker unlinks the waiter
 * (from then on nobody else wakes it, and the waiter will not leave before it
 * is released); after the lock is dropped it releases the waiter by storing
 * the outcome in its word. The waiter so never wakes into a lock its waker
 * still holds, and one whose task was taken returns without the lock at all.
 * The waiter's struct lives on its stack: the waker reads it (next) before it
 * stores the outcome and never after; the futex wake that follows may reach
 * a dead word, which a futex wake allows (a spurious wake-up at most). */
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
    w->next = NULL;
}

/* Links w, drops the lock and sleeps until released or the deadline. Returns
 * FM__WAITER_TAKEN, _RETRY or _TIMEDOUT, with the lock not held. The caller
 * counted itself in waiting. */
int fm__pool_wait_room_locked(struct fm_pool *p, struct fm__waiter *w, int64_t deadline)
{
    atomic_store_explicit(&w->state, FM__WAITER_ASLEEP, memory_order_relaxed);
    w->linked = 1;
    w->next = NULL;
    w->prev = p->waiters_tail;
    if (p->waiters_tail)
        p->waiters_tail->next = w;
    else
        p->waiters = w;
    p->waiters_tail = w;
    pthread_mutex_unlock(&p->lock);

    /* acquire: pairs with the waker's release store (fm__waiters_release). */
    uint32_t s;
    int timed_out = 0;
    while ((s = atomic_load_explicit(&w->state, memory_order_acquire)) == FM__WAITER_ASLEEP &&
           !timed_out)
        timed_out = fm__futex_wait_until(&w->state, FM__WAITER_ASLEEP, deadline) == ETIMEDOUT;
    if (s != FM__WAITER_ASLEEP)
        return (int)s;
    /* Timed out: leave the list, unless a waker unlinked us first; then its
     * release is on its way and decides the outcome. */
    pthread_mutex_lock(&p->lock);
    int linked = w->linked;
    if (linked)
        fm__waiter_unlink_locked(p, w);
    pthread_mutex_unlock(&p->lock);
    if (linked)
        return FM__WAITER_TIMEDOUT;
    while ((s = atomic_load_explicit(&w->state, memory_order_acquire)) == FM__WAITER_ASLEEP)
        fm__futex_wait(&w->state, FM__WAITER_ASLEEP);
    return (int)s;
}

/* Releases a chain of unlinked waiters (linked by next) with this outcome.
 * Lock not held. */
void fm__waiters_release(struct fm__waiter *w, uint32_t outcome)
{
    while (w) {
        struct fm__waiter *next = w->next; /* the last read of *w */
        /* release: the waiter sees everything done before, e.g. the capacity
         * a tune changed, once it sees the outcome. */
        atomic_store_explicit(&w->state, outcome, memory_order_release);
        fm__futex_wake(&w->state, 1);
        w = next;
    }
}

/* Room was freed: the submitter blocked the longest is to retry. Returns it,
 * unlinked, for fm__waiters_release(w, FM__WAITER_RETRY) once the lock is
 * dropped; NULL if none waits. */
struct fm__waiter *fm__pool_signal_room_locked(struct fm_pool *p)
{
    struct fm__waiter *w = p->waiters;
    if (w)
        fm__waiter_unlink_locked(p, w);
    return w;
}

/* Every blocked submitter is to retry (capacity grew, the pool closed, a failed
 * start gave its slot back): the whole list, unlinked, as above. */
struct fm__waiter *fm__pool_broadcast_room_locked(struct fm_pool *p)
{
    struct fm__waiter *all = p->waiters;
    for (struct fm__waiter *w = all; w; w = w->next)
        w->linked = 0;
    p->waiters = p->waiters_tail = NULL;
    return all;
}

/* Hand-off mode: a worker that just ended its task takes the task of the
 * submitter blocked the longest, which then returns 0 as if it had claimed
 * the worker itself. The worker stays busy (no credit, no looker), so the
 * task starts at once, and the submitter's wake-up runs beside it instead of
 * before it. Not once the pool is closed: those submitters get -ESHUTDOWN.
 * Returns the waiter, for fm__waiters_release(w, FM__WAITER_TAKEN) once the
 * lock is dropped, or NULL. */
struct fm__waiter *fm__pool_take_waiter_locked(struct fm_pool *p, fm_task_fn *fn, void **arg)
{
    struct fm__waiter *w = p->waiters;
    if (!w || atomic_load_explicit(&p->closed, memory_order_relaxed))
        return NULL;
    *fn = w->fn;
    *arg = w->arg;
    fm__waiter_unlink_locked(p, w);
    /* It no longer waits; counted off here, so that other workers ending a
     * task do not take the lock for it. */
    atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
    return w;
}
