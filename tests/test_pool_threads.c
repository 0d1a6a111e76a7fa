/* Worker pool: no thread outlives the pool.
 *
 * Counts the threads in /proc/self/task before a pool is created and right
 * after fm_pool_destroy returns (no waiting, no polling): the count must be
 * back to the baseline exactly, since destroy joins every worker. (Threads
 * already in the kernel's exit path are not counted: a joined thread can stay
 * listed for a moment after pthread_join returns; see count_threads in
 * pool_test_util.h.)
 *
 * Baseline: the library may start one library-wide maintenance thread lazily
 * (for expiry and the caches) and keep it for the life of the process. So each
 * case first creates pools, runs tasks on them with a short expiry, waits
 * until their workers have expired (which the maintenance thread does, so it
 * has been started by then), destroys them, and only then measures the
 * baseline; the maintenance thread is part of the baseline. Any other thread
 * left behind is a leak.
 */
#include "pool_test_util.h"

static void print_thread(const char *tid, char *line, void *ctx)
{
    (void)ctx;
    /* "tid (comm) state ..." */
    char *close_paren = strrchr(line, ')');
    fprintf(stderr, "    thread %s: %.*s state %c\n", tid,
            close_paren ? (int)(close_paren - line + 1) : 0, line,
            close_paren && close_paren[1] ? close_paren[2] : '?');
}

/* Lists every thread with its name and state, for a failure message. */
static void dump_threads(void)
{
    for_each_thread("stat", print_thread, NULL);
}

/* The thread count must be exactly base now: no waiting. */
#define CHECK_THREADS(base)                                                              \
    do {                                                                                 \
        int n_ = count_threads();                                                        \
        if (n_ != (base)) {                                                              \
            fprintf(stderr, "  %d threads, expected %d:\n", n_, (base));                  \
            dump_threads();                                                              \
            FM_FAIL("thread count %d != baseline %d", n_, (base));                       \
        }                                                                                \
    } while (0)

static int baseline(void)
{
    /* threads before the library ran anything here: the main thread, and
     * under ThreadSanitizer its runtime's own background thread */
    int before = count_threads();
    fm_pool_opts oh = {.expiry_ns = 20 * MS_NS};
    fm_pool_opts oq = {.expiry_ns = 20 * MS_NS, .queue_capacity = 8};
    fm_pool *a = new_pool(2, &oh);
    fm_pool *b = new_pool(2, &oq);
    atomic_int ran = 0;
    for (int i = 0; i < 10; i++) {
        FM_CHECK_EQ(fm_pool_submit(a, task_count, &ran), 0);
        FM_CHECK_EQ(fm_pool_submit(b, task_count, &ran), 0);
    }
    FM_CHECK_EQ(fm_pool_wait(a, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_wait(b, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 20);
    /* expiry is the maintenance thread's work: once the workers have expired
     * it has certainly been started */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(a) == 0 && fm_pool_running(b) == 0, 10000));
    fm_pool_destroy(a);
    fm_pool_destroy(b);
    int n = count_threads();
    /* at most one maintenance thread (and under ThreadSanitizer one more of
     * its runtime's, started with the first thread the process creates) */
    if (n < before || n > before + 1 + FM_TEST_TSAN) {
        dump_threads();
        FM_FAIL("%d threads after the first pool was destroyed, %d before", n, before);
    }
    return n;
}

/* Runs ntasks tasks, the first nblock of them held on a gate until all of them
 * have started, so that many workers exist at once. */
static void busy_round(fm_pool *p, int nblock, int ntasks)
{
    struct gate g;
    gate_init(&g);
    atomic_int ran = 0;
    for (int i = 0; i < nblock; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == nblock, 10000));
    gate_open(&g);
    for (int i = 0; i < ntasks; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), ntasks);
    FM_CHECK_EQ(atomic_load(&g.passed), nblock);
}

static void threads_case(int cap, const fm_pool_opts *o, int nblock)
{
    int base = baseline();
    fm_pool *p = new_pool(cap, o);
    busy_round(p, nblock, 500);
    FM_CHECK(count_threads() >= base + nblock);
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(handoff_destroy_leaves_no_thread)
{
    fm_pool_opts o = {.expiry_ns = -1};
    threads_case(8, &o, 8);
}

FM_TEST(handoff_default_expiry_destroy_leaves_no_thread)
{
    threads_case(8, NULL, 8);
}

FM_TEST(queue_destroy_leaves_no_thread)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = 64};
    threads_case(8, &o, 8);
}

FM_TEST(prealloc_destroy_leaves_no_thread)
{
    int base = baseline();
    fm_pool_opts o = {.prealloc = 1};
    fm_pool *p = new_pool(16, &o);
    FM_CHECK_EQ(count_threads(), base + 16);
    busy_round(p, 16, 200);
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(prealloc_queue_destroy_leaves_no_thread)
{
    int base = baseline();
    fm_pool_opts o = {.prealloc = 1, .queue_capacity = 32};
    fm_pool *p = new_pool(6, &o);
    busy_round(p, 6, 200);
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(destroy_after_burst_leaves_no_thread)
{
    /* an unlimited pool after a burst of 200 concurrent tasks; its workers
     * never expire, so that all 200 are still there however slow the machine
     * (with the default 1 s expiry a loaded machine let some leave first) */
    int base = baseline();
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(FM_UNLIMITED, &o);
    busy_round(p, 200, 1000);
    FM_CHECK(count_threads() >= base + 200);
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(destroy_with_busy_and_queued_tasks_leaves_no_thread)
{
    int base = baseline();
    fm_pool_opts o = {.queue_capacity = 16};
    fm_pool *p = new_pool(4, &o);
    atomic_int ran = 0;
    for (int i = 0; i < 16; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    fm_pool_destroy(p); /* tasks may still be queued or running here */
    CHECK_THREADS(base);
    FM_CHECK_EQ(atomic_load(&ran), 16);
}

FM_TEST(release_timeout_joins_every_worker)
{
    for (size_t qcap = 0; qcap <= 8; qcap += 8) {
        int base = baseline();
        fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = qcap};
        fm_pool *p = new_pool(8, &o);
        busy_round(p, 8, 300);
        FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
        CHECK_THREADS(base); /* exited and joined */
        FM_CHECK_EQ(fm_pool_reboot(p), 0);
        busy_round(p, 8, 300);
        FM_CHECK_EQ(fm_pool_release_timeout(p, 30 * SEC_NS), 0);
        CHECK_THREADS(base);
        fm_pool_destroy(p);
        CHECK_THREADS(base);
    }
}

FM_TEST(release_then_destroy_leaves_no_thread)
{
    int base = baseline();
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(8, &o);
    busy_round(p, 8, 100);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(expired_workers_leave_no_thread)
{
    /* workers that expired are really gone, not just counted as exited */
    int base = baseline();
    fm_pool_opts o = {.expiry_ns = 10 * MS_NS};
    fm_pool *p = new_pool(8, &o);
    for (int round = 0; round < 3; round++) {
        busy_round(p, 8, 100);
        FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0, 10000));
        FM_CHECK(FM_WAIT_UNTIL(count_threads() == base, 10000));
    }
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(tune_down_then_destroy_leaves_no_thread)
{
    int base = baseline();
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(8, &o);
    busy_round(p, 8, 100);
    FM_CHECK_EQ(fm_pool_tune(p, 2), 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 2, 10000));
    FM_CHECK_EQ(fm_pool_tune(p, 6), 0);
    busy_round(p, 6, 100);
    fm_pool_destroy(p);
    CHECK_THREADS(base);
}

FM_TEST(many_pools_leave_no_thread)
{
    int base = baseline();
    for (int i = 0; i < 50; i++) {
        fm_pool_opts o = {.queue_capacity = (size_t)(i % 2) * 16, .prealloc = i % 3 == 0};
        fm_pool *p = new_pool(1 + i % 4, &o);
        atomic_int ran = 0;
        for (int k = 0; k < 20; k++)
            FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
        fm_pool_destroy(p);
        if (atomic_load(&ran) != 20)
            FM_FAIL("pool %d (capacity %d, queue_capacity %zu, prealloc %d): %d of 20 accepted "
                    "tasks ran before fm_pool_destroy returned",
                    i, 1 + i % 4, o.queue_capacity, o.prealloc, atomic_load(&ran));
        CHECK_THREADS(base);
    }
}

FM_TEST_MAIN()
