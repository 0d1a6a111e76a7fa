/* Peer: OpenMP tasks (gcc's libgomp). OpenMP has no pool object to submit to
 * from outside: tasks are created inside a parallel region. So a batch is what
 * OpenMP code looks like for "one thread submits n tasks, then waits for
 * all": a parallel region of capacity threads (omp_set_num_threads, the
 * setting the workload names; libgomp's defaults otherwise), in which one
 * thread (single) creates the n tasks, and the region's closing barrier waits
 * for every one of them. The creating thread is one of the capacity threads
 * and runs tasks too; libgomp keeps the team's threads for the next region.
 */
#include <errno.h>
#include <stdlib.h>

#include <omp.h>

#include "bench.h"
#include "peers.h"

struct openmp_pool {
    int capacity;
};

static int openmp_create(const struct pool_config *cfg, void **pool)
{
    struct openmp_pool *p = malloc(sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->capacity = cfg->capacity;
    omp_set_num_threads(cfg->capacity);
    *pool = p;
    return 0;
}

static int openmp_submit(void *pool, fm_task_fn fn, void *arg)
{
    (void)pool, (void)fn, (void)arg;
    return -ENOTSUP; /* tasks exist only inside a region: see openmp_run_batch */
}

static int openmp_wait_all(void *pool)
{
    (void)pool;
    return 0;
}

static int openmp_run_batch(void *pool, fm_task_fn fn, void *arg, long n)
{
    (void)pool;
#pragma omp parallel
#pragma omp single
    for (long i = 0; i < n; i++) {
#pragma omp task firstprivate(fn, arg)
        fn(arg);
    }
    return 0;
}

static void openmp_destroy(void *pool)
{
    free(pool);
}

const struct pool_system openmp_pool_system = {openmp_create, openmp_submit, openmp_wait_all,
                                               openmp_destroy, openmp_run_batch};
