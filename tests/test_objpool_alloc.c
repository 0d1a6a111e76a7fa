/* Object pool: no heap allocation per get/put in steady state (workload A1).
 *
 * Allocations are counted by the interposer of alloc_count.h. Each case warms
 * the pool up with the very pattern it then measures (a thread's first call
 * allocates its thread cache, and the first overflows allocate magazines:
 * growth, not steady state), then counts the allocations made over the
 * measured pass: there must be none. The pools allocate objects with new_fn,
 * whose calls are counted apart, and run no cleanup cycle (which would free
 * cached objects and make the next pass allocate them again, by design).
 */
#include "fm_test.h"

#include <formica.h>
#include <pthread.h>
#include <sched.h>

#include "alloc_count.h"

#define PAIRS 200000

static atomic_long made;

static void *obj_new(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&made, 1);
    return calloc(1, 64);
}

static fm_objpool *new_pool(void)
{
    fm_objpool_opts o = {.new_fn = obj_new, .obj_size = 64, .cleanup_interval_ns = -1};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    return p;
}

/* Allocations other than objects made by new_fn since the counters' a0/m0. */
static void expect_no_allocations(long a0, long f0, long m0, const char *what)
{
    long objs = atomic_load(&made) - m0;
    long allocs = atomic_load(&n_allocs) - a0 - objs, frees = atomic_load(&n_frees) - f0;
    if (allocs || frees || objs)
        FM_FAIL("%s: %ld heap allocations, %ld frees and %ld new objects", what, allocs, frees,
                objs);
}

/* About PAIRS get/put pairs, holding up to `hold` objects at once (more than
 * a thread cache holds, so magazines move to and from the shards). */
static void pairs(fm_objpool *p, int hold)
{
    void *held[1024];
    for (int i = 0, done = 0; done < PAIRS; i++) {
        int n = 1 + i % hold;
        done += n;
        for (int k = 0; k < n; k++)
            held[k] = fm_objpool_get(p);
        for (int k = 0; k < n; k++)
            fm_objpool_put(p, held[k]);
    }
}

static void one_thread_case(int hold)
{
    fm_objpool *p = new_pool();
    pairs(p, hold);
    long a0 = atomic_load(&n_allocs), f0 = atomic_load(&n_frees), m0 = atomic_load(&made);
    pairs(p, hold);
    expect_no_allocations(a0, f0, m0, "second pass");
    fm_objpool_destroy(p);
}

FM_TEST(get_put_pairs_allocate_nothing) { one_thread_case(1); }
FM_TEST(bursts_past_the_thread_cache_allocate_nothing) { one_thread_case(700); }

/* One thread gets, another puts, through a ring: objects and magazines go
 * round between the two threads' caches and the shards. */
#define RING 256
static struct {
    fm_objpool *p;
    long n;
    void *slot[RING];
    atomic_long head, tail;
} ring;

static void *handoff_consumer(void *arg)
{
    (void)arg;
    for (long i = 0; i < ring.n; i++) {
        while (atomic_load(&ring.head) <= i)
            sched_yield();
        void *obj = ring.slot[i % RING];
        atomic_store(&ring.tail, i + 1);
        fm_objpool_put(ring.p, obj);
    }
    return NULL;
}

/* Runs n hand-offs from this thread to a new one. */
static void handoff(long n)
{
    ring.n = n;
    atomic_store(&ring.head, 0);
    atomic_store(&ring.tail, 0);
    pthread_t th;
    FM_CHECK_EQ(pthread_create(&th, NULL, handoff_consumer, NULL), 0);
    for (long i = 0; i < n; i++) {
        void *obj = fm_objpool_get(ring.p);
        while (i - atomic_load(&ring.tail) >= RING)
            sched_yield();
        ring.slot[i % RING] = obj;
        atomic_store(&ring.head, i + 1);
    }
    pthread_join(th, NULL);
}

FM_TEST(handoff_between_two_threads_allocates_nothing_once_warm)
{
    ring.p = new_pool();
    handoff(PAIRS); /* warm-up: the consumer thread's cache, magazines, objects */
    /* The consumer of the warm-up has exited (its cache went to the shards);
     * the measured pass starts a new thread, whose start allocates, and whose
     * first put takes back a cache a departed thread left: count from when
     * both threads run. */
    long a0 = atomic_load(&n_allocs), f0 = atomic_load(&n_frees), m0 = atomic_load(&made);
    handoff(PAIRS);
    long objs = atomic_load(&made) - m0;
    long allocs = atomic_load(&n_allocs) - a0 - objs, frees = atomic_load(&n_frees) - f0;
    /* pthread_create and its exit allocate and free a few blocks of their own;
     * per hand-off the pool allocates nothing: far below one per 1,000. */
    if (getenv("FM_TEST_VERBOSE"))
        printf("  %ld allocations, %ld frees, %ld new objects\n", allocs, frees, objs);
    if (allocs > 20 || frees > 20 || objs > 2 * RING + 512)
        FM_FAIL("%ld heap allocations, %ld frees, %ld new objects over %d hand-offs", allocs,
                frees, objs, PAIRS);
    fm_objpool_destroy(ring.p);
}

FM_TEST_MAIN()
