/* Worker pool stress: submitter threads racing with tune, release/reboot,
 * expiry, wait and nested submits, in both modes, blocking and non-blocking.
 *
 * Invariants checked:
 *   - every submit that returned 0 ran exactly once, every other one never
 *     (a per-task run counter, checked after fm_pool_destroy, and a task that
 *     finds its counter already set fails at once);
 *   - submits return only the errors their call can give in the scenario
 *     (a rejected submit is retried a bounded number of times), and the
 *     pool's submitted/completed/rejected counters match the test's own;
 *   - running never exceeds the capacity where that is well defined: with a
 *     fixed capacity, continuously, also across release/reboot and expiry;
 *     with tune, only after each tune once the surplus workers have left;
 *   - after fm_pool_wait returns 0 with the submitters paused, every task
 *     accepted so far has run, and the counters add up;
 *   - after fm_pool_release_timeout returns 0, no worker is left (running 0),
 *     and at the end the start/exit hooks ran once per thread created;
 *   - nothing hangs (the runner's time limit; FM_WAIT_UNTIL with 10 s limits).
 * Work is bounded by iteration counts, not by time: FM_STRESS_SCALE=n runs n
 * times as many. FM_STRESS_SEED=n replays a seed (the schedule of threads
 * still varies). Speed never decides pass or fail.
 */
#include "../pool_test_util.h"

#include <inttypes.h>

#define NSUB 4

static int rng_range(uint64_t *s, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(fm_test_rng_next(s) % (uint64_t)(hi - lo + 1));
}

static uint64_t case_seed(void)
{
    const char *env = getenv("FM_STRESS_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)fm_test_now_ns() ^ (uint64_t)getpid();
    if (seed == 0)
        seed = 1;
    printf("  seed %" PRIu64 "\n", seed);
    fflush(stdout);
    return seed;
}

static int scale(void)
{
    const char *env = getenv("FM_STRESS_SCALE");
    int s = env ? atoi(env) : 1;
    return s > 0 ? s : 1;
}

static void sleep_us(int us)
{
    struct timespec ts = {0, (long)us * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- one stress run ---- */

enum { ST_NONE = 0, ST_ACCEPTED = 1, ST_REJECTED = 2 };

struct run {
    fm_pool *p;
    size_t qcap;
    int nonblocking;
    int cap;          /* fixed capacity, or the largest the tuner picks */
    int per;          /* submits per submitter */
    size_t total;     /* NSUB * per parent ids; children follow */
    atomic_uchar *runs;
    unsigned char *state; /* ST_*, parents written by their submitter, children by the task */
    uint64_t seed;

    /* what the scenario does */
    int tune;         /* a tuner thread resizes the pool */
    int tune_check;   /* ... and checks running <= cap after each resize */
    int cycles;       /* a controller releases and reboots the pool */
    int fixed_check;  /* a sampler checks running <= cap all the time */
    int bursty;       /* submitters pause between bursts (expiry kicks in) */
    int waiter;       /* a thread calls fm_pool_wait with short timeouts */
    int nested;       /* some tasks submit a child task */
    int max_blocking;
    int rounds;       /* > 0: submitters pause every per/rounds submits for a check */

    atomic_int stop;
    atomic_int hook_starts, hook_exits;
    atomic_int ntunes, ncycles;
    atomic_long rejected_attempts; /* failed submits, retries and nested ones included */
    pthread_barrier_t barrier;
};

static struct run R;

static void stress_task(void *arg)
{
    size_t id = (size_t)(uintptr_t)arg - 1;
    if (id >= 2 * R.total)
        FM_FAIL("task with a bad argument %zu", id);
    if (atomic_fetch_add(&R.runs[id], 1) != 0)
        FM_FAIL("task %zu ran twice", id);
    uint64_t s = id * 0x9E3779B97F4A7C15ULL + 1;
    int spin = (int)(fm_test_rng_next(&s) % 300);
    for (volatile int i = 0; i < spin; i++) {
    }
    if (id % 13 == 0)
        sched_yield();
    if (R.nested && id < R.total && id % 7 == 0) {
        int rc = fm_pool_submit(R.p, stress_task, (void *)(uintptr_t)(id + R.total + 1));
        if (rc != 0 && rc != -EDEADLK && rc != -EAGAIN && rc != -ESHUTDOWN)
            FM_FAIL("nested submit returned %d (%s)", rc, fm_strerror(rc));
        if (rc != 0)
            atomic_fetch_add(&R.rejected_attempts, 1);
        R.state[id + R.total] = rc == 0 ? ST_ACCEPTED : ST_REJECTED;
    }
}

static void hook_start(void *ctx)
{
    if (ctx != &R)
        FM_FAIL("hook ctx");
    atomic_fetch_add(&R.hook_starts, 1);
}

static void hook_exit(void *ctx)
{
    if (ctx != &R)
        FM_FAIL("hook ctx");
    atomic_fetch_add(&R.hook_exits, 1);
}

static void check_rc(int rc, int kind, int64_t timeout)
{
    if (rc == 0)
        return;
    if (rc == -ESHUTDOWN && R.cycles)
        return;
    if (rc == -EAGAIN && (R.nonblocking || R.max_blocking || (kind == 1 && timeout == 0)))
        return;
    if (rc == -ETIMEDOUT && kind == 1 && timeout > 0)
        return;
    FM_FAIL("submit (kind %d, timeout %" PRId64 ") returned %d (%s)", kind, timeout, rc,
            fm_strerror(rc));
}

static void *submitter_thread(void *arg)
{
    int idx = (int)(intptr_t)arg;
    uint64_t s = R.seed ^ (0x1234567ULL * (uint64_t)(idx + 1));
    int round_len = R.rounds > 0 ? R.per / R.rounds : 0;
    int burst_left = 0;
    for (int k = 0; k < R.per; k++) {
        size_t id = (size_t)idx * (size_t)R.per + (size_t)k;
        if (R.bursty && burst_left-- <= 0) {
            burst_left = rng_range(&s, 1, 64);
            sleep_us(rng_range(&s, 0, 6000));
        }
        void *arg_id = (void *)(uintptr_t)(id + 1);
        int kind = rng_range(&s, 0, 7), rc;
        int64_t timeout = 0;
        if (kind <= 4)
            kind = 0;
        else if (kind == 5)
            kind = 2;
        else {
            kind = 1;
            int t = rng_range(&s, 0, 3);
            timeout = t == 0 ? 0 : t == 1 ? 200 * 1000 : t == 2 ? 2 * MS_NS : FM_FOREVER;
        }
        /* A saturated or closed pool is retried a bounded number of times,
         * so that most tasks get in and the submits overlap the other
         * threads' work rather than racing through a closed pool. */
        for (int attempt = 0;; attempt++) {
            if (kind == 0)
                rc = fm_pool_submit(R.p, stress_task, arg_id);
            else if (kind == 2)
                rc = fm_pool_invoke(R.p, arg_id);
            else
                rc = fm_pool_submit_timeout(R.p, stress_task, arg_id, timeout);
            check_rc(rc, kind, timeout);
            if (rc == 0)
                break;
            atomic_fetch_add(&R.rejected_attempts, 1);
            if (attempt >= 50 || rc == -ETIMEDOUT)
                break;
            if (rc == -ESHUTDOWN)
                sleep_us(20);
            else
                sched_yield();
        }
        R.state[id] = rc == 0 ? ST_ACCEPTED : ST_REJECTED;
        if (round_len > 0 && (k + 1) % round_len == 0) {
            pthread_barrier_wait(&R.barrier); /* paused: main checks */
            pthread_barrier_wait(&R.barrier); /* resume */
        }
    }
    return NULL;
}

/* Resizes the pool at random. With tune_check, after each resize waits until
 * the surplus workers are gone, then samples running <= cap for a while (no
 * tune in flight). */
static void *tuner_thread(void *arg)
{
    (void)arg;
    uint64_t s = R.seed ^ 0xABCDEFULL;
    while (!atomic_load(&R.stop)) {
        int c = rng_range(&s, 1, R.cap);
        int rc = fm_pool_tune(R.p, c);
        if (rc != 0)
            FM_FAIL("tune(%d) = %d", c, rc);
        atomic_fetch_add(&R.ntunes, 1);
        if (R.tune_check) {
            if (!FM_WAIT_UNTIL(fm_pool_running(R.p) <= c, 10000))
                FM_FAIL("running %d stayed above capacity %d after tune", fm_pool_running(R.p), c);
            for (int i = 0; i < 200; i++) {
                int r = fm_pool_running(R.p);
                if (r > c)
                    FM_FAIL("running %d > capacity %d (no tune in flight)", r, c);
                if (fm_pool_cap(R.p) != c)
                    FM_FAIL("cap %d != %d", fm_pool_cap(R.p), c);
                if (fm_pool_available(R.p) < 0)
                    FM_FAIL("available < 0");
                if (i % 16 == 0)
                    sleep_us(rng_range(&s, 0, 200));
            }
        } else {
            sleep_us(rng_range(&s, 0, 1500));
        }
    }
    return NULL;
}

/* Releases and reboots the pool at random. */
static void *cycler_thread(void *arg)
{
    (void)arg;
    uint64_t s = R.seed ^ 0x5151ULL;
    while (!atomic_load(&R.stop)) {
        sleep_us(rng_range(&s, 0, 2000));
        int how = rng_range(&s, 0, 3);
        if (how == 0) {
            if (fm_pool_release(R.p) != 0)
                FM_FAIL("release");
            if (fm_pool_is_closed(R.p) != 1)
                FM_FAIL("not closed after release");
            sleep_us(rng_range(&s, 0, 500));
        } else {
            int64_t t = how == 1 ? 0 : how == 2 ? 1 * MS_NS : FM_FOREVER;
            int rc = fm_pool_release_timeout(R.p, t);
            if (rc != 0 && !(rc == -ETIMEDOUT && t != FM_FOREVER))
                FM_FAIL("release_timeout(%" PRId64 ") = %d", t, rc);
            int r0;
            if (rc == 0 && (r0 = fm_pool_running(R.p)) != 0) {
                struct fm_pool_stats st = pool_stats(R.p);
                int later = FM_WAIT_UNTIL(fm_pool_running(R.p) == 0, 1000);
                FM_FAIL("running %d after release_timeout(%" PRId64 ") returned 0 (closed %d; "
                        "stats: running %d idle %d created %llu exited %llu; %s)",
                        r0, t, fm_pool_is_closed(R.p), st.running, st.idle,
                        (unsigned long long)st.threads_created,
                        (unsigned long long)st.threads_exited,
                        later ? "0 within 1 s" : "still not 0 after 1 s");
            }
        }
        if (fm_pool_reboot(R.p) != 0)
            FM_FAIL("reboot");
        atomic_fetch_add(&R.ncycles, 1);
    }
    return NULL;
}

/* Checks running <= cap all the time, for a pool whose capacity never moves. */
static void *sampler_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&R.stop)) {
        int r = fm_pool_running(R.p);
        if (r > R.cap)
            FM_FAIL("running %d > capacity %d", r, R.cap);
        if (fm_pool_available(R.p) < 0)
            FM_FAIL("available %d < 0", fm_pool_available(R.p));
        if (fm_pool_waiting(R.p) < 0)
            FM_FAIL("waiting < 0");
        sched_yield();
    }
    return NULL;
}

static void *waiter_thread(void *arg)
{
    (void)arg;
    uint64_t s = R.seed ^ 0x77ULL;
    while (!atomic_load(&R.stop)) {
        int64_t t = rng_range(&s, 0, 2) * MS_NS;
        int rc = fm_pool_wait(R.p, t);
        if (rc != 0 && rc != -ETIMEDOUT)
            FM_FAIL("wait = %d", rc);
        sleep_us(rng_range(&s, 0, 300));
    }
    return NULL;
}

/* After a fm_pool_wait that returned 0 with every submitter paused: every
 * accepted task ran, no rejected one did. */
static void check_all_ran(size_t upto_per_submitter)
{
    for (int i = 0; i < NSUB; i++)
        for (size_t k = 0; k < upto_per_submitter; k++) {
            size_t id = (size_t)i * (size_t)R.per + k;
            int want = R.state[id] == ST_ACCEPTED;
            if (atomic_load(&R.runs[id]) != want)
                FM_FAIL("task %zu: ran %d times, accepted %d", id, atomic_load(&R.runs[id]), want);
        }
}

static void stress_run(int cap, size_t qcap, int nonblocking)
{
    R.seed = case_seed();
    uint64_t s = R.seed;
    R.cap = cap;
    R.qcap = qcap;
    R.nonblocking = nonblocking;
    R.per = 3000 * scale();
    if (R.rounds > 0)
        R.per -= R.per % R.rounds;
    R.total = (size_t)NSUB * (size_t)R.per;
    R.runs = calloc(2 * R.total, sizeof *R.runs);
    R.state = calloc(2 * R.total, 1);
    FM_CHECK(R.runs && R.state);
    atomic_init(&R.stop, 0);
    atomic_init(&R.hook_starts, 0);
    atomic_init(&R.hook_exits, 0);
    atomic_init(&R.rejected_attempts, 0);

    fm_pool_opts o = {.queue_capacity = qcap,
                      .nonblocking = nonblocking,
                      .max_blocking = R.max_blocking,
                      .fn = stress_task,
                      .on_worker_start = hook_start,
                      .on_worker_exit = hook_exit,
                      .ctx = &R,
                      .expiry_ns = R.bursty ? rng_range(&s, 1, 5) * MS_NS : -1};
    if (R.cycles && !R.bursty)
        o.expiry_ns = rng_range(&s, 0, 1) ? 2 * MS_NS : -1;
    FM_CHECK_EQ(fm_pool_new(&R.p, cap, &o), 0);

    pthread_barrier_init(&R.barrier, NULL, NSUB + 1);
    pthread_t sub[NSUB], tuner, cycler, sampler, waiter;
    for (int i = 0; i < NSUB; i++)
        FM_CHECK_EQ(pthread_create(&sub[i], NULL, submitter_thread, (void *)(intptr_t)i), 0);
    if (R.tune)
        FM_CHECK_EQ(pthread_create(&tuner, NULL, tuner_thread, NULL), 0);
    if (R.cycles)
        FM_CHECK_EQ(pthread_create(&cycler, NULL, cycler_thread, NULL), 0);
    if (R.fixed_check)
        FM_CHECK_EQ(pthread_create(&sampler, NULL, sampler_thread, NULL), 0);
    if (R.waiter)
        FM_CHECK_EQ(pthread_create(&waiter, NULL, waiter_thread, NULL), 0);

    for (int r = 1; r <= R.rounds; r++) {
        pthread_barrier_wait(&R.barrier); /* submitters paused */
        FM_CHECK_EQ(fm_pool_wait(R.p, FM_FOREVER), 0);
        check_all_ran((size_t)R.per / (size_t)R.rounds * (size_t)r);
        struct fm_pool_stats st = pool_stats(R.p);
        FM_CHECK_EQ(st.completed, st.submitted);
        FM_CHECK_EQ(st.queued, 0);
        pthread_barrier_wait(&R.barrier); /* resume */
    }

    for (int i = 0; i < NSUB; i++)
        pthread_join(sub[i], NULL);
    atomic_store(&R.stop, 1);
    if (R.tune)
        pthread_join(tuner, NULL);
    if (R.cycles)
        pthread_join(cycler, NULL);
    if (R.fixed_check)
        pthread_join(sampler, NULL);
    if (R.waiter)
        pthread_join(waiter, NULL);

    /* quiesce and check the counters against our own bookkeeping */
    FM_CHECK_EQ(fm_pool_reboot(R.p), 0);
    FM_CHECK_EQ(fm_pool_wait(R.p, FM_FOREVER), 0);
    struct fm_pool_stats st = pool_stats(R.p);
    uint64_t acc = 0, rej = 0;
    for (size_t id = 0; id < 2 * R.total; id++) {
        acc += R.state[id] == ST_ACCEPTED;
        rej += R.state[id] == ST_REJECTED;
    }
    FM_CHECK_EQ(st.submitted, acc);
    FM_CHECK_EQ(st.completed, acc);
    FM_CHECK_EQ(st.rejected, atomic_load(&R.rejected_attempts));
    FM_CHECK_EQ(st.queued, 0);
    FM_CHECK_EQ(st.waiting, 0);
    FM_CHECK(acc > 0);
    printf("  accepted %" PRIu64 ", rejected %" PRIu64 ", threads %" PRIu64 ", tunes %d, cycles %d\n",
           acc, rej, st.threads_created, atomic_load(&R.ntunes), atomic_load(&R.ncycles));
    /* every worker gone: the thread counters and the hooks agree */
    FM_CHECK_EQ(fm_pool_release_timeout(R.p, FM_FOREVER), 0);
    st = pool_stats(R.p);
    FM_CHECK_EQ(st.running, 0);
    FM_CHECK_EQ(st.idle, 0);
    FM_CHECK_EQ(st.threads_exited, st.threads_created);
    uint64_t created = st.threads_created;
    FM_CHECK_EQ(atomic_load(&R.hook_starts), (long long)created);
    FM_CHECK_EQ(atomic_load(&R.hook_exits), (long long)created);

    fm_pool_destroy(R.p);

    for (size_t id = 0; id < 2 * R.total; id++) {
        int want = R.state[id] == ST_ACCEPTED;
        if (atomic_load(&R.runs[id]) != want)
            FM_FAIL("task %zu: ran %d times, accepted %d (state %d)", id, atomic_load(&R.runs[id]),
                    want, R.state[id]);
    }
    FM_CHECK_EQ(atomic_load(&R.hook_starts), (long long)created);
    FM_CHECK_EQ(atomic_load(&R.hook_exits), (long long)created);
    pthread_barrier_destroy(&R.barrier);
    free(R.runs);
    free(R.state);
}

/* ---- scenarios, each in hand-off and queue mode, blocking and not ---- */

#define STRESS_CASES(name, setup, cap)                                                   \
    FM_TEST(name##_handoff_blocking) { setup; stress_run(cap, 0, 0); }                  \
    FM_TEST(name##_handoff_nonblocking) { setup; stress_run(cap, 0, 1); }               \
    FM_TEST(name##_queue_blocking) { setup; stress_run(cap, 16, 0); }                   \
    FM_TEST(name##_queue_nonblocking) { setup; stress_run(cap, 16, 1); }

/* submitters racing with random tune; running <= cap checked between tunes */
STRESS_CASES(tune, (R.tune = 1, R.tune_check = 1), 8)

/* submitters racing with release / release_timeout / reboot cycles at a
 * fixed capacity: running never exceeds it, also across reboot */
STRESS_CASES(release_reboot, (R.cycles = 1, R.fixed_check = 1), 4)

/* bursts separated by pauses longer than the 1-5 ms expiry: workers expire
 * while new submits arrive */
STRESS_CASES(expiry_bursts, (R.bursty = 1, R.fixed_check = 1), 4)

/* rounds: submitters pause, fm_pool_wait must see everything done; tune and
 * short waits race with the submits */
STRESS_CASES(wait_rounds, (R.rounds = 10, R.tune = 1, R.waiter = 1), 6)

/* everything at once, with nested submits and a limit on blocked submitters */
STRESS_CASES(chaos,
             (R.tune = 1, R.cycles = 1, R.bursty = 1, R.waiter = 1, R.nested = 1,
              R.max_blocking = 2),
             6)

/* nested submits from tasks into their own pool, the saturated case included */
STRESS_CASES(nested, (R.nested = 1, R.fixed_check = 1), 2)

FM_TEST_MAIN()
