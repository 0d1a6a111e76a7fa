/* Model of closing a pool against a submit in flight (src/pool.c:
 * fm__pool_submit, fm_pool_release, fm__pool_wait_submitters). A submit
 * counts itself in entered, then reads closed; release stores closed, then
 * waits until left == entered, and release_timeout/destroy go on to join the
 * workers and free the pool. Checked: a submit that found the pool open has
 * left before the releaser goes on (its accesses to the pool happen before
 * the releaser's, or Relacy reports the race on the pool's memory), and one
 * that found it closed did nothing.
 * Broken variants, each of which must be caught:
 *   close_release  release stores closed with memory_order_release (the
 *                  library did until this model caught it: the store could
 *                  pass the loads of entered)
 *   left_relaxed   the submit counts itself out with a relaxed RMW */
#include "rl_model.h"

#define FM_CLOSE_ORDER fm_order(FM_SC, "close_release", FM_REL)
#define FM_LEFT_ORDER fm_order(FM_REL, "left_relaxed", FM_RLX)

struct pool_close : rl::test_suite<pool_close, 2> {
    rl::atomic<uint64_t> entered, left;
    rl::atomic<int> closed;
    rl::mutex lock;
    rl::var<int> pool_mem; /* the pool's memory, freed by the releaser */

    void before()
    {
        entered.store(0, FM_RLX, $);
        left.store(0, FM_RLX, $);
        closed.store(0, FM_RLX, $);
        pool_mem($) = 1;
    }

    /* fm__pool_submit: entered, then closed. */
    void submit()
    {
        entered.fetch_add(1, FM_SC, $);
        if (!closed.load(FM_SC, $))
            RL_ASSERT(pool_mem($) == 1); /* fm__pool_push: the pool is used */
        left.fetch_add(1, FM_LEFT_ORDER, $);
    }

    /* fm_pool_release, then fm__pool_wait_submitters; then the pool goes. */
    void release()
    {
        lock.lock($);
        if (!closed.load(FM_RLX, $))
            closed.store(1, FM_CLOSE_ORDER, $);
        lock.unlock($);
        while (left.load(FM_ACQ, $) != entered.load(FM_SC, $))
            rl::yield(1, $);
        pool_mem($) = 0; /* fm__pool_join_all, fm__pool_free */
    }

    void thread(unsigned id)
    {
        if (id == 0)
            submit();
        else
            release();
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<pool_close>("pool_close", argc, argv, 10000000, rl::sched_full,
                                 {"close_release", "left_relaxed"});
}
