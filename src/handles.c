/* Debug builds (FM_DEBUG): a set of the live handles of the task modules
 * (multipools, groups, futures), so that a destroy of a handle that is not
 * live (destroyed twice, or never created) aborts with a message instead of
 * corrupting the heap. Release builds compile the calls out (internal.h).
 *
 * The set hashes the handle's address and never dereferences it, so a
 * handle already freed is looked up safely. One mutex guards it: debug builds
 * only, and only on new and destroy. */
#include <errno.h>
#include <string.h>

#include "internal.h"

#ifdef FM_DEBUG

#define FM__HANDLE_BUCKETS 1024

struct fm__handle_node {
    const void *h;
    const char *kind;
    struct fm__handle_node *next;
};

static pthread_mutex_t fm__handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fm__handle_node *fm__handles[FM__HANDLE_BUCKETS]; /* under the lock */

static struct fm__handle_node **fm__handle_bucket(const void *h)
{
    uintptr_t x = (uintptr_t)h;
    x ^= x >> 17;
    x *= UINT64_C(0x9e3779b97f4a7c15);
    return &fm__handles[(x >> 20) % FM__HANDLE_BUCKETS];
}

int fm__handle_add(const void *h, const char *kind)
{
    struct fm__handle_node *n = fm__sys.malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    n->h = h;
    n->kind = kind;
    pthread_mutex_lock(&fm__handles_lock);
    struct fm__handle_node **b = fm__handle_bucket(h);
    n->next = *b;
    *b = n;
    pthread_mutex_unlock(&fm__handles_lock);
    return 0;
}

void fm__handle_remove(const void *h, const char *kind, const char *call)
{
    pthread_mutex_lock(&fm__handles_lock);
    struct fm__handle_node **link = fm__handle_bucket(h), *n;
    while ((n = *link) && !(n->h == h && strcmp(n->kind, kind) == 0))
        link = &n->next;
    if (!n)
        fm__die("%s(%p): not a live %s (destroyed twice?)", call, h, kind);
    *link = n->next;
    pthread_mutex_unlock(&fm__handles_lock);
    fm__sys.free(n);
}

#endif /* FM_DEBUG */
