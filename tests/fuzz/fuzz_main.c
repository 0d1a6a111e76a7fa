/* The API fuzzer's entry point: decodes an input into the shared objects and
 * one op stream per thread, runs the streams on threads of their own, then
 * destroys everything and checks the totals (see fuzz.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define FZ_HDR 25 /* thread count, then the shared pool's, objpool's and bufpool's options */

void fz_fail(const char *file, int line, const char *what, long long a, long long b)
{
    fprintf(stderr, "fuzz check failed at %s:%d: %s (%lld, %lld)\n", file, line, what, a, b);
    abort();
}

int fz_rc_in(int rc, const int *set, int n)
{
    for (int i = 0; i < n; i++)
        if (set[i] == rc)
            return 1;
    return 0;
}

size_t fz_json_len(uint8_t byte, size_t cap)
{
    return byte % 2 ? cap : byte % 64;
}

void fz_json_check(int n, const char *line, size_t len, size_t cap)
{
    FZ_CHECK(n > 0 && (size_t)n < cap); /* the line never needs the whole buffer */
    if (len)
        FZ_CHECK_EQ(strlen(line), (size_t)n < len ? (size_t)n : len - 1);
}

/* ---- the live set: no pointer is handed out twice at once ---- */

void fz_live_add(struct fz_world *w, void *ptr)
{
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->nlive; i++)
        FZ_CHECK(w->live[i] != ptr); /* handed out while another holder has it */
    FZ_CHECK(w->nlive < (int)(sizeof w->live / sizeof *w->live));
    w->live[w->nlive++] = ptr;
    pthread_mutex_unlock(&w->lock);
}

void fz_live_remove(struct fz_world *w, void *ptr)
{
    pthread_mutex_lock(&w->lock);
    int i = 0;
    while (i < w->nlive && w->live[i] != ptr)
        i++;
    FZ_CHECK(i < w->nlive);
    w->live[i] = w->live[--w->nlive];
    pthread_mutex_unlock(&w->lock);
}

/* ---- threads ---- */

/* FUZZ_TRACE=1 in the environment prints each op as it starts (to replay a
 * crash by hand). */
static int fz_trace = -1;

static void *fz_thread_run(void *arg)
{
    struct fz_thread *t = arg;
    for (int i = 0; i < t->nops; i++) {
        const uint8_t *r = t->ops[i];
        if (fz_trace)
            fprintf(stderr, "thread %d op %d: %s %u, bytes %02x %02x %02x %02x %02x %02x %02x\n",
                    t->id, i, r[0] & 1 ? "mem" : "pool", (r[0] >> 1) % (r[0] & 1 ? 16 : 24),
                    r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        if (r[0] & 1)
            fz_mem_op(t, r);
        else
            fz_pool_op(t, r);
    }
    /* Everything the thread made goes, and what it holds goes back, from the
     * thread itself (its caches in the pools are flushed as it exits). */
    fz_pool_thread_end(t);
    fz_mem_thread_end(t);
    return NULL;
}

static void fz_split(struct fz_world *w, struct fz_thread *th, const uint8_t *data, size_t size)
{
    for (int i = 0; i < w->nthreads; i++) {
        memset(&th[i], 0, sizeof th[i]);
        th[i].w = w;
        th[i].id = i;
        w->threads[i] = &th[i];
    }
    size_t n = size / FZ_REC;
    if (n > FZ_MAX_OPS)
        n = FZ_MAX_OPS;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = data + i * FZ_REC;
        struct fz_thread *t = &th[(r[1] & 3) % w->nthreads];
        t->ops[t->nops++] = r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz_world w;
    static struct fz_thread th[FZ_MAX_THREADS];
    uint8_t hdr[FZ_HDR] = {0};
    memcpy(hdr, data, size < FZ_HDR ? size : FZ_HDR);

    if (fz_trace < 0)
        fz_trace = getenv("FUZZ_TRACE") != NULL;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.lock, NULL);
    w.nthreads = 1 + hdr[0] % FZ_MAX_THREADS;
    if (fz_trace)
        fprintf(stderr, "%d threads, header %02x %02x %02x %02x %02x %02x\n", w.nthreads, hdr[1],
                hdr[2], hdr[3], hdr[4], hdr[5], hdr[6]);
    fz_pool_new(&w, &w.pool, 1, hdr + 1);
    fz_default_pool_init(&w);
    fz_obj_new(&w.obj, 1, hdr + 9);
    fz_buf_new(&w.buf, 1, hdr + 17);
    fz_split(&w, th, size > FZ_HDR ? data + FZ_HDR : data, size > FZ_HDR ? size - FZ_HDR : 0);

    pthread_t tid[FZ_MAX_THREADS];
    for (int i = 1; i < w.nthreads; i++)
        FZ_CHECK_EQ(pthread_create(&tid[i], NULL, fz_thread_run, &th[i]), 0);
    fz_thread_run(&th[0]);
    for (int i = 1; i < w.nthreads; i++)
        pthread_join(tid[i], NULL);

    fz_pool_destroy(&w, &w.pool);
    fz_default_pool_end(&w);
    fz_obj_destroy(&w, &w.obj);
    fz_buf_destroy(&w, &w.buf);
    FZ_CHECK_EQ(w.nlive, 0);
    fz_tasks_check(&w);
    pthread_mutex_destroy(&w.lock);
    return 0;
}

/* The sanitizers' options for this program: a failed huge allocation is a
 * NULL return the harness checks, not a report. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:detect_leaks=1";
}
