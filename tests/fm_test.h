/* A small test runner in the spirit of libuv's: every test case runs in its own
 * child process with a time limit, so one crash, hang or leak cannot hide or
 * spoil another. A test program is a list of FM_TEST cases plus
 * FM_TEST_MAIN(); run it with no argument for every case, with case names to
 * run some, or with --list.
 *
 * Checks: FM_CHECK(cond) and FM_CHECK_EQ(a, b) (integers) fail the case with
 * file, line and values. A case passes when its function returns; it fails on a
 * failed check, a signal or the time limit (FM_TEST_TIMEOUT seconds, default
 * 60, a guard against hangs only). FM_SKIP(reason) ends a case as skipped; a
 * program whose every case run was skipped exits with 77 (CTest's
 * SKIP_RETURN_CODE), never with "passed".
 */
#ifndef FM_TEST_H
#define FM_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

typedef void (*fm_test_fn)(void);
struct fm_test_case {
    const char *name;
    fm_test_fn fn;
};

#define FM_TEST_MAX 256
static struct fm_test_case fm_test_cases[FM_TEST_MAX];
static int fm_test_count;

#define FM_TEST(name)                                                                    \
    static void fm_test_##name(void);                                                    \
    __attribute__((constructor)) static void fm_test_register_##name(void)              \
    {                                                                                    \
        if (fm_test_count < FM_TEST_MAX)                                                 \
            fm_test_cases[fm_test_count++] = (struct fm_test_case){#name, fm_test_##name}; \
    }                                                                                    \
    static void fm_test_##name(void)

#define FM_FAIL(...)                                                                     \
    do {                                                                                 \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fputc('\n', stderr);                                                             \
        fflush(stderr);                                                                  \
        _exit(1);                                                                        \
    } while (0)

#define FM_TEST_SKIPPED 77

#define FM_SKIP(...)                                                                     \
    do {                                                                                 \
        printf("  skipped: ");                                                           \
        printf(__VA_ARGS__);                                                             \
        putchar('\n');                                                                   \
        fflush(stdout);                                                                  \
        _exit(FM_TEST_SKIPPED);                                                          \
    } while (0)

#define FM_CHECK(cond)                                                                   \
    do {                                                                                 \
        if (!(cond))                                                                     \
            FM_FAIL("check failed: %s", #cond);                                          \
    } while (0)

#define FM_CHECK_EQ(a, b)                                                                \
    do {                                                                                 \
        long long fm_a_ = (long long)(a), fm_b_ = (long long)(b);                        \
        if (fm_a_ != fm_b_)                                                              \
            FM_FAIL("check failed: %s == %s (%lld != %lld)", #a, #b, fm_a_, fm_b_);      \
    } while (0)

/* Monotonic nanoseconds, and sleeping, for tests. */
static inline int64_t fm_test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void fm_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Polls cond every millisecond for at most timeout_ms; evaluates to 1 once it
 * holds, 0 if it never did. For waiting on asynchronous effects without
 * depending on speed. */
#define FM_WAIT_UNTIL(cond, timeout_ms)                                                  \
    ({                                                                                   \
        int fm_ok_ = 0;                                                                  \
        for (int fm_i_ = 0; fm_i_ <= (timeout_ms); fm_i_++) {                            \
            if (cond) {                                                                  \
                fm_ok_ = 1;                                                              \
                break;                                                                   \
            }                                                                            \
            fm_test_sleep_ms(1);                                                         \
        }                                                                                \
        fm_ok_;                                                                          \
    })

/* Parking for fork tests. The sanitizers' runtimes (their allocators, their
 * thread bookkeeping) are not fork-safe while other threads run inside them:
 * a child can inherit one of their locks held. Under a sanitizer, threads that
 * hammer a pool call fm_test_park_point between operations, and the forking
 * thread parks them all before each fork and lets them go after it; such a
 * case then checks that the pools work in the child, and the release and debug
 * builds check the race of fork with the library's own locks. Elsewhere the
 * calls do nothing. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FM_TEST_PARK_FOR_FORK 1
#else
#define FM_TEST_PARK_FOR_FORK 0
#endif

struct fm_test_park {
    atomic_int park, parked;
};

static inline void fm_test_park_point(struct fm_test_park *p)
{
    if (!FM_TEST_PARK_FOR_FORK || !atomic_load(&p->park))
        return;
    atomic_fetch_add(&p->parked, 1);
    while (atomic_load(&p->park))
        fm_test_sleep_ms(1);
    atomic_fetch_sub(&p->parked, 1);
}

/* 1 once all nthreads are parked (at once where nothing needs parking), 0 if
 * they were not within 10 s. */
static inline int fm_test_park_all(struct fm_test_park *p, int nthreads)
{
    if (!FM_TEST_PARK_FOR_FORK)
        return 1;
    atomic_store(&p->park, 1);
    return FM_WAIT_UNTIL(atomic_load(&p->parked) == nthreads, 10000);
}

static inline void fm_test_unpark(struct fm_test_park *p)
{
    atomic_store(&p->park, 0);
}

/* A fast pseudo-random generator (xorshift64*) for tests that draw their
 * schedule from a seed; *s must start non-zero. */
static inline uint64_t fm_test_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Runs fn in a child process that must die of SIGABRT with want in what it
 * wrote to stderr (which this check reads through a pipe). A child that
 * returns from fn exits with 0 and fails the check. */
static inline void fm_test_expect_abort(void (*fn)(void), const char *want)
{
    int fds[2];
    if (pipe(fds) != 0)
        FM_FAIL("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FM_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    char out[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof out - 1 && (r = read(fds[0], out + len, sizeof out - 1 - len)) != 0) {
        if (r < 0 && errno != EINTR)
            break;
        len += r > 0 ? (size_t)r : 0;
    }
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        FM_FAIL("child was not aborted (status 0x%x); its stderr: %s", status, out);
    if (!strstr(out, want))
        FM_FAIL("the abort message lacks \"%s\": %s", want, out);
}

/* Under ASan, a case that passed is also checked for leaks: its child ends with
 * _exit, which skips LeakSanitizer's check at exit, so the check runs here. A
 * case must free what it made, as a long-running program would. */
static inline void fm_test_check_leaks(void)
{
#if defined(__SANITIZE_ADDRESS__)
    if (__lsan_do_recoverable_leak_check()) {
        fprintf(stderr, "  LeakSanitizer found leaks (report above)\n");
        fflush(NULL);
        _exit(1);
    }
#endif
}

static int fm_test_run_one(const struct fm_test_case *tc, int timeout_s)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        alarm((unsigned)timeout_s);
        tc->fn();
        fm_test_check_leaks();
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == FM_TEST_SKIPPED))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        fprintf(stderr, "  %s: killed by signal %d%s\n", tc->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
    return 1;
}

static int fm_test_main(int argc, char **argv)
{
    int timeout_s = 60;
    const char *env = getenv("FM_TEST_TIMEOUT");
    if (env && atoi(env) > 0)
        timeout_s = atoi(env);
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < fm_test_count; i++)
            printf("%s\n", fm_test_cases[i].name);
        return 0;
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < fm_test_count; i++) {
        const struct fm_test_case *tc = &fm_test_cases[i];
        int selected = argc <= 1;
        for (int a = 1; a < argc && !selected; a++)
            selected = strcmp(argv[a], tc->name) == 0;
        if (!selected)
            continue;
        int64_t t0 = fm_test_now_ns();
        int rc = fm_test_run_one(tc, timeout_s);
        printf("%s %s (%.1f ms)\n", rc == FM_TEST_SKIPPED ? "skip" : rc ? "FAIL" : "ok  ",
               tc->name, (double)(fm_test_now_ns() - t0) / 1e6);
        fflush(stdout);
        rc == FM_TEST_SKIPPED ? skipped++ : rc ? failed++ : passed++;
    }
    if (skipped)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : passed == 0 && skipped ? FM_TEST_SKIPPED : 0;
}

#define FM_TEST_MAIN()                                                                   \
    int main(int argc, char **argv) { return fm_test_main(argc, argv); }

#endif /* FM_TEST_H */
