/* The least any object pool behind a function call can do: a per-thread
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
