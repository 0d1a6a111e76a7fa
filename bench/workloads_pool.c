/* The worker-pool workloads W1-W4 of docs/benchmarks.md, each run against one
 * system inside a child process of its own (see main.c).
 *
 * Timed part of W1-W3: creating the pool, submitting every task from this one
 * thread, and waiting until all of them returned. Creation is inside so that a
 * pool that starts its threads up front pays for them; destruction is outside
 * (the figures are published before it), but a hang there is still reported.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define NS_PER_S 1000000000L

enum {
    DEFAULT_QUEUE = 4096,         /* formica-queue's FIFO where the workload names none */
    W2_TASK_SLEEP_NS = 10000000,  /* 10 ms */
    W4_TASK_SLEEP_NS = 1000000,   /* 1 ms */
    W3_CALIBRATION_TASKS = 2000,  /* tasks run inline to measure the ideal */
    BENCH_OWN_THREADS = 2,        /* main + sampler: not the pool's threads */
    SAMPLE_PERIOD_NS = 10000000,  /* W4 sampler: every 10 ms */
    RETRY_SLEEP_NS = 1000000,     /* pause before retrying a submit that hit -EAGAIN */
};
static const double W3_TASK_CPU_S = 20e-6;
static const int64_t W4_EXPIRY_NS = 1000000000; /* 1 s, as the workload names it */
static const double W4_SETTLE_S = 1.5;         /* look again 1.5 s after the last burst */

/* Sizes of the W1-W3 batches. */
struct batch_size {
    long tasks;
    int capacity;
    size_t queue_capacity;
};

static struct batch_size w1, w2, w3;
static struct {
    int bursts;
    long tasks; /* per burst */
    int capacity;
    double interval_s; /* start of one burst to start of the next */
} w4;

/* W3's loop: iterations for ~20 us, and the single-thread CPU time of a task
 * as measured in the parent (copied into every child by fork). */
static struct {
    uint64_t iters;
    double cpu_per_task_s;
} cpu_task;

void pool_workloads_configure(bool quick)
{
    int div = quick ? 10 : 1;
    w1 = (struct batch_size){1000000 / div, 4, DEFAULT_QUEUE};
    /* W2's FIFO holds every task, so that a submit never waits on a full queue. */
    w2 = (struct batch_size){100000 / div, 10000 / div, quick ? 16384 : 131072};
    w3 = (struct batch_size){200000 / div, 2, DEFAULT_QUEUE};
    w4.bursts = quick ? 2 : 10;
    w4.tasks = 20000 / div;
    w4.capacity = 10000 / div;
    w4.interval_s = quick ? 0.5 : 1.5;
}

double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A "Name: N kB" line of /proc/self/smaps_rollup in MB, or -1. */
static double smaps_rollup_mb(const char *name)
{
    long kb = -1;
    char line[256], fmt[64];
    snprintf(fmt, sizeof fmt, "%s: %%ld kB", name);
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    while (f != NULL && kb < 0 && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, fmt, &kb) != 1)
            kb = -1;
    if (f != NULL)
        fclose(f);
    return kb >= 0 ? (double)kb / 1024.0 : -1;
}

double resident_mb_exact(void)
{
    double mb = smaps_rollup_mb("Rss");
    if (mb >= 0)
        return mb;
    FILE *f;
    long pages = 0, resident = 0;
    if ((f = fopen("/proc/self/statm", "r")) != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static double thread_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {ns / NS_PER_S, ns % NS_PER_S};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void sleep_until(double deadline_s)
{
    double left = deadline_s - monotonic_seconds();
    if (left > 0)
        sleep_ns((long)(left * 1e9));
}

/* ---- tasks ---- */

/* What every task of one run shares. */
struct task_group {
    atomic_long done;    /* tasks that returned: checked against the count submitted */
    long sleep_ns;       /* sleep_task */
    uint64_t burn_iters; /* burn_task */
    atomic_uint_fast64_t sink; /* burn results, so that the loop cannot be dropped */
};

static void noop_task(void *arg)
{
    struct task_group *g = arg;
    atomic_fetch_add(&g->done, 1);
}

static void sleep_task(void *arg)
{
    struct task_group *g = arg;
    sleep_ns(g->sleep_ns);
    atomic_fetch_add(&g->done, 1);
}

/* A serial chain of xorshift steps: each depends on the previous one, so the
 * compiler can neither vectorise it nor compute it in closed form. */
static uint64_t burn(uint64_t iters)
{
    uint64_t x = 88172645463325252u;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static void burn_task(void *arg)
{
    struct task_group *g = arg;
    atomic_fetch_xor_explicit(&g->sink, burn(g->burn_iters), memory_order_relaxed);
    atomic_fetch_add(&g->done, 1);
}

/* W3's prepare step: calibrates the loop and measures the ideal, once, in the
 * parent, so that every system's children run the very same tasks. */
static void calibrate_cpu_task(void)
{
    /* Cost of one iteration: the fastest of a few trials, since on a shared
     * machine the slow trials are the ones that were disturbed. */
    const uint64_t trial_iters = 1u << 20;
    struct task_group g = {.burn_iters = trial_iters};
    double best = INFINITY;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = thread_cpu_seconds();
        burn_task(&g);
        best = fmin(best, thread_cpu_seconds() - t0);
    }
    cpu_task.iters = (uint64_t)(W3_TASK_CPU_S / (best / (double)trial_iters));

    /* The ideal is measured, not assumed to be 20 us: run tasks inline, as a
     * worker would, and take their mean CPU time (best of a few batches, as above). */
    g.burn_iters = cpu_task.iters;
    cpu_task.cpu_per_task_s = INFINITY;
    for (int batch = 0; batch < 3; batch++) {
        double t0 = thread_cpu_seconds();
        for (int i = 0; i < W3_CALIBRATION_TASKS; i++)
            burn_task(&g);
        double per_task = (thread_cpu_seconds() - t0) / W3_CALIBRATION_TASKS;
        cpu_task.cpu_per_task_s = fmin(cpu_task.cpu_per_task_s, per_task);
    }

    printf("W3 calibration: %llu loop iterations per task; %d tasks run inline took %.2f us of CPU "
           "each (best of 3 batches); ideal for %ld tasks on %d workers = %.3f s\n",
           (unsigned long long)cpu_task.iters, W3_CALIBRATION_TASKS, cpu_task.cpu_per_task_s * 1e6,
           w3.tasks, w3.capacity, cpu_task.cpu_per_task_s * (double)w3.tasks / w3.capacity);
}

/* ---- submitting and waiting ---- */

/* Submits fn(arg) n times (a peer with run_batch also waits for them). A submit
 * that fails with -EAGAIN (a thread could not be started) is retried after a
 * pause and counted; any other error stops. */
static int submit_many(const struct pool_system *sys, void *pool, fm_task_fn fn, void *arg,
                       long n, long *retries)
{
    if (sys->run_batch != NULL)
        return sys->run_batch(pool, fn, arg, n); /* returns once all ran */
    for (long i = 0; i < n; i++) {
        int rc;
        while ((rc = sys->submit(pool, fn, arg)) == -EAGAIN) {
            ++*retries;
            sleep_ns(RETRY_SLEEP_NS);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Waits for the pool, then checks that every task really returned: a wait that
 * comes back early would otherwise pass for a fast run. */
static void wait_and_check(const struct pool_system *sys, void *pool, struct task_group *g,
                           long expected, struct run_result *out)
{
    int rc = sys->wait_all(pool);
    if (rc != 0) {
        bench_fail(out, "wait", rc);
        return;
    }
    long done = atomic_load(&g->done);
    if (done != expected && out->ok) {
        out->ok = false;
        snprintf(out->error, sizeof out->error, "wait returned with %ld of %ld tasks done", done,
                 expected);
    }
}

struct batch_outcome {
    double wall_s;
    long retries;
    /* Context switches and CPU time (user + system) of the whole process
     * (every thread, also those that ended) during the timed part: figures
     * the machine's load changes far less than the time. */
    double voluntary_cs, involuntary_cs, cpu_s;
};

static void process_usage(double *voluntary, double *involuntary, double *cpu_s)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *voluntary = (double)ru.ru_nvcsw;
    *involuntary = (double)ru.ru_nivcsw;
    *cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* The timed part of W1-W3. Returns the pool, to be destroyed by the caller once
 * the figures are published, or NULL if it could not be created. */
static void *run_batch(const struct pool_system *sys, const struct batch_size *size,
                       fm_task_fn fn, struct task_group *g, struct batch_outcome *res,
                       struct run_result *out)
{
    struct pool_config cfg = {size->capacity, size->queue_capacity, 0};
    res->retries = 0;
    double vcs0, ics0, cpu0;
    process_usage(&vcs0, &ics0, &cpu0);
    double t0 = monotonic_seconds();
    void *pool;
    int rc = sys->create(&cfg, &pool);
    if (rc != 0) {
        bench_fail(out, "create", rc);
        return NULL;
    }
    rc = submit_many(sys, pool, fn, g, size->tasks, &res->retries);
    if (rc != 0)
        bench_fail(out, "submit", rc);
    wait_and_check(sys, pool, g, size->tasks, out);
    res->wall_s = monotonic_seconds() - t0;
    process_usage(&res->voluntary_cs, &res->involuntary_cs, &res->cpu_s);
    res->voluntary_cs -= vcs0;
    res->involuntary_cs -= ics0;
    res->cpu_s -= cpu0;
    return pool;
}

/* ---- W1 tiny ---- */

enum { W1_NS_PER_TASK, W1_PEAK_RSS, W1_RETRIES, W1_VCS, W1_ICS, W1_NMETRICS };

static void run_w1(const struct bench_system *bs, struct run_result *out)
{
    const struct pool_system *sys = bs->impl;
    struct task_group g = {0};
    struct batch_outcome b;
    void *pool = run_batch(sys, &w1, noop_task, &g, &b, out);
    if (pool == NULL)
        return;
    out->values[W1_NS_PER_TASK] = b.wall_s * 1e9 / (double)w1.tasks;
    out->values[W1_RETRIES] = (double)b.retries;
    out->values[W1_VCS] = b.voluntary_cs / (double)w1.tasks;
    out->values[W1_ICS] = b.involuntary_cs / (double)w1.tasks;
    bench_publish(out);
    sys->destroy(pool);
}

static void describe_w1(char *buf, size_t len)
{
    snprintf(buf, len, "%ld no-op tasks (one atomic add each) from one thread, capacity %d",
             w1.tasks, w1.capacity);
}

/* ---- W2 sleep ---- */

enum { W2_WALL, W2_CPU_PER_TASK, W2_PEAK_RSS, W2_RETRIES, W2_VCS, W2_NMETRICS };

static void run_w2(const struct bench_system *bs, struct run_result *out)
{
    const struct pool_system *sys = bs->impl;
    struct task_group g = {.sleep_ns = W2_TASK_SLEEP_NS};
    struct batch_outcome b;
    void *pool = run_batch(sys, &w2, sleep_task, &g, &b, out);
    if (pool == NULL)
        return;
    out->values[W2_WALL] = b.wall_s;
    /* Each task's sleep takes its thread off the CPU and back (at least one
     * voluntary switch); the CPU time per task shows what that costs here. */
    out->values[W2_CPU_PER_TASK] = b.cpu_s * 1e6 / (double)w2.tasks;
    out->values[W2_RETRIES] = (double)b.retries;
    out->values[W2_VCS] = b.voluntary_cs / (double)w2.tasks;
    bench_publish(out);
    sys->destroy(pool);
}

static void describe_w2(char *buf, size_t len)
{
    snprintf(buf, len, "%ld tasks sleeping %d ms, capacity %d (formica-queue FIFO %zu); ideal %.2f s",
             w2.tasks, W2_TASK_SLEEP_NS / 1000000, w2.capacity, w2.queue_capacity,
             (double)w2.tasks / w2.capacity * W2_TASK_SLEEP_NS / 1e9);
}

/* ---- W3 cpu ---- */

enum {
    W3_WALL,
    W3_WALL_OVER_IDEAL,
    W3_CPU_OVER_TASKS,
    W3_PEAK_RSS,
    W3_RETRIES,
    W3_VCS,
    W3_ICS,
    W3_NMETRICS
};

static double w3_ideal_s(void)
{
    return cpu_task.cpu_per_task_s * (double)w3.tasks / w3.capacity;
}

static void run_w3(const struct bench_system *bs, struct run_result *out)
{
    const struct pool_system *sys = bs->impl;
    struct task_group g = {.burn_iters = cpu_task.iters};
    struct batch_outcome b;
    void *pool = run_batch(sys, &w3, burn_task, &g, &b, out);
    if (pool == NULL)
        return;
    out->values[W3_WALL] = b.wall_s;
    out->values[W3_WALL_OVER_IDEAL] = b.wall_s / w3_ideal_s();
    /* The process's CPU time over the tasks' own (calibrated): what the pool
     * spends besides the tasks, whatever share of the CPUs the machine's other
     * load left it; wall_over_ideal also counts that share. */
    out->values[W3_CPU_OVER_TASKS] = b.cpu_s / (cpu_task.cpu_per_task_s * (double)w3.tasks);
    out->values[W3_RETRIES] = (double)b.retries;
    out->values[W3_VCS] = b.voluntary_cs / (double)w3.tasks;
    out->values[W3_ICS] = b.involuntary_cs / (double)w3.tasks;
    bench_publish(out);
    sys->destroy(pool);
}

static void describe_w3(char *buf, size_t len)
{
    snprintf(buf, len, "%ld tasks burning ~%.0f us of CPU, capacity %d; ideal %.3f s", w3.tasks,
             W3_TASK_CPU_S * 1e6, w3.capacity, w3_ideal_s());
}

/* ---- W4 burst ---- */

enum {
    W4_PEAK_THREADS,
    W4_THREADS_AFTER,
    W4_RSS_AFTER,
    W4_RSS_BEFORE,
    W4_ANON_GROWTH,
    W4_SLOWEST_BURST,
    W4_PEAK_RSS,
    W4_RETRIES,
    W4_NMETRICS
};

struct proc_sample {
    long threads;
    double rss_mb;
};

/* Reads the thread count and resident set from /proc/self/stat. Its
 * num_threads field counts the same threads as the entries of /proc/self/task,
 * at the cost of one small read instead of listing a directory of up to
 * 10,000 entries every 10 ms, which would itself load the machine. */
static bool read_proc_sample(struct proc_sample *s)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields are counted from 1; the command name (field 2) may hold spaces, so
     * start after its closing parenthesis, at field 3. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    long threads = -1, rss_pages = -1;
    char *save = NULL;
    int field = 3;
    for (char *tok = strtok_r(p + 1, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 20)
            threads = atol(tok);
        else if (field == 24)
            rss_pages = atol(tok);
    }
    if (threads < 0 || rss_pages < 0)
        return false;
    s->threads = threads - BENCH_OWN_THREADS;
    s->rss_mb = (double)rss_pages * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
    return true;
}

/* Samples the process every 10 ms and keeps the highest thread count; every
 * 5th sample also goes to the series file ("seconds rss_mb threads"), if any. */
struct sampler {
    pthread_t thread;
    atomic_bool stop;
    long peak_threads; /* read by the main thread only after the join */
    FILE *series;
};

enum { SERIES_EVERY = 5 };

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double t0 = monotonic_seconds();
    for (long n = 0; !atomic_load(&s->stop); n++) {
        struct proc_sample now;
        bool ok = read_proc_sample(&now);
        if (ok && now.threads > s->peak_threads)
            s->peak_threads = now.threads;
        if (ok && s->series != NULL && n % SERIES_EVERY == 0)
            fprintf(s->series, "%.3f %.2f %ld\n", monotonic_seconds() - t0, now.rss_mb,
                    now.threads);
        next.tv_nsec += SAMPLE_PERIOD_NS;
        if (next.tv_nsec >= NS_PER_S) {
            next.tv_nsec -= NS_PER_S;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
    return NULL;
}

static int sampler_start(struct sampler *s)
{
    atomic_init(&s->stop, false);
    s->peak_threads = 0;
    s->series = bench_series_path != NULL ? fopen(bench_series_path, "w") : NULL;
    return -pthread_create(&s->thread, NULL, sampler_main, s);
}

static long sampler_stop(struct sampler *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    if (s->series != NULL)
        fclose(s->series);
    return s->peak_threads;
}

/* Runs the bursts on a schedule fixed from the first one's start, so that a slow
 * burst does not shift the later ones. Returns the slowest burst's seconds. */
static double run_bursts(const struct pool_system *sys, void *pool, struct task_group *g,
                         long *retries, struct run_result *out)
{
    double t0 = monotonic_seconds(), slowest = 0;
    for (int b = 0; b < w4.bursts && out->ok; b++) {
        sleep_until(t0 + b * w4.interval_s);
        double start = monotonic_seconds();
        int rc = submit_many(sys, pool, sleep_task, g, w4.tasks, retries);
        if (rc != 0)
            bench_fail(out, "submit", rc);
        wait_and_check(sys, pool, g, (long)(b + 1) * w4.tasks, out);
        slowest = fmax(slowest, monotonic_seconds() - start);
    }
    return slowest;
}

static void run_w4(const struct bench_system *bs, struct run_result *out)
{
    const struct pool_system *sys = bs->impl;
    struct pool_config cfg = {w4.capacity, DEFAULT_QUEUE, W4_EXPIRY_NS};
    void *pool;
    int rc = sys->create(&cfg, &pool);
    if (rc != 0) {
        bench_fail(out, "create", rc);
        return;
    }
    struct task_group g = {.sleep_ns = W4_TASK_SLEEP_NS};
    struct sampler smp;
    struct proc_sample after = {0};
    long retries = 0;
    if ((rc = sampler_start(&smp)) != 0) {
        bench_fail(out, "sampler thread", rc);
        sys->destroy(pool);
        return;
    }
    double rss_before = resident_mb_exact(), anon_before = smaps_rollup_mb("Anonymous");
    double slowest = run_bursts(sys, pool, &g, &retries, out);
    sleep_ns((long)(W4_SETTLE_S * 1e9));
    bool sampled = read_proc_sample(&after);
    double rss_after = resident_mb_exact(), anon_after = smaps_rollup_mb("Anonymous");
    long peak = sampler_stop(&smp);
    if (!sampled)
        bench_fail(out, "reading /proc/self/stat", -EIO);

    out->values[W4_PEAK_THREADS] = (double)peak;
    out->values[W4_THREADS_AFTER] = (double)after.threads;
    out->values[W4_RSS_AFTER] = rss_after;
    out->values[W4_RSS_BEFORE] = rss_before;
    /* The part of the growth that is memory of this process alone; the rest
     * is file pages (libc code first run during the bursts), shared and paid
     * once. */
    out->values[W4_ANON_GROWTH] = anon_before < 0 || anon_after < 0 ? NAN : anon_after - anon_before;
    out->values[W4_SLOWEST_BURST] = slowest * 1e3;
    out->values[W4_RETRIES] = (double)retries;
    bench_publish(out);
    sys->destroy(pool);
}

static void describe_w4(char *buf, size_t len)
{
    snprintf(buf, len,
             "%d bursts of %ld tasks sleeping %d ms, %.1f s apart, capacity %d, expiry %.0f s; "
             "threads exclude the bench's own %d",
             w4.bursts, w4.tasks, W4_TASK_SLEEP_NS / 1000000, w4.interval_s, w4.capacity,
             (double)W4_EXPIRY_NS / 1e9, BENCH_OWN_THREADS);
}

/* ---- sizes for the Go program (bench.h: params) ---- */

static void params_w1(char *buf, size_t len)
{
    snprintf(buf, len, "tasks=%ld capacity=%d", w1.tasks, w1.capacity);
}

static void params_w2(char *buf, size_t len)
{
    snprintf(buf, len, "tasks=%ld capacity=%d sleep_ns=%d", w2.tasks, w2.capacity,
             W2_TASK_SLEEP_NS);
}

static void params_w3(char *buf, size_t len)
{
    snprintf(buf, len, "tasks=%ld capacity=%d burn_iters=%llu calibration_tasks=%d", w3.tasks,
             w3.capacity, (unsigned long long)cpu_task.iters, W3_CALIBRATION_TASKS);
}

static void params_w4(char *buf, size_t len)
{
    snprintf(buf, len,
             "bursts=%d tasks=%ld capacity=%d sleep_ns=%d interval_ns=%.0f expiry_ns=%lld "
             "settle_ns=%.0f own_threads=%d",
             w4.bursts, w4.tasks, w4.capacity, W4_TASK_SLEEP_NS, w4.interval_s * 1e9,
             (long long)W4_EXPIRY_NS, W4_SETTLE_S * 1e9, BENCH_OWN_THREADS);
}

/* ---- the list ---- */

#define PEAK_RSS_METRIC {"peak_rss", "MB", FROM_RUSAGE, true}
#define RETRIES_METRIC {"submit_retries", "count", FROM_CHILD, true}
#define VCS_METRIC {"vol_cs_per_task", "count", FROM_CHILD, true}
#define ICS_METRIC {"invol_cs_per_task", "count", FROM_CHILD, true}

const struct workload workload_w1 = {"W1", "tiny", W1_NMETRICS,
     {[W1_NS_PER_TASK] = {"ns_per_task", "ns", FROM_CHILD, true},
      [W1_PEAK_RSS] = PEAK_RSS_METRIC,
      [W1_RETRIES] = RETRIES_METRIC,
      [W1_VCS] = VCS_METRIC,
      [W1_ICS] = ICS_METRIC},
     run_w1, describe_w1, NULL,
     &pool_multi_systems, params_w1};

const struct workload workload_w2 = {"W2", "sleep", W2_NMETRICS,
     {[W2_WALL] = {"wall", "s", FROM_CHILD, true},
      [W2_CPU_PER_TASK] = {"cpu_us_per_task", "us", FROM_CHILD, true},
      [W2_PEAK_RSS] = PEAK_RSS_METRIC,
      [W2_RETRIES] = RETRIES_METRIC,
      [W2_VCS] = VCS_METRIC},
     run_w2, describe_w2, NULL,
     &pool_systems, params_w2};

const struct workload workload_w3 = {"W3", "cpu", W3_NMETRICS,
     {[W3_WALL] = {"wall", "s", FROM_CHILD, true},
      [W3_WALL_OVER_IDEAL] = {"wall_over_ideal", "ratio", FROM_CHILD, true},
      [W3_CPU_OVER_TASKS] = {"cpu_over_tasks", "ratio", FROM_CHILD, true},
      [W3_PEAK_RSS] = PEAK_RSS_METRIC,
      [W3_RETRIES] = RETRIES_METRIC,
      [W3_VCS] = VCS_METRIC,
      [W3_ICS] = ICS_METRIC},
     run_w3, describe_w3, calibrate_cpu_task,
     &pool_multi_systems, params_w3};

const struct workload workload_w4 = {"W4", "burst", W4_NMETRICS,
     {[W4_PEAK_THREADS] = {"peak_threads", "threads", FROM_CHILD, true},
      [W4_THREADS_AFTER] = {"threads_after_idle", "threads", FROM_CHILD, true},
      [W4_RSS_AFTER] = {"rss_after_idle", "MB", FROM_CHILD, true},
      /* The starting point for rss_after_idle, not a score. */
      [W4_RSS_BEFORE] = {"rss_before", "MB", FROM_CHILD, false},
      [W4_ANON_GROWTH] = {"anon_growth_after_idle", "MB", FROM_CHILD, true},
      [W4_SLOWEST_BURST] = {"slowest_burst", "ms", FROM_CHILD, true},
      [W4_PEAK_RSS] = PEAK_RSS_METRIC,
      [W4_RETRIES] = RETRIES_METRIC},
     run_w4, describe_w4, NULL,
     &pool_systems, params_w4};
