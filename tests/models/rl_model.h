/* Shared by the Relacy models (tests/models/*.cpp): the library's C atomics
 * spelled in Relacy's terms, a futex, and the driver.
 *
 * Relacy runs each test many times under a scheduler of its own and, for
 * every load, picks any value the C++11 memory model allows, so a relaxed or
 * release/acquire ordering that is too weak shows up as a failed assertion, a
 * data race on an rl::var, or a deadlock (every thread blocked: a lost
 * wake-up).
 *
 * One gap of Relacy matters here: it relates a seq_cst fence to another
 * thread's seq_cst fence, and seq_cst operations to each other, but not a
 * seq_cst fence to another thread's seq_cst operation ([atomics.order]
 * p4/p5 of C++11). Where the library pairs a fence on one side with a
 * seq_cst operation on the other, the model adds FM_SC_PAIR() next to that
 * operation: a fence the C code does not have, which gives in Relacy the
 * guarantee the C++11 rules give the code without it. Each use says which
 * rule it stands for; the broken variants always remove a fence or weaken an
 * order of the library's own, never an FM_SC_PAIR. */
#ifndef FM_RL_MODEL_H
#define FM_RL_MODEL_H

#include <relacy/relacy.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#define FM_RLX rl::mo_relaxed
#define FM_ACQ rl::mo_acquire
#define FM_REL rl::mo_release
#define FM_ACQ_REL rl::mo_acq_rel
#define FM_SC rl::mo_seq_cst

#define FM_FENCE() rl::atomic_thread_fence(rl::mo_seq_cst, $)
#define FM_SC_PAIR() rl::atomic_thread_fence(rl::mo_seq_cst, $)

/* The variant being checked: "library" (the library's orderings), or the
 * name of one broken ordering, which the checker must catch. Chosen at run
 * time, so that each model is compiled once. */
static const char *fm_rl_variant = "library";

/* Whether the broken variant name is being checked. */
static inline bool fm_broken(const char *name)
{
    return strcmp(fm_rl_variant, name) == 0;
}

/* The library's order, or weak when the broken variant name is checked. */
static inline rl::memory_order fm_order(rl::memory_order library, const char *name,
                                        rl::memory_order weak)
{
    return fm_broken(name) ? weak : library;
}

/* A futex (os/linux.c): wait sleeps only if the word still holds expected
 * when checked under the kernel's bucket lock; wake takes that lock. */
struct fm_rl_futex {
    rl::mutex m;
    rl::condition_variable cv;

    void wait(rl::atomic<unsigned> &word, unsigned expected)
    {
        m.lock($);
        if (word.load(FM_RLX, $) == expected)
            cv.wait(m, $);
        m.unlock($);
    }

    void wake()
    {
        m.lock($);
        cv.notify_all($);
        m.unlock($);
    }
};

/* A maintenance client's timer as the object and buffer pools arm it
 * (fm__objpool_arm, fm__buf_arm: the same steps). scheduled: the client has
 * a deadline, which fm__maint_request sets and fm__maint_run_tick clears as
 * the tick starts (a tick that returns a deadline sets it again). */
struct fm_rl_timer {
    rl::atomic<int> armed;
    rl::mutex maint_lock;
    rl::var<int> scheduled; /* maint_lock */

    /* Armed, with a tick coming. */
    void init()
    {
        armed.store(1, FM_RLX, $);
        scheduled($) = 1;
    }

    void schedule(int on)
    {
        maint_lock.lock($);
        scheduled($) = on;
        maint_lock.unlock($);
    }

    /* fm__objpool_arm, fm__buf_arm */
    void arm()
    {
        if (armed.load(FM_SC, $) || armed.exchange(1, FM_SC, $))
            return;
        schedule(1);
    }

    /* While something is cached, a tick is coming and armed is set. */
    void check_cached(bool cached)
    {
        if (cached)
            RL_ASSERT(scheduled($) && armed.load(FM_RLX, $) == 1);
    }
};

/* Runs test T: argv[1] names the variant ("library" or one of broken[],
 * which the model must know), argv[2] may override the iterations. sched is
 * the random scheduler for def_iters iterations, or the full search, which
 * explores every execution (every interleaving and every value a load may
 * return) up to def_iters. Prints one line; exits 0 when nothing was found,
 * 1 when Relacy found an error (its report and the execution's history go to
 * stdout first), 2 for an unknown variant. */
template <typename T>
int fm_rl_run(const char *name, int argc, char **argv, unsigned long def_iters,
              rl::scheduler_type_e sched, std::initializer_list<const char *> broken)
{
    fm_rl_variant = argc > 1 ? argv[1] : "library";
    bool known = strcmp(fm_rl_variant, "library") == 0;
    for (const char *b : broken)
        known = known || fm_broken(b);
    if (!known) {
        printf("MODEL %s: no variant %s\n", name, fm_rl_variant);
        return 2;
    }
    rl::test_params p;
    p.iteration_count = argc > 2 ? strtoul(argv[2], 0, 10) : def_iters;
    p.search_type = sched;
    static std::ostringstream progress; /* Relacy's percentage lines */
    p.progress_stream = &progress;
    auto t0 = std::chrono::steady_clock::now();
    bool ok = rl::simulate<T>(p);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    unsigned long long n = (unsigned long long)p.stop_iteration;
    const char *how = sched == rl::sched_random ? "iterations of the random scheduler"
                      : !ok ? "executions of the full search"
                      : n < (unsigned long long)p.iteration_count
                          ? "executions, the full search (all of them)"
                          : "executions of the full search (cut at the limit)";
    if (ok)
        printf("MODEL %s (%s): no error in %llu %s, %.1f s\n", name, fm_rl_variant, n, how, s);
    else
        printf("MODEL %s (%s): error found after %llu %s, %.1f s\n", name, fm_rl_variant, n, how,
               s);
    return ok ? 0 : 1;
}

#endif
