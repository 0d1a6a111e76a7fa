/* The worker pool (src/pool.c submit, src/worker.c the worker loop,
 * pool_internal.h the hand word) in Relacy's terms, for pool_handoff.cpp and
 * pool_queue.cpp: one worker, capacity 1, started without a task (a
 * preallocated pool), and SUBMITTERS threads submitting PER_SUBMITTER tasks
 * each. Every step that touches shared state is the library's, with its
 * memory order; what is left out is said where it would be.
 *
 * Protocols checked together:
 *   - submit vs go_idle (Dekker): the submitter publishes its task, fences,
 *     reads the lookers; the worker stops looking (seq_cst RMW), fences,
 *     reads the FIFO. One of them sees the other.
 *   - parking: the worker's CAS SPIN -> SLEEP and futex wait against the
 *     waker's exchange to GO and futex wake.
 *   - blocked submitters vs room_freed (Dekker): the submitter counts itself
 *     in waiting (seq_cst), fences, retries; the worker frees a credit
 *     (seq_cst RMW of hand) or a cell (the pop's seq_cst store), then reads
 *     waiting; queue mode wakes it only once half the FIFO is free.
 * Checked: every task runs exactly once, reading the argument its submitter
 * wrote (no data race), and nobody sleeps forever while a task or a
 * submitter waits (Relacy reports a deadlock when the worker parks and the
 * submitters are done or blocked: a lost wake-up).
 *
 * Broken variants, each of which must be caught:
 *   push_fence  no fence in fm__pool_after_push
 *   idle_fence  no fence in fm__worker_go_idle after it stops looking
 *   room_fence  no fence in fm__pool_submit_slow after waiting++ */
#ifndef FM_RL_POOL_H
#define FM_RL_POOL_H

#include "rl_fifo.h"

/* The includer defines QUEUE_MODE (0 or 1), SUBMITTERS and PER_SUBMITTER. */
enum { TASKS = SUBMITTERS * PER_SUBMITTER };
enum { W_SPIN = 0, W_SLEEP = 1, W_GO = 2, W_EXIT = 3 };
static const int64_t LOOKER = (int64_t)1 << 32;

static int credits(int64_t v) { return (int)(int32_t)(uint32_t)v; }
static int lookers(int64_t v) { return (int)(v >> 32); }

struct pool_model : rl::test_suite<pool_model, 1 + SUBMITTERS> {
    /* Hand-off: fm__handoff_fifo_size(1) rounded up to 2; queue mode: a
     * queue_capacity of 2. */
    fm_rl_fifo<2> fifo;
    static const int64_t credit = QUEUE_MODE ? 0 : 1;
    rl::atomic<int64_t> hand;
    rl::atomic<int> nidle, waiting;
    rl::mutex lock;
    rl::condition_variable room;
    rl::var<int> on_idle; /* lock */
    rl::atomic<unsigned> state;
    fm_rl_futex futex;
    rl::var<int> arg[TASKS];
    int ran[TASKS]; /* the model's bookkeeping: Relacy runs one thread at a time */
    int done;       /* tasks the worker ran */

    void before()
    {
        fifo.init();
        /* fm__pool_reserve_locked(p, 1): the worker counts as a looker. */
        hand.store(LOOKER, FM_RLX, $);
        nidle.store(0, FM_RLX, $);
        waiting.store(0, FM_RLX, $);
        on_idle($) = 0;
        state.store(W_GO, FM_RLX, $);
        memset(ran, 0, sizeof ran);
        done = 0;
    }

    /* ---- pool_internal.h, worker.c helpers ---- */

    int64_t hand_add(int64_t delta)
    {
        int64_t v = hand.fetch_add(delta, FM_SC, $) + delta;
        RL_ASSERT(credits(v) >= 0 && lookers(v) >= 0);
        return v;
    }

    bool take_credit(int64_t delta)
    {
        int64_t v = hand.load(FM_RLX, $);
        while (credits(v) > 0)
            if (hand.compare_exchange_weak(v, v - 1 + delta, FM_SC, $, FM_RLX, $))
                return true;
        return false;
    }

    /* fm__pool_room_freed, after the caller's seq_cst write (the pop's
     * store of its cell, or an RMW of hand). */
    void room_freed()
    {
        /* Stands for [atomics.order] p4: the submitter's fence after waiting++
         * against our seq_cst write (see rl_model.h). */
        FM_SC_PAIR();
        if (waiting.load(FM_SC, $) > 0) {
            if (QUEUE_MODE && fifo.count() > 2 / 2)
                return; /* half the FIFO free first: workers keep draining */
            lock.lock($);
            room.notify_one($);
            lock.unlock($);
        }
    }

    /* fm__pool_take_idle_locked + fm__pool_wake, as fm__pool_add_worker does
     * them (no worker can be started: running == capacity). */
    void add_worker()
    {
        if (!fifo.ready())
            return;
        lock.lock($);
        int took = on_idle($);
        if (took) {
            on_idle($) = 0;
            nidle.fetch_sub(1, FM_RLX, $);
            hand_add(LOOKER);
        }
        lock.unlock($);
        if (took) {
            unsigned old = state.exchange(W_GO, FM_ACQ_REL, $);
            if (old == W_SLEEP)
                futex.wake();
        }
    }

    /* ---- the submitter (pool.c) ---- */

    bool handoff_try(int t, size_t *pos)
    {
        if (QUEUE_MODE)
            return fifo.push(t, pos);
        if (!take_credit(0))
            return false;
        if (!fifo.push(t, pos)) {
            hand.fetch_add(1, FM_SC, $);
            return false;
        }
        return true;
    }

    void after_push(size_t pos)
    {
        if (!fm_broken("push_fence"))
            FM_FENCE();
        if (lookers(hand.load(FM_SC, $)) > 0)
            return;
        /* nidle == 0 and nothing can be started: every worker is busy. */
        if (nidle.load(FM_RLX, $) == 0)
            return;
        /* fm__pool_spin_for_taker, one round. */
        if (!fifo.unconsumed(pos) || lookers(hand.load(FM_ACQ, $)) > 0)
            return;
        add_worker();
    }

    /* fm__pool_has_room */
    bool has_room()
    {
        if (QUEUE_MODE) {
            size_t pos = fifo.tail.load(FM_RLX, $);
            return fifo.cells[pos & fifo.mask].seq.load(FM_RLX, $) == pos;
        }
        return credits(hand.load(FM_RLX, $)) > 0;
    }

    void submit_slow(int t)
    {
        size_t pos;
        lock.lock($);
        for (;;) {
            waiting.fetch_add(1, FM_SC, $);
            if (!fm_broken("room_fence"))
                FM_FENCE();
            if (handoff_try(t, &pos)) {
                if (waiting.fetch_sub(1, FM_RLX, $) > 1 && has_room())
                    room.notify_one($);
                lock.unlock($);
                after_push(pos);
                return;
            }
            /* No worker can be started (running == capacity, and the
             * queue-mode pool has its worker) and blocking is allowed: wait. */
            room.wait(lock, $);
            waiting.fetch_sub(1, FM_RLX, $);
        }
    }

    void submit(int t)
    {
        size_t pos;
        if (handoff_try(t, &pos))
            after_push(pos);
        else
            submit_slow(t);
    }

    /* ---- the worker (worker.c) ---- */

    void run(int t)
    {
        RL_ASSERT(t >= 0 && t < TASKS);
        RL_ASSERT(arg[t]($) == 100 + t);
        ran[t]++;
        done++;
    }

    /* fm__worker_wait, with one spin round. */
    unsigned wait()
    {
        unsigned s = state.load(FM_ACQ, $);
        if (s >= W_GO)
            return s;
        s = W_SPIN;
        if (!state.compare_exchange_strong(s, W_SLEEP, FM_ACQ, $, FM_ACQ, $))
            return s;
        for (;;) {
            futex.wait(state, W_SLEEP);
            s = state.load(FM_ACQ, $);
            if (s >= W_GO)
                return s;
        }
    }

    /* fm__worker_go_idle (the pool is open and not over capacity) and
     * fm__worker_sleep: true when it is to look at the FIFO again. */
    bool sleep()
    {
        lock.lock($);
        state.store(W_SPIN, FM_RLX, $);
        on_idle($) = 1;
        nidle.fetch_add(1, FM_RLX, $);
        hand_add(-LOOKER);
        lock.unlock($);
        if (!fm_broken("idle_fence"))
            FM_FENCE();
        if (fifo.ready()) {
            lock.lock($);
            int reclaimed = on_idle($);
            if (reclaimed) {
                on_idle($) = 0;
                nidle.fetch_sub(1, FM_RLX, $);
                hand_add(LOOKER);
            }
            lock.unlock($);
            if (reclaimed)
                return true;
        }
        return wait() != W_EXIT;
    }

    /* fm__worker_took: room_freed; waking more workers needs idle ones,
     * and this pool has no other. */
    void took()
    {
        room_freed();
    }

    /* fm__worker_next */
    bool next(bool looking, int *t)
    {
        if (!looking) {
            if (fifo.pop(t)) {
                if (credit)
                    hand_add(credit);
                took();
                return true;
            }
            hand_add(credit + LOOKER);
            room_freed();
        }
        for (;;) {
            if (fifo.pop(t)) {
                hand_add(-LOOKER);
                took();
                return true;
            }
            if (fifo.ready()) /* fm__worker_poll_fifo, one round */
                continue;
            if (done == TASKS) /* the model's end: the worker has run them all */
                return false;
            if (!sleep())
                return false;
        }
    }

    void worker()
    {
        if (!QUEUE_MODE) {
            hand_add(1); /* fm__worker_main: idle from the start, one credit */
            room_freed();
        }
        bool looking = true;
        int t;
        while (next(looking, &t)) {
            run(t);
            looking = false;
        }
    }

    void thread(unsigned id)
    {
        if (id == 0) {
            worker();
            return;
        }
        for (int i = 0; i < PER_SUBMITTER; i++) {
            int t = ((int)id - 1) * PER_SUBMITTER + i;
            arg[t]($) = 100 + t;
            submit(t);
        }
    }

    void after()
    {
        for (int t = 0; t < TASKS; t++)
            RL_ASSERT(ran[t] == 1);
    }
};

#endif
