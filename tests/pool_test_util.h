/* Helpers shared by the worker-pool tests: gates that hold a task until the
 * test opens them, counting tasks, helper threads that make a submit call and
 * record its result, child processes with a time limit, and thread counting.
 *
 * Every helper synchronises through mutexes, condition variables or atomics
 * that the test controls, never through sleeps.
 */
#ifndef FM_POOL_TEST_UTIL_H
#define FM_POOL_TEST_UTIL_H

#include "fm_test.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <formica.h>

/* ThreadSanitizer does not support starting threads in the child of a
 * multi-threaded fork (it makes the child die), so the fork cases are skipped
 * under it; they run in the other builds. */
#if defined(__SANITIZE_THREAD__)
#define FM_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FM_TEST_TSAN 1
#endif
#endif
#ifndef FM_TEST_TSAN
#define FM_TEST_TSAN 0
#endif

/* Every test case ends its process; ThreadSanitizer would sleep a second at
 * each exit (atexit_sleep_ms). A default only: TSAN_OPTIONS still wins. */
#if FM_TEST_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "atexit_sleep_ms=0";
}
#endif

#define SKIP_UNDER_TSAN()                                                                \
    do {                                                                                 \
        if (FM_TEST_TSAN) {                                                              \
            FM_SKIP("ThreadSanitizer cannot start threads after fork");                  \
        }                                                                                \
    } while (0)

/* ---- gate: a task blocks in gate_pass until the test calls gate_open ---- */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    atomic_int entered; /* tasks that reached the gate */
    atomic_int passed;  /* tasks that went through it */
};

static inline void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
    atomic_init(&g->entered, 0);
    atomic_init(&g->passed, 0);
}

static inline void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static inline void gate_pass(struct gate *g)
{
    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_add(&g->passed, 1);
}

/* Task: blocks on the gate given as its argument. */
static inline void task_gate(void *arg)
{
    gate_pass((struct gate *)arg);
}

/* Task: adds one to the atomic_int given as its argument. */
static inline void task_count(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Task: does nothing. */
static inline void task_nop(void *arg)
{
    (void)arg;
}

/* ---- a helper thread that makes one submit call and records the result ---- */

enum submit_kind { SUBMIT_PLAIN, SUBMIT_TIMEOUT, SUBMIT_INVOKE };

struct submitter {
    pthread_t th;
    fm_pool *pool;
    enum submit_kind kind;
    fm_task_fn fn;
    void *arg;
    int64_t timeout_ns;
    atomic_int done;
    atomic_int rc;
};

static inline void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    int rc;
    switch (s->kind) {
    case SUBMIT_TIMEOUT:
        rc = fm_pool_submit_timeout(s->pool, s->fn, s->arg, s->timeout_ns);
        break;
    case SUBMIT_INVOKE:
        rc = fm_pool_invoke(s->pool, s->arg);
        break;
    default:
        rc = fm_pool_submit(s->pool, s->fn, s->arg);
        break;
    }
    atomic_store(&s->rc, rc);
    atomic_store(&s->done, 1);
    return NULL;
}

static inline void submitter_start(struct submitter *s, fm_pool *p, enum submit_kind kind,
                                   fm_task_fn fn, void *arg, int64_t timeout_ns)
{
    s->pool = p;
    s->kind = kind;
    s->fn = fn;
    s->arg = arg;
    s->timeout_ns = timeout_ns;
    atomic_init(&s->done, 0);
    atomic_init(&s->rc, 12345);
    if (pthread_create(&s->th, NULL, submitter_main, s) != 0)
        FM_FAIL("pthread_create failed");
}

static inline void submitter_join(struct submitter *s)
{
    pthread_join(s->th, NULL);
}

/* ---- child processes ---- */

/* Waits for pid at most timeout_ms; kills it (SIGKILL) if it is still alive
 * then. Returns the wait status. */
static inline int wait_child(pid_t pid, int timeout_ms)
{
    int status = 0;
    for (int i = 0; i <= timeout_ms; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            FM_FAIL("waitpid: %s", strerror(errno));
        fm_test_sleep_ms(1);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    fprintf(stderr, "  child %d did not finish within %d ms, killed\n", (int)pid, timeout_ms);
    return status;
}

/* ---- threads of this process ---- */

/* Threads of this process that are alive: listed in /proc/self/task and not
 * yet in the kernel's exit path (PF_EXITING, 0x4, in the flags field of
 * /proc/self/task/<tid>/stat).
 *
 * Why not the plain number of entries: pthread_join returns once the kernel
 * has cleared the thread's tid, which it does in the middle of do_exit; the
 * task stays listed in /proc for a moment after that (measured here: about 1
 * in 100 create+join pairs of plain pthreads still shows the joined thread).
 * A joined thread always has PF_EXITING set, so this count is exact right
 * after a join, with no waiting, while a thread that still runs user code
 * (never asked to exit, or not yet joined and not yet exiting) is counted. */
/* Calls fn(tid, first line of /proc/self/task/<tid>/<file>, ctx) for every
 * thread of the process; threads gone meanwhile are skipped. */
static inline void for_each_thread(const char *file,
                                   void (*fn)(const char *tid, char *line, void *ctx), void *ctx)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        FM_FAIL("opendir /proc/self/task: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], line[1024] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/%s", e->d_name, file);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* gone meanwhile */
        int got = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        if (got)
            fn(e->d_name, line, ctx);
    }
    closedir(d);
}

/* Counts the threads of a /proc/self/task/<tid>/stat line not exiting. */
static inline void count_live_thread(const char *tid, char *line, void *ctx)
{
    (void)tid;
    /* "tid (comm) state ppid pgrp session tty_nr tpgid flags ..." */
    char *q = strrchr(line, ')');
    if (!q)
        return;
    q += 2; /* field 3, state */
    for (int field = 3; field < 9 && q; field++) {
        q = strchr(q, ' ');
        if (q)
            q++;
    }
    unsigned long flags = 0;
    if (q && sscanf(q, "%lu", &flags) == 1 && !(flags & 0x4UL)) /* PF_EXITING */
        ++*(int *)ctx;
}

static inline int count_threads(void)
{
    int n = 0;
    for_each_thread("stat", count_live_thread, &n);
    return n;
}

/* ---- pool shorthands ---- */

static inline fm_pool *new_pool(int capacity, const fm_pool_opts *opts)
{
    fm_pool *p = NULL;
    int rc = fm_pool_new(&p, capacity, opts);
    if (rc != 0 || p == NULL)
        FM_FAIL("fm_pool_new(%d) = %d (%s)", capacity, rc, fm_strerror(rc));
    return p;
}

static inline struct fm_pool_stats pool_stats(const fm_pool *p)
{
    struct fm_pool_stats s;
    memset(&s, 0xa5, sizeof s);
    int rc = fm_pool_stats(p, &s);
    if (rc != 0)
        FM_FAIL("fm_pool_stats = %d", rc);
    return s;
}

#define SEC_NS 1000000000LL
#define MS_NS 1000000LL

#endif /* FM_POOL_TEST_UTIL_H */
