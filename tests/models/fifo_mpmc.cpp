/* Model of src/fifo.h: two producers push two tasks each through a FIFO of
 * two cells (so it fills and its cells are reused), two consumers pop until
 * all four are taken. Checked: every task is taken exactly once, with the
 * value its producer wrote (no data race on the cell), and each consumer
 * sees each producer's tasks in the order they were pushed.
 * Broken variants (rl_fifo.h), each of which Relacy must catch as a data
 * race on a cell: fifo_publish (a consumer reads a task not yet published)
 * and fifo_recycle (a producer of the next lap writes the cell while its
 * consumer may still read it). */
#include "rl_fifo.h"

enum { PRODUCERS = 2, PER_PRODUCER = 2, TASKS = PRODUCERS * PER_PRODUCER };

struct fifo_mpmc : rl::test_suite<fifo_mpmc, PRODUCERS + 2> {
    fm_rl_fifo<2> q;
    rl::atomic<int> taken;
    int times[TASKS];

    void before()
    {
        q.init();
        taken.store(0, FM_RLX, $);
        memset(times, 0, sizeof times);
    }

    void thread(unsigned id)
    {
        if (id < PRODUCERS) {
            for (int i = 0; i < PER_PRODUCER; i++) {
                size_t pos;
                while (!q.push((int)id * PER_PRODUCER + i, &pos))
                    rl::yield(1, $);
            }
            return;
        }
        int last[PRODUCERS] = {-1, -1};
        while (taken.load(FM_RLX, $) < TASKS) {
            int t;
            if (!q.pop(&t)) {
                rl::yield(1, $);
                continue;
            }
            taken.fetch_add(1, FM_RLX, $);
            RL_ASSERT(t >= 0 && t < TASKS);
            times[t]++; /* the model's own bookkeeping: threads run one at a time */
            int prod = t / PER_PRODUCER, nth = t % PER_PRODUCER;
            RL_ASSERT(nth > last[prod]); /* per-producer order */
            last[prod] = nth;
        }
    }

    void after()
    {
        for (int t = 0; t < TASKS; t++)
            RL_ASSERT(times[t] == 1);
    }
};

int main(int argc, char **argv)
{
    return fm_rl_run<fifo_mpmc>("fifo_mpmc", argc, argv, 200000, rl::sched_random,
                                {"fifo_publish", "fifo_recycle"});
}
