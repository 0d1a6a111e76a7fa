/* Model of the object pool's cleanup timer (src/objpool.c: armed, activity,
 * fm__objpool_note_activity, fm__objpool_arm, fm__objpool_tick). A put that
 * caches an object where cycles age it (a shard, or a thread cache after a
 * drain) bumps activity, then reads armed and asks for a tick if it is 0.
 * The tick reads activity, runs a cycle, and when the cycle found nothing
 * clears armed, then reads activity again and re-arms if it moved. Both
 * sides seq_cst: one of them sees the other. Here the timer is armed with
 * one tick pending, a putter caches an object (under the shard lock, as the
 * slow path does) and the tick runs once, in any interleaving. Checked: when
 * both are done, if the object is cached, a tick is pending and armed is set
 * (the timer cannot stay off while something is cached).
 * Broken variants, each of which must be caught:
 *   disarm_release    the tick clears armed with a release store
 *   activity_relaxed  the put bumps activity with a relaxed RMW */
#include "rl_model.h"

#define FM_DISARM_ORDER fm_order(FM_SC, "disarm_release", FM_REL)
#define FM_ACTIVITY_ORDER fm_order(FM_SC, "activity_relaxed", FM_RLX)

struct objpool_timer : rl::test_suite<objpool_timer, 2> {
    fm_rl_timer timer;
    rl::atomic<uint64_t> activity;
    rl::mutex shard_lock;
    rl::var<int> cached;  /* objects in the shard; shard_lock */
    rl::var<int> victims; /* objects a cycle moved to the victims; shard_lock here */

    void before()
    {
        timer.init();
        activity.store(0, FM_RLX, $);
        cached($) = 0;
        victims($) = 0;
    }

    /* The put's slow path: the object goes to a shard, then the timer. */
    void put()
    {
        shard_lock.lock($);
        cached($) = cached($) + 1;
        shard_lock.unlock($);
        activity.fetch_add(1, FM_ACTIVITY_ORDER, $); /* fm__objpool_note_activity */
        timer.arm();
    }

    /* fm__objpool_cycle: everything cached becomes a victim, the old victims
     * are freed. Whether victims remain. */
    bool cycle()
    {
        shard_lock.lock($);
        victims($) = cached($);
        cached($) = 0;
        bool remain = victims($) != 0;
        shard_lock.unlock($);
        return remain;
    }

    /* fm__objpool_tick, run by the maintenance thread. */
    void tick()
    {
        timer.schedule(0);
        uint64_t seen = activity.load(FM_SC, $);
        bool again = cycle();
        if (!again) {
            timer.armed.store(0, FM_DISARM_ORDER, $);
            again = activity.load(FM_SC, $) != seen && !timer.armed.exchange(1, FM_SC, $);
        }
        if (again) /* returns a deadline: the maintenance thread sets it */
            timer.schedule(1);
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
        timer.check_cached(cached($) + victims($) > 0);
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<objpool_timer>("objpool_timer", argc, argv, 10000000, rl::sched_full,
                                    {"disarm_release", "activity_relaxed"});
}
