/* Peer: libuv's uv_queue_work (libuv1-dev). libuv has one threadpool per
 * process, sized by UV_THREADPOOL_SIZE when it starts (default 4, at most 1024
 * in libuv 1.x: a larger capacity runs on 1024 threads). The pool sets it to
 * the workload's capacity before the first request, its defaults otherwise.
 *
 * Requests are queued from the loop's thread (the submitting thread) and
 * their completion callbacks run there too, in uv_run(), which returns once no
 * request is left: that is wait_all. Each request needs a uv_work_t that lives
 * until its completion callback; it is malloc'ed per task, as libuv's users do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "bench.h"
#include "peers.h"

struct libuv_pool {
    uv_loop_t loop;
};

struct libuv_work {
    uv_work_t req;
    fm_task_fn fn;
    void *arg;
};

static void libuv_work_cb(uv_work_t *req)
{
    struct libuv_work *w = req->data;
    w->fn(w->arg);
}

static void libuv_after_cb(uv_work_t *req, int status)
{
    (void)status;
    free(req->data);
}

static int libuv_create(const struct pool_config *cfg, void **pool)
{
    char size[16];
    snprintf(size, sizeof size, "%d", cfg->capacity);
    setenv("UV_THREADPOOL_SIZE", size, 1); /* read when the threadpool starts */
    struct libuv_pool *p = malloc(sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    int rc = uv_loop_init(&p->loop);
    if (rc != 0) {
        free(p);
        return rc; /* libuv's errors are negative errno values on Linux */
    }
    *pool = p;
    return 0;
}

static int libuv_submit(void *pool, fm_task_fn fn, void *arg)
{
    struct libuv_pool *p = pool;
    struct libuv_work *w = malloc(sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->req.data = w;
    w->fn = fn;
    w->arg = arg;
    int rc = uv_queue_work(&p->loop, &w->req, libuv_work_cb, libuv_after_cb);
    if (rc != 0)
        free(w);
    return rc;
}

static int libuv_wait_all(void *pool)
{
    struct libuv_pool *p = pool;
    return uv_run(&p->loop, UV_RUN_DEFAULT) < 0 ? -EIO : 0;
}

static void libuv_destroy(void *pool)
{
    struct libuv_pool *p = pool;
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    free(p);
}

const struct pool_system libuv_pool_system = {libuv_create, libuv_submit, libuv_wait_all,
                                              libuv_destroy, NULL};
