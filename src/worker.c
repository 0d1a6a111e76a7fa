/* The pool's worker threads: start, the run/look/idle loop, exit, join.
 *
 * A worker's life:
 *   start -> [run the task it was started with] -> take tasks from the FIFO
 *   while there are any, polling it a little when it runs dry -> go idle (push
 *   itself on the idle list, LIFO) -> spin on its futex word, then sleep ->
 *   GO: look at the FIFO again | EXIT: leave.
 * It leaves instead of going idle when the pool is closed or holds more
 * workers than its capacity (after a tune down), once no queued task needs it.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>

#include "pool_internal.h"

_Thread_local struct fm__worker *fm__current_worker;

/* Spin rounds of a worker waiting on its futex word before it sleeps: long
 * enough to catch a submitter that hands out tasks back to back (hundreds of
 * ns apart), short enough not to starve other threads; with fewer CPUs than
 * runnable threads a spinner only delays the thread it waits for. */
#define FM__IDLE_SPINS 2000
/* Rounds a worker polls an empty FIFO before it goes idle; past
 * FM__POLL_PAUSES it yields the CPU between polls. */
#define FM__POLL_ROUNDS 64
#define FM__POLL_PAUSES 16
/* Exited threads are joined by a maintenance tick this long after they leave. */
#define FM__REAP_DELAY_NS (10 * 1000 * 1000)

/* A worker may spin only while fewer than half the CPUs (at least one) hold
 * a spinner: with fewer CPUs than runnable threads every further spinner only
 * takes time from the threads it waits for. Returns 1 with a spin slot taken;
 * fm__spin_end gives it back. */
static int fm__spin_begin(struct fm_pool *p)
{
    int limit = fm__ncpu() / 2 > 1 ? fm__ncpu() / 2 : 1;
    if (fm__ncpu() < 2 || atomic_load_explicit(&p->nspinning, memory_order_relaxed) >= limit)
        return 0;
    atomic_fetch_add_explicit(&p->nspinning, 1, memory_order_relaxed);
    return 1;
}

static void fm__spin_end(struct fm_pool *p)
{
    atomic_fetch_sub_explicit(&p->nspinning, 1, memory_order_relaxed);
}

/* ---- the idle list (lock held) ---- */

static void fm__idle_push_locked(struct fm_pool *p, struct fm__worker *w)
{
    FM__ASSERT(!w->on_idle);
    FM__ASSERT(atomic_load_explicit(&p->nidle, memory_order_relaxed) <
               atomic_load_explicit(&p->running, memory_order_relaxed));
    w->idle_prev = NULL;
    w->idle_next = p->idle_head;
    if (p->idle_head)
        p->idle_head->idle_prev = w;
    else
        p->idle_tail = w;
    p->idle_head = w;
    w->on_idle = 1;
    atomic_fetch_add_explicit(&p->nidle, 1, memory_order_relaxed);
}

static void fm__idle_unlink_locked(struct fm_pool *p, struct fm__worker *w)
{
    FM__ASSERT(w->on_idle);
    if (w->idle_prev)
        w->idle_prev->idle_next = w->idle_next;
    else
        p->idle_head = w->idle_next;
    if (w->idle_next)
        w->idle_next->idle_prev = w->idle_prev;
    else
        p->idle_tail = w->idle_prev;
    w->on_idle = 0;
    atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
    fm__pool_busy_locked(p);
}

/* Adds delta to hand; returns the new value. seq_cst: the Dekker pairs with
 * submitters (pool.c, fm__pool_after_push) and blocked submitters. */
static int64_t fm__hand_add(struct fm_pool *p, int64_t delta)
{
    int64_t v = atomic_fetch_add_explicit(&p->hand, delta, memory_order_seq_cst) + delta;
    FM__ASSERT(fm__hand_credits(v) >= 0 && fm__hand_lookers(v) >= 0);
    return v;
}

/* The most recently idle worker (LIFO: the warm one), off the list and counted
 * as a looker from this instant, so that submitters do not wake a second one
 * for the same task; the caller hands it GO with fm__pool_wake once the lock
 * is dropped. */
struct fm__worker *fm__pool_take_idle_locked(struct fm_pool *p)
{
    struct fm__worker *w = p->idle_head;
    if (w) {
        fm__idle_unlink_locked(p, w);
        fm__hand_add(p, FM__LOOKER);
    }
    return w;
}

/* Stores GO or EXIT and wakes the worker if it sleeps. acq_rel: the worker
 * sees everything its waker did before. */
static void fm__worker_signal(struct fm__worker *w, uint32_t state)
{
    uint32_t old = atomic_exchange_explicit(&w->state, state, memory_order_acq_rel);
    if (old == FM__W_SLEEP)
        fm__futex_wake(&w->state, 1);
}

void fm__pool_wake(struct fm__worker *w)
{
    fm__worker_signal(w, FM__W_GO);
}

/* Takes an idle worker out of the pool for good: it gives back its capacity
 * slot now and exits when it wakes. In hand-off mode an idle worker may be
 * promised to a submitter already (no credit left): then it stays, -EBUSY. */
int fm__pool_retire_idle_locked(struct fm_pool *p, struct fm__worker *w)
{
    if (!p->queue_mode && !fm__hand_take_credit(p, 0))
        return -EBUSY;
    fm__idle_unlink_locked(p, w);
    atomic_fetch_sub_explicit(&p->running, 1, memory_order_relaxed);
    fm__worker_signal(w, FM__W_EXIT);
    return 0;
}

static int fm__pool_surplus_locked(struct fm_pool *p)
{
    int cap = atomic_load_explicit(&p->capacity, memory_order_relaxed);
    return cap != FM_UNLIMITED && atomic_load_explicit(&p->running, memory_order_relaxed) > cap;
}

/* Sends away the idle workers the pool no longer wants: all of them once it
 * is closed, the surplus over its capacity otherwise (the longest idle
 * first). In hand-off mode one promised to a queued task stays until the
 * task is taken; whoever leaves after that calls this again. */
void fm__pool_trim_locked(struct fm_pool *p)
{
    int closed = atomic_load_explicit(&p->closed, memory_order_relaxed);
    while (p->idle_tail && (closed || fm__pool_surplus_locked(p)) &&
           fm__pool_retire_idle_locked(p, p->idle_tail) == 0) {
    }
}

int fm__pool_is_quiet_locked(struct fm_pool *p)
{
    int idle = atomic_load_explicit(&p->nidle, memory_order_relaxed);
    int running = atomic_load_explicit(&p->running, memory_order_relaxed);
    return idle == running && fm__fifo_count(&p->fifo) == 0;
}

/* Wakes fm_pool_wait callers once nothing is queued or running. Lock held. */
static void fm__pool_notify_quiet_locked(struct fm_pool *p)
{
    if (p->quiet_waiters && fm__pool_is_quiet_locked(p))
        pthread_cond_broadcast(&p->quiet);
}

/* ---- running tasks ---- */

static void fm__worker_run(struct fm__worker *w, fm_task_fn fn, void *arg)
{
    /* Publish the task for fm_pool_dump and the watchdog (diag.c; the
     * protocol is in pool_internal.h): two stores, plain ones on x86, and no
     * clock read; the readers time the task themselves. */
    atomic_store_explicit(&w->cur_arg, arg, memory_order_release);
    atomic_store_explicit(&w->cur_fn, fn, memory_order_release);
    fn(arg);
    atomic_store_explicit(&w->cur_fn, NULL, memory_order_release);
    /* Only this thread writes its counter: a plain increment, no RMW.
     * release: readers of the task fields above check it (diag.c). */
    uint64_t n = atomic_load_explicit(&w->completed, memory_order_relaxed);
    atomic_store_explicit(&w->completed, n + 1, memory_order_release);
}

/* Wakes one blocked submitter, if any: a FIFO cell or a credit was just freed.
 * The caller's preceding seq_cst write (the pop's cell store, or hand) and
 * this seq_cst load pair with the submitter's increment of waiting and its
 * retry (pool.c), so a submitter that found no room is always seen here. */
static void fm__pool_room_freed(struct fm_pool *p)
{
    if (FM__UNLIKELY(atomic_load_explicit(&p->waiting, memory_order_seq_cst) > 0)) {
        /* Queue mode wakes the submitter once half the FIFO is free, not for
         * every cell: it then queues a batch per wake-up instead of sleeping
         * and waking once per task. Workers keep draining, so the FIFO always
         * gets there. */
        if (p->queue_mode && fm__fifo_count(&p->fifo) > fm__fifo_capacity(&p->fifo) / 2)
            return;
        pthread_mutex_lock(&p->lock);
        struct fm__waiter *w = fm__pool_signal_room_locked(p);
        pthread_mutex_unlock(&p->lock);
        fm__waiters_release(w, FM__WAITER_RETRY);
    }
}

/* Hand-off mode, a busy worker whose task ended and that found the FIFO empty:
 * it takes over the task of a blocked submitter, if any, and stays busy
 * (pool_wait.c). Without this the worker would free a credit, wake the
 * submitter, and wait for it to hand the task back: three threads for two
 * CPUs on the critical path of every task of a saturated pool. Only a
 * submitter asleep on the waiter list is taken (one already woken retries by
 * itself); any other is served by the credit path below, as before. */
static int fm__worker_take_waiter(struct fm_pool *p, fm_task_fn *fn, void **arg)
{
    /* relaxed: only a hint; missing a waiter costs a round trip, not a task. */
    if (FM__LIKELY(atomic_load_explicit(&p->waiting, memory_order_relaxed) == 0))
        return 0;
    pthread_mutex_lock(&p->lock);
    struct fm__waiter *w = fm__pool_take_waiter_locked(p, fn, arg);
    pthread_mutex_unlock(&p->lock);
    fm__waiters_release(w, FM__WAITER_TAKEN);
    return w != NULL;
}

/* Polls an empty FIFO for a short while; 1 as soon as a task is ready. */
static int fm__worker_poll_fifo(struct fm_pool *p)
{
    if (!fm__spin_begin(p))
        return 0;
    int ready = 0;
    for (int i = 0; i < FM__POLL_ROUNDS && !ready; i++) {
        ready = fm__fifo_ready(&p->fifo);
        if (i < FM__POLL_PAUSES)
            fm__cpu_relax();
        else
            sched_yield();
    }
    fm__spin_end(p);
    return ready;
}

/* ---- adding workers ---- */

/* Runs queued tasks on the calling thread: the last resort when the pool has no
 * worker left and none can be started, so that an accepted task still runs. */
static void fm__pool_run_inline(struct fm_pool *p)
{
    fm_task_fn fn;
    void *arg;
    while (fm__fifo_pop(&p->fifo, &fn, &arg)) {
        fn(arg);
        pthread_mutex_lock(&p->lock);
        p->completed_retired++;
        pthread_mutex_unlock(&p->lock);
    }
}

/* A worker that was to start without a task failed to start; submitters may
 * have counted on it as a looker. Make sure queued tasks still get a worker. */
static void fm__pool_rescue(struct fm_pool *p)
{
    if (!fm__fifo_ready(&p->fifo))
        return;
    pthread_mutex_lock(&p->lock);
    struct fm__worker *w = fm__pool_take_idle_locked(p);
    int no_worker = atomic_load_explicit(&p->running, memory_order_relaxed) == 0;
    pthread_mutex_unlock(&p->lock);
    if (w)
        fm__pool_wake(w);
    else if (no_worker)
        fm__pool_run_inline(p);
}

/* ---- starting workers on behalf of workers ----
 * glibc allocates a new thread's TLS vector with malloc in the thread that
 * calls pthread_create, so a worker that started threads itself would get a
 * malloc arena of its own, which glibc keeps for the life of the process: up
 * to 8 per CPU after a burst, each holding pages. A worker thread (of any
 * pool) therefore reserves the slot itself, as any spawner does, and leaves
 * the pthread_create to the maintenance thread, whose one arena then holds
 * the TLS vectors of every worker it starts (and gets them back when its
 * expiry ticks join them). The reservation keeps nthreads > 0 until the
 * thread has started and retired, or the start failed, so release_timeout
 * and destroy wait for it as for any spawn in progress. */

/* Workers started per tick: other clients of the maintenance thread get their
 * turn between batches. */
#define FM__SPAWN_BATCH 32

/* Takes up to max pending spawns off the pool. Lock not held. */
static int fm__pool_take_pending(struct fm_pool *p, int max)
{
    pthread_mutex_lock(&p->lock);
    int n = p->spawns_pending < max ? p->spawns_pending : max;
    p->spawns_pending -= n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* The maintenance thread's tick: starts the workers reserved for it. Runs
 * again at once while more are pending; a reservation made after it took the
 * count asks for a tick of its own (pending went from 0 to 1). A start that
 * fails gives its slot back as on any thread (fm__pool_spawn_reserved). */
int64_t fm__pool_spawn_tick(fm__maint_client *c, int64_t now)
{
    struct fm_pool *p = (struct fm_pool *)((char *)c - offsetof(struct fm_pool, spawner));
    int n = fm__pool_take_pending(p, FM__SPAWN_BATCH);
    for (int i = 0; i < n; i++)
        fm__pool_spawn_reserved(p, NULL, NULL);
    pthread_mutex_lock(&p->lock);
    int more = p->spawns_pending > 0;
    pthread_mutex_unlock(&p->lock);
    return more ? now : INT64_MAX;
}

/* A worker thread wants a new worker started: reserved already. Lock held on
 * entry, dropped. If the maintenance thread cannot be started the caller
 * starts what is pending itself, so that no reservation is left behind. */
static void fm__pool_spawn_later_locked(struct fm_pool *p)
{
    int first = p->spawns_pending++ == 0;
    pthread_mutex_unlock(&p->lock);
    if (!first || fm__maint_request(&p->spawner, 0) == 0)
        return;
    for (int n = fm__pool_take_pending(p, INT_MAX); n > 0; n--)
        fm__pool_spawn_reserved(p, NULL, NULL);
}

/* Puts one more worker on the FIFO: an idle one, else a new one while running
 * < capacity, else none (every worker is busy and looks when its task ends).
 * On a worker thread the new one is started by the maintenance thread. */
void fm__pool_add_worker(struct fm_pool *p)
{
    if (!fm__fifo_ready(&p->fifo)) /* taken meanwhile: nothing to add one for */
        return;
    pthread_mutex_lock(&p->lock);
    struct fm__worker *w = fm__pool_take_idle_locked(p);
    if (w) {
        pthread_mutex_unlock(&p->lock);
        fm__pool_wake(w);
        return;
    }
    if (!fm__pool_can_spawn(p)) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    fm__pool_reserve_locked(p, 1);
    if (fm__current_worker) {
        fm__pool_spawn_later_locked(p);
        return;
    }
    pthread_mutex_unlock(&p->lock);
    fm__pool_spawn_reserved(p, NULL, NULL);
}

/* A worker took a task, and hand is the value after its transition. If more
 * tasks wait and nobody else looks, it brings in up to two more workers before
 * it runs its own: every worker doing this grows the pool as a tree, in
 * parallel, instead of one wake-up at a time by the submitter (which would
 * then spend its time waking instead of queuing). */
static void fm__worker_took(struct fm_pool *p, int64_t hand)
{
    fm__pool_room_freed(p);
    if (!fm__fifo_ready(&p->fifo) || fm__hand_lookers(hand) > 0)
        return;
    int more = fm__fifo_count(&p->fifo) > 1 ? 2 : 1;
    for (int i = 0; i < more; i++) {
        if (atomic_load_explicit(&p->nidle, memory_order_relaxed) == 0 && !fm__pool_can_spawn(p))
            return;
        fm__pool_add_worker(p);
    }
}

/* ---- going idle ---- */

enum { FM__IDLE_WAIT, FM__IDLE_EXIT, FM__IDLE_LOOK };

static void fm__pool_arm_expiry_locked(struct fm_pool *p, int64_t idle_since)
{
    if (p->expiry_ns < 0 || p->expiry_armed)
        return;
    /* The coarse clock lags CLOCK_MONOTONIC by up to a tick; the expiry tick
     * re-arms itself for any worker not yet due. */
    if (fm__maint_request(&p->maint, idle_since + p->expiry_ns) == 0)
        p->expiry_armed = 1;
}

/* A looking worker wants to leave (pool closed, or over capacity). Lock held.
 * It may not while a queued task may need it: in hand-off mode when no credit
 * is left (a submitter counts on it), in both modes when a task is in the
 * FIFO. The order is the Dekker pair of go_idle: first stop counting as a
 * looker (seq_cst), then look at the FIFO; a submitter publishes its task,
 * then reads the lookers. running drops first, so that a submitter that sees
 * no looker also sees the free slot and starts a worker for its task; every
 * start takes the lock, so restoring running below cannot overshoot. */
static int fm__worker_try_leave_locked(struct fm_pool *p)
{
    int64_t credit = p->queue_mode ? 0 : 1;
    atomic_fetch_sub_explicit(&p->running, 1, memory_order_relaxed);
    if (!credit) {
        fm__hand_add(p, -FM__LOOKER);
    } else if (!fm__hand_take_credit(p, -FM__LOOKER)) {
        atomic_fetch_add_explicit(&p->running, 1, memory_order_relaxed);
        return 0;
    }
    atomic_thread_fence(memory_order_seq_cst);
    if (fm__fifo_count(&p->fifo) > 0) {
        fm__hand_add(p, credit + FM__LOOKER);
        atomic_fetch_add_explicit(&p->running, 1, memory_order_relaxed);
        return 0;
    }
    fm__pool_notify_quiet_locked(p);
    return 1;
}

/* A busy worker that just ended its task leaves if a tune down left the pool
 * over capacity, before it takes another: the workers that stay drain the
 * FIFO. It holds no credit and is no looker, so only running changes. */
static int fm__worker_leave_if_surplus(struct fm_pool *p)
{
    int cap = atomic_load_explicit(&p->capacity, memory_order_relaxed);
    if (cap == FM_UNLIMITED || atomic_load_explicit(&p->running, memory_order_relaxed) <= cap)
        return 0;
    pthread_mutex_lock(&p->lock);
    int leave = fm__pool_surplus_locked(p);
    if (leave) {
        atomic_fetch_sub_explicit(&p->running, 1, memory_order_relaxed);
        fm__pool_trim_locked(p);
        fm__pool_notify_quiet_locked(p);
    }
    pthread_mutex_unlock(&p->lock);
    return leave;
}

/* The worker found nothing to do: leave, or sleep on the idle list. */
static int fm__worker_go_idle(struct fm__worker *w)
{
    struct fm_pool *p = w->pool;
    pthread_mutex_lock(&p->lock);
    if (atomic_load_explicit(&p->closed, memory_order_relaxed) || fm__pool_surplus_locked(p)) {
        int left = fm__worker_try_leave_locked(p);
        if (left)
            fm__pool_trim_locked(p);
        pthread_mutex_unlock(&p->lock);
        return left ? FM__IDLE_EXIT : FM__IDLE_LOOK;
    }
    atomic_store_explicit(&w->state, FM__W_SPIN, memory_order_relaxed);
    w->idle_since = fm__now_coarse_ns();
    fm__idle_push_locked(p, w); /* nidle counts it before it stops looking */
    fm__hand_add(p, -FM__LOOKER);
    fm__pool_notify_quiet_locked(p);
    fm__pool_arm_expiry_locked(p, w->idle_since);
    pthread_mutex_unlock(&p->lock);

    /* Dekker with the submitter (pool.c, fm__pool_after_push): we stopped
     * looking (seq_cst), it published a task and then reads the lookers. At
     * least one of us sees the other: either it finds no looker and wakes an
     * idle worker, or we see its task here and take ourselves back off the
     * idle list. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!fm__fifo_ready(&p->fifo))
        return FM__IDLE_WAIT;
    pthread_mutex_lock(&p->lock);
    int reclaimed = w->on_idle;
    if (reclaimed) {
        fm__idle_unlink_locked(p, w);
        fm__hand_add(p, FM__LOOKER);
    }
    pthread_mutex_unlock(&p->lock);
    /* Not on the list any more: a submitter took us and is handing us GO. */
    return reclaimed ? FM__IDLE_LOOK : FM__IDLE_WAIT;
}

/* Spins, then sleeps, until someone hands this idle worker GO or EXIT. */
static uint32_t fm__worker_wait(struct fm__worker *w)
{
    uint32_t s = FM__W_SPIN;
    if (fm__spin_begin(w->pool)) {
        for (int i = 0; i < FM__IDLE_SPINS && s < FM__W_GO; i++) {
            fm__cpu_relax();
            s = atomic_load_explicit(&w->state, memory_order_acquire);
        }
        fm__spin_end(w->pool);
        if (s >= FM__W_GO)
            return s;
    }
    s = FM__W_SPIN;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &s, FM__W_SLEEP,
                                                 memory_order_acquire, memory_order_acquire))
        return s;
    for (;;) {
        fm__futex_wait(&w->state, FM__W_SLEEP);
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s >= FM__W_GO)
            return s;
    }
}

/* Goes idle; 1 when woken (or reclaimed) to look at the FIFO again, 0 to exit. */
static int fm__worker_sleep(struct fm__worker *w)
{
    int next = fm__worker_go_idle(w);
    if (next == FM__IDLE_WAIT)
        next = fm__worker_wait(w) == FM__W_EXIT ? FM__IDLE_EXIT : FM__IDLE_LOOK;
    return next == FM__IDLE_LOOK;
}

/* ---- finding the next task ----
 * The worker's transitions and what they do to hand (credits only move in
 * hand-off mode, where credit == 1; in queue mode it is 0):
 *   busy -> busy     (a task ended, the next was queued)   +credit
 *   busy -> looking  (a task ended, the FIFO was empty)     +credit +looker
 *   looking -> busy  (took a task)                          -looker
 *   looking -> idle list (go_idle)                          -looker
 *   idle list -> looking (woken by fm__pool_take_idle_locked) +looker
 * A busy worker ending its task frees a credit: the idle worker the next task
 * was promised to is still idle, whoever of them takes it. */
static int fm__worker_next(struct fm__worker *w, int looking, fm_task_fn *fn, void **arg)
{
    struct fm_pool *p = w->pool;
    int64_t credit = p->queue_mode ? 0 : 1;
    if (!looking) {
        if (FM__UNLIKELY(fm__worker_leave_if_surplus(p)))
            return 0;
        if (fm__fifo_pop(&p->fifo, fn, arg)) {
            fm__worker_took(p, credit ? fm__hand_add(p, credit)
                                      : atomic_load_explicit(&p->hand, memory_order_relaxed));
            return 1;
        }
        if (credit && fm__worker_take_waiter(p, fn, arg))
            return 1;
        fm__hand_add(p, credit + FM__LOOKER);
        fm__pool_room_freed(p);
    }
    for (;;) {
        if (fm__fifo_pop(&p->fifo, fn, arg)) {
            fm__worker_took(p, fm__hand_add(p, -FM__LOOKER));
            return 1;
        }
        if (!fm__worker_poll_fifo(p) && !fm__worker_sleep(w))
            return 0;
    }
}

/* ---- thread start and end ---- */

static void fm__worker_enter(struct fm__worker *w)
{
    struct fm_pool *p = w->pool;
    fm__current_worker = w;
    pthread_mutex_lock(&p->lock);
    w->thread = pthread_self();
    w->id = p->next_id++;
    w->all_prev = NULL;
    w->all_next = p->all;
    if (p->all)
        p->all->all_prev = w;
    p->all = w;
    pthread_mutex_unlock(&p->lock);

    char name[32]; /* the kernel keeps 15 characters */
    snprintf(name, sizeof name, "%s-%u", p->name, w->id);
    name[15] = '\0';
    pthread_setname_np(pthread_self(), name);
    if (p->opts.on_worker_start)
        p->opts.on_worker_start(p->opts.ctx);
}

/* The last thing the thread does with the pool: it becomes a zombie for a
 * reaper to join, and the pool may be freed as soon as the lock is dropped. */
static void fm__worker_retire(struct fm__worker *w)
{
    struct fm_pool *p = w->pool;
    if (p->opts.on_worker_exit)
        p->opts.on_worker_exit(p->opts.ctx);
    pthread_mutex_lock(&p->lock);
    if (w->all_prev)
        w->all_prev->all_next = w->all_next;
    else
        p->all = w->all_next;
    if (w->all_next)
        w->all_next->all_prev = w->all_prev;
    p->completed_retired += atomic_load_explicit(&w->completed, memory_order_relaxed);
    p->exited++;
    w->all_next = p->zombies;
    p->zombies = w;
    fm__maint_request(&p->maint, fm__now_ns() + FM__REAP_DELAY_NS);
    if (--p->nthreads == 0)
        pthread_cond_broadcast(&p->gone);
    pthread_mutex_unlock(&p->lock);
}

static void *fm__worker_main(void *arg)
{
    struct fm__worker *w = arg;
    struct fm_pool *p = w->pool;
    fm__worker_enter(w);
    fm_task_fn fn = w->fn;
    void *task_arg = w->arg;
    int looking = fn == NULL; /* counted as a looker by its spawner */
    if (looking && !p->queue_mode) {
        fm__hand_add(p, 1); /* idle from the start: one more credit */
        fm__pool_room_freed(p);
    }
    if (!looking)
        goto run;
    for (;;) {
        if (!fm__worker_next(w, looking, &fn, &task_arg))
            break;
run:
        fm__worker_run(w, fn, task_arg);
        if (FM__UNLIKELY(w->orphaned)) /* we forked inside the task: see pool.c */
            return NULL;
        looking = 0;
    }
    /* Told to leave while it had just seen a task: it may have been the one
     * counted on for it (go_idle), so make sure some worker takes it. */
    fm__pool_add_worker(p);
    fm__worker_retire(w);
    return NULL;
}

/* Starts a worker whose capacity slot was reserved (fm__pool_reserve_locked,
 * looking = fn == NULL). fn may be NULL: the worker then looks at the FIFO and
 * goes idle. On failure the slot is given back: -ENOMEM or -EAGAIN. Lock not
 * held. */
int fm__pool_spawn_reserved(struct fm_pool *p, fm_task_fn fn, void *arg)
{
    /* The pool's first worker: start the maintenance thread from here, not
     * from the first worker that asks it for a tick (expiry), which would get
     * a glibc malloc arena of its own for it (the thread that calls
     * pthread_create allocates the new thread's TLS). If it fails the first
     * request starts it. */
    if (atomic_load_explicit(&p->created, memory_order_relaxed) == 0 && !fm__current_worker)
        fm__maint_start();
    struct fm__thread_map map;
    int rc = fm__thread_map(&map, sizeof(struct fm__worker), p->opts.stack_size);
    if (rc == 0) {
        struct fm__worker *w = map.base; /* zero-filled by mmap */
        w->map = map;
        w->pool = p;
        w->fn = fn;
        w->arg = arg;
        atomic_init(&w->state, FM__W_GO);
        pthread_t t;
        /* Counted before the start and taken back if it fails: the thread
         * may run, retire and be joined before pthread_create returns here,
         * and a count made after would lag its exit (threads_exited). */
        atomic_fetch_add_explicit(&p->created, 1, memory_order_relaxed);
        rc = fm__thread_start_mapped(&t, &map, fm__worker_main, w);
        if (rc == 0)
            return 0;
        atomic_fetch_sub_explicit(&p->created, 1, memory_order_relaxed);
        fm__thread_unmap(&map);
        if (rc != -ENOMEM)
            rc = -EAGAIN;
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_sub_explicit(&p->running, 1, memory_order_relaxed);
    if (!fn)
        fm__hand_add(p, -FM__LOOKER);
    fm__pool_notify_quiet_locked(p);
    if (--p->nthreads == 0)
        pthread_cond_broadcast(&p->gone);
    struct fm__waiter *blocked = fm__pool_broadcast_room_locked(p); /* the slot is free again */
    pthread_mutex_unlock(&p->lock);
    fm__waiters_release(blocked, FM__WAITER_RETRY);
    if (!fn)
        fm__pool_rescue(p);
    return rc;
}

/* Joins every zombie. block = 0: only those already finished (maintenance
 * tick, lock may be held by the caller); block = 1: waits for each (lock not
 * held). */
void fm__pool_reap(struct fm_pool *p, int block)
{
    struct fm__worker **link = &p->zombies, *z;
    if (block) {
        pthread_mutex_lock(&p->lock);
        z = p->zombies;
        p->zombies = NULL;
        pthread_mutex_unlock(&p->lock);
        while (z) {
            struct fm__worker *next = z->all_next;
            pthread_join(z->thread, NULL);
            fm__threads_joined(1);
            fm__thread_unmap(&z->map);
            z = next;
        }
        return;
    }
    while ((z = *link)) {
        if (pthread_tryjoin_np(z->thread, NULL) == 0) {
            fm__threads_joined(1);
            *link = z->all_next;
            fm__thread_unmap(&z->map);
        } else {
            link = &z->all_next;
        }
    }
}
