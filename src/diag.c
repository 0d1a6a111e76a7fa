/* Diagnostics for worker pools (include/formica/diag.h): the dump of busy
 * workers, the slow-task watchdog, stats as JSON, the live-thread count.
 *
 * Workers publish the task they run with no lock (worker.c, fm__worker_run;
 * protocol in pool_internal.h); readers here walk the pool's list of workers
 * under the pool lock, which keeps every listed worker's memory mapped, and
 * copy each one's task with fm__worker_task.
 *
 * Timing: workers read no clock. Each task is numbered by its worker's
 * completed count; the first reader (watchdog tick, dump) that sees a task
 * number notes the coarse time in the worker (seen_*), and later readers
 * measure from there: durations are lower bounds.
 *
 * Watchdog state (pool lock): watch_armed says a tick is pending;
 * worker.watch_seen marks the task last reported, so each slow task is
 * reported once. The tick runs every quarter threshold while some worker is
 * not idle; it disarms once every worker is idle, and fm__pool_busy_locked
 * re-arms it when a worker leaves the idle list or starts. An idle pool thus
 * gets no ticks.
 */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "pool_internal.h"

/* ---- fm_threads_live ---- */

/* Threads started and not yet joined. relaxed: a counter read for reports
 * and tests; a thread's start and join are ordered by pthread_create/join. */
static _Atomic int fm__threads_alive;

/* In a fork child no thread of the parent's formica exists (called by the
 * maintenance module's child handler, maint.c). */
void fm__threads_after_fork(void)
{
    atomic_store_explicit(&fm__threads_alive, 0, memory_order_relaxed);
}

void fm__threads_started(int n)
{
    atomic_fetch_add_explicit(&fm__threads_alive, n, memory_order_relaxed);
}

void fm__threads_joined(int n)
{
    atomic_fetch_sub_explicit(&fm__threads_alive, n, memory_order_relaxed);
}

FM_API int fm_threads_live(void)
{
    return atomic_load_explicit(&fm__threads_alive, memory_order_relaxed);
}

/* ---- reading a worker's task ---- */

/* Copies the task w runs into *t (symbol left NULL) with its number in
 * *seq. 1 if it runs one, 0 if it is between tasks (or kept changing under
 * us: it is then plainly not stuck). The worker reads no clock, so the task
 * is timed from the first time a reader saw it: running_ns is a lower bound.
 * Pool lock held (it guards seen_seq/seen_at). */
static int fm__worker_task(struct fm__worker *w, int64_t now_coarse, struct fm_task_info *t,
                           uint64_t *seq)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t c1 = atomic_load_explicit(&w->completed, memory_order_acquire);
        fm_task_fn fn = atomic_load_explicit(&w->cur_fn, memory_order_acquire);
        void *arg = atomic_load_explicit(&w->cur_arg, memory_order_acquire);
        uint64_t c2 = atomic_load_explicit(&w->completed, memory_order_acquire);
        if (c1 != c2)
            continue;
        if (!fn)
            return 0;
        if (w->seen_seq != c1 + 1) { /* first sighting of this task */
            w->seen_seq = c1 + 1;
            w->seen_at = now_coarse;
        }
        t->fn = fn;
        t->arg = arg;
        t->symbol = NULL;
        t->running_ns = now_coarse - w->seen_at;
        t->worker = w->id;
        *seq = c1;
        return 1;
    }
    return 0;
}

/* A function's address as a data pointer (for dladdr and %p): ISO C has no
 * cast between the two, POSIX guarantees they have the same representation. */
static void *fm__fn_addr(fm_task_fn fn)
{
    void *p;
    _Static_assert(sizeof p == sizeof fn, "function and data pointers differ in size");
    memcpy(&p, &fn, sizeof p);
    return p;
}

static const char *fm__symbol_of(fm_task_fn fn, uintptr_t *offset, const char **file)
{
    Dl_info info;
    void *addr = fm__fn_addr(fn);
    *offset = 0;
    *file = NULL;
    if (!dladdr(addr, &info))
        return NULL;
    *file = info.dli_fname;
    if (info.dli_sname && info.dli_saddr) {
        *offset = (uintptr_t)addr - (uintptr_t)info.dli_saddr;
        return info.dli_sname;
    }
    *offset = (uintptr_t)addr - (uintptr_t)info.dli_fbase;
    return NULL;
}

static void fm__fill_symbol(struct fm_task_info *t)
{
    uintptr_t off;
    const char *file;
    const char *name = fm__symbol_of(t->fn, &off, &file);
    t->symbol = name && off == 0 ? name : NULL;
}

/* Busy tasks, copied under the lock into out (at most max); returns how many
 * workers run one. */
static int fm__collect(struct fm_pool *p, struct fm_task_info *out, int max)
{
    int64_t now = fm__now_coarse_ns();
    int n = 0;
    pthread_mutex_lock(&p->lock);
    for (struct fm__worker *w = p->all; w; w = w->all_next) {
        struct fm_task_info t;
        uint64_t seq;
        if (!fm__worker_task(w, now, &t, &seq))
            continue;
        if (n < max)
            out[n] = t;
        n++;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

static int fm__by_running_desc(const void *a, const void *b)
{
    int64_t x = ((const struct fm_task_info *)a)->running_ns;
    int64_t y = ((const struct fm_task_info *)b)->running_ns;
    return x < y ? 1 : x > y ? -1 : 0;
}

FM_API int fm_pool_busy_tasks(const fm_pool *cp, struct fm_task_info *out, int max)
{
    if (!cp || max < 0 || (max > 0 && !out))
        return -EINVAL;
    struct fm_pool *p = (struct fm_pool *)cp; /* the lock is not part of the value */
    int n = fm__collect(p, out, max);
    int got = n < max ? n : max;
    if (got > 1) /* qsort wants a valid pointer even for no element */
        qsort(out, (size_t)got, sizeof *out, fm__by_running_desc);
    for (int i = 0; i < got; i++)
        fm__fill_symbol(&out[i]);
    return n;
}

/* ---- stats as JSON ---- */

FM_API int fm_pool_stats_json(const fm_pool *p, char *buf, size_t len)
{
    if (!p || (!buf && len > 0))
        return -EINVAL;
    struct fm_pool_stats s;
    int rc = fm_pool_stats(p, &s);
    if (rc)
        return rc;
    return snprintf(buf, len,
                    "{\"name\":\"%s\",\"capacity\":%d,\"running\":%d,\"idle\":%d,\"waiting\":%d,"
                    "\"queued\":%zu,\"queue_capacity\":%zu,\"submitted\":%llu,"
                    "\"completed\":%llu,\"rejected\":%llu,\"threads_created\":%llu,"
                    "\"threads_exited\":%llu}",
                    p->name, s.capacity, s.running, s.idle, s.waiting, s.queued, s.queue_capacity,
                    (unsigned long long)s.submitted, (unsigned long long)s.completed,
                    (unsigned long long)s.rejected, (unsigned long long)s.threads_created,
                    (unsigned long long)s.threads_exited);
}

/* ---- the dump ---- */

/* "name+0x10" or "file+0x1234" or "?" for fn. */
static void fm__describe_fn(fm_task_fn fn, char *buf, size_t len)
{
    uintptr_t off;
    const char *file;
    const char *name = fm__symbol_of(fn, &off, &file);
    if (name && off == 0)
        snprintf(buf, len, "%s", name);
    else if (name)
        snprintf(buf, len, "%s+0x%lx", name, (unsigned long)off);
    else if (file) {
        const char *base = strrchr(file, '/');
        snprintf(buf, len, "%s+0x%lx", base ? base + 1 : file, (unsigned long)off);
    } else {
        snprintf(buf, len, "?");
    }
}

FM_API int fm_pool_dump(const fm_pool *cp, FILE *out)
{
    if (!cp || !out)
        return -EINVAL;
    struct fm_pool *p = (struct fm_pool *)cp;
    /* Copy first, write after: no lock is held while writing to out. */
    int max = 0, n;
    struct fm_task_info *tasks = NULL;
    for (;;) {
        n = fm__collect(p, tasks, max);
        if (n <= max)
            break;
        fm__sys.free(tasks);
        max = n + 8; /* workers may have started meanwhile */
        tasks = fm__sys.malloc((size_t)max * sizeof *tasks);
        if (!tasks)
            return -ENOMEM;
    }
    if (n > 1)
        qsort(tasks, (size_t)n, sizeof *tasks, fm__by_running_desc);
    int err = 0;
    err |= fprintf(out, "pool %s: %d busy of %d running, capacity %d\n", p->name, n,
                   fm_pool_running(p), fm_pool_cap(p)) < 0;
    for (int i = 0; i < n; i++) {
        char fn[256];
        fm__describe_fn(tasks[i].fn, fn, sizeof fn);
        err |= fprintf(out, "  %s-%u: %s (fn %p) arg %p running for at least %.3f s\n", p->name,
                       tasks[i].worker, fn, fm__fn_addr(tasks[i].fn), tasks[i].arg,
                       (double)tasks[i].running_ns / 1e9) < 0;
    }
    fm__sys.free(tasks);
    char json[512];
    fm_pool_stats_json(p, json, sizeof json);
    err |= fprintf(out, "  counters %s\n", json) < 0;
    err |= fflush(out) != 0;
    return err ? -EIO : 0;
}

/* ---- the slow-task watchdog ---- */

#define FM__WATCH_BATCH 16

static void fm__slow_task_default(const struct fm_task_info *t, void *ctx)
{
    (void)ctx;
    char fn[256];
    fm__describe_fn(t->fn, fn, sizeof fn);
    fprintf(stderr, "formica: slow task %s (arg %p) on worker %u, running for at least %.3f s\n", fn,
            t->arg, t->worker, (double)t->running_ns / 1e9);
}

/* How often the watchdog looks while a worker is busy: a quarter of the
 * threshold, so that a task is reported between the threshold and 1.25 times
 * it (plus the coarse clock's lag) after it started. */
static int64_t fm__watch_period(const struct fm_pool *p)
{
    int64_t period = p->opts.slow_task_ns / 4;
    return period > FM__NSEC_PER_SEC / 1000 ? period : FM__NSEC_PER_SEC / 1000;
}

static int64_t fm__watch_tick(fm__maint_client *c, int64_t now)
{
    struct fm_pool *p = (struct fm_pool *)((char *)c - offsetof(struct fm_pool, watch));
    int64_t threshold = p->opts.slow_task_ns;
    struct fm_task_info slow[FM__WATCH_BATCH];
    int nslow = 0, more = 0;
    pthread_mutex_lock(&p->lock);
    int64_t coarse = fm__now_coarse_ns();
    for (struct fm__worker *w = p->all; w; w = w->all_next) {
        struct fm_task_info t;
        uint64_t seq;
        if (!fm__worker_task(w, coarse, &t, &seq) || w->watch_seen == seq + 1 ||
            t.running_ns < threshold)
            continue;
        if (nslow == FM__WATCH_BATCH) {
            more = 1;
            break;
        }
        slow[nslow++] = t;
        w->watch_seen = seq + 1;
    }
    int64_t next;
    if (atomic_load_explicit(&p->running, memory_order_relaxed) ==
        atomic_load_explicit(&p->nidle, memory_order_relaxed)) {
        next = INT64_MAX; /* all idle: the next busy transition re-arms */
        p->watch_armed = 0;
    } else {
        next = more ? now : now + fm__watch_period(p);
    }
    pthread_mutex_unlock(&p->lock);
    void (*cb)(const struct fm_task_info *, void *) =
        p->opts.on_slow_task ? p->opts.on_slow_task : fm__slow_task_default;
    for (int i = 0; i < nslow; i++) {
        fm__fill_symbol(&slow[i]);
        cb(&slow[i], p->opts.ctx);
    }
    return next;
}

void fm__watch_arm_locked(struct fm_pool *p)
{
    /* A worker becomes busy now: look soon, to see its task start. */
    if (fm__maint_request(&p->watch, fm__now_ns() + fm__watch_period(p)) == 0)
        p->watch_armed = 1;
}

void fm__watch_init(struct fm_pool *p)
{
    if (p->opts.slow_task_ns <= 0)
        return;
    p->watch.tick = fm__watch_tick;
    fm__maint_register(&p->watch);
}

void fm__watch_fini(struct fm_pool *p)
{
    if (p->opts.slow_task_ns > 0)
        fm__maint_unregister(&p->watch);
}
