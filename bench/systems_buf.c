/* The buffer systems of O2-O4: formica's fm_bufpool with its defaults,
 * glibc's malloc/free, and per-thread stacks by power-of-two class behind a
 * call (thread_stack.c: the floor, which keeps up to 8 buffers a class and
 * never gives memory back). */
#include <stdlib.h>

#include "bench.h"
#include "thread_stack.h"

static int bufpool_create(void **pool)
{
    fm_bufpool *b;
    int rc = fm_bufpool_new(&b, NULL);
    if (rc == 0)
        *pool = b;
    return rc;
}

static inline void *bufpool_get(void *pool, size_t size)
{
    return fm_bufpool_get(pool, size);
}

static inline void bufpool_put(void *pool, void *buf)
{
    fm_bufpool_put(pool, buf);
}

static void bufpool_destroy(void *pool)
{
    fm_bufpool_destroy(pool);
}

static int malloc_create(void **pool)
{
    *pool = NULL;
    return 0;
}

static inline void *malloc_get(void *pool, size_t size)
{
    (void)pool;
    return malloc(size);
}

static inline void malloc_put(void *pool, void *buf)
{
    (void)pool;
    free(buf);
}

static void malloc_destroy(void *pool)
{
    (void)pool;
}

static inline void *bufstack_get(void *pool, size_t size)
{
    (void)pool;
    return thread_bufstack_get(size);
}

static inline void bufstack_put(void *pool, void *buf)
{
    (void)pool;
    thread_bufstack_put(buf);
}

/* O2: n get/put pairs of sizes[i] bytes, touching the first and last byte. */
BENCH_INLINE bool bench_o2_loop(void *pool, const uint32_t *sizes, long n,
                                void *(*get)(void *, size_t), void (*put)(void *, void *))
{
    for (long i = 0; i < n; i++) {
        void *buf = get(pool, sizes[i]);
        volatile unsigned char *p = buf;
        if (!p)
            return false;
        p[0] = 1;
        p[sizes[i] - 1] = 1;
        put(pool, buf);
    }
    return true;
}

/* O2's loop, one per system, calling its get and put directly. */
static bool bufpool_o2_pairs(void *pool, const uint32_t *sizes, long n)
{
    return bench_o2_loop(pool, sizes, n, bufpool_get, bufpool_put);
}

static bool malloc_o2_pairs(void *pool, const uint32_t *sizes, long n)
{
    return bench_o2_loop(pool, sizes, n, malloc_get, malloc_put);
}

static bool bufstack_o2_pairs(void *pool, const uint32_t *sizes, long n)
{
    return bench_o2_loop(pool, sizes, n, bufstack_get, bufstack_put);
}

static const struct buf_system bufpool = {bufpool_create, bufpool_get, bufpool_put,
                                          bufpool_destroy, bufpool_o2_pairs};
static const struct buf_system glibc = {malloc_create, malloc_get, malloc_put, malloc_destroy,
                                        malloc_o2_pairs};

static const struct buf_system thread_bufstack = {malloc_create, bufstack_get, bufstack_put,
                                                  malloc_destroy, bufstack_o2_pairs};

static const struct bench_system buf_system_v[] = {
    {"formica-bufpool", true, &bufpool, NULL, NULL},
    {"malloc", false, &glibc, NULL, NULL},
    {"thread-stack-call", false, &thread_bufstack, NULL, NULL},
    ALLOCATOR_PEERS(&glibc), /* malloc/free inside the allocator's helper */
};
const struct system_list buf_systems = {buf_system_v,
                                        (int)(sizeof buf_system_v / sizeof buf_system_v[0])};
