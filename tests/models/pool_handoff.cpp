/* Hand-off mode: two submitters, one task each, one worker. With one idle
 * worker there is one credit, so one submit takes the fast path and the
 * other may find no credit and block until the worker frees it. See
 * rl_pool.h for the protocols, the checks and the broken variants. */
#define QUEUE_MODE 0
#define SUBMITTERS 2
#define PER_SUBMITTER 1
#include "rl_pool.h"

int main(int argc, char **argv)
{
    return fm_rl_run<pool_model>("pool_handoff", argc, argv, 100000, rl::sched_random,
                                 {"push_fence", "idle_fence", "room_fence"});
}
