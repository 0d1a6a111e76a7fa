/* fork() support for the whole library: one set of pthread_atfork handlers,
 * registered once, that take every lock of the library in one fixed order
 * before fork() and release them after it in the parent or make them anew in
 * the child (where the threads that held them do not exist).
 *
 * The order is the library's lock order, outermost first; each module's
 * handlers take or reset its own locks:
 *
 * | step | module                      | locks                                   |
 * |------|-----------------------------|-----------------------------------------|
 * | 1    | worker pools (pool.c)       | registry lock, then each pool's lock    |
 * | 2    | object pools, outer         | registry lock, then each cycle lock     |
 * | 3    | thread caches (tcache.c)    | the tc lock                             |
 * | 4    | object pools, inner         | each pool's shard locks and victim lock |
 * | 5    | buffer pools (bufpool_fork.c)| registry lock, then each class lock    |
 * | 6    | maintenance thread (maint.c)| the maint lock                          |
 *
 * A handler registered once for all modules (rather than one per module, in
 * whatever order the modules were first used) keeps the order fixed: prepare
 * handlers of separate registrations would run in reverse order of first use.
 */
#include "internal.h"

static pthread_once_t fm__atfork_once = PTHREAD_ONCE_INIT;

static void fm__atfork_prepare(void)
{
    fm__pool_atfork_prepare();
    fm__objpool_atfork_prepare_outer();
    fm__tc_atfork_prepare();
    fm__objpool_atfork_prepare_inner();
    fm__bufpool_atfork_prepare();
    fm__maint_atfork_prepare();
}

static void fm__atfork_parent(void)
{
    fm__maint_atfork_parent();
    fm__bufpool_atfork_parent();
    fm__objpool_atfork_parent_inner();
    fm__tc_atfork_parent();
    fm__objpool_atfork_parent_outer();
    fm__pool_atfork_parent();
}

static void fm__atfork_child(void)
{
    fm__maint_atfork_child();
    fm__bufpool_atfork_child();
    fm__objpool_atfork_child_inner();
    fm__tc_atfork_child();
    fm__objpool_atfork_child_outer();
    fm__pool_atfork_child();
}

static void fm__atfork_register(void)
{
    pthread_atfork(fm__atfork_prepare, fm__atfork_parent, fm__atfork_child);
}

void fm__atfork_init(void)
{
    pthread_once(&fm__atfork_once, fm__atfork_register);
}
