/* Queue mode: a FIFO of two cells, one worker, one submitter with three
 * tasks, so the FIFO fills and the submitter blocks until the worker has
 * drained half of it. See rl_pool.h for the protocols, the checks and the
 * broken variants. */
#define QUEUE_MODE 1
#define SUBMITTERS 1
#define PER_SUBMITTER 3
#include "rl_pool.h"

int main(int argc, char **argv)
{
    return fm_rl_run<pool_model>("pool_queue", argc, argv, 300000, rl::sched_random,
                                 {"push_fence", "idle_fence", "room_fence"});
}
