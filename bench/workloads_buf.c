/* The buffer workloads O2-O4 of docs/benchmarks.md, each run against one
 * system inside a child process of its own (see main.c).
 *
 * O2: one thread, get/put pairs of log-uniform 10 KB..3 MB buffers (sizes
 * drawn before the clock starts), touching the first and last byte.
 * O3: after a warm-up of O2 pairs, a burst of log-uniform 100 KB..3 MB
 * buffers (2 GiB, every page touched), all put back in a shuffled order, then
 * 2 s idle with no call into the system. O4: the same, with every 100th
 * buffer of the shuffled order still live through the idle period.
 *
 * O3 and O4 sample the resident set every 50 ms from a thread; each run
 * leaves the series in bench/results/<id>_rss_<system>.dat (when that
 * directory exists) and, if gnuplot is installed, redraws
 * bench/results/<id>_rss.png from the series of every system.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MB (1024.0 * 1024.0)
#define RESULTS_DIR "bench/results"

enum {
    SAMPLE_PERIOD_MS = 50,
    MAX_SAMPLES = 4096, /* 200 s at 50 ms: far beyond a run's length */
    O4_KEEP_EVERY = 100,
    PAGE = 4096,
};

static struct {
    long pairs;          /* O2 */
    long warmup;         /* O3/O4 warm-up pairs */
    size_t burst_bytes;  /* O3/O4 live at the peak */
    double idle_s;
} cfg;

void buf_workloads_configure(bool quick)
{
    cfg.pairs = quick ? 100000 : 1000000;
    cfg.warmup = quick ? 1000 : 10000;
    cfg.burst_bytes = quick ? (size_t)200 << 20 : (size_t)2 << 30;
    cfg.idle_s = 2.0;
}

/* ---- sizes ---- */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* log-uniform in [lo, hi) */
static size_t log_uniform(uint64_t *s, double lo, double hi)
{
    double u = (double)(xorshift(s) >> 11) / 9007199254740992.0;
    return (size_t)(lo * exp(u * log(hi / lo)));
}

static void fail(struct run_result *out, const char *what)
{
    if (!out->ok)
        return;
    out->ok = false;
    snprintf(out->error, sizeof out->error, "%s", what);
}

/* false (after saying why) when the system could not be created */
static bool create(const struct buf_system *sys, void **pool, struct run_result *out)
{
    *pool = NULL;
    if (sys->create(pool) == 0)
        return true;
    fail(out, "create failed");
    return false;
}

static uint32_t *o2_sizes(long n)
{
    uint32_t *v = malloc((size_t)n * sizeof *v);
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (long i = 0; v && i < n; i++)
        v[i] = (uint32_t)log_uniform(&seed, 10e3, 3e6);
    return v;
}

/* ---- O2 ---- */

enum { O2_NS_PER_PAIR, O2_PEAK_RSS, O2_NMETRICS };

static void run_o2(const struct bench_system *bs, struct run_result *out)
{
    const struct buf_system *sys = bs->impl;
    uint32_t *sizes = o2_sizes(cfg.pairs);
    void *pool;
    if (!sizes)
        fail(out, "no memory for the sizes");
    if (!sizes || !create(sys, &pool, out))
        return;
    double t0 = monotonic_seconds();
    bool ok = sys->o2_pairs(pool, sizes, cfg.pairs);
    double wall = monotonic_seconds() - t0;
    if (!ok)
        fail(out, "get failed");
    out->values[O2_NS_PER_PAIR] = wall * 1e9 / (double)cfg.pairs;
    bench_publish(out);
    sys->destroy(pool);
    free(sizes);
}

static void describe_o2(char *buf, size_t len)
{
    snprintf(buf, len,
             "%ld get/put pairs, 1 thread, log-uniform 10 KB..3 MB (drawn up front), first and "
             "last byte touched",
             cfg.pairs);
}

/* ---- RSS over time ---- */

static double rss_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / MB;
}

struct rss_sampler {
    pthread_t thread;
    atomic_bool stop;
    double t0;
    int n;
    double t[MAX_SAMPLES], mb[MAX_SAMPLES]; /* read by the main thread after the join */
};

static void *sampler_main(void *arg)
{
    struct rss_sampler *s = arg;
    struct timespec period = {0, SAMPLE_PERIOD_MS * 1000000L};
    while (!atomic_load(&s->stop) && s->n < MAX_SAMPLES) {
        s->t[s->n] = monotonic_seconds() - s->t0;
        s->mb[s->n] = rss_mb();
        s->n++;
        nanosleep(&period, NULL);
    }
    return NULL;
}

static bool have_gnuplot(void)
{
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/* Redraws RESULTS_DIR/<id>_rss.png from the series of every system. */
static void plot_series(const char *id, const char *title)
{
    FILE *g = popen("gnuplot", "w");
    if (!g)
        return;
    size_t prefix = strlen(RESULTS_DIR "/") + strlen(id) + strlen("_rss_");
    fprintf(g,
            "set terminal pngcairo size 900,450\n"
            "set output '" RESULTS_DIR "/%s_rss.png'\n"
            "set title '%s %s: resident set over time'\n"
            "set xlabel 'seconds since the burst began'\n"
            "set ylabel 'RSS (MB)'\n"
            "set grid\n"
            "set key top right\n"
            "files = system('ls " RESULTS_DIR "/%s_rss_*.dat')\n"
            "plot for [f in files] f using 1:2 with lines lw 2 title f[%zu:strlen(f) - 4]\n",
            id, id, title, id, prefix + 1);
    pclose(g);
}

/* Writes the series for this system and redraws the chart. Runs after the
 * figures are published: never measured. */
static void save_series(const struct workload *w, const char *system,
                        const struct rss_sampler *s)
{
    struct stat st;
    if (stat(RESULTS_DIR, &st) != 0 || !S_ISDIR(st.st_mode))
        return; /* not run from the source tree */
    char path[256];
    snprintf(path, sizeof path, RESULTS_DIR "/%s_rss_%s.dat", w->id, system);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "# %s on %s: seconds since the burst began, RSS in MB\n", w->id, system);
    for (int i = 0; i < s->n; i++)
        fprintf(f, "%.3f %.1f\n", s->t[i], s->mb[i]);
    fclose(f);
    if (have_gnuplot())
        plot_series(w->id, w->title);
}

/* The parent, once before O3's and O4's runs. */
static void note_gnuplot(void)
{
    if (!have_gnuplot())
        printf("gnuplot is not installed: the RSS charts are skipped; the series are left in "
               RESULTS_DIR "/O3_rss_*.dat and O4_rss_*.dat\n");
}

/* ---- O3 and O4 ---- */

enum { B_RSS_BEFORE, B_RSS_PEAK, B_RSS_AFTER, B_AFTER_MINUS_LIVE, B_LIVE, B_PEAK_RSS, B_NMETRICS };

struct burst {
    unsigned char **buf;
    size_t *size;
    long n;
    size_t live; /* bytes the program still holds after the put-back */
};

/* Draws the burst's sizes (fixed seed) until they add up to burst_bytes. */
static bool burst_plan(struct burst *b)
{
    long cap = (long)(cfg.burst_bytes / 100000) + 1;
    b->buf = calloc((size_t)cap, sizeof *b->buf);
    b->size = calloc((size_t)cap, sizeof *b->size);
    if (!b->buf || !b->size)
        return false;
    uint64_t seed = 0x2545f4914f6cdd1du;
    size_t total = 0;
    for (b->n = 0; total < cfg.burst_bytes && b->n < cap; b->n++) {
        b->size[b->n] = log_uniform(&seed, 100e3, 3e6);
        total += b->size[b->n];
    }
    return true;
}

/* Gets every buffer of the burst and touches every page of it. */
static bool burst_fill(const struct buf_system *sys, void *pool, struct burst *b)
{
    for (long i = 0; i < b->n; i++) {
        b->buf[i] = sys->get(pool, b->size[i]);
        if (!b->buf[i])
            return false;
        for (size_t off = 0; off < b->size[i]; off += PAGE)
            b->buf[i][off] = 1;
        b->buf[i][b->size[i] - 1] = 1;
    }
    return true;
}

/* Puts the burst back in a shuffled order (fixed seed), keeping every
 * keep_every-th buffer of that order live (0: none). */
static void burst_release(const struct buf_system *sys, void *pool, struct burst *b,
                          int keep_every)
{
    uint64_t seed = 0x94d049bb133111ebu;
    for (long i = b->n - 1; i > 0; i--) { /* Fisher-Yates */
        long j = (long)(xorshift(&seed) % (uint64_t)(i + 1));
        unsigned char *tb = b->buf[i];
        size_t ts = b->size[i];
        b->buf[i] = b->buf[j], b->size[i] = b->size[j];
        b->buf[j] = tb, b->size[j] = ts;
    }
    b->live = 0;
    for (long i = 0; i < b->n; i++) {
        if (keep_every && i % keep_every == keep_every - 1) {
            b->live += b->size[i];
            continue;
        }
        sys->put(pool, b->buf[i]);
        b->buf[i] = NULL;
    }
}

static void burst_free(const struct buf_system *sys, void *pool, struct burst *b)
{
    for (long i = 0; i < b->n; i++)
        if (b->buf[i])
            sys->put(pool, b->buf[i]);
    free(b->buf);
    free(b->size);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void run_burst(const struct workload *w, const struct bench_system *bs, int keep_every,
                      struct run_result *out)
{
    const struct buf_system *sys = bs->impl;
    static struct rss_sampler smp;
    struct burst b = {0};
    long nwarm = cfg.warmup; /* one count for the sizes and the pairs */
    uint32_t *warm = o2_sizes(nwarm);
    void *pool;
    bool planned = warm && burst_plan(&b);
    if (!planned)
        fail(out, "no memory for the plan");
    if (!planned || !out->ok || !create(sys, &pool, out)) {
        burst_free(sys, NULL, &b); /* nothing got yet: frees the plan only */
        free(warm);
        return;
    }
    if (!sys->o2_pairs(pool, warm, nwarm))
        fail(out, "warm-up get failed");
    smp.t0 = monotonic_seconds();
    if (out->ok && pthread_create(&smp.thread, NULL, sampler_main, &smp) != 0)
        fail(out, "sampler thread");
    if (!out->ok)
        goto done;
    out->values[B_RSS_BEFORE] = resident_mb_exact();
    if (!burst_fill(sys, pool, &b))
        fail(out, "burst get failed");
    out->values[B_RSS_PEAK] = rss_mb();
    burst_release(sys, pool, &b, keep_every);
    sleep_s(cfg.idle_s); /* no call into the system */
    out->values[B_RSS_AFTER] = resident_mb_exact();
    out->values[B_LIVE] = (double)b.live / MB;
    out->values[B_AFTER_MINUS_LIVE] = out->values[B_RSS_AFTER] - out->values[B_LIVE];
    atomic_store(&smp.stop, true);
    pthread_join(smp.thread, NULL);
    bench_publish(out);
    save_series(w, bs->name, &smp);
done:
    burst_free(sys, pool, &b);
    sys->destroy(pool);
    free(warm);
}

static void run_o3(const struct bench_system *bs, struct run_result *out)
{
    run_burst(&workload_o3, bs, 0, out);
}

static void run_o4(const struct bench_system *bs, struct run_result *out)
{
    run_burst(&workload_o4, bs, O4_KEEP_EVERY, out);
}

static void describe_burst(char *buf, size_t len, const char *extra)
{
    snprintf(buf, len,
             "warm-up %ld O2 pairs, then %.0f MiB live in log-uniform 100 KB..3 MB buffers (every "
             "page touched), all put back shuffled%s, %.0f s idle; RSS sampled every %d ms",
             cfg.warmup, (double)cfg.burst_bytes / MB, extra, cfg.idle_s, SAMPLE_PERIOD_MS);
}

static void describe_o3(char *buf, size_t len)
{
    describe_burst(buf, len, "");
}

static void describe_o4(char *buf, size_t len)
{
    describe_burst(buf, len, " but every 100th, which stays live");
}

/* ---- the list ---- */

#define PEAK_RSS_METRIC {"peak_rss", "MB", FROM_RUSAGE, true}

const struct workload workload_o2 = {"O2", "buffers", O2_NMETRICS,
     {[O2_NS_PER_PAIR] = {"ns_per_pair", "ns", FROM_CHILD, true},
      [O2_PEAK_RSS] = PEAK_RSS_METRIC},
     run_o2, describe_o2, NULL,
     &buf_systems, NULL};

/* The figures of O3 and O4; the baseline and the live bytes are context,
 * not scores. */
#define BURST_METRICS                                                                    \
    {[B_RSS_BEFORE] = {"rss_before", "MB", FROM_CHILD, false},                          \
     [B_RSS_PEAK] = {"rss_peak", "MB", FROM_CHILD, true},                               \
     [B_RSS_AFTER] = {"rss_after_idle", "MB", FROM_CHILD, true},                        \
     [B_AFTER_MINUS_LIVE] = {"rss_after_idle_minus_live", "MB", FROM_CHILD, true},      \
     [B_LIVE] = {"live", "MB", FROM_CHILD, false},                                      \
     [B_PEAK_RSS] = PEAK_RSS_METRIC}

const struct workload workload_o3 = {"O3", "burst", B_NMETRICS, BURST_METRICS,
     run_o3, describe_o3, note_gnuplot,
     &buf_systems, NULL};

const struct workload workload_o4 = {"O4", "fragmented burst", B_NMETRICS, BURST_METRICS,
     run_o4, describe_o4, note_gnuplot,
     &buf_systems, NULL};
