/* The interposer of formica-bench-count (A1): the project's counting malloc,
 * calloc, realloc, free and aligned allocators (tests/alloc_count.h), defined
 * in the executable, so that they serve every caller: formica, libc, the
 * peers. workloads_alloc.c reads the count. */
#include <stdlib.h>

#include "../tests/alloc_count.h"

long bench_alloc_calls(void);

long bench_alloc_calls(void)
{
    return atomic_load_explicit(&n_allocs, memory_order_relaxed);
}
