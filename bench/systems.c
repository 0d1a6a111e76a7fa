/* The systems under test for W1-W4: formica's fm_pool in its two modes, the
 * in-tree baselines and the installed peers (each built only when found; the
 * others are listed as skipped, with the package that brings them). Each runs
 * with its defaults plus only what the workload names (capacity; for formica
 * also the FIFO size and the idle expiry). */
#include <limits.h>
#include <string.h>

#include "bench.h"
#include "peers.h"

/* ---- the finished-task counter of peers.h ---- */

void done_counter_init(struct done_counter *c)
{
    c->submitted = 0;
    atomic_init(&c->done, 0);
    atomic_init(&c->target, LONG_MAX);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
}

void done_counter_add(struct done_counter *c)
{
    long now = atomic_fetch_add(&c->done, 1) + 1;
    if (now == atomic_load(&c->target)) {
        pthread_mutex_lock(&c->lock);
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
}

void done_counter_wait(struct done_counter *c)
{
    atomic_store(&c->target, c->submitted);
    pthread_mutex_lock(&c->lock);
    while (atomic_load(&c->done) < c->submitted)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    atomic_store(&c->target, LONG_MAX);
}

void done_counter_destroy(struct done_counter *c)
{
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
}

/* ---- formica ---- */

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

const struct pool_system formica_handoff_system = {handoff_create, formica_submit,
                                                   formica_wait_all, formica_destroy, NULL};
const struct pool_system formica_queue_system = {queue_create, formica_submit, formica_wait_all,
                                                 formica_destroy, NULL};
const struct pool_system thread_per_task_system = {thread_per_task_create, thread_per_task_submit,
                                                   thread_per_task_wait_all,
                                                   thread_per_task_destroy, NULL};
const struct pool_system mutex_pool_system = {mutex_pool_create, mutex_pool_submit,
                                              mutex_pool_wait_all, mutex_pool_destroy, NULL};


#ifdef BENCH_HAVE_GLIB
#define GLIB_PEER {"glib", false, &glib_pool_system, NULL, NULL}
#else
#define GLIB_PEER SKIPPED_SYSTEM("glib", "libglib2.0-dev")
#endif
#ifdef BENCH_HAVE_LIBUV
#define LIBUV_PEER {"libuv", false, &libuv_pool_system, NULL, NULL}
#else
#define LIBUV_PEER SKIPPED_SYSTEM("libuv", "libuv1-dev")
#endif
#ifdef BENCH_HAVE_TBB
#define TBB_PEER {"tbb", false, &tbb_pool_system, NULL, NULL}
#else
#define TBB_PEER SKIPPED_SYSTEM("tbb", "libtbb-dev")
#endif
#ifdef BENCH_HAVE_OPENMP
#define OPENMP_PEER {"openmp", false, &openmp_pool_system, NULL, NULL}
#else
#define OPENMP_PEER {"openmp", false, NULL, "needs a compiler with OpenMP (gcc's libgomp1)", NULL}
#endif

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
                                                 multi_wait_all, multi_destroy, NULL};
static const struct pool_system multi_queue = {multi_queue_create, multi_submit, multi_wait_all,
                                               multi_destroy, NULL};

/* The baselines and peers every pool workload compares formica with. */
#define POOL_OTHERS                                                                      \
    {"thread-per-task", false, &thread_per_task_system, NULL, NULL},                     \
        {"mutex-pool", false, &mutex_pool_system, NULL, NULL}, GLIB_PEER, LIBUV_PEER,      \
        TBB_PEER, OPENMP_PEER, GO_PEER("go-goroutines"), /* one goroutine per task */   \
        GO_PEER("go-pool") /* capacity goroutines reading one channel */

static const struct bench_system pool_system_v[] = {
    {"formica-handoff", true, &formica_handoff_system, NULL, NULL},
    {"formica-queue", true, &formica_queue_system, NULL, NULL},
    POOL_OTHERS,
};
const struct system_list pool_systems = {pool_system_v,
                                         (int)(sizeof pool_system_v / sizeof pool_system_v[0])};

/* W1 and W3 also compare one pool with 4 pools of the same total capacity. */
static const struct bench_system pool_multi_system_v[] = {
    {"formica-handoff", true, &formica_handoff_system, NULL, NULL},
    {"formica-queue", true, &formica_queue_system, NULL, NULL},
    {"formica-multi4-handoff", true, &multi_handoff, NULL, NULL},
    {"formica-multi4-queue", true, &multi_queue, NULL, NULL},
    POOL_OTHERS,
};
const struct system_list pool_multi_systems = {
    pool_multi_system_v, (int)(sizeof pool_multi_system_v / sizeof pool_multi_system_v[0])};
