/* Bad input, in one table a reader can check line by line.
 *
 * Each row of the table at the end of this file is a call, or a short
 * scenario, with input that is wrong or at an edge, next to the result the
 * contract promises (the public headers, the pages of docs/, DESIGN.md). Each row is
 * a test case of its own (a child process with a time limit, fm_test.h) and
 * prints "case | expected | got"; `ctest -V -L bad_input`, or running the
 * program, shows the whole table.
 *
 * Row kinds:
 *   ROW(name, want, expr)            an int or long result; want is a number
 *                                    or a negative errno
 *   ROW_NULL(name, want_errno, expr) a pointer result: NULL with errno set
 *   ROW_HOLDS(name, text, expr)      expr is 1 when what text says holds
 *                                    (scenario helpers check details inside)
 *   ROW_ABORT(name, message, fn)     fn, in a child, dies of SIGABRT with
 *                                    message on stderr
 * Misuse that only debug builds catch has a ROW_ABORT in debug builds and,
 * where release builds define a result, a row for that; where they do not
 * (a double put to an object pool, a second destroy), nothing runs there.
 */
#include "bufpool_test_util.h"
#include "pool_test_util.h"

#include <limits.h>

/* ---- printing the table ---- */

static const char *fm_bad_errname(long v)
{
    static const struct {
        long v;
        const char *name;
    } names[] = {{-EINVAL, "-EINVAL"},       {-EAGAIN, "-EAGAIN"},   {-ESHUTDOWN, "-ESHUTDOWN"},
                 {-ETIMEDOUT, "-ETIMEDOUT"}, {-ENOMEM, "-ENOMEM"},   {-EDEADLK, "-EDEADLK"},
                 {-ECANCELED, "-ECANCELED"}, {EINVAL, "EINVAL"},     {ENOMEM, "ENOMEM"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].v == v)
            return names[i].name;
    return NULL;
}

/* One line of the table: the row's name, what the contract promises, what
 * the library gave, and the call made. */
static void row_print(const char *name, const char *want, const char *got, const char *call)
{
    printf("  | %-44s | %-28s | %-28s | %s\n", name, want, got, call);
    fflush(stdout);
}

static void row_check_long(const char *name, const char *call, const char *want_text, long want,
                           long got)
{
    char g[64];
    const char *err = fm_bad_errname(got);
    if (err)
        snprintf(g, sizeof g, "%s", err);
    else
        snprintf(g, sizeof g, "%ld", got);
    row_print(name, want_text, g, call);
    FM_CHECK_EQ(got, want);
}

static void row_check_null(const char *name, const char *call, const char *want_text, int want,
                           const void *got, int err)
{
    char g[64];
    if (got)
        snprintf(g, sizeof g, "%p", got);
    else
        snprintf(g, sizeof g, "NULL, errno %s", fm_bad_errname(err) ? fm_bad_errname(err) : "?");
    row_print(name, want_text, g, call);
    FM_CHECK(got == NULL);
    FM_CHECK_EQ(err, want);
}

#define ROW(name, want, expr)                                                            \
    FM_TEST(name) { row_check_long(#name, #expr, #want, (long)(want), (long)(expr)); }

#define ROW_NULL(name, want_errno, expr)                                                 \
    FM_TEST(name)                                                                        \
    {                                                                                    \
        errno = 0;                                                                       \
        const void *got_ = (expr);                                                       \
        int err_ = errno;                                                                \
        row_check_null(#name, #expr, "NULL, errno " #want_errno, want_errno, got_, err_); \
    }

#define ROW_HOLDS(name, text, expr)                                                      \
    FM_TEST(name)                                                                        \
    {                                                                                    \
        int ok_ = (expr);                                                                \
        row_print(#name, text, ok_ ? (text) : "not so", #expr);                         \
        FM_CHECK(ok_);                                                                   \
    }

#define ROW_ABORT(name, message, fn)                                                     \
    FM_TEST(name)                                                                        \
    {                                                                                    \
        fm_test_expect_abort(fn, message);                                               \
        row_print(#name, "abort: \"" message "\"", "abort with that message", #fn);     \
    }

#ifdef FM_DEBUG
#define FM_BAD_DEBUG 1
#else
#define FM_BAD_DEBUG 0
#endif

/* ---- shared pieces ---- */

static fm_pool *open_pool(int cap)
{
    return new_pool(cap, NULL);
}

static fm_pool *released_pool(void)
{
    fm_pool *p = open_pool(2);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    return p;
}

static struct fm_pool_stats st_dummy;
static struct fm_task_info ti_dummy[4];
static char buf_dummy[16];
static atomic_int counter;

/* Submits one counting task and waits for it: the pool works. */
static int pool_runs_a_task(fm_pool *p)
{
    int before = atomic_load(&counter);
    if (fm_pool_submit(p, task_count, &counter) != 0)
        return 0;
    return fm_pool_wait(p, 30 * SEC_NS) == 0 && atomic_load(&counter) == before + 1;
}

/* ---- capacity ---- */

/* fm_pool_new with this capacity; a pool made must run a task and report
 * the capacity asked for. */
static int new_with_cap(int cap)
{
    fm_pool *p = NULL;
    int rc = fm_pool_new(&p, cap, NULL);
    if (rc == 0) {
        FM_CHECK_EQ(fm_pool_cap(p), cap);
        FM_CHECK(pool_runs_a_task(p));
        fm_pool_destroy(p);
    } else {
        FM_CHECK(p == NULL);
    }
    return rc;
}

static int new_with_opts(int cap, fm_pool_opts o)
{
    fm_pool *p = NULL;
    int rc = fm_pool_new(&p, cap, &o);
    if (rc == 0)
        fm_pool_destroy(p);
    return rc;
}

/* fm_pool_tune from one capacity to another; the capacity afterwards is the
 * new one on success and the old one on failure. */
static int tune(int from, int to)
{
    fm_pool *p = open_pool(from);
    int rc = fm_pool_tune(p, to);
    FM_CHECK_EQ(fm_pool_cap(p), rc == 0 ? to : from);
    FM_CHECK(pool_runs_a_task(p));
    fm_pool_destroy(p);
    return rc;
}

static int tune_unlimited(void)
{
    fm_pool *p = open_pool(FM_UNLIMITED);
    int rc = fm_pool_tune(p, 4);
    FM_CHECK_EQ(fm_pool_cap(p), FM_UNLIMITED);
    fm_pool_destroy(p);
    return rc;
}

static int tune_prealloc(void)
{
    fm_pool *p = new_pool(2, &(fm_pool_opts){.prealloc = 1});
    int rc = fm_pool_tune(p, 4);
    FM_CHECK_EQ(fm_pool_cap(p), 2);
    fm_pool_destroy(p);
    return rc;
}

/* ---- life cycle ---- */

static int submit_after_release(int how)
{
    fm_pool *p = new_pool(2, &(fm_pool_opts){.fn = task_nop});
    FM_CHECK_EQ(fm_pool_release(p), 0);
    int rc = how == 0   ? fm_pool_submit(p, task_nop, NULL)
             : how == 1 ? fm_pool_submit_timeout(p, task_nop, NULL, 0)
                        : fm_pool_invoke(p, NULL);
    FM_CHECK_EQ(pool_stats(p).rejected, 1);
    fm_pool_destroy(p);
    return rc;
}

static int release_twice(void)
{
    fm_pool *p = open_pool(2);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    int rc = fm_pool_release(p);
    FM_CHECK_EQ(fm_pool_is_closed(p), 1);
    FM_CHECK_EQ(fm_pool_release_timeout(p, 30 * SEC_NS), 0);
    FM_CHECK_EQ(fm_pool_release_timeout(p, 30 * SEC_NS), 0);
    fm_pool_destroy(p);
    return rc;
}

static int reboot_open(void)
{
    fm_pool *p = open_pool(2);
    int rc = fm_pool_reboot(p);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    FM_CHECK(pool_runs_a_task(p));
    fm_pool_destroy(p);
    return rc;
}

static int reboot_released(void)
{
    fm_pool *p = released_pool();
    int rc = fm_pool_reboot(p);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    FM_CHECK(pool_runs_a_task(p));
    fm_pool_destroy(p);
    return rc;
}

static void task_sleep_count(void *arg)
{
    fm_test_sleep_ms(2);
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Destroy while tasks run and more are queued: every accepted task has run
 * when destroy returns, and the pool's threads are gone. */
static int destroy_while_running(void)
{
    int live0 = fm_threads_live();
    fm_pool *p = new_pool(2, &(fm_pool_opts){.queue_capacity = 64});
    atomic_int ran = 0;
    int accepted = 0;
    for (int i = 0; i < 40; i++)
        accepted += fm_pool_submit(p, task_sleep_count, &ran) == 0;
    FM_CHECK_EQ(accepted, 40);
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    FM_CHECK(fm_threads_live() <= live0 + 1); /* + the maintenance thread, once started */
    return 1;
}

static fm_pool *self_pool;

static void task_destroy_self(void *arg)
{
    (void)arg;
    fm_pool_destroy(self_pool);
}

static void destroy_from_task(void)
{
    self_pool = open_pool(2);
    if (fm_pool_submit(self_pool, task_destroy_self, NULL) != 0)
        _exit(3);
    fm_test_sleep_ms(30000); /* the task aborts the process first */
    _exit(4);
}

/* A task of self_pool runs one call on its own pool and records the result. */
static atomic_int from_task_rc;
static int from_task_call;

static void task_call_self(void *arg)
{
    (void)arg;
    int rc = from_task_call == 0   ? fm_pool_wait(self_pool, FM_FOREVER)
             : from_task_call == 1 ? fm_pool_release_timeout(self_pool, FM_FOREVER)
                                   : fm_pool_submit(self_pool, task_nop, NULL);
    atomic_store(&from_task_rc, rc);
}

/* call 0: wait, 1: release_timeout, 2: a blocking submit into the full
 * (capacity 1, hand-off) pool. */
static int call_from_task(int call)
{
    from_task_call = call;
    atomic_store(&from_task_rc, 12345);
    self_pool = open_pool(1);
    FM_CHECK_EQ(fm_pool_submit(self_pool, task_call_self, NULL), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&from_task_rc) != 12345, 30000));
    fm_pool_destroy(self_pool);
    return atomic_load(&from_task_rc);
}

/* A task that does not return until the test lets it: release_timeout gives
 * -ETIMEDOUT, and meanwhile the pool's other calls, another pool and the
 * default pool all answer. The gate opens at the end, so the test ends. */
static int never_returning_task(void)
{
    struct gate g;
    gate_init(&g);
    fm_pool *p = open_pool(2), *other = open_pool(2);
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 1, 30000));
    int rc = fm_pool_release_timeout(p, 50 * MS_NS);
    FM_CHECK_EQ(fm_pool_wait(p, 10 * MS_NS), -ETIMEDOUT);
    FM_CHECK_EQ(fm_pool_submit(p, task_nop, NULL), -ESHUTDOWN);
    FM_CHECK_EQ(pool_stats(p).running, 1);
    FM_CHECK_EQ(fm_pool_busy_tasks(p, ti_dummy, 4), 1);
    FM_CHECK(pool_runs_a_task(other));
    FM_CHECK_EQ(fm_submit(task_count, &counter), 0);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
    fm_pool_destroy(other);
    return rc;
}

/* fork() while tasks run: the child finds the pool released and without
 * workers (its tasks are the parent's), reboots it and runs tasks there; the
 * parent's tasks finish in the parent. ThreadSanitizer cannot start threads
 * in the child of a multi-threaded fork, so under it the child stops before
 * the reboot (the row's text says so). */
static int fork_while_running(void)
{
    struct gate g;
    gate_init(&g);
    fm_pool *p = new_pool(2, &(fm_pool_opts){.expiry_ns = -1});
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 2, 30000));
    fflush(NULL);
    pid_t pid = fork();
    FM_CHECK(pid >= 0);
    if (pid == 0) {
        int ok = fm_pool_is_closed(p) == 1 && fm_pool_running(p) == 0 &&
                 fm_pool_submit(p, task_nop, NULL) == -ESHUTDOWN;
        if (!FM_TEST_TSAN)
            ok = ok && fm_pool_reboot(p) == 0 && pool_runs_a_task(p);
        fm_pool_destroy(p);
        _exit(ok ? 0 : 1);
    }
    int status = wait_child(pid, 60000);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&g.passed), 2);
    fm_pool_destroy(p);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#if FM_TEST_TSAN
#define FORK_CHILD_SEES "child: released (reboot not run: TSan)"
#else
#define FORK_CHILD_SEES "child: released, reboot works"
#endif

/* ---- multipool ---- */

static int mp_new(int npools, int cap, fm_lb lb)
{
    fm_multipool *m = NULL;
    int rc = fm_multipool_new(&m, npools, cap, lb, NULL);
    if (rc == 0)
        fm_multipool_destroy(m);
    else
        FM_CHECK(m == NULL);
    return rc;
}

static fm_multipool *open_mp(const fm_pool_opts *o)
{
    fm_multipool *m;
    FM_CHECK_EQ(fm_multipool_new(&m, 2, 2, FM_LB_ROUND_ROBIN, o), 0);
    return m;
}

/* Calls on a valid multipool; leaks it (the row's process ends). */
static int mp_submit_null_fn(void)
{
    return fm_multipool_submit(open_mp(NULL), NULL, NULL);
}

static int mp_invoke_without_fn(void)
{
    return fm_multipool_invoke(open_mp(NULL), NULL);
}

static fm_pool *mp_pool(int index)
{
    return fm_multipool_pool(open_mp(NULL), index);
}

static int mp_tune(int cap)
{
    return fm_multipool_tune(open_mp(NULL), cap);
}

static int mp_submit_after_release(void)
{
    fm_multipool *m = open_mp(NULL);
    FM_CHECK_EQ(fm_multipool_release_timeout(m, 30 * SEC_NS), 0);
    int rc = fm_multipool_submit(m, task_nop, NULL);
    fm_multipool_destroy(m);
    return rc;
}

#if FM_BAD_DEBUG /* undefined in release builds */
static void mp_destroy_twice(void)
{
    fm_multipool *m = open_mp(NULL);
    fm_multipool_destroy(m);
    fm_multipool_destroy(m);
}
#endif

/* ---- task groups and futures ---- */

static int group_new(fm_pool *p, int limit)
{
    fm_group *g = (fm_group *)&st_dummy; /* must be cleared on error */
    int rc = fm_group_new(&g, p, limit);
    if (rc == 0)
        fm_group_destroy(g);
    else
        FM_CHECK(g == NULL);
    return rc;
}

static fm_group *open_group(void)
{
    fm_group *g;
    FM_CHECK_EQ(fm_group_new(&g, open_pool(2), 0), 0);
    return g;
}

static int job_ok(void *arg)
{
    (void)arg;
    return 0;
}

static int group_submit_after_cancel(void)
{
    fm_group *g = open_group();
    fm_group_cancel(g);
    fm_group_cancel(g); /* idempotent */
    return fm_group_submit(g, job_ok, NULL);
}

static int job_wait_own_group(void *arg)
{
    atomic_store(&from_task_rc, fm_group_wait(arg, FM_FOREVER));
    return 0;
}

static int group_wait_from_job(void)
{
    fm_group *g = open_group();
    atomic_store(&from_task_rc, 12345);
    FM_CHECK_EQ(fm_group_submit(g, job_wait_own_group, g), 0);
    FM_CHECK_EQ(fm_group_wait(g, FM_FOREVER), 0);
    return atomic_load(&from_task_rc);
}

static int job_destroy_own_group(void *arg)
{
    fm_group_destroy(arg);
    return 0;
}

static void group_destroy_from_job(void)
{
    fm_group *g = open_group();
    fm_group_submit(g, job_destroy_own_group, g);
    fm_test_sleep_ms(30000); /* the job aborts the process first */
    _exit(4);
}

#if FM_BAD_DEBUG /* undefined in release builds */
static void group_destroy_twice(void)
{
    fm_group *g = open_group();
    fm_group_destroy(g);
    fm_group_destroy(g);
}
#endif

static void *call_id(void *arg)
{
    return arg;
}

/* fm_pool_call with a bad argument; *out must be NULL afterwards. */
static int call_bad(fm_pool *p, fm_call_fn fn)
{
    fm_future *f = (fm_future *)&st_dummy;
    int rc = fm_pool_call(p, fn, NULL, &f);
    FM_CHECK(f == NULL);
    return rc;
}

static int call_on_released(void)
{
    return call_bad(released_pool(), call_id);
}

static int future_wait_null_result(void)
{
    fm_future *f;
    FM_CHECK_EQ(fm_pool_call(open_pool(2), call_id, &counter, &f), 0);
    int rc = fm_future_wait(f, FM_FOREVER, NULL);
    FM_CHECK_EQ(fm_future_done(f), 1);
    fm_future_destroy(f);
    return rc;
}

#if FM_BAD_DEBUG /* undefined in release builds */
static void future_destroy_twice(void)
{
    fm_future *f;
    FM_CHECK_EQ(fm_pool_call(open_pool(2), call_id, NULL, &f), 0);
    fm_future_wait(f, FM_FOREVER, NULL);
    fm_future_destroy(f);
    fm_future_destroy(f);
}
#endif

/* ---- object pool ---- */

static fm_objpool *open_objpool(void)
{
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &(fm_objpool_opts){.obj_size = 64, .cleanup_interval_ns = -1}),
                0);
    return p;
}

static struct fm_objpool_stats objpool_stats(const fm_objpool *p)
{
    struct fm_objpool_stats s;
    FM_CHECK_EQ(fm_objpool_stats(p, &s), 0);
    return s;
}

static int objpool_new_null_opts(void)
{
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, NULL), 0);
    errno = 0;
    int empty = fm_objpool_get(p) == NULL; /* no obj_size, no new_fn: nothing to make */
    fm_objpool_destroy(p);
    return empty;
}

static int objpool_put_null(void)
{
    fm_objpool *p = open_objpool();
    fm_objpool_put(p, NULL);
    int puts = (int)objpool_stats(p).puts;
    fm_objpool_destroy(p);
    return puts;
}

/* An object from malloc(obj_size) is as good as one the pool made: it is
 * cached and handed out again (and freed by the pool at destroy). */
static int objpool_put_malloced(void)
{
    fm_objpool *p = open_objpool();
    void *obj = malloc(64);
    FM_CHECK(obj != NULL);
    fm_objpool_put(p, obj);
    int same = fm_objpool_get(p) == obj;
    fm_objpool_put(p, obj);
    fm_objpool_destroy(p);
    return same;
}

static void objpool_put_null_pool(void)
{
    void *obj = malloc(64);
    fm_objpool_put(NULL, obj);
    free(obj);
}

#if !FM_BAD_DEBUG
static int objpool_put_null_pool_release(void)
{
    objpool_put_null_pool();
    return 1;
}
#endif

#if FM_BAD_DEBUG /* undefined in release builds */
static void objpool_put_twice(void)
{
    fm_objpool *p = open_objpool();
    void *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    fm_objpool_put(p, obj);
}
#endif

/* ---- buffer pool ---- */

static int bufpool_new(size_t max_size)
{
    fm_bufpool *b = NULL;
    int rc = fm_bufpool_new(&b, &(fm_bufpool_opts){.max_size = max_size});
    if (rc == 0)
        fm_bufpool_destroy(b);
    return rc;
}

/* fm_bufpool_get(size): the buffer's usable size, after writing all of it
 * (0 when the get failed). */
static long usable_after_get(size_t size)
{
    fm_bufpool *b = new_bufpool(NULL);
    char *buf = fm_bufpool_get(b, size);
    if (!buf)
        return 0;
    size_t n = fm_bufpool_usable_size(b, buf);
    FM_CHECK(n >= size);
    memset(buf, 0x5a, n);
    fm_bufpool_put(b, buf);
    fm_bufpool_destroy(b);
    return (long)n;
}

static void *bufpool_get(size_t size)
{
    return fm_bufpool_get(new_bufpool(NULL), size);
}

/* Every class boundary: a get of size - 1 and of size lands in the class of
 * that size, a get of size + 1 in the next class (above the last class: a
 * direct mapping, at least size + 1 bytes); every byte is writable. Prints
 * one line per class. */
static int class_boundaries(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    int classes = bufpool_stats(b).classes;
    FM_CHECK(classes > 1);
    printf("  class   size-1 -> usable   size -> usable   size+1 -> usable\n");
    for (int c = 0; c < classes; c++) {
        struct fm_bufpool_class_stats cs, next;
        FM_CHECK_EQ(fm_bufpool_class_stats(b, c, &cs), 0);
        int last = c == classes - 1;
        if (!last)
            FM_CHECK_EQ(fm_bufpool_class_stats(b, c + 1, &next), 0);
        size_t ask[3] = {cs.size - 1, cs.size, cs.size + 1}, got[3];
        for (int k = 0; k < 3; k++) {
            char *buf = fm_bufpool_get(b, ask[k]);
            FM_CHECK(buf != NULL);
            got[k] = fm_bufpool_usable_size(b, buf);
            memset(buf, 0x5a, got[k]);
            fm_bufpool_put(b, buf);
        }
        printf("  %5d %8zu -> %-8zu %8zu -> %-8zu %8zu -> %zu\n", c, ask[0], got[0], ask[1], got[1],
               ask[2], got[2]);
        FM_CHECK_EQ(got[0], cs.size);
        FM_CHECK_EQ(got[1], cs.size);
        if (last)
            FM_CHECK(got[2] >= ask[2]);
        else
            FM_CHECK_EQ(got[2], next.size);
    }
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.direct, 1); /* the one get above the last class */
    FM_CHECK_EQ(s.bytes_live, 0);
    fm_bufpool_destroy(b);
    return 1;
}

static int bufpool_put_null(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    fm_bufpool_put(b, NULL);
    fm_buf_put(NULL);
    int puts = (int)bufpool_stats(b).puts;
    fm_bufpool_destroy(b);
    return puts;
}

static void bufpool_put_malloced(void)
{
    char *m = calloc(1, 256);
    fm_bufpool_put(new_bufpool(NULL), m + 32);
}

static void bufpool_put_interior(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    char *buf = fm_bufpool_get(b, 1000);
    memset(buf, 0, 1000);
    fm_bufpool_put(b, buf + 64);
}

static void bufpool_put_other_pool(void)
{
    fm_bufpool_put(new_bufpool(NULL), fm_bufpool_get(new_bufpool(NULL), 100));
}

static void bufpool_put_null_pool(void)
{
    fm_bufpool_put(NULL, fm_bufpool_get(new_bufpool(NULL), 100));
}

/* Small blocks are carved from chunks, large ones are mappings of their
 * own; both keep a header marked free that the second put finds. */
static void put_twice_of_size(size_t size)
{
    fm_bufpool *b = new_bufpool(NULL);
    void *buf = fm_bufpool_get(b, size);
    fm_bufpool_put(b, buf);
    fm_bufpool_put(b, buf);
}

static void bufpool_put_twice_small(void)
{
    put_twice_of_size(100);
}

static void bufpool_put_twice_large(void)
{
    put_twice_of_size(300000);
}

/* fm_bufpool_usable_size of a live buffer, asked with a NULL pool, a NULL
 * buffer, or a pointer 64 bytes into the buffer. */
enum usable_ask { USABLE_NULL_POOL, USABLE_NULL_BUF, USABLE_INTERIOR };

static long usable_of(enum usable_ask ask)
{
    fm_bufpool *b = new_bufpool(NULL);
    char *buf = fm_bufpool_get(b, 1000);
    memset(buf, 0, 1000);
    switch (ask) {
    case USABLE_NULL_POOL:
        return (long)fm_bufpool_usable_size(NULL, buf);
    case USABLE_NULL_BUF:
        return (long)fm_bufpool_usable_size(b, NULL);
    default:
        return (long)fm_bufpool_usable_size(b, buf + 64);
    }
}

static int class_stats_of(int cls)
{
    return fm_bufpool_class_stats(new_bufpool(NULL), cls, &(struct fm_bufpool_class_stats){0});
}

static int class_stats_past_last(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    return fm_bufpool_class_stats(b, bufpool_stats(b).classes, &(struct fm_bufpool_class_stats){0});
}

/* ======================================================================== */
/* The table.                                                               */
/* ======================================================================== */

/* common.h */
ROW_HOLDS(strerror_unknown_code, "a non-NULL string", fm_strerror(12345) != NULL)
ROW_HOLDS(strerror_int_min, "a non-NULL string", fm_strerror(INT_MIN) != NULL)

/* fm_pool_new: capacity and options */
ROW(pool_new_null_out, -EINVAL, fm_pool_new(NULL, 4, NULL))
ROW(pool_new_null_opts, 0, new_with_cap(4))
ROW(pool_new_capacity_0, -EINVAL, new_with_cap(0))
ROW(pool_new_capacity_minus_2, -EINVAL, new_with_cap(-2))
ROW(pool_new_capacity_int_min, -EINVAL, new_with_cap(INT_MIN))
ROW(pool_new_capacity_unlimited, 0, new_with_cap(FM_UNLIMITED))
ROW(pool_new_capacity_int_max, 0, new_with_cap(INT_MAX))
ROW(pool_new_prealloc_unlimited, -EINVAL, new_with_opts(FM_UNLIMITED, (fm_pool_opts){.prealloc = 1}))
ROW(pool_new_max_blocking_negative, -EINVAL, new_with_opts(4, (fm_pool_opts){.max_blocking = -1}))
ROW(pool_new_queue_capacity_size_max, -ENOMEM,
    new_with_opts(4, (fm_pool_opts){.queue_capacity = SIZE_MAX}))

/* fm_pool: NULL everywhere a pointer goes */
ROW(pool_submit_null_pool, -EINVAL, fm_pool_submit(NULL, task_nop, NULL))
ROW(pool_submit_null_fn, -EINVAL, fm_pool_submit(open_pool(2), NULL, NULL))
ROW(pool_submit_timeout_null_pool, -EINVAL, fm_pool_submit_timeout(NULL, task_nop, NULL, 0))
ROW(pool_submit_timeout_null_fn, -EINVAL, fm_pool_submit_timeout(open_pool(2), NULL, NULL, 0))
ROW(pool_invoke_null_pool, -EINVAL, fm_pool_invoke(NULL, NULL))
ROW(pool_invoke_without_fn, -EINVAL, fm_pool_invoke(open_pool(2), NULL))
ROW(pool_running_null, -EINVAL, fm_pool_running(NULL))
ROW(pool_available_null, -EINVAL, fm_pool_available(NULL))
ROW(pool_waiting_null, -EINVAL, fm_pool_waiting(NULL))
ROW(pool_cap_null, -EINVAL, fm_pool_cap(NULL))
ROW(pool_tune_null, -EINVAL, fm_pool_tune(NULL, 4))
ROW(pool_wait_null, -EINVAL, fm_pool_wait(NULL, 0))
ROW(pool_release_null, -EINVAL, fm_pool_release(NULL))
ROW(pool_release_timeout_null, -EINVAL, fm_pool_release_timeout(NULL, 0))
ROW(pool_reboot_null, -EINVAL, fm_pool_reboot(NULL))
ROW(pool_is_closed_null, -EINVAL, fm_pool_is_closed(NULL))
ROW_HOLDS(pool_destroy_null, "returns (no-op)", (fm_pool_destroy(NULL), 1))
ROW(pool_stats_null_pool, -EINVAL, fm_pool_stats(NULL, &st_dummy))
ROW(pool_stats_null_out, -EINVAL, fm_pool_stats(open_pool(2), NULL))
ROW(submit_null_fn, -EINVAL, fm_submit(NULL, NULL))
ROW_HOLDS(default_pool_exists, "a pool", fm_default_pool() != NULL)

/* fm_pool_tune */
ROW(tune_same, 0, tune(4, 4))
ROW(tune_smaller, 0, tune(4, 2))
ROW(tune_larger, 0, tune(4, 8))
ROW(tune_int_max, 0, tune(4, INT_MAX))
ROW(tune_to_0, -EINVAL, tune(4, 0))
ROW(tune_to_minus_1, -EINVAL, tune(4, -1))
ROW(tune_unlimited_pool, -EINVAL, tune_unlimited())
ROW(tune_prealloc_pool, -EINVAL, tune_prealloc())

/* fm_pool life cycle */
ROW(submit_after_release, -ESHUTDOWN, submit_after_release(0))
ROW(submit_timeout_after_release, -ESHUTDOWN, submit_after_release(1))
ROW(invoke_after_release, -ESHUTDOWN, submit_after_release(2))
ROW(release_twice, 0, release_twice())
ROW(reboot_open_pool, 0, reboot_open())
ROW(reboot_released_pool, 0, reboot_released())
ROW_HOLDS(destroy_while_tasks_run, "every accepted task ran, no thread left",
          destroy_while_running())
ROW_ABORT(destroy_from_inside_a_task,
          "fm_pool_destroy called from inside a task of the pool it destroys", destroy_from_task)
ROW(wait_from_inside_a_task, -EDEADLK, call_from_task(0))
ROW(release_timeout_from_inside_a_task, -EDEADLK, call_from_task(1))
ROW(blocking_submit_from_inside_a_task_of_a_full_pool, -EDEADLK, call_from_task(2))
ROW(task_that_never_returns, -ETIMEDOUT, never_returning_task())
ROW_HOLDS(fork_while_tasks_run, FORK_CHILD_SEES, fork_while_running())

/* diag.h */
ROW(dump_null_pool, -EINVAL, fm_pool_dump(NULL, stdout))
ROW(dump_null_stream, -EINVAL, fm_pool_dump(open_pool(2), NULL))
ROW(busy_tasks_null_pool, -EINVAL, fm_pool_busy_tasks(NULL, ti_dummy, 4))
ROW(busy_tasks_null_out, -EINVAL, fm_pool_busy_tasks(open_pool(2), NULL, 4))
ROW(busy_tasks_null_out_max_0, 0, fm_pool_busy_tasks(open_pool(2), NULL, 0))
ROW(busy_tasks_max_negative, -EINVAL, fm_pool_busy_tasks(open_pool(2), ti_dummy, -1))
ROW(pool_stats_json_null_pool, -EINVAL, fm_pool_stats_json(NULL, buf_dummy, sizeof buf_dummy))
ROW(pool_stats_json_null_buf, -EINVAL, fm_pool_stats_json(open_pool(2), NULL, 8))
ROW_HOLDS(pool_stats_json_null_buf_len_0, "the length needed (> 0)",
          fm_pool_stats_json(open_pool(2), NULL, 0) > 0)

/* multipool.h */
ROW(multipool_new_null_out, -EINVAL, fm_multipool_new(NULL, 2, 2, FM_LB_ROUND_ROBIN, NULL))
ROW(multipool_new_npools_0, -EINVAL, mp_new(0, 2, FM_LB_ROUND_ROBIN))
ROW(multipool_new_npools_negative, -EINVAL, mp_new(-1, 2, FM_LB_ROUND_ROBIN))
ROW(multipool_new_npools_above_max, -EINVAL, mp_new(FM_MULTIPOOL_MAX + 1, 2, FM_LB_ROUND_ROBIN))
ROW(multipool_new_capacity_0, -EINVAL, mp_new(2, 0, FM_LB_ROUND_ROBIN))
ROW(multipool_new_capacity_negative, -EINVAL, mp_new(2, -2, FM_LB_LEAST_TASKS))
ROW(multipool_new_unknown_balancer, -EINVAL, mp_new(2, 2, (fm_lb)99))
ROW(multipool_submit_null, -EINVAL, fm_multipool_submit(NULL, task_nop, NULL))
ROW(multipool_submit_null_fn, -EINVAL, mp_submit_null_fn())
ROW(multipool_invoke_null, -EINVAL, fm_multipool_invoke(NULL, NULL))
ROW(multipool_invoke_without_fn, -EINVAL, mp_invoke_without_fn())
ROW_HOLDS(multipool_pool_null, "NULL", fm_multipool_pool(NULL, 0) == NULL)
ROW_HOLDS(multipool_pool_index_negative, "NULL", mp_pool(-1) == NULL)
ROW_HOLDS(multipool_pool_index_npools, "NULL", mp_pool(2) == NULL)
ROW(multipool_npools_null, -EINVAL, fm_multipool_npools(NULL))
ROW(multipool_running_null, -EINVAL, fm_multipool_running(NULL))
ROW(multipool_available_null, -EINVAL, fm_multipool_available(NULL))
ROW(multipool_waiting_null, -EINVAL, fm_multipool_waiting(NULL))
ROW(multipool_cap_null, -EINVAL, fm_multipool_cap(NULL))
ROW(multipool_tune_null, -EINVAL, fm_multipool_tune(NULL, 2))
ROW(multipool_tune_0, -EINVAL, mp_tune(0))
ROW(multipool_tune_larger, 0, mp_tune(8))
ROW(multipool_release_timeout_null, -EINVAL, fm_multipool_release_timeout(NULL, 0))
ROW(multipool_reboot_null, -EINVAL, fm_multipool_reboot(NULL))
ROW(multipool_is_closed_null, -EINVAL, fm_multipool_is_closed(NULL))
ROW_HOLDS(multipool_destroy_null, "returns (no-op)", (fm_multipool_destroy(NULL), 1))
ROW(multipool_submit_after_release, -ESHUTDOWN, mp_submit_after_release())
#if FM_BAD_DEBUG
ROW_ABORT(multipool_destroy_twice, "destroyed twice?", mp_destroy_twice)
#endif

/* tasks.h: groups */
ROW(group_new_null_out, -EINVAL, fm_group_new(NULL, open_pool(2), 0))
ROW(group_new_null_pool, -EINVAL, group_new(NULL, 0))
ROW(group_new_limit_negative, -EINVAL, group_new(open_pool(2), -1))
ROW(group_new_limit_int_max, 0, group_new(open_pool(2), INT_MAX))
ROW(group_submit_null_group, -EINVAL, fm_group_submit(NULL, job_ok, NULL))
ROW(group_submit_null_fn, -EINVAL, fm_group_submit(open_group(), NULL, NULL))
ROW(group_wait_null, -EINVAL, fm_group_wait(NULL, 0))
ROW_HOLDS(group_cancel_null, "returns (no-op)", (fm_group_cancel(NULL), 1))
ROW(group_cancelled_null, -EINVAL, fm_group_cancelled(NULL))
ROW_HOLDS(group_destroy_null, "returns (no-op)", (fm_group_destroy(NULL), 1))
ROW(group_submit_after_cancel, -ECANCELED, group_submit_after_cancel())
ROW(group_wait_from_own_job, -EDEADLK, group_wait_from_job())
ROW_ABORT(group_destroy_from_own_job,
          "fm_group_destroy called from inside a job of the group it destroys",
          group_destroy_from_job)
#if FM_BAD_DEBUG
ROW_ABORT(group_destroy_twice, "destroyed twice?", group_destroy_twice)
#endif

/* tasks.h: futures */
ROW(call_null_pool, -EINVAL, call_bad(NULL, call_id))
ROW(call_null_fn, -EINVAL, call_bad(open_pool(2), NULL))
ROW(call_null_out, -EINVAL, fm_pool_call(open_pool(2), call_id, NULL, NULL))
ROW(call_on_released_pool, -ESHUTDOWN, call_on_released())
ROW(future_wait_null, -EINVAL, fm_future_wait(NULL, 0, NULL))
ROW(future_wait_null_result, 0, future_wait_null_result())
ROW(future_done_null, -EINVAL, fm_future_done(NULL))
ROW_HOLDS(future_destroy_null, "returns (no-op)", (fm_future_destroy(NULL), 1))
#if FM_BAD_DEBUG
ROW_ABORT(future_destroy_twice, "destroyed twice?", future_destroy_twice)
#endif

/* objpool.h */
ROW(objpool_new_null_out, -EINVAL, fm_objpool_new(NULL, &(fm_objpool_opts){.obj_size = 8}))
ROW_HOLDS(objpool_new_null_opts, "a pool whose get gives NULL", objpool_new_null_opts())
ROW_NULL(objpool_get_null, EINVAL, fm_objpool_get(NULL))
ROW(objpool_put_null_obj, 0, objpool_put_null())
ROW_HOLDS(objpool_put_malloced_object, "cached and handed out again", objpool_put_malloced())
#if FM_BAD_DEBUG
ROW_ABORT(objpool_put_null_pool, "fm_objpool_put: NULL pool", objpool_put_null_pool)
ROW_ABORT(objpool_put_twice, "put twice", objpool_put_twice)
#else
ROW_HOLDS(objpool_put_null_pool, "returns (no-op)", objpool_put_null_pool_release())
#endif
ROW_HOLDS(objpool_cleanup_null, "returns (no-op)", (fm_objpool_cleanup(NULL), 1))
ROW_HOLDS(objpool_destroy_null, "returns (no-op)", (fm_objpool_destroy(NULL), 1))
ROW(objpool_stats_null_pool, -EINVAL,
    fm_objpool_stats(NULL, &(struct fm_objpool_stats){0}))
ROW(objpool_stats_null_out, -EINVAL, fm_objpool_stats(open_objpool(), NULL))
ROW(objpool_stats_json_null_pool, -EINVAL,
    fm_objpool_stats_json(NULL, buf_dummy, sizeof buf_dummy))
ROW(objpool_stats_json_null_buf, -EINVAL, fm_objpool_stats_json(open_objpool(), NULL, 8))
ROW_HOLDS(objpool_stats_json_null_buf_len_0, "the length needed (> 0)",
          fm_objpool_stats_json(open_objpool(), NULL, 0) > 0)

/* bufpool.h: creation, sizes */
ROW(bufpool_new_null_out, -EINVAL, fm_bufpool_new(NULL, NULL))
ROW(bufpool_new_max_size_1gib, 0, bufpool_new((size_t)1 << 30))
ROW(bufpool_new_max_size_above_1gib, -EINVAL, bufpool_new(((size_t)1 << 30) + 1))
ROW(bufpool_new_max_size_size_max, -EINVAL, bufpool_new(SIZE_MAX))
ROW_NULL(bufpool_get_null_pool, EINVAL, fm_bufpool_get(NULL, 100))
ROW(bufpool_get_size_0, 48, usable_after_get(0))
ROW(bufpool_get_size_1, 48, usable_after_get(1))
ROW_NULL(bufpool_get_size_max, ENOMEM, bufpool_get(SIZE_MAX))
ROW_NULL(bufpool_get_size_max_half_plus_1, ENOMEM, bufpool_get(SIZE_MAX / 2 + 1))
ROW_NULL(buf_get_size_max, ENOMEM, fm_buf_get(SIZE_MAX))
ROW_HOLDS(bufpool_every_class_boundary, "size-1, size: that class; size+1: the next",
          class_boundaries())

/* bufpool.h: puts (checked in every build, docs/bufpool.md "Misuse") */
ROW(bufpool_put_null_buf, 0, bufpool_put_null())
ROW_ABORT(bufpool_put_malloced_pointer, "is not a live buffer of this pool", bufpool_put_malloced)
ROW_ABORT(bufpool_put_interior_pointer, "is not a live buffer of this pool", bufpool_put_interior)
ROW_ABORT(bufpool_put_to_other_pool, "is not a live buffer of this pool", bufpool_put_other_pool)
ROW_ABORT(bufpool_put_null_pool, "is not a live buffer of this pool", bufpool_put_null_pool)
ROW_ABORT(bufpool_put_twice_small, "was already put back (double put)", bufpool_put_twice_small)
ROW_ABORT(bufpool_put_twice_large, "was already put back (double put)", bufpool_put_twice_large)

/* bufpool.h: the other calls */
ROW(bufpool_usable_size_null_pool, 0, usable_of(USABLE_NULL_POOL))
ROW(bufpool_usable_size_null_buf, 0, usable_of(USABLE_NULL_BUF))
ROW(bufpool_usable_size_interior, 0, usable_of(USABLE_INTERIOR))
ROW_HOLDS(bufpool_trim_null, "returns (no-op)", (fm_bufpool_trim(NULL), 1))
ROW_HOLDS(bufpool_destroy_null, "returns (no-op)", (fm_bufpool_destroy(NULL), 1))
ROW(bufpool_stats_null_pool, -EINVAL, fm_bufpool_stats(NULL, &(struct fm_bufpool_stats){0}))
ROW(bufpool_stats_null_out, -EINVAL, fm_bufpool_stats(new_bufpool(NULL), NULL))
ROW(bufpool_class_stats_null_pool, -EINVAL,
    fm_bufpool_class_stats(NULL, 0, &(struct fm_bufpool_class_stats){0}))
ROW(bufpool_class_stats_negative, -EINVAL, class_stats_of(-1))
ROW(bufpool_class_stats_past_last, -EINVAL, class_stats_past_last())
ROW(bufpool_class_stats_null_out, -EINVAL, fm_bufpool_class_stats(new_bufpool(NULL), 0, NULL))
ROW(bufpool_stats_json_null_pool, -EINVAL,
    fm_bufpool_stats_json(NULL, buf_dummy, sizeof buf_dummy))
ROW(bufpool_stats_json_null_buf, -EINVAL, fm_bufpool_stats_json(new_bufpool(NULL), NULL, 8))
ROW_HOLDS(bufpool_stats_json_null_buf_len_0, "the length needed (> 0)",
          fm_bufpool_stats_json(new_bufpool(NULL), NULL, 0) > 0)
ROW_HOLDS(buf_trim_default_pool, "returns", (fm_buf_trim(), 1))

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--list") != 0)
        printf("  | %-44s | %-28s | %-28s | %s\n", "case", "expected", "got", "call");
    return fm_test_main(argc, argv);
}
