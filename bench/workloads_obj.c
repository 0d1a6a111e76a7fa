/* The object workloads (docs/benchmarks.md), each run against one system
 * inside a child process of its own (see main.c):
 *
 *   O1   2 threads x 10,000,000 get/put pairs of a 64-byte object (get, write
 *        one byte, put); ns per pair = wall / pairs per thread.
 *   O1s  the same on 1 thread.
 *   O1h  hand-off: one thread gets objects (and writes one byte) and passes
 *        them through a single-producer single-consumer ring to a second
 *        thread, which puts them; ns per object. Objects put by one thread
 *        are got by the other: the case a per-thread free list cannot serve.
 *
 * Systems: formica's fm_objpool (obj_size 64, defaults otherwise), malloc and
 * free, a per-thread free list (the fastest possible, but it never moves an
 * object between threads; inlined, its head stays in a register), a
 * per-thread array stack behind a function call (thread_stack.c: the floor
 * for any pool a program calls), one free list under a mutex, malloc and free in
 * programs linked with jemalloc, mimalloc and tcmalloc, and Go's sync.Pool.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "thread_stack.h"

#define OBJ_SIZE 64

/* ---- the timed loops ---- */

/* Waits with a short spin, then yields the CPU: on a machine with more
 * runnable threads than CPUs, a pure spin would burn the other side's time. */
static void ring_pause(unsigned *spins)
{
    if (++*spins % 256 == 0)
        sched_yield();
}

/* The O1h ring: one producer, one consumer, indices only ever grow. */
#define RING 1024
static struct {
    _Alignas(128) atomic_long head; /* next slot the producer fills */
    _Alignas(128) atomic_long tail; /* next slot the consumer empties */
    _Alignas(128) void *slot[RING];
} ring;

/* Templates: instantiated once per system below (OBJ_LOOPS) with its get and
 * put, which are then called directly or inlined. */
BENCH_INLINE bool pairs_loop(void *ctx, long n, void *(*get)(void *), void (*put)(void *, void *))
{
    for (long i = 0; i < n; i++) {
        volatile char *obj = get(ctx);
        if (!obj)
            return false;
        obj[0] = (char)i; /* the workload's one write */
        put(ctx, (void *)obj);
    }
    return true;
}

BENCH_INLINE long produce_loop(void *ctx, long n, void *(*get)(void *))
{
    long null_gets = 0;
    for (long i = 0; i < n; i++) {
        volatile char *obj = get(ctx);
        if (obj)
            obj[0] = (char)i;
        else
            null_gets++; /* NULL goes through too: the consumer skips it */
        /* acquire: the consumer is done with the slot before we reuse it */
        for (unsigned spins = 0;
             i - atomic_load_explicit(&ring.tail, memory_order_acquire) >= RING;)
            ring_pause(&spins);
        ring.slot[i % RING] = (void *)obj;
        atomic_store_explicit(&ring.head, i + 1, memory_order_release);
    }
    return null_gets;
}

BENCH_INLINE void consume_loop(void *ctx, long n, void (*put)(void *, void *))
{
    for (long i = 0; i < n; i++) {
        /* acquire: the slot's contents are there before we read them */
        for (unsigned spins = 0; atomic_load_explicit(&ring.head, memory_order_acquire) <= i;)
            ring_pause(&spins);
        void *obj = ring.slot[i % RING];
        atomic_store_explicit(&ring.tail, i + 1, memory_order_release);
        if (obj)
            put(ctx, obj);
    }
}

#define OBJ_LOOPS(sys)                                                                \
    static bool sys##_pairs(void *ctx, long n)                                        \
    {                                                                                 \
        return pairs_loop(ctx, n, sys##_get, sys##_put);                              \
    }                                                                                 \
    static long sys##_produce(void *ctx, long n)                                      \
    {                                                                                 \
        return produce_loop(ctx, n, sys##_get);                                       \
    }                                                                                 \
    static void sys##_consume(void *ctx, long n)                                      \
    {                                                                                 \
        consume_loop(ctx, n, sys##_put);                                              \
    }

/* ---- the systems ---- */

static int objpool_create(void **ctx)
{
    fm_objpool_opts o = {.obj_size = OBJ_SIZE};
    return fm_objpool_new((fm_objpool **)ctx, &o);
}

static inline void *objpool_get(void *ctx)
{
    return fm_objpool_get(ctx);
}

static inline void objpool_put(void *ctx, void *obj)
{
    fm_objpool_put(ctx, obj);
}

static void objpool_destroy(void *ctx)
{
    fm_objpool_destroy(ctx);
}

static int no_ctx_create(void **ctx)
{
    *ctx = NULL;
    return 0;
}

static void nothing_to_destroy(void *ctx)
{
    (void)ctx;
}

static inline void *malloc_get(void *ctx)
{
    (void)ctx;
    return malloc(OBJ_SIZE);
}

static inline void malloc_put(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

/* A per-thread free list threaded through the objects themselves. Objects put
 * by another thread stay on that thread's list. */
struct free_node {
    struct free_node *next;
};
static __thread struct free_node *thread_list;

static inline void *thread_list_get(void *ctx)
{
    (void)ctx;
    struct free_node *n = thread_list;
    if (!n)
        return malloc(OBJ_SIZE);
    thread_list = n->next;
    return n;
}

static inline void thread_list_put(void *ctx, void *obj)
{
    (void)ctx;
    struct free_node *n = obj;
    n->next = thread_list;
    thread_list = n;
}

static inline void *thread_stack_obj_get(void *ctx)
{
    (void)ctx;
    return thread_stack_get(OBJ_SIZE);
}

static inline void thread_stack_obj_put(void *ctx, void *obj)
{
    (void)ctx;
    thread_stack_put(obj);
}

/* One list for every thread, under a mutex. */
struct mutex_list {
    pthread_mutex_t lock;
    struct free_node *head;
};

static int mutex_list_create(void **ctx)
{
    struct mutex_list *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    pthread_mutex_init(&l->lock, NULL);
    *ctx = l;
    return 0;
}

static inline void *mutex_list_get(void *ctx)
{
    struct mutex_list *l = ctx;
    pthread_mutex_lock(&l->lock);
    struct free_node *n = l->head;
    if (n)
        l->head = n->next;
    pthread_mutex_unlock(&l->lock);
    return n ? (void *)n : malloc(OBJ_SIZE);
}

static inline void mutex_list_put(void *ctx, void *obj)
{
    struct mutex_list *l = ctx;
    struct free_node *n = obj;
    pthread_mutex_lock(&l->lock);
    n->next = l->head;
    l->head = n;
    pthread_mutex_unlock(&l->lock);
}

OBJ_LOOPS(objpool)
OBJ_LOOPS(malloc)
OBJ_LOOPS(thread_list)
OBJ_LOOPS(mutex_list)
OBJ_LOOPS(thread_stack_obj)

#define OBJ_SYSTEM(sys, create, destroy) \
    {create, sys##_pairs, sys##_produce, sys##_consume, destroy}

const struct obj_system formica_objpool_system =
    OBJ_SYSTEM(objpool, objpool_create, objpool_destroy);
const struct obj_system malloc_obj_system = OBJ_SYSTEM(malloc, no_ctx_create, nothing_to_destroy);
static const struct obj_system thread_free_list =
    OBJ_SYSTEM(thread_list, no_ctx_create, nothing_to_destroy);
static const struct obj_system thread_stack_system =
    OBJ_SYSTEM(thread_stack_obj, no_ctx_create, nothing_to_destroy);
static const struct obj_system mutex_free_list =
    OBJ_SYSTEM(mutex_list, mutex_list_create, nothing_to_destroy);

static const struct bench_system obj_system_v[] = {
    {"formica-objpool", true, &formica_objpool_system, NULL, NULL},
    {"malloc", false, &malloc_obj_system, NULL, NULL},
    {"thread-freelist", false, &thread_free_list, NULL, NULL},
    {"thread-stack-call", false, &thread_stack_system, NULL, NULL},
    {"mutex-freelist", false, &mutex_free_list, NULL, NULL},
    ALLOCATOR_PEERS(&malloc_obj_system), /* malloc/free inside the allocator's helper */
    GO_PEER("go-syncpool"),              /* sync.Pool of 64-byte slices */
};
static const struct system_list obj_systems = {
    obj_system_v, (int)(sizeof obj_system_v / sizeof obj_system_v[0])};

/* ---- the drivers ---- */

static long pairs; /* per thread (O1, O1s) or objects handed over (O1h) */

void obj_workloads_configure(bool quick)
{
    pairs = quick ? 1000000 : 10000000;
}

enum { O1_NS_PER_PAIR, O1_PEAK_RSS, O1_NMETRICS };

struct loop {
    const struct obj_system *sys;
    void *ctx;
    atomic_int *ready; /* threads at the start line */
    int nthreads;
    long null_gets;
};

/* Releases the threads together, so that the clock covers them all. */
static void start_line(struct loop *l)
{
    atomic_fetch_add(l->ready, 1);
    while (atomic_load(l->ready) < l->nthreads)
        ;
}

static void *pairs_main(void *arg)
{
    struct loop *l = arg;
    start_line(l);
    if (!l->sys->pairs(l->ctx, pairs))
        l->null_gets++;
    return NULL;
}

static void *handoff_producer(void *arg)
{
    struct loop *l = arg;
    start_line(l);
    l->null_gets = l->sys->produce(l->ctx, pairs);
    return NULL;
}

static void *handoff_consumer(void *arg)
{
    struct loop *l = arg;
    start_line(l);
    l->sys->consume(l->ctx, pairs);
    return NULL;
}

/* Runs body[i] on thread i (thread 0 is this one) from a common start line
 * and publishes ns per pair: wall from the start line to the last join,
 * divided by the pairs (or objects) of one thread. */
static void run_threads(const struct bench_system *bs, int nthreads, void *(*const *body)(void *),
                        struct run_result *out)
{
    const struct obj_system *sys = bs->impl;
    void *ctx;
    int rc = sys->create(&ctx);
    if (rc != 0) {
        bench_fail(out, "create", rc);
        return;
    }
    atomic_int ready = 0;
    struct loop loops[2];
    pthread_t th[2];
    for (int i = 0; i < nthreads; i++)
        loops[i] = (struct loop){sys, ctx, &ready, nthreads, 0};
    for (int i = 1; i < nthreads; i++) {
        rc = pthread_create(&th[i], NULL, body[i], &loops[i]);
        if (rc != 0) {
            bench_fail(out, "pthread_create", -rc);
            return;
        }
    }
    while (atomic_load(&ready) < nthreads - 1)
        ;
    double t0 = monotonic_seconds();
    body[0](&loops[0]);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double wall = monotonic_seconds() - t0;
    for (int i = 0; i < nthreads; i++)
        if (loops[i].null_gets)
            bench_fail(out, "get", -ENOMEM);
    out->values[O1_NS_PER_PAIR] = wall * 1e9 / (double)pairs;
    bench_publish(out);
    sys->destroy(ctx);
}

static void run_o1(const struct bench_system *bs, struct run_result *out)
{
    static void *(*const body[2])(void *) = {pairs_main, pairs_main};
    run_threads(bs, 2, body, out);
}

static void run_o1s(const struct bench_system *bs, struct run_result *out)
{
    static void *(*const body[1])(void *) = {pairs_main};
    run_threads(bs, 1, body, out);
}

/* This thread consumes, the new one produces. */
static void run_o1h(const struct bench_system *bs, struct run_result *out)
{
    static void *(*const body[2])(void *) = {handoff_consumer, handoff_producer};
    run_threads(bs, 2, body, out);
}

static void describe_o1(char *buf, size_t len)
{
    snprintf(buf, len, "2 threads x %ld get/put pairs of a %d-byte object (get, write a byte, put)",
             pairs, OBJ_SIZE);
}

static void describe_o1s(char *buf, size_t len)
{
    snprintf(buf, len, "1 thread, %ld get/put pairs of a %d-byte object", pairs, OBJ_SIZE);
}

static void describe_o1h(char *buf, size_t len)
{
    snprintf(buf, len,
             "%ld %d-byte objects got by one thread and put by another (a %d-slot ring between)",
             pairs, OBJ_SIZE, RING);
}

/* Sizes for the Go program (bench.h: params). */
static void params_o1(char *buf, size_t len)
{
    snprintf(buf, len, "pairs=%ld threads=2 obj_size=%d", pairs, OBJ_SIZE);
}

static void params_o1s(char *buf, size_t len)
{
    snprintf(buf, len, "pairs=%ld threads=1 obj_size=%d", pairs, OBJ_SIZE);
}

static void params_o1h(char *buf, size_t len)
{
    snprintf(buf, len, "pairs=%ld ring=%d obj_size=%d", pairs, RING, OBJ_SIZE);
}

#define PEAK_RSS_METRIC {"peak_rss", "MB", FROM_RUSAGE, true}

const struct workload workload_o1 = {
    "O1", "objects", O1_NMETRICS,
    {[O1_NS_PER_PAIR] = {"ns_per_pair", "ns", FROM_CHILD, true}, [O1_PEAK_RSS] = PEAK_RSS_METRIC},
    run_o1, describe_o1, NULL, &obj_systems, params_o1};

const struct workload workload_o1s = {
    "O1s", "objects, one thread", O1_NMETRICS,
    {[O1_NS_PER_PAIR] = {"ns_per_pair", "ns", FROM_CHILD, true}, [O1_PEAK_RSS] = PEAK_RSS_METRIC},
    run_o1s, describe_o1s, NULL, &obj_systems, params_o1s};

const struct workload workload_o1h = {
    "O1h", "objects handed between threads", O1_NMETRICS,
    {[O1_NS_PER_PAIR] = {"ns_per_object", "ns", FROM_CHILD, true},
     [O1_PEAK_RSS] = PEAK_RSS_METRIC},
    run_o1h, describe_o1h, NULL, &obj_systems, params_o1h};
