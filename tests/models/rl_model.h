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

#define FM_RLX rl::mo_relaxed
#define FM_ACQ rl::mo_acquire
#define FM_REL rl::mo_release
#define FM_ACQ_REL rl::mo_acq_rel
#define FM_SC rl::mo_seq_cst

#define FM_FENCE() rl::atomic_thread_fence(rl::mo_seq_cst, $)
#define FM_SC_PAIR() rl::atomic_thread_fence(rl::mo_seq_cst, $)

/* FM_BROKEN(x, y): x in the library's ordering, y in the variant built with
 * -DFM_BROKEN, which the checker must catch. */
#ifdef FM_BROKEN
#define FM_VARIANT "broken"
#else
#define FM_VARIANT "library"
#endif

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

/* Runs test T: iterations from argv[1] (or def), the full or the random
 * scheduler. Prints one line; exits 0 when nothing was found, 1 when Relacy
 * found an error (its report and history go to stdout before). */
template <typename T>
int fm_rl_run(const char *name, int argc, char **argv, unsigned long def_iters,
              rl::scheduler_type_e sched = rl::sched_random)
{
    rl::test_params p;
    p.iteration_count = argc > 1 ? strtoul(argv[1], 0, 10) : def_iters;
    p.search_type = sched;
    static std::ostringstream progress; /* Relacy's percentage lines */
    p.progress_stream = &progress;
    auto t0 = std::chrono::steady_clock::now();
    bool ok = rl::simulate<T>(p);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const char *sname = sched == rl::sched_full ? "full search" : "random";
    if (ok)
        printf("MODEL %s (%s): no error in %llu iterations (%s scheduler), %.1f s\n", name,
               FM_VARIANT, (unsigned long long)p.stop_iteration, sname, s);
    else
        printf("MODEL %s (%s): error found at iteration %llu (%s scheduler), %.1f s\n", name,
               FM_VARIANT, (unsigned long long)p.stop_iteration, sname, s);
    return ok ? 0 : 1;
}

#endif
