/* The library's one maintenance thread: idle-worker expiry now, cache cleanup
 * and decay later. It starts on the first request and sleeps until the
 * earliest deadline any client asked for; with nothing pending it waits with
 * no timeout, so an idle process spends no CPU on it. */
#include <errno.h>
#include <sys/prctl.h>

#include "internal.h"

#define FM__MAINT_STACK (256 * 1024)

static struct {
    pthread_mutex_t lock; /* guards every field below and every client's deadline/links */
    pthread_cond_t wake;  /* the thread sleeps here; signalled by an earlier request */
    pthread_cond_t tick_done; /* unregister waits here for a running tick to end */
    pthread_once_t once;
    fm__maint_client *clients;
    fm__maint_client *ticking; /* the client whose tick runs right now, or NULL */
    int64_t sleep_until;       /* the thread's wake-up target while it sleeps; INT64_MIN while awake */
    int started;               /* the thread exists (reset in a fork child) */
} fm__maint = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .once = PTHREAD_ONCE_INIT,
    .sleep_until = INT64_MIN,
};

static void fm__maint_init_conds(void)
{
    fm__cond_init(&fm__maint.wake);
    fm__cond_init(&fm__maint.tick_done);
}

/* The due client with the earliest deadline, or NULL; *next gets the earliest
 * deadline overall. Maint lock held. */
static fm__maint_client *fm__maint_due(int64_t now, int64_t *next)
{
    fm__maint_client *due = NULL;
    *next = INT64_MAX;
    for (fm__maint_client *c = fm__maint.clients; c; c = c->next) {
        if (c->deadline <= now && (!due || c->deadline < due->deadline))
            due = c;
        if (c->deadline < *next)
            *next = c->deadline;
    }
    return due;
}

static void fm__maint_run_tick(fm__maint_client *c, int64_t now)
{
    c->deadline = INT64_MAX;
    fm__maint.ticking = c;
    pthread_mutex_unlock(&fm__maint.lock);
    int64_t next = c->tick(c, now);
    pthread_mutex_lock(&fm__maint.lock);
    fm__maint.ticking = NULL;
    pthread_cond_broadcast(&fm__maint.tick_done);
    if (next < c->deadline) /* a request made during the tick may already be earlier */
        c->deadline = next;
}

static void *fm__maint_main(void *unused)
{
    prctl(PR_SET_NAME, "fm-maint", 0, 0, 0);
    pthread_mutex_lock(&fm__maint.lock);
    for (;;) {
        int64_t now = fm__now_ns(), next;
        fm__maint_client *due = fm__maint_due(now, &next);
        if (due) {
            fm__maint_run_tick(due, now);
            continue;
        }
        fm__maint.sleep_until = next;
        fm__cond_wait_until(&fm__maint.wake, &fm__maint.lock, next);
        fm__maint.sleep_until = INT64_MIN;
    }
    return NULL;
}

/* Maint lock held. */
static int fm__maint_start_locked(void)
{
    if (fm__maint.started)
        return 0;
    pthread_t t;
    int rc = fm__thread_start(&t, FM__MAINT_STACK, fm__maint_main, NULL);
    if (rc == 0) {
        pthread_detach(t); /* lives as long as the process */
        fm__maint.started = 1;
    }
    return rc;
}

int fm__maint_start(void)
{
    pthread_once(&fm__maint.once, fm__maint_init_conds);
    pthread_mutex_lock(&fm__maint.lock);
    int rc = fm__maint_start_locked();
    pthread_mutex_unlock(&fm__maint.lock);
    return rc;
}

void fm__maint_register(fm__maint_client *c)
{
    fm__atfork_init();
    pthread_once(&fm__maint.once, fm__maint_init_conds);
    pthread_mutex_lock(&fm__maint.lock);
    c->deadline = INT64_MAX;
    c->prev = NULL;
    c->next = fm__maint.clients;
    if (c->next)
        c->next->prev = c;
    fm__maint.clients = c;
    c->registered = 1;
    pthread_mutex_unlock(&fm__maint.lock);
}

void fm__maint_unregister(fm__maint_client *c)
{
    pthread_mutex_lock(&fm__maint.lock);
    while (fm__maint.ticking == c)
        pthread_cond_wait(&fm__maint.tick_done, &fm__maint.lock);
    if (c->registered) {
        if (c->prev)
            c->prev->next = c->next;
        else
            fm__maint.clients = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->registered = 0;
    }
    pthread_mutex_unlock(&fm__maint.lock);
}

int fm__maint_request(fm__maint_client *c, int64_t deadline_ns)
{
    pthread_mutex_lock(&fm__maint.lock);
    int rc = 0;
    if (c->registered) {
        int earlier = deadline_ns < c->deadline;
        if (earlier)
            c->deadline = deadline_ns;
        /* Also for a later deadline: the request that left the earlier one
         * pending may have failed to start the thread. */
        rc = fm__maint_start_locked();
        /* A thread that is awake rescans every client before it sleeps. */
        if (rc == 0 && earlier && deadline_ns < fm__maint.sleep_until &&
            fm__maint.sleep_until != INT64_MIN)
            pthread_cond_signal(&fm__maint.wake);
    }
    pthread_mutex_unlock(&fm__maint.lock);
    return rc;
}

void fm__maint_arm(fm__maint_client *c, _Atomic int *armed, int64_t delay_ns)
{
    if (atomic_load(armed) || atomic_exchange(armed, 1))
        return;
    if (fm__maint_request(c, fm__now_ns() + delay_ns) != 0)
        atomic_store(armed, 0);
}

void fm__clock_advance(int64_t ns)
{
    pthread_mutex_lock(&fm__maint.lock);
    atomic_fetch_add_explicit(&fm__clock_offset, ns, memory_order_relaxed);
    /* Under the lock: a thread about to sleep holds it from its reading of
     * the clock to its wait, so it either sees the new offset or this signal. */
    if (fm__maint.started)
        pthread_cond_signal(&fm__maint.wake);
    pthread_mutex_unlock(&fm__maint.lock);
}

void fm__maint_atfork_prepare(void)
{
    pthread_mutex_lock(&fm__maint.lock);
}

void fm__maint_atfork_parent(void)
{
    pthread_mutex_unlock(&fm__maint.lock);
}

/* The child has no maintenance thread: the next request starts one. No tick
 * is pending there (clients ask again), so that request is never mistaken for
 * one already made. */
void fm__maint_atfork_child(void)
{
    pthread_mutex_init(&fm__maint.lock, NULL);
    for (fm__maint_client *c = fm__maint.clients; c; c = c->next)
        c->deadline = INT64_MAX;
    fm__maint_init_conds();
    fm__maint.ticking = NULL;
    fm__maint.sleep_until = INT64_MIN;
    fm__maint.started = 0;
    fm__threads_after_fork(); /* fm_threads_live: none of the parent's threads is here */
}
