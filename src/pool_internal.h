/* The worker pool's internals, shared by pool.c (the API, submit, lifecycle)
 * and worker.c (the worker threads).
 *
 * Which lock each field needs ("lock" = fm_pool.lock):
 *
 * | field                               | written                    | read                  |
 * |-------------------------------------|----------------------------|-----------------------|
 * | capacity, closed                    | under lock, atomic store   | anywhere, atomic load |
 * | running, nidle, nactive             | under lock, atomic RMW     | anywhere, atomic load |
 * | waiting                             | under lock, atomic RMW     | anywhere, atomic load |
 * | idle list, all list, zombies        | under lock                 | under lock            |
 * | nthreads, quiet_waiters, counters   | under lock                 | under lock            |
 * |   created/exited/completed_retired  |                            |                       |
 * | fifo                                | lock-free (fifo.h)         | lock-free             |
 * | attempts, rejected                  | anywhere, atomic RMW       | anywhere              |
 * | worker.state                        | see the state machine      | lock-free             |
 * | worker.fn/arg                       | by whoever took the worker off the idle list,  |
 * |                                     | before it stores state GO (release)            |
 * | worker.completed                    | its own thread only        | anywhere, atomic load |
 *
 * Lock order: registry lock -> pool lock -> maintenance lock.
 *
 * Counting invariants (under lock):
 *   running  = workers that hold a capacity slot: on the idle list, or busy,
 *              or reserved by a spawn in progress. Exiting workers gave theirs back.
 *              New workers are only started while running < capacity.
 *   nidle    = length of the idle list; nidle <= running.
 *   nactive  = running - nidle: workers that will look at the FIFO again before
 *              they sleep (queue mode relies on this, see worker.c).
 *   nthreads = threads that exist or are being started and have not yet put
 *              themselves on the zombie list; >= running.
 */
#ifndef FM_POOL_INTERNAL_H
#define FM_POOL_INTERNAL_H

#include "fifo.h"
#include "internal.h"

/* worker.state, the worker's futex word.
 *   SPIN  -> SLEEP  the worker itself, after spinning (CAS)
 *   SPIN|SLEEP -> GO | EXIT  whoever took it off the idle list (exchange; wakes
 *                            the futex when the old value was SLEEP)
 *   GO|EXIT -> SPIN the worker itself, under lock, as it goes back on the idle list */
enum { FM__W_SPIN = 0, FM__W_SLEEP = 1, FM__W_GO = 2, FM__W_EXIT = 3 };

struct fm__worker {
    _Atomic uint32_t state;
    fm_task_fn fn; /* NULL with GO: no task of its own, drain the FIFO */
    void *arg;
    struct fm_pool *pool;
    struct fm__worker *idle_prev, *idle_next; /* idle list; on_idle says if linked */
    struct fm__worker *all_prev, *all_next;   /* every thread that has started */
    int on_idle;
    int orphaned;       /* fork child: this thread's pool is gone; free on return */
    int64_t idle_since; /* coarse clock, when it last went idle */
    pthread_t thread;   /* set by the worker itself before it links into the all list */
    unsigned id;        /* for the thread name */
    _Atomic uint64_t completed FM__ALIGNED; /* tasks this worker ran; its own line */
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
    _Atomic uint64_t attempts FM__ALIGNED; /* submit calls that passed argument checks */
    _Atomic uint64_t rejected;

    /* Changed on idle/busy transitions, spawns and exits; read by submitters. */
    _Atomic int running FM__ALIGNED;
    _Atomic int nidle;
    _Atomic int nactive;
    _Atomic int waiting;
    _Atomic int nspinning; /* workers spinning for work now; capped (worker.c) */

    struct fm__fifo fifo; /* queue mode only; aligned inside */

    pthread_mutex_t lock FM__ALIGNED;
    pthread_cond_t room;      /* submitters blocked for a worker or FIFO room */
    pthread_cond_t quiet;     /* fm_pool_wait: nothing queued or running */
    pthread_cond_t gone;      /* release_timeout/destroy: nthreads reached 0 */
    struct fm__worker *idle_head, *idle_tail; /* head = most recently idle (LIFO reuse) */
    struct fm__worker *all;   /* threads that started and are not zombies */
    struct fm__worker *zombies; /* exited threads not yet joined, linked by all_next */
    int nthreads;
    int quiet_waiters;
    unsigned next_id;
    uint64_t created, exited, completed_retired;
    int expiry_armed;         /* a maintenance tick is requested for expiry */
    fm__maint_client maint;

    struct fm_pool *reg_prev, *reg_next; /* registry of every pool, for fork */
};

/* worker.c */
extern _Thread_local struct fm__worker *fm__current_worker;
int fm__pool_spawn_reserved(struct fm_pool *p, fm_task_fn fn, void *arg);
void fm__pool_give(struct fm__worker *w, fm_task_fn fn, void *arg);
void fm__pool_retire_idle_locked(struct fm_pool *p, struct fm__worker *w);
struct fm__worker *fm__pool_idle_pop_locked(struct fm_pool *p);
void fm__pool_reap(struct fm_pool *p, int block);
int fm__pool_is_quiet_locked(struct fm_pool *p);
void fm__pool_run_task(struct fm__worker *w, fm_task_fn fn, void *arg);

static inline int fm__pool_can_spawn(struct fm_pool *p)
{
    int cap = atomic_load_explicit(&p->capacity, memory_order_relaxed);
    return cap == FM_UNLIMITED || atomic_load_explicit(&p->running, memory_order_relaxed) < cap;
}

/* Takes a capacity slot for a worker about to be started. Lock held. */
static inline void fm__pool_reserve_locked(struct fm_pool *p)
{
    atomic_fetch_add_explicit(&p->running, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->nactive, 1, memory_order_seq_cst);
    p->nthreads++;
}

#endif /* FM_POOL_INTERNAL_H */
