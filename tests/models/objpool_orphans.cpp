/* Model of the object pool's orphan list (src/objpool.c): a departing
 * thread's flush pushes its magazines with a CAS (release), and takers (a
 * get short of objects, a cleanup cycle, destroy) take the whole list with
 * an exchange (acquire), never one magazine at a time, so the push has no
 * ABA case. Two flushing threads push two magazines each while two takers
 * take until all four are theirs. Checked: each magazine is taken exactly
 * once, with the contents its pusher wrote (no data race on the magazine or
 * its link).
 * Broken variants, each of which must be caught:
 *   push_relaxed  the push's CAS relaxed on success, not release
 *   take_relaxed  the take's exchange relaxed, not acquire */
#include "rl_model.h"

#define FM_PUSH_ORDER fm_order(FM_REL, "push_relaxed", FM_RLX)
#define FM_TAKE_ORDER fm_order(FM_ACQ, "take_relaxed", FM_RLX)

enum { PUSHERS = 2, PER_PUSHER = 2, MAGS = PUSHERS * PER_PUSHER, TAKERS = 2 };

struct mag {
    rl::var<mag *> next;
    rl::var<int> n; /* stands for the magazine's count and objects */
};

struct objpool_orphans : rl::test_suite<objpool_orphans, PUSHERS + TAKERS> {
    rl::atomic<mag *> orphans;
    rl::atomic<int> ntaken; /* only ends the takers' loops */
    mag mags[MAGS];
    int times[MAGS]; /* the model's bookkeeping */

    void before()
    {
        orphans.store(nullptr, FM_RLX, $);
        ntaken.store(0, FM_RLX, $);
        memset(times, 0, sizeof times);
    }

    /* fm__objtc_flush: the magazine was filled by its thread, then pushed. */
    void push(mag *m)
    {
        mag *head = orphans.load(FM_RLX, $);
        for (;;) {
            m->next($) = head;
            if (orphans.compare_exchange_weak(head, m, FM_PUSH_ORDER, $, FM_RLX, $))
                return;
        }
    }

    /* fm__objpool_take_orphans */
    mag *take()
    {
        if (!orphans.load(FM_RLX, $))
            return nullptr;
        return orphans.exchange(nullptr, FM_TAKE_ORDER, $);
    }

    void thread(unsigned id)
    {
        if (id < PUSHERS) {
            for (int i = 0; i < PER_PUSHER; i++) {
                int k = (int)id * PER_PUSHER + i;
                mags[k].n($) = 100 + k;
                push(&mags[k]);
            }
            return;
        }
        while (ntaken.load(FM_RLX, $) < MAGS) {
            mag *list = take();
            if (!list) {
                rl::yield(1, $);
                continue;
            }
            /* fm__objpool_adopt_orphans: walk the list, read each magazine. */
            while (list) {
                int k = (int)(list - mags);
                RL_ASSERT(k >= 0 && k < MAGS);
                RL_ASSERT(list->n($) == 100 + k);
                times[k]++;
                ntaken.fetch_add(1, FM_RLX, $);
                list = list->next($);
            }
        }
    }

    void after()
    {
        for (int k = 0; k < MAGS; k++)
            RL_ASSERT(times[k] == 1);
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<objpool_orphans>("objpool_orphans", argc, argv, 200000, rl::sched_random,
                                      {"push_relaxed", "take_relaxed"});
}
