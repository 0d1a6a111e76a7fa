/* Worker pool, hand-off mode: a worker that ends its task while submitters
 * are blocked for a free worker takes over the task of the one blocked the
 * longest (src/pool_wait.c). Checked here: the taken submit returns 0 and its
 * task runs exactly once, on the freed worker, in the order the submitters
 * blocked; running never exceeds the capacity; and when release, a timeout
 * or a tune race the take-over, every submit that returned 0 had its task
 * run and no other task ran.
 */
#include "pool_test_util.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define RACE_ROUNDS 40 /* the sanitizers are about 10x slower: fewer rounds */
#else
#define RACE_ROUNDS 200
#endif

/* ---- a task that notes the order it ran in and the thread it ran on ---- */

struct order_log {
    atomic_int next;
    int slot[16];
    pthread_t ran_on[16];
};

struct order_task {
    struct order_log *log;
    int id;
};

static void task_log_order(void *arg)
{
    struct order_task *t = arg;
    int at = atomic_fetch_add(&t->log->next, 1);
    t->log->slot[at] = t->id;
    t->log->ran_on[at] = pthread_self();
}

/* A gate task that also notes its thread, so the test can tell the worker. */
struct gate_on {
    struct gate gate;
    _Atomic(pthread_t) thread;
};

static void task_gate_on(void *arg)
{
    struct gate_on *g = arg;
    atomic_store(&g->thread, pthread_self());
    gate_pass(&g->gate);
}

/* Blocked submitters are served oldest first, each task on the one worker of a
 * capacity-1 pool as soon as the task before it ends; no thread is started. */
FM_TEST(handoff_freed_worker_takes_blocked_tasks_in_order)
{
    enum { N = 4 };
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct gate_on busy;
    gate_init(&busy.gate);
    FM_CHECK_EQ(fm_pool_submit(p, task_gate_on, &busy), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&busy.gate.entered) == 1, 10000));

    struct order_log log = {0};
    struct order_task tasks[N];
    struct submitter s[N];
    for (int i = 0; i < N; i++) {
        tasks[i] = (struct order_task){&log, i};
        submitter_start(&s[i], p, SUBMIT_PLAIN, task_log_order, &tasks[i], 0);
        FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == i + 1, 10000));
    }
    gate_open(&busy.gate);
    for (int i = 0; i < N; i++) {
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s[i].done) == 1, 10000));
        FM_CHECK_EQ(atomic_load(&s[i].rc), 0);
        submitter_join(&s[i]);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&log.next), N);
    for (int i = 0; i < N; i++) {
        FM_CHECK_EQ(log.slot[i], i);
        FM_CHECK(pthread_equal(log.ran_on[i], atomic_load(&busy.thread)));
    }
    struct fm_pool_stats st = pool_stats(p);
    FM_CHECK_EQ(st.threads_created, 1);
    FM_CHECK_EQ(st.submitted, N + 1);
    FM_CHECK_EQ(st.completed, N + 1);
    FM_CHECK_EQ(st.rejected, 0);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    fm_pool_destroy(p);
}

/* ---- races: a take-over against release, a timeout, a tune ---- */

enum race { RACE_RELEASE, RACE_TIMEOUT, RACE_TUNE };

enum { RACE_CAP = 2, RACE_WAITERS = 3, RACE_CAP_MAX = 3 };

struct race_round {
    atomic_int ran;
    atomic_int inside;
    atomic_int over_cap; /* a task saw more tasks running than the pool may hold */
};

static void task_race(void *arg)
{
    struct race_round *r = arg;
    if (atomic_fetch_add(&r->inside, 1) + 1 > RACE_CAP_MAX)
        atomic_store(&r->over_cap, 1);
    atomic_fetch_add(&r->ran, 1);
    atomic_fetch_sub(&r->inside, 1);
}

/* What races the workers' take-over, from a thread of its own. */
struct racer {
    pthread_t th;
    fm_pool *pool;
    enum race what;
};

static void *racer_main(void *arg)
{
    struct racer *rc = arg;
    if (rc->what == RACE_RELEASE)
        fm_pool_release(rc->pool);
    else if (rc->what == RACE_TUNE)
        fm_pool_tune(rc->pool, RACE_CAP_MAX);
    return NULL;
}

/* One round: a saturated pool with blocked submitters; the busy tasks end
 * while the racer acts. Every submit that returned 0 had its task run, once;
 * the others got the error the race allows. */
static void race_round(enum race what, int round)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(RACE_CAP, &o);
    struct gate g[RACE_CAP];
    for (int i = 0; i < RACE_CAP; i++) {
        gate_init(&g[i]);
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g[i]), 0);
    }
    for (int i = 0; i < RACE_CAP; i++)
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g[i].entered) == 1, 10000));
    struct race_round r = {0};
    struct submitter s[RACE_WAITERS];
    /* The timeout race: deadlines spread over 0.4-2 ms around the gates' opening. */
    int64_t timeout = what == RACE_TIMEOUT ? (round % 5 + 1) * 400000 : 0;
    for (int i = 0; i < RACE_WAITERS; i++)
        submitter_start(&s[i], p, what == RACE_TIMEOUT ? SUBMIT_TIMEOUT : SUBMIT_PLAIN, task_race,
                        &r, timeout);
    if (what != RACE_TIMEOUT)
        FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == RACE_WAITERS, 10000));
    struct racer racer = {.pool = p, .what = what};
    if (pthread_create(&racer.th, NULL, racer_main, &racer) != 0)
        FM_FAIL("pthread_create failed");
    for (int i = 0; i < RACE_CAP; i++)
        gate_open(&g[(i + round) % RACE_CAP]);
    pthread_join(racer.th, NULL);

    int accepted = 0;
    for (int i = 0; i < RACE_WAITERS; i++) {
        submitter_join(&s[i]);
        int rc = atomic_load(&s[i].rc);
        if (rc == 0)
            accepted++;
        else if (what == RACE_RELEASE)
            FM_CHECK_EQ(rc, -ESHUTDOWN);
        else
            FM_CHECK_EQ(rc, what == RACE_TIMEOUT ? -ETIMEDOUT : 0);
    }
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0); /* the case's time limit guards hangs */
    FM_CHECK_EQ(atomic_load(&r.ran), accepted);
    FM_CHECK_EQ(atomic_load(&r.over_cap), 0);
    struct fm_pool_stats st = pool_stats(p);
    FM_CHECK_EQ(st.submitted, (uint64_t)(accepted + RACE_CAP));
    FM_CHECK_EQ(st.completed, st.submitted);
    FM_CHECK_EQ(st.waiting, 0);
    fm_pool_destroy(p);
}

FM_TEST(handoff_takeover_races_release)
{
    for (int i = 0; i < RACE_ROUNDS; i++)
        race_round(RACE_RELEASE, i);
}

FM_TEST(handoff_takeover_races_timeout)
{
    for (int i = 0; i < RACE_ROUNDS; i++)
        race_round(RACE_TIMEOUT, i);
}

FM_TEST(handoff_takeover_races_tune_up)
{
    for (int i = 0; i < RACE_ROUNDS; i++)
        race_round(RACE_TUNE, i);
}

/* A task of the pool that submits into its own saturated pool still gets
 * -EDEADLK, and is never taken over (it would wait for itself). */
struct nested {
    fm_pool *pool;
    atomic_int rc;
};

static void task_nested_submit(void *arg)
{
    struct nested *n = arg;
    atomic_store(&n->rc, fm_pool_submit(n->pool, task_nop, NULL));
}

FM_TEST(handoff_nested_submit_into_saturated_pool_is_edeadlk)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct nested n = {.pool = p};
    atomic_init(&n.rc, 12345);
    FM_CHECK_EQ(fm_pool_submit(p, task_nested_submit, &n), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&n.rc), -EDEADLK);
    fm_pool_destroy(p);
}

FM_TEST_MAIN()
