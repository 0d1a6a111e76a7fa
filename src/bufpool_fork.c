/* The buffer pools' part in fork() support (fork.c): a registry of every
 * pool, so that the handlers can take each class lock before fork() and make
 * them anew in the child, where the threads that held them do not exist.
 *
 * | operation                  | lock                                         |
 * |----------------------------|----------------------------------------------|
 * | register / unregister      | registry lock (taken with no other lock held)|
 * | atfork prepare (fork.c)    | registry lock, then every class lock         |
 *
 * In the library's lock order (the table in fork.c) the registry lock comes
 * after the tc lock, like the class locks it leads to.
 */
#include "bufpool_internal.h"

static pthread_mutex_t fm__buf_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fm__buf_list fm__buf_registry; /* registry lock */

static struct fm_bufpool *fm__buf_of_reg(struct fm__buf_node *n)
{
    return (struct fm_bufpool *)((char *)n - offsetof(struct fm_bufpool, reg));
}

void fm__buf_register(struct fm_bufpool *b)
{
    fm__atfork_init();
    pthread_mutex_lock(&fm__buf_registry_lock);
    fm__buf_list_push(&fm__buf_registry, &b->reg, 0);
    pthread_mutex_unlock(&fm__buf_registry_lock);
}

void fm__buf_unregister(struct fm_bufpool *b)
{
    pthread_mutex_lock(&fm__buf_registry_lock);
    fm__buf_list_remove(&fm__buf_registry, &b->reg);
    pthread_mutex_unlock(&fm__buf_registry_lock);
}

/* Calls fn on every class lock of every pool; registry lock held. */
static void fm__buf_each_lock(int (*fn)(pthread_mutex_t *))
{
    for (struct fm__buf_node *n = fm__buf_registry.head; n; n = n->next) {
        struct fm_bufpool *b = fm__buf_of_reg(n);
        for (unsigned c = 0; c < b->nclasses; c++)
            fn(&b->cls[c].lock);
    }
}

void fm__bufpool_atfork_prepare(void)
{
    pthread_mutex_lock(&fm__buf_registry_lock);
    fm__buf_each_lock(pthread_mutex_lock);
}

void fm__bufpool_atfork_parent(void)
{
    fm__buf_each_lock(pthread_mutex_unlock);
    pthread_mutex_unlock(&fm__buf_registry_lock);
}

static int fm__buf_lock_init(pthread_mutex_t *m)
{
    return pthread_mutex_init(m, NULL);
}

/* The child keeps everything cached. It has no maintenance thread and no
 * tick pending: a decaying pool is disarmed, so that the next put that
 * caches something asks for a tick (starting the thread in the child). */
void fm__bufpool_atfork_child(void)
{
    fm__buf_each_lock(fm__buf_lock_init);
    for (struct fm__buf_node *n = fm__buf_registry.head; n; n = n->next) {
        struct fm_bufpool *b = fm__buf_of_reg(n);
        atomic_store(&b->armed, b->decay_ns < 0);
    }
    pthread_mutex_init(&fm__buf_registry_lock, NULL);
}
