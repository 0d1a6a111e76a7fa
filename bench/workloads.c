/* Every workload of the suite, in the order of the table. */
#include "bench.h"

const struct workload *const bench_workloads[] = {
    &workload_w1, &workload_w2, &workload_w3, &workload_w4,
    &workload_o1, &workload_o1s, &workload_o1h,
    &workload_o2, &workload_o3, &workload_o4,
    &workload_a1,
};
const int bench_workload_count = (int)(sizeof bench_workloads / sizeof bench_workloads[0]);

void workloads_configure(bool quick)
{
    pool_workloads_configure(quick);
    obj_workloads_configure(quick);
    buf_workloads_configure(quick);
    alloc_workloads_configure(quick);
}
