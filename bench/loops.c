/* formica-loops: the steady-state loops of O1s and O2 alone, for instruction
 * counts under callgrind (I1) and for CPU time per pair, which another
 * process's load changes far less than wall time:
 *
 *   formica-loops MODE PAIRS
 *   valgrind --tool=callgrind --toggle-collect=measured_loop \
 *            ./build/release/bench/formica-loops MODE PAIRS
 *
 * MODE: objpool, freelist (a per-thread free list, inlined: the loop alone),
 * stack (a per-thread array stack behind a call: the floor of a pool a
 * program calls, thread_stack.c) or malloc (64 bytes: get, write a byte,
 * put); bufpool or malloc-o2 (O2's sizes, first and last byte touched);
 * touch-o2 and touch-o2-stores (O2's touches alone, the floor of any pool,
 * see loop_touch_o2). A warm-up of the same loop runs first (outside
 * measured_loop); the program prints the thread's CPU ns per pair of the
 * measured loop. Callgrind's total divided by PAIRS is instructions per pair,
 * the loop's own included (the calls' own counts are per function). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <formica.h>

#include "thread_stack.h"

#define OBJ_SIZE 64

static fm_objpool *objpool;
static fm_bufpool *bufpool;
static uint32_t *sizes;

struct free_node {
    struct free_node *next;
};
static __thread struct free_node *free_list;

static void loop_objpool(long n)
{
    for (long i = 0; i < n; i++) {
        volatile char *obj = fm_objpool_get(objpool);
        obj[0] = (char)i;
        fm_objpool_put(objpool, (void *)obj);
    }
}

static void loop_freelist(long n)
{
    for (long i = 0; i < n; i++) {
        struct free_node *node = free_list;
        if (node)
            free_list = node->next;
        else if (!(node = malloc(OBJ_SIZE)))
            abort();
        volatile char *obj = (volatile char *)node;
        obj[0] = (char)i;
        node->next = free_list;
        free_list = node;
    }
}

static void loop_stack(long n)
{
    for (long i = 0; i < n; i++) {
        volatile char *obj = thread_stack_get(OBJ_SIZE);
        obj[0] = (char)i;
        thread_stack_put((void *)obj);
    }
}

static void loop_malloc(long n)
{
    for (long i = 0; i < n; i++) {
        volatile char *obj = malloc(OBJ_SIZE);
        obj[0] = (char)i;
        free((void *)obj);
    }
}

static void loop_bufpool(long n)
{
    for (long i = 0; i < n; i++) {
        volatile unsigned char *p = fm_bufpool_get(bufpool, sizes[i]);
        p[0] = 1;
        p[sizes[i] - 1] = 1;
        fm_bufpool_put(bufpool, (void *)p);
    }
}

static void loop_malloc_o2(long n)
{
    for (long i = 0; i < n; i++) {
        volatile unsigned char *p = malloc(sizes[i]);
        p[0] = 1;
        p[sizes[i] - 1] = 1;
        free((void *)p);
    }
}

/* The floor of O2 for any pool: the same touches on one buffer per size
 * bucket (four per doubling, like the pool's classes), held for the whole
 * loop, so no get or put at all. touch-o2-stores adds the nine stores the
 * pool's get and put make to lines that stay in L1 (a thread cache, a
 * header): a pair's last byte is a store that misses the cache, and stores
 * leave the core in order, so the more stores a pair makes the fewer pairs
 * fit in the store buffer behind that miss. */
#define TOUCH_BUCKETS 128
static volatile unsigned char *touch_bufs[TOUCH_BUCKETS];
static volatile uint64_t touch_lines[9][8]; /* one line per store */

static unsigned touch_bucket(uint32_t size, size_t *top)
{
    size_t n = (size_t)size + 15;
    unsigned k = 63u ^ (unsigned)__builtin_clzll((unsigned long long)n);
    unsigned j = (unsigned)(n >> (k - 2)) & 3;
    *top = ((size_t)(5 + j) << (k - 2)) - 16; /* the largest size in the bucket */
    return 4 * k + j;
}

static bool touch_setup(long n)
{
    for (long i = 0; i < n; i++) {
        size_t top;
        unsigned b = touch_bucket(sizes[i], &top);
        if (!touch_bufs[b] && !(touch_bufs[b] = fm_bufpool_get(bufpool, top)))
            return false;
    }
    return true;
}

static inline void touch_pair(long i)
{
    size_t top;
    volatile unsigned char *p = touch_bufs[touch_bucket(sizes[i], &top)];
    p[0] = 1;
    p[sizes[i] - 1] = 1;
}

static void loop_touch_o2(long n)
{
    for (long i = 0; i < n; i++)
        touch_pair(i);
}

static void loop_touch_o2_stores(long n)
{
    for (long i = 0; i < n; i++) {
        touch_pair(i);
        for (int k = 0; k < 9; k++)
            touch_lines[k][0] = (uint64_t)i;
    }
}

/* Its own symbol, so that callgrind can count it alone. */
__attribute__((noinline)) void measured_loop(void (*loop)(long), long n);
__attribute__((noinline)) void measured_loop(void (*loop)(long), long n)
{
    loop(n);
}

/* O2's sizes: log-uniform 10 KB..3 MB, the bench's seed and generator. */
static uint32_t *o2_sizes(long n)
{
    uint32_t *v = malloc((size_t)n * sizeof *v);
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (long i = 0; v && i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0;
        v[i] = (uint32_t)(10e3 * exp(u * log(3e6 / 10e3)));
    }
    return v;
}

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*loop)(long);
        bool buffers, held; /* O2's sizes; one buffer per bucket held (touch_setup) */
    } modes[] = {{"objpool", loop_objpool, false, false},
                 {"freelist", loop_freelist, false, false},
                 {"stack", loop_stack, false, false},
                 {"malloc", loop_malloc, false, false},
                 {"bufpool", loop_bufpool, true, false},
                 {"malloc-o2", loop_malloc_o2, true, false},
                 {"touch-o2", loop_touch_o2, true, true},
                 {"touch-o2-stores", loop_touch_o2_stores, true, true}};
    long n = argc == 3 ? atol(argv[2]) : 0;
    int m = 0, nmodes = (int)(sizeof modes / sizeof modes[0]);
    while (n > 0 && m < nmodes && strcmp(argv[1], modes[m].name) != 0)
        m++;
    if (n <= 0 || m == nmodes) {
        fprintf(stderr, "usage: formica-loops objpool|freelist|stack|malloc|bufpool|malloc-o2|"
                        "touch-o2|touch-o2-stores PAIRS\n");
        return 2;
    }
    fm_objpool_opts oo = {.obj_size = OBJ_SIZE};
    if (fm_objpool_new(&objpool, &oo) != 0 || fm_bufpool_new(&bufpool, NULL) != 0 ||
        (modes[m].buffers && !(sizes = o2_sizes(n))) || (modes[m].held && !touch_setup(n))) {
        fprintf(stderr, "formica-loops: out of memory\n");
        return 1;
    }
    modes[m].loop(modes[m].buffers ? n : 100000); /* warm-up: caches bound and filled */
    double t0 = cpu_ns();
    measured_loop(modes[m].loop, n);
    printf("%s: %.2f ns of CPU per pair\n", modes[m].name, (cpu_ns() - t0) / (double)n);
    for (int b = 0; b < TOUCH_BUCKETS; b++)
        fm_bufpool_put(bufpool, (void *)touch_bufs[b]); /* NULL: a no-op */
    fm_objpool_destroy(objpool);
    fm_bufpool_destroy(bufpool);
    free(sizes);
    return 0;
}
