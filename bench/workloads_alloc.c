/* A1 (docs/benchmarks.md): heap allocations per operation in the steady state.
 * Runs only in formica-bench-count, where alloc_counter.c counts every malloc,
 * calloc, realloc and aligned allocation of the process.
 *
 * A pool system: create it (capacity 4), submit a warm-up batch of no-op tasks
 * and wait, then count the allocations made while a measured batch is submitted
 * and waited for. An object system: a warm-up of get/put pairs, then the
 * measured pairs. Allocations per operation = counted / operations, so a
 * figure of 1 means one malloc per submit or per get.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>

#include "bench.h"
#include "peers.h"

/* From alloc_counter.c, linked into formica-bench-count only. */
long bench_alloc_calls(void) __attribute__((weak));

enum { A1_CAPACITY = 4, A1_QUEUE = 4096 };

static long warmup_ops, measured_ops;

void alloc_workloads_configure(bool quick)
{
    warmup_ops = 10000;
    measured_ops = quick ? 100000 : 1000000;
}

struct a1_system {
    const struct pool_system *pool; /* submit of a no-op task */
    const struct obj_system *obj;   /* or get + put of an object */
};

enum { A1_ALLOCS_PER_OP, A1_OPS, A1_NMETRICS };

static atomic_long a1_done;

static void a1_task(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&a1_done, 1, memory_order_relaxed);
}

/* One batch of n submits and the wait for them; 0 or a negative errno. */
static int a1_batch(const struct pool_system *sys, void *pool, long n)
{
    if (sys->run_batch != NULL)
        return sys->run_batch(pool, a1_task, NULL, n);
    for (long i = 0; i < n; i++) {
        int rc;
        while ((rc = sys->submit(pool, a1_task, &a1_done)) == -EAGAIN) {
        }
        if (rc != 0)
            return rc;
    }
    return sys->wait_all(pool);
}

static void a1_pool(const struct pool_system *sys, struct run_result *out)
{
    struct pool_config cfg = {A1_CAPACITY, A1_QUEUE, 0};
    void *pool;
    int rc = sys->create(&cfg, &pool);
    if (rc != 0) {
        bench_fail(out, "create", rc);
        return;
    }
    rc = a1_batch(sys, pool, warmup_ops);
    long before = bench_alloc_calls();
    if (rc == 0)
        rc = a1_batch(sys, pool, measured_ops);
    long after = bench_alloc_calls();
    if (rc != 0)
        bench_fail(out, "submit", rc);
    out->values[A1_ALLOCS_PER_OP] = (double)(after - before) / (double)measured_ops;
    bench_publish(out);
    sys->destroy(pool);
}

static void a1_obj(const struct obj_system *sys, struct run_result *out)
{
    void *ctx;
    int rc = sys->create(&ctx);
    if (rc != 0) {
        bench_fail(out, "create", rc);
        return;
    }
    bool ok = sys->pairs(ctx, warmup_ops);
    long before = bench_alloc_calls();
    ok = ok && sys->pairs(ctx, measured_ops);
    if (!ok)
        bench_fail(out, "get", -ENOMEM);
    long after = bench_alloc_calls();
    out->values[A1_ALLOCS_PER_OP] = (double)(after - before) / (double)measured_ops;
    bench_publish(out);
    sys->destroy(ctx);
}

static void run_a1(const struct bench_system *bs, struct run_result *out)
{
    const struct a1_system *sys = bs->impl;
    if (bench_alloc_calls == NULL) {
        out->ok = false;
        snprintf(out->error, sizeof out->error, "A1 runs in formica-bench-count only");
        return;
    }
    out->values[A1_OPS] = (double)measured_ops;
    if (sys->pool != NULL)
        a1_pool(sys->pool, out);
    else
        a1_obj(sys->obj, out);
}

static void describe_a1(char *buf, size_t len)
{
    snprintf(buf, len,
             "malloc/calloc/realloc calls per submit (no-op task, capacity %d, waits included) "
             "or per object get+put, over %ld operations after %ld of warm-up",
             A1_CAPACITY, measured_ops, warmup_ops);
}

static const struct a1_system a1_handoff = {&formica_handoff_system, NULL};
static const struct a1_system a1_queue = {&formica_queue_system, NULL};
static const struct a1_system a1_mutex_pool = {&mutex_pool_system, NULL};
static const struct a1_system a1_thread_per_task = {&thread_per_task_system, NULL};
static const struct a1_system a1_objpool = {NULL, &formica_objpool_system};
static const struct a1_system a1_malloc = {NULL, &malloc_obj_system};
#ifdef BENCH_HAVE_GLIB
static const struct a1_system a1_glib = {&glib_pool_system, NULL};
#endif
#ifdef BENCH_HAVE_LIBUV
static const struct a1_system a1_libuv = {&libuv_pool_system, NULL};
#endif

#ifdef BENCH_HAVE_COUNT
#define COUNTED(name, formica, impl) {name, formica, impl, NULL, "formica-bench-count"}
#else
#define COUNTED(name, formica, impl) {name, formica, impl, "needs a build without sanitizers", NULL}
#endif

static const struct bench_system a1_system_v[] = {
    COUNTED("formica-handoff", true, &a1_handoff),
    COUNTED("formica-queue", true, &a1_queue),
    COUNTED("formica-objpool", true, &a1_objpool),
    COUNTED("mutex-pool", false, &a1_mutex_pool),
    COUNTED("thread-per-task", false, &a1_thread_per_task),
#ifdef BENCH_HAVE_GLIB
    COUNTED("glib", false, &a1_glib),
#else
    SKIPPED_SYSTEM("glib", "libglib2.0-dev"),
#endif
#ifdef BENCH_HAVE_LIBUV
    COUNTED("libuv", false, &a1_libuv),
#else
    SKIPPED_SYSTEM("libuv", "libuv1-dev"),
#endif
    COUNTED("malloc", false, &a1_malloc),
};
static const struct system_list a1_systems = {
    a1_system_v, (int)(sizeof a1_system_v / sizeof a1_system_v[0])};

const struct workload workload_a1 = {
    "A1", "allocations", A1_NMETRICS,
    {[A1_ALLOCS_PER_OP] = {"allocs_per_op", "count", FROM_CHILD, true},
     [A1_OPS] = {"ops_counted", "count", FROM_CHILD, false}},
    run_a1, describe_a1, NULL, &a1_systems, NULL};
