/* Soak: a mixed load on every module for a set time, checking that nothing
 * accumulates.
 *
 * The load: submitter threads send bursts of tasks into a hand-off pool, a
 * queue-mode pool and a multipool, with timeouts now and then; a controller
 * tunes the hand-off pool, releases and reboots the queue pool and waits on
 * them; memory threads get and put buffers of every size class (some handed
 * to another thread to put) and objects, trim and clean up; tasks use the
 * pools too. Every thread pauses now and then for longer than the expiry and
 * decay times (200 ms), so workers exit and memory goes back while the load
 * goes on.
 *
 * The run is a warm-up (a quarter of the time, at most 60 s) and the main
 * phase, each followed by the same quiet checkpoint: the load threads are
 * joined, every pool is waited on, and the program waits (up to 30 s, a
 * guard against hangs only) until the workers have expired and the buffer
 * pool's cache has decayed. There it checks:
 *   - every task accepted ran (counted per pool; the pools' own counters agree);
 *   - the thread count is back to the baseline (main and maintenance threads);
 *   - RSS: the final checkpoint's at most the warm-up checkpoint's plus
 *     max(10 %, 4 MiB). What may legitimately differ between two quiet
 *     moments of the same load is the malloc heap's fragmentation (task
 *     arguments, objects) and the small-class chunks the buffer pool keeps
 *     while a block in them is cached; neither grows with time, so anything
 *     above that slack is a leak. Under ASan or TSan RSS is printed, not
 *     judged (their quarantine and shadow hold memory given back).
 * Prints one summary line; exits 1 on any failure.
 *
 *   soak [--seconds N]
 */
#include <errno.h>
#include <formica.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Under a sanitizer RSS is printed, not judged: ASan's quarantine and TSan's
 * shadow keep memory the program gave back. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SOAK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SOAK_SANITIZED 1
#endif
#endif
#ifndef SOAK_SANITIZED
#define SOAK_SANITIZED 0
#endif

#define NSUBMIT 2
#define NMEM 2
#define IDLE_NS 200000000 /* expiry, decay and cleanup interval */
#define MIB (1024.0 * 1024.0)

static _Atomic int failures;

#define SOAK_CHECK(c, ...)                                                               \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "soak: check failed: %s: ", #c);                             \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* ---- the process ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int nthreads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* xorshift64*: each thread its own. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* ---- the objects under load ---- */

struct counted {
    fm_pool *p;
    _Atomic uint64_t accepted, ran;
};

static struct counted handoff, queue;
static fm_multipool *multi;
static _Atomic uint64_t multi_accepted, multi_ran;
static fm_objpool *objs;
static fm_bufpool *bufs;
static _Atomic int stop;
static _Atomic uint64_t tasks_run_total; /* every task of the run */

/* A hand-over slot: buffers got by one memory thread, put by the other. */
#define NSLOTS 64
static _Atomic(void *) slots[NSLOTS];

static void *obj_new(void *ctx)
{
    return malloc(256);
}

/* A task: a little work on a buffer and an object of the pools. */
struct task_arg {
    _Atomic uint64_t *ran;
    uint32_t size;
};

static void task(void *arg)
{
    struct task_arg *a = arg;
    char *b = fm_bufpool_get(bufs, a->size);
    if (b) {
        memset(b, 1, a->size);
        fm_bufpool_put(bufs, b);
    }
    void *o = fm_objpool_get(objs);
    if (o)
        fm_objpool_put(objs, o);
    atomic_fetch_add_explicit(a->ran, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tasks_run_total, 1, memory_order_relaxed);
    free(a);
}

static int submit_to(struct counted *c, uint64_t *s, struct task_arg *a)
{
    a->ran = &c->ran;
    int rc = rnd(s) % 8 == 0 ? fm_pool_submit_timeout(c->p, task, a, 1000000)
                             : fm_pool_submit(c->p, task, a);
    SOAK_CHECK(rc == 0 || rc == -ESHUTDOWN || rc == -ETIMEDOUT, "submit returned %d", rc);
    if (rc == 0)
        atomic_fetch_add_explicit(&c->accepted, 1, memory_order_relaxed);
    return rc;
}

/* ---- load threads ---- */

/* Now and then a pause longer than the expiry and the decay. */
static void maybe_idle(uint64_t *s)
{
    if (rnd(s) % 16 == 0)
        sleep_ns(IDLE_NS * 2 + (int64_t)(rnd(s) % IDLE_NS * 3));
    else
        sleep_ns((int64_t)(rnd(s) % 5000000));
}

static void *submitter(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    while (!atomic_load(&stop)) {
        int burst = 100 + (int)(rnd(&s) % 2000);
        int target = (int)(rnd(&s) % 3);
        for (int i = 0; i < burst; i++) {
            struct task_arg *a = malloc(sizeof *a);
            if (!a)
                break;
            a->size = (uint32_t)(1 + rnd(&s) % 4096);
            int rc;
            if (target == 2) {
                a->ran = &multi_ran;
                rc = fm_multipool_submit(multi, task, a);
                SOAK_CHECK(rc == 0, "multipool submit returned %d", rc);
                if (rc == 0)
                    atomic_fetch_add_explicit(&multi_accepted, 1, memory_order_relaxed);
            } else {
                rc = submit_to(target ? &queue : &handoff, &s, a);
            }
            if (rc)
                free(a);
        }
        if (rnd(&s) % 4 == 0)
            fm_pool_wait(target == 1 ? queue.p : handoff.p, FM_FOREVER);
        maybe_idle(&s);
    }
    return NULL;
}

static void *controller(void *arg)
{
    uint64_t s = 0x1234567;
    while (!atomic_load(&stop)) {
        switch (rnd(&s) % 4) {
        case 0:
            SOAK_CHECK(fm_pool_tune(handoff.p, 2 + (int)(rnd(&s) % 15)) == 0, "tune");
            break;
        case 1: /* a release cycle: submitters meanwhile get -ESHUTDOWN */
            SOAK_CHECK(fm_pool_release_timeout(queue.p, FM_FOREVER) == 0, "release_timeout");
            sleep_ns(1000000);
            SOAK_CHECK(fm_pool_reboot(queue.p) == 0, "reboot");
            break;
        case 2:
            SOAK_CHECK(fm_pool_wait(queue.p, FM_FOREVER) == 0, "wait");
            break;
        default:
            SOAK_CHECK(fm_multipool_tune(multi, 1 + (int)(rnd(&s) % 4)) == 0, "multipool tune");
            break;
        }
        maybe_idle(&s);
        sleep_ns(50000000);
    }
    return arg;
}

/* Sizes spread over the classes: mostly small, now and then up to 1 MiB,
 * rarely above max_size (a direct mapping). */
static size_t buf_size(uint64_t *s)
{
    uint64_t r = rnd(s);
    if (r % 64 == 0)
        return (size_t)(4 << 20) + r % (2 << 20);
    return (size_t)(r >> 8) % ((size_t)1 << (6 + r % 15));
}

#define NHELD 32

static void *memory(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0xD1B54A32D192ED03ULL + 7;
    char *held[NHELD] = {0};
    size_t sizes[NHELD] = {0};
    void *objs_held[8] = {0};
    while (!atomic_load(&stop)) {
        for (int round = 0; round < 200; round++) {
            int i = (int)(rnd(&s) % NHELD);
            if (held[i]) {
                if (held[i][0] != (char)sizes[i] || held[i][sizes[i] - 1] != (char)sizes[i])
                    SOAK_CHECK(0, "buffer %p changed while held", (void *)held[i]);
                /* a quarter go through a slot: the buffer left there before is put */
                if (rnd(&s) % 4 == 0)
                    fm_bufpool_put(bufs, atomic_exchange(&slots[i % NSLOTS], held[i]));
                else
                    fm_bufpool_put(bufs, held[i]);
                held[i] = NULL;
            } else {
                sizes[i] = buf_size(&s) + 1;
                held[i] = fm_bufpool_get(bufs, sizes[i]);
                SOAK_CHECK(held[i] != NULL, "get of %zu bytes failed", sizes[i]);
                if (held[i])
                    memset(held[i], (char)sizes[i], sizes[i]);
            }
            int j = (int)(rnd(&s) % 8);
            if (objs_held[j]) {
                fm_objpool_put(objs, objs_held[j]);
                objs_held[j] = NULL;
            } else {
                objs_held[j] = fm_objpool_get(objs);
            }
        }
        if (rnd(&s) % 32 == 0)
            fm_bufpool_trim(bufs);
        if (rnd(&s) % 32 == 0)
            fm_objpool_cleanup(objs);
        if (rnd(&s) % 8 == 0) { /* a quiet spell: nothing held */
            for (int i = 0; i < NHELD; i++) {
                fm_bufpool_put(bufs, held[i]);
                held[i] = NULL;
            }
        }
        maybe_idle(&s);
    }
    for (int i = 0; i < NHELD; i++)
        fm_bufpool_put(bufs, held[i]);
    for (int j = 0; j < 8; j++)
        fm_objpool_put(objs, objs_held[j]);
    return NULL;
}

/* ---- phases and checkpoints ---- */

struct sample {
    long rss_kib;
    int threads;
};

static struct sample peak;

static void sample_now(void)
{
    struct sample s = {rss_kib(), nthreads()};
    if (s.rss_kib > peak.rss_kib)
        peak.rss_kib = s.rss_kib;
    if (s.threads > peak.threads)
        peak.threads = s.threads;
}

/* Runs the load for the given time, sampling every second. */
static void run_phase(double seconds)
{
    pthread_t t[NSUBMIT + NMEM + 1];
    int n = 0;
    atomic_store(&stop, 0);
    for (int i = 0; i < NSUBMIT; i++)
        pthread_create(&t[n++], NULL, submitter, (void *)(uintptr_t)(i + 1)); /* a seed each */
    for (int i = 0; i < NMEM; i++)
        pthread_create(&t[n++], NULL, memory, (void *)(uintptr_t)(NSUBMIT + i + 1));
    pthread_create(&t[n++], NULL, controller, NULL);
    int64_t end = now_ns() + (int64_t)(seconds * 1e9);
    while (now_ns() < end) {
        sleep_ns(1000000000);
        sample_now();
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NSLOTS; i++)
        fm_bufpool_put(bufs, atomic_exchange(&slots[i], NULL));
}

static void check_counts(const char *name, fm_pool *p, uint64_t accepted, uint64_t ran)
{
    SOAK_CHECK(accepted == ran, "%s: %llu tasks accepted, %llu ran", name,
               (unsigned long long)accepted, (unsigned long long)ran);
    struct fm_pool_stats st;
    fm_pool_stats(p, &st);
    SOAK_CHECK(st.submitted == st.completed, "%s: pool counted %llu submitted, %llu completed",
               name, (unsigned long long)st.submitted, (unsigned long long)st.completed);
}

/* The quiet checkpoint: every task done, workers expired, cache decayed. */
static struct sample checkpoint(int baseline_threads)
{
    SOAK_CHECK(fm_pool_wait(handoff.p, FM_FOREVER) == 0, "wait");
    SOAK_CHECK(fm_pool_wait(queue.p, FM_FOREVER) == 0, "wait");
    for (int i = 0; i < fm_multipool_npools(multi); i++)
        SOAK_CHECK(fm_pool_wait(fm_multipool_pool(multi, i), FM_FOREVER) == 0, "wait");
    check_counts("hand-off pool", handoff.p, atomic_load(&handoff.accepted), atomic_load(&handoff.ran));
    check_counts("queue pool", queue.p, atomic_load(&queue.accepted), atomic_load(&queue.ran));
    SOAK_CHECK(atomic_load(&multi_accepted) == atomic_load(&multi_ran),
               "multipool: %llu accepted, %llu ran", (unsigned long long)multi_accepted,
               (unsigned long long)multi_ran);
    /* Waits for expiry and decay (a few hundred ms); the limit only stops a hang. */
    struct fm_bufpool_stats bs;
    int64_t limit = now_ns() + 30000000000LL;
    int threads;
    do {
        sleep_ns(100000000);
        fm_bufpool_stats(bufs, &bs);
        threads = nthreads();
    } while ((threads > baseline_threads || fm_threads_live() > 1 || bs.bytes_cached > 0) &&
             now_ns() < limit);
    SOAK_CHECK(threads == baseline_threads, "%d threads after the idle time, baseline %d",
               threads, baseline_threads);
    SOAK_CHECK(fm_threads_live() == 1, "fm_threads_live %d (the maintenance thread only)",
               fm_threads_live());
    SOAK_CHECK(bs.bytes_cached == 0 && bs.bytes_live == 0,
               "buffer pool: %zu bytes cached, %zu live after the idle time", bs.bytes_cached,
               bs.bytes_live);
    return (struct sample){rss_kib(), threads};
}

/* Stores its thread id in *arg. */
static void *note_tid(void *arg)
{
    *(pid_t *)arg = gettid();
    return NULL;
}

/* Waits (at most 5 s) until the thread tid has left /proc/self/task: a joined
 * thread's entry may outlive pthread_join for a moment. */
static void wait_task_gone(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    int64_t limit = now_ns() + 5000000000;
    while (access(path, F_OK) == 0 && now_ns() < limit)
        sleep_ns(1000000);
}

static void setup(void)
{
    fm_pool_opts o = {.expiry_ns = IDLE_NS, .name = "soak-h"};
    fm_pool_opts q = {.expiry_ns = IDLE_NS, .queue_capacity = 1024, .name = "soak-q"};
    fm_pool_opts m = {.expiry_ns = IDLE_NS, .queue_capacity = 256, .name = "soak-m"};
    fm_objpool_opts oo = {.new_fn = obj_new, .cleanup_interval_ns = IDLE_NS};
    fm_bufpool_opts bo = {.decay_ns = IDLE_NS, .cache_limit = 64 << 20};
    if (fm_pool_new(&handoff.p, 8, &o) || fm_pool_new(&queue.p, 4, &q) ||
        fm_multipool_new(&multi, 2, 3, FM_LB_LEAST_TASKS, &m) || fm_objpool_new(&objs, &oo) ||
        fm_bufpool_new(&bufs, &bo)) {
        fprintf(stderr, "soak: could not create the pools\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    double seconds = 60;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
    if (seconds < 4) {
        fprintf(stderr, "usage: soak [--seconds N], N >= 4\n");
        return 2;
    }
    double warmup = seconds / 4 < 60 ? seconds / 4 : 60;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int64_t start = now_ns();
    /* The baseline: this thread and, once anything is created, the library's
     * maintenance thread. A first thread, started and joined, has the
     * runtime start whatever helper thread it keeps (TSan has one). */
    pthread_t first;
    pid_t first_tid = 0;
    if (pthread_create(&first, NULL, note_tid, &first_tid) == 0) {
        pthread_join(first, NULL);
        wait_task_gone(first_tid);
    }
    int baseline = nthreads() + 1;
    setup();

    run_phase(warmup);
    struct sample warm = checkpoint(baseline);
    printf("soak: warm-up %.0f s: RSS %.1f MiB, %d threads at rest\n", warmup,
           (double)warm.rss_kib / 1024.0, warm.threads);
    run_phase(seconds - warmup);
    struct sample fin = checkpoint(baseline);

    long slack = warm.rss_kib / 10 > 4096 ? warm.rss_kib / 10 : 4096;
    if (!SOAK_SANITIZED)
        SOAK_CHECK(fin.rss_kib <= warm.rss_kib + slack,
                   "RSS at rest grew from %ld KiB to %ld KiB (bound +%ld KiB)", warm.rss_kib,
                   fin.rss_kib, slack);
    fm_pool_destroy(handoff.p);
    fm_pool_destroy(queue.p);
    fm_multipool_destroy(multi);
    fm_objpool_destroy(objs);
    fm_bufpool_destroy(bufs);
    printf("soak: %.0f s, %llu tasks run, RSS peak %.1f MiB, at rest %.1f -> %.1f MiB "
           "(bound +%.1f MiB%s), threads peak %d, at rest %d (baseline %d): %s\n",
           (double)(now_ns() - start) / 1e9, (unsigned long long)atomic_load(&tasks_run_total),
           (double)peak.rss_kib / 1024.0, (double)warm.rss_kib / 1024.0,
           (double)fin.rss_kib / 1024.0, (double)slack / 1024.0,
           SOAK_SANITIZED ? ", not judged under a sanitizer" : "", peak.threads, fin.threads, baseline,
           failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
