/* The worker pool's internals, shared by pool.c (the API, submit, lifecycle)
 * and worker.c (the worker threads).
 *
 * Which lock each field needs ("lock" = fm_pool.lock):
 *
 * | field                               | written                    | read                  |
 * |-------------------------------------|----------------------------|-----------------------|
 * | capacity, closed                    | under lock, atomic store   | anywhere, atomic load |
 * | running, nidle                      | under lock, atomic RMW     | anywhere, atomic load |
 * | hand, nspinning                     | anywhere, atomic RMW       | anywhere, atomic load |
 * | waiting                             | under lock, atomic RMW     | anywhere, atomic load |
 * | idle list, all list, zombies        | under lock                 | under lock            |
 * | waiter list, fm__waiter.linked/next | under lock (pool_wait.c)   | under lock            |
 * | fm__waiter.state                    | its waker, atomic store    | its waiter, atomic    |
 * | nthreads, quiet_waiters, counters   | under lock                 | under lock            |
 * |   exited/completed_retired          |                            |                       |
 * | created                             | atomic RMW                 | atomic load           |
 * | spawns_pending                      | under lock                 | under lock            |
 * | fifo                                | lock-free (fifo.h)         | lock-free             |
 * | entered, left, rejected             | anywhere, atomic RMW       | anywhere              |
 * | worker.state                        | see the state machine      | lock-free             |
 * | worker.fn/arg                       | by the spawner, before the thread starts       |
 * | worker.completed                    | its own thread only        | anywhere, atomic load |
 * | worker.cur_fn/cur_arg               | its own thread only        | anywhere, atomic load |
 * |   (the task it runs; see diag.c)    |   (release stores)         |   (acquire, seqlock)  |
 * | worker.seen_seq/seen_at/watch_seen  | readers in diag.c, lock    | under lock            |
 * | watch_armed                         | under lock                 | under lock            |
 *
 * Lock order: registry lock -> pool lock -> maintenance lock.
 *
 * Counting invariants (under lock):
 *   running  = workers that hold a capacity slot: on the idle list, or busy,
 *              or reserved by a spawn in progress. Exiting workers gave theirs back.
 *              New workers are only started while running < capacity.
 *   nidle    = length of the idle list; nidle <= running.
 *   hand     = lookers (both modes) and credits (hand-off mode), below.
 *   A worker not on the idle list always looks at the FIFO before it sleeps.
 *   nthreads = threads that exist or are being started and have not yet put
 *              themselves on the zombie list; >= running. A start left to the
 *              maintenance thread (spawns_pending) counts from its reservation.
 *   spawns_pending <= running - nidle: each is a reserved slot, not yet started.
 */
#ifndef FM_POOL_INTERNAL_H
#define FM_POOL_INTERNAL_H

#include "fifo.h"
#include "internal.h"

/* worker.state, the worker's futex word.
 *   SPIN  -> SLEEP  the worker itself, after spinning (CAS)
 *   SPIN|SLEEP -> GO | EXIT  whoever took it off the idle list (exchange; wakes
 *                            the futex when the old value was SLEEP). GO: look
 *                            at the FIFO; EXIT: leave the pool.
 *   GO|EXIT -> SPIN the worker itself, under lock, as it goes back on the idle list */
enum { FM__W_SPIN = 0, FM__W_SLEEP = 1, FM__W_GO = 2, FM__W_EXIT = 3 };

struct fm__worker {
    _Atomic uint32_t state;
    fm_task_fn fn; /* the first task, given at spawn; NULL: none */
    void *arg;
    struct fm_pool *pool;
    struct fm__worker *idle_prev, *idle_next; /* idle list; on_idle says if linked */
    struct fm__worker *all_prev, *all_next;   /* every thread that has started */
    int on_idle;
    int orphaned;       /* fork child: this thread's pool is gone; it ends with its task */
    int64_t idle_since; /* coarse clock, when it last went idle */
    pthread_t thread;   /* set by the worker itself before it links into the all list */
    unsigned id;        /* for the thread name */
    struct fm__thread_map map; /* the mapping this struct heads (os/linux.c) */
    _Atomic uint64_t completed FM__ALIGNED; /* tasks this worker ran; its own line */
    /* The task running now, for fm_pool_dump and the watchdog (diag.c):
     * cur_arg, then cur_fn stored (release) before the task runs; cur_fn
     * NULL, then completed + 1 (release) after it. A reader takes completed,
     * the two, completed again (acquire) and keeps the copy only when both
     * reads of completed agree: completed then numbers the task. The worker
     * reads no clock: readers note when they first saw a task (seen_*). */
    _Atomic(fm_task_fn) cur_fn;
    _Atomic(void *) cur_arg;
    uint64_t seen_seq;   /* 1 + number of the task first seen at seen_at; 0: none */
    int64_t seen_at;     /* coarse clock */
    uint64_t watch_seen; /* 1 + number of the task last reported slow */
};

/* A submitter blocked for room, on its own stack (pool_wait.c). state is its
 * futex word: ASLEEP until a waker that unlinked it stores the outcome. */
enum { FM__WAITER_ASLEEP, FM__WAITER_RETRY, FM__WAITER_TAKEN, FM__WAITER_TIMEDOUT };

struct fm__waiter {
    _Atomic uint32_t state;
    fm_task_fn fn; /* its task: a hand-off worker may take it over */
    void *arg;
    int linked;    /* on the waiter list: nobody has picked it to wake yet */
    struct fm__waiter *prev, *next;
};

struct fm_pool {
    /* Read-mostly after creation. */
    fm_pool_opts opts;
    char name[16];
    int queue_mode;          /* queue_capacity > 0 */
    int64_t expiry_ns;       /* resolved; <0 never */
    _Atomic int capacity;    /* FM_UNLIMITED or > 0 */
    _Atomic int closed;

    /* Written by submitters on every submit. */
    _Atomic uint64_t entered FM__ALIGNED; /* submit calls past the argument checks */
    _Atomic uint64_t left;                /* ... that have returned (entered - left: in flight) */
    _Atomic uint64_t rejected;
    _Atomic int taker_skip; /* submits left that skip the wait for a taker (pool.c) */
    _Atomic int room_skip;  /* saturated submits left that block without spinning */
    _Atomic int room_backoff; /* the skip after the next failed spin, halved or doubled (pool.c) */

    /* Changed on idle/busy transitions, spawns and exits; read by submitters. */
    _Atomic int running FM__ALIGNED;
    _Atomic int nidle;
    _Atomic int waiting;
    _Atomic int nspinning; /* workers spinning for work now; capped (worker.c) */
    /* Credits (low 32 bits) and lookers (high 32 bits) in one word, so that
     * most worker transitions are a single RMW.
     *   credits = hand-off mode: idle workers not yet claimed by a submitter;
     *             a submit claims one before it queues its task, so a task
     *             never waits for a busy worker. Always 0 in queue mode.
     *   lookers = workers awake and about to look at the FIFO (a sleeping
     *             worker is woken, or a new one started, only when there is none). */
    _Atomic int64_t hand;

    struct fm__fifo fifo; /* queue mode: the bounded queue; hand-off: submitter -> claimed worker */

    pthread_mutex_t lock FM__ALIGNED;
    struct fm__waiter *waiters, *waiters_tail; /* blocked submitters, oldest first */
    pthread_cond_t quiet;     /* fm_pool_wait: nothing queued or running */
    pthread_cond_t gone;      /* release_timeout/destroy: nthreads reached 0 */
    struct fm__worker *idle_head, *idle_tail; /* head = most recently idle (LIFO reuse) */
    struct fm__worker *all;   /* threads that started and are not zombies */
    struct fm__worker *zombies; /* exited threads not yet joined, linked by all_next */
    int nthreads;
    int quiet_waiters;
    unsigned next_id;
    _Atomic uint64_t created; /* threads started; counted by the spawner */
    int spawns_pending;       /* reserved starts the maintenance thread makes (worker.c) */
    uint64_t exited, completed_retired;
    int expiry_armed;         /* a maintenance tick is requested for expiry */
    fm__maint_client maint;
    fm__maint_client spawner; /* starts workers for worker threads: fm__pool_spawn_tick */
    fm__maint_client watch;   /* the slow-task watchdog (diag.c), if opts.slow_task_ns > 0 */
    int watch_armed;          /* a watchdog tick is pending */

    struct fm_pool *reg_prev, *reg_next; /* registry of every pool, for fork */
};

#define FM__LOOKER (INT64_C(1) << 32)

static inline int fm__hand_credits(int64_t v)
{
    return (int)(int32_t)(uint32_t)v;
}

static inline int fm__hand_lookers(int64_t v)
{
    return (int)(v >> 32);
}

/* Takes one credit, adding delta (a multiple of FM__LOOKER) in the same step.
 * 1 on success, 0 if no credit was left. Lock-free. */
static inline int fm__hand_take_credit(struct fm_pool *p, int64_t delta)
{
    int64_t v = atomic_load_explicit(&p->hand, memory_order_relaxed);
    while (fm__hand_credits(v) > 0) {
        if (atomic_compare_exchange_weak_explicit(&p->hand, &v, v - 1 + delta,
                                                  memory_order_seq_cst, memory_order_relaxed))
            return 1;
    }
    return 0;
}

/* worker.c */
extern _Thread_local struct fm__worker *fm__current_worker;
int fm__pool_spawn_reserved(struct fm_pool *p, fm_task_fn fn, void *arg);
struct fm__worker *fm__pool_take_idle_locked(struct fm_pool *p);
void fm__pool_wake(struct fm__worker *w);
void fm__pool_add_worker(struct fm_pool *p);
int64_t fm__pool_spawn_tick(fm__maint_client *c, int64_t now);
int fm__pool_retire_idle_locked(struct fm_pool *p, struct fm__worker *w);
void fm__pool_trim_locked(struct fm_pool *p);
void fm__pool_reap(struct fm_pool *p, int block);
int fm__pool_is_quiet_locked(struct fm_pool *p);

/* pool_wait.c */
int fm__pool_wait_room_locked(struct fm_pool *p, struct fm__waiter *w, int64_t deadline);
void fm__waiters_release(struct fm__waiter *w, uint32_t outcome);
struct fm__waiter *fm__pool_signal_room_locked(struct fm_pool *p);
struct fm__waiter *fm__pool_broadcast_room_locked(struct fm_pool *p);
struct fm__waiter *fm__pool_take_waiter_locked(struct fm_pool *p, fm_task_fn *fn, void **arg);

/* diag.c */
void fm__watch_init(struct fm_pool *p);
void fm__watch_fini(struct fm_pool *p);
void fm__watch_arm_locked(struct fm_pool *p);

/* A worker is about to become busy (taken off the idle list, or started).
 * Lock held. Arms the slow-task watchdog, which disarms itself while every
 * worker is idle; no cost when the watchdog is off or already armed. */
static inline void fm__pool_busy_locked(struct fm_pool *p)
{
    if (FM__UNLIKELY(p->opts.slow_task_ns > 0 && !p->watch_armed))
        fm__watch_arm_locked(p);
}

static inline int fm__pool_can_spawn(struct fm_pool *p)
{
    int cap = atomic_load_explicit(&p->capacity, memory_order_relaxed);
    return cap == FM_UNLIMITED || atomic_load_explicit(&p->running, memory_order_relaxed) < cap;
}

/* Takes a capacity slot for a worker about to be started. Lock held. A worker
 * started without a task (looking = 1) counts as a looker from now on, so that
 * submitters do not start another for the same task. */
static inline void fm__pool_reserve_locked(struct fm_pool *p, int looking)
{
    atomic_fetch_add_explicit(&p->running, 1, memory_order_relaxed);
    fm__pool_busy_locked(p);
    if (looking)
        atomic_fetch_add_explicit(&p->hand, FM__LOOKER, memory_order_seq_cst);
    p->nthreads++;
}

#endif /* FM_POOL_INTERNAL_H */
