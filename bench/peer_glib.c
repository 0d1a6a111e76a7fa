/* Peer: GLib's GThreadPool (libglib2.0-dev), a shared (non-exclusive) pool
 * with max_threads = the workload's capacity, GLib's defaults otherwise.
 *
 * GThreadPool runs one function, given at creation, on each pushed pointer, and
 * has no "wait until every task ran" short of freeing the pool; so the pool
 * takes its function from the first submit (every submit of a run passes the
 * same one) and counts finished tasks for wait_all.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <glib.h>

#include "bench.h"
#include "peers.h"

struct glib_pool {
    GThreadPool *pool;
    fm_task_fn fn;
    int capacity;
    struct done_counter done;
};

static void glib_run(gpointer data, gpointer user_data)
{
    struct glib_pool *p = user_data;
    p->fn(data);
    done_counter_add(&p->done);
}

static int glib_create(const struct pool_config *cfg, void **pool)
{
    struct glib_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->capacity = cfg->capacity;
    done_counter_init(&p->done);
    *pool = p;
    return 0;
}

static int glib_submit(void *pool, fm_task_fn fn, void *arg)
{
    struct glib_pool *p = pool;
    if (p->pool == NULL) {
        p->fn = fn;
        GError *err = NULL;
        p->pool = g_thread_pool_new(glib_run, p, p->capacity, FALSE, &err);
        if (p->pool == NULL) {
            g_clear_error(&err);
            return -EAGAIN;
        }
    }
    if (fn != p->fn)
        return -EINVAL; /* one function per pool */
    p->done.submitted++;
    GError *err = NULL;
    if (!g_thread_pool_push(p->pool, arg, &err)) {
        p->done.submitted--;
        g_clear_error(&err);
        return -EAGAIN;
    }
    return 0;
}

static int glib_wait_all(void *pool)
{
    struct glib_pool *p = pool;
    done_counter_wait(&p->done);
    return 0;
}

static void glib_destroy(void *pool)
{
    struct glib_pool *p = pool;
    if (p->pool != NULL)
        g_thread_pool_free(p->pool, FALSE, TRUE);
    done_counter_destroy(&p->done);
    free(p);
}

const struct pool_system glib_pool_system = {glib_create, glib_submit, glib_wait_all,
                                             glib_destroy, NULL};
