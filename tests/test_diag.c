/* Pool diagnostics: fm_pool_dump, fm_pool_busy_tasks, the slow-task
 * watchdog, fm_pool_stats_json, fm_threads_live.
 *
 * This program is linked with -rdynamic (ENABLE_EXPORTS) so that dladdr can
 * name its non-static task functions. Slow tasks are held on gates, and the
 * watchdog's reports are awaited with FM_WAIT_UNTIL: the thresholds are
 * short (tens of ms) and the limits long, so speed never decides a case.
 */
#include "pool_test_util.h"

#include <stdio.h>

/* Task functions with external linkage, so that dladdr names them. */
void diag_stuck_task(void *arg);
void diag_other_task(void *arg);

void diag_stuck_task(void *arg)
{
    gate_pass(arg);
}

void diag_other_task(void *arg)
{
    gate_pass(arg);
}

/* ---- fm_threads_live ---- */

FM_TEST(threads_live_counts_workers_and_drops_after_destroy)
{
    int base = fm_threads_live();
    FM_CHECK(base >= 0);
    fm_pool_opts o = {.prealloc = 1};
    fm_pool *p = new_pool(5, &o);
    FM_CHECK(fm_threads_live() >= base + 5);
    fm_pool_destroy(p);
    /* only the maintenance thread may have been added */
    FM_CHECK(fm_threads_live() <= base + 1);
    int with_maint = fm_threads_live();
    p = new_pool(3, NULL);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 3, 10000));
    FM_CHECK(fm_threads_live() >= with_maint + 3);
    gate_open(&g);
    fm_pool_destroy(p);
    FM_CHECK(fm_threads_live() <= base + 1);
}

FM_TEST(threads_live_drops_after_expiry)
{
    fm_pool_opts o = {.expiry_ns = 20 * MS_NS};
    fm_pool *p = new_pool(4, &o);
    atomic_int n = 0;
    for (int i = 0; i < 100; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &n), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    /* every worker expires and is joined: only the maintenance thread stays */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0 && fm_threads_live() == 1, 20000));
    fm_pool_destroy(p);
    FM_CHECK_EQ(fm_threads_live(), 1);
}

FM_TEST(threads_live_is_zero_in_a_fork_child)
{
    SKIP_UNDER_TSAN();
    /* No expiry: no maintenance thread starting around the fork. The
     * workers are idle before it: a thread inside the allocator at fork time
     * (a starting thread allocates) would leave its lock held in the child,
     * where the sanitizers' allocators then hang. */
    fm_pool_opts o = {.prealloc = 1, .expiry_ns = -1};
    fm_pool *p = new_pool(3, &o);
    FM_CHECK(fm_threads_live() >= 3);
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).idle == 3, 10000));
    pid_t pid = fork();
    if (pid == 0) {
        int ok = fm_threads_live() == 0;
        /* the child's own threads count again */
        ok = ok && fm_pool_reboot(p) == 0 && fm_threads_live() >= 3 &&
             fm_threads_live() <= 4; /* + the maintenance thread, once started */
        fm_pool_destroy(p);
        _exit(ok && fm_threads_live() <= 1 ? 0 : 1);
    }
    int status = wait_child(pid, 30000);
    FM_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FM_CHECK(fm_threads_live() >= 3);
    fm_pool_destroy(p);
}

/* ---- busy tasks and the dump ---- */

static void busy_tasks_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .name = "dg"};
    fm_pool *p = new_pool(4, &o);
    struct gate stuck, other;
    gate_init(&stuck);
    gate_init(&other);
    struct fm_task_info t[8];
    FM_CHECK_EQ(fm_pool_busy_tasks(p, t, 8), 0);
    FM_CHECK_EQ(fm_pool_submit(p, diag_stuck_task, &stuck), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&stuck.entered) == 1, 10000));
    /* the first task has run for a while (coarse clock: > 4 ms apart) */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_busy_tasks(p, t, 8) == 1 && t[0].running_ns >= 50 * MS_NS,
                           10000));
    FM_CHECK_EQ(fm_pool_submit(p, diag_other_task, &other), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&other.entered) == 1, 10000));
    FM_CHECK_EQ(fm_pool_busy_tasks(p, t, 8), 2);
    /* longest running first */
    FM_CHECK(t[0].fn == diag_stuck_task);
    FM_CHECK(t[0].arg == &stuck);
    FM_CHECK(t[0].symbol && strcmp(t[0].symbol, "diag_stuck_task") == 0);
    FM_CHECK(t[1].fn == diag_other_task);
    FM_CHECK(t[1].arg == &other);
    FM_CHECK(t[1].symbol && strcmp(t[1].symbol, "diag_other_task") == 0);
    FM_CHECK(t[0].running_ns >= t[1].running_ns);
    FM_CHECK(t[0].worker != t[1].worker);
    /* max smaller than the busy count: the count, and only max filled */
    memset(t, 0, sizeof t);
    FM_CHECK_EQ(fm_pool_busy_tasks(p, t, 1), 2);
    FM_CHECK(t[0].fn != NULL && t[1].fn == NULL);
    FM_CHECK_EQ(fm_pool_busy_tasks(p, NULL, 0), 2);
    gate_open(&stuck);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_busy_tasks(p, t, 8) == 1, 10000));
    FM_CHECK(t[0].fn == diag_other_task);
    gate_open(&other);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_busy_tasks(p, t, 8), 0);
    fm_pool_destroy(p);
}

FM_TEST(busy_tasks_handoff) { busy_tasks_case(0); }
FM_TEST(busy_tasks_queue) { busy_tasks_case(16); }

FM_TEST(busy_tasks_bad_arguments)
{
    struct fm_task_info t;
    FM_CHECK_EQ(fm_pool_busy_tasks(NULL, &t, 1), -EINVAL);
    fm_pool *p = new_pool(1, NULL);
    FM_CHECK_EQ(fm_pool_busy_tasks(p, NULL, 1), -EINVAL);
    FM_CHECK_EQ(fm_pool_busy_tasks(p, &t, -1), -EINVAL);
    fm_pool_destroy(p);
}

/* Reads everything written to f since the start. */
static char *slurp(FILE *f)
{
    static char buf[65536];
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

FM_TEST(dump_names_the_stuck_task)
{
    fm_pool_opts o = {.name = "dumpy"};
    fm_pool *p = new_pool(3, &o);
    struct gate stuck;
    gate_init(&stuck);
    atomic_int n = 0;
    for (int i = 0; i < 10; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &n), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_submit(p, diag_stuck_task, &stuck), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&stuck.entered) == 1, 10000));
    FILE *f = tmpfile();
    FM_CHECK(f != NULL);
    FM_CHECK_EQ(fm_pool_dump(p, f), 0);
    char *out = slurp(f);
    char want[64];
    snprintf(want, sizeof want, "arg %p", (void *)&stuck);
    if (!strstr(out, "pool dumpy: 1 busy of") || !strstr(out, "diag_stuck_task") ||
        !strstr(out, want) || !strstr(out, "running ") || !strstr(out, "  dumpy-") ||
        !strstr(out, "counters {\"name\":\"dumpy\",\"capacity\":3,") ||
        !strstr(out, "\"submitted\":11,") || !strstr(out, "\"completed\":10,"))
        FM_FAIL("unexpected dump:\n%s", out);
    /* exactly one task line */
    int lines = 0;
    for (char *q = out; (q = strstr(q, " running ")); q++)
        lines++;
    FM_CHECK_EQ(lines, 1);
    fclose(f);
    gate_open(&stuck);
    fm_pool_destroy(p);
}

FM_TEST(dump_of_an_idle_pool_and_bad_arguments)
{
    fm_pool *p = new_pool(2, NULL);
    FILE *f = tmpfile();
    FM_CHECK(f != NULL);
    FM_CHECK_EQ(fm_pool_dump(p, f), 0);
    char *out = slurp(f);
    if (!strstr(out, "pool fm: 0 busy of 0 running, capacity 2\n") || !strstr(out, "counters {"))
        FM_FAIL("unexpected dump:\n%s", out);
    fclose(f);
    FM_CHECK_EQ(fm_pool_dump(NULL, stderr), -EINVAL);
    FM_CHECK_EQ(fm_pool_dump(p, NULL), -EINVAL);
    /* a stream that cannot be written */
    f = fopen("/dev/null", "r");
    FM_CHECK(f != NULL);
    FM_CHECK_EQ(fm_pool_dump(p, f), -EIO);
    fclose(f);
    fm_pool_destroy(p);
}

/* ---- stats as JSON ---- */

FM_TEST(stats_json)
{
    fm_pool_opts o = {.queue_capacity = 8, .name = "js"};
    fm_pool *p = new_pool(2, &o);
    atomic_int n = 0;
    for (int i = 0; i < 5; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &n), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    struct fm_pool_stats s = pool_stats(p);
    char buf[512], want[512];
    int len = fm_pool_stats_json(p, buf, sizeof buf);
    snprintf(want, sizeof want,
             "{\"name\":\"js\",\"capacity\":2,\"running\":%d,\"idle\":%d,\"waiting\":0,"
             "\"queued\":0,\"queue_capacity\":8,\"submitted\":5,\"completed\":5,\"rejected\":0,"
             "\"threads_created\":%llu,\"threads_exited\":%llu}",
             s.running, s.idle, (unsigned long long)s.threads_created,
             (unsigned long long)s.threads_exited);
    if (strcmp(buf, want) != 0)
        FM_FAIL("json:\n%s\nwanted:\n%s", buf, want);
    FM_CHECK_EQ(len, (int)strlen(want));
    /* snprintf semantics: too short a buffer is cut, the length still told */
    char small[10];
    FM_CHECK_EQ(fm_pool_stats_json(p, small, sizeof small), len);
    FM_CHECK_EQ(strlen(small), 9);
    FM_CHECK_EQ(fm_pool_stats_json(p, NULL, 0), len);
    FM_CHECK_EQ(fm_pool_stats_json(NULL, buf, sizeof buf), -EINVAL);
    FM_CHECK_EQ(fm_pool_stats_json(p, NULL, 5), -EINVAL);
    fm_pool_destroy(p);
}

/* ---- the watchdog ---- */

#define MAX_REPORTS 64

struct reports {
    pthread_mutex_t mu;
    int n;
    struct fm_task_info t[MAX_REPORTS];
    char symbol[MAX_REPORTS][64];
    pthread_t thread[MAX_REPORTS];
};

static void record_slow(const struct fm_task_info *t, void *ctx)
{
    struct reports *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_REPORTS) {
        r->t[r->n] = *t;
        snprintf(r->symbol[r->n], sizeof r->symbol[0], "%s", t->symbol ? t->symbol : "");
        r->thread[r->n] = pthread_self();
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

static int nreports(struct reports *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void watchdog_case(size_t qcap)
{
    static struct reports r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    fm_pool_opts o = {.queue_capacity = qcap,
                      .slow_task_ns = 30 * MS_NS,
                      .on_slow_task = record_slow,
                      .ctx = &r};
    fm_pool *p = new_pool(4, &o);
    /* fast tasks are never reported */
    atomic_int n = 0;
    for (int i = 0; i < 200; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &n), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    struct gate stuck, other;
    gate_init(&stuck);
    gate_init(&other);
    FM_CHECK_EQ(fm_pool_submit(p, diag_stuck_task, &stuck), 0);
    FM_CHECK(FM_WAIT_UNTIL(nreports(&r) >= 1, 10000));
    FM_CHECK_EQ(fm_pool_submit(p, diag_other_task, &other), 0);
    FM_CHECK(FM_WAIT_UNTIL(nreports(&r) >= 2, 10000));
    /* once per task: after several more thresholds, still two reports */
    fm_test_sleep_ms(150);
    FM_CHECK_EQ(nreports(&r), 2);
    FM_CHECK(r.t[0].fn == diag_stuck_task && r.t[0].arg == &stuck);
    FM_CHECK(strcmp(r.symbol[0], "diag_stuck_task") == 0);
    FM_CHECK(r.t[1].fn == diag_other_task && r.t[1].arg == &other);
    FM_CHECK(r.t[0].running_ns >= 30 * MS_NS && r.t[1].running_ns >= 30 * MS_NS);
    FM_CHECK(r.t[0].worker != r.t[1].worker);
    FM_CHECK(!pthread_equal(r.thread[0], pthread_self()));
    gate_open(&stuck);
    gate_open(&other);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    /* the same worker running the same function again is a new task */
    struct gate again;
    gate_init(&again);
    FM_CHECK_EQ(fm_pool_submit(p, diag_stuck_task, &again), 0);
    FM_CHECK(FM_WAIT_UNTIL(nreports(&r) >= 3, 10000));
    FM_CHECK(r.t[2].arg == &again);
    gate_open(&again);
    fm_pool_destroy(p);
    FM_CHECK_EQ(nreports(&r), 3);
}

FM_TEST(watchdog_reports_each_slow_task_once_handoff) { watchdog_case(0); }
FM_TEST(watchdog_reports_each_slow_task_once_queue) { watchdog_case(16); }

FM_TEST(watchdog_default_prints_a_line)
{
    int fds[2];
    FM_CHECK_EQ(pipe(fds), 0);
    int saved = dup(2);
    dup2(fds[1], 2);
    fm_pool_opts o = {.slow_task_ns = 20 * MS_NS};
    fm_pool *p = new_pool(2, &o);
    struct gate stuck;
    gate_init(&stuck);
    FM_CHECK_EQ(fm_pool_submit(p, diag_stuck_task, &stuck), 0);
    char buf[1024] = {0};
    size_t got = 0;
    while (!strchr(buf, '\n') && got < sizeof buf - 1) {
        ssize_t k = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    dup2(saved, 2);
    gate_open(&stuck);
    fm_pool_destroy(p);
    if (!strstr(buf, "formica: slow task diag_stuck_task (arg "))
        FM_FAIL("stderr: %s", buf);
}

FM_TEST(watchdog_rearms_after_the_pool_was_idle)
{
    /* With every worker idle the watchdog disarms itself: a task that starts
     * later must re-arm it and still be reported; nothing is reported
     * meanwhile. */
    static struct reports r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    fm_pool_opts o = {.slow_task_ns = 20 * MS_NS, .on_slow_task = record_slow, .ctx = &r,
                      .expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    atomic_int n = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &n), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_test_sleep_ms(100);
    FM_CHECK_EQ(nreports(&r), 0);
    struct gate stuck;
    gate_init(&stuck);
    FM_CHECK_EQ(fm_pool_submit(p, diag_stuck_task, &stuck), 0);
    FM_CHECK(FM_WAIT_UNTIL(nreports(&r) == 1, 10000));
    gate_open(&stuck);
    fm_pool_destroy(p);
}

FM_TEST_MAIN()
