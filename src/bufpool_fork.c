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
static struct fm_bufpool *fm__buf_registry; /* registry lock */

void fm__buf_register(struct fm_bufpool *b)
{
    fm__atfork_init();
    pthread_mutex_lock(&fm__buf_registry_lock);
    b->reg_prev = NULL;
    b->reg_next = fm__buf_registry;
    if (b->reg_next)
        b->reg_next->reg_prev = b;
    fm__buf_registry = b;
    pthread_mutex_unlock(&fm__buf_registry_lock);
}

void fm__buf_unregister(struct fm_bufpool *b)
{
    pthread_mutex_lock(&fm__buf_registry_lock);
    if (b->reg_prev)
        b->reg_prev->reg_next = b->reg_next;
    else
        fm__buf_registry = b->reg_next;
    if (b->reg_next)
        b->reg_next->reg_prev = b->reg_prev;
    pthread_mutex_unlock(&fm__buf_registry_lock);
}

void fm__bufpool_atfork_prepare(void)
{
    pthread_mutex_lock(&fm__buf_registry_lock);
    for (struct fm_bufpool *b = fm__buf_registry; b; b = b->reg_next)
        for (unsigned c = 0; c < b->nclasses; c++)
            pthread_mutex_lock(&b->cls[c].lock);
}

void fm__bufpool_atfork_parent(void)
{
    for (struct fm_bufpool *b = fm__buf_registry; b; b = b->reg_next)
        for (unsigned c = 0; c < b->nclasses; c++)
            pthread_mutex_unlock(&b->cls[c].lock);
    pthread_mutex_unlock(&fm__buf_registry_lock);
}

/* The child keeps everything cached. It has no maintenance thread and no
 * tick pending: a decaying pool is disarmed, so that the next put that
 * caches something asks for a tick (starting the thread in the child). */
void fm__bufpool_atfork_child(void)
{
    for (struct fm_bufpool *b = fm__buf_registry; b; b = b->reg_next) {
        for (unsigned c = 0; c < b->nclasses; c++)
            pthread_mutex_init(&b->cls[c].lock, NULL);
        atomic_store(&b->armed, b->decay_ns < 0);
    }
    pthread_mutex_init(&fm__buf_registry_lock, NULL);
}
