/* Per-thread array stacks behind a function call (thread_stack.c): the floor
 * of O1 and O2 for any pool with a function-call interface. */
#ifndef BENCH_THREAD_STACK_H
#define BENCH_THREAD_STACK_H

#include <stddef.h>

void *thread_stack_get(size_t size);
void thread_stack_put(void *obj);
void *thread_bufstack_get(size_t size);
void thread_bufstack_put(void *buf);

#endif
