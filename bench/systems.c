/* The systems under test: formica's fm_pool in its two modes, and the in-tree
 * baselines. Each runs with its defaults plus only what the workload names
 * (capacity; for formica also the FIFO size and the idle expiry). */
#include <string.h>

#include "bench.h"

static int formica_create(const struct pool_config *cfg, size_t queue_capacity, void **pool)
{
    fm_pool_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.queue_capacity = queue_capacity;
    opts.expiry_ns = cfg->expiry_ns;
    fm_pool *p;
    int rc = fm_pool_new(&p, cfg->capacity, &opts);
    if (rc == 0)
        *pool = p;
    return rc;
}

/* Hand-off mode: a submit hands the task straight to a worker. */
static int handoff_create(const struct pool_config *cfg, void **pool)
{
    return formica_create(cfg, 0, pool);
}

/* Queue mode: tasks go through the bounded lock-free FIFO. */
static int queue_create(const struct pool_config *cfg, void **pool)
{
    return formica_create(cfg, cfg->queue_capacity, pool);
}

static int formica_submit(void *pool, fm_task_fn fn, void *arg)
{
    return fm_pool_submit(pool, fn, arg);
}

static int formica_wait_all(void *pool)
{
    return fm_pool_wait(pool, FM_FOREVER);
}

static void formica_destroy(void *pool)
{
    fm_pool_destroy(pool);
}

/* formica's multipool: 4 pools of a quarter of the capacity each (at least
 * one worker each, so for a capacity below 4 the total is 4), least-tasks
 * balancing; in queue mode each pool has a quarter of the FIFO. */
#define MULTI_POOLS 4

static int multi_create(const struct pool_config *cfg, size_t queue_capacity, void **pool)
{
    fm_pool_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.queue_capacity = queue_capacity;
    opts.expiry_ns = cfg->expiry_ns;
    int each = cfg->capacity / MULTI_POOLS > 0 ? cfg->capacity / MULTI_POOLS : 1;
    fm_multipool *m;
    int rc = fm_multipool_new(&m, MULTI_POOLS, each, FM_LB_LEAST_TASKS, &opts);
    if (rc == 0)
        *pool = m;
    return rc;
}

static int multi_handoff_create(const struct pool_config *cfg, void **pool)
{
    return multi_create(cfg, 0, pool);
}

static int multi_queue_create(const struct pool_config *cfg, void **pool)
{
    size_t q = cfg->queue_capacity / MULTI_POOLS;
    return multi_create(cfg, q > 0 ? q : 1, pool);
}

static int multi_submit(void *pool, fm_task_fn fn, void *arg)
{
    return fm_multipool_submit(pool, fn, arg);
}

static int multi_wait_all(void *pool)
{
    for (int i = 0; i < MULTI_POOLS; i++) {
        int rc = fm_pool_wait(fm_multipool_pool(pool, i), FM_FOREVER);
        if (rc)
            return rc;
    }
    return 0;
}

static void multi_destroy(void *pool)
{
    fm_multipool_destroy(pool);
}

static const struct pool_system multi_handoff = {multi_handoff_create, multi_submit,
                                                 multi_wait_all, multi_destroy};
static const struct pool_system multi_queue = {multi_queue_create, multi_submit, multi_wait_all,
                                               multi_destroy};

static const struct pool_system handoff = {handoff_create, formica_submit, formica_wait_all,
                                           formica_destroy};
static const struct pool_system queue = {queue_create, formica_submit, formica_wait_all,
                                         formica_destroy};
static const struct pool_system thread_per_task = {thread_per_task_create, thread_per_task_submit,
                                                   thread_per_task_wait_all,
                                                   thread_per_task_destroy};
static const struct pool_system mutex_pool = {mutex_pool_create, mutex_pool_submit,
                                              mutex_pool_wait_all, mutex_pool_destroy};

static const struct bench_system pool_system_v[] = {
    {"formica-handoff", true, &handoff},
    {"formica-queue", true, &queue},
    {"thread-per-task", false, &thread_per_task},
    {"mutex-pool", false, &mutex_pool},
};
const struct system_list pool_systems = {pool_system_v,
                                         (int)(sizeof pool_system_v / sizeof pool_system_v[0])};

/* W1 and W3 also compare one pool with 4 pools of the same total capacity. */
static const struct bench_system pool_multi_system_v[] = {
    {"formica-handoff", true, &handoff},
    {"formica-queue", true, &queue},
    {"formica-multi4-handoff", true, &multi_handoff},
    {"formica-multi4-queue", true, &multi_queue},
    {"thread-per-task", false, &thread_per_task},
    {"mutex-pool", false, &mutex_pool},
};
const struct system_list pool_multi_systems = {
    pool_multi_system_v, (int)(sizeof pool_multi_system_v / sizeof pool_multi_system_v[0])};
