/* Buffer pool stress: threads getting and putting buffers of every kind of
 * size (small classes, large classes, direct mappings), handing buffers to
 * each other, exiting and being replaced, while another thread trims and
 * reads statistics and the maintenance thread decays and drains idle caches
 * (decay of 1 ms: the tick runs all the time).
 *
 * Invariants checked:
 *   - a buffer is never handed to two holders: each holder writes a tag in
 *     its first and last byte after get and finds it intact before put;
 *   - usable_size covers every request; every get succeeds;
 *   - at the end (every thread joined, every buffer put), the counters add
 *     up: gets == puts, bytes_live == 0, and after a trim nothing is cached
 *     or mapped: no block was lost or counted twice anywhere.
 * Work is bounded by iteration counts: FM_STRESS_SCALE=n runs n times as
 * many. Speed never decides pass or fail.
 */
#include "../bufpool_test_util.h"

#define NTHREADS 4
#define HELD 16
#define SLOTS 8

struct held {
    unsigned char *p;
    size_t size;
    uint64_t tag;
};

/* Buffers in flight between threads. */
struct slot {
    pthread_mutex_t mu;
    struct held h;
};

struct world {
    fm_bufpool *b;
    size_t max_size; /* largest pooled request */
    long iters;
    struct slot slot[SLOTS];
    atomic_bool stop;
    atomic_long gets;
};

struct worker {
    struct world *w;
    uint64_t rng;
    struct held held[HELD];
    int n;
};

/* Small, large and direct sizes, some on class edges. */
static size_t pick_size(struct worker *k)
{
    uint64_t r = fm_test_rng_next(&k->rng);
    switch (r % 8) {
    case 0:
        return (size_t)(r >> 8) % 64;
    case 1: case 2: case 3:
        return (size_t)(r >> 8) % (16 << 10);
    case 4: case 5: case 6:
        return (size_t)(r >> 8) % (k->w->max_size / 2);
    default:
        return k->w->max_size - 8 + (size_t)(r >> 8) % 64; /* around the direct edge */
    }
}

static void take(struct worker *k, size_t size)
{
    unsigned char *p = fm_bufpool_get(k->w->b, size);
    if (!p)
        FM_FAIL("get(%zu) failed: errno %d", size, errno);
    if (fm_bufpool_usable_size(k->w->b, p) < size)
        FM_FAIL("usable_size %zu < %zu", fm_bufpool_usable_size(k->w->b, p), size);
    struct held h = {p, size ? size : 1, fm_test_rng_next(&k->rng)};
    tag_set(p, h.size, h.tag);
    k->held[k->n++] = h;
    atomic_fetch_add_explicit(&k->w->gets, 1, memory_order_relaxed);
}

static void give_back(struct worker *k, struct held h)
{
    if (!tag_ok(h.p, h.size, h.tag))
        FM_FAIL("buffer %p of %zu bytes changed while held", (void *)h.p, h.size);
    fm_bufpool_put(k->w->b, h.p);
}

static struct held drop_one(struct worker *k)
{
    int i = (int)(fm_test_rng_next(&k->rng) % (uint64_t)k->n);
    struct held h = k->held[i];
    k->held[i] = k->held[--k->n];
    return h;
}

/* Swaps one of ours with a slot's content (either may be empty). */
static void exchange(struct worker *k)
{
    struct slot *s = &k->w->slot[fm_test_rng_next(&k->rng) % SLOTS];
    struct held mine = k->n ? drop_one(k) : (struct held){0};
    pthread_mutex_lock(&s->mu);
    struct held theirs = s->h;
    s->h = mine;
    pthread_mutex_unlock(&s->mu);
    if (theirs.p)
        k->held[k->n++] = theirs;
}

static void *worker_main(void *arg)
{
    struct worker *k = arg;
    for (long i = 0; i < k->w->iters; i++) {
        uint64_t r = fm_test_rng_next(&k->rng) % 16;
        if (r < 7 && k->n < HELD)
            take(k, pick_size(k));
        else if (r < 15 && k->n > 0)
            give_back(k, drop_one(k));
        else if (k->n < HELD)
            exchange(k);
    }
    while (k->n > 0)
        give_back(k, drop_one(k));
    return NULL; /* the thread's cache is flushed as it exits */
}

static void *trimmer_main(void *arg)
{
    struct world *w = arg;
    char json[512];
    for (unsigned i = 0; !atomic_load(&w->stop); i++) {
        if (i % 4 == 0)
            fm_bufpool_trim(w->b);
        struct fm_bufpool_stats s = bufpool_stats(w->b);
        if (s.bytes_cached > s.bytes_mapped + (64u << 20))
            FM_FAIL("cached %zu, mapped %zu", s.bytes_cached, s.bytes_mapped);
        fm_bufpool_stats_json(w->b, json, sizeof json);
        fm_test_sleep_ms(1);
    }
    return NULL;
}

/* Iterations: the sanitizers make every byte the debug poisoning writes
 * cost a shadow update, so they run an eighth as many. */
static long scale_iters(long iters)
{
    const char *e = getenv("FM_STRESS_SCALE");
    long n = iters * (e && atol(e) > 0 ? atol(e) : 1);
    return FM_TEST_SANITIZED ? n / 8 : n;
}

static void run(const fm_bufpool_opts *o, int rounds, long iters)
{
    static struct world w;
    memset(&w, 0, sizeof w);
    w.b = new_bufpool(o);
    struct fm_bufpool_class_stats last; /* the largest pooled size: max_size rounded up */
    FM_CHECK_EQ(fm_bufpool_class_stats(w.b, bufpool_stats(w.b).classes - 1, &last), 0);
    w.max_size = last.size;
    w.iters = scale_iters(iters);
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&w.slot[i].mu, NULL);
    pthread_t trimmer;
    FM_CHECK_EQ(pthread_create(&trimmer, NULL, trimmer_main, &w), 0);
    uint64_t seed = (uint64_t)fm_test_now_ns() | 1;
    printf("  seed %llu\n", (unsigned long long)seed);
    static struct worker k[NTHREADS];
    for (int r = 0; r < rounds; r++) { /* fresh threads each round: exits race with the tick */
        pthread_t t[NTHREADS];
        for (int i = 0; i < NTHREADS; i++) {
            k[i] = (struct worker){.w = &w, .rng = seed + (uint64_t)(r * NTHREADS + i) * 7919};
            FM_CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &k[i]), 0);
        }
        for (int i = 0; i < NTHREADS; i++)
            FM_CHECK_EQ(pthread_join(t[i], NULL), 0);
    }
    for (int i = 0; i < SLOTS; i++)
        if (w.slot[i].h.p)
            give_back(&k[0], w.slot[i].h);
    atomic_store(&w.stop, true);
    FM_CHECK_EQ(pthread_join(trimmer, NULL), 0);

    struct fm_bufpool_stats s = bufpool_stats(w.b);
    FM_CHECK_EQ(s.gets, atomic_load(&w.gets));
    FM_CHECK_EQ(s.failed, 0);
    FM_CHECK_EQ(s.gets, s.puts);
    FM_CHECK_EQ(s.hits + s.misses, s.gets);
    FM_CHECK_EQ(s.bytes_live, 0);
    fm_bufpool_trim(w.b);
    s = bufpool_stats(w.b);
    FM_CHECK_EQ(s.bytes_cached, 0);
    FM_CHECK_EQ(s.bytes_mapped, 0);
    fm_bufpool_destroy(w.b);
}

FM_TEST(stress_fast_decay)
{
    fm_bufpool_opts o = {.max_size = 256 << 10, .decay_ns = 1000000};
    run(&o, 4, 20000);
}

FM_TEST(stress_tight_cache_limit)
{
    fm_bufpool_opts o = {.max_size = 128 << 10, .cache_limit = 1 << 20, .decay_ns = 5000000,
                         .zero_on_get = 1};
    run(&o, 3, 20000);
}

FM_TEST(stress_no_decay)
{
    fm_bufpool_opts o = {.max_size = 64 << 10, .decay_ns = -1};
    run(&o, 3, 20000);
}

FM_TEST_MAIN()
