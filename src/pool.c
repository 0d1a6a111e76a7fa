/* The worker pool: creation, submit (hand-off and queue mode), the counters,
 * tune, wait, release/reboot, destroy. Worker threads live in worker.c; the
 * lock table is in pool_internal.h. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "pool_internal.h"

#define FM__DEFAULT_EXPIRY_NS FM__NSEC_PER_SEC
#define FM__DEFAULT_STACK (256 * 1024)

static int fm__pool_is_own_task(const struct fm_pool *p)
{
    return fm__current_worker && fm__current_worker->pool == p;
}

/* ---- blocking ---- */

/* May this submitter wait? 0, or the error it gets instead. Lock held. */
static int fm__pool_may_block_locked(struct fm_pool *p, int nowait, int already_counted)
{
    if (nowait || p->opts.nonblocking)
        return -EAGAIN;
    int others = atomic_load_explicit(&p->waiting, memory_order_relaxed) - already_counted;
    if (p->opts.max_blocking > 0 && others >= p->opts.max_blocking)
        return -EAGAIN;
    if (fm__pool_is_own_task(p))
        return -EDEADLK; /* waiting for a worker while occupying one */
    return 0;
}

/* ---- admission ----
 * Queue mode admits a task when the FIFO has a free cell. Hand-off mode admits
 * it when it can claim a credit (an idle worker no other task was promised)
 * and then passes it through the FIFO to whichever worker looks first; or it
 * starts a new worker with the task while running < capacity. */

/* Claims a credit and queues the task at *pos. 1 on success, 0 if no credit
 * or no FIFO room (the credit is given back). */
static int fm__handoff_try(struct fm_pool *p, fm_task_fn fn, void *arg, size_t *pos)
{
    if (!fm__hand_take_credit(p, 0))
        return 0;
    if (FM__UNLIKELY(!fm__fifo_push(&p->fifo, fn, arg, pos))) {
        atomic_fetch_add_explicit(&p->hand, 1, memory_order_seq_cst);
        return 0;
    }
    return 1;
}

/* Queues the task if the pool admits it now; the caller then calls
 * fm__pool_after_push with no lock held. */
static int fm__pool_try_push(struct fm_pool *p, fm_task_fn fn, void *arg, size_t *pos)
{
    return p->queue_mode ? fm__fifo_push(&p->fifo, fn, arg, pos) : fm__handoff_try(p, fn, arg, pos);
}

/* A hint that fm__pool_try_push may succeed now. */
static int fm__pool_has_room(struct fm_pool *p)
{
    if (p->queue_mode)
        return fm__fifo_has_room(&p->fifo);
    return fm__hand_credits(atomic_load_explicit(&p->hand, memory_order_relaxed)) > 0;
}

/* ---- making sure a queued task gets a worker ---- */

/* Rounds a submitter waits for a worker to take its task, or to start looking,
 * before it wakes or starts one; and how many submits skip that wait after it
 * failed (the workers are then busy with long tasks, and the wait only costs). */
#define FM__TAKER_SPINS 256
#define FM__TAKER_SKIP 64

static int fm__pool_spin_for_taker(struct fm_pool *p, size_t pos)
{
    int skip = atomic_load_explicit(&p->taker_skip, memory_order_relaxed);
    if (skip > 0 || fm__ncpu() < 2) {
        atomic_store_explicit(&p->taker_skip, skip - 1, memory_order_relaxed);
        return 0;
    }
    for (int i = 0; i < FM__TAKER_SPINS; i++) {
        fm__cpu_relax();
        if (!fm__fifo_unconsumed(&p->fifo, pos) ||
            fm__hand_lookers(atomic_load_explicit(&p->hand, memory_order_acquire)) > 0)
            return 1;
    }
    atomic_store_explicit(&p->taker_skip, FM__TAKER_SKIP, memory_order_relaxed);
    return 0;
}

/* After a push at pos: if no worker is looking at the FIFO, bring one in (an
 * idle one, or a new one while running < capacity), unless a busy worker takes
 * the task within a short spin. A task thus waits in the FIFO only while every
 * worker is busy and the pool is full (queue mode), never behind a busy worker
 * while another is idle (hand-off mode, where the task holds a credit). */
static void fm__pool_after_push(struct fm_pool *p, size_t pos)
{
    /* Dekker with fm__worker_go_idle: the task is published (release store of
     * its cell), then we read the lookers; a worker going to sleep stops
     * counting as a looker, then reads the FIFO. With the fences at least one
     * of us sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    if (fm__hand_lookers(atomic_load_explicit(&p->hand, memory_order_seq_cst)) > 0)
        return;
    /* Every worker is busy (none idle, none to start): each looks at the FIFO
     * when its task ends. */
    if (atomic_load_explicit(&p->nidle, memory_order_relaxed) == 0 && !fm__pool_can_spawn(p))
        return;
    if (fm__pool_spin_for_taker(p, pos))
        return;
    fm__pool_add_worker(p);
}

/* ---- waiting for room ---- */

/* Rounds a submitter that found the pool saturated polls for room before it
 * blocks (512 pauses took 24-32 us on the 2-CPU test machine): a worker busy
 * with a short task frees its slot within this, while a blocked submitter
 * costs a futex sleep, and a wake-up on the path of the worker that frees
 * the slot. */
#define FM__SUBMIT_SPINS 512
#define FM__ROOM_SKIP_MAX 64

/* After a spin that found no room the next few saturated submits block at
 * once: the tasks are long, and a spinning submitter only takes CPU from the
 * workers it waits for. How many: room_backoff, which doubles (up to
 * FM__ROOM_SKIP_MAX) with each failed spin and halves with each spin that
 * found room. Tasks that outlast every spin soon block at once, as with a
 * fixed skip; short tasks whose worker was off its CPU during one spin cost a
 * sleep or two, not a run of FM__ROOM_SKIP_MAX sleeps (each of which also
 * leaves the workers without tasks, so that they go idle and are woken
 * again). Hints: relaxed, and racing submitters may lose an update. */
static void fm__pool_room_spun(struct fm_pool *p, int found)
{
    int backoff = atomic_load_explicit(&p->room_backoff, memory_order_relaxed);
    if (found)
        backoff /= 2;
    else
        backoff = backoff == 0 ? 1 : backoff < FM__ROOM_SKIP_MAX ? 2 * backoff : backoff;
    atomic_store_explicit(&p->room_backoff, backoff, memory_order_relaxed);
    if (!found)
        atomic_store_explicit(&p->room_skip, backoff, memory_order_relaxed);
}

static int fm__pool_spin_for_room(struct fm_pool *p, int64_t timeout_ns)
{
    if (timeout_ns == 0 || p->opts.nonblocking || fm__ncpu() < 2)
        return 0;
    int skip = atomic_load_explicit(&p->room_skip, memory_order_relaxed);
    if (skip > 0) {
        atomic_store_explicit(&p->room_skip, skip - 1, memory_order_relaxed);
        return 0;
    }
    int found = 0;
    for (int i = 0; i < FM__SUBMIT_SPINS && !found; i++) {
        fm__cpu_relax();
        found = fm__pool_has_room(p);
    }
    fm__pool_room_spun(p, found);
    return found;
}

/* The pool did not admit the task at once: start a worker for it, or wait.
 * Lock not held on entry or return. */
static int fm__pool_submit_slow(struct fm_pool *p, fm_task_fn fn, void *arg, int64_t deadline,
                                int nowait)
{
    int timed_out = 0, added = 0, rc;
    struct fm__waiter w = {.fn = fn, .arg = arg};
    size_t pos;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (atomic_load_explicit(&p->closed, memory_order_relaxed)) {
            rc = -ESHUTDOWN;
            break;
        }
        /* Count ourselves before we retry: a worker that frees room after our
         * retry sees waiting > 0 and signals (worker.c, fm__pool_room_freed). */
        atomic_fetch_add_explicit(&p->waiting, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        int no_worker = atomic_load_explicit(&p->running, memory_order_relaxed) == 0;
        if (!(p->queue_mode && no_worker) && fm__pool_try_push(p, fn, arg, &pos)) {
            /* Room for more: pass the wake-up on to the next blocked submitter. */
            struct fm__waiter *next = NULL;
            if (atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed) > 1 &&
                fm__pool_has_room(p))
                next = fm__pool_signal_room_locked(p);
            pthread_mutex_unlock(&p->lock);
            fm__waiters_release(next, FM__WAITER_RETRY);
            fm__pool_after_push(p, pos);
            return 0;
        }
        /* Hand-off mode, or a queue-mode pool with no worker at all: start
         * one with the task, so that if no thread can be started the caller
         * hears so (-EAGAIN) instead of leaving a task nobody will run. */
        if ((!p->queue_mode || no_worker) && fm__pool_can_spawn(p)) {
            atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
            fm__pool_reserve_locked(p, 0);
            pthread_mutex_unlock(&p->lock);
            return fm__pool_spawn_reserved(p, fn, arg);
        }
        if (p->queue_mode && !added && fm__pool_can_spawn(p)) {
            /* The FIFO is full but the pool is not: one more worker makes room. */
            atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
            pthread_mutex_unlock(&p->lock);
            fm__pool_add_worker(p);
            pthread_mutex_lock(&p->lock);
            added = 1;
            continue;
        }
        rc = timed_out ? -ETIMEDOUT : fm__pool_may_block_locked(p, nowait, 1);
        if (rc) {
            atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
            break;
        }
        int outcome = fm__pool_wait_room_locked(p, &w, deadline); /* drops the lock */
        if (outcome == FM__WAITER_TAKEN) /* the taker counted us off waiting */
            return 0;
        pthread_mutex_lock(&p->lock);
        /* After a timeout, look once more: a worker may have come back. */
        timed_out = outcome == FM__WAITER_TIMEDOUT;
        atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
        added = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int fm__pool_push(struct fm_pool *p, fm_task_fn fn, void *arg, int64_t timeout_ns)
{
    size_t pos;
    if (FM__UNLIKELY(p->queue_mode && atomic_load_explicit(&p->running, memory_order_relaxed) == 0))
        return fm__pool_submit_slow(p, fn, arg, fm__deadline_after(timeout_ns), timeout_ns == 0);
    if (FM__LIKELY(fm__pool_try_push(p, fn, arg, &pos)) ||
        (fm__pool_spin_for_room(p, timeout_ns) && fm__pool_try_push(p, fn, arg, &pos))) {
        fm__pool_after_push(p, pos);
        return 0;
    }
    return fm__pool_submit_slow(p, fn, arg, fm__deadline_after(timeout_ns), timeout_ns == 0);
}

/* ---- submit ---- */

static int fm__pool_submit(struct fm_pool *p, fm_task_fn fn, void *arg, int64_t timeout_ns)
{
    if (FM__UNLIKELY(!p || !fn))
        return -EINVAL;
    /* entered, then closed: seq_cst pairs with release's store of closed and
     * its reads of entered/left (fm__pool_wait_submitters). Either this
     * submit sees the pool closed, or release_timeout waits until it left. */
    atomic_fetch_add_explicit(&p->entered, 1, memory_order_seq_cst);
    int rc;
    if (FM__UNLIKELY(atomic_load_explicit(&p->closed, memory_order_seq_cst)))
        rc = -ESHUTDOWN;
    else
        rc = fm__pool_push(p, fn, arg, timeout_ns);
    if (FM__UNLIKELY(rc))
        atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->left, 1, memory_order_release);
    return rc;
}

FM_API int fm_pool_submit(fm_pool *p, fm_task_fn fn, void *arg)
{
    return fm__pool_submit(p, fn, arg, FM_FOREVER);
}

FM_API int fm_pool_submit_timeout(fm_pool *p, fm_task_fn fn, void *arg, int64_t timeout_ns)
{
    return fm__pool_submit(p, fn, arg, timeout_ns < 0 ? FM_FOREVER : timeout_ns);
}

FM_API int fm_pool_invoke(fm_pool *p, void *arg)
{
    if (!p || !p->opts.fn)
        return -EINVAL;
    return fm__pool_submit(p, p->opts.fn, arg, FM_FOREVER);
}

/* ---- counters ---- */

#define FM__LOAD(p, field) atomic_load_explicit(&(p)->field, memory_order_relaxed)

FM_API int fm_pool_running(const fm_pool *p)
{
    return p ? FM__LOAD(p, running) : -EINVAL;
}

FM_API int fm_pool_cap(const fm_pool *p)
{
    return p ? FM__LOAD(p, capacity) : -EINVAL;
}

FM_API int fm_pool_available(const fm_pool *p)
{
    if (!p)
        return -EINVAL;
    int cap = FM__LOAD(p, capacity), running = FM__LOAD(p, running);
    if (cap == FM_UNLIMITED)
        return -1;
    return running < cap ? cap - running : 0;
}

FM_API int fm_pool_waiting(const fm_pool *p)
{
    return p ? FM__LOAD(p, waiting) : -EINVAL;
}

FM_API int fm_pool_is_closed(const fm_pool *p)
{
    return p ? FM__LOAD(p, closed) : -EINVAL;
}

FM_API int fm_pool_stats(const fm_pool *cp, struct fm_pool_stats *out)
{
    if (!cp || !out)
        return -EINVAL;
    struct fm_pool *p = (struct fm_pool *)cp; /* the lock is not part of the value */
    /* rejected, then completed, then entered: submitted >= completed holds in
     * every snapshot. */
    uint64_t rejected = atomic_load_explicit(&p->rejected, memory_order_acquire);
    pthread_mutex_lock(&p->lock);
    uint64_t completed = p->completed_retired;
    for (struct fm__worker *w = p->all; w; w = w->all_next)
        completed += atomic_load_explicit(&w->completed, memory_order_relaxed);
    out->capacity = FM__LOAD(p, capacity);
    out->running = FM__LOAD(p, running);
    out->idle = FM__LOAD(p, nidle);
    out->threads_created = atomic_load_explicit(&p->created, memory_order_relaxed);
    out->threads_exited = p->exited;
    pthread_mutex_unlock(&p->lock);
    out->waiting = FM__LOAD(p, waiting);
    out->queued = fm__fifo_count(&p->fifo);
    out->queue_capacity = p->queue_mode ? fm__fifo_capacity(&p->fifo) : 0;
    out->completed = completed;
    out->submitted = atomic_load_explicit(&p->entered, memory_order_acquire) - rejected;
    out->rejected = rejected;
    return 0;
}

/* ---- expiry (on the maintenance thread) ---- */

static int64_t fm__pool_expiry_tick(fm__maint_client *c, int64_t now)
{
    struct fm_pool *p = (struct fm_pool *)((char *)c - offsetof(struct fm_pool, maint));
    int64_t next = INT64_MAX;
    pthread_mutex_lock(&p->lock);
    if (p->expiry_ns >= 0) {
        int64_t coarse = fm__now_coarse_ns();
        struct fm__worker *w;
        /* The list is LIFO: the tail is the worker idle the longest. */
        while ((w = p->idle_tail) && coarse - w->idle_since >= p->expiry_ns &&
               fm__pool_retire_idle_locked(p, w) == 0) {
        }
        if (w) /* coarse lags monotonic by a tick or so; aim a little late */
            next = now + (w->idle_since + p->expiry_ns - coarse) + FM__NSEC_PER_SEC / 250;
        p->expiry_armed = w != NULL;
    }
    fm__pool_reap(p, 0);
    if (p->zombies && next > now + FM__NSEC_PER_SEC / 100)
        next = now + FM__NSEC_PER_SEC / 100; /* still finishing: join them soon */
    pthread_mutex_unlock(&p->lock);
    return next;
}

/* ---- the registry of pools, for fork ---- */

static pthread_mutex_t fm__registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fm_pool *fm__registry;

void fm__pool_atfork_prepare(void)
{
    pthread_mutex_lock(&fm__registry_lock);
    for (struct fm_pool *p = fm__registry; p; p = p->reg_next)
        pthread_mutex_lock(&p->lock);
}

void fm__pool_atfork_parent(void)
{
    for (struct fm_pool *p = fm__registry; p; p = p->reg_next)
        pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&fm__registry_lock);
}

static int fm__pool_init_sync(struct fm_pool *p)
{
    int rc = -pthread_mutex_init(&p->lock, NULL);
    if (!rc)
        rc = fm__cond_init(&p->quiet);
    if (!rc)
        rc = fm__cond_init(&p->gone);
    return rc;
}

static void fm__free_worker_list(struct fm__worker *w)
{
    while (w) {
        struct fm__worker *next = w->all_next;
        if (w == fm__current_worker)
            w->orphaned = 1; /* runs on this mapping: it ends with its task */
        else
            fm__thread_unmap(&w->map);
        w = next;
    }
}

/* In the child only the forking thread exists: every pool is released and
 * forgets the workers it had; tasks queued in the parent are the parent's. */
static void fm__pool_after_fork_child(struct fm_pool *p)
{
    fm__pool_init_sync(p);
    fm__free_worker_list(p->all);
    fm__free_worker_list(p->zombies);
    p->all = p->zombies = p->idle_head = p->idle_tail = NULL;
    p->nthreads = p->quiet_waiters = p->expiry_armed = p->spawns_pending = 0;
    atomic_store(&p->running, 0);
    atomic_store(&p->nidle, 0);
    atomic_store(&p->waiting, 0);
    p->waiters = p->waiters_tail = NULL;
    atomic_store(&p->nspinning, 0);
    atomic_store(&p->hand, 0);
    atomic_store(&p->closed, 1);
    fm__fifo_reset(&p->fifo);
    p->maint.deadline = INT64_MAX;
    p->spawner.deadline = INT64_MAX;
    p->watch.deadline = INT64_MAX;
    p->watch_armed = 0;
}

void fm__pool_atfork_child(void)
{
    for (struct fm_pool *p = fm__registry; p; p = p->reg_next)
        fm__pool_after_fork_child(p);
    pthread_mutex_init(&fm__registry_lock, NULL);
}

static void fm__registry_add(struct fm_pool *p)
{
    fm__atfork_init();
    pthread_mutex_lock(&fm__registry_lock);
    p->reg_prev = NULL;
    p->reg_next = fm__registry;
    if (fm__registry)
        fm__registry->reg_prev = p;
    fm__registry = p;
    pthread_mutex_unlock(&fm__registry_lock);
}

static void fm__registry_remove(struct fm_pool *p)
{
    pthread_mutex_lock(&fm__registry_lock);
    if (p->reg_prev)
        p->reg_prev->reg_next = p->reg_next;
    else
        fm__registry = p->reg_next;
    if (p->reg_next)
        p->reg_next->reg_prev = p->reg_prev;
    pthread_mutex_unlock(&fm__registry_lock);
}

/* ---- lifecycle ---- */

/* Starts workers until running reaches capacity (preallocated pools). */
static int fm__pool_fill(struct fm_pool *p)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (!fm__pool_can_spawn(p)) {
            pthread_mutex_unlock(&p->lock);
            return 0;
        }
        fm__pool_reserve_locked(p, 1);
        pthread_mutex_unlock(&p->lock);
        int rc = fm__pool_spawn_reserved(p, NULL, NULL);
        if (rc)
            return rc;
    }
}

/* In hand-off mode the FIFO only carries tasks between a submitter and the
 * idle worker it claimed, so it never holds more than the pool's workers; past
 * its size a submit starts a worker or waits as if no worker were idle. */
static size_t fm__handoff_fifo_size(int capacity)
{
    if (capacity == FM_UNLIMITED)
        return 1024;
    return capacity < 16384 ? (size_t)capacity : 16384;
}

static int fm__pool_check_args(fm_pool **out, int capacity, const fm_pool_opts *o)
{
    if (!out)
        return -EINVAL;
    if (capacity <= 0 && capacity != FM_UNLIMITED)
        return -EINVAL;
    if (o->prealloc && capacity == FM_UNLIMITED)
        return -EINVAL;
    if (o->max_blocking < 0)
        return -EINVAL;
    return 0;
}

static void fm__pool_free(struct fm_pool *p)
{
    fm__fifo_free(&p->fifo);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->quiet);
    pthread_cond_destroy(&p->gone);
    fm__sys.free(p);
}

FM_API int fm_pool_new(fm_pool **out, int capacity, const fm_pool_opts *opts)
{
    static const fm_pool_opts defaults;
    const fm_pool_opts *o = opts ? opts : &defaults;
    int rc = fm__pool_check_args(out, capacity, o);
    if (rc)
        return rc;
    *out = NULL;
    struct fm_pool *p = fm__sys.aligned_alloc(FM__CACHELINE, sizeof *p);
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    p->opts = *o;
    snprintf(p->name, sizeof p->name, "%s", o->name ? o->name : "fm");
    p->opts.name = p->name;
    if (!p->opts.stack_size)
        p->opts.stack_size = FM__DEFAULT_STACK;
    p->expiry_ns = o->expiry_ns == 0 ? FM__DEFAULT_EXPIRY_NS : o->expiry_ns;
    p->queue_mode = o->queue_capacity > 0;
    atomic_init(&p->capacity, capacity);
    rc = fm__fifo_init(&p->fifo, p->queue_mode ? o->queue_capacity : fm__handoff_fifo_size(capacity));
    if (rc == 0 && (rc = fm__pool_init_sync(p)) != 0)
        fm__fifo_free(&p->fifo);
    if (rc) {
        fm__sys.free(p);
        return rc;
    }
    p->maint.tick = fm__pool_expiry_tick;
    fm__maint_register(&p->maint);
    p->spawner.tick = fm__pool_spawn_tick;
    fm__maint_register(&p->spawner);
    fm__watch_init(p); /* the slow-task watchdog, if asked for (diag.c) */
    fm__registry_add(p);
    if (o->prealloc && (rc = fm__pool_fill(p)) != 0) {
        fm_pool_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

FM_API int fm_pool_tune(fm_pool *p, int capacity)
{
    if (!p || capacity <= 0 || p->opts.prealloc)
        return -EINVAL;
    pthread_mutex_lock(&p->lock);
    int old = atomic_load_explicit(&p->capacity, memory_order_relaxed);
    if (old == FM_UNLIMITED) {
        pthread_mutex_unlock(&p->lock);
        return -EINVAL;
    }
    atomic_store_explicit(&p->capacity, capacity, memory_order_relaxed);
    struct fm__waiter *blocked = NULL;
    if (capacity > old)
        blocked = fm__pool_broadcast_room_locked(p); /* they may start workers */
    /* Idle surplus leaves now; busy surplus when it comes back idle. */
    fm__pool_trim_locked(p);
    pthread_mutex_unlock(&p->lock);
    fm__waiters_release(blocked, FM__WAITER_RETRY);
    return 0;
}

FM_API int fm_pool_wait(fm_pool *p, int64_t timeout_ns)
{
    if (!p)
        return -EINVAL;
    if (fm__pool_is_own_task(p))
        return -EDEADLK;
    int64_t deadline = fm__deadline_after(timeout_ns);
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    p->quiet_waiters++;
    while (!fm__pool_is_quiet_locked(p)) {
        if (fm__cond_wait_until(&p->quiet, &p->lock, deadline) == ETIMEDOUT &&
            !fm__pool_is_quiet_locked(p)) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    p->quiet_waiters--;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

FM_API int fm_pool_release(fm_pool *p)
{
    if (!p)
        return -EINVAL;
    struct fm__waiter *blocked = NULL;
    pthread_mutex_lock(&p->lock);
    if (!atomic_load_explicit(&p->closed, memory_order_relaxed)) {
        /* seq_cst, not release: this store and the later loads of entered
         * (fm__pool_wait_submitters) are the Dekker pair of fm__pool_submit's
         * increment of entered and load of closed; a release store could pass
         * those loads, and a submit in flight go unseen (tests/models/pool_close.cpp). */
        atomic_store_explicit(&p->closed, 1, memory_order_seq_cst);
        fm__pool_trim_locked(p); /* idle workers leave now, busy ones after their task */
        blocked = fm__pool_broadcast_room_locked(p); /* they get -ESHUTDOWN */
        if (p->quiet_waiters && fm__pool_is_quiet_locked(p))
            pthread_cond_broadcast(&p->quiet);
    }
    pthread_mutex_unlock(&p->lock);
    fm__waiters_release(blocked, FM__WAITER_RETRY);
    return 0;
}

/* Waits until every worker thread has left, then joins them all. */
static int fm__pool_join_all(struct fm_pool *p, int64_t deadline)
{
    pthread_mutex_lock(&p->lock);
    while (p->nthreads > 0) {
        if (fm__cond_wait_until(&p->gone, &p->lock, deadline) == ETIMEDOUT && p->nthreads > 0) {
            pthread_mutex_unlock(&p->lock);
            return -ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&p->lock);
    fm__pool_reap(p, 1);
    return 0;
}

/* Waits until every submit that started before the pool closed has returned:
 * one accepted just before may still start a worker for its task. Submits
 * return promptly once the pool is closed (blocked ones are woken), so this
 * polls. */
static int fm__pool_wait_submitters(struct fm_pool *p, int64_t deadline)
{
    while (atomic_load_explicit(&p->left, memory_order_acquire) !=
           atomic_load_explicit(&p->entered, memory_order_seq_cst)) {
        if (fm__now_ns() >= deadline)
            return -ETIMEDOUT;
        sched_yield();
    }
    return 0;
}

FM_API int fm_pool_release_timeout(fm_pool *p, int64_t timeout_ns)
{
    if (!p)
        return -EINVAL;
    fm_pool_release(p);
    if (fm__pool_is_own_task(p))
        return -EDEADLK;
    int64_t deadline = fm__deadline_after(timeout_ns);
    int rc = fm__pool_wait_submitters(p, deadline);
    return rc ? rc : fm__pool_join_all(p, deadline);
}

FM_API int fm_pool_reboot(fm_pool *p)
{
    if (!p)
        return -EINVAL;
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->closed, 0, memory_order_release);
    pthread_mutex_unlock(&p->lock);
    return p->opts.prealloc ? fm__pool_fill(p) : 0;
}

FM_API void fm_pool_destroy(fm_pool *p)
{
    if (!p)
        return;
    if (fm__pool_is_own_task(p))
        fm__die("fm_pool_destroy called from inside a task of the pool it destroys");
    fm_pool_release(p);
    fm__pool_join_all(p, INT64_MAX); /* also waits for starts left to the spawner */
    fm__maint_unregister(&p->spawner);
    fm__maint_unregister(&p->maint);
    fm__watch_fini(p); /* waits out a running watchdog tick */
    fm__registry_remove(p);
    fm__pool_reap(p, 1); /* a tick may have left some behind while we unregistered */
    fm__pool_free(p);
}

/* ---- the default pool ---- */

static fm_pool *fm__default_pool;
static pthread_once_t fm__default_once = PTHREAD_ONCE_INIT;

static void fm__default_pool_create(void)
{
    fm_pool_new(&fm__default_pool, FM_UNLIMITED, NULL);
}

FM_API fm_pool *fm_default_pool(void)
{
    pthread_once(&fm__default_once, fm__default_pool_create);
    return fm__default_pool;
}

FM_API int fm_submit(fm_task_fn fn, void *arg)
{
    fm_pool *p = fm_default_pool();
    return p ? fm_pool_submit(p, fn, arg) : -ENOMEM;
}
