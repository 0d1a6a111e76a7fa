/* Multipool (fm_multipool): every call, both balancers, the fall-over to the
 * other pools, bad input, and a concurrent stress case.
 *
 * Tasks that must stay busy block on a gate (pool_test_util.h); placements
 * are read from each pool's own counters (fm_pool_stats().submitted).
 */
#include "pool_test_util.h"

#include <limits.h>

static fm_multipool *new_multi(int n, int cap, fm_lb lb, const fm_pool_opts *o)
{
    fm_multipool *m = NULL;
    int rc = fm_multipool_new(&m, n, cap, lb, o);
    if (rc != 0 || !m)
        FM_FAIL("fm_multipool_new = %d (%s)", rc, fm_strerror(rc));
    return m;
}

static uint64_t submitted_to(fm_multipool *m, int i)
{
    return pool_stats(fm_multipool_pool(m, i)).submitted;
}

static void wait_all(fm_multipool *m)
{
    for (int i = 0; i < fm_multipool_npools(m); i++)
        FM_CHECK_EQ(fm_pool_wait(fm_multipool_pool(m, i), FM_FOREVER), 0);
}

/* ---- bad input ---- */

FM_TEST(new_rejects_bad_arguments)
{
    fm_multipool *m = (fm_multipool *)(uintptr_t)1;
    FM_CHECK_EQ(fm_multipool_new(NULL, 2, 2, FM_LB_ROUND_ROBIN, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, 0, 2, FM_LB_ROUND_ROBIN, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, -3, 2, FM_LB_LEAST_TASKS, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, INT_MIN, 2, FM_LB_LEAST_TASKS, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, FM_MULTIPOOL_MAX + 1, 2, FM_LB_ROUND_ROBIN, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, 2, 2, (fm_lb)7, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, 2, 2, (fm_lb)-1, NULL), -EINVAL);
    /* what fm_pool_new rejects */
    FM_CHECK_EQ(fm_multipool_new(&m, 2, 0, FM_LB_ROUND_ROBIN, NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_new(&m, 2, -5, FM_LB_ROUND_ROBIN, NULL), -EINVAL);
    fm_pool_opts o = {.prealloc = 1};
    FM_CHECK_EQ(fm_multipool_new(&m, 2, FM_UNLIMITED, FM_LB_ROUND_ROBIN, &o), -EINVAL);
    /* a good call still works */
    m = new_multi(3, 2, FM_LB_LEAST_TASKS, NULL);
    FM_CHECK_EQ(fm_multipool_npools(m), 3);
    FM_CHECK_EQ(fm_multipool_cap(m), 6);
    fm_multipool_destroy(m);
}

FM_TEST(null_handle_every_call)
{
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_multipool_submit(NULL, task_count, &ran), -EINVAL);
    FM_CHECK_EQ(fm_multipool_invoke(NULL, &ran), -EINVAL);
    FM_CHECK(fm_multipool_pool(NULL, 0) == NULL);
    FM_CHECK_EQ(fm_multipool_npools(NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_running(NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_available(NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_waiting(NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_cap(NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_tune(NULL, 2), -EINVAL);
    FM_CHECK_EQ(fm_multipool_release_timeout(NULL, 0), -EINVAL);
    FM_CHECK_EQ(fm_multipool_release_timeout(NULL, FM_FOREVER), -EINVAL);
    FM_CHECK_EQ(fm_multipool_reboot(NULL), -EINVAL);
    FM_CHECK_EQ(fm_multipool_is_closed(NULL), -EINVAL);
    fm_multipool_destroy(NULL); /* no-op */
    fm_multipool *m = new_multi(2, 2, FM_LB_ROUND_ROBIN, NULL);
    FM_CHECK_EQ(fm_multipool_submit(m, NULL, &ran), -EINVAL);
    FM_CHECK_EQ(fm_multipool_invoke(m, &ran), -EINVAL); /* no bound fn */
    FM_CHECK(fm_multipool_pool(m, -1) == NULL);
    FM_CHECK(fm_multipool_pool(m, 2) == NULL);
    FM_CHECK(fm_multipool_pool(m, INT_MAX) == NULL);
    FM_CHECK(fm_multipool_pool(m, 0) != NULL && fm_multipool_pool(m, 1) != NULL);
    FM_CHECK(fm_multipool_pool(m, 0) != fm_multipool_pool(m, 1));
    FM_CHECK_EQ(fm_multipool_tune(m, 0), -EINVAL);
    FM_CHECK_EQ(fm_multipool_tune(m, -1), -EINVAL);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&ran), 0);
}

/* ---- running tasks ---- */

static void runs_every_task_case(fm_lb lb, size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_multipool *m = new_multi(4, 2, lb, &o);
    FM_CHECK_EQ(fm_multipool_cap(m), 8);
    FM_CHECK_EQ(fm_multipool_running(m), 0);
    FM_CHECK_EQ(fm_multipool_available(m), 8);
    FM_CHECK_EQ(fm_multipool_waiting(m), 0);
    FM_CHECK_EQ(fm_multipool_is_closed(m), 0);
    atomic_int ran = 0;
    for (int i = 0; i < 4000; i++) {
        FM_CHECK_EQ(fm_multipool_submit(m, task_count, &ran), 0);
        FM_CHECK(fm_multipool_running(m) <= 8);
    }
    wait_all(m);
    FM_CHECK_EQ(atomic_load(&ran), 4000);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++)
        total += submitted_to(m, i);
    FM_CHECK_EQ(total, 4000);
    FM_CHECK_EQ(fm_multipool_available(m), 8 - fm_multipool_running(m));
    fm_multipool_destroy(m);
}

FM_TEST(round_robin_runs_every_task_handoff) { runs_every_task_case(FM_LB_ROUND_ROBIN, 0); }
FM_TEST(round_robin_runs_every_task_queue) { runs_every_task_case(FM_LB_ROUND_ROBIN, 64); }
FM_TEST(least_tasks_runs_every_task_handoff) { runs_every_task_case(FM_LB_LEAST_TASKS, 0); }
FM_TEST(least_tasks_runs_every_task_queue) { runs_every_task_case(FM_LB_LEAST_TASKS, 64); }

FM_TEST(round_robin_takes_the_pools_in_turn)
{
    fm_multipool *m = new_multi(4, 2, FM_LB_ROUND_ROBIN, NULL);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 8; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 8, 10000));
    for (int i = 0; i < 4; i++) {
        FM_CHECK_EQ(submitted_to(m, i), 2);
        FM_CHECK_EQ(fm_pool_running(fm_multipool_pool(m, i)), 2);
    }
    FM_CHECK_EQ(fm_multipool_running(m), 8);
    FM_CHECK_EQ(fm_multipool_available(m), 0);
    gate_open(&g);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&g.passed), 8);
}

FM_TEST(round_robin_skips_a_full_pool)
{
    /* pool 0 is full (blocking pools): round robin's turn for it goes to the
     * next pool with room instead of waiting behind pool 0's task */
    fm_pool_opts o = {.expiry_ns = -1};
    fm_multipool *m = new_multi(3, 1, FM_LB_ROUND_ROBIN, &o);
    struct gate g;
    gate_init(&g);
    FM_CHECK_EQ(fm_pool_submit(fm_multipool_pool(m, 0), task_gate, &g), 0);
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0); /* pool 0's turn */
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    FM_CHECK_EQ(submitted_to(m, 0), 1);
    FM_CHECK_EQ(submitted_to(m, 1), 1);
    FM_CHECK_EQ(submitted_to(m, 2), 1);
    FM_CHECK_EQ(fm_multipool_waiting(m), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 3, 10000));
    gate_open(&g);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&g.passed), 3);
}

FM_TEST(least_tasks_picks_the_least_loaded)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_multipool *m = new_multi(4, 4, FM_LB_LEAST_TASKS, &o);
    struct gate g;
    gate_init(&g);
    /* pool 0 gets two busy tasks behind the balancer's back */
    FM_CHECK_EQ(fm_pool_submit(fm_multipool_pool(m, 0), task_gate, &g), 0);
    FM_CHECK_EQ(fm_pool_submit(fm_multipool_pool(m, 0), task_gate, &g), 0);
    /* six more through the balancer fill the others up to two each first */
    for (int i = 0; i < 6; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    FM_CHECK_EQ(submitted_to(m, 0), 2);
    for (int i = 1; i < 4; i++)
        FM_CHECK_EQ(submitted_to(m, i), 2);
    /* now all are equal: the next four go one to each */
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(submitted_to(m, i), 3);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 12, 10000));
    gate_open(&g);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&g.passed), 12);
}

FM_TEST(least_tasks_breaks_ties_fairly)
{
    /* Every pool is idle before each submit: all loads are equal (0). The
     * original balancer would send all of them to pool 0. */
    fm_pool_opts o = {.expiry_ns = -1};
    fm_multipool *m = new_multi(4, 2, FM_LB_LEAST_TASKS, &o);
    atomic_int ran = 0;
    for (int i = 0; i < 40; i++) {
        FM_CHECK_EQ(fm_multipool_submit(m, task_count, &ran), 0);
        wait_all(m);
    }
    FM_CHECK_EQ(atomic_load(&ran), 40);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(submitted_to(m, i), 10);
    fm_multipool_destroy(m);
}

/* ---- fall-over to the other pools ---- */

static void nonblocking_fallover_case(fm_lb lb)
{
    fm_pool_opts o = {.nonblocking = 1, .expiry_ns = -1};
    fm_multipool *m = new_multi(4, 1, lb, &o);
    struct gate g;
    gate_init(&g);
    /* pool 0 is full; the balancer's first choice for round robin is pool 0 */
    FM_CHECK_EQ(fm_pool_submit(fm_multipool_pool(m, 0), task_gate, &g), 0);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(submitted_to(m, i), 1);
    /* every pool full: -EAGAIN after trying them all */
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), -EAGAIN);
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), -EAGAIN);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    gate_open(&g);
    wait_all(m);
    /* room again */
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&g.passed), 5);
}

FM_TEST(nonblocking_full_pool_falls_over_round_robin) { nonblocking_fallover_case(FM_LB_ROUND_ROBIN); }
FM_TEST(nonblocking_full_pool_falls_over_least_tasks) { nonblocking_fallover_case(FM_LB_LEAST_TASKS); }

struct nested {
    fm_multipool *m;
    atomic_int rc;
    atomic_int inner_ran;
    atomic_int done;
};

static void task_inner(void *arg)
{
    atomic_fetch_add(&((struct nested *)arg)->inner_ran, 1);
}

/* Runs on pool 0 (capacity 1, so saturated by this very task) and submits
 * through the balancer, whose first choice is pool 0. */
static void task_submit_nested(void *arg)
{
    struct nested *n = arg;
    atomic_store(&n->rc, fm_multipool_submit(n->m, task_inner, n));
    atomic_store(&n->done, 1);
}

FM_TEST(deadlock_in_chosen_pool_falls_over)
{
    fm_multipool *m = new_multi(2, 1, FM_LB_ROUND_ROBIN, NULL);
    struct nested n = {.m = m, .rc = 12345};
    FM_CHECK_EQ(fm_pool_submit(fm_multipool_pool(m, 0), task_submit_nested, &n), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&n.done), 10000));
    FM_CHECK_EQ(atomic_load(&n.rc), 0);
    wait_all(m);
    FM_CHECK_EQ(atomic_load(&n.inner_ran), 1);
    FM_CHECK_EQ(submitted_to(m, 1), 1);
    fm_multipool_destroy(m);
}

FM_TEST(deadlock_everywhere_is_reported)
{
    /* one pool only: nothing to fall over to */
    fm_multipool *m = new_multi(1, 1, FM_LB_LEAST_TASKS, NULL);
    struct nested n = {.m = m, .rc = 12345};
    FM_CHECK_EQ(fm_multipool_submit(m, task_submit_nested, &n), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&n.done), 10000));
    FM_CHECK_EQ(atomic_load(&n.rc), -EDEADLK);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&n.inner_ran), 0);
}

struct multi_submitter {
    pthread_t th;
    fm_multipool *m;
    atomic_int *counter;
    atomic_int rc;
    atomic_int done;
};

static void *multi_submitter_main(void *arg)
{
    struct multi_submitter *s = arg;
    atomic_store(&s->rc, fm_multipool_submit(s->m, task_count, s->counter));
    atomic_store(&s->done, 1);
    return NULL;
}

/* Fills both pools of m (capacity 1 each) with tasks held on g, then starts
 * s submitting one more, and returns once s is blocked. */
static void start_blocked_submit(fm_multipool *m, struct gate *g, struct multi_submitter *s,
                                 atomic_int *ran)
{
    gate_init(g);
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, g), 0);
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, g), 0);
    *s = (struct multi_submitter){.m = m, .counter = ran, .rc = 12345};
    FM_CHECK_EQ(pthread_create(&s->th, NULL, multi_submitter_main, s), 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_multipool_waiting(m) == 1, 10000));
}

FM_TEST(blocking_submit_waits_for_room)
{
    fm_multipool *m = new_multi(2, 1, FM_LB_ROUND_ROBIN, NULL);
    struct gate g;
    atomic_int ran = 0;
    struct multi_submitter s;
    start_blocked_submit(m, &g, &s, &ran);
    fm_test_sleep_ms(20); /* a window in which a wrong multipool would return */
    FM_CHECK_EQ(atomic_load(&s.done), 0);
    gate_open(&g);
    pthread_join(s.th, NULL);
    FM_CHECK_EQ(atomic_load(&s.rc), 0);
    wait_all(m);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    FM_CHECK_EQ(fm_multipool_waiting(m), 0);
    fm_multipool_destroy(m);
}

FM_TEST(release_wakes_a_blocked_submit)
{
    fm_multipool *m = new_multi(2, 1, FM_LB_LEAST_TASKS, NULL);
    struct gate g;
    atomic_int ran = 0;
    struct multi_submitter s;
    start_blocked_submit(m, &g, &s, &ran);
    FM_CHECK_EQ(fm_multipool_release_timeout(m, 0), -ETIMEDOUT); /* the gated tasks run on */
    pthread_join(s.th, NULL);
    FM_CHECK_EQ(atomic_load(&s.rc), -ESHUTDOWN);
    gate_open(&g);
    FM_CHECK_EQ(fm_multipool_release_timeout(m, FM_FOREVER), 0);
    fm_multipool_destroy(m);
    FM_CHECK_EQ(atomic_load(&ran), 0);
    FM_CHECK_EQ(atomic_load(&g.passed), 2);
}

/* ---- invoke, tune, unlimited ---- */

static atomic_int bound_ran;
static void bound_fn(void *arg)
{
    atomic_fetch_add(&bound_ran, *(int *)arg);
}

FM_TEST(invoke_runs_the_bound_function)
{
    fm_pool_opts o = {.fn = bound_fn};
    fm_multipool *m = new_multi(3, 2, FM_LB_ROUND_ROBIN, &o);
    int one = 1;
    for (int i = 0; i < 30; i++)
        FM_CHECK_EQ(fm_multipool_invoke(m, &one), 0);
    wait_all(m);
    FM_CHECK_EQ(atomic_load(&bound_ran), 30);
    FM_CHECK_EQ(submitted_to(m, 0) + submitted_to(m, 1) + submitted_to(m, 2), 30);
    fm_multipool_destroy(m);
}

FM_TEST(tune_changes_every_pool)
{
    fm_multipool *m = new_multi(3, 2, FM_LB_LEAST_TASKS, NULL);
    FM_CHECK_EQ(fm_multipool_cap(m), 6);
    FM_CHECK_EQ(fm_multipool_tune(m, 5), 0);
    FM_CHECK_EQ(fm_multipool_cap(m), 15);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_cap(fm_multipool_pool(m, i)), 5);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 15; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 15, 10000));
    FM_CHECK_EQ(fm_multipool_running(m), 15);
    FM_CHECK_EQ(fm_multipool_tune(m, 1), 0);
    FM_CHECK_EQ(fm_multipool_cap(m), 3);
    gate_open(&g);
    FM_CHECK(FM_WAIT_UNTIL(fm_multipool_running(m) <= 3, 10000));
    fm_multipool_destroy(m);

    m = new_multi(2, FM_UNLIMITED, FM_LB_ROUND_ROBIN, NULL);
    FM_CHECK_EQ(fm_multipool_tune(m, 4), -EINVAL);
    fm_multipool_destroy(m);
    fm_pool_opts o = {.prealloc = 1};
    m = new_multi(2, 2, FM_LB_ROUND_ROBIN, &o);
    FM_CHECK_EQ(fm_multipool_running(m), 4);
    FM_CHECK_EQ(fm_multipool_tune(m, 4), -EINVAL);
    fm_multipool_destroy(m);
}

FM_TEST(unlimited_counters)
{
    fm_multipool *m = new_multi(2, FM_UNLIMITED, FM_LB_LEAST_TASKS, NULL);
    FM_CHECK_EQ(fm_multipool_cap(m), -1);
    FM_CHECK_EQ(fm_multipool_available(m), -1);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 10; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 10, 10000));
    FM_CHECK_EQ(fm_multipool_running(m), 10);
    for (int i = 0; i < 2; i++)
        FM_CHECK_EQ(submitted_to(m, i), 5);
    gate_open(&g);
    fm_multipool_destroy(m);
}

/* ---- release, reboot, destroy ---- */

FM_TEST(release_timeout_and_reboot)
{
    fm_multipool *m = new_multi(3, 2, FM_LB_ROUND_ROBIN, NULL);
    int before = fm_threads_live();
    atomic_int ran = 0;
    for (int i = 0; i < 30; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_count, &ran), 0);
    FM_CHECK_EQ(fm_multipool_release_timeout(m, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 30); /* accepted tasks ran */
    FM_CHECK_EQ(fm_multipool_is_closed(m), 1);
    FM_CHECK_EQ(fm_multipool_running(m), 0);
    FM_CHECK(fm_threads_live() <= before + 1); /* + the maintenance thread */
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_is_closed(fm_multipool_pool(m, i)), 1);
    FM_CHECK_EQ(fm_multipool_submit(m, task_count, &ran), -ESHUTDOWN);
    FM_CHECK_EQ(fm_multipool_invoke(m, &ran), -EINVAL);
    FM_CHECK_EQ(fm_multipool_release_timeout(m, 0), 0); /* again: fine */
    FM_CHECK_EQ(fm_multipool_reboot(m), 0);
    FM_CHECK_EQ(fm_multipool_is_closed(m), 0);
    FM_CHECK_EQ(fm_multipool_submit(m, task_count, &ran), 0);
    wait_all(m);
    FM_CHECK_EQ(atomic_load(&ran), 31);
    fm_multipool_destroy(m);
}

FM_TEST(release_timeout_times_out_on_a_busy_task)
{
    fm_multipool *m = new_multi(2, 1, FM_LB_ROUND_ROBIN, NULL);
    struct gate g;
    gate_init(&g);
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 1, 10000));
    FM_CHECK_EQ(fm_multipool_release_timeout(m, 20 * MS_NS), -ETIMEDOUT);
    FM_CHECK_EQ(fm_multipool_is_closed(m), 1);
    FM_CHECK_EQ(fm_multipool_submit(m, task_gate, &g), -ESHUTDOWN);
    gate_open(&g);
    FM_CHECK_EQ(fm_multipool_release_timeout(m, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_multipool_running(m), 0);
    fm_multipool_destroy(m);
}

FM_TEST(destroy_joins_every_thread)
{
    int before = fm_threads_live(), before_os = count_threads();
    fm_pool_opts o = {.prealloc = 1};
    fm_multipool *m = new_multi(4, 3, FM_LB_LEAST_TASKS, &o);
    FM_CHECK_EQ(fm_multipool_running(m), 12);
    FM_CHECK(fm_threads_live() >= before + 12);
    FM_CHECK(count_threads() >= before_os + 12);
    fm_multipool_destroy(m);
    /* the maintenance thread may have started meanwhile */
    FM_CHECK(fm_threads_live() <= before + 1);
    if (!FM_TEST_TSAN) /* its runtime starts a thread of its own */
        FM_CHECK(count_threads() <= before_os + 1);
}

FM_TEST(double_destroy_aborts_in_debug_builds)
{
#ifdef FM_DEBUG
    pid_t pid = fork();
    if (pid == 0) {
        fm_multipool *m = NULL;
        if (fm_multipool_new(&m, 2, 2, FM_LB_ROUND_ROBIN, NULL) != 0)
            _exit(3);
        fm_multipool_destroy(m);
        fm_multipool_destroy(m);
        _exit(0);
    }
    int status = wait_child(pid, 20000);
    FM_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#else
    FM_SKIP("release builds do not check (documented as a bug)");
#endif
}

/* ---- stress: submitters, tune and counters at once ---- */

struct stress {
    fm_multipool *m;
    atomic_int ran;
    atomic_int accepted;
    atomic_int stop;
};

static void *stress_submitter(void *arg)
{
    struct stress *s = arg;
    for (int i = 0; i < 3000; i++) {
        int rc = fm_multipool_submit(s->m, task_count, &s->ran);
        if (rc == 0)
            atomic_fetch_add(&s->accepted, 1);
        else if (rc != -EAGAIN)
            FM_FAIL("submit = %d", rc);
    }
    return NULL;
}

static void *stress_tuner(void *arg)
{
    struct stress *s = arg;
    for (int i = 0; !atomic_load(&s->stop); i++) {
        FM_CHECK_EQ(fm_multipool_tune(s->m, 1 + i % 4), 0);
        FM_CHECK(fm_multipool_running(s->m) >= 0);
        FM_CHECK(fm_multipool_waiting(s->m) >= 0);
        sched_yield();
    }
    return NULL;
}

static void stress_case(fm_lb lb, size_t qcap, int nonblocking)
{
    fm_pool_opts o = {.queue_capacity = qcap, .nonblocking = nonblocking};
    struct stress s = {.m = new_multi(4, 2, lb, &o)};
    pthread_t sub[4], tuner;
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(pthread_create(&sub[i], NULL, stress_submitter, &s), 0);
    FM_CHECK_EQ(pthread_create(&tuner, NULL, stress_tuner, &s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(sub[i], NULL);
    atomic_store(&s.stop, 1);
    pthread_join(tuner, NULL);
    wait_all(s.m);
    FM_CHECK_EQ(atomic_load(&s.ran), atomic_load(&s.accepted));
    if (!nonblocking)
        FM_CHECK_EQ(atomic_load(&s.accepted), 4 * 3000);
    fm_multipool_destroy(s.m);
}

FM_TEST(stress_least_tasks_handoff) { stress_case(FM_LB_LEAST_TASKS, 0, 0); }
FM_TEST(stress_least_tasks_queue_nonblocking) { stress_case(FM_LB_LEAST_TASKS, 16, 1); }
FM_TEST(stress_round_robin_handoff_nonblocking) { stress_case(FM_LB_ROUND_ROBIN, 0, 1); }

FM_TEST_MAIN()
