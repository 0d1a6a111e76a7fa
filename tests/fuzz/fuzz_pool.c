/* The API fuzzer's worker-pool ops: pools and multipools with odd options,
 * submits of every kind, tune, release, reboot, wait, destroy, task groups
 * and futures. Every submit gets a task record; a task checks that it runs
 * once and that the tasks running at once stay within the largest capacity
 * the pool ever had. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"

static const int64_t fz_timeouts[] = {0, 1000, 1000000, FM_FOREVER, -5};

/* ---- task records ---- */

static struct fz_task *fz_task_new(struct fz_pool *fp, fm_group *g, uint8_t kind)
{
    struct fz_world *w = fp->w;
    int i = atomic_fetch_add(&w->ntasks, 1);
    if (i >= FZ_MAX_TASKS) {
        atomic_fetch_sub(&w->ntasks, 1);
        return NULL;
    }
    struct fz_task *k = &w->tasks[i];
    k->pool = fp;
    k->group = g;
    k->kind = kind;
    return k;
}

static void fz_task_settle(struct fz_task *k, int rc)
{
    atomic_store(&k->state, rc == 0 ? 1 : 2);
    if (rc == 0)
        atomic_fetch_add(&k->pool->accepted, 1);
}

void fz_tasks_check(struct fz_world *w)
{
    int n = atomic_load(&w->ntasks);
    for (int i = 0; i < n; i++) {
        struct fz_task *k = &w->tasks[i];
        FZ_CHECK_EQ(atomic_load(&k->ran), atomic_load(&k->state) == 1);
    }
}

/* ---- tasks ---- */

static void fz_task_run(void *arg);

/* A submit from inside a task to its own pool: never waits for itself. Its
 * pool's destroy waits until no task is in here (a call must not start on
 * a pool being destroyed). */
static void fz_task_nested(struct fz_task *k, int blocking)
{
    struct fz_pool *fp = k->pool;
    atomic_fetch_add(&fp->nesting, 1);
    if (!atomic_load(&fp->dying)) {
        struct fz_task *c = fz_task_new(fp, NULL, 0);
        if (c) {
            int rc = blocking ? fm_pool_submit(fp->p, fz_task_run, c)
                              : fm_pool_submit_timeout(fp->p, fz_task_run, c, 0);
            FZ_CHECK_RC(rc, 0, -EAGAIN, -EDEADLK, -ESHUTDOWN);
            if (rc == -EDEADLK)
                FZ_CHECK(blocking && !fp->nonblocking);
            fz_task_settle(c, rc);
        }
    }
    atomic_fetch_sub(&fp->nesting, 1);
}

static void fz_task_work(struct fz_task *k)
{
    struct fz_pool *fp = k->pool;
    switch (k->kind % 8) {
    case 2:
        for (volatile int i = 0; i < 2000; i++) {
        }
        break;
    case 3:
        sched_yield();
        break;
    case 4:
    case 5:
        if (fp->p)
            fz_task_nested(k, k->kind % 8 == 5);
        break;
    case 6:
        if (fp->p) /* it would wait for itself */
            FZ_CHECK_EQ(fm_pool_wait(fp->p, FM_FOREVER), -EDEADLK);
        break;
    case 7: {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        break;
    }
    default:
        break;
    }
}

static void fz_task_run(void *arg)
{
    struct fz_task *k = arg;
    struct fz_pool *fp = k->pool;
    FZ_CHECK_EQ(atomic_fetch_add(&k->ran, 1), 0);
    int active = atomic_fetch_add(&fp->active, 1) + 1;
    FZ_CHECK(active <= atomic_load(&fp->maxcap));
    fz_task_work(k);
    atomic_fetch_sub(&fp->active, 1);
    atomic_fetch_add(&fp->ran, 1);
}

static void fz_on_start(void *ctx)
{
    atomic_fetch_add(&((struct fz_pool *)ctx)->starts, 1);
}

static void fz_on_exit(void *ctx)
{
    atomic_fetch_add(&((struct fz_pool *)ctx)->exits, 1);
}

static void fz_on_slow(const struct fm_task_info *info, void *ctx)
{
    FZ_CHECK(info->fn != NULL && info->running_ns >= 0 && ctx != NULL);
}

/* ---- creating and destroying ---- */

static void fz_max_cap(struct fz_pool *fp, int cap)
{
    long total = (long)cap * (fp->m ? fp->npools : 1);
    int v = total > INT_MAX ? INT_MAX : (int)total;
    int old = atomic_load(&fp->maxcap);
    while (v > old && !atomic_compare_exchange_weak(&fp->maxcap, &old, v)) {
    }
}

/* Options from 6 bytes of a record; *cap the capacity asked for. NULL: the
 * defaults. */
static const fm_pool_opts *fz_pool_opts(struct fz_pool *fp, const uint8_t *r, fm_pool_opts *o,
                                        int *cap)
{
    static const int caps[] = {0, FM_UNLIMITED, -2, 1, 2, 3, 4, 8, INT_MAX, INT_MIN};
    static const size_t queues[] = {0, 0, 0, 1, 2, 3, 4, 7, 64, 1000, SIZE_MAX,
                                    SIZE_MAX / 2 + 1};
    static const int64_t expiries[] = {0, -1, 1, 1000000, 50000000};
    static const int blocking[] = {0, 0, 1, 2, -1};
    static const char *names[] = {NULL, "", "fuzz", "a-very-long-thread-name"};
    *cap = FZ_PICK(caps, r[0]);
    *o = (fm_pool_opts){
        .queue_capacity = FZ_PICK(queues, r[1]),
        .expiry_ns = FZ_PICK(expiries, r[2]),
        /* preallocating INT_MAX threads is a test of the machine */
        .prealloc = (r[3] & 1) && *cap <= 8,
        .nonblocking = (r[3] >> 1) & 1,
        .fn = r[3] & 4 ? fz_task_run : NULL,
        .on_worker_start = r[3] & 8 ? fz_on_start : NULL,
        .on_worker_exit = r[3] & 8 ? fz_on_exit : NULL,
        .ctx = fp,
        .name = FZ_PICK(names, r[3] >> 4),
        .max_blocking = FZ_PICK(blocking, r[4]),
        .slow_task_ns = r[5] & 1 ? 1000000 : 0,
        .on_slow_task = r[5] & 1 ? fz_on_slow : NULL,
    };
    return r[5] & 2 ? NULL : o;
}

/* The code fm_pool_new / fm_multipool_new must return for these options
 * (-EAGAIN, a preallocation that could not start its threads, is also let
 * through by the caller). */
static int fz_pool_expect(int cap, const fm_pool_opts *o)
{
    if (cap <= 0 && cap != FM_UNLIMITED)
        return -EINVAL;
    if (!o)
        return 0;
    if ((o->prealloc && cap == FM_UNLIMITED) || o->max_blocking < 0)
        return -EINVAL;
    if (o->queue_capacity > ((size_t)1 << 40))
        return -ENOMEM;
    return 0;
}

/* What the harness records of a new pool with these options. */
static void fz_pool_record(struct fz_pool *fp, int cap, const fm_pool_opts *o)
{
    fm_pool_opts none = {0};
    if (!o)
        o = &none;
    fp->cap = cap;
    fp->prealloc = o->prealloc;
    fp->nonblocking = o->nonblocking;
    fp->max_blocking = o->max_blocking;
    fp->has_fn = o->fn != NULL;
    fp->queue = o->queue_capacity;
    atomic_store(&fp->maxcap, cap == FM_UNLIMITED ? INT_MAX : 0);
    fz_max_cap(fp, cap);
}

void fz_pool_new(struct fz_world *w, struct fz_pool *fp, int shared, const uint8_t *r)
{
    memset(fp, 0, sizeof *fp);
    fp->w = w;
    fp->shared = shared;
    fm_pool_opts opts;
    int cap;
    const fm_pool_opts *o = fz_pool_opts(fp, r, &opts, &cap);
    int expect = fz_pool_expect(cap, o);
    fm_pool *p = (fm_pool *)&p; /* the call clears it on every error */
    int rc = fm_pool_new(&p, cap, o);
    if (rc == -EAGAIN && o && o->prealloc)
        return;
    FZ_CHECK_EQ(rc, expect);
    if (rc) {
        FZ_CHECK(p == NULL || expect == -EINVAL);
        return;
    }
    fp->p = p;
    fz_pool_record(fp, cap, o);
}

/* The default pool: unlimited, all defaults, shared by every input. */
void fz_default_pool_init(struct fz_world *w)
{
    struct fz_pool *fp = &w->dflt;
    memset(fp, 0, sizeof *fp);
    fp->w = w;
    fp->shared = 1;
    fp->p = fm_default_pool();
    FZ_CHECK(fp->p != NULL && fp->p == fm_default_pool());
    fz_pool_record(fp, FM_UNLIMITED, NULL);
}

/* Its tasks of this input have run once it is quiet (nothing else submits to it). */
void fz_default_pool_end(struct fz_world *w)
{
    FZ_CHECK_EQ(fm_pool_wait(w->dflt.p, FM_FOREVER), 0);
    FZ_CHECK_EQ(atomic_load(&w->dflt.accepted), atomic_load(&w->dflt.ran));
    FZ_CHECK_EQ(atomic_load(&w->dflt.nesting), 0);
}

/* Destroy: no task may be inside a nested submit to it from now on. */
static void fz_pool_quiesce(struct fz_pool *fp)
{
    atomic_store(&fp->dying, 1);
    while (atomic_load(&fp->nesting))
        sched_yield();
}

static void fz_pool_check_end(struct fz_pool *fp)
{
    FZ_CHECK_EQ(atomic_load(&fp->accepted), atomic_load(&fp->ran));
    FZ_CHECK_EQ(atomic_load(&fp->active), 0);
    FZ_CHECK_EQ(atomic_load(&fp->starts), atomic_load(&fp->exits));
}

void fz_pool_destroy(struct fz_world *w, struct fz_pool *fp)
{
    (void)w;
    if (!fp->p)
        return;
    fz_pool_quiesce(fp);
    fm_pool_destroy(fp->p);
    fp->p = NULL;
    fz_pool_check_end(fp);
}

/* ---- pool ops ---- */

/* The codes a submit by the harness may return. */
static void fz_submit_check(struct fz_pool *fp, int rc, int64_t timeout)
{
    int may_wait = timeout != 0 && !fp->nonblocking;
    if (!fp->shared && fp->closed) {
        FZ_CHECK_EQ(rc, -ESHUTDOWN);
        return;
    }
    if (!fp->shared && may_wait && timeout < 0) {
        FZ_CHECK_EQ(rc, 0); /* nobody else waits on it: it takes the task */
        return;
    }
    FZ_CHECK_RC(rc, 0, -EAGAIN, -ETIMEDOUT, -ESHUTDOWN);
    if (rc == -ESHUTDOWN)
        FZ_CHECK(fp->shared);
    if (rc == -ETIMEDOUT)
        FZ_CHECK(may_wait && timeout > 0);
    if (rc == -EAGAIN)
        FZ_CHECK(!may_wait || fp->max_blocking > 0);
}

static void fz_submit(struct fz_pool *fp, const uint8_t *r, int how)
{
    if (!fp->p && !fp->m)
        return;
    struct fz_task *k = fz_task_new(fp, NULL, r[3]);
    if (!k)
        return;
    int64_t timeout = how == 1 ? FZ_PICK(fz_timeouts, r[4]) : FM_FOREVER;
    int rc;
    if (how == 2) {
        rc = fp->m ? fm_multipool_invoke(fp->m, k) : fm_pool_invoke(fp->p, k);
        if (!fp->has_fn) {
            FZ_CHECK_EQ(rc, -EINVAL);
            fz_task_settle(k, rc);
            return;
        }
    } else if (fp->m) {
        rc = fm_multipool_submit(fp->m, fz_task_run, k);
    } else if (fp == &fp->w->dflt) {
        rc = fm_submit(fz_task_run, k);
    } else {
        rc = how == 1 ? fm_pool_submit_timeout(fp->p, fz_task_run, k, timeout)
                      : fm_pool_submit(fp->p, fz_task_run, k);
    }
    fz_submit_check(fp, rc, timeout);
    fz_task_settle(k, rc);
}

static void fz_tune(struct fz_pool *fp, const uint8_t *r)
{
    if (!fp->p && !fp->m)
        return;
    long c = fp->cap, values[] = {c, c - 1, c + 1, c > 0 && c < 64 ? 2 * c : 1, 0, -1, INT_MAX, 1};
    long pick = FZ_PICK(values, r[3]);
    int v = pick > INT_MAX ? INT_MAX : (int)pick;
    if (v > 0 && fp->cap != FM_UNLIMITED)
        fz_max_cap(fp, v);
    int rc = fp->m ? fm_multipool_tune(fp->m, v) : fm_pool_tune(fp->p, v);
    int invalid = v <= 0 || fp->prealloc || fp->cap == FM_UNLIMITED;
    FZ_CHECK_EQ(rc, invalid ? -EINVAL : 0);
    if (!rc && !fp->shared) /* a shared pool's capacity is only bounded, by maxcap */
        fp->cap = v;
}

static void fz_release_timeout(struct fz_pool *fp, const uint8_t *r)
{
    static const int64_t timeouts[] = {0, 1000000, FM_FOREVER};
    /* Another thread may reboot a shared pool at once: only a bounded wait. */
    int64_t timeout = FZ_PICK(timeouts, r[3]);
    if (fp->shared && timeout < 0)
        timeout = 20000000;
    int rc = fp->m ? fm_multipool_release_timeout(fp->m, timeout)
                   : fm_pool_release_timeout(fp->p, timeout);
    FZ_CHECK_RC(rc, 0, -ETIMEDOUT);
    if (!fp->shared)
        fp->closed = 1;
    if (timeout < 0)
        FZ_CHECK_EQ(rc, 0);
    if (rc == 0 && !fp->shared) /* every worker is gone */
        FZ_CHECK_EQ(fp->m ? fm_multipool_running(fp->m) : fm_pool_running(fp->p), 0);
}

static void fz_reboot(struct fz_pool *fp)
{
    int rc = fp->m ? fm_multipool_reboot(fp->m) : fm_pool_reboot(fp->p);
    if (fp->prealloc)
        FZ_CHECK_RC(rc, 0, -EAGAIN);
    else
        FZ_CHECK_EQ(rc, 0);
    if (!fp->shared)
        fp->closed = 0;
}

static void fz_wait(struct fz_pool *fp, const uint8_t *r)
{
    static const int64_t timeouts[] = {FM_FOREVER, 0, 1000000};
    int64_t timeout = FZ_PICK(timeouts, r[3]);
    int rc = fm_pool_wait(fp->p, timeout);
    FZ_CHECK_RC(rc, 0, -ETIMEDOUT);
    if (timeout < 0)
        FZ_CHECK_EQ(rc, 0);
    if (rc || fp->shared)
        return;
    /* Nothing queued or running, and only this thread submits to it. */
    struct fm_pool_stats s;
    FZ_CHECK_EQ(fm_pool_stats(fp->p, &s), 0);
    FZ_CHECK_EQ(s.submitted, s.completed);
    FZ_CHECK_EQ(s.queued, 0);
    if (!fp->foreign) {
        FZ_CHECK_EQ(s.submitted, atomic_load(&fp->accepted));
        FZ_CHECK_EQ(atomic_load(&fp->accepted), atomic_load(&fp->ran));
    }
}

static void fz_stats_json(fm_pool *p, const uint8_t *r)
{
    char line[512];
    size_t len = fz_json_len(r[4], sizeof line);
    fz_json_check(fm_pool_stats_json(p, len ? line : NULL, len), line, len, sizeof line);
}

static void fz_stats(struct fz_pool *fp, fm_pool *p, const uint8_t *r)
{
    struct fm_pool_stats s;
    FZ_CHECK_EQ(fm_pool_stats(p, &s), 0);
    int maxcap = atomic_load(&fp->maxcap);
    FZ_CHECK(s.submitted >= s.completed);
    FZ_CHECK(s.idle <= s.running && s.idle >= 0);
    FZ_CHECK(s.running <= maxcap);
    FZ_CHECK(s.waiting >= 0);
    FZ_CHECK(s.threads_exited <= s.threads_created);
    if (fp->queue) {
        FZ_CHECK(s.queue_capacity >= fp->queue && s.queue_capacity >= 2);
        FZ_CHECK_EQ(s.queue_capacity & (s.queue_capacity - 1), 0);
        FZ_CHECK(s.queued <= s.queue_capacity);
    } else {
        FZ_CHECK_EQ(s.queue_capacity, 0);
    }
    if (!fp->shared) {
        FZ_CHECK_EQ(s.capacity, fp->cap);
        FZ_CHECK_EQ(s.waiting, 0); /* the only submitter is here */
        FZ_CHECK_EQ(fm_pool_is_closed(p), fp->closed);
    }
    FZ_CHECK(fm_threads_live() >= 0); /* compared with nothing: running counts slots being started */
    int avail = fm_pool_available(p), cap = fm_pool_cap(p);
    FZ_CHECK(cap == FM_UNLIMITED ? avail == -1 : avail >= 0 && avail <= cap);
    struct fm_task_info info[4];
    int n = fm_pool_busy_tasks(p, info, r[3] % 5);
    FZ_CHECK(n >= 0 && n <= maxcap);
    for (int i = 0; i < n && i < r[3] % 5; i++)
        FZ_CHECK(info[i].fn != NULL && info[i].running_ns >= 0);
    fz_stats_json(p, r);
    if (r[5] % 16 == 0) {
        static FILE *null_out;
        if (!null_out)
            null_out = fopen("/dev/null", "w");
        if (null_out)
            FZ_CHECK_EQ(fm_pool_dump(p, null_out), 0);
    }
}

/* The pool API on NULL arguments. */
static void fz_null_args(void)
{
    FZ_CHECK_EQ(fm_pool_new(NULL, 1, NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_submit(NULL, fz_task_run, NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_submit_timeout(NULL, fz_task_run, NULL, 0), -EINVAL);
    FZ_CHECK_EQ(fm_pool_invoke(NULL, NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_tune(NULL, 1), -EINVAL);
    FZ_CHECK_EQ(fm_pool_wait(NULL, 0), -EINVAL);
    FZ_CHECK_EQ(fm_pool_release(NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_release_timeout(NULL, 0), -EINVAL);
    FZ_CHECK_EQ(fm_pool_reboot(NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_is_closed(NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_running(NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_stats(NULL, NULL), -EINVAL);
    FZ_CHECK_EQ(fm_pool_stats_json(NULL, NULL, 0), -EINVAL);
    FZ_CHECK_EQ(fm_multipool_submit(NULL, fz_task_run, NULL), -EINVAL);
    FZ_CHECK_EQ(fm_multipool_new(NULL, 1, 1, FM_LB_ROUND_ROBIN, NULL), -EINVAL);
    fm_group *g = (fm_group *)&g;
    FZ_CHECK_EQ(fm_group_new(NULL, NULL, 0), -EINVAL);
    FZ_CHECK_EQ(fm_group_new(&g, NULL, 0), -EINVAL);
    FZ_CHECK(g == NULL); /* cleared on every error */
    fm_pool_destroy(NULL);
    fm_multipool_destroy(NULL);
    fm_group_destroy(NULL);
    fm_future_destroy(NULL);
}

/* ---- task groups, on the thread's first pool ---- */

static int fz_job_run(void *arg);

static void fz_job_nested(struct fz_task *k)
{
    struct fz_thread *t = k->pool->owner;
    atomic_fetch_add(&t->group_nesting, 1);
    if (!atomic_load(&t->group_dying)) {
        struct fz_task *c = fz_task_new(k->pool, k->group, 0);
        if (c) {
            /* never -EDEADLK: at the limit or with the pool full, the job runs here */
            int rc = fm_group_submit(k->group, fz_job_run, c);
            FZ_CHECK_RC(rc, 0, -ECANCELED, -ESHUTDOWN, -EAGAIN);
            fz_task_settle(c, rc);
        }
    }
    atomic_fetch_sub(&t->group_nesting, 1);
}

static int fz_job_run(void *arg)
{
    struct fz_task *k = arg;
    FZ_CHECK_EQ(atomic_fetch_add(&k->ran, 1), 0);
    switch (k->kind % 4) {
    case 1:
        fz_job_nested(k);
        break;
    case 2:
        FZ_CHECK_EQ(fm_group_wait(k->group, FM_FOREVER), -EDEADLK);
        break;
    default:
        break;
    }
    atomic_fetch_add(&k->pool->ran, 1);
    return k->kind >= 200 ? -100 - k->kind % 4 : 0; /* a failing job */
}

static void fz_group_destroy(struct fz_thread *t)
{
    if (!t->group)
        return;
    atomic_store(&t->group_dying, 1);
    while (atomic_load(&t->group_nesting))
        sched_yield();
    fm_group_destroy(t->group);
    t->group = NULL;
    atomic_store(&t->group_dying, 0);
}

static void fz_group_new(struct fz_thread *t, const uint8_t *r)
{
    static const int limits[] = {0, 1, 2, -1};
    fz_group_destroy(t);
    int limit = FZ_PICK(limits, r[3]);
    struct fz_pool *fp = &t->pools[0];
    int rc = fm_group_new(&t->group, fp->p, limit);
    FZ_CHECK_EQ(rc, !fp->p || limit < 0 ? -EINVAL : 0);
    t->group_failed = 0;
    if (rc == 0) {
        fp->foreign = 1;
        fp->owner = t;
    }
}

static void fz_group_submit(struct fz_thread *t, const uint8_t *r)
{
    struct fz_pool *fp = &t->pools[0];
    if (!t->group)
        return;
    struct fz_task *k = fz_task_new(fp, t->group, r[3]);
    if (!k)
        return;
    int rc = fm_group_submit(t->group, fz_job_run, k);
    FZ_CHECK_RC(rc, 0, -ECANCELED, -ESHUTDOWN, -EAGAIN);
    if (rc == -ESHUTDOWN)
        FZ_CHECK(fp->closed);
    if (rc == -EAGAIN)
        FZ_CHECK(fp->nonblocking);
    fz_task_settle(k, rc);
    if (rc == 0 && k->kind >= 200)
        t->group_failed = 1;
}

static void fz_group_wait(struct fz_thread *t, const uint8_t *r)
{
    if (!t->group)
        return;
    int64_t timeout = r[3] & 1 ? 0 : FM_FOREVER;
    int rc = fm_group_wait(t->group, timeout);
    FZ_CHECK_RC(rc, 0, -ETIMEDOUT, -100, -101, -102, -103);
    if (rc != 0 && rc != -ETIMEDOUT)
        FZ_CHECK(t->group_failed && fm_group_cancelled(t->group) == 1);
    if (timeout < 0) { /* every job returned: a failure, if one was accepted */
        FZ_CHECK(rc != -ETIMEDOUT);
        FZ_CHECK((rc != 0) == t->group_failed);
    }
}

static void fz_group_cancel(struct fz_thread *t)
{
    if (!t->group)
        return;
    fm_group_cancel(t->group);
    FZ_CHECK_EQ(fm_group_cancelled(t->group), 1);
    struct fz_task *k = fz_task_new(&t->pools[0], t->group, 0);
    if (k) {
        int rc = fm_group_submit(t->group, fz_job_run, k);
        FZ_CHECK_EQ(rc, -ECANCELED);
        fz_task_settle(k, rc);
    }
}

/* ---- futures ---- */

static void *fz_call_run(void *arg)
{
    struct fz_task *k = arg;
    FZ_CHECK_EQ(atomic_fetch_add(&k->ran, 1), 0);
    atomic_fetch_add(&k->pool->ran, 1);
    return k;
}

static void fz_call(struct fz_thread *t, struct fz_pool *fp, const uint8_t *r)
{
    int slot = r[3] & 1;
    fm_future_destroy(t->futures[slot]); /* maybe before the call ran: allowed */
    t->futures[slot] = NULL;
    if (!fp->p)
        return;
    struct fz_task *k = fz_task_new(fp, NULL, 0);
    if (!k)
        return;
    fm_future *f = (fm_future *)&f;
    int rc = fm_pool_call(fp->p, fz_call_run, k, &f);
    fz_submit_check(fp, rc, FM_FOREVER);
    fz_task_settle(k, rc);
    FZ_CHECK((rc == 0) == (f != NULL));
    t->futures[slot] = f;
    t->future_args[slot] = k;
}

static void fz_future_wait(struct fz_thread *t, const uint8_t *r)
{
    int slot = r[3] & 1;
    fm_future *f = t->futures[slot];
    if (!f)
        return;
    int64_t timeout = r[4] & 1 ? 0 : FM_FOREVER;
    void *res = NULL;
    int rc = fm_future_wait(f, timeout, &res);
    FZ_CHECK_RC(rc, 0, -ETIMEDOUT);
    if (timeout < 0)
        FZ_CHECK_EQ(rc, 0);
    if (rc == 0) {
        FZ_CHECK(res == t->future_args[slot]);
        FZ_CHECK_EQ(fm_future_done(f), 1);
    }
}

/* ---- multipools ---- */

static void fz_multi_destroy(struct fz_pool *fp)
{
    if (!fp->m)
        return;
    fm_multipool_destroy(fp->m);
    fp->m = NULL;
    fz_pool_check_end(fp);
}

static void fz_multi_new(struct fz_thread *t, const uint8_t *r)
{
    static const int npools[] = {1, 2, 3, 2, 0, -1, FM_MULTIPOOL_MAX + 1, 1};
    struct fz_pool *fp = &t->multi;
    fz_multi_destroy(fp);
    memset(fp, 0, sizeof *fp);
    fp->w = t->w;
    fm_pool_opts opts;
    /* byte 1's high bits pick the number of pools, byte 7's the balancer */
    int cap, n = npools[(r[1] >> 4) & 7], lb = (r[7] >> 2) % 3;
    const fm_pool_opts *o = fz_pool_opts(fp, r + 2, &opts, &cap);
    int expect = n <= 0 || n > FM_MULTIPOOL_MAX || lb > 1 ? -EINVAL : fz_pool_expect(cap, o);
    fm_multipool *m = (fm_multipool *)&m;
    int rc = fm_multipool_new(&m, n, cap, (fm_lb)lb, o);
    if (rc == -EAGAIN && o && o->prealloc)
        return;
    FZ_CHECK_EQ(rc, expect);
    if (rc)
        return;
    fp->m = m;
    fp->npools = n;
    FZ_CHECK_EQ(fm_multipool_npools(m), n);
    fz_pool_record(fp, cap, o);
}

static void fz_multi_misc(struct fz_pool *fp, const uint8_t *r)
{
    if (!fp->m)
        return;
    int running = fm_multipool_running(fp->m);
    FZ_CHECK(running >= 0 && running <= atomic_load(&fp->maxcap));
    FZ_CHECK(fm_multipool_waiting(fp->m) >= 0);
    int cap = fm_multipool_cap(fp->m), avail = fm_multipool_available(fp->m);
    FZ_CHECK(cap == -1 ? avail == -1 : avail >= 0 && avail <= cap);
    FZ_CHECK_EQ(fm_multipool_is_closed(fp->m), fp->closed);
    int i = r[4] % (fp->npools + 1);
    fm_pool *p = fm_multipool_pool(fp->m, i);
    FZ_CHECK((p != NULL) == (i < fp->npools));
    if (p)
        fz_stats(&(struct fz_pool){.maxcap = atomic_load(&fp->maxcap), .queue = fp->queue,
                                   .shared = 1},
                 p, r);
}

/* ---- dispatch ---- */

void fz_pool_op(struct fz_thread *t, const uint8_t *r)
{
    struct fz_pool *fp = FZ_SHARED(r) ? &t->w->pool : &t->pools[FZ_SLOT(r)];
    switch ((r[0] >> 1) % 24) {
    case 0:
        if (FZ_SHARED(r))
            break;
        if (fp == &t->pools[0])
            fz_group_destroy(t);
        fz_pool_destroy(t->w, fp);
        fz_pool_new(t->w, fp, 0, r + 2);
        break;
    case 1:
    case 2:
        fz_submit(fp, r, 0);
        break;
    case 3:
        fz_submit(fp, r, 1);
        break;
    case 4:
        fz_submit(fp, r, 2);
        break;
    case 5:
        fz_tune(fp, r);
        break;
    case 6:
        if (fp->p) {
            FZ_CHECK_EQ(fm_pool_release(fp->p), 0);
            if (!fp->shared)
                fp->closed = 1;
        }
        break;
    case 7:
        if (fp->p)
            fz_release_timeout(fp, r);
        break;
    case 8:
        if (fp->p)
            fz_reboot(fp);
        break;
    case 9:
        if (fp->p)
            fz_wait(fp, r);
        break;
    case 10:
        if (FZ_SHARED(r))
            break;
        if (fp == &t->pools[0])
            fz_group_destroy(t);
        fz_pool_destroy(t->w, fp);
        break;
    case 11:
        if (fp->p)
            fz_stats(fp, fp->p, r);
        break;
    case 12:
        fz_group_new(t, r);
        break;
    case 13:
        fz_group_submit(t, r);
        break;
    case 14:
        fz_group_wait(t, r);
        break;
    case 15:
        if (r[2] & 1)
            fz_group_cancel(t);
        else
            fz_group_destroy(t);
        break;
    case 16:
        fz_call(t, fp, r);
        break;
    case 17:
        fz_future_wait(t, r);
        break;
    case 18:
        fz_multi_new(t, r);
        break;
    case 19:
        fz_submit(&t->multi, r, r[2] % 3 == 0 ? 2 : 0);
        break;
    case 20:
        fz_tune(&t->multi, r);
        break;
    case 21:
        if (!t->multi.m)
            break;
        if (r[2] & 1)
            fz_release_timeout(&t->multi, r);
        else
            fz_reboot(&t->multi);
        break;
    case 22:
        if (r[2] % 4 == 0)
            fz_multi_destroy(&t->multi);
        else
            fz_multi_misc(&t->multi, r);
        break;
    default:
        if (r[2] % 4 == 0) {
            fz_null_args();
        } else if (r[2] % 4 == 1) { /* a pause: workers go to sleep, short expiries expire */
            struct timespec ts = {0, 200000 * (1 + r[3] % 10)};
            nanosleep(&ts, NULL);
        } else {
            fz_submit(&t->w->dflt, r, 0);
        }
        break;
    }
}

void fz_pool_thread_end(struct fz_thread *t)
{
    for (int i = 0; i < 2; i++) {
        fm_future_destroy(t->futures[i]);
        t->futures[i] = NULL;
    }
    fz_group_destroy(t);
    fz_pool_destroy(t->w, &t->pools[0]);
    fz_pool_destroy(t->w, &t->pools[1]);
    fz_multi_destroy(&t->multi);
}
