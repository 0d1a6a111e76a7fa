/* The in-tree baselines of docs/benchmarks.md, which need nothing installed:
 *
 *   mutex-pool       a fixed set of workers, all started up front, draining an
 *                    unbounded FIFO (a growable ring) under one mutex and two
 *                    condition variables; workers never expire.
 *   thread-per-task  pthread_create + pthread_detach for every task, no bound on
 *                    the number of threads; completion is tracked by a counter.
 *
 * Both are written the plain way a C programmer would without a pool library,
 * so that the figures say what formica buys over the obvious code.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ---- mutex-pool ---- */

struct mp_task {
    fm_task_fn fn;
    void *arg;
};

struct mutex_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_ready; /* workers wait here for a task */
    pthread_cond_t drained;    /* wait_all waits here for count == active == 0 */
    struct mp_task *ring;      /* FIFO of ring_size slots, count of them used from head */
    size_t ring_size;          /* a power of two */
    size_t head;
    size_t count;
    size_t active; /* tasks taken from the ring and still running */
    bool stopping;
    int nthreads;
    pthread_t *threads;
};

enum { MP_INITIAL_RING = 1024 };

static void *mp_worker(void *arg)
{
    struct mutex_pool *mp = arg;
    pthread_mutex_lock(&mp->lock);
    for (;;) {
        while (mp->count == 0 && !mp->stopping)
            pthread_cond_wait(&mp->work_ready, &mp->lock);
        if (mp->count == 0)
            break; /* stopping and nothing left to run */
        struct mp_task task = mp->ring[mp->head];
        mp->head = (mp->head + 1) & (mp->ring_size - 1);
        mp->count--;
        mp->active++;
        pthread_mutex_unlock(&mp->lock);

        task.fn(task.arg);

        pthread_mutex_lock(&mp->lock);
        mp->active--;
        if (mp->count == 0 && mp->active == 0)
            pthread_cond_broadcast(&mp->drained);
    }
    pthread_mutex_unlock(&mp->lock);
    return NULL;
}

/* Doubles the ring, copying the tasks so that they start at slot 0. Called with
 * the lock held and the ring full. */
static int mp_grow(struct mutex_pool *mp)
{
    size_t new_size = mp->ring_size * 2;
    struct mp_task *ring = malloc(new_size * sizeof *ring);
    if (ring == NULL)
        return -ENOMEM;
    size_t first = mp->ring_size - mp->head; /* tasks from head to the end of the old ring */
    memcpy(ring, mp->ring + mp->head, first * sizeof *ring);
    memcpy(ring + first, mp->ring, mp->head * sizeof *ring);
    free(mp->ring);
    mp->ring = ring;
    mp->ring_size = new_size;
    mp->head = 0;
    return 0;
}

/* Stops and joins the first n workers, then frees everything. */
static void mp_teardown(struct mutex_pool *mp, int n)
{
    pthread_mutex_lock(&mp->lock);
    mp->stopping = true;
    pthread_cond_broadcast(&mp->work_ready);
    pthread_mutex_unlock(&mp->lock);
    for (int i = 0; i < n; i++)
        pthread_join(mp->threads[i], NULL);
    pthread_cond_destroy(&mp->drained);
    pthread_cond_destroy(&mp->work_ready);
    pthread_mutex_destroy(&mp->lock);
    free(mp->threads);
    free(mp->ring);
    free(mp);
}

int mutex_pool_create(const struct pool_config *cfg, void **pool)
{
    struct mutex_pool *mp = calloc(1, sizeof *mp);
    if (mp == NULL)
        return -ENOMEM;
    mp->ring_size = MP_INITIAL_RING;
    mp->ring = malloc(mp->ring_size * sizeof *mp->ring);
    mp->threads = malloc((size_t)cfg->capacity * sizeof *mp->threads);
    if (mp->ring == NULL || mp->threads == NULL) {
        free(mp->ring);
        free(mp->threads);
        free(mp);
        return -ENOMEM;
    }
    pthread_mutex_init(&mp->lock, NULL);
    pthread_cond_init(&mp->work_ready, NULL);
    pthread_cond_init(&mp->drained, NULL);
    mp->nthreads = cfg->capacity;
    for (int i = 0; i < mp->nthreads; i++) {
        int rc = pthread_create(&mp->threads[i], NULL, mp_worker, mp);
        if (rc != 0) {
            mp_teardown(mp, i);
            return -rc;
        }
    }
    *pool = mp;
    return 0;
}

int mutex_pool_submit(void *pool, fm_task_fn fn, void *arg)
{
    struct mutex_pool *mp = pool;
    pthread_mutex_lock(&mp->lock);
    if (mp->count == mp->ring_size) {
        int rc = mp_grow(mp);
        if (rc != 0) {
            pthread_mutex_unlock(&mp->lock);
            return rc;
        }
    }
    mp->ring[(mp->head + mp->count) & (mp->ring_size - 1)] = (struct mp_task){fn, arg};
    mp->count++;
    pthread_cond_signal(&mp->work_ready);
    pthread_mutex_unlock(&mp->lock);
    return 0;
}

int mutex_pool_wait_all(void *pool)
{
    struct mutex_pool *mp = pool;
    pthread_mutex_lock(&mp->lock);
    while (mp->count != 0 || mp->active != 0)
        pthread_cond_wait(&mp->drained, &mp->lock);
    pthread_mutex_unlock(&mp->lock);
    return 0;
}

void mutex_pool_destroy(void *pool)
{
    struct mutex_pool *mp = pool;
    mp_teardown(mp, mp->nthreads);
}

/* ---- thread-per-task ---- */

struct thread_per_task {
    atomic_long inflight; /* tasks whose thread was started and has not finished */
    pthread_mutex_t lock; /* guards the wake-up of wait_all only */
    pthread_cond_t idle;
    pthread_attr_t detached;
};

struct tpt_job {
    fm_task_fn fn;
    void *arg;
    struct thread_per_task *owner;
};

/* The last task to finish wakes wait_all. The counter is decremented outside
 * the lock, which is safe because wait_all reads it under the lock and the
 * broadcast needs the lock: a waiter either sees zero or is already waiting. */
static void tpt_finish(struct thread_per_task *tpt)
{
    if (atomic_fetch_sub(&tpt->inflight, 1) == 1) {
        pthread_mutex_lock(&tpt->lock);
        pthread_cond_broadcast(&tpt->idle);
        pthread_mutex_unlock(&tpt->lock);
    }
}

static void *tpt_thread(void *arg)
{
    struct tpt_job *job = arg;
    struct thread_per_task *owner = job->owner;
    job->fn(job->arg);
    free(job);
    tpt_finish(owner);
    return NULL;
}

int thread_per_task_create(const struct pool_config *cfg, void **pool)
{
    (void)cfg; /* unbounded: no capacity, nothing to expire */
    struct thread_per_task *tpt = calloc(1, sizeof *tpt);
    if (tpt == NULL)
        return -ENOMEM;
    atomic_init(&tpt->inflight, 0);
    pthread_mutex_init(&tpt->lock, NULL);
    pthread_cond_init(&tpt->idle, NULL);
    pthread_attr_init(&tpt->detached);
    pthread_attr_setdetachstate(&tpt->detached, PTHREAD_CREATE_DETACHED);
    *pool = tpt;
    return 0;
}

int thread_per_task_submit(void *pool, fm_task_fn fn, void *arg)
{
    struct thread_per_task *tpt = pool;
    struct tpt_job *job = malloc(sizeof *job);
    if (job == NULL)
        return -ENOMEM;
    *job = (struct tpt_job){fn, arg, tpt};
    atomic_fetch_add(&tpt->inflight, 1);
    pthread_t tid;
    int rc = pthread_create(&tid, &tpt->detached, tpt_thread, job);
    if (rc != 0) {
        free(job);
        tpt_finish(tpt);
        return -rc; /* EAGAIN when the process is out of threads: the caller retries */
    }
    return 0;
}

int thread_per_task_wait_all(void *pool)
{
    struct thread_per_task *tpt = pool;
    pthread_mutex_lock(&tpt->lock);
    while (atomic_load(&tpt->inflight) != 0)
        pthread_cond_wait(&tpt->idle, &tpt->lock);
    pthread_mutex_unlock(&tpt->lock);
    return 0;
}

void thread_per_task_destroy(void *pool)
{
    struct thread_per_task *tpt = pool;
    thread_per_task_wait_all(tpt);
    /* The last thread may still be returning from pthread_mutex_unlock; POSIX
     * allows destroying a mutex as soon as it is unlocked. */
    pthread_attr_destroy(&tpt->detached);
    pthread_cond_destroy(&tpt->idle);
    pthread_mutex_destroy(&tpt->lock);
    free(tpt);
}
