/* Model of how a worker publishes the task it runs for fm_pool_dump and the
 * slow-task watchdog (src/worker.c fm__worker_run, src/diag.c
 * fm__worker_task; the protocol is in pool_internal.h): the worker stores
 * cur_arg, then cur_fn (release) before a task, cur_fn = NULL after it, then
 * completed + 1 (release); a reader loads completed, cur_fn, cur_arg,
 * completed again (acquire) and keeps its copy only when both counts agree.
 * The worker runs two tasks while a reader takes one snapshot. Checked: a
 * snapshot kept names one task: its function, its argument and its number
 * (completed) belong together.
 * Broken variant, which must be caught:
 *   cur_relaxed  the worker stores cur_fn relaxed, not release */
#include "rl_model.h"

#define FM_CUR_ORDER fm_order(FM_REL, "cur_relaxed", FM_RLX)

enum { TASKS = 2 };

struct worker_current : rl::test_suite<worker_current, 2> {
    rl::atomic<uint64_t> completed;
    rl::atomic<int> cur_fn;  /* 0: between tasks; task k runs as k + 1 */
    rl::atomic<int> cur_arg; /* task k's argument is k + 11 */

    void before()
    {
        completed.store(0, FM_RLX, $);
        cur_fn.store(0, FM_RLX, $);
        cur_arg.store(0, FM_RLX, $);
    }

    /* fm__worker_run */
    void run(int k)
    {
        cur_arg.store(k + 11, FM_REL, $);
        cur_fn.store(k + 1, FM_CUR_ORDER, $);
        /* fn(arg) */
        cur_fn.store(0, FM_REL, $);
        uint64_t n = completed.load(FM_RLX, $);
        completed.store(n + 1, FM_REL, $);
    }

    /* fm__worker_task */
    void read()
    {
        for (int tries = 0; tries < 4; tries++) {
            uint64_t c1 = completed.load(FM_ACQ, $);
            int fn = cur_fn.load(FM_ACQ, $);
            int arg = cur_arg.load(FM_ACQ, $);
            uint64_t c2 = completed.load(FM_ACQ, $);
            if (c1 != c2)
                continue;
            if (!fn)
                return;
            RL_ASSERT(fn == (int)c1 + 1 && arg == fn + 10);
            return;
        }
    }

    void thread(unsigned id)
    {
        if (id == 0) {
            for (int k = 0; k < TASKS; k++)
                run(k);
        } else {
            read();
        }
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<worker_current>("worker_current", argc, argv, 10000000, rl::sched_full,
                                     {"cur_relaxed"});
}
