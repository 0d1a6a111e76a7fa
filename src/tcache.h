/* Per-thread caches that another thread can drain.
 *
 * The object pool and the buffer pool keep their hottest objects in a cache
 * per (thread, pool), so that get and put touch only memory of the calling
 * thread: no atomic read-modify-write, no shared cache line. The maintenance
 * thread must still be able to empty those caches (cleanup cycles, decay) even
 * when their thread never calls the pool again, and a thread that exits must
 * leave nothing stranded. This layer gives both:
 *
 *   - an "owner" (one per pool) and, for each thread that uses it, a cache
 *     whose payload (the module's own struct) follows the header below;
 *   - fm__tc_enter / fm__tc_leave bracket the owner thread's use of its
 *     payload. The bracket costs two plain stores and a load: the heavy side
 *     of the handshake is paid by the drainer (fm__tc_drain) with one
 *     membarrier(2) call, the asymmetric Dekker scheme of liburcu's membarrier
 *     flavour and of folly's asymmetric barriers. Where membarrier is missing
 *     both sides use a full fence instead (correct, slower).
 *   - thread exit (a pthread key destructor) and eviction from the thread's
 *     slot table hand a cache's contents back through the owner's flush.
 *
 * The handshake, per cache (busy: written by its thread; locked: by drainers):
 *   thread:  busy = 1; [light barrier]; if locked: busy = 0, take the slow path
 *            ... use the payload ...; busy = 0 (release)
 *   drainer: locked = 1; [heavy barrier]; wait until busy == 0 (acquire);
 *            ... use the payload ...; locked = 0 (release)
 * The barriers keep each side's store ordered before its load, so at most one
 * side is inside; the release/acquire pairs order the payload accesses.
 *
 * Locks (the "tc lock" is one mutex for the whole library):
 *
 * | operation                  | may run concurrently with                 | lock            |
 * |----------------------------|-------------------------------------------|-----------------|
 * | fm__tc_enter / _leave      | everything (wait-free; fails while a      | none            |
 * |                            | drain holds the cache)                    |                 |
 * | fm__tc_enter_slow          | everything                                | tc lock         |
 * | fm__tc_drain               | everything; never from inside a bracket   | tc lock         |
 * |                            | of the same thread                        |                 |
 * | fm__tc_owner_init          | everything                                | none            |
 * | fm__tc_owner_fini          | nothing else on the same owner            | tc lock         |
 * | flush callback, thread exit| runs under the tc lock                    | tc lock         |
 *
 * Lock order: tc lock -> a module's own locks. Callbacks run under the tc lock
 * and must not call user hooks (a hook could re-enter the library).
 */
#ifndef FM_TCACHE_H
#define FM_TCACHE_H

#include <stddef.h>

#include "internal.h"

/* One thread's cache for one owner. The payload follows the header. */
struct fm__tc {
    _Atomic uint32_t busy;   /* 1 while its thread is between enter and leave */
    _Atomic uint32_t locked; /* 1 while a drainer holds the cache */
    /* Below: tc lock. */
    struct fm__tc_owner *owner; /* NULL once the owner is gone (its thread frees it) */
    struct fm__tc *next;        /* the owner's list of caches */
    struct fm__tc_slot *slot;   /* the thread slot it is bound to; NULL: free for reuse */
    _Alignas(max_align_t) unsigned char payload[];
};

struct fm__tc_owner {
    uint64_t id;           /* unique for the life of the process; never 0 */
    unsigned slot;         /* index in every thread's slot table */
    size_t payload_size;
    /* A new cache's payload (zeroed memory) made ready; tc lock held. */
    void (*init)(struct fm__tc_owner *o, void *payload);
    /* Moves what payload holds back to the module (thread exit, eviction);
     * tc lock held; must leave payload as init left it. */
    void (*flush)(struct fm__tc_owner *o, void *payload);
    struct fm__tc *caches; /* tc lock */
};

/* The slot table of one thread: one slot per owner id modulo its size. */
#define FM__TC_SLOTS 64
struct fm__tc_slot {
    uint64_t id; /* owner id whose cache this is; 0 = empty */
    struct fm__tc *cache;
};
struct fm__tc_table {
    struct fm__tc_slot slot[FM__TC_SLOTS];
};

extern __thread struct fm__tc_table *fm__tc_tls __attribute__((tls_model("initial-exec")));
extern int fm__tc_fenced; /* 1 when membarrier is missing: the thread side fences too */

/* The light half of the handshake: a compiler barrier where the drainer sends
 * membarrier, a full fence otherwise. */
static inline void fm__tc_light_barrier(void)
{
    if (FM__UNLIKELY(fm__tc_fenced))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
}

/* The calling thread's payload for o, entered; NULL when the thread has no
 * cache for o yet or a drainer holds it (use fm__tc_enter_slow). Wait-free. */
static inline void *fm__tc_enter(struct fm__tc_owner *o)
{
    struct fm__tc_table *t = fm__tc_tls;
    if (FM__UNLIKELY(!t))
        return NULL;
    struct fm__tc_slot *s = &t->slot[o->slot];
    if (FM__UNLIKELY(s->id != o->id))
        return NULL;
    struct fm__tc *c = s->cache;
    /* relaxed: the drainer's membarrier (or the fence pair) orders this store
     * before our load of locked. */
    atomic_store_explicit(&c->busy, 1, memory_order_relaxed);
    fm__tc_light_barrier();
    /* acquire: pairs with the drainer's release of locked, so what it did to
     * the payload is visible before we use it. */
    if (FM__UNLIKELY(atomic_load_explicit(&c->locked, memory_order_acquire))) {
        atomic_store_explicit(&c->busy, 0, memory_order_release);
        return NULL;
    }
    return c->payload;
}

static inline struct fm__tc *fm__tc_of(void *payload)
{
    return (struct fm__tc *)((char *)payload - offsetof(struct fm__tc, payload));
}

/* Ends the bracket. release: our payload writes happen before a drainer that
 * sees busy == 0 reads them. */
static inline void fm__tc_leave(void *payload)
{
    atomic_store_explicit(&fm__tc_of(payload)->busy, 0, memory_order_release);
}

/* Slow path of fm__tc_enter: binds a cache for o to the calling thread
 * (creating one, or reusing one a departed thread left), waiting out a drain
 * in progress. Returns the payload entered, or NULL when memory for a cache
 * could not be had (the caller then works without one). */
void *fm__tc_enter_slow(struct fm__tc_owner *o);

/* Holds every cache of o in turn and calls fn(payload, ctx) on it, with the tc
 * lock held. A thread inside its bracket is waited for (brackets are a few
 * instructions long and never block). */
void fm__tc_drain(struct fm__tc_owner *o, void (*fn)(void *payload, void *ctx), void *ctx);

/* Calls fn(payload, ctx) on every cache of o under the tc lock, without
 * holding them: for reading counters the threads keep as relaxed atomics. */
void fm__tc_visit(struct fm__tc_owner *o, void (*fn)(const void *payload, void *ctx), void *ctx);

/* A new owner: unique id, slot, callbacks. Never fails. */
void fm__tc_owner_init(struct fm__tc_owner *o, size_t payload_size,
                       void (*init)(struct fm__tc_owner *, void *),
                       void (*flush)(struct fm__tc_owner *, void *));

/* Forgets o: caches no thread holds are freed, the others are freed by their
 * threads later. Drain first: what the caches still hold is not looked at. */
void fm__tc_owner_fini(struct fm__tc_owner *o);

#endif /* FM_TCACHE_H */
