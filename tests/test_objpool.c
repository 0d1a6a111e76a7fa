/* Object pool: every call, every hook, cleanup-cycle semantics, reuse across
 * threads (alive and exited), many pools in one thread, the cleanup timer,
 * statistics, bad input, and the debug-build misuse checks. */
#include "fm_test.h"

#include <formica.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>

/* ---- hooks that count ---- */

struct hooks {
    atomic_long made, reset, freed;
    size_t size;
};

static void *hook_new(void *ctx)
{
    struct hooks *h = ctx;
    atomic_fetch_add(&h->made, 1);
    return calloc(1, h->size);
}

static void hook_reset(void *obj, void *ctx)
{
    struct hooks *h = ctx;
    atomic_fetch_add(&h->reset, 1);
    memset(obj, 0, h->size);
}

static void hook_free(void *obj, void *ctx)
{
    struct hooks *h = ctx;
    atomic_fetch_add(&h->freed, 1);
    free(obj);
}

/* A pool with counting hooks and no timer (cycles only when asked). */
static fm_objpool *hooked_pool(struct hooks *h, int64_t interval_ns)
{
    h->size = 48;
    fm_objpool_opts o = {.new_fn = hook_new, .reset_fn = hook_reset, .free_fn = hook_free,
                         .ctx = h, .cleanup_interval_ns = interval_ns};
    fm_objpool *p = NULL;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    FM_CHECK(p != NULL);
    return p;
}

static struct fm_objpool_stats stats_of(const fm_objpool *p)
{
    struct fm_objpool_stats s;
    FM_CHECK_EQ(fm_objpool_stats(p, &s), 0);
    return s;
}

/* Gets n objects, checks they are distinct, returns them in v. */
static void get_many(fm_objpool *p, void **v, int n)
{
    for (int i = 0; i < n; i++) {
        v[i] = fm_objpool_get(p);
        FM_CHECK(v[i] != NULL);
        for (int j = 0; j < i; j++)
            FM_CHECK(v[j] != v[i]);
    }
}

static void put_many(fm_objpool *p, void **v, int n)
{
    for (int i = 0; i < n; i++)
        fm_objpool_put(p, v[i]);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

/* Whether a and b hold the same pointers (order aside). Sorts both. */
static bool same_set(void **a, void **b, int n)
{
    qsort(a, (size_t)n, sizeof *a, cmp_ptr);
    qsort(b, (size_t)n, sizeof *b, cmp_ptr);
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Gets n objects into v, puts them back and gets n into back: the same
 * objects come back (both arrays end up sorted). */
static void get_put_get(fm_objpool *p, void **v, void **back, int n)
{
    get_many(p, v, n);
    put_many(p, v, n);
    get_many(p, back, n);
    FM_CHECK(same_set(v, back, n));
}

/* ---- bad input ---- */

FM_TEST(bad_input_gets_einval_never_a_crash)
{
    fm_objpool *p = NULL;
    FM_CHECK_EQ(fm_objpool_new(NULL, NULL), -EINVAL);
    errno = 0;
    FM_CHECK(fm_objpool_get(NULL) == NULL);
    FM_CHECK_EQ(errno, EINVAL);
    struct fm_objpool_stats s;
    FM_CHECK_EQ(fm_objpool_stats(NULL, &s), -EINVAL);
    FM_CHECK_EQ(fm_objpool_stats_json(NULL, NULL, 0), -EINVAL);
    fm_objpool_cleanup(NULL);
    fm_objpool_destroy(NULL);
    fm_objpool_put(NULL, NULL);
    FM_CHECK_EQ(fm_objpool_new(&p, NULL), 0);
    FM_CHECK_EQ(fm_objpool_stats(p, NULL), -EINVAL);
    char buf[8];
    FM_CHECK_EQ(fm_objpool_stats_json(p, NULL, sizeof buf), -EINVAL);
    fm_objpool_put(p, NULL); /* no-op */
    FM_CHECK_EQ(stats_of(p).puts, 0);
    fm_objpool_destroy(p);
}

/* ---- the three kinds of pool ---- */

FM_TEST(pool_without_hooks_or_size_returns_null_when_empty)
{
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, NULL), 0);
    FM_CHECK(fm_objpool_get(p) == NULL);
    void *obj = malloc(16); /* the pool frees what it caches with free() */
    fm_objpool_put(p, obj);
    FM_CHECK(fm_objpool_get(p) == obj);
    FM_CHECK(fm_objpool_get(p) == NULL);
    struct fm_objpool_stats s = stats_of(p);
    FM_CHECK_EQ(s.gets, 3);
    FM_CHECK_EQ(s.misses, 2);
    FM_CHECK_EQ(s.hits_private, 1);
    FM_CHECK_EQ(s.puts, 1);
    FM_CHECK_EQ(s.cached, 0);
    fm_objpool_put(p, obj);
    fm_objpool_destroy(p); /* frees obj: LeakSanitizer would see it otherwise */
}

FM_TEST(obj_size_pool_mallocs_objects_and_reuses_them)
{
    fm_objpool_opts o = {.obj_size = 64, .cleanup_interval_ns = -1};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    char *a = fm_objpool_get(p);
    FM_CHECK(a != NULL);
    memset(a, 'x', 64);
    fm_objpool_put(p, a);
    FM_CHECK(fm_objpool_get(p) == a); /* the calling thread's newest object */
    struct fm_objpool_stats s = stats_of(p);
    FM_CHECK_EQ(s.misses, 1);
    FM_CHECK_EQ(s.hits_private, 1);
    fm_objpool_put(p, a);
    fm_objpool_destroy(p);
}

FM_TEST(hooks_get_their_context_and_run_when_they_should)
{
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    void *v[10];
    get_many(p, v, 10);
    FM_CHECK_EQ(atomic_load(&h.made), 10);
    memset(v[3], 0xab, h.size);
    put_many(p, v, 10);
    FM_CHECK_EQ(atomic_load(&h.reset), 10);
    FM_CHECK_EQ(atomic_load(&h.freed), 0);
    void *again[10];
    get_many(p, again, 10);
    FM_CHECK_EQ(atomic_load(&h.made), 10); /* all ten reused */
    for (int i = 0; i < 10; i++)
        for (size_t b = 0; b < h.size; b++)
            FM_CHECK_EQ(((unsigned char *)again[i])[b], 0); /* reset_fn's work kept */
    FM_CHECK(same_set(v, again, 10));
    put_many(p, again, 10);
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), 10);
}

FM_TEST(new_fn_returning_null_makes_get_return_null)
{
    fm_objpool_opts o = {.new_fn = NULL, .obj_size = 0};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    FM_CHECK(fm_objpool_get(p) == NULL);
    fm_objpool_destroy(p);
}

/* ---- many objects ---- */

FM_TEST(thousands_of_objects_come_back_as_put)
{
    enum { N = 5000 };
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    static void *v[N], *back[N];
    get_put_get(p, v, back, N);
    FM_CHECK_EQ(atomic_load(&h.made), N);
    struct fm_objpool_stats s = stats_of(p);
    FM_CHECK_EQ(s.gets, 2 * N);
    FM_CHECK_EQ(s.misses, N);
    FM_CHECK_EQ(s.hits_private + s.hits_shared + s.hits_stolen, N);
    FM_CHECK_EQ(s.cached, 0);
    put_many(p, back, N);
    FM_CHECK_EQ(stats_of(p).cached, N);
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N);
}

/* ---- cleanup cycles ---- */

FM_TEST(one_cycle_keeps_objects_two_idle_cycles_free_them)
{
    enum { N = 300 };
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    static void *v[N];
    get_many(p, v, N);
    put_many(p, v, N);
    fm_objpool_cleanup(p);
    FM_CHECK_EQ(atomic_load(&h.freed), 0);
    FM_CHECK_EQ(stats_of(p).cached, N);
    fm_objpool_cleanup(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N);
    struct fm_objpool_stats s = stats_of(p);
    FM_CHECK_EQ(s.cleanups, 2);
    FM_CHECK_EQ(s.dropped, N);
    FM_CHECK_EQ(s.cached, 0);
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N);
}

FM_TEST(victims_that_are_used_survive)
{
    enum { N = 200 };
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    static void *v[N], *back[N];
    get_many(p, v, N);
    put_many(p, v, N);
    fm_objpool_cleanup(p); /* all N are victims now */
    get_many(p, back, N);
    FM_CHECK_EQ(atomic_load(&h.made), N); /* every one came from the victims */
    FM_CHECK(same_set(v, back, N));
    FM_CHECK(stats_of(p).hits_victim > 0);
    put_many(p, back, N);
    fm_objpool_cleanup(p); /* used since the last cycle: victims again, not freed */
    FM_CHECK_EQ(atomic_load(&h.freed), 0);
    fm_objpool_cleanup(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N);
    fm_objpool_destroy(p);
}

FM_TEST(cleanup_timer_frees_idle_objects_then_stops)
{
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, 20 * 1000 * 1000); /* 20 ms */
    void *v[40];
    get_many(p, v, 40);
    put_many(p, v, 40);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&h.freed) == 40, 10000));
    /* With nothing cached the timer stops: no cycle runs any more. */
    FM_CHECK(FM_WAIT_UNTIL(stats_of(p).cached == 0, 1000));
    fm_test_sleep_ms(100);
    uint64_t cycles = stats_of(p).cleanups;
    fm_test_sleep_ms(200);
    FM_CHECK_EQ(stats_of(p).cleanups, cycles);
    /* A new put starts it again. */
    void *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&h.freed) == 41, 10000));
    fm_objpool_destroy(p);
}

FM_TEST(objects_put_after_a_cycle_are_aged_too)
{
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, 20 * 1000 * 1000);
    for (int round = 1; round <= 3; round++) {
        void *v[100];
        get_many(p, v, 100);
        put_many(p, v, 100);
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&h.freed) == 100 * round, 10000));
    }
    fm_objpool_destroy(p);
}

/* ---- threads ---- */

struct putter {
    fm_objpool *p;
    void **v;
    int n;
    atomic_int stage; /* 1: objects put; 2: may exit */
};

static void *putter_main(void *arg)
{
    struct putter *t = arg;
    put_many(t->p, t->v, t->n);
    atomic_store(&t->stage, 1);
    while (atomic_load(&t->stage) != 2)
        fm_test_sleep_ms(1);
    return NULL;
}

FM_TEST(objects_put_by_an_exited_thread_are_got_by_another)
{
    enum { N = 1000 };
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    static void *v[N], *back[N];
    get_many(p, v, N);
    struct putter t = {p, v, N, 0};
    memcpy(back, v, sizeof v);
    pthread_t th;
    FM_CHECK_EQ(pthread_create(&th, NULL, putter_main, &t), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&t.stage) == 1, 10000));
    atomic_store(&t.stage, 2);
    pthread_join(th, NULL);
    static void *got[N];
    get_many(p, got, N);
    FM_CHECK_EQ(atomic_load(&h.made), N); /* nothing was stranded in its cache */
    FM_CHECK(same_set(back, got, N));
    put_many(p, got, N);
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N);
}

FM_TEST(cycles_reach_the_cache_of_a_thread_that_never_calls_again)
{
    enum { N = 100 }; /* fits in one thread cache */
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    void *v[N];
    get_many(p, v, N);
    struct putter t = {p, v, N, 0};
    pthread_t th;
    FM_CHECK_EQ(pthread_create(&th, NULL, putter_main, &t), 0);
    FM_CHECK(FM_WAIT_UNTIL(atomic_load(&t.stage) == 1, 10000));
    /* The thread is alive and idle with N objects in its cache. */
    void *other = fm_objpool_get(p);
    FM_CHECK_EQ(atomic_load(&h.made), N + 1); /* its cache is its own */
    fm_objpool_cleanup(p);
    FM_CHECK_EQ(atomic_load(&h.freed), 0);
    fm_objpool_cleanup(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N);
    atomic_store(&t.stage, 2);
    pthread_join(th, NULL);
    fm_objpool_put(p, other);
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), N + 1);
}

FM_TEST(a_drained_thread_cache_keeps_working)
{
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    void *v[300];
    for (int round = 0; round < 5; round++) {
        get_many(p, v, 300);
        put_many(p, v, 300);
        fm_objpool_cleanup(p);
        get_many(p, v, 50);
        put_many(p, v, 50);
    }
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), atomic_load(&h.made));
}

/* ---- without membarrier ---- */

/* Where membarrier(2) is missing (old kernels, some sandboxes) every call
 * takes the fenced slow path. The library decides that once, before its
 * first thread cache; the test sets the flag itself (the case runs in a
 * process of its own, before any pool). */
extern int fm__tc_fenced;

struct fenced_user {
    fm_objpool *p;
    atomic_int done;
};

static void *fenced_user_main(void *arg)
{
    struct fenced_user *u = arg;
    void *v[200];
    for (int round = 0; round < 2000; round++) {
        int n = 1 + round % 200;
        get_many(u->p, v, n);
        put_many(u->p, v, n);
    }
    atomic_store(&u->done, 1);
    return NULL;
}

FM_TEST(without_membarrier_the_fenced_path_keeps_every_object)
{
    fm__tc_fenced = 1;
    enum { N = 1000 };
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    static void *v[N], *back[N];
    get_put_get(p, v, back, N);
    FM_CHECK_EQ(stats_of(p).gets, 2 * N);
    put_many(p, back, N);
    /* Cycles drain a cache whose thread works on. */
    struct fenced_user u = {p, 0};
    pthread_t th;
    FM_CHECK_EQ(pthread_create(&th, NULL, fenced_user_main, &u), 0);
    while (!atomic_load(&u.done))
        fm_objpool_cleanup(p);
    pthread_join(th, NULL);
    FM_CHECK_EQ(fm__tc_fenced, 1);
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), atomic_load(&h.made));
}

/* ---- many pools in one thread (more than the thread's slots) ---- */

FM_TEST(forty_pools_in_one_thread_each_keep_their_objects)
{
    enum { POOLS = 40, N = 150 };
    fm_objpool *p[POOLS];
    fm_objpool_opts o = {.obj_size = 32, .cleanup_interval_ns = -1};
    for (int i = 0; i < POOLS; i++)
        FM_CHECK_EQ(fm_objpool_new(&p[i], &o), 0);
    static void *v[POOLS][N], *back[N];
    for (int i = 0; i < POOLS; i++) {
        get_many(p[i], v[i], N);
        put_many(p[i], v[i], N);
    }
    for (int round = 0; round < 3; round++) { /* interleaved: slots evict each other */
        for (int i = 0; i < POOLS; i++) {
            get_many(p[i], back, N);
            FM_CHECK(same_set(back, v[i], N));
            put_many(p[i], back, N);
        }
    }
    for (int i = 0; i < POOLS; i++)
        FM_CHECK_EQ(stats_of(p[i]).misses, N);
    for (int i = 0; i < POOLS; i++)
        fm_objpool_destroy(p[(i * 7) % POOLS]); /* out of order (7 is prime to 40) */
}

static void *use_then_exit(void *arg)
{
    fm_objpool *p = arg;
    void *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    return NULL;
}

FM_TEST(thread_that_outlives_its_pool_exits_cleanly)
{
    fm_objpool_opts o = {.obj_size = 32};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    void *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    fm_objpool_destroy(p); /* this thread's cache for p is orphaned, freed at exit */
    fm_objpool *q;
    FM_CHECK_EQ(fm_objpool_new(&q, &o), 0);
    pthread_t th;
    FM_CHECK_EQ(pthread_create(&th, NULL, use_then_exit, q), 0);
    pthread_join(th, NULL);
    use_then_exit(q);
    fm_objpool_destroy(q);
}

FM_TEST(short_lived_threads_reuse_caches)
{
    struct hooks h = {0};
    fm_objpool *p = hooked_pool(&h, -1);
    for (int i = 0; i < 200; i++) {
        pthread_t th;
        FM_CHECK_EQ(pthread_create(&th, NULL, use_then_exit, p), 0);
        pthread_join(th, NULL);
    }
    FM_CHECK_EQ(atomic_load(&h.made), 1); /* each thread got the one object back */
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&h.freed), 1);
}

/* ---- fork ---- */

/* Under the sanitizers the hammering threads park before each fork
 * (fm_test_park_point, tests/fm_test.h). */
struct hammer {
    fm_objpool *p;
    atomic_int stop;
    struct fm_test_park park;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    void *v[200];
    for (unsigned r = 0; !atomic_load(&h->stop); r++) {
        fm_test_park_point(&h->park);
        int n = 1 + (int)(r % 200);
        for (int i = 0; i < n; i++)
            v[i] = fm_objpool_get(h->p);
        for (int i = 0; i < n; i++)
            fm_objpool_put(h->p, v[i]);
        if (r % 50 == 0)
            fm_objpool_cleanup(h->p);
    }
    return NULL;
}

/* ThreadSanitizer cannot start threads in the child of a multi-threaded
 * fork: under it the child uses the inherited pool only, with no timer (so it
 * starts no maintenance thread), which still shows that no lock was
 * inherited held. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#else
#define TSAN_BUILD 0
#endif

/* In the child: the inherited pool works, and a new pool's timer runs. */
static int child_uses_pools(fm_objpool *inherited)
{
    void *v[300];
    for (int i = 0; i < 300; i++)
        if (!(v[i] = fm_objpool_get(inherited)))
            return 1;
    for (int i = 0; i < 300; i++)
        fm_objpool_put(inherited, v[i]);
    fm_objpool_cleanup(inherited);
    fm_objpool_cleanup(inherited);
    if (TSAN_BUILD)
        return 0;
    struct hooks h = {0};
    fm_objpool *fresh = hooked_pool(&h, 5 * 1000 * 1000);
    for (int i = 0; i < 10; i++)
        v[i] = fm_objpool_get(fresh);
    for (int i = 0; i < 10; i++)
        fm_objpool_put(fresh, v[i]);
    if (!FM_WAIT_UNTIL(atomic_load(&h.freed) == 10, 10000))
        return 2;
    fm_objpool_destroy(fresh);
    fm_objpool_destroy(inherited);
    return 0;
}

FM_TEST(fork_while_threads_use_the_pool_leaves_a_working_child)
{
    fm_objpool_opts o = {.obj_size = 40, .cleanup_interval_ns = TSAN_BUILD ? -1 : 1000 * 1000};
    struct hammer h = {0};
    FM_CHECK_EQ(fm_objpool_new(&h.p, &o), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        FM_CHECK_EQ(pthread_create(&th[i], NULL, hammer_main, &h), 0);
    for (int k = 0; k < 20; k++) {
        FM_CHECK(fm_test_park_all(&h.park, 2));
        fflush(NULL);
        pid_t pid = fork();
        FM_CHECK(pid >= 0);
        if (pid == 0)
            _exit(child_uses_pools(h.p));
        fm_test_unpark(&h.park);
        int status = 0;
        int64_t deadline = fm_test_now_ns() + 30 * 1000000000LL;
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (fm_test_now_ns() > deadline) {
                kill(pid, SIGKILL);
                FM_FAIL("child %d hung (a lock inherited held?)", k);
            }
            fm_test_sleep_ms(1);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            FM_FAIL("child %d failed: status %#x", k, status);
    }
    atomic_store(&h.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    fm_objpool_destroy(h.p);
}

/* ---- statistics ---- */

FM_TEST(stats_json_is_one_line_with_every_counter)
{
    fm_objpool_opts o = {.obj_size = 8, .cleanup_interval_ns = -1};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    fm_objpool_put(p, fm_objpool_get(p));
    fm_objpool_cleanup(p);
    int need = fm_objpool_stats_json(p, NULL, 0);
    FM_CHECK(need > 0);
    char *buf = malloc((size_t)need + 1);
    FM_CHECK_EQ(fm_objpool_stats_json(p, buf, (size_t)need + 1), need);
    const char *keys[] = {"\"gets\":1", "\"hits_private\":0", "\"hits_shared\":0",
                          "\"hits_stolen\":0", "\"hits_victim\":0", "\"misses\":1", "\"puts\":1",
                          "\"dropped\":0", "\"cleanups\":1", "\"cached\":1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(buf, keys[i]))
            FM_FAIL("%s not in %s", keys[i], buf);
    FM_CHECK(buf[0] == '{' && buf[need - 1] == '}' && !strchr(buf, '\n'));
    char small[5];
    FM_CHECK_EQ(fm_objpool_stats_json(p, small, sizeof small), need); /* truncated, like snprintf */
    FM_CHECK_EQ(strlen(small), 4);
    free(buf);
    fm_objpool_destroy(p);
}

/* ---- debug-build misuse checks ---- */

#ifdef FM_DEBUG
static void put_twice(void)
{
    fm_objpool_opts o = {.obj_size = 32};
    fm_objpool *p;
    fm_objpool_new(&p, &o);
    void *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    fm_objpool_put(p, obj);
}

static void write_after_put(void)
{
    fm_objpool_opts o = {.obj_size = 32};
    fm_objpool *p;
    fm_objpool_new(&p, &o);
    char *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    obj[5] = 1; /* the bug under test */
    fm_objpool_get(p);
}

/* With hooks the object keeps its contents; obj_size lets the check hash them. */
static void write_after_put_with_hooks(void)
{
    static struct hooks h = {.size = 48};
    fm_objpool_opts o = {.obj_size = 48, .new_fn = hook_new, .reset_fn = hook_reset,
                         .free_fn = hook_free, .ctx = &h};
    fm_objpool *p;
    fm_objpool_new(&p, &o);
    char *obj = fm_objpool_get(p);
    fm_objpool_put(p, obj);
    obj[0] = 1;
    fm_objpool_get(p);
}

FM_TEST(debug_double_put_aborts_with_a_message)
{
    fm_test_expect_abort(put_twice, "put twice");
}

FM_TEST(debug_write_after_put_is_caught_at_the_next_get)
{
    fm_test_expect_abort(write_after_put, "written after it was put");
}

FM_TEST(debug_write_after_put_is_caught_with_hooks_too)
{
    fm_test_expect_abort(write_after_put_with_hooks, "written after it was put");
}

FM_TEST(debug_plain_objects_are_poisoned_on_put_hooked_ones_keep_contents)
{
    fm_objpool_opts o = {.obj_size = 16, .cleanup_interval_ns = -1};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    unsigned char *obj = fm_objpool_get(p);
    memset(obj, 0, 16);
    fm_objpool_put(p, obj);
    FM_CHECK(fm_objpool_get(p) == obj);
    for (int i = 0; i < 16; i++)
        FM_CHECK_EQ(obj[i], 0xdb);
    fm_objpool_put(p, obj);
    fm_objpool_destroy(p);
}
#endif

FM_TEST_MAIN()
