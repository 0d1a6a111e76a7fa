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
 * The handshake, per cache. state: bit 0 "busy", written by the cache's
 * thread only; the bits above are a word the module may keep there (objpool
 * keeps its count of objects and of puts), so that ending the bracket and
 * committing the operation are one store. locked: written by drainers only.
 *   thread:  state |= 1; [light barrier]; if locked: state &= ~1, slow path
 *            ... use the payload ...; state = new word << 1 (release)
 *   drainer: locked = 1; [heavy barrier]; wait until state & 1 == 0 (acquire);
 *            ... use the payload, never write state ...; locked = 0 (release)
 * The barriers keep each side's store ordered before its load, so at most one
 * side is inside; the release/acquire pairs order the payload accesses. A
 * drainer that changes what the word describes records that in the payload
 * (objpool zeroes its limit), where the thread sees it inside its next bracket.
 *
 * Locks (the "tc lock" is one mutex for the whole library):
 *
 * | operation                  | may run concurrently with                 | lock            |
 * |----------------------------|-------------------------------------------|-----------------|
 * | fm__tc_enter(_w) / _leave  | everything (wait-free; fails while a      | none            |
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
    _Atomic uint64_t state;  /* bit 0: busy; above: the module's word (see above) */
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
    /* A new cache's payload (zeroed memory) made ready, or NULL when zeroed
     * memory is ready as it is; tc lock held. */
    void (*init)(struct fm__tc_owner *o, void *payload);
    /* Moves what payload holds back to the module (thread exit, eviction);
     * tc lock held; must leave payload as init left it. */
    void (*flush)(struct fm__tc_owner *o, void *payload);
    struct fm__tc *caches; /* tc lock */
    struct fm__tc_owner *next_owner, *prev_owner; /* every owner; tc lock */
};

/* A thread's slots, one per owner id modulo their number, in static TLS so
 * that finding the calling thread's cache costs one load and a compare. Two
 * owners in use by one thread whose ids collide evict each other's cache
 * (correct, slower); 16 slots keep the TLS block at 256 bytes. */
#define FM__TC_SLOTS 16
struct fm__tc_slot {
    uint64_t id; /* owner id whose cache this is; 0 = empty */
    struct fm__tc *cache;
};

/* Hidden: references from the library need no GOT entry. */
extern __thread struct fm__tc_slot fm__tc_slots[FM__TC_SLOTS]
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
/* 1 when membarrier is missing: the thread side fences too. */
extern int fm__tc_fenced __attribute__((visibility("hidden")));

/* The light half of the handshake: a compiler barrier where the drainer sends
 * membarrier, a full fence otherwise. */
static inline void fm__tc_light_barrier(void)
{
    if (FM__UNLIKELY(fm__tc_fenced))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
}

/* The calling thread's payload for o, entered, and in *word the module's
 * word; NULL when the thread has no cache for o yet or a drainer holds it
 * (use fm__tc_enter_slow_w). Wait-free. */
static inline void *fm__tc_enter_w(struct fm__tc_owner *o, uint64_t *word)
{
    struct fm__tc_slot *s = &fm__tc_slots[o->slot];
    if (FM__UNLIKELY(s->id != o->id))
        return NULL;
    struct fm__tc *c = s->cache;
    /* Only this thread writes state: the load sees its own last store. */
    uint64_t st = atomic_load_explicit(&c->state, memory_order_relaxed);
    /* relaxed: the drainer's membarrier (or the fence pair) orders this store
     * before our load of locked. */
    atomic_store_explicit(&c->state, st | 1, memory_order_relaxed);
    fm__tc_light_barrier();
    /* acquire: pairs with the drainer's release of locked, so what it did to
     * the payload is visible before we use it. */
    if (FM__UNLIKELY(atomic_load_explicit(&c->locked, memory_order_acquire))) {
        atomic_store_explicit(&c->state, st, memory_order_release);
        return NULL;
    }
    *word = st >> 1;
    return c->payload;
}

static inline struct fm__tc *fm__tc_of(void *payload)
{
    return (struct fm__tc *)((char *)payload - offsetof(struct fm__tc, payload));
}

/* Ends the bracket, committing word. release: our payload writes happen
 * before a drainer that sees the busy bit clear reads them. */
static inline void fm__tc_leave_w(void *payload, uint64_t word)
{
    atomic_store_explicit(&fm__tc_of(payload)->state, word << 1, memory_order_release);
}

/* The same for modules that keep no word. */
static inline void *fm__tc_enter(struct fm__tc_owner *o)
{
    uint64_t word;
    return fm__tc_enter_w(o, &word);
}

static inline void fm__tc_leave(void *payload)
{
    struct fm__tc *c = fm__tc_of(payload);
    uint64_t st = atomic_load_explicit(&c->state, memory_order_relaxed);
    atomic_store_explicit(&c->state, st & ~(uint64_t)1, memory_order_release);
}

/* The word of a cache that a drainer (or the thread-exit flush) holds. */
static inline uint64_t fm__tc_word(const void *payload)
{
    const struct fm__tc *c =
        (const struct fm__tc *)((const char *)payload - offsetof(struct fm__tc, payload));
    return atomic_load_explicit(&c->state, memory_order_relaxed) >> 1;
}

/* Slow path of fm__tc_enter: binds a cache for o to the calling thread
 * (creating one, or reusing one a departed thread left), waiting out a drain
 * in progress. Returns the payload entered, or NULL when memory for a cache
 * could not be had (the caller then works without one). */
void *fm__tc_enter_slow_w(struct fm__tc_owner *o, uint64_t *word);
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
