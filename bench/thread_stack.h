/* A per-thread array stack behind a function call (thread_stack.c): the floor
 * of O1 for any pool with a function-call interface. */
#ifndef BENCH_THREAD_STACK_H
#define BENCH_THREAD_STACK_H

#include <stddef.h>

void *thread_stack_get(size_t size);
void thread_stack_put(void *obj);

#endif
