/* Model of the buffer pool's decay arming (src/bufpool.c fm_bufpool_put,
 * src/bufpool_decay.c fm__buf_tick and fm__buf_arm) over the thread-cache
 * handshake (src/tcache.h) in its fenced mode, where both sides fence
 * instead of the drainer sending membarrier(2): Relacy has no membarrier,
 * and tcache_handshake.pml checks that mode on store buffers. A put caches a
 * block in its thread cache inside the bracket and reads armed there
 * (relaxed: the bracket orders it); when a drain holds the cache it puts the
 * block in the central store under the class lock and then reads armed
 * (seq_cst). The tick clears armed, drains every cache (locked = 1, fence,
 * wait for busy == 0), looks at the store, and sets armed again while
 * anything is left. Checked: the drain and the thread never use the cache at
 * once (a data race on its entries otherwise), and once both are done, if a
 * block is cached anywhere, a tick is pending and armed is set.
 * Broken variants, each of which must be caught:
 *   tc_fence       the thread side has no fence after it sets busy (the
 *                  drainer's fence alone: the handshake fails)
 *   leave_relaxed  the bracket ends with a relaxed store, not release */
#include "rl_model.h"

#define FM_LEAVE_ORDER fm_order(FM_REL, "leave_relaxed", FM_RLX)

struct bufpool_arm : rl::test_suite<bufpool_arm, 2> {
    /* struct fm__tc */
    rl::atomic<uint64_t> state; /* bit 0: busy */
    rl::atomic<uint32_t> locked;
    /* the payload: one class's entries */
    rl::atomic<uint32_t> n;
    rl::var<int> v0;
    fm_rl_timer timer;
    rl::mutex class_lock;
    rl::var<int> stored; /* blocks in the central store; class_lock */

    void before()
    {
        state.store(0, FM_RLX, $);
        locked.store(0, FM_RLX, $);
        n.store(0, FM_RLX, $);
        timer.init();
        stored($) = 0;
    }

    /* fm__tc_enter_w with fm__tc_fenced */
    bool enter()
    {
        uint64_t st = state.load(FM_RLX, $);
        state.store(st | 1, FM_RLX, $);
        if (!fm_broken("tc_fence"))
            FM_FENCE();
        if (locked.load(FM_ACQ, $)) {
            state.store(st, FM_REL, $);
            return false;
        }
        return true;
    }

    /* fm__tc_leave */
    void leave()
    {
        uint64_t st = state.load(FM_RLX, $);
        state.store(st & ~(uint64_t)1, FM_LEAVE_ORDER, $);
    }

    /* fm_bufpool_put of one block */
    void put()
    {
        if (enter()) {
            uint32_t k = n.load(FM_RLX, $);
            RL_ASSERT(k == 0);
            v0($) = 7;
            n.store(k + 1, FM_RLX, $);
            int a = timer.armed.load(FM_RLX, $);
            leave();
            if (!a)
                timer.arm();
            return;
        }
        /* fm__buf_put_slow (it also waits out the drain first; here the store
         * put may come at any time): the block goes to the central store,
         * where it is aged, then the put arms. */
        class_lock.lock($);
        stored($) = stored($) + 1;
        class_lock.unlock($);
        timer.arm();
    }

    /* fm__buf_tick: drain (fm__tc_drain + fm__buf_tick_one), then decay. */
    void tick()
    {
        timer.schedule(0); /* the tick runs */
        timer.armed.store(0, FM_SC, $);
        locked.store(1, FM_RLX, $);
        FM_FENCE(); /* fm__tc_heavy_barrier, fenced mode */
        while (state.load(FM_ACQ, $) & 1)
            rl::yield(1, $);
        /* A cache used since the last tick stays (busy); here its blocks
         * count as "left to decay" either way. */
        bool busy = n.load(FM_RLX, $) != 0;
        if (busy)
            RL_ASSERT(v0($) == 7);
        locked.store(0, FM_REL, $);
        class_lock.lock($);
        bool aged = stored($) != 0;
        class_lock.unlock($);
        if (busy || aged) {
            timer.armed.store(1, FM_SC, $);
            timer.schedule(1);
        }
    }

    void thread(unsigned id)
    {
        if (id == 0)
            put();
        else
            tick();
    }

    void after()
    {
        timer.check_cached(n.load(FM_RLX, $) || stored($));
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<bufpool_arm>("bufpool_arm", argc, argv, 100000, rl::sched_random,
                                  {"tc_fence", "leave_relaxed"});
}
