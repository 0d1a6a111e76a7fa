/* formica: diagnostics for worker pools.
 *
 *   fm_pool_dump        one line per busy worker (task function by name, its
 *                       argument, how long it has run), then the counters
 *   fm_pool_busy_tasks  the same as data
 *   slow-task watchdog  fm_pool_opts.slow_task_ns / on_slow_task: a callback
 *                       once for each task that runs longer than the threshold
 *   fm_pool_stats_json  the counters of fm_pool_stats as one line of JSON
 *   fm_threads_live     threads formica has alive in the process (leak checks)
 *
 * Names come from dladdr: a function in a shared library or in an executable
 * linked with -rdynamic (CMake: ENABLE_EXPORTS) is named; a static function
 * shows as "<file>+0x<offset>".
 *
 * Durations: workers read no clock (their cost per task is two stores). A
 * task is timed from the first moment the watchdog or a dump saw it, so a
 * duration is a lower bound; with the watchdog on, the pool is looked at
 * every quarter threshold while a worker is busy, so durations are then at
 * most that much short, and a slow task is reported between 1 and 1.25 times
 * the threshold after it started (plus the coarse clock's ~4 ms). Without the
 * watchdog, the first dump that sees a task shows it at 0 s.
 *
 * | call                 | may run concurrently with    | cost                               |
 * |----------------------|------------------------------|------------------------------------|
 * | fm_pool_dump         | everything but destroy       | pool lock while it copies; writes after |
 * | fm_pool_busy_tasks   | everything but destroy       | pool lock while it copies          |
 * | fm_pool_stats_json   | everything but destroy       | as fm_pool_stats                   |
 * | fm_threads_live      | everything                   | one atomic load                    |
 *
 * The watchdog runs on the library's maintenance thread, only while the
 * pool has a busy worker. on_slow_task runs on that thread with no
 * lock of the pool held: it may call fm_pool_dump, fm_pool_stats or submit,
 * but not fm_pool_destroy of the same pool, and it should return promptly
 * (every pool's maintenance waits for it).
 */
#ifndef FORMICA_DIAG_H
#define FORMICA_DIAG_H

#include <stdio.h>

#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A task a worker is running. */
struct fm_task_info {
    fm_task_fn fn;
    void *arg;
    const char *symbol; /* fn's name from dladdr, or NULL if it has none */
    int64_t running_ns; /* at least this long (see Durations above) */
    unsigned worker;    /* the worker's number: its thread is "<name>-<worker>" */
};

/* Writes one line per busy worker, then one line of counters (the JSON of
 * fm_pool_stats_json), to out. 0, -EINVAL (NULL p or out), -ENOMEM, -EIO. */
FM_API int fm_pool_dump(const fm_pool *p, FILE *out);

/* Fills out[0 .. max-1] with tasks running now (the first max found, sorted
 * longest running first) and returns how many are running (may exceed max),
 * or -EINVAL. Counts as a sighting for the durations. */
FM_API int fm_pool_busy_tasks(const fm_pool *p, struct fm_task_info *out, int max);

/* Writes the counters of fm_pool_stats as one line of JSON (no newline), as
 * snprintf does: returns the length the full line needs; the line is
 * complete when that is < len. -EINVAL: NULL p, or NULL buf with len > 0. */
FM_API int fm_pool_stats_json(const fm_pool *p, char *buf, size_t len);

/* Threads started by formica and not yet joined: every pool's workers
 * (also those that exited and wait to be joined, a few ms) plus the
 * maintenance thread once started. After fm_pool_destroy returns, none of
 * that pool's threads is counted. */
FM_API int fm_threads_live(void);

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_DIAG_H */
