/* Worker pool: no heap allocation per submit in steady state.
 *
 * Allocations are counted by the interposer of alloc_count.h.
 *
 * Each case warms a pool up, then counts the allocations made over 100,000
 * submits and a final fm_pool_wait: there must be none. Warming up starts
 * every worker the pool may have (capacity tasks held busy at once), and the
 * pools use expiry_ns < 0, so no worker can be started during the
 * measurement (starting a thread allocates, in the pool and inside glibc for
 * its TLS): a worker started while below capacity is growth, not steady
 * state. The failure message says whether threads were started meanwhile.
 */
#include "pool_test_util.h"

#include "alloc_count.h"

#define WARMUP 10000
#define MEASURED 100000

enum how { HOW_SUBMIT, HOW_SUBMIT_TIMEOUT, HOW_INVOKE, HOW_NONBLOCKING };

static int submit_one(fm_pool *p, enum how how, atomic_int *ran)
{
    switch (how) {
    case HOW_SUBMIT_TIMEOUT:
        return fm_pool_submit_timeout(p, task_count, ran, FM_FOREVER);
    case HOW_INVOKE:
        return fm_pool_invoke(p, ran);
    case HOW_NONBLOCKING: {
        int rc;
        while ((rc = fm_pool_submit(p, task_count, ran)) == -EAGAIN)
            sched_yield();
        return rc;
    }
    default:
        return fm_pool_submit(p, task_count, ran);
    }
}

/* Starts every worker of the pool: capacity tasks held on a gate at once. */
static void start_all_workers(fm_pool *p, int cap)
{
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < cap; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == cap, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_running(p), cap);
}

static void steady_state_case(size_t qcap, enum how how)
{
    fm_pool_opts o = {.expiry_ns = -1,
                      .queue_capacity = qcap,
                      .fn = task_count,
                      .nonblocking = how == HOW_NONBLOCKING};
    fm_pool *p = new_pool(4, &o);
    start_all_workers(p, 4);
    atomic_int ran = 0;
    for (int i = 0; i < WARMUP; i++)
        FM_CHECK_EQ(submit_one(p, how, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), WARMUP);

    uint64_t t0 = pool_stats(p).threads_created;
    long a0 = atomic_load(&n_allocs), f0 = atomic_load(&n_frees);
    for (int i = 0; i < MEASURED; i++) {
        int rc = submit_one(p, how, &ran);
        if (rc != 0)
            FM_FAIL("submit %d returned %d", i, rc);
    }
    int wrc = fm_pool_wait(p, FM_FOREVER);
    long allocs = atomic_load(&n_allocs) - a0, frees = atomic_load(&n_frees) - f0;

    FM_CHECK_EQ(wrc, 0);
    FM_CHECK_EQ(atomic_load(&ran), WARMUP + MEASURED);
    if (allocs != 0)
        FM_FAIL("%ld heap allocations (and %ld frees) over %d submits + wait; threads started "
                "meanwhile: %llu",
                allocs, frees, MEASURED,
                (unsigned long long)(pool_stats(p).threads_created - t0));
    fm_pool_destroy(p);
}

FM_TEST(interposer_counts_allocations)
{
    /* through volatile pointers so that the compiler keeps the calls */
    void *(*volatile m)(size_t) = malloc;
    void *(*volatile c)(size_t, size_t) = calloc;
    void *(*volatile r)(void *, size_t) = realloc;
    void (*volatile f)(void *) = free;
    long a0 = atomic_load(&n_allocs), f0 = atomic_load(&n_frees);
    void *x = m(100);
    void *y = c(3, 7);
    x = r(x, 1000);
    void *z = NULL;
    FM_CHECK_EQ(posix_memalign(&z, 64, 100), 0);
    FM_CHECK(((uintptr_t)z & 63) == 0);
    f(x);
    f(y);
    f(z);
    FM_CHECK_EQ(atomic_load(&n_allocs) - a0, 4);
    FM_CHECK_EQ(atomic_load(&n_frees) - f0, 3);
    /* and it sees the library's own allocations: creating pools and
     * threads allocates somewhere (pool state, thread TLS) */
    a0 = atomic_load(&n_allocs);
    fm_pool *p = new_pool(4, NULL);
    atomic_int ran = 0;
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
    FM_CHECK(atomic_load(&n_allocs) - a0 > 0);
}

FM_TEST(handoff_submit_allocates_nothing) { steady_state_case(0, HOW_SUBMIT); }
FM_TEST(queue_submit_allocates_nothing) { steady_state_case(1024, HOW_SUBMIT); }
FM_TEST(handoff_submit_timeout_allocates_nothing) { steady_state_case(0, HOW_SUBMIT_TIMEOUT); }
FM_TEST(queue_submit_timeout_allocates_nothing) { steady_state_case(1024, HOW_SUBMIT_TIMEOUT); }
FM_TEST(handoff_invoke_allocates_nothing) { steady_state_case(0, HOW_INVOKE); }
FM_TEST(queue_invoke_allocates_nothing) { steady_state_case(1024, HOW_INVOKE); }
FM_TEST(handoff_nonblocking_submit_allocates_nothing) { steady_state_case(0, HOW_NONBLOCKING); }
FM_TEST(queue_nonblocking_submit_allocates_nothing) { steady_state_case(64, HOW_NONBLOCKING); }

/* Several submitter threads at once: each warms up (a thread's first submits
 * may set up per-thread state), then all submit together while counted. */
struct multi {
    fm_pool *pool;
    atomic_int *ran;
    pthread_barrier_t *b;
};

static void *multi_main(void *arg)
{
    struct multi *m = arg;
    for (int i = 0; i < WARMUP / 4; i++)
        if (fm_pool_submit(m->pool, task_count, m->ran) != 0)
            FM_FAIL("warm-up submit failed");
    pthread_barrier_wait(m->b); /* warm */
    pthread_barrier_wait(m->b); /* counting starts */
    for (int i = 0; i < MEASURED / 4; i++)
        if (fm_pool_submit(m->pool, task_count, m->ran) != 0)
            FM_FAIL("submit failed");
    pthread_barrier_wait(m->b); /* done */
    return NULL;
}

static void multi_case(size_t qcap)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = qcap};
    fm_pool *p = new_pool(4, &o);
    start_all_workers(p, 4);
    atomic_int ran = 0;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 5);
    pthread_t th[4];
    struct multi m = {p, &ran, &b};
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(pthread_create(&th[i], NULL, multi_main, &m), 0);
    pthread_barrier_wait(&b);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    long a0 = atomic_load(&n_allocs);
    pthread_barrier_wait(&b);
    pthread_barrier_wait(&b);
    int wrc = fm_pool_wait(p, FM_FOREVER);
    long allocs = atomic_load(&n_allocs) - a0;
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    FM_CHECK_EQ(wrc, 0);
    FM_CHECK_EQ(atomic_load(&ran), WARMUP + MEASURED);
    if (allocs != 0)
        FM_FAIL("%ld heap allocations over %d submits from 4 threads + wait", allocs, MEASURED);
    pthread_barrier_destroy(&b);
    fm_pool_destroy(p);
}

FM_TEST(handoff_four_submitters_allocate_nothing) { multi_case(0); }
FM_TEST(queue_four_submitters_allocate_nothing) { multi_case(1024); }

FM_TEST_MAIN()
