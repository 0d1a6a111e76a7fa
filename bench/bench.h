/* formica-bench: declarations shared by the harness, the workloads and the
 * systems under test.
 *
 * Layout:
 *   main.c            options, one child process per measurement, medians
 *   report.c          the table on stdout and the CSV file
 *   workloads.c       the list of every workload
 *   workloads_pool.c  the W1-W4 drivers (see docs/benchmarks.md)
 *   workloads_obj.c   the O1 drivers and the object systems
 *   systems.c         the pools: formica in its two modes, the baselines, the peers
 *   baseline_pools.c  the in-tree baselines: thread per task, mutex pool
 *   workloads_buf.c   the O2-O4 drivers (buffers)
 *   systems_buf.c     the buffer systems: formica's fm_bufpool, malloc
 *   peer_*.c, .cpp    the installed peers (GLib, libuv, OpenMP, oneTBB), each
 *                     built only when found
 *   workloads_alloc.c A1: heap allocations per operation (formica-bench-count)
 *   alloc_counter.c   the link-time malloc interposer of formica-bench-count
 *   charts.c          the gnuplot charts
 *   go/main.go        the Go peers (goroutines, a goroutine pool, sync.Pool)
 *
 * Helper programs: a system can be run by another executable, next to
 * formica-bench, instead of in a fork of it (struct bench_system's exec):
 * formica-bench-jemalloc, -mimalloc and -tcmalloc are these same sources linked
 * with that allocator, so that it never loads into formica's process;
 * formica-bench-count counts heap allocations for A1; formica-bench-go runs the
 * Go peers.
 *
 * The child protocol (forked or exec'd, every system speaks it):
 *   an exec'd child is started as
 *     HELPER --child WORKLOAD SYSTEM --fd N [--quick] [--params "k=v k=v ..."]
 *            [--series FILE]
 *   where --params holds the workload's sizes (struct workload's params) and
 *   --series, given to the first run only, names a file for a time series
 *   ("seconds rss_mb threads" lines) for workloads that sample one (W4).
 *   The child writes one line to fd N, in one write() of less than PIPE_BUF
 *   bytes, once its figures are taken:
 *     ok NAME=VALUE NAME=VALUE ...\n    (metric names of the workload; a
 *                                        metric left out is reported as "-")
 *     fail REASON\n
 *   and then tears down and exits; end-of-file on the pipe tells the parent it
 *   exited, and wait4() gives its peak RSS.
 */
#ifndef FORMICA_BENCH_H
#define FORMICA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <formica.h>

/* ---- systems under test ---- */

/* What a workload asks of every pool; each system uses what applies to it. */
struct pool_config {
    int capacity;          /* most worker threads */
    size_t queue_capacity; /* FIFO size, for formica's queue mode only */
    int64_t expiry_ns;     /* idle worker lifetime, formica only; 0 = its default */
};

/* A pool, or pool-like baseline, behind one interface. Errors are negative
 * errno values; -EAGAIN from submit means "out of threads, try again". */
struct pool_system {
    int (*create)(const struct pool_config *cfg, void **pool);
    int (*submit)(void *pool, fm_task_fn fn, void *arg);
    int (*wait_all)(void *pool); /* until every submitted task has returned */
    void (*destroy)(void *pool);
    /* For peers whose model is structured (a parallel region, an arena): runs
     * fn(arg) n times, submitted from this thread, and returns when all ran.
     * When set, the workloads use it instead of submit + wait_all. */
    int (*run_batch)(void *pool, fm_task_fn fn, void *arg, long n);
};

/* One column of a workload's table: a system and what drives it (a struct
 * pool_system for W1-W4; each workload family says what its impl is). */
struct bench_system {
    const char *name;
    bool is_formica;
    const void *impl;
    const char *skip; /* not built here: why, e.g. "install libuv1-dev (make bench-deps)" */
    const char *exec; /* run by this helper program (see the top), not by a fork */
};

/* The entry of a peer that was not found at build time. */
#define SKIPPED_SYSTEM(name, package) \
    {name, false, NULL, "install " package " (make bench-deps)", NULL}

/* The allocator peers of a malloc-based system impl: the same impl run inside
 * formica-bench-jemalloc, -mimalloc and -tcmalloc. */
#ifdef BENCH_HAVE_JEMALLOC
#define JEMALLOC_PEER(impl) {"jemalloc", false, impl, NULL, "formica-bench-jemalloc"}
#else
#define JEMALLOC_PEER(impl) SKIPPED_SYSTEM("jemalloc", "libjemalloc-dev")
#endif
#ifdef BENCH_HAVE_MIMALLOC
#define MIMALLOC_PEER(impl) {"mimalloc", false, impl, NULL, "formica-bench-mimalloc"}
#else
#define MIMALLOC_PEER(impl) SKIPPED_SYSTEM("mimalloc", "libmimalloc-dev")
#endif
#ifdef BENCH_HAVE_TCMALLOC
#define TCMALLOC_PEER(impl) {"tcmalloc", false, impl, NULL, "formica-bench-tcmalloc"}
#else
#define TCMALLOC_PEER(impl) SKIPPED_SYSTEM("tcmalloc", "libgoogle-perftools-dev")
#endif
#define ALLOCATOR_PEERS(impl) JEMALLOC_PEER(impl), MIMALLOC_PEER(impl), TCMALLOC_PEER(impl)

/* A system run by the Go program. */
#ifdef BENCH_HAVE_GO
#define GO_PEER(name) {name, false, NULL, NULL, "formica-bench-go"}
#else
#define GO_PEER(name) SKIPPED_SYSTEM(name, "golang-go")
#endif

/* The name of the running executable's own file, as in exec (main_*.c). */
extern const char bench_exe_name[];

/* The systems one workload compares. */
struct system_list {
    const struct bench_system *v;
    int n;
};

extern const struct system_list pool_systems;
extern const struct system_list pool_multi_systems; /* pool_systems + multipools (W1, W3) */

/* A buffer allocator behind one interface (O2-O4). get returns NULL on
 * failure; put takes what get returned. */
struct buf_system {
    int (*create)(void **pool); /* 0 or a negative errno */
    void *(*get)(void *pool, size_t size);
    void (*put)(void *pool, void *buf);
    void (*destroy)(void *pool);
    /* O2's timed loop (bench_o2_loop, systems_buf.c): false when a get failed. */
    bool (*o2_pairs)(void *pool, const uint32_t *sizes, long n);
};

/* The timed loops call each system's get and put directly, never through a
 * pointer: a loop is made per system from a template that takes them as
 * compile-time constants, so that every system, the per-thread free list
 * included, pays for its own work and nothing of the harness's. */
#define BENCH_INLINE static inline __attribute__((always_inline))

extern const struct system_list buf_systems;
extern const struct pool_system formica_handoff_system, formica_queue_system,
    thread_per_task_system, mutex_pool_system;

/* An object cache, or malloc/free, behind one interface (O1, A1). The loops
 * are made per system (workloads_obj.c): each calls the system's get and put
 * directly. */
struct obj_system {
    int (*create)(void **ctx);
    /* n pairs: get, write the object's first byte, put. false when a get
     * returned NULL. */
    bool (*pairs)(void *ctx, long n);
    /* O1h's two sides: n gets (each object written and passed on through
     * the ring, NULL included) and n puts of what the ring brings. produce
     * returns how many gets returned NULL. */
    long (*produce)(void *ctx, long n);
    void (*consume)(void *ctx, long n);
    void (*destroy)(void *ctx);
};
extern const struct obj_system formica_objpool_system, malloc_obj_system;

/* Baselines (baseline_pools.c). */
int mutex_pool_create(const struct pool_config *cfg, void **pool);
int mutex_pool_submit(void *pool, fm_task_fn fn, void *arg);
int mutex_pool_wait_all(void *pool);
void mutex_pool_destroy(void *pool);

int thread_per_task_create(const struct pool_config *cfg, void **pool);
int thread_per_task_submit(void *pool, fm_task_fn fn, void *arg);
int thread_per_task_wait_all(void *pool);
void thread_per_task_destroy(void *pool);

/* ---- workloads ---- */

#define BENCH_MAX_METRICS 8
#define BENCH_MAX_WORKLOADS 16
#define BENCH_MAX_SYSTEMS 16
#define BENCH_MAX_RUNS 101
#define BENCH_ERROR_LEN 160

enum metric_source {
    FROM_CHILD,  /* measured by the workload inside the child */
    FROM_RUSAGE, /* the child's peak RSS, read by the parent with wait4() */
};

struct metric {
    const char *name; /* CSV metric column, no commas */
    const char *unit;
    enum metric_source source;
    bool compare; /* lower is better: the table prints formica / best other */
};

/* What one child measured; it reaches the parent as one line of the child
 * protocol (see the top). */
struct run_result {
    bool ok;
    char error[BENCH_ERROR_LEN];
    double values[BENCH_MAX_METRICS]; /* indexed like the workload's metrics; NaN = not given */
};

struct workload {
    const char *id; /* "W1" */
    const char *title;
    int nmetrics;
    struct metric metrics[BENCH_MAX_METRICS];
    /* Runs one measurement of sys in the current (child) process. Fills *out and
     * calls bench_publish() once the figures are taken, before tearing down. */
    void (*run)(const struct bench_system *sys, struct run_result *out);
    /* One line saying what this run of the workload does (sizes depend on --quick). */
    void (*describe)(char *buf, size_t len);
    /* Runs once in the parent before any measurement, or NULL; it may print. */
    void (*prepare)(void);
    const struct system_list *systems; /* the columns of its table */
    /* Its sizes as "key=value ..." for an exec'd child that cannot read them
     * here (the Go program), or NULL. */
    void (*params)(char *buf, size_t len);
};

/* workloads.c: every workload, in table order. */
extern const struct workload *const bench_workloads[];
extern const int bench_workload_count;

/* Sets the workload sizes: full (docs/benchmarks.md) or quick (about 10x smaller). */
void workloads_configure(bool quick);
void pool_workloads_configure(bool quick); /* W1-W4 */
extern const struct workload workload_w1, workload_w2, workload_w3, workload_w4;
void obj_workloads_configure(bool quick); /* O1, O1s, O1h */
extern const struct workload workload_o1, workload_o1s, workload_o1h;
void alloc_workloads_configure(bool quick); /* A1 */
extern const struct workload workload_a1;

/* The file a workload that samples a time series writes to, or NULL (the
 * child's --series; set in the first run of each system only). */
extern const char *bench_series_path;

/* Marks the run failed with "what: strerror(-rc)"; keeps the first cause. */
void bench_fail(struct run_result *out, const char *what, int rc);
void buf_workloads_configure(bool quick); /* O2-O4 */
extern const struct workload workload_o2, workload_o3, workload_o4;

/* Sends the child's figures to the parent (main.c); later calls are ignored. */
void bench_publish(const struct run_result *result);

/* CLOCK_MONOTONIC in seconds. */
double monotonic_seconds(void);

/* The process's resident set in MB, exact: the Rss of /proc/self/smaps_rollup,
 * which walks the page tables (statm and stat read counters the kernel
 * batches per CPU, off by up to a few hundred KB here). Too slow to poll for a
 * time series; for the before/after figures. Falls back to statm. */
double resident_mb_exact(void);

/* ---- results and report ---- */

/* Medians of one (workload, system) over its runs. */
struct cell {
    const char *skipped; /* not built here: why (the package to install) */
    bool deselected;     /* left out by --systems: skipped, without a note */
    int runs_ok;
    int runs_failed;
    int runs_skipped; /* not run after a timeout */
    double value[BENCH_MAX_METRICS];
    char failure[BENCH_ERROR_LEN]; /* why the last failed run failed */
    char note[BENCH_ERROR_LEN];    /* a remark on runs that measured (e.g. teardown hung) */
};

/* cells[w][s]: bench_workloads[w] measured on its systems->v[s]. */
typedef struct cell cell_table[BENCH_MAX_WORKLOADS][BENCH_MAX_SYSTEMS];

/* The table: a header, then one block of rows per workload (each with its own
 * system columns), then the notes on failed runs. */
void report_header(FILE *out);
void report_workload(FILE *out, int w, cell_table cells);
void report_notes(FILE *out, const bool *selected, cell_table cells);
/* Writes the CSV of every selected workload; 0 or a negative errno. */
int report_csv(const char *path, const bool *selected, cell_table cells);

/* mkdir -p of the folder that will hold path; 0 or a negative errno. */
int bench_make_parent_dirs(const char *path);

/* Writes PNG charts next to the CSV in dir with gnuplot (a note if it is
 * missing). */
void charts_write(const char *dir, const bool *selected, cell_table cells);

#endif /* FORMICA_BENCH_H */
