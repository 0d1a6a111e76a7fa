/* Buffer pool: no heap allocation per get/put in steady state (workload A1).
 *
 * Allocations are counted by the interposer of alloc_count.h. Each case warms
 * a pool up with the very sizes it then measures (a thread's first call
 * allocates its thread cache, and the central store maps memory as it first
 * needs it: growth, not steady state), then counts the allocations made over
 * 100,000 get/put pairs: there must be none. mmap is not a heap allocation;
 * the pool's own mapped-bytes counter shows the second pass needed no new
 * memory either.
 */
#include "bufpool_test_util.h"

#include <math.h>

#include "alloc_count.h"

#ifdef FM_DEBUG
/* Debug builds poison every byte of a buffer at put and check it at get:
 * megabytes per pair. Fewer pairs keep the case short; it counts the same. */
#define PAIRS 4000
#else
#define PAIRS 100000
#endif
#define HOLD 8

static size_t sizes[PAIRS];

/* O2's sizes: log-uniform between lo and hi, fixed seed, drawn up front. */
static void draw_sizes(double lo, double hi)
{
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < PAIRS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0;
        sizes[i] = (size_t)(lo * exp(u * log(hi / lo)));
    }
}

/* One pass of the workload: get, touch first and last byte, put; with hold
 * > 0, each buffer is put back hold pairs later (the store's paths too). */
static void pass(fm_bufpool *b, int hold)
{
    unsigned char *held[HOLD] = {0};
    for (int i = 0; i < PAIRS; i++) {
        unsigned char *p = fm_bufpool_get(b, sizes[i]);
        if (!p)
            FM_FAIL("get(%zu) failed", sizes[i]);
        p[0] = 1;
        p[sizes[i] - 1] = 1;
        if (!hold) {
            fm_bufpool_put(b, p);
            continue;
        }
        fm_bufpool_put(b, held[i % hold]); /* NULL at first: a no-op */
        held[i % hold] = p;
    }
    for (int i = 0; i < hold; i++)
        fm_bufpool_put(b, held[i]);
}

static void steady_state_case(double lo, double hi, int hold)
{
    draw_sizes(lo, hi);
    fm_bufpool_opts o = {.decay_ns = -1}; /* nothing leaves between the passes */
    fm_bufpool *b = new_bufpool(&o);
    pass(b, hold);
    size_t mapped = bufpool_stats(b).bytes_mapped;
    long a0 = atomic_load(&n_allocs), f0 = atomic_load(&n_frees);
    pass(b, hold);
    long allocs = atomic_load(&n_allocs) - a0, frees = atomic_load(&n_frees) - f0;
    if (allocs || frees)
        FM_FAIL("%ld heap allocations and %ld frees over %d get/put pairs", allocs, frees, PAIRS);
    FM_CHECK_EQ(bufpool_stats(b).bytes_mapped, mapped);
    fm_bufpool_destroy(b);
}

FM_TEST(o2_pairs_allocate_nothing) { steady_state_case(10e3, 3e6, 0); }
FM_TEST(small_pairs_allocate_nothing) { steady_state_case(1, 16e3, 0); }
FM_TEST(held_buffers_allocate_nothing) { steady_state_case(10e3, 3e6, HOLD); }
FM_TEST(held_small_buffers_allocate_nothing) { steady_state_case(1, 16e3, HOLD); }

/* With decay on, the maintenance thread drains and unmaps behind the
 * program's back; gets and puts still allocate nothing. */
FM_TEST(pairs_with_decay_running_allocate_nothing)
{
    draw_sizes(10e3, 3e6);
    fm_bufpool_opts o = {.decay_ns = 1000000};
    fm_bufpool *b = new_bufpool(&o);
    pass(b, HOLD);
    long a0 = atomic_load(&n_allocs);
    pass(b, HOLD);
    long allocs = atomic_load(&n_allocs) - a0;
    if (allocs)
        FM_FAIL("%ld heap allocations over %d get/put pairs", allocs, PAIRS);
    fm_bufpool_destroy(b);
}

FM_TEST_MAIN()
