/* stuck_task: finds a task that hangs, with the slow-task watchdog and the
 * pool dump, then frees it and exits cleanly.
 *
 * A pool of 4 workers runs a batch of short requests; one of them waits for
 * a reply on a pipe that nobody writes to, as a request stuck on a dead peer
 * would. The watchdog (slow_task_ns = 200 ms) reports it from the library's
 * maintenance thread; main then prints fm_pool_dump, which names the stuck
 * function and its argument, closes the pipe (the "peer" goes away: the read
 * returns), and destroys the pool.
 *
 * Built with -rdynamic (CMake: ENABLE_EXPORTS) so that the dump can name the
 * program's own functions.
 *
 *   stuck_task
 */
#include <formica.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct request {
    int id;
    int reply_fd; /* where the reply comes from; -1: answered at once */
};

/* Not static, so that dladdr can name them in the dump. */
void handle_request(void *arg);
void on_slow_task(const struct fm_task_info *task, void *ctx);

static atomic_int handled;

void handle_request(void *arg)
{
    struct request *r = arg;
    if (r->reply_fd >= 0) {
        char c;
        ssize_t n = read(r->reply_fd, &c, 1); /* blocks until the peer writes or goes away */
        (void)n;
    }
    atomic_fetch_add(&handled, 1);
}

/* The watchdog's report: runs on the maintenance thread. Hands the stuck
 * task to main, which decides what to do. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fm_task_info task;
    int reported;
} slow = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0};

void on_slow_task(const struct fm_task_info *task, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&slow.mu);
    if (!slow.reported) {
        slow.task = *task;
        slow.reported = 1;
        pthread_cond_signal(&slow.cv);
    }
    pthread_mutex_unlock(&slow.mu);
}

int main(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    fm_pool_opts opts = {.name = "req",
                         .slow_task_ns = 200 * 1000 * 1000, /* 200 ms */
                         .on_slow_task = on_slow_task};
    fm_pool *pool;
    int rc = fm_pool_new(&pool, 4, &opts);
    if (rc != 0) {
        fprintf(stderr, "fm_pool_new: %s\n", fm_strerror(rc));
        return 1;
    }

    static struct request reqs[20];
    for (int i = 0; i < 20; i++) {
        reqs[i] = (struct request){i, i == 7 ? fds[0] : -1}; /* request 7 hangs */
        if ((rc = fm_pool_submit(pool, handle_request, &reqs[i])) != 0) {
            fprintf(stderr, "fm_pool_submit: %s\n", fm_strerror(rc));
            return 1;
        }
    }

    /* Wait for the watchdog; the other requests finish meanwhile. */
    pthread_mutex_lock(&slow.mu);
    while (!slow.reported)
        pthread_cond_wait(&slow.cv, &slow.mu);
    struct fm_task_info t = slow.task;
    pthread_mutex_unlock(&slow.mu);
    const struct request *stuck = t.arg;
    printf("watchdog: %s(request %d) on worker %u has run for at least %.1f ms\n",
           t.symbol ? t.symbol : "?", stuck->id, t.worker, (double)t.running_ns / 1e6);

    printf("dump:\n");
    fm_pool_dump(pool, stdout);

    /* The peer goes away: the stuck read returns and the task ends. */
    close(fds[1]);
    fm_pool_wait(pool, FM_FOREVER);
    printf("after closing the pipe: %d of 20 requests handled, %d task(s) busy\n",
           atomic_load(&handled), fm_pool_busy_tasks(pool, NULL, 0));
    fm_pool_destroy(pool);
    close(fds[0]);
    printf("threads formica still has: %d (its maintenance thread)\n", fm_threads_live());
    return atomic_load(&handled) == 20 ? 0 : 1;
}
