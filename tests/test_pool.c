/* Worker pool (fm_pool): every call and every documented behaviour.
 *
 * Tasks that must stay busy block on a gate the test opens (pool_test_util.h);
 * asynchronous effects are awaited with FM_WAIT_UNTIL and generous limits, so
 * no case depends on speed. Sleeps appear only where a case checks that
 * something has NOT happened yet (a window in which a wrong library would be
 * caught; a right one passes whatever the window). Every task a submit
 * accepted is counted and the count checked.
 */
#include "pool_test_util.h"

#include <limits.h>
#include <sys/resource.h>

/* ------------------------------------------------------------------------ */
/* creation and bad input                                                    */
/* ------------------------------------------------------------------------ */

FM_TEST(new_with_null_opts_gives_defaults)
{
    fm_pool *p = new_pool(4, NULL);
    FM_CHECK_EQ(fm_pool_cap(p), 4);
    FM_CHECK_EQ(fm_pool_running(p), 0); /* workers start on demand */
    FM_CHECK_EQ(fm_pool_available(p), 4);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.queue_capacity, 0); /* hand-off mode by default */
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    fm_pool_destroy(p);
}

FM_TEST(new_with_zeroed_opts_gives_defaults)
{
    fm_pool_opts o;
    memset(&o, 0, sizeof o);
    fm_pool *p = new_pool(3, &o);
    FM_CHECK_EQ(fm_pool_cap(p), 3);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    FM_CHECK_EQ(fm_pool_available(p), 3);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    atomic_int ran = 0;
    for (int i = 0; i < 50; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 50);
    FM_CHECK(fm_pool_running(p) <= 3);
    fm_pool_destroy(p);
}

FM_TEST(new_rejects_bad_arguments)
{
    fm_pool *p = (fm_pool *)(uintptr_t)0x1;
    fm_pool_opts o;
    memset(&o, 0, sizeof o);
    FM_CHECK_EQ(fm_pool_new(NULL, 4, NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(NULL, 4, &o), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(&p, 0, NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(&p, 0, &o), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(&p, -2, NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(&p, -100, &o), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(&p, INT_MIN, NULL), -EINVAL);
    o.prealloc = 1;
    FM_CHECK_EQ(fm_pool_new(&p, FM_UNLIMITED, &o), -EINVAL);
    FM_CHECK_EQ(fm_pool_new(&p, 0, &o), -EINVAL);
    o.queue_capacity = 16;
    FM_CHECK_EQ(fm_pool_new(&p, FM_UNLIMITED, &o), -EINVAL);
    /* a good call still works afterwards */
    o.prealloc = 0;
    p = NULL;
    FM_CHECK_EQ(fm_pool_new(&p, FM_UNLIMITED, &o), 0);
    FM_CHECK(p != NULL);
    FM_CHECK_EQ(fm_pool_cap(p), -1);
    fm_pool_destroy(p);
}

FM_TEST(null_pool_every_call)
{
    struct fm_pool_stats s;
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(NULL, task_count, &ran), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit_timeout(NULL, task_count, &ran, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit_timeout(NULL, task_count, &ran, FM_FOREVER), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit_timeout(NULL, task_count, &ran, 5 * MS_NS), -EINVAL);
    FM_CHECK_EQ(fm_pool_invoke(NULL, &ran), -EINVAL);
    FM_CHECK_EQ(fm_pool_running(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_available(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_waiting(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_cap(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(NULL, 4), -EINVAL);
    FM_CHECK_EQ(fm_pool_wait(NULL, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_wait(NULL, FM_FOREVER), -EINVAL);
    FM_CHECK_EQ(fm_pool_release(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_release_timeout(NULL, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_release_timeout(NULL, FM_FOREVER), -EINVAL);
    FM_CHECK_EQ(fm_pool_reboot(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_is_closed(NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_stats(NULL, &s), -EINVAL);
    FM_CHECK_EQ(fm_pool_stats(NULL, NULL), -EINVAL);
    fm_pool_destroy(NULL); /* no-op */
    fm_pool *p = new_pool(2, NULL);
    FM_CHECK_EQ(fm_pool_stats(p, NULL), -EINVAL);
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&ran), 0);
}

static void null_fn_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(2, &o);
    FM_CHECK_EQ(fm_pool_submit(p, NULL, NULL), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit(p, NULL, &o), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, NULL, NULL, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, NULL, NULL, FM_FOREVER), -EINVAL);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, NULL, NULL, 10 * MS_NS), -EINVAL);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.submitted, 0);
    /* the pool is unharmed */
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    /* also on a released pool NULL fn is never a crash */
    FM_CHECK_EQ(fm_pool_release(p), 0);
    int rc = fm_pool_submit(p, NULL, NULL);
    FM_CHECK(rc == -EINVAL || rc == -ESHUTDOWN);
    fm_pool_destroy(p);
}

FM_TEST(null_fn_rejected_handoff) { null_fn_case(0); }
FM_TEST(null_fn_rejected_queue) { null_fn_case(16); }

/* ------------------------------------------------------------------------ */
/* running tasks                                                             */
/* ------------------------------------------------------------------------ */

static void runs_every_task_case(int cap, size_t qcap, int nonblocking)
{
    fm_pool_opts o = {.queue_capacity = qcap, .nonblocking = nonblocking};
    fm_pool *p = new_pool(cap, &o);
    atomic_int ran = 0;
    int accepted = 0;
    for (int i = 0; i < 2000; i++) {
        int rc = fm_pool_submit(p, task_count, &ran);
        if (nonblocking)
            FM_CHECK(rc == 0 || rc == -EAGAIN);
        else
            FM_CHECK_EQ(rc, 0);
        accepted += rc == 0;
        FM_CHECK(cap < 0 || fm_pool_running(p) <= cap);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    FM_CHECK(accepted > 0);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.submitted, (uint64_t)accepted);
    FM_CHECK_EQ(s.completed, (uint64_t)accepted);
    FM_CHECK_EQ(s.rejected, (uint64_t)(2000 - accepted));
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
}

FM_TEST(handoff_runs_every_task) { runs_every_task_case(4, 0, 0); }
FM_TEST(queue_runs_every_task) { runs_every_task_case(4, 64, 0); }
FM_TEST(handoff_nonblocking_runs_every_accepted_task) { runs_every_task_case(2, 0, 1); }
FM_TEST(queue_nonblocking_runs_every_accepted_task) { runs_every_task_case(2, 8, 1); }
FM_TEST(unlimited_runs_every_task) { runs_every_task_case(FM_UNLIMITED, 0, 0); }

struct order_rec {
    atomic_int next;
    int seen[64];
};
struct order_arg {
    struct order_rec *rec;
    int id;
};

static void task_record_order(void *arg)
{
    struct order_arg *a = arg;
    int slot = atomic_fetch_add(&a->rec->next, 1);
    if (slot < 64)
        a->rec->seen[slot] = a->id;
}

FM_TEST(queue_is_fifo)
{
    /* one worker, held on a gate while the FIFO fills: tasks run in order */
    fm_pool_opts o = {.queue_capacity = 32};
    fm_pool *p = new_pool(1, &o);
    struct gate g;
    gate_init(&g);
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 1, 10000));
    static struct order_rec rec;
    static struct order_arg args[32];
    for (int i = 0; i < 32; i++) {
        args[i] = (struct order_arg){&rec, i};
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_record_order, &args[i], 0), 0);
    }
    FM_CHECK_EQ(pool_stats(p).queued, 32);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&rec.next), 32);
    for (int i = 0; i < 32; i++)
        FM_CHECK_EQ(rec.seen[i], i);
    fm_pool_destroy(p);
}

/* The FIFO holds what fm_pool_stats reports, not one task more, also for the
 * smallest sizes. */
static void queue_holds_reported_capacity_case(size_t ask)
{
    fm_pool_opts o = {.queue_capacity = ask};
    fm_pool *p = new_pool(1, &o);
    struct gate g;
    gate_init(&g);
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 1, 10000));
    size_t real = pool_stats(p).queue_capacity;
    FM_CHECK(real >= ask);
    for (size_t i = 0; i < real; i++)
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), 0);
    FM_CHECK_EQ(pool_stats(p).queued, real);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN); /* full */
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    FM_CHECK_EQ(pool_stats(p).queued, real);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, 10 * SEC_NS), 0);
    FM_CHECK_EQ(atomic_load(&ran), (int)real);
    fm_pool_destroy(p);
}

FM_TEST(queue_capacity_one_holds_what_it_reports) { queue_holds_reported_capacity_case(1); }
FM_TEST(queue_capacity_two_holds_what_it_reports) { queue_holds_reported_capacity_case(2); }
FM_TEST(queue_capacity_three_holds_what_it_reports) { queue_holds_reported_capacity_case(3); }

/* A queued task gets a worker of its own while running < capacity, also when
 * every running worker is busy with a long task: the pool may not leave it
 * in the FIFO behind them. Tasks are submitted one at a time, each once the
 * previous one has started. */
static void queue_grows_case(int nonblocking)
{
    fm_pool_opts o = {.queue_capacity = 16, .nonblocking = nonblocking};
    fm_pool *p = new_pool(4, &o);
    struct gate g;
    gate_init(&g);
    for (int i = 1; i <= 4; i++) {
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
        if (!FM_WAIT_UNTIL(atomic_load(&g.entered) == i, 10000))
            FM_FAIL("task %d not started: running %d of capacity 4, queued %zu", i,
                    fm_pool_running(p), pool_stats(p).queued);
    }
    FM_CHECK_EQ(fm_pool_running(p), 4);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

FM_TEST(queue_starts_a_worker_for_a_queued_task_while_below_capacity) { queue_grows_case(0); }
FM_TEST(queue_nonblocking_starts_a_worker_while_below_capacity) { queue_grows_case(1); }

static void unlimited_concurrency_case(int nonblocking)
{
    /* hand-off with no bound: every blocked task gets a worker of its own */
    fm_pool_opts o = {.nonblocking = nonblocking};
    fm_pool *p = new_pool(FM_UNLIMITED, &o);
    FM_CHECK_EQ(fm_pool_cap(p), -1);
    FM_CHECK_EQ(fm_pool_available(p), -1);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 64; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 64, 10000));
    FM_CHECK_EQ(fm_pool_running(p), 64);
    FM_CHECK_EQ(fm_pool_available(p), -1);
    FM_CHECK_EQ(fm_pool_cap(p), -1);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_gate, &g, 0), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 65, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&g.passed), 65);
    FM_CHECK_EQ(pool_stats(p).capacity, -1);
    fm_pool_destroy(p);
}

FM_TEST(unlimited_gives_every_task_a_worker) { unlimited_concurrency_case(0); }
FM_TEST(unlimited_nonblocking_never_saturates) { unlimited_concurrency_case(1); }

/* ------------------------------------------------------------------------ */
/* blocking, non-blocking, max_blocking, submit_timeout                       */
/* ------------------------------------------------------------------------ */

/* Saturates a pool of capacity cap: cap tasks held on gates[0..cap-1], and in
 * queue mode the FIFO filled with counting tasks. Returns the number of
 * counting tasks queued. */
static int saturate(fm_pool *p, int cap, struct gate *gates, atomic_int *ran)
{
    for (int i = 0; i < cap; i++) {
        gate_init(&gates[i]);
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_gate, &gates[i], 0), 0);
    }
    for (int i = 0; i < cap; i++)
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&gates[i].entered) == 1, 10000));
    struct fm_pool_stats s = pool_stats(p);
    int queued = 0;
    for (size_t i = 0; i < s.queue_capacity; i++) {
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, ran, 0), 0);
        queued++;
    }
    FM_CHECK_EQ(fm_pool_running(p), cap);
    FM_CHECK_EQ(fm_pool_available(p), 0);
    FM_CHECK_EQ(pool_stats(p).queued, (size_t)queued);
    return queued;
}

static void blocking_submit_waits_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    struct gate g[2];
    atomic_int ran = 0;
    int queued = saturate(p, 2, g, &ran);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);

    struct submitter s;
    submitter_start(&s, p, SUBMIT_PLAIN, task_count, &ran, 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 1, 10000));
    fm_test_sleep_ms(20);
    FM_CHECK_EQ(atomic_load(&s.done), 0); /* still blocked: nothing freed up */
    FM_CHECK_EQ(atomic_load(&ran), 0);
    FM_CHECK(fm_pool_running(p) <= 2);

    gate_open(&g[0]); /* one worker frees up */
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&s.rc), 0);
    submitter_join(&s);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&ran) == queued + 1, 10000));
    FM_CHECK_EQ(atomic_load(&g[1].passed), 0); /* it ran on the freed worker */
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK(fm_pool_running(p) <= 2);
    gate_open(&g[1]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), queued + 1);
    fm_pool_destroy(p);
}

FM_TEST(handoff_blocking_submit_waits_for_a_free_worker) { blocking_submit_waits_case(0); }
FM_TEST(queue_blocking_submit_waits_while_fifo_full) { blocking_submit_waits_case(4); }

static void nonblocking_eagain_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .nonblocking = 1, .expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    struct gate g[2];
    atomic_int ran = 0;
    int accepted = saturate(p, 2, g, &ran);
    for (int i = 0; i < 10; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -EAGAIN);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK_EQ(pool_stats(p).rejected, 10);
    gate_open(&g[0]);
    /* once a worker (or FIFO slot) frees up a non-blocking submit succeeds */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_submit(p, task_count, &ran) == 0, 10000));
    accepted++;
    gate_open(&g[1]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    FM_CHECK_EQ(atomic_load(&g[0].passed) + atomic_load(&g[1].passed), 2);
    fm_pool_destroy(p);
}

FM_TEST(handoff_nonblocking_gives_eagain_when_saturated) { nonblocking_eagain_case(0); }
FM_TEST(queue_nonblocking_gives_eagain_when_fifo_full) { nonblocking_eagain_case(2); }

static void max_blocking_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .max_blocking = 2, .expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct gate g[1];
    atomic_int ran = 0;
    int queued = saturate(p, 1, g, &ran);

    struct submitter s[2];
    submitter_start(&s[0], p, SUBMIT_PLAIN, task_count, &ran, 0);
    submitter_start(&s[1], p, SUBMIT_TIMEOUT, task_count, &ran, FM_FOREVER);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 2, 10000));

    /* the third concurrent blocked submitter is turned away at once */
    struct submitter extra[2];
    submitter_start(&extra[0], p, SUBMIT_PLAIN, task_count, &ran, 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&extra[0].done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&extra[0].rc), -EAGAIN);
    submitter_start(&extra[1], p, SUBMIT_TIMEOUT, task_count, &ran, 30 * SEC_NS);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&extra[1].done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&extra[1].rc), -EAGAIN);
    submitter_join(&extra[0]);
    submitter_join(&extra[1]);
    FM_CHECK_EQ(fm_pool_waiting(p), 2);
    FM_CHECK_EQ(atomic_load(&s[0].done) + atomic_load(&s[1].done), 0);

    gate_open(&g[0]);
    for (int i = 0; i < 2; i++) {
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s[i].done) == 1, 10000));
        FM_CHECK_EQ(atomic_load(&s[i].rc), 0);
        submitter_join(&s[i]);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), queued + 2);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    fm_pool_destroy(p);
}

FM_TEST(handoff_max_blocking_turns_away_the_next_blocked_submitter) { max_blocking_case(0); }
FM_TEST(queue_max_blocking_turns_away_the_next_blocked_submitter) { max_blocking_case(2); }

static void submit_timeout_zero_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    atomic_int ran = 0;
    /* not saturated: accepted without waiting */
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    struct gate g[1];
    int queued = saturate(p, 1, g, &ran);
    int64_t t0 = fm_test_now_ns();
    for (int i = 0; i < 5; i++)
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    FM_CHECK(fm_test_now_ns() - t0 < 5 * SEC_NS); /* did not wait (a hang guard only) */
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    gate_open(&g[0]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1 + queued);
    fm_pool_destroy(p);
}

FM_TEST(handoff_submit_timeout_zero_gives_eagain_when_saturated) { submit_timeout_zero_case(0); }
FM_TEST(queue_submit_timeout_zero_gives_eagain_when_saturated) { submit_timeout_zero_case(2); }

static void submit_timeout_short_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct gate g[1];
    atomic_int ran = 0;
    int queued = saturate(p, 1, g, &ran);
    int64_t t0 = fm_test_now_ns();
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 30 * MS_NS), -ETIMEDOUT);
    int64_t waited = fm_test_now_ns() - t0;
    FM_CHECK(waited >= 29 * MS_NS); /* it did wait for its timeout */
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 1), -ETIMEDOUT);
    gate_open(&g[0]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), queued); /* the timed-out tasks never ran */
    FM_CHECK_EQ(pool_stats(p).rejected, 2);
    fm_pool_destroy(p);
}

FM_TEST(handoff_submit_timeout_short_gives_etimedout) { submit_timeout_short_case(0); }
FM_TEST(queue_submit_timeout_short_gives_etimedout) { submit_timeout_short_case(2); }

static void submit_timeout_forever_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct gate g[1];
    atomic_int ran = 0;
    int queued = saturate(p, 1, g, &ran);
    struct submitter s[2];
    submitter_start(&s[0], p, SUBMIT_TIMEOUT, task_count, &ran, FM_FOREVER);
    submitter_start(&s[1], p, SUBMIT_TIMEOUT, task_count, &ran, 30 * SEC_NS);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 2, 10000));
    fm_test_sleep_ms(20);
    FM_CHECK_EQ(atomic_load(&s[0].done) + atomic_load(&s[1].done), 0);
    gate_open(&g[0]);
    for (int i = 0; i < 2; i++) {
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s[i].done) == 1, 10000));
        FM_CHECK_EQ(atomic_load(&s[i].rc), 0);
        submitter_join(&s[i]);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), queued + 2);
    fm_pool_destroy(p);
}

FM_TEST(handoff_submit_timeout_forever_waits_then_proceeds) { submit_timeout_forever_case(0); }
FM_TEST(queue_submit_timeout_forever_waits_then_proceeds) { submit_timeout_forever_case(2); }

/* ------------------------------------------------------------------------ */
/* invoke                                                                    */
/* ------------------------------------------------------------------------ */

static atomic_int invoke_sum;
static void task_add_int(void *arg) { atomic_fetch_add(&invoke_sum, *(int *)arg); }

static void invoke_case(size_t qcap)
{
    static int values[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    fm_pool_opts o = {.queue_capacity = qcap, .fn = task_add_int};
    fm_pool *p = new_pool(3, &o);
    for (int i = 0; i < 10; i++)
        FM_CHECK_EQ(fm_pool_invoke(p, &values[i]), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&invoke_sum), 55);
    FM_CHECK_EQ(pool_stats(p).submitted, 10);
    /* a plain submit on a pool with a bound function still runs its own fn */
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    FM_CHECK_EQ(atomic_load(&invoke_sum), 55);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_invoke(p, &values[0]), -ESHUTDOWN);
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&invoke_sum), 55);
}

FM_TEST(handoff_invoke_runs_bound_fn) { invoke_case(0); }
FM_TEST(queue_invoke_runs_bound_fn) { invoke_case(8); }

FM_TEST(invoke_without_bound_fn_is_einval)
{
    int v = 1;
    fm_pool *p = new_pool(2, NULL);
    FM_CHECK_EQ(fm_pool_invoke(p, &v), -EINVAL);
    FM_CHECK_EQ(fm_pool_invoke(p, NULL), -EINVAL);
    fm_pool_destroy(p);
    fm_pool_opts o = {.queue_capacity = 4};
    p = new_pool(FM_UNLIMITED, &o);
    FM_CHECK_EQ(fm_pool_invoke(p, &v), -EINVAL);
    FM_CHECK_EQ(pool_stats(p).submitted, 0);
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&invoke_sum), 0);
}

/* ------------------------------------------------------------------------ */
/* running / available / waiting / cap                                       */
/* ------------------------------------------------------------------------ */

FM_TEST(getters_track_the_pool_state)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(3, &o);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    FM_CHECK_EQ(fm_pool_available(p), 3);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK_EQ(fm_pool_cap(p), 3);
    struct gate g;
    gate_init(&g);
    for (int i = 1; i <= 3; i++) {
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == i, 10000));
        FM_CHECK_EQ(fm_pool_running(p), i);
        FM_CHECK_EQ(fm_pool_available(p), 3 - i);
        FM_CHECK_EQ(fm_pool_waiting(p), 0);
    }
    atomic_int ran = 0;
    struct submitter s[2];
    submitter_start(&s[0], p, SUBMIT_PLAIN, task_count, &ran, 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 1, 10000));
    submitter_start(&s[1], p, SUBMIT_TIMEOUT, task_count, &ran, FM_FOREVER);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 2, 10000));
    FM_CHECK_EQ(pool_stats(p).waiting, 2);
    FM_CHECK_EQ(fm_pool_cap(p), 3);
    gate_open(&g);
    for (int i = 0; i < 2; i++) {
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s[i].done) == 1, 10000));
        FM_CHECK_EQ(atomic_load(&s[i].rc), 0);
        submitter_join(&s[i]);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 2);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK_EQ(fm_pool_running(p), 3); /* idle, never expire */
    FM_CHECK_EQ(fm_pool_available(p), 0);
    fm_pool_destroy(p);
}

FM_TEST(getters_on_unlimited_pool)
{
    fm_pool *p = new_pool(FM_UNLIMITED, NULL);
    FM_CHECK_EQ(fm_pool_cap(p), -1);
    FM_CHECK_EQ(fm_pool_available(p), -1);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 5; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 5, 10000));
    FM_CHECK_EQ(fm_pool_running(p), 5);
    FM_CHECK_EQ(fm_pool_available(p), -1);
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

/* ------------------------------------------------------------------------ */
/* tune                                                                      */
/* ------------------------------------------------------------------------ */

FM_TEST(handoff_tune_up_wakes_blocked_submitter)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct gate g0, g1;
    gate_init(&g0);
    gate_init(&g1);
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g0), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g0.entered) == 1, 10000));
    struct submitter s;
    submitter_start(&s, p, SUBMIT_PLAIN, task_gate, &g1, 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 1, 10000));
    FM_CHECK_EQ(fm_pool_tune(p, 2), 0);
    FM_CHECK_EQ(fm_pool_cap(p), 2);
    /* the blocked submitter proceeds while the first task is still busy */
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&s.rc), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g1.entered) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&g0.passed), 0);
    FM_CHECK_EQ(fm_pool_running(p), 2);
    FM_CHECK_EQ(fm_pool_available(p), 0);
    submitter_join(&s);
    gate_open(&g0);
    gate_open(&g1);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

FM_TEST(queue_tune_up_wakes_blocked_submitter)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = 2};
    fm_pool *p = new_pool(1, &o);
    struct gate g0, g1, g2;
    gate_init(&g0);
    gate_init(&g1);
    gate_init(&g2);
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g0), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g0.entered) == 1, 10000));
    FM_CHECK_EQ(pool_stats(p).queue_capacity, 2);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_gate, &g1, 0), 0); /* fill the FIFO */
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_gate, &g1, 0), 0);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_gate, &g1, 0), -EAGAIN);
    struct submitter s;
    submitter_start(&s, p, SUBMIT_PLAIN, task_gate, &g2, 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 1, 10000));
    FM_CHECK_EQ(fm_pool_tune(p, 4), 0);
    FM_CHECK_EQ(fm_pool_cap(p), 4);
    /* new workers take the queued tasks, and the blocked submitter's task gets in */
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&s.rc), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g1.entered) == 2 && atomic_load(&g2.entered) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&g0.passed), 0);
    FM_CHECK_EQ(fm_pool_running(p), 4);
    submitter_join(&s);
    gate_open(&g0);
    gate_open(&g1);
    gate_open(&g2);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

static void tune_down_idle_case(size_t qcap)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = qcap};
    fm_pool *p = new_pool(4, &o);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_running(p), 4);
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).idle == 4, 10000));
    FM_CHECK_EQ(fm_pool_tune(p, 1), 0);
    FM_CHECK_EQ(fm_pool_cap(p), 1);
    /* the three surplus idle workers exit; workers never expire here */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) <= 1, 10000));
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).threads_exited == 3, 10000));
    FM_CHECK_EQ(fm_pool_running(p), 1);
    FM_CHECK_EQ(fm_pool_available(p), 0);
    /* the pool keeps working at its new size */
    atomic_int ran = 0;
    for (int i = 0; i < 100; i++) {
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
        FM_CHECK(fm_pool_running(p) <= 1);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 100);
    FM_CHECK_EQ(pool_stats(p).threads_created, 4);
    fm_pool_destroy(p);
}

FM_TEST(handoff_tune_down_lets_idle_surplus_exit) { tune_down_idle_case(0); }
FM_TEST(queue_tune_down_lets_idle_surplus_exit) { tune_down_idle_case(8); }

FM_TEST(handoff_tune_down_busy_surplus_exits_after_task)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(4, &o);
    struct gate g[4];
    atomic_int ran = 0;
    saturate(p, 4, g, &ran);
    FM_CHECK_EQ(fm_pool_tune(p, 2), 0);
    FM_CHECK_EQ(fm_pool_cap(p), 2);
    FM_CHECK_EQ(fm_pool_running(p), 4);   /* busy workers finish first */
    FM_CHECK_EQ(fm_pool_available(p), 0); /* never negative */
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);

    gate_open(&g[0]);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 3, 10000));
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    gate_open(&g[1]);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 2, 10000));
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    FM_CHECK_EQ(fm_pool_available(p), 0);
    gate_open(&g[2]); /* running == cap now: this worker stays and takes work */
    int accepted = 0;
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_submit_timeout(p, task_count, &ran, 0) == 0, 10000));
    accepted++;
    FM_CHECK(fm_pool_running(p) <= 2);
    gate_open(&g[3]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.threads_created, 4); /* no new worker after the shrink */
    FM_CHECK_EQ(s.running, 2);
    fm_pool_destroy(p);
}

struct sampler {
    pthread_t th;
    fm_pool *pool;
    atomic_int stop;
    atomic_int max_running;
    atomic_int max_over_cap; /* max of running - cap, for a fixed cap */
    int fixed_cap;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        int r = fm_pool_running(s->pool);
        if (r > atomic_load(&s->max_running))
            atomic_store(&s->max_running, r);
        if (s->fixed_cap > 0 && r - s->fixed_cap > atomic_load(&s->max_over_cap))
            atomic_store(&s->max_over_cap, r - s->fixed_cap);
        sched_yield();
    }
    return NULL;
}

static void sampler_start(struct sampler *s, fm_pool *p, int fixed_cap)
{
    s->pool = p;
    s->fixed_cap = fixed_cap;
    atomic_init(&s->stop, 0);
    atomic_init(&s->max_running, 0);
    atomic_init(&s->max_over_cap, 0);
    if (pthread_create(&s->th, NULL, sampler_main, s) != 0)
        FM_FAIL("pthread_create");
}

static void sampler_stop(struct sampler *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
}

FM_TEST(queue_tune_down_starts_no_new_workers)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = 16};
    fm_pool *p = new_pool(4, &o);
    struct gate g[4];
    atomic_int ran = 0;
    for (int i = 0; i < 4; i++) {
        gate_init(&g[i]);
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g[i].entered) == 1, 10000));
    struct sampler smp;
    sampler_start(&smp, p, 0);
    FM_CHECK_EQ(fm_pool_tune(p, 2), 0);
    for (int i = 0; i < 8; i++)
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), 0);
    for (int i = 0; i < 4; i++)
        gate_open(&g[i]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 8);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 2, 10000));
    sampler_stop(&smp);
    FM_CHECK(atomic_load(&smp.max_running) <= 4);
    FM_CHECK_EQ(pool_stats(p).threads_created, 4);
    /* and afterwards never more than 2 */
    sampler_start(&smp, p, 2);
    for (int i = 0; i < 500; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    sampler_stop(&smp);
    FM_CHECK_EQ(atomic_load(&smp.max_over_cap), 0);
    FM_CHECK_EQ(atomic_load(&ran), 508);
    fm_pool_destroy(p);
}

/* Queue mode, tune down while tasks are queued: a surplus worker exits when
 * its task ends instead of draining the FIFO, so the queued tasks run one at
 * a time on the one worker the new capacity allows. */
FM_TEST(queue_tune_down_surplus_worker_exits_instead_of_draining)
{
    fm_pool_opts o = {.queue_capacity = 16, .expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    struct gate g[2], later;
    for (int i = 0; i < 2; i++) {
        gate_init(&g[i]);
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g[i].entered) == 1, 10000));
    FM_CHECK_EQ(fm_pool_tune(p, 1), 0);
    gate_init(&later);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &later), 0); /* queued */
    gate_open(&g[0]);
    gate_open(&g[1]);
    if (!FM_WAIT_UNTIL(fm_pool_running(p) == 1, 10000))
        FM_FAIL("capacity 1, but running %d and %d queued tasks running at once",
                fm_pool_running(p), atomic_load(&later.entered));
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&later.entered) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&later.entered), 1);
    FM_CHECK_EQ(fm_pool_running(p), 1);
    gate_open(&later);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&later.passed), 4);
    fm_pool_destroy(p);
}

FM_TEST(tune_rejects_bad_arguments)
{
    fm_pool *p = new_pool(4, NULL);
    FM_CHECK_EQ(fm_pool_tune(p, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, -1), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, FM_UNLIMITED), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, INT_MIN), -EINVAL);
    FM_CHECK_EQ(fm_pool_cap(p), 4);
    FM_CHECK_EQ(fm_pool_tune(p, 4), 0);
    FM_CHECK_EQ(fm_pool_tune(p, 7), 0);
    FM_CHECK_EQ(fm_pool_cap(p), 7);
    FM_CHECK_EQ(fm_pool_available(p), 7);
    fm_pool_destroy(p);

    p = new_pool(FM_UNLIMITED, NULL);
    FM_CHECK_EQ(fm_pool_tune(p, 5), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_cap(p), -1);
    fm_pool_destroy(p);

    fm_pool_opts o = {.prealloc = 1};
    p = new_pool(4, &o);
    FM_CHECK_EQ(fm_pool_tune(p, 8), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, 2), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, 4), -EINVAL);
    FM_CHECK_EQ(fm_pool_tune(p, 0), -EINVAL);
    FM_CHECK_EQ(fm_pool_cap(p), 4);
    FM_CHECK_EQ(fm_pool_running(p), 4);
    fm_pool_destroy(p);
}

/* ------------------------------------------------------------------------ */
/* expiry and prealloc                                                       */
/* ------------------------------------------------------------------------ */

static void expiry_case(size_t qcap)
{
    fm_pool_opts o = {.expiry_ns = 50 * MS_NS, .queue_capacity = qcap};
    fm_pool *p = new_pool(4, &o);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    FM_CHECK_EQ(fm_pool_running(p), 4); /* busy workers never expire */
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0, 10000));
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).threads_exited == 4, 10000));
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    /* an expired pool starts workers again on demand */
    atomic_int ran = 0;
    for (int i = 0; i < 20; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 20);
    FM_CHECK(pool_stats(p).threads_created > 4);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0, 10000));
    fm_pool_destroy(p);
}

FM_TEST(handoff_idle_workers_expire) { expiry_case(0); }
FM_TEST(queue_idle_workers_expire) { expiry_case(16); }

FM_TEST(negative_expiry_never_expires)
{
    int64_t t0 = fm_test_now_ns();
    fm_pool_opts never = {.expiry_ns = -1};
    fm_pool_opts never_q = {.expiry_ns = INT64_MIN, .queue_capacity = 4};
    fm_pool_opts control = {.expiry_ns = 50 * MS_NS};
    fm_pool *a = new_pool(4, &never);
    fm_pool *b = new_pool(4, &never_q);
    fm_pool *c = new_pool(4, &control);
    fm_pool *pools[3] = {a, b, c};
    struct gate g;
    gate_init(&g);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++)
            FM_CHECK_EQ(fm_pool_submit(pools[k], task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 12, 10000));
    gate_open(&g);
    for (int k = 0; k < 3; k++)
        FM_CHECK_EQ(fm_pool_wait(pools[k], FM_FOREVER), 0);
    /* the control pool shows that expiry does run ... */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(c) == 0, 10000));
    /* ... and longer than the 1 s default later, the others still have all */
    while (fm_test_now_ns() - t0 < 1300 * MS_NS)
        fm_test_sleep_ms(10);
    FM_CHECK_EQ(fm_pool_running(a), 4);
    FM_CHECK_EQ(fm_pool_running(b), 4);
    FM_CHECK_EQ(pool_stats(a).threads_exited, 0);
    FM_CHECK_EQ(pool_stats(b).threads_exited, 0);
    for (int k = 0; k < 3; k++)
        fm_pool_destroy(pools[k]);
}

FM_TEST(handoff_workers_reused_lifo_so_cold_ones_expire)
{
    /* Four workers, then a trickle of one task at a time: with LIFO reuse the
     * same worker takes every task and the other three age out. */
    fm_pool_opts o = {.expiry_ns = 100 * MS_NS};
    fm_pool *p = new_pool(4, &o);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    atomic_int ran = 0;
    int sent = 0, shrunk = 0;
    int64_t t0 = fm_test_now_ns();
    while (fm_test_now_ns() - t0 < 10 * SEC_NS) {
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
        sent++;
        FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
        if (fm_pool_running(p) <= 1) {
            shrunk = 1;
            break;
        }
        fm_test_sleep_ms(2);
    }
    FM_CHECK(shrunk);
    FM_CHECK_EQ(atomic_load(&ran), sent);
    fm_pool_destroy(p);
}

static void prealloc_case(size_t qcap)
{
    fm_pool_opts o = {.prealloc = 1, .expiry_ns = -1, .queue_capacity = qcap};
    fm_pool *p = new_pool(8, &o);
    FM_CHECK_EQ(fm_pool_running(p), 8); /* all started by fm_pool_new */
    FM_CHECK_EQ(fm_pool_available(p), 0);
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).threads_created == 8, 10000));
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).idle == 8, 10000));
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 8; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 8, 10000));
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_gate, &g, 0), qcap ? 0 : -EAGAIN);
    gate_open(&g);
    atomic_int ran = 0;
    for (int i = 0; i < 200; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 200);
    FM_CHECK_EQ(atomic_load(&g.passed), qcap ? 9 : 8);
    FM_CHECK_EQ(pool_stats(p).threads_created, 8);
    FM_CHECK_EQ(fm_pool_running(p), 8);
    fm_pool_destroy(p);
}

/* running counts a preallocated worker from fm_pool_new on; the thread
 * counters must agree with it in the same snapshot (created - exited ==
 * running when nothing is exiting). */
FM_TEST(prealloc_stats_count_threads_at_creation)
{
    fm_pool_opts o = {.prealloc = 1, .expiry_ns = -1};
    fm_pool *p = new_pool(8, &o);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.running, 8);
    FM_CHECK_EQ(s.threads_created, 8);
    FM_CHECK_EQ(s.threads_exited, 0);
    fm_pool_destroy(p);
}

FM_TEST(handoff_prealloc_starts_all_workers) { prealloc_case(0); }
FM_TEST(queue_prealloc_starts_all_workers) { prealloc_case(32); }

/* ------------------------------------------------------------------------ */
/* wait                                                                      */
/* ------------------------------------------------------------------------ */

static void task_sleep_count(void *arg)
{
    fm_test_sleep_ms(2);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void wait_all_case(size_t qcap, int64_t timeout)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(4, &o);
    atomic_int ran = 0;
    for (int i = 0; i < 40; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_sleep_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, timeout), 0);
    FM_CHECK_EQ(atomic_load(&ran), 40); /* every task has run when wait returns */
    FM_CHECK_EQ(pool_stats(p).completed, 40);
    FM_CHECK_EQ(pool_stats(p).queued, 0);
    fm_pool_destroy(p);
}

FM_TEST(handoff_wait_returns_after_all_tasks) { wait_all_case(0, FM_FOREVER); }
FM_TEST(queue_wait_returns_after_all_tasks) { wait_all_case(64, FM_FOREVER); }
FM_TEST(handoff_wait_with_timeout_returns_after_all_tasks) { wait_all_case(0, 30 * SEC_NS); }
FM_TEST(queue_wait_with_timeout_returns_after_all_tasks) { wait_all_case(64, 30 * SEC_NS); }

FM_TEST(wait_on_idle_pool_returns_at_once)
{
    fm_pool *p = new_pool(2, NULL);
    FM_CHECK_EQ(fm_pool_wait(p, 0), 0);
    FM_CHECK_EQ(fm_pool_wait(p, MS_NS), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_wait(p, 0), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    fm_pool_destroy(p);
}

static void wait_timeout_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(1, &o);
    struct gate g;
    gate_init(&g);
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    /* accepted but maybe not started yet: still counts */
    FM_CHECK_EQ(fm_pool_wait(p, 0), -ETIMEDOUT);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 1, 10000));
    if (qcap)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, 0), -ETIMEDOUT);
    int64_t t0 = fm_test_now_ns();
    FM_CHECK_EQ(fm_pool_wait(p, 20 * MS_NS), -ETIMEDOUT);
    FM_CHECK(fm_test_now_ns() - t0 >= 19 * MS_NS);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), qcap ? 1 : 0);
    FM_CHECK_EQ(atomic_load(&g.passed), 1);
    fm_pool_destroy(p);
}

FM_TEST(handoff_wait_times_out_while_task_blocked) { wait_timeout_case(0); }
FM_TEST(queue_wait_times_out_while_task_blocked) { wait_timeout_case(4); }

struct self_call {
    fm_pool *pool;
    int64_t timeout;
    atomic_int done;
    atomic_int rc;
    atomic_int rc2;
    atomic_int *ran;
};

static void task_wait_self(void *arg)
{
    struct self_call *c = arg;
    atomic_store(&c->rc, fm_pool_wait(c->pool, c->timeout));
    atomic_store(&c->done, 1);
}

static void wait_from_task_case(int64_t timeout)
{
    fm_pool *p = new_pool(2, NULL);
    static struct self_call c;
    c.pool = p;
    c.timeout = timeout;
    FM_CHECK_EQ(fm_pool_submit(p, task_wait_self, &c), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&c.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&c.rc), -EDEADLK);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

FM_TEST(wait_forever_from_own_task_is_edeadlk) { wait_from_task_case(FM_FOREVER); }
FM_TEST(wait_with_timeout_from_own_task_is_edeadlk) { wait_from_task_case(2 * SEC_NS); }

static void task_release_timeout_self(void *arg)
{
    struct self_call *c = arg;
    atomic_store(&c->rc, fm_pool_release_timeout(c->pool, c->timeout));
    atomic_store(&c->done, 1);
}

FM_TEST(release_timeout_from_own_task_is_edeadlk)
{
    fm_pool *p = new_pool(2, NULL);
    static struct self_call c;
    c.pool = p;
    c.timeout = FM_FOREVER;
    FM_CHECK_EQ(fm_pool_submit(p, task_release_timeout_self, &c), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&c.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&c.rc), -EDEADLK);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    fm_pool_destroy(p);
}

/* ------------------------------------------------------------------------ */
/* release, release_timeout, reboot                                          */
/* ------------------------------------------------------------------------ */

FM_TEST(release_closes_pool_and_is_idempotent)
{
    int v = 0;
    fm_pool_opts o = {.fn = task_count, .expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 1);
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -ESHUTDOWN);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -ESHUTDOWN);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 10 * MS_NS), -ESHUTDOWN);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, FM_FOREVER), -ESHUTDOWN);
    FM_CHECK_EQ(fm_pool_invoke(p, &v), -ESHUTDOWN);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 1);
    /* idle workers exit (they never expire here, so it is the release) */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0, 10000));
    FM_CHECK_EQ(fm_pool_wait(p, 0), 0);
    FM_CHECK_EQ(pool_stats(p).rejected, 5);
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    FM_CHECK_EQ(v, 0);
}

FM_TEST(release_on_saturated_nonblocking_pool_gives_eshutdown)
{
    fm_pool_opts o = {.nonblocking = 1};
    fm_pool *p = new_pool(1, &o);
    struct gate g[1];
    atomic_int ran = 0;
    saturate(p, 1, g, &ran);
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -EAGAIN);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -ESHUTDOWN);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -ESHUTDOWN);
    gate_open(&g[0]);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 0);
    fm_pool_destroy(p);
}

static void release_wakes_blocked_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(1, &o);
    struct gate g[1];
    atomic_int ran = 0;
    int queued = saturate(p, 1, g, &ran);
    atomic_int never = 0;
    struct submitter s[3];
    submitter_start(&s[0], p, SUBMIT_PLAIN, task_count, &never, 0);
    submitter_start(&s[1], p, SUBMIT_TIMEOUT, task_count, &never, FM_FOREVER);
    submitter_start(&s[2], p, SUBMIT_TIMEOUT, task_count, &never, 30 * SEC_NS);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 3, 10000));
    FM_CHECK_EQ(fm_pool_release(p), 0); /* does not wait for the busy task */
    for (int i = 0; i < 3; i++) {
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s[i].done) == 1, 10000));
        FM_CHECK_EQ(atomic_load(&s[i].rc), -ESHUTDOWN);
        submitter_join(&s[i]);
    }
    FM_CHECK_EQ(fm_pool_waiting(p), 0);
    FM_CHECK_EQ(atomic_load(&g[0].passed), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 1);
    gate_open(&g[0]);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    FM_CHECK_EQ(atomic_load(&ran), queued); /* queued tasks still ran */
    FM_CHECK_EQ(atomic_load(&never), 0);
    FM_CHECK_EQ(atomic_load(&g[0].passed), 1);
    fm_pool_destroy(p);
}

FM_TEST(handoff_release_wakes_blocked_submitters) { release_wakes_blocked_case(0); }
FM_TEST(queue_release_wakes_blocked_submitters) { release_wakes_blocked_case(4); }

FM_TEST(release_runs_every_queued_task)
{
    fm_pool_opts o = {.queue_capacity = 100};
    fm_pool *p = new_pool(2, &o);
    struct gate g[2];
    atomic_int ran = 0;
    int queued = saturate(p, 2, g, &ran);
    FM_CHECK_EQ(queued, 128);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -ESHUTDOWN);
    gate_open(&g[0]);
    gate_open(&g[1]);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), queued);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.completed, (uint64_t)queued + 2);
    FM_CHECK_EQ(s.queued, 0);
    fm_pool_destroy(p);
}

FM_TEST(release_lets_idle_workers_exit)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(4, &o);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_running(p), 4);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0, 10000));
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).threads_exited == 4, 10000));
    fm_pool_destroy(p);
}

struct release_waiter {
    pthread_t th;
    fm_pool *pool;
    int64_t timeout;
    atomic_int done;
    atomic_int rc;
    atomic_int running_after;
};

static void *release_waiter_main(void *arg)
{
    struct release_waiter *w = arg;
    int rc = fm_pool_release_timeout(w->pool, w->timeout);
    atomic_store(&w->running_after, fm_pool_running(w->pool));
    atomic_store(&w->rc, rc);
    atomic_store(&w->done, 1);
    return NULL;
}

static void release_timeout_case(size_t qcap)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = qcap};
    fm_pool *p = new_pool(4, &o);
    struct gate g[4];
    atomic_int ran = 0;
    int queued = saturate(p, 4, g, &ran);
    /* stuck tasks: release_timeout times out, the pool is closed anyway */
    int64_t t0 = fm_test_now_ns();
    FM_CHECK_EQ(fm_pool_release_timeout(p, 20 * MS_NS), -ETIMEDOUT);
    FM_CHECK(fm_test_now_ns() - t0 >= 19 * MS_NS);
    FM_CHECK_EQ(fm_pool_is_closed(p), 1);
    FM_CHECK_EQ(fm_pool_release_timeout(p, 0), -ETIMEDOUT);
    FM_CHECK_EQ(fm_pool_running(p), 4);
    /* FM_FOREVER waits until the last worker is gone */
    static struct release_waiter w;
    w.pool = p;
    w.timeout = FM_FOREVER;
    if (pthread_create(&w.th, NULL, release_waiter_main, &w) != 0)
        FM_FAIL("pthread_create");
    for (int i = 0; i < 3; i++)
        gate_open(&g[i]);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) <= 1, 10000));
    fm_test_sleep_ms(20);
    FM_CHECK_EQ(atomic_load(&w.done), 0); /* one worker still busy */
    gate_open(&g[3]);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&w.done) == 1, 10000));
    pthread_join(w.th, NULL);
    FM_CHECK_EQ(atomic_load(&w.rc), 0);
    FM_CHECK_EQ(atomic_load(&w.running_after), 0);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.threads_exited, s.threads_created);
    FM_CHECK_EQ(s.idle, 0);
    FM_CHECK_EQ(atomic_load(&ran), queued);
    /* on a pool with no worker left it returns at once */
    FM_CHECK_EQ(fm_pool_release_timeout(p, 0), 0);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

FM_TEST(handoff_release_timeout_waits_for_every_worker) { release_timeout_case(0); }
FM_TEST(queue_release_timeout_waits_for_every_worker) { release_timeout_case(8); }

FM_TEST(release_timeout_on_idle_workers)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(3, &o);
    atomic_int ran = 0;
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 3, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_release_timeout(p, 10 * SEC_NS), 0);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    FM_CHECK_EQ(pool_stats(p).threads_exited, 3);
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -ESHUTDOWN);
    fm_pool_destroy(p);
}

static void reboot_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(3, &o);
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_reboot(p), 0); /* no-op on an open pool */
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 30; i++)
            FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
        if (round % 2 == 0) {
            FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
            FM_CHECK_EQ(fm_pool_running(p), 0);
        } else {
            FM_CHECK_EQ(fm_pool_release(p), 0);
        }
        FM_CHECK_EQ(fm_pool_is_closed(p), 1);
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -ESHUTDOWN);
        FM_CHECK_EQ(fm_pool_reboot(p), 0);
        FM_CHECK_EQ(fm_pool_is_closed(p), 0);
        FM_CHECK_EQ(fm_pool_reboot(p), 0);
        FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    }
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 150);
    FM_CHECK(fm_pool_running(p) <= 3);
    fm_pool_destroy(p);
}

FM_TEST(handoff_reboot_reopens) { reboot_case(0); }
FM_TEST(queue_reboot_reopens) { reboot_case(8); }

FM_TEST(reboot_with_busy_workers_keeps_running_within_capacity)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    struct gate g[2];
    atomic_int ran = 0;
    saturate(p, 2, g, &ran);
    struct sampler smp;
    sampler_start(&smp, p, 2);
    FM_CHECK_EQ(fm_pool_release(p), 0);
    FM_CHECK_EQ(fm_pool_reboot(p), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    /* both old workers are still busy: the pool is saturated */
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    FM_CHECK(fm_pool_running(p) <= 2);
    struct submitter s;
    submitter_start(&s, p, SUBMIT_PLAIN, task_count, &ran, 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(p) == 1, 10000));
    gate_open(&g[0]);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&s.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&s.rc), 0);
    submitter_join(&s);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&ran) == 1, 10000));
    gate_open(&g[1]);
    for (int i = 0; i < 200; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    sampler_stop(&smp);
    FM_CHECK_EQ(atomic_load(&smp.max_over_cap), 0);
    FM_CHECK_EQ(atomic_load(&ran), 201);
    fm_pool_destroy(p);
}

FM_TEST(prealloc_reboot_starts_all_workers_again)
{
    fm_pool_opts o = {.prealloc = 1, .expiry_ns = -1};
    fm_pool *p = new_pool(4, &o);
    FM_CHECK_EQ(fm_pool_running(p), 4);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_running(p), 0);
    FM_CHECK_EQ(fm_pool_reboot(p), 0);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 4, 10000));
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).threads_created == 8, 10000));
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    FM_CHECK_EQ(fm_pool_running(p), 4);
    gate_open(&g);
    atomic_int ran = 0;
    for (int i = 0; i < 50; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 50);
    FM_CHECK_EQ(pool_stats(p).threads_created, 8);
    fm_pool_destroy(p);
}

/* ------------------------------------------------------------------------ */
/* destroy                                                                   */
/* ------------------------------------------------------------------------ */

struct destroyer {
    pthread_t th;
    fm_pool *pool;
    atomic_int done;
};

static void *destroyer_main(void *arg)
{
    struct destroyer *d = arg;
    fm_pool_destroy(d->pool);
    atomic_store(&d->done, 1);
    return NULL;
}

static void destroy_waits_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(2, &o);
    struct gate g[2];
    atomic_int ran = 0;
    int queued = saturate(p, 2, g, &ran);
    static struct destroyer d;
    d.pool = p;
    if (pthread_create(&d.th, NULL, destroyer_main, &d) != 0)
        FM_FAIL("pthread_create");
    fm_test_sleep_ms(30);
    FM_CHECK_EQ(atomic_load(&d.done), 0); /* busy tasks hold it */
    gate_open(&g[0]);
    fm_test_sleep_ms(10);
    FM_CHECK_EQ(atomic_load(&d.done), 0);
    gate_open(&g[1]);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&d.done) == 1, 10000));
    pthread_join(d.th, NULL);
    FM_CHECK_EQ(atomic_load(&g[0].passed) + atomic_load(&g[1].passed), 2);
    FM_CHECK_EQ(atomic_load(&ran), queued); /* queued tasks ran before it returned */
}

FM_TEST(handoff_destroy_waits_for_busy_tasks) { destroy_waits_case(0); }
FM_TEST(queue_destroy_runs_queued_tasks) { destroy_waits_case(16); }

FM_TEST(destroy_right_after_submits_runs_them_all)
{
    /* many short-lived pools of every kind: tasks may still be queued or
     * handed over when destroy starts; none may be lost */
    for (int round = 0; round < 600; round++) {
        int cap = 1 + round % 4;
        fm_pool_opts o = {.queue_capacity = (size_t)(round / 4 % 2) * 16,
                          .prealloc = round / 8 % 2};
        fm_pool *p = new_pool(cap, &o);
        atomic_int ran = 0;
        int n = round % 3 == 0 ? 200 : 20;
        for (int i = 0; i < n; i++)
            FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
        fm_pool_destroy(p);
        if (atomic_load(&ran) != n)
            FM_FAIL("round %d (capacity %d, queue_capacity %zu, prealloc %d): %d of %d accepted "
                    "tasks ran before fm_pool_destroy returned",
                    round, cap, o.queue_capacity, o.prealloc, atomic_load(&ran), n);
    }
}

static fm_pool *abort_pool;
static void task_destroy_own_pool(void *arg)
{
    (void)arg;
    fm_pool_destroy(abort_pool);
}

/* The child of the death test: its pool's task destroys the pool. */
static void destroy_own_pool_from_task(void)
{
    if (fm_pool_new(&abort_pool, 2, NULL) != 0)
        _exit(3);
    if (fm_pool_submit(abort_pool, task_destroy_own_pool, NULL) != 0)
        _exit(4);
    fm_test_sleep_ms(10000); /* the task should abort the process first */
    _exit(5);
}

FM_TEST(destroy_from_own_task_aborts_with_message)
{
    fm_test_expect_abort(destroy_own_pool_from_task,
                         "fm_pool_destroy called from inside a task of the pool it destroys");
}

/* ------------------------------------------------------------------------ */
/* the default pool                                                          */
/* ------------------------------------------------------------------------ */

FM_TEST(default_pool_is_unlimited_and_runs_fm_submit)
{
    fm_pool *p = fm_default_pool();
    FM_CHECK(p != NULL);
    FM_CHECK(fm_default_pool() == p);
    FM_CHECK_EQ(fm_pool_cap(p), -1);
    FM_CHECK_EQ(fm_pool_available(p), -1);
    FM_CHECK_EQ(fm_pool_is_closed(p), 0);
    atomic_int ran = 0;
    for (int i = 0; i < 100; i++)
        FM_CHECK_EQ(fm_submit(task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 100);
    FM_CHECK_EQ(fm_submit(NULL, &ran), -EINVAL);
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 16; i++)
        FM_CHECK_EQ(fm_submit(task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 16, 10000));
    FM_CHECK(fm_pool_running(p) >= 16);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&g.passed), 16);
    FM_CHECK(pool_stats(p).submitted >= 116);
}

FM_TEST(default_pool_created_by_fm_submit)
{
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_submit(task_count, &ran), 0);
    fm_pool *p = fm_default_pool();
    FM_CHECK(p != NULL);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    FM_CHECK_EQ(pool_stats(p).submitted, 1);
}

/* ------------------------------------------------------------------------ */
/* hooks, thread names, stack size                                           */
/* ------------------------------------------------------------------------ */

struct hook_state {
    atomic_int starts;
    atomic_int exits;
    atomic_int bad;
};
static struct hook_state hooks;
static _Thread_local int tls_hook_started, tls_hook_exited;

static void hook_start(void *ctx)
{
    if (ctx != &hooks || tls_hook_started || tls_hook_exited)
        atomic_fetch_add(&hooks.bad, 1);
    tls_hook_started = 1;
    atomic_fetch_add(&hooks.starts, 1);
}

static void hook_exit(void *ctx)
{
    if (ctx != &hooks || !tls_hook_started || tls_hook_exited)
        atomic_fetch_add(&hooks.bad, 1);
    tls_hook_exited = 1;
    atomic_fetch_add(&hooks.exits, 1);
}

static void task_check_hook_ran(void *arg)
{
    if (!tls_hook_started || tls_hook_exited)
        atomic_fetch_add(&hooks.bad, 1);
    gate_pass(arg);
}

static void hooks_case(size_t qcap)
{
    fm_pool_opts o = {.expiry_ns = 10 * MS_NS,
                      .queue_capacity = qcap,
                      .on_worker_start = hook_start,
                      .on_worker_exit = hook_exit,
                      .ctx = &hooks};
    fm_pool *p = new_pool(4, &o);
    FM_CHECK_EQ(atomic_load(&hooks.starts), 0);
    for (int round = 1; round <= 5; round++) {
        struct gate g;
        gate_init(&g);
        for (int i = 0; i < 4; i++)
            FM_CHECK_EQ(fm_pool_submit(p, task_check_hook_ran, &g), 0);
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
        /* hand-off: one new worker per task; queue mode may start a spare */
        if (qcap == 0)
            FM_CHECK_EQ(atomic_load(&hooks.starts), 4 * round);
        else
            FM_CHECK(atomic_load(&hooks.starts) >= 4 * round);
        gate_open(&g);
        FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
        /* every worker expires, each running its exit hook once */
        FM_CHECK(FM_WAIT_UNTIL(fm_pool_running(p) == 0, 10000));
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&hooks.exits) == atomic_load(&hooks.starts), 10000));
        FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).threads_created == (uint64_t)atomic_load(&hooks.starts),
                               10000));
    }
    struct gate g;
    gate_init(&g);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_check_hook_ran, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 3, 10000));
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0); /* every thread joined */
    uint64_t created = pool_stats(p).threads_created;
    if (qcap == 0)
        FM_CHECK_EQ(created, 23);
    else
        FM_CHECK(created >= 23);
    FM_CHECK_EQ(atomic_load(&hooks.starts), (long long)created);
    FM_CHECK_EQ(atomic_load(&hooks.exits), (long long)created);
    /* and destroy runs every exit hook before it returns */
    FM_CHECK_EQ(fm_pool_reboot(p), 0);
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_check_hook_ran, &g), 0);
    fm_pool_destroy(p);
    FM_CHECK(atomic_load(&hooks.starts) > (long long)created);
    FM_CHECK_EQ(atomic_load(&hooks.exits), atomic_load(&hooks.starts));
    FM_CHECK_EQ(atomic_load(&hooks.bad), 0);
}

FM_TEST(handoff_worker_hooks_run_once_per_thread) { hooks_case(0); }
FM_TEST(queue_worker_hooks_run_once_per_thread) { hooks_case(8); }

FM_TEST(prealloc_worker_hooks_run_once_per_thread)
{
    fm_pool_opts o = {.prealloc = 1,
                      .expiry_ns = -1,
                      .on_worker_start = hook_start,
                      .on_worker_exit = hook_exit,
                      .ctx = &hooks};
    fm_pool *p = new_pool(6, &o);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&hooks.starts) == 6, 10000));
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&hooks.exits), 6);
    FM_CHECK_EQ(fm_pool_reboot(p), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&hooks.starts) == 12, 10000));
    fm_pool_destroy(p);
    FM_CHECK_EQ(atomic_load(&hooks.starts), 12);
    FM_CHECK_EQ(atomic_load(&hooks.exits), 12);
    FM_CHECK_EQ(atomic_load(&hooks.bad), 0);
}

struct name_probe {
    struct gate *gate;
    char name[32];
    atomic_int got;
};

static void task_get_name(void *arg)
{
    struct name_probe *np = arg;
    char buf[32] = {0};
    if (pthread_getname_np(pthread_self(), buf, sizeof buf) == 0)
        memcpy(np->name, buf, sizeof buf);
    else
        strcpy(np->name, "<error>");
    atomic_store(&np->got, 1);
    if (np->gate)
        gate_pass(np->gate);
}

static int is_worker_name(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] != '-' || name[n + 1] == 0)
        return 0;
    for (const char *c = name + n + 1; *c; c++)
        if (*c < '0' || *c > '9')
            return 0;
    return 1;
}

struct named_count {
    const char *prefix;
    int n;
};

static void count_named_thread(const char *tid, char *comm, void *ctx)
{
    (void)tid;
    struct named_count *c = ctx;
    comm[strcspn(comm, "\n")] = 0;
    c->n += is_worker_name(comm, c->prefix);
}

static int count_threads_named(const char *prefix)
{
    struct named_count c = {prefix, 0};
    for_each_thread("comm", count_named_thread, &c);
    return c.n;
}

static void thread_names_case(const char *name, const char *expect_prefix)
{
    fm_pool_opts o = {.name = name};
    fm_pool *p = new_pool(4, &o);
    struct gate g;
    gate_init(&g);
    static struct name_probe probes[4];
    for (int i = 0; i < 4; i++) {
        probes[i].gate = &g;
        FM_CHECK_EQ(fm_pool_submit(p, task_get_name, &probes[i]), 0);
    }
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 4, 10000));
    for (int i = 0; i < 4; i++) {
        if (!is_worker_name(probes[i].name, expect_prefix))
            FM_FAIL("worker name \"%s\" is not \"%s-<n>\"", probes[i].name, expect_prefix);
        for (int j = 0; j < i; j++)
            FM_CHECK(strcmp(probes[i].name, probes[j].name) != 0); /* <n> differs */
    }
    FM_CHECK_EQ(count_threads_named(expect_prefix), 4);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    fm_pool_destroy(p);
}

FM_TEST(thread_names_use_the_prefix) { thread_names_case("wkr", "wkr"); }
FM_TEST(thread_names_default_prefix_is_fm) { thread_names_case(NULL, "fm"); }

FM_TEST(thread_name_long_prefix_still_works)
{
    fm_pool_opts o = {.name = "a-rather-long-thread-name-prefix"};
    fm_pool *p = new_pool(2, &o);
    static struct name_probe probe;
    FM_CHECK_EQ(fm_pool_submit(p, task_get_name, &probe), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&probe.got), 1);
    FM_CHECK(strncmp(probe.name, "a-rather", 8) == 0);
    FM_CHECK(strlen(probe.name) <= 15);
    fm_pool_destroy(p);
}

struct stack_probe {
    atomic_int done;
    size_t size;
    int rc;
};

static void task_stack_size(void *arg)
{
    struct stack_probe *sp = arg;
    pthread_attr_t attr;
    sp->rc = pthread_getattr_np(pthread_self(), &attr);
    if (sp->rc == 0) {
        pthread_attr_getstacksize(&attr, &sp->size);
        pthread_attr_destroy(&attr);
    }
    atomic_store(&sp->done, 1);
}

static size_t stack_size_of_worker(size_t requested, size_t qcap)
{
    fm_pool_opts o = {.stack_size = requested, .queue_capacity = qcap};
    fm_pool *p = new_pool(2, &o);
    static struct stack_probe sp;
    memset(&sp, 0, sizeof sp);
    FM_CHECK_EQ(fm_pool_submit(p, task_stack_size, &sp), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&sp.done), 1);
    FM_CHECK_EQ(sp.rc, 0);
    fm_pool_destroy(p);
    return sp.size;
}

/* The stack size a worker got must be at least the one asked for; upper
 * bounds are checked except under ThreadSanitizer, whose runtime enlarges
 * small thread stacks and hands out cached ones of other sizes. */
static void check_stack(size_t got, size_t want, const char *what)
{
    size_t slack = FM_TEST_TSAN ? SIZE_MAX - want : 256 * 1024;
    if (got < want || got - want > slack)
        FM_FAIL("%s: worker stack of %zu bytes, asked for %zu", what, got, want);
}

FM_TEST(stack_size_is_honoured)
{
    const size_t mib = 1024 * 1024;
    check_stack(stack_size_of_worker(3 * mib, 0), 3 * mib, "3 MiB, hand-off");
    check_stack(stack_size_of_worker(5 * mib, 16), 5 * mib, "5 MiB, queue");
}

FM_TEST(default_stack_size_is_256k)
{
    /* documented: "0 = library default (256 KiB)" */
    check_stack(stack_size_of_worker(0, 0), 256 * 1024, "default");
}

/* ------------------------------------------------------------------------ */
/* nested submit                                                             */
/* ------------------------------------------------------------------------ */

static void task_nested_submit(void *arg)
{
    struct self_call *c = arg;
    atomic_store(&c->rc, fm_pool_submit(c->pool, task_count, c->ran));
    atomic_store(&c->rc2, fm_pool_submit_timeout(c->pool, task_count, c->ran, FM_FOREVER));
    atomic_store(&c->done, 1);
}

FM_TEST(handoff_nested_blocking_submit_into_saturated_pool_is_edeadlk)
{
    fm_pool *p = new_pool(1, NULL);
    static struct self_call c;
    atomic_int ran = 0;
    c.pool = p;
    c.ran = &ran;
    FM_CHECK_EQ(fm_pool_submit(p, task_nested_submit, &c), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&c.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&c.rc), -EDEADLK);
    FM_CHECK_EQ(atomic_load(&c.rc2), -EDEADLK);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 0);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.rejected, 2);
    FM_CHECK_EQ(s.submitted, 1);
    fm_pool_destroy(p);
}

static void task_nested_fill_queue(void *arg)
{
    struct self_call *c = arg;
    int rc = 0;
    size_t qc = pool_stats(c->pool).queue_capacity;
    for (size_t i = 0; i < qc && rc == 0; i++)
        rc = fm_pool_submit(c->pool, task_count, c->ran); /* room: accepted */
    atomic_store(&c->rc2, rc);
    atomic_store(&c->rc, fm_pool_submit(c->pool, task_count, c->ran));
    atomic_store(&c->done, 1);
}

FM_TEST(queue_nested_blocking_submit_into_full_pool_is_edeadlk)
{
    fm_pool_opts o = {.queue_capacity = 4};
    fm_pool *p = new_pool(1, &o);
    static struct self_call c;
    atomic_int ran = 0;
    c.pool = p;
    c.ran = &ran;
    FM_CHECK_EQ(fm_pool_submit(p, task_nested_fill_queue, &c), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&c.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&c.rc2), 0);
    FM_CHECK_EQ(atomic_load(&c.rc), -EDEADLK);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 4);
    fm_pool_destroy(p);
}

static void task_nested_submit_once(void *arg)
{
    struct self_call *c = arg;
    atomic_store(&c->rc, fm_pool_submit(c->pool, task_count, c->ran));
    atomic_store(&c->done, 1);
}

static void nested_room_case(int cap, size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap};
    fm_pool *p = new_pool(cap, &o);
    static struct self_call c;
    atomic_int ran = 0;
    c.pool = p;
    c.ran = &ran;
    FM_CHECK_EQ(fm_pool_submit(p, task_nested_submit_once, &c), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&c.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&c.rc), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    fm_pool_destroy(p);
}

FM_TEST(handoff_nested_submit_with_room_succeeds) { nested_room_case(2, 0); }
FM_TEST(queue_nested_submit_with_room_succeeds) { nested_room_case(1, 4); }
FM_TEST(unlimited_nested_submit_succeeds) { nested_room_case(FM_UNLIMITED, 0); }

struct cross_call {
    fm_pool *other;
    atomic_int *ran;
    atomic_int done;
    atomic_int rc;
};

static void task_submit_to_other(void *arg)
{
    struct cross_call *c = arg;
    atomic_store(&c->rc, fm_pool_submit(c->other, task_count, c->ran));
    atomic_store(&c->done, 1);
}

FM_TEST(nested_submit_into_another_saturated_pool_blocks)
{
    fm_pool *a = new_pool(1, NULL);
    fm_pool *b = new_pool(1, NULL);
    struct gate g[1];
    atomic_int ran = 0;
    saturate(b, 1, g, &ran);
    static struct cross_call c;
    c.other = b;
    c.ran = &ran;
    FM_CHECK_EQ(fm_pool_submit(a, task_submit_to_other, &c), 0);
    /* a task of a, not of b: it waits for b instead of failing */
    FM_CHECK(FM_WAIT_UNTIL(fm_pool_waiting(b) == 1 || atomic_load(&c.done), 10000));
    FM_CHECK_EQ(atomic_load(&c.done), 0);
    gate_open(&g[0]);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&c.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&c.rc), 0);
    FM_CHECK_EQ(fm_pool_wait(a, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_wait(b, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 1);
    fm_pool_destroy(a);
    fm_pool_destroy(b);
}

/* ------------------------------------------------------------------------ */
/* fork                                                                      */
/* ------------------------------------------------------------------------ */

static void expect_child_ok(pid_t pid)
{
    int status = wait_child(pid, 30000);
    if (WIFSIGNALED(status))
        FM_FAIL("forked child killed by signal %d", WTERMSIG(status));
    FM_CHECK(WIFEXITED(status));
    FM_CHECK_EQ(WEXITSTATUS(status), 0);
}

FM_TEST(fork_child_sees_every_pool_closed_and_can_reboot)
{
    SKIP_UNDER_TSAN();
    fm_pool_opts oq = {.queue_capacity = 8, .expiry_ns = -1};
    fm_pool_opts oh = {.expiry_ns = -1};
    fm_pool *h = new_pool(2, &oh);
    fm_pool *q = new_pool(2, &oq);
    atomic_int ran = 0;
    for (int i = 0; i < 10; i++) {
        FM_CHECK_EQ(fm_pool_submit(h, task_count, &ran), 0);
        FM_CHECK_EQ(fm_pool_submit(q, task_count, &ran), 0);
        FM_CHECK_EQ(fm_submit(task_count, &ran), 0);
    }
    FM_CHECK_EQ(fm_pool_wait(h, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_wait(q, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_wait(fm_default_pool(), FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 30);
    FM_CHECK(fm_pool_running(h) > 0);
    fflush(NULL);
    pid_t pid = fork();
    FM_CHECK(pid >= 0);
    if (pid == 0) {
        fm_pool *all[3] = {h, q, fm_default_pool()};
        FM_CHECK(all[2] != NULL);
        for (int k = 0; k < 3; k++) {
            FM_CHECK_EQ(fm_pool_is_closed(all[k]), 1);
            FM_CHECK_EQ(fm_pool_submit(all[k], task_count, &ran), -ESHUTDOWN);
            FM_CHECK_EQ(fm_pool_running(all[k]), 0); /* no thread of it here */
        }
        FM_CHECK_EQ(fm_submit(task_count, &ran), -ESHUTDOWN);
        for (int k = 0; k < 3; k++) {
            FM_CHECK_EQ(fm_pool_reboot(all[k]), 0);
            FM_CHECK_EQ(fm_pool_is_closed(all[k]), 0);
            FM_CHECK_EQ(fm_pool_submit(all[k], task_count, &ran), 0);
            FM_CHECK_EQ(fm_pool_wait(all[k], 10 * SEC_NS), 0);
        }
        FM_CHECK_EQ(fm_submit(task_count, &ran), 0);
        FM_CHECK_EQ(fm_pool_wait(all[2], 10 * SEC_NS), 0);
        FM_CHECK_EQ(atomic_load(&ran), 34);
        fm_pool_destroy(h);
        fm_pool_destroy(q);
        _exit(0);
    }
    expect_child_ok(pid);
    /* the parent is untouched */
    FM_CHECK_EQ(fm_pool_is_closed(h), 0);
    FM_CHECK_EQ(fm_pool_submit(h, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_submit(q, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(h, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_wait(q, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), 32);
    fm_pool_destroy(h);
    fm_pool_destroy(q);
}

static void fork_busy_case(size_t qcap)
{
    SKIP_UNDER_TSAN();
    /* the parent's only worker is busy at the fork: the child must not count
     * it (it does not exist there) nor run the parent's queued tasks */
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = -1};
    fm_pool *p = new_pool(1, &o);
    struct gate g[1];
    atomic_int queued_ran = 0;
    int queued = saturate(p, 1, g, &queued_ran);
    fflush(NULL);
    pid_t pid = fork();
    FM_CHECK(pid >= 0);
    if (pid == 0) {
        atomic_int ran = 0;
        FM_CHECK_EQ(fm_pool_is_closed(p), 1);
        FM_CHECK_EQ(fm_pool_reboot(p), 0);
        FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 10 * SEC_NS), 0);
        FM_CHECK_EQ(fm_pool_wait(p, 10 * SEC_NS), 0);
        FM_CHECK_EQ(atomic_load(&ran), 1);
        FM_CHECK_EQ(fm_pool_running(p), 1);
        FM_CHECK_EQ(fm_pool_release_timeout(p, 10 * SEC_NS), 0);
        FM_CHECK_EQ(atomic_load(&queued_ran), 0);
        fm_pool_destroy(p);
        _exit(0);
    }
    expect_child_ok(pid);
    gate_open(&g[0]);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&queued_ran), queued);
    fm_pool_destroy(p);
}

FM_TEST(handoff_fork_with_busy_worker_child_reboots_and_runs) { fork_busy_case(0); }
FM_TEST(queue_fork_with_queued_tasks_child_runs_only_its_own) { fork_busy_case(4); }

/* ------------------------------------------------------------------------ */
/* statistics                                                                */
/* ------------------------------------------------------------------------ */

FM_TEST(stats_handoff_add_up)
{
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(2, &o);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.capacity, 2);
    FM_CHECK_EQ(s.running, 0);
    FM_CHECK_EQ(s.idle, 0);
    FM_CHECK_EQ(s.waiting, 0);
    FM_CHECK_EQ(s.queued, 0);
    FM_CHECK_EQ(s.queue_capacity, 0);
    FM_CHECK_EQ(s.submitted, 0);
    FM_CHECK_EQ(s.completed, 0);
    FM_CHECK_EQ(s.rejected, 0);
    FM_CHECK_EQ(s.threads_created, 0);
    FM_CHECK_EQ(s.threads_exited, 0);

    struct gate g[2];
    atomic_int ran = 0;
    saturate(p, 2, g, &ran);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 5 * MS_NS), -ETIMEDOUT);
    s = pool_stats(p);
    FM_CHECK_EQ(s.capacity, 2);
    FM_CHECK_EQ(s.running, 2);
    FM_CHECK_EQ(s.idle, 0);
    FM_CHECK_EQ(s.waiting, 0);
    FM_CHECK_EQ(s.submitted, 2);
    FM_CHECK_EQ(s.completed, 0);
    FM_CHECK_EQ(s.rejected, 2);
    FM_CHECK_EQ(s.threads_created, 2);
    FM_CHECK_EQ(s.threads_exited, 0);

    struct submitter sub;
    submitter_start(&sub, p, SUBMIT_PLAIN, task_count, &ran, 0);
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).waiting == 1, 10000));
    gate_open(&g[0]);
    gate_open(&g[1]);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&sub.done) == 1, 10000));
    FM_CHECK_EQ(atomic_load(&sub.rc), 0);
    submitter_join(&sub);
    for (int i = 0; i < 10; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).idle == 2, 10000));
    s = pool_stats(p);
    FM_CHECK_EQ(s.submitted, 13);
    FM_CHECK_EQ(s.completed, 13);
    FM_CHECK_EQ(s.rejected, 2);
    FM_CHECK_EQ(s.running, 2);
    FM_CHECK_EQ(s.waiting, 0);
    FM_CHECK_EQ(s.threads_created, 2);
    FM_CHECK_EQ(s.threads_exited, 0);
    FM_CHECK_EQ(atomic_load(&ran), 11);

    FM_CHECK_EQ(fm_pool_tune(p, 5), 0);
    FM_CHECK_EQ(pool_stats(p).capacity, 5);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), -ESHUTDOWN);
    s = pool_stats(p);
    FM_CHECK_EQ(s.rejected, 3);
    FM_CHECK_EQ(s.running, 0);
    FM_CHECK_EQ(s.idle, 0);
    FM_CHECK_EQ(s.threads_created, 2);
    FM_CHECK_EQ(s.threads_exited, 2);
    FM_CHECK_EQ(s.submitted, 13);
    FM_CHECK_EQ(s.completed, 13);
    fm_pool_destroy(p);
}

FM_TEST(stats_queue_add_up)
{
    fm_pool_opts o = {.expiry_ns = -1, .queue_capacity = 5};
    fm_pool *p = new_pool(1, &o);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.queue_capacity, 8); /* rounded up to a power of two */
    FM_CHECK_EQ(s.capacity, 1);
    FM_CHECK_EQ(s.queued, 0);
    struct gate g;
    gate_init(&g);
    atomic_int ran = 0;
    FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == 1, 10000));
    for (int i = 0; i < 3; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    s = pool_stats(p);
    FM_CHECK_EQ(s.queued, 3);
    FM_CHECK_EQ(s.submitted, 4);
    FM_CHECK_EQ(s.running, 1);
    FM_CHECK_EQ(s.idle, 0);
    FM_CHECK_EQ(s.completed, 0);
    for (int i = 0; i < 5; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_count, &ran), 0);
    FM_CHECK_EQ(fm_pool_submit_timeout(p, task_count, &ran, 0), -EAGAIN);
    s = pool_stats(p);
    FM_CHECK_EQ(s.queued, 8);
    FM_CHECK_EQ(s.submitted, 9);
    FM_CHECK_EQ(s.rejected, 1);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK(FM_WAIT_UNTIL(pool_stats(p).idle == 1, 10000));
    s = pool_stats(p);
    FM_CHECK_EQ(s.queued, 0);
    FM_CHECK_EQ(s.completed, 9);
    FM_CHECK_EQ(s.threads_created, 1);
    FM_CHECK_EQ(atomic_load(&ran), 8);
    FM_CHECK_EQ(fm_pool_release_timeout(p, FM_FOREVER), 0);
    s = pool_stats(p);
    FM_CHECK_EQ(s.threads_exited, 1);
    FM_CHECK_EQ(s.running, 0);
    fm_pool_destroy(p);
}

FM_TEST(stats_queue_capacity_rounding)
{
    /* "rounded up to a power of two": the smallest power of two >= the
     * request (the FIFO may keep a minimum of 2 cells) */
    const size_t asks[] = {1, 2, 3, 7, 64, 1000, 1025};
    const size_t want[] = {1, 2, 4, 8, 64, 1024, 2048};
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        fm_pool_opts o = {.queue_capacity = asks[i]};
        fm_pool *p = new_pool(2, &o);
        size_t real = pool_stats(p).queue_capacity;
        if (real != want[i] && !(want[i] == 1 && real == 2))
            FM_FAIL("queue_capacity %zu: reported %zu, expected %zu", asks[i], real, want[i]);
        fm_pool_destroy(p);
    }
}

FM_TEST_MAIN()
