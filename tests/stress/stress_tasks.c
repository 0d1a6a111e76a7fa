/* Task groups and futures under stress: groups with nested submits on small
 * pools, cancellation racing completion, futures destroyed while their call
 * runs, multipool submitters racing release and reboot.
 *
 * Invariants checked:
 *   - every job a submit accepted ran exactly once (a per-job counter), and
 *     no refused one ran;
 *   - fm_group_wait gives 0 when no job failed, else one of the failures
 *     actually returned, and the group is cancelled exactly when a job failed
 *     or cancel was called;
 *   - a future waited for gives its call's result; one destroyed early never
 *     loses the call (the call count) and leaks nothing (ASan/LSan);
 *   - the watchdog reports only tasks that ran at least its threshold, and
 *     dumps and reports run safely while workers start, run and expire;
 *   - nothing hangs (the runner's time limit).
 * Work is bounded by iteration counts; FM_STRESS_SCALE=n runs n times as many.
 * Speed never decides pass or fail.
 */
#include "../pool_test_util.h"

static int scale(void)
{
    const char *s = getenv("FM_STRESS_SCALE");
    return s && atoi(s) > 0 ? atoi(s) : 1;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- groups with nested submits ---- */

#define MAX_JOBS 4096

struct nest {
    fm_group *g;
    atomic_int next;            /* next free job record */
    atomic_int runs[MAX_JOBS];  /* per job: times it ran */
    atomic_int accepted[MAX_JOBS];
    int fail_at;                /* job index that fails, or -1 */
};
struct job_rec {
    struct nest *n;
    int id;
    int children;
};
static struct job_rec recs[MAX_JOBS];

static int job_nested(void *arg);

/* Spawns up to k children of the job; each accepted one is marked. */
static void spawn(struct nest *n, int k, int children_each)
{
    for (int c = 0; c < k; c++) {
        int id = atomic_fetch_add(&n->next, 1);
        if (id >= MAX_JOBS)
            return;
        recs[id] = (struct job_rec){n, id, children_each};
        atomic_store(&n->accepted[id], 1); /* before: the job may run at once */
        int rc = fm_group_submit(n->g, job_nested, &recs[id]);
        if (rc != 0) {
            atomic_store(&n->accepted[id], 0);
            if (rc != -ECANCELED)
                FM_FAIL("nested submit = %d", rc);
        }
    }
}

static int job_nested(void *arg)
{
    struct job_rec *r = arg;
    struct nest *n = r->n;
    if (atomic_fetch_add(&n->runs[r->id], 1) != 0)
        FM_FAIL("job %d ran twice", r->id);
    if (r->id == n->fail_at)
        return -EIO;
    if (fm_group_cancelled(n->g))
        return 0;
    spawn(n, r->children, r->children > 0 ? r->children - 1 : 0);
    return 0;
}

static void nested_round(int cap, size_t qcap, int limit, int fail, uint64_t *seed)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(cap, &o);
    static struct nest n;
    memset(&n, 0, sizeof n);
    n.g = NULL;
    FM_CHECK_EQ(fm_group_new(&n.g, p, limit), 0);
    n.fail_at = fail ? (int)(rng_next(seed) % 200) : -1;
    spawn(&n, 3, 4); /* 3 roots, each a tree of fan-out 4, 3, 2, 1 */
    int rc = fm_group_wait(n.g, FM_FOREVER);
    int total = atomic_load(&n.next) < MAX_JOBS ? atomic_load(&n.next) : MAX_JOBS;
    int failed_ran = 0;
    for (int i = 0; i < total; i++) {
        int runs = atomic_load(&n.runs[i]), acc = atomic_load(&n.accepted[i]);
        FM_CHECK_EQ(runs, acc);
        if (i == n.fail_at && runs)
            failed_ran = 1;
    }
    FM_CHECK_EQ(rc, failed_ran ? -EIO : 0);
    FM_CHECK_EQ(fm_group_cancelled(n.g), failed_ran);
    fm_group_destroy(n.g);
    fm_pool_destroy(p);
}

static void nested_stress(int cap, size_t qcap, int limit)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(cap * 31 + limit);
    for (int i = 0; i < 20 * scale(); i++)
        nested_round(cap, qcap, limit, i % 2, &seed);
}

FM_TEST(nested_groups_handoff_cap1) { nested_stress(1, 0, 0); }
FM_TEST(nested_groups_handoff_cap3_limit2) { nested_stress(3, 0, 2); }
FM_TEST(nested_groups_queue_cap2_limit1) { nested_stress(2, 8, 1); }
FM_TEST(nested_groups_queue_cap4) { nested_stress(4, 64, 0); }

/* ---- cancellation racing completion ---- */

struct race {
    fm_group *g;
    atomic_int ran;
    atomic_int accepted;
    atomic_int failures; /* jobs that returned non-zero */
};

static int job_maybe_fail(void *arg)
{
    struct race *r = arg;
    int k = atomic_fetch_add(&r->ran, 1);
    if (k % 97 == 96) {
        atomic_fetch_add(&r->failures, 1);
        return -EPIPE;
    }
    return 0;
}

struct race_thread {
    struct race *r;
    int jobs;
};

static void *race_submitter(void *arg)
{
    struct race_thread *t = arg;
    for (int i = 0; i < t->jobs; i++) {
        int rc = fm_group_submit(t->r->g, job_maybe_fail, t->r);
        if (rc == 0)
            atomic_fetch_add(&t->r->accepted, 1);
        else if (rc != -ECANCELED)
            FM_FAIL("submit = %d", rc);
    }
    return NULL;
}

static void *race_canceller(void *arg)
{
    struct race *r = arg;
    sched_yield();
    fm_group_cancel(r->g);
    return NULL;
}

static void cancel_race(size_t qcap, int limit, int with_cancel)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(3, &o);
    for (int round = 0; round < 30 * scale(); round++) {
        struct race r = {0};
        FM_CHECK_EQ(fm_group_new(&r.g, p, limit), 0);
        struct race_thread t = {&r, 150};
        pthread_t th[3], canc;
        for (int i = 0; i < 3; i++)
            FM_CHECK_EQ(pthread_create(&th[i], NULL, race_submitter, &t), 0);
        if (with_cancel)
            FM_CHECK_EQ(pthread_create(&canc, NULL, race_canceller, &r), 0);
        int early = fm_group_wait(r.g, 0); /* races the jobs: any answer but a hang */
        FM_CHECK(early == 0 || early == -ETIMEDOUT || early == -EPIPE);
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
        if (with_cancel)
            pthread_join(canc, NULL);
        int rc = fm_group_wait(r.g, FM_FOREVER);
        FM_CHECK_EQ(atomic_load(&r.ran), atomic_load(&r.accepted));
        FM_CHECK_EQ(rc, atomic_load(&r.failures) ? -EPIPE : 0);
        FM_CHECK_EQ(fm_group_cancelled(r.g), with_cancel || atomic_load(&r.failures) > 0);
        fm_group_destroy(r.g);
    }
    fm_pool_destroy(p);
}

FM_TEST(cancel_races_completion_handoff) { cancel_race(0, 0, 1); }
FM_TEST(cancel_races_completion_queue_limit) { cancel_race(16, 4, 1); }
FM_TEST(failure_races_submits_queue) { cancel_race(16, 0, 0); }

/* ---- futures destroyed while their call runs ---- */

static atomic_int calls_done;

static void *call_spin(void *arg)
{
    uintptr_t n = (uintptr_t)arg;
    for (uintptr_t i = 0; i < n % 64; i++)
        sched_yield();
    atomic_fetch_add(&calls_done, 1);
    return (void *)(n * 3);
}

struct fut_thread {
    fm_pool *p;
    uint64_t seed;
    int calls;
};

static void *future_churn(void *arg)
{
    struct fut_thread *t = arg;
    for (int i = 0; i < t->calls; i++) {
        uintptr_t v = (uintptr_t)(rng_next(&t->seed) % 1000);
        fm_future *f;
        int rc = fm_pool_call(t->p, call_spin, (void *)v, &f);
        if (rc != 0)
            FM_FAIL("fm_pool_call = %d", rc);
        switch (v % 3) {
        case 0: /* destroy at once, the call probably still running */
            fm_future_destroy(f);
            break;
        case 1: { /* wait a little, then drop it whatever happened */
            void *r = NULL;
            int w = fm_future_wait(f, (int64_t)(v % 5) * 1000, &r);
            FM_CHECK(w == 0 || w == -ETIMEDOUT);
            if (w == 0)
                FM_CHECK(r == (void *)(v * 3));
            fm_future_destroy(f);
            break;
        }
        default: { /* wait for the result */
            void *r = NULL;
            FM_CHECK_EQ(fm_future_wait(f, FM_FOREVER, &r), 0);
            FM_CHECK(r == (void *)(v * 3));
            FM_CHECK_EQ(fm_future_done(f), 1);
            fm_future_destroy(f);
        }
        }
    }
    return NULL;
}

static void futures_stress(int cap, size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(cap, &o);
    atomic_store(&calls_done, 0);
    struct fut_thread t[3];
    pthread_t th[3];
    int per = 1500 * scale();
    for (int i = 0; i < 3; i++) {
        t[i] = (struct fut_thread){p, 0x1234567ULL * (uint64_t)(i + 1), per};
        FM_CHECK_EQ(pthread_create(&th[i], NULL, future_churn, &t[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&calls_done), 3 * per);
    fm_pool_destroy(p);
}

FM_TEST(futures_destroyed_while_running_handoff) { futures_stress(4, 0); }
FM_TEST(futures_destroyed_while_running_queue) { futures_stress(2, 32); }

/* ---- multipool submitters racing release and reboot ---- */

struct mp_race {
    fm_multipool *m;
    atomic_int ran, accepted, stop;
};

static void *mp_submitter(void *arg)
{
    struct mp_race *r = arg;
    for (int i = 0; i < 2000; i++) {
        int rc = fm_multipool_submit(r->m, task_count, &r->ran);
        if (rc == 0)
            atomic_fetch_add(&r->accepted, 1);
        else if (rc != -ESHUTDOWN && rc != -EAGAIN)
            FM_FAIL("multipool submit = %d", rc);
    }
    return NULL;
}

static void multipool_release_race(fm_lb lb, size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    struct mp_race r = {0};
    FM_CHECK_EQ(fm_multipool_new(&r.m, 3, 2, lb, &o), 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(pthread_create(&th[i], NULL, mp_submitter, &r), 0);
    for (int i = 0; i < 10 * scale(); i++) {
        int rc = fm_multipool_release_timeout(r.m, i % 2 ? FM_FOREVER : 0);
        FM_CHECK(rc == 0 || rc == -ETIMEDOUT);
        FM_CHECK_EQ(fm_multipool_reboot(r.m), 0);
        FM_CHECK(fm_multipool_running(r.m) <= fm_multipool_cap(r.m));
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_wait(fm_multipool_pool(r.m, i), FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&r.ran), atomic_load(&r.accepted));
    fm_multipool_destroy(r.m);
}

FM_TEST(multipool_release_reboot_race_least_tasks) { multipool_release_race(FM_LB_LEAST_TASKS, 0); }
FM_TEST(multipool_release_reboot_race_round_robin_queue) { multipool_release_race(FM_LB_ROUND_ROBIN, 8); }

/* ---- diagnostics racing the workers ---- */

/* Tasks of 0-2 ms on a pool whose workers expire after 5 ms, a watchdog at
 * 1 ms, and a thread dumping the pool all along: every report is of a task
 * that ran at least the threshold, at most once per task, and nothing
 * crashes or races (TSan) while workers start, run and exit under the
 * readers. */
struct diag_race {
    fm_pool *p;
    atomic_int ran, reports, bad_reports, stop;
};

static void task_short_sleep(void *arg)
{
    struct diag_race *d = arg;
    int k = atomic_fetch_add(&d->ran, 1);
    if (k % 3)
        fm_test_sleep_ms(k % 3);
}

static void on_slow(const struct fm_task_info *t, void *ctx)
{
    struct diag_race *d = ctx;
    atomic_fetch_add(&d->reports, 1);
    if (t->fn != task_short_sleep || t->arg != d || t->running_ns < 1000000)
        atomic_fetch_add(&d->bad_reports, 1);
}

static void *diag_dumper(void *arg)
{
    struct diag_race *d = arg;
    FILE *null = fopen("/dev/null", "w");
    if (!null)
        FM_FAIL("fopen /dev/null");
    struct fm_task_info t[8];
    char json[512];
    while (!atomic_load(&d->stop)) {
        FM_CHECK_EQ(fm_pool_dump(d->p, null), 0);
        int n = fm_pool_busy_tasks(d->p, t, 8);
        FM_CHECK(n >= 0 && n <= 4);
        for (int i = 0; i < n && i < 8; i++)
            FM_CHECK(t[i].fn == task_short_sleep && t[i].arg == d);
        FM_CHECK(fm_pool_stats_json(d->p, json, sizeof json) < (int)sizeof json);
        FM_CHECK(fm_threads_live() >= 0);
    }
    fclose(null);
    return NULL;
}

static void diag_race(size_t qcap)
{
    static struct diag_race d;
    memset(&d, 0, sizeof d);
    fm_pool_opts o = {.queue_capacity = qcap,
                      .expiry_ns = 5 * MS_NS,
                      .slow_task_ns = 1 * MS_NS,
                      .on_slow_task = on_slow,
                      .ctx = &d};
    d.p = new_pool(4, &o);
    pthread_t dumper;
    FM_CHECK_EQ(pthread_create(&dumper, NULL, diag_dumper, &d), 0);
    int n = 300 * scale();
    for (int i = 0; i < n; i++) {
        FM_CHECK_EQ(fm_pool_submit(d.p, task_short_sleep, &d), 0);
        if (i % 50 == 49) /* let the workers expire now and then */
            fm_test_sleep_ms(8);
    }
    FM_CHECK_EQ(fm_pool_wait(d.p, FM_FOREVER), 0);
    atomic_store(&d.stop, 1);
    pthread_join(dumper, NULL);
    fm_pool_destroy(d.p);
    FM_CHECK_EQ(atomic_load(&d.ran), n);
    FM_CHECK(atomic_load(&d.reports) <= n);
    FM_CHECK_EQ(atomic_load(&d.bad_reports), 0);
}

FM_TEST(diagnostics_race_workers_handoff) { diag_race(0); }
FM_TEST(diagnostics_race_workers_queue) { diag_race(16); }

FM_TEST_MAIN()
