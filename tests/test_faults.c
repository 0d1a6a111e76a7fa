/* Fault injection: every allocation, mapping and thread start the library
 * makes is made to fail in turn, and the library must report it cleanly, lose
 * no accepted task, leak nothing, and work again once the fault stops.
 *
 * Each case runs one scenario (a short use of one module, src/os/sys.h's
 * hooks counting its calls) again and again, each run in a fresh child
 * process: run n makes the nth hooked call fail (one-shot, any kind), or the
 * nth call of one kind and every later one until the scenario stops the fault
 * (sticky: a sustained shortage). The sweep ends at the first run in which no
 * fault was hit. In every run the scenario checks the error codes and that
 * every accepted task ran; after the fault stops it checks that the same
 * objects work again; at its end the child checks that the library holds no
 * heap block and no mapping (the hooks account for both) and, under ASan,
 * runs LeakSanitizer. The library's clock is moved forward (fm__clock_advance)
 * so that worker expiry, cleanup cycles and decay run without waiting.
 */
#include "fault_util.h"
#include "pool_test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define FAULT_LSAN 1
#else
#define FAULT_LSAN 0
#endif

#define MAX_RUNS 5000
#define RUN_TIMEOUT_MS 60000
#define WAIT_MS 20000

/* Error codes a call may return while the fault is on. */
static int is_fault_error(int rc)
{
    return rc == -ENOMEM || rc == -EAGAIN;
}

#define CHECK_FAULT_RC(rc)                                                               \
    do {                                                                                 \
        int rc_ = (rc);                                                                  \
        if (rc_ != 0 && !is_fault_error(rc_))                                            \
            FM_FAIL("%s returned %d (%s)", #rc, rc_, fm_strerror(rc_));                  \
    } while (0)

/* Moves the library's clock by step until cond holds (at most WAIT_MS). */
#define ADVANCE_UNTIL(cond, step) FM_WAIT_UNTIL((fm__clock_advance(step), (cond)), WAIT_MS)

/* ---- running a scenario under a fault ---- */

typedef void (*scenario_fn)(void);

static void *scenario_main(void *arg)
{
    (*(scenario_fn *)arg)();
    return NULL;
}

/* The child's side of one run: the scenario on a thread of its own (whose
 * thread caches go back when it exits), then the accounting. */
static void run_child(scenario_fn fn, enum fault_kind kind, long n, int sticky)
{
    fault_arm(kind, n, sticky);
    pthread_t t;
    if (pthread_create(&t, NULL, scenario_main, &fn) != 0)
        FM_FAIL("pthread_create");
    pthread_join(t, NULL);
    fault_disarm();
    long kept = fault_release_kept();
    long allocs = atomic_load(&fault->live_allocs), mapped = atomic_load(&fault->live_map);
    if (allocs || mapped)
        FM_FAIL("leak after a %s fault at call %ld%s: %ld heap blocks, %ld bytes mapped "
                "(%ld kept by failed munmaps)",
                fault_kind_name[kind], n, sticky ? " on" : "", allocs, mapped, kept);
#if FAULT_LSAN
    if (__lsan_do_recoverable_leak_check())
        FM_FAIL("LeakSanitizer found leaks (%s fault at call %ld)", fault_kind_name[kind], n);
#endif
    fflush(NULL);
    _exit(0);
}

/* One run; returns the faults it injected. */
static long run_once(scenario_fn fn, enum fault_kind kind, long n, int sticky)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FM_FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        run_child(fn, kind, n, sticky);
    int status = wait_child(pid, RUN_TIMEOUT_MS);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FM_FAIL("run with a %s fault at call %ld%s failed (status 0x%x)", fault_kind_name[kind],
                n, sticky ? " on" : "", status);
    return fault_injected();
}

/* Runs with the fault at call 1, 2, ... until a run hits none. */
static void sweep(const char *name, scenario_fn fn, enum fault_kind kind, int sticky)
{
    long runs = 0, injected = 0, n;
    for (n = 1; n <= MAX_RUNS; n++) {
        long k = run_once(fn, kind, n, sticky);
        if (k == 0)
            break;
        runs++;
        injected += k;
    }
    if (n > MAX_RUNS)
        FM_FAIL("%s: still hitting faults after %d runs", name, MAX_RUNS);
    /* A scenario that makes no call of this kind would test nothing. */
    FM_CHECK(runs > 0);
    printf("  %s: %s faults%s: %ld runs, %ld faults injected\n", name, fault_kind_name[kind],
           sticky ? " (sticky)" : "", runs, injected);
}

#define KIND(k) (1u << (k))
#define ALL_KINDS (KIND(FAULT_ALLOC) | KIND(FAULT_MAP) | KIND(FAULT_THREAD))

/* Every plan: each call failing once, then each kind the scenario makes
 * (kinds) failing for good from each of its calls on. */
static void sweep_all(const char *name, scenario_fn fn, unsigned kinds)
{
    fault_setup();
    sweep(name, fn, FAULT_ANY, 0);
    for (int k = FAULT_ALLOC; k <= FAULT_THREAD; k++)
        if (kinds & KIND(k))
            sweep(name, fn, (enum fault_kind)k, 1);
}

/* ---- worker pool ---- */

static atomic_long ran;

static void task_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

/* A task slow enough that a queue builds up and workers add workers. */
static void task_run_slow(void *arg)
{
    fm_test_sleep_ms(1);
    task_run(arg);
}

/* Submits n tasks; returns how many were accepted. fault: errors allowed. */
static long submit_n(fm_pool *p, int n, fm_task_fn fn, int fault_on)
{
    long accepted = 0;
    for (int i = 0; i < n; i++) {
        int rc = fm_pool_submit(p, fn, NULL);
        if (fault_on)
            CHECK_FAULT_RC(rc);
        else
            FM_CHECK_EQ(rc, 0);
        accepted += rc == 0;
    }
    return accepted;
}

static void pool_check_done(fm_pool *p, long accepted)
{
    FM_CHECK_EQ(fm_pool_wait(p, 20 * SEC_NS), 0);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    struct fm_pool_stats s = pool_stats(p);
    FM_CHECK_EQ(s.submitted, accepted);
    FM_CHECK_EQ(s.completed, accepted);
}

static void pool_scenario(const fm_pool_opts *o, int cap)
{
    atomic_store(&ran, 0);
    long accepted = 0;
    fm_pool *p = NULL;
    fm_task_fn fn = o->queue_capacity ? task_run_slow : task_run;
    int rc = fm_pool_new(&p, cap, o);
    CHECK_FAULT_RC(rc);
    if (rc == 0) {
        accepted += submit_n(p, 3 * cap, fn, 1);
        if (o->prealloc) {
            FM_CHECK_EQ(fm_pool_release_timeout(p, 20 * SEC_NS), 0);
            CHECK_FAULT_RC(fm_pool_reboot(p));
        } else {
            FM_CHECK_EQ(fm_pool_tune(p, 2 * cap), 0);
            accepted += submit_n(p, 4 * cap, fn, 1);
            FM_CHECK_EQ(fm_pool_tune(p, cap), 0);
        }
        FILE *devnull = fopen("/dev/null", "w");
        CHECK_FAULT_RC(fm_pool_dump(p, devnull));
        fclose(devnull);
        accepted += submit_n(p, cap, fn, 1);
    } else {
        FM_CHECK(p == NULL);
    }
    fault_stop();
    if (!p)
        FM_CHECK_EQ(fm_pool_new(&p, cap, o), 0);
    if (o->prealloc) {
        FM_CHECK_EQ(fm_pool_reboot(p), 0); /* fills up what a fault left missing */
        FM_CHECK_EQ(fm_pool_running(p), cap);
    }
    accepted += submit_n(p, 3 * cap, fn, 0);
    pool_check_done(p, accepted);
    if (o->expiry_ns > 0) /* idle workers expire by the moved clock */
        FM_CHECK(ADVANCE_UNTIL(fm_pool_running(p) == 0, o->expiry_ns));
    accepted += submit_n(p, cap, fn, 0);
    pool_check_done(p, accepted);
    fm_pool_destroy(p);
}

static void scen_pool_handoff(void)
{
    fm_pool_opts o = {.expiry_ns = SEC_NS};
    pool_scenario(&o, 4);
}

static void scen_pool_queue(void)
{
    fm_pool_opts o = {.expiry_ns = SEC_NS, .queue_capacity = 8};
    pool_scenario(&o, 4);
}

static void scen_pool_prealloc(void)
{
    fm_pool_opts o = {.prealloc = 1, .expiry_ns = -1};
    pool_scenario(&o, 3);
}

FM_TEST(pool_handoff)
{
    sweep_all("pool hand-off", scen_pool_handoff, ALL_KINDS);
}

FM_TEST(pool_queue)
{
    sweep_all("pool queue", scen_pool_queue, ALL_KINDS);
}

FM_TEST(pool_prealloc)
{
    sweep_all("pool prealloc", scen_pool_prealloc, ALL_KINDS);
}

/* ---- object pool ---- */

/* Objects got per round: with new_fn more than a thread cache holds (128),
 * so that magazines move; plain pools allocate each object through the hook,
 * so a few show what a failed one does without a run per object. */
#define OBJS 140
#define OBJS_PLAIN 8

static atomic_long made, freed;

static void *obj_new(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&made, 1);
    return malloc(48);
}

static void obj_free(void *obj, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&freed, 1);
    free(obj);
}

/* Gets nobjs objects and puts them back; NULL gets allowed while faulted. */
static void objpool_round(fm_objpool *p, int nobjs, int fault_on)
{
    static void *held[OBJS];
    int n = 0;
    for (int i = 0; i < nobjs; i++) {
        errno = 0;
        void *o = fm_objpool_get(p);
        if (!o) {
            FM_CHECK(fault_on);
            FM_CHECK_EQ(errno, ENOMEM);
            continue;
        }
        memset(o, 0x5a, 48);
        held[n++] = o;
    }
    for (int i = 0; i < n; i++)
        fm_objpool_put(p, held[i]);
}

static void objpool_scenario(const fm_objpool_opts *o)
{
    int nobjs = o->new_fn ? OBJS : OBJS_PLAIN;
    fm_objpool *p = NULL;
    int rc = fm_objpool_new(&p, o);
    CHECK_FAULT_RC(rc);
    if (rc == 0) {
        objpool_round(p, nobjs, 1);
        fm_objpool_cleanup(p);
        objpool_round(p, nobjs, 1);
    }
    fault_stop();
    if (!p)
        FM_CHECK_EQ(fm_objpool_new(&p, o), 0);
    /* A pool whose timer a failed thread start left off arms it again at its
     * next exchange with the shared store (a cleanup empties the thread
     * cache, so the next get makes one), not before. */
    fm_objpool_cleanup(p);
    objpool_round(p, nobjs, 0);
    /* Two cycles by the moved clock free everything cached. */
    struct fm_objpool_stats s;
    FM_CHECK(ADVANCE_UNTIL((fm_objpool_stats(p, &s), s.cached == 0), o->cleanup_interval_ns));
    objpool_round(p, nobjs, 0);
    fm_objpool_destroy(p);
}

static void scen_objpool_plain(void)
{
    fm_objpool_opts o = {.obj_size = 48, .cleanup_interval_ns = SEC_NS};
    objpool_scenario(&o);
}

static void scen_objpool_new_fn(void)
{
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    fm_objpool_opts o = {.new_fn = obj_new, .free_fn = obj_free, .obj_size = 48,
                         .cleanup_interval_ns = SEC_NS};
    objpool_scenario(&o);
    FM_CHECK_EQ(atomic_load(&made), atomic_load(&freed));
}

/* Destroy while the shortage lasts, with objects cached by this thread and
 * by another that is still alive: no magazine can be had to carry them out of
 * the thread caches, and every object must still reach free_fn. */
struct obj_filler {
    fm_objpool *p;
    atomic_int filled, release;
};

static void *obj_filler_main(void *arg)
{
    struct obj_filler *f = arg;
    objpool_round(f->p, 100, 1);
    atomic_store(&f->filled, 1);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&f->release), WAIT_MS));
    return NULL;
}

static void scen_objpool_destroy(void)
{
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    fm_objpool_opts o = {.new_fn = obj_new, .free_fn = obj_free, .cleanup_interval_ns = -1};
    fm_objpool *p = NULL;
    int rc = fm_objpool_new(&p, &o);
    CHECK_FAULT_RC(rc);
    if (rc == 0) {
        struct obj_filler f = {.p = p};
        pthread_t t;
        FM_CHECK_EQ(pthread_create(&t, NULL, obj_filler_main, &f), 0);
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&f.filled), WAIT_MS));
        objpool_round(p, 100, 1);
        fm_objpool_destroy(p);
        atomic_store(&f.release, 1);
        pthread_join(t, NULL);
    }
    fault_stop();
    FM_CHECK_EQ(atomic_load(&made), atomic_load(&freed));
}

FM_TEST(objpool_destroy_in_a_shortage)
{
    fault_setup();
    sweep("objpool destroy", scen_objpool_destroy, FAULT_ALLOC, 1);
}

FM_TEST(objpool_plain)
{
    sweep_all("objpool", scen_objpool_plain, KIND(FAULT_ALLOC) | KIND(FAULT_THREAD));
}

FM_TEST(objpool_new_fn)
{
    sweep_all("objpool new_fn", scen_objpool_new_fn, KIND(FAULT_ALLOC) | KIND(FAULT_THREAD));
}

/* ---- buffer pool ---- */

#define MAX_SIZE ((size_t)64 << 10)
/* Small classes (carved from chunks), a large one (a mapping per block),
 * and above max_size (a mapping per get). */
static const size_t buf_sizes[] = {0, 1000, 20000, 100000};
#define NSIZES (sizeof buf_sizes / sizeof buf_sizes[0])
#define PER_SIZE 9 /* more than a thread cache holds of a class (8): spills */
#define PER_DIRECT 2 /* above max_size: each its own mapping */

/* Gets buffers of every size (small, large and over max_size), writes them
 * whole, puts them back. */
static void bufpool_round(fm_bufpool *b, int fault_on)
{
    static void *held[NSIZES * PER_SIZE];
    int n = 0;
    for (size_t i = 0; i < NSIZES; i++) {
        for (int k = 0; k < (buf_sizes[i] > MAX_SIZE ? PER_DIRECT : PER_SIZE); k++) {
            errno = 0;
            void *buf = fm_bufpool_get(b, buf_sizes[i]);
            if (!buf) {
                FM_CHECK(fault_on);
                FM_CHECK_EQ(errno, ENOMEM);
                continue;
            }
            memset(buf, 0x77, buf_sizes[i]);
            held[n++] = buf;
        }
    }
    for (int i = 0; i < n; i++)
        fm_bufpool_put(b, held[i]);
}

static void scen_bufpool(void)
{
    fm_bufpool_opts o = {.max_size = MAX_SIZE, .decay_ns = SEC_NS};
    fm_bufpool *b = NULL;
    int rc = fm_bufpool_new(&b, &o);
    CHECK_FAULT_RC(rc);
    if (rc == 0) {
        bufpool_round(b, 1);
        fm_bufpool_trim(b);
        bufpool_round(b, 1);
    }
    fault_stop();
    if (!b)
        FM_CHECK_EQ(fm_bufpool_new(&b, &o), 0);
    bufpool_round(b, 0);
    struct fm_bufpool_stats s;
    /* Decay by the moved clock gives every cached byte back. (The figures
     * are read one by one while the tick runs: both must reach 0.) */
    FM_CHECK(ADVANCE_UNTIL((fm_bufpool_stats(b, &s), s.bytes_mapped == 0 && s.bytes_cached == 0),
                           o.decay_ns));
    bufpool_round(b, 0);
    fm_bufpool_destroy(b);
}

FM_TEST(bufpool)
{
    sweep_all("bufpool", scen_bufpool, ALL_KINDS);
}

/* munmap failing: the library falls back to madvise and goes on. */
FM_TEST(bufpool_unmap)
{
    fault_setup();
    sweep("bufpool", scen_bufpool, FAULT_UNMAP, 0);
}

FM_TEST(pool_unmap)
{
    fault_setup();
    sweep("pool hand-off", scen_pool_handoff, FAULT_UNMAP, 0);
}

/* ---- multipool ---- */

static void scen_multipool(void)
{
    atomic_store(&ran, 0);
    long accepted = 0;
    fm_pool_opts o = {.expiry_ns = SEC_NS};
    fm_multipool *m = NULL;
    int rc = fm_multipool_new(&m, 3, 2, FM_LB_LEAST_TASKS, &o);
    CHECK_FAULT_RC(rc);
    for (int i = 0; rc == 0 && i < 12; i++) {
        int r = fm_multipool_submit(m, task_run, NULL);
        CHECK_FAULT_RC(r);
        accepted += r == 0;
    }
    fault_stop();
    if (!m)
        FM_CHECK_EQ(fm_multipool_new(&m, 3, 2, FM_LB_LEAST_TASKS, &o), 0);
    for (int i = 0; i < 12; i++)
        FM_CHECK_EQ(fm_multipool_submit(m, task_run, NULL), 0);
    accepted += 12;
    FM_CHECK_EQ(fm_multipool_release_timeout(m, 20 * SEC_NS), 0);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    fm_multipool_destroy(m);
}

FM_TEST(multipool)
{
    sweep_all("multipool", scen_multipool, ALL_KINDS);
}

/* ---- task groups and futures ---- */

static int job_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return 0;
}

static void *call_double(void *arg)
{
    return (void *)((uintptr_t)arg * 2);
}

/* Submits jobs and calls; returns the jobs accepted. Futures accepted are
 * waited for and checked. */
static long tasks_round(fm_pool *p, fm_group *g, int fault_on)
{
    long accepted = 0;
    for (int i = 0; i < 8; i++) {
        int rc = fm_group_submit(g, job_run, NULL);
        if (fault_on)
            CHECK_FAULT_RC(rc);
        else
            FM_CHECK_EQ(rc, 0);
        accepted += rc == 0;
    }
    for (uintptr_t i = 1; i <= 4; i++) {
        fm_future *f = NULL;
        int rc = fm_pool_call(p, call_double, (void *)i, &f);
        if (fault_on)
            CHECK_FAULT_RC(rc);
        else
            FM_CHECK_EQ(rc, 0);
        if (rc) {
            FM_CHECK(f == NULL);
            continue;
        }
        void *result = NULL;
        FM_CHECK_EQ(fm_future_wait(f, 20 * SEC_NS, &result), 0);
        FM_CHECK_EQ((uintptr_t)result, 2 * i);
        fm_future_destroy(f);
    }
    return accepted;
}

static void scen_tasks(void)
{
    atomic_store(&ran, 0);
    long accepted = 0;
    fm_pool *p = NULL;
    fm_group *g = NULL;
    int rc = fm_pool_new(&p, 2, NULL);
    CHECK_FAULT_RC(rc);
    if (rc == 0) {
        rc = fm_group_new(&g, p, 3);
        CHECK_FAULT_RC(rc);
        FM_CHECK(rc == 0 || g == NULL);
    }
    if (rc == 0)
        accepted += tasks_round(p, g, 1);
    fault_stop();
    if (!p)
        FM_CHECK_EQ(fm_pool_new(&p, 2, NULL), 0);
    if (!g)
        FM_CHECK_EQ(fm_group_new(&g, p, 3), 0);
    accepted += tasks_round(p, g, 0);
    FM_CHECK_EQ(fm_group_wait(g, 20 * SEC_NS), 0);
    FM_CHECK_EQ(atomic_load(&ran), accepted);
    fm_group_destroy(g);
    fm_pool_destroy(p);
}

FM_TEST(tasks)
{
    sweep_all("groups and futures", scen_tasks, ALL_KINDS);
}

FM_TEST_MAIN()
