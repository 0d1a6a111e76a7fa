/* The least a pool behind a function call can do, for objects (O1) and for
 * buffers (O2).
 *
 * Objects: a per-thread
 * array of 128 objects with its count, one call to get and one to put, and
 * nothing else (no sharing between threads, no cleanup, no statistics, no
 * way for another thread to empty it). Its own translation unit, not inlined,
 * so that the calls stay calls and the count stays in memory across them, as
 * in a library: what a caller's loop pays per pair on top of this is the cost
 * of being a real pool. Overflow goes to free, underflow to malloc. */
#include <stdlib.h>

#include "thread_stack.h"

#define THREAD_STACK_OBJS 128

static __thread struct {
    unsigned n;
    void *obj[THREAD_STACK_OBJS];
} stack;

__attribute__((noinline)) void *thread_stack_get(size_t size)
{
    if (__builtin_expect(stack.n != 0, 1))
        return stack.obj[--stack.n];
    return malloc(size);
}

__attribute__((noinline)) void thread_stack_put(void *obj)
{
    if (__builtin_expect(stack.n < THREAD_STACK_OBJS, 1))
        stack.obj[stack.n++] = obj;
    else
        free(obj);
}

/* Buffers: one such stack per power-of-two class (16 KiB to 4 MiB, O2's sizes
 * and more), THREAD_BUF_SLOTS deep. Each buffer carries its class in a
 * 16-byte header written once, when it is first allocated, so that put
 * finds its stack; nothing else is stored per get or put but the stack's
 * slot and count. A pool can hardly store less per pair: the floor of O2 for
 * a pool a program calls. */
#define THREAD_BUF_MIN_SHIFT 14
#define THREAD_BUF_CLASSES 9
#define THREAD_BUF_SLOTS 8
#define THREAD_BUF_HEADER 16

static __thread struct {
    unsigned n;
    void *buf[THREAD_BUF_SLOTS];
} bufs[THREAD_BUF_CLASSES];

static unsigned thread_buf_class(size_t size)
{
    unsigned c = 0;
    while (c + 1 < THREAD_BUF_CLASSES && ((size_t)1 << (THREAD_BUF_MIN_SHIFT + c)) < size)
        c++;
    return c;
}

__attribute__((noinline)) void *thread_bufstack_get(size_t size)
{
    unsigned c = thread_buf_class(size);
    if (__builtin_expect(bufs[c].n != 0, 1))
        return bufs[c].buf[--bufs[c].n];
    size_t cap = (size_t)1 << (THREAD_BUF_MIN_SHIFT + c);
    unsigned char *h = malloc(THREAD_BUF_HEADER + (size > cap ? size : cap));
    if (h == NULL)
        return NULL;
    *(unsigned *)h = c;
    return h + THREAD_BUF_HEADER;
}

__attribute__((noinline)) void thread_bufstack_put(void *buf)
{
    unsigned char *h = (unsigned char *)buf - THREAD_BUF_HEADER;
    unsigned c = *(unsigned *)h;
    if (__builtin_expect(bufs[c].n < THREAD_BUF_SLOTS, 1))
        bufs[c].buf[bufs[c].n++] = buf;
    else
        free(h);
}
