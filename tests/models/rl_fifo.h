/* src/fifo.h (Vyukov's bounded MPMC queue) in Relacy's terms: the same steps
 * and the same memory orders, line for line; a task is an int in an rl::var,
 * so a push whose publication is too weak shows up as a data race. Broken
 * variants, for the models that must catch them:
 *   fifo_publish   the push's store of seq relaxed, not release
 *   fifo_recycle   the pop's store of seq relaxed, not seq_cst */
#ifndef FM_RL_FIFO_H
#define FM_RL_FIFO_H

#include "rl_model.h"

#define FM_FIFO_PUBLISH fm_order(FM_REL, "fifo_publish", FM_RLX)
#define FM_FIFO_RECYCLE fm_order(FM_SC, "fifo_recycle", FM_RLX)

template <size_t N>
struct fm_rl_fifo {
    struct cell {
        rl::atomic<size_t> seq;
        rl::var<int> task;
    };
    rl::atomic<size_t> tail, head;
    cell cells[N];
    static const size_t mask = N - 1;

    void init()
    {
        for (size_t i = 0; i < N; i++)
            cells[i].seq.store(i, FM_RLX, $);
        tail.store(0, FM_RLX, $);
        head.store(0, FM_RLX, $);
    }

    /* fm__fifo_push */
    bool push(int task, size_t *pos_out)
    {
        size_t pos = tail.load(FM_RLX, $);
        for (;;) {
            cell &c = cells[pos & mask];
            size_t seq = c.seq.load(FM_ACQ, $);
            intptr_t dif = (intptr_t)seq - (intptr_t)pos;
            if (dif == 0) {
                if (tail.compare_exchange_weak(pos, pos + 1, FM_RLX, $, FM_RLX, $)) {
                    c.task($) = task;
                    c.seq.store(pos + 1, FM_FIFO_PUBLISH, $);
                    *pos_out = pos;
                    return true;
                }
            } else if (dif < 0) {
                return false;
            } else {
                pos = tail.load(FM_RLX, $);
            }
        }
    }

    /* fm__fifo_pop */
    bool pop(int *task)
    {
        size_t pos = head.load(FM_RLX, $);
        for (;;) {
            cell &c = cells[pos & mask];
            size_t seq = c.seq.load(FM_ACQ, $);
            intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
            if (dif == 0) {
                if (head.compare_exchange_weak(pos, pos + 1, FM_RLX, $, FM_RLX, $)) {
                    *task = c.task($);
                    c.seq.store(pos + mask + 1, FM_FIFO_RECYCLE, $);
                    return true;
                }
            } else if (dif < 0) {
                return false;
            } else {
                pos = head.load(FM_RLX, $);
            }
        }
    }

    /* fm__fifo_ready */
    bool ready()
    {
        size_t pos = head.load(FM_ACQ, $);
        return cells[pos & mask].seq.load(FM_ACQ, $) == pos + 1;
    }

    /* fm__fifo_unconsumed */
    bool unconsumed(size_t pos)
    {
        return cells[pos & mask].seq.load(FM_RLX, $) == pos + 1;
    }

    /* fm__fifo_count */
    size_t count()
    {
        size_t h = head.load(FM_ACQ, $);
        size_t t = tail.load(FM_ACQ, $);
        return t > h ? t - h : 0;
    }
};

#endif
