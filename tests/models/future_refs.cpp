/* Model of a future's two references (src/future.c): the task (which stores
 * the result, sets done under the future's lock and drops its reference)
 * and the caller (which may read done without the lock, waits for the
 * result under the lock, and destroys its handle). Whoever drops the last
 * reference frees the future. Checked: the free comes after every access of
 * the other party (a data race on the future's memory otherwise), exactly
 * one party frees, and a caller that sees done without the lock also sees
 * the result.
 * Broken variant, which must be caught:
 *   unref_relaxed  fm__future_unref's decrement relaxed, not acq_rel */
#include "rl_model.h"

#define FM_UNREF_ORDER fm_order(FM_ACQ_REL, "unref_relaxed", FM_RLX)

struct future_refs : rl::test_suite<future_refs, 2> {
    rl::atomic<int> refs, done;
    rl::mutex lock;
    rl::var<int> result; /* and the rest of the future's memory */
    rl::atomic<int> freed_by_runner, freed_by_caller;

    void before()
    {
        refs.store(2, FM_RLX, $);
        done.store(0, FM_RLX, $);
        result($) = 0;
        freed_by_runner.store(0, FM_RLX, $);
        freed_by_caller.store(0, FM_RLX, $);
    }

    /* fm__future_unref; fm__future_free writes the memory it gives back. */
    bool unref()
    {
        if (refs.fetch_sub(1, FM_UNREF_ORDER, $) != 1)
            return false;
        result($) = -1;
        return true;
    }

    void runner() /* fm__future_run */
    {
        lock.lock($);
        result($) = 42;
        done.store(1, FM_REL, $);
        lock.unlock($);
        freed_by_runner.store(unref(), FM_RLX, $);
    }

    void caller()
    {
        if (done.load(FM_ACQ, $)) /* fm_future_done */
            RL_ASSERT(result($) == 42);
        lock.lock($); /* fm_future_wait with a zero timeout */
        if (done.load(FM_RLX, $))
            RL_ASSERT(result($) == 42);
        lock.unlock($);
        freed_by_caller.store(unref(), FM_RLX, $); /* fm_future_destroy */
    }

    void thread(unsigned id)
    {
        if (id == 0)
            runner();
        else
            caller();
    }

    void after()
    {
        RL_ASSERT(freed_by_runner.load(FM_RLX, $) + freed_by_caller.load(FM_RLX, $) == 1);
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<future_refs>("future_refs", argc, argv, 10000000, rl::sched_full,
                                  {"unref_relaxed"});
}
