/* Object pool under concurrency: objects handed between threads, cleanup
 * cycles racing with gets and puts, threads coming and going.
 *
 * Every object carries a "held" flag: whoever gets it swaps the flag to 1 and
 * fails the test if it was already 1 (two holders: the pool handed one object
 * out twice); it is cleared before the put. free_fn fails the test if it sees
 * a held object (the pool freed one still in use). At destroy every object
 * made must have been freed exactly once (counts here; double frees and leaks
 * are caught by ASan and LeakSanitizer in the sanitizer builds).
 */
#include "../fm_test.h"

#include <formica.h>
#include <pthread.h>
#include <stdatomic.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SCALE 10 /* the sanitizers are about 10x slower: fewer rounds */
#else
#define SCALE 1
#endif

struct obj {
    atomic_int held;
    long payload;
};

static atomic_long made, freed;

static void *obj_new(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&made, 1);
    return calloc(1, sizeof(struct obj));
}

static void obj_free(void *o, void *ctx)
{
    (void)ctx;
    if (atomic_load(&((struct obj *)o)->held))
        FM_FAIL("the pool freed an object still held");
    atomic_fetch_add(&freed, 1);
    free(o);
}

static fm_objpool *new_pool(int64_t interval_ns)
{
    fm_objpool_opts o = {.new_fn = obj_new, .free_fn = obj_free,
                         .cleanup_interval_ns = interval_ns};
    fm_objpool *p;
    FM_CHECK_EQ(fm_objpool_new(&p, &o), 0);
    return p;
}

static struct obj *take(fm_objpool *p)
{
    struct obj *o = fm_objpool_get(p);
    FM_CHECK(o != NULL);
    if (atomic_exchange(&o->held, 1))
        FM_FAIL("object %p handed out twice", (void *)o);
    o->payload++; /* a plain write: TSan sees any unordered hand-over */
    return o;
}

static void give(fm_objpool *p, struct obj *o)
{
    o->payload++;
    atomic_store(&o->held, 0);
    fm_objpool_put(p, o);
}

static void destroy_and_check(fm_objpool *p)
{
    fm_objpool_destroy(p);
    FM_CHECK_EQ(atomic_load(&freed), atomic_load(&made));
}

/* ---- a channel between threads (mutex + condvars, bounded) ---- */

#define CHAN_CAP 256
struct chan {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct obj *v[CHAN_CAP];
    int head, len, closed;
};

static void chan_init(struct chan *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->not_empty, NULL);
    pthread_cond_init(&c->not_full, NULL);
}

static void chan_send(struct chan *c, struct obj *o)
{
    pthread_mutex_lock(&c->lock);
    while (c->len == CHAN_CAP)
        pthread_cond_wait(&c->not_full, &c->lock);
    c->v[(c->head + c->len++) % CHAN_CAP] = o;
    pthread_cond_signal(&c->not_empty);
    pthread_mutex_unlock(&c->lock);
}

/* NULL once the channel is closed and empty. */
static struct obj *chan_recv(struct chan *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->len == 0 && !c->closed)
        pthread_cond_wait(&c->not_empty, &c->lock);
    struct obj *o = NULL;
    if (c->len) {
        o = c->v[c->head];
        c->head = (c->head + 1) % CHAN_CAP;
        c->len--;
        pthread_cond_signal(&c->not_full);
    }
    pthread_mutex_unlock(&c->lock);
    return o;
}

static void chan_close(struct chan *c)
{
    pthread_mutex_lock(&c->lock);
    c->closed = 1;
    pthread_cond_broadcast(&c->not_empty);
    pthread_mutex_unlock(&c->lock);
}

/* ---- one producer, nine consumers (as Go's pool dequeue test) ---- */

struct pc {
    fm_objpool *p;
    struct chan ch;
    long items;
    atomic_long received;
    atomic_int stop_cleaner;
};

static void *producer_main(void *arg)
{
    struct pc *t = arg;
    for (long i = 0; i < t->items; i++)
        chan_send(&t->ch, take(t->p));
    chan_close(&t->ch);
    return NULL;
}

/* Gives back what it receives, and also uses the pool on its own. */
static void *consumer_main(void *arg)
{
    struct pc *t = arg;
    struct obj *o;
    long n = 0;
    while ((o = chan_recv(&t->ch)) != NULL) {
        if (atomic_load(&o->held) != 1)
            FM_FAIL("received an object nobody holds");
        give(t->p, o);
        if (++n % 3 == 0)
            give(t->p, take(t->p));
        atomic_fetch_add(&t->received, 1);
    }
    return NULL;
}

static void *cleaner_main(void *arg)
{
    struct pc *t = arg;
    while (!atomic_load(&t->stop_cleaner)) {
        fm_objpool_cleanup(t->p);
        fm_test_sleep_ms(1);
    }
    return NULL;
}

static void producer_consumers(int consumers, int64_t interval_ns, int with_cleaner)
{
    struct pc t = {.p = new_pool(interval_ns), .items = 400000 / SCALE};
    chan_init(&t.ch);
    pthread_t prod, cons[16], cleaner;
    for (int i = 0; i < consumers; i++)
        FM_CHECK_EQ(pthread_create(&cons[i], NULL, consumer_main, &t), 0);
    if (with_cleaner)
        FM_CHECK_EQ(pthread_create(&cleaner, NULL, cleaner_main, &t), 0);
    FM_CHECK_EQ(pthread_create(&prod, NULL, producer_main, &t), 0);
    pthread_join(prod, NULL);
    for (int i = 0; i < consumers; i++)
        pthread_join(cons[i], NULL);
    atomic_store(&t.stop_cleaner, 1);
    if (with_cleaner)
        pthread_join(cleaner, NULL);
    FM_CHECK_EQ(atomic_load(&t.received), t.items);
    struct fm_objpool_stats s;
    FM_CHECK_EQ(fm_objpool_stats(t.p, &s), 0);
    FM_CHECK_EQ(s.gets, s.puts); /* every object got was put back */
    destroy_and_check(t.p);
}

FM_TEST(one_producer_nine_consumers)
{
    producer_consumers(9, -1, 0);
}

FM_TEST(one_producer_nine_consumers_with_cleanups_racing)
{
    producer_consumers(9, -1, 1);
}

FM_TEST(one_producer_one_consumer_with_a_fast_timer)
{
    producer_consumers(1, 1000 * 1000, 0); /* a cycle every millisecond */
}

/* Objects flow one way: the producer only gets, the consumer only puts. What
 * the consumer puts must come back to the producer through the shards, so
 * the number of objects ever made stays bounded. */
FM_TEST(one_way_flow_reuses_objects)
{
    producer_consumers(1, -1, 0);
    /* Bound: the channel, two thread caches and a few magazines in transit. */
    FM_CHECK(atomic_load(&made) < CHAN_CAP + 4 * 128 + 64 * 8);
}

/* ---- threads that come and go ---- */

struct churn {
    fm_objpool *p;
    int rounds;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    struct obj *held[300];
    for (int r = 0; r < c->rounds; r++) {
        int n = 1 + (r * 37) % 300;
        for (int i = 0; i < n; i++)
            held[i] = take(c->p);
        for (int i = 0; i < n; i++)
            give(c->p, held[i]);
    }
    return NULL;
}

FM_TEST(threads_come_and_go_while_the_timer_cycles)
{
    struct churn c = {new_pool(2 * 1000 * 1000), 40 / SCALE + 4};
    for (int wave = 0; wave < 60 / SCALE + 2; wave++) {
        pthread_t th[6];
        for (int i = 0; i < 6; i++)
            FM_CHECK_EQ(pthread_create(&th[i], NULL, churn_main, &c), 0);
        for (int i = 0; i < 6; i++)
            pthread_join(th[i], NULL);
    }
    destroy_and_check(c.p);
}

/* Several pools used by the same threads at once (their caches share each
 * thread's slots), with cycles on all of them. */
struct multi {
    fm_objpool *p[20];
    int rounds;
};

static void *multi_main(void *arg)
{
    struct multi *m = arg;
    for (int r = 0; r < m->rounds; r++) {
        fm_objpool *p = m->p[(r * 7) % 20];
        struct obj *a = take(p), *b = take(p);
        give(p, a);
        give(p, b);
    }
    return NULL;
}

FM_TEST(twenty_pools_four_threads)
{
    struct multi m = {.rounds = 200000 / SCALE};
    for (int i = 0; i < 20; i++)
        m.p[i] = new_pool(i % 2 ? 1000 * 1000 : -1);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        FM_CHECK_EQ(pthread_create(&th[i], NULL, multi_main, &m), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 20; i++)
        fm_objpool_destroy(m.p[i]);
    FM_CHECK_EQ(atomic_load(&freed), atomic_load(&made));
}

FM_TEST_MAIN()
