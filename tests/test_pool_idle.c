/* Worker pool: what a pool leaves behind once its workers have expired.
 *
 * Two cycles of bursts (the pattern of workload W4, smaller and with a short
 * expiry): each burst grows the pool to its capacity (tasks that wait on a
 * gate until every worker holds one), runs 1-ms tasks on it, then every
 * worker expires before the next burst. Checked:
 *   - threads, after each burst: none of the pool's is left (fm_threads_live
 *     counts the maintenance thread only, no thread carries the pool's name);
 *     after each cycle the process holds its threads from before plus the
 *     maintenance thread;
 *   - glibc malloc arenas: at most one more than before (the maintenance
 *     thread's). glibc gives a thread that calls pthread_create an arena of
 *     its own and keeps it for the life of the process, so worker threads
 *     that started workers left up to 8 arenas per CPU behind a burst;
 *   - anonymous memory (/proc/self/smaps_rollup, counted page by page, unlike
 *     the approximate VmRSS): the first cycle grows it by at most 2 MiB, the
 *     second, identical one by at most 1 MiB. A worker whose stack or header
 *     were kept would hold about 16 KiB, and a cycle starts at least 400.
 * The arena and memory bounds are judged in release and debug builds only:
 * the sanitizers replace malloc and keep freed memory in quarantine or
 * shadow; there the figures are printed and the thread checks still run.
 */
#include "pool_test_util.h"

#include <malloc.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || FM_TEST_TSAN
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

enum {
    CAP = 200,
    TASKS = 2000, /* per burst: ten waves of 1-ms tasks */
    BURSTS = 2,   /* per cycle */
    EXPIRY_MS = 100,
    SETTLE_MS = 30000, /* against hangs only */
    FIRST_CYCLE_KIB = 2048,
    SECOND_CYCLE_KIB = 1024,
};

/* The process's anonymous memory in KiB, exact (a page walk). */
static long anon_kib(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    FM_CHECK(f != NULL);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Anonymous: %ld kB", &kib) == 1)
            break;
    fclose(f);
    FM_CHECK(kib >= 0);
    return kib;
}

/* glibc's arenas now: the <heap nr=...> elements of malloc_info. */
static int count_arenas(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    FM_CHECK(f != NULL);
    FM_CHECK_EQ(malloc_info(0, f), 0);
    fclose(f);
    int n = 0;
    for (const char *s = buf; (s = strstr(s, "<heap nr=")) != NULL; s++)
        n++;
    free(buf);
    return n;
}

static void task_sleep_1ms(void *arg)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Threads whose name starts with the test pool's (its workers: NAME-<id>). */
#define NAME "idle"

static void count_named(const char *tid, char *line, void *ctx)
{
    (void)tid;
    if (strncmp(line, NAME "-", sizeof NAME) == 0)
        ++*(int *)ctx;
}

static int pool_threads(void)
{
    int n = 0;
    for_each_thread("comm", count_named, &n);
    return n;
}

/* Runs the bursts of one cycle. Each grows the pool to its capacity (every
 * worker holds a task until all CAP hold one), runs TASKS 1-ms tasks on it,
 * and ends with the expiry of every worker. */
static void run_cycle(fm_pool *p)
{
    for (int b = 0; b < BURSTS; b++) {
        struct gate g;
        gate_init(&g);
        for (int i = 0; i < CAP; i++)
            FM_CHECK_EQ(fm_pool_submit(p, task_gate, &g), 0);
        FM_CHECK(FM_WAIT_UNTIL(atomic_load(&g.entered) == CAP, SETTLE_MS));
        gate_open(&g);
        atomic_int ran = 0;
        for (int i = 0; i < TASKS; i++)
            FM_CHECK_EQ(fm_pool_submit(p, task_sleep_1ms, &ran), 0);
        FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
        FM_CHECK_EQ(atomic_load(&ran), TASKS);
        /* Expired and joined: only the maintenance thread is left. */
        FM_CHECK(FM_WAIT_UNTIL(fm_threads_live() == 1, SETTLE_MS));
        struct fm_pool_stats s = pool_stats(p);
        FM_CHECK_EQ(s.running, 0);
        FM_CHECK_EQ(s.threads_exited, s.threads_created);
        FM_CHECK_EQ(pool_threads(), 0);
    }
}

static void bursts_case(size_t qcap)
{
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = EXPIRY_MS * MS_NS, .name = NAME};
    /* Everything the checks themselves use, once, before the baselines:
     * opendir and stdio keep their first buffers in the heap. */
    (void)pool_threads();
    (void)anon_kib();
    int arenas0 = SANITIZED ? 0 : count_arenas();
    int threads0 = count_threads();
    long anon0 = anon_kib();
    fm_pool *p = new_pool(CAP, &o);

    run_cycle(p);
    int threads1 = count_threads();
    long anon1 = anon_kib();
    int arenas1 = SANITIZED ? 0 : count_arenas();
    uint64_t created1 = pool_stats(p).threads_created;
    run_cycle(p);
    int threads2 = count_threads();
    long anon2 = anon_kib();
    int arenas2 = SANITIZED ? 0 : count_arenas();
    uint64_t created2 = pool_stats(p).threads_created;

    printf("  workers started %llu + %llu, threads %d -> %d -> %d, anonymous KiB %ld -> %ld -> "
           "%ld (%+ld, %+ld), arenas %d -> %d -> %d%s\n",
           (unsigned long long)created1, (unsigned long long)(created2 - created1), threads0,
           threads1, threads2, anon0, anon1, anon2, anon1 - anon0, anon2 - anon1, arenas0,
           arenas1, arenas2, SANITIZED ? " (memory and arenas not judged under a sanitizer)" : "");
    /* Every burst started CAP workers: the last one's had all expired. */
    FM_CHECK(created1 >= (uint64_t)CAP * BURSTS && created2 - created1 >= (uint64_t)CAP * BURSTS);
    /* The maintenance thread; under TSan perhaps one of its runtime's too. */
    FM_CHECK(threads1 >= threads0 + 1 && threads1 <= threads0 + 1 + FM_TEST_TSAN);
    FM_CHECK_EQ(threads2, threads1);
    if (!SANITIZED) {
        FM_CHECK(arenas1 <= arenas0 + 1);
        FM_CHECK_EQ(arenas2, arenas1);
        FM_CHECK(anon1 - anon0 <= FIRST_CYCLE_KIB);
        FM_CHECK(anon2 - anon1 <= SECOND_CYCLE_KIB);
    }
    fm_pool_destroy(p);
}

FM_TEST(handoff_bursts_leave_no_thread_arena_or_memory) { bursts_case(0); }
FM_TEST(queue_bursts_leave_no_thread_arena_or_memory) { bursts_case(1024); }

FM_TEST_MAIN()
