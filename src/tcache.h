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
 *     the thread side must fence too: every cache's gate then stays closed
 *     (FM__TC_FENCED), so the inline fast path never enters and the out-of-line
 *     fm__tc_enter_slow fences instead (correct, slower).
 *   - thread exit (a pthread key destructor) and eviction from the thread's
 *     slot table hand a cache's contents back through the owner's flush.
 *
 * The handshake, per cache. state: bit 63 "busy" (FM__TC_BUSY), written by
 * the cache's thread only; the bits below are a word the module may keep
 * there (objpool keeps its count of objects and of puts), so that ending the
 * bracket and committing the operation are one store. gate: 0 lets the inline fast path
 * enter; FM__TC_HELD is written by drainers only; FM__TC_DRAINED is set by a
 * drainer as it lets go and cleared by the thread (fm__tc_reopen, one
 * compare-and-swap on a slow path), so that the first entry after a drain
 * takes the module's slow path and the fast path needs no test of its own for
 * what a drain changed.
 *   thread:  state |= BUSY; [light barrier]; if gate: state &= ~BUSY, slow path
 *            ... use the payload ...; state = new word (release)
 *   drainer: gate = HELD; [heavy barrier]; wait until !(state & BUSY) (acquire);
 *            ... use the payload, never write state ...; gate = DRAINED (release)
 * The barriers keep each side's store ordered before its load, so at most one
 * side is inside; the release/acquire pairs order the payload accesses. The
 * slow path enters while gate has no HELD bit (a DRAINED or FENCED gate only
 * sends it there). A drainer that changes what the word describes records
 * that in the payload (objpool zeroes its limit), where the thread sees it
 * inside its next bracket, which the DRAINED bit makes a slow one.
 *
 * Locks (the "tc lock" is one mutex for the whole library):
 *
 * | operation                  | may run concurrently with                 | lock            |
 * |----------------------------|-------------------------------------------|-----------------|
 * | fm__tc_enter(_w) / _leave  | everything (wait-free; fails unless the   | none            |
 * |                            | gate is open)                             |                 |
 * | fm__tc_enter_slow          | everything                                | none when bound,|
 * |                            |                                           | else tc lock    |
 * | fm__tc_reopen              | everything; inside the thread's bracket   | none            |
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
    _Atomic uint64_t state;  /* FM__TC_BUSY, and below it the module's word (see above) */
    _Atomic uint32_t gate;   /* FM__TC_* bits; 0: the fast path may enter (see above) */
    /* Below: tc lock. */
    struct fm__tc_owner *owner; /* NULL once the owner is gone (its thread frees it) */
    struct fm__tc *next;        /* the owner's list of caches */
    struct fm__tc_slot *slot;   /* the thread slot it is bound to; NULL: free for reuse */
    _Alignas(max_align_t) unsigned char payload[];
};

/* The busy bit of state: at the top, so that the module's word needs no
 * shift to be read or committed. The word is below it (63 bits). */
#define FM__TC_BUSY ((uint64_t)1 << 63)

/* The gate's bits. */
#define FM__TC_HELD 1u    /* a drainer holds the cache; drainers write it */
#define FM__TC_DRAINED 2u /* drained since the module last called fm__tc_reopen */
#define FM__TC_FENCED 4u  /* no membarrier: only the slow path, which fences, enters */

struct fm__tc_owner {
    uint64_t id;           /* unique for the life of the process; never 0 */
    unsigned slot;         /* index in every thread's slot table */
    uintptr_t slot_off;    /* the slot's offset from the thread pointer (FM__TC_SEG) */
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

/* On x86-64, a thread's slot for an owner is one %fs-relative load at a fixed
 * offset from the thread pointer: static TLS lies at the same offset from it
 * in every thread. (Inline assembly: C11 mode has no __seg_fs.) Sanitizers do
 * not see such loads, so their builds index the array instead. volatile: the
 * slot changes under calls the compiler cannot see through. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define FM__TC_SEG 1
/* The slot's id and cache: two loads at the owner's offset. */
#define FM__TC_FS_LOAD(off, field)                                                         \
    __extension__({                                                                       \
        uint64_t v_;                                                                      \
        __asm__ volatile("movq %%fs:%c2(%1), %0"                                          \
                         : "=r"(v_)                                                       \
                         : "r"(off), "i"(offsetof(struct fm__tc_slot, field)));           \
        v_;                                                                               \
    })
#endif

/* Whether the calling thread's slot for o is bound to o. A bound slot always
 * holds a cache (fm__tc_bound_cache), so the pointer needs no test. */
static inline int fm__tc_is_bound(const struct fm__tc_owner *o)
{
#ifdef FM__TC_SEG
    return FM__TC_FS_LOAD(o->slot_off, id) == o->id;
#else
    return fm__tc_slots[o->slot].id == o->id;
#endif
}

static inline struct fm__tc *fm__tc_bound_cache(const struct fm__tc_owner *o)
{
#ifdef FM__TC_SEG
    return (struct fm__tc *)(uintptr_t)FM__TC_FS_LOAD(o->slot_off, cache);
#else
    return fm__tc_slots[o->slot].cache;
#endif
}

/* The gate's load that ends entering a bracket. acquire: pairs with the
 * drainer's release of the gate, so what it did to the payload is visible
 * before we use it. Non-zero: the fast path may not go on. */
static inline uint32_t fm__tc_gate(struct fm__tc *c)
{
    return atomic_load_explicit(&c->gate, memory_order_acquire);
}

/* The calling thread's payload for o, entered, and in *word the module's
 * word; NULL when the thread has no cache for o yet, or its gate is not open
 * (held by a drainer, drained since the last fm__tc_reopen, or fenced mode):
 * use fm__tc_enter_slow_w. Wait-free. */
static inline void *fm__tc_enter_w(struct fm__tc_owner *o, uint64_t *word)
{
    if (FM__UNLIKELY(!fm__tc_is_bound(o)))
        return NULL;
    struct fm__tc *c = fm__tc_bound_cache(o);
    /* Only this thread writes state: the load sees its own last store. */
    uint64_t st = atomic_load_explicit(&c->state, memory_order_relaxed);
    /* relaxed, then a compiler barrier only: the drainer's membarrier orders
     * this store before our load of the gate. (Without membarrier the gate is
     * never open here: FM__TC_FENCED.) */
    atomic_store_explicit(&c->state, st | FM__TC_BUSY, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (FM__UNLIKELY(fm__tc_gate(c))) {
        atomic_store_explicit(&c->state, st, memory_order_release);
        return NULL;
    }
    *word = st;
    return c->payload;
}

static inline struct fm__tc *fm__tc_of(void *payload)
{
    return (struct fm__tc *)((char *)payload - offsetof(struct fm__tc, payload));
}

/* Ends the bracket, committing word. release: our payload writes happen
 * before a drainer that sees the busy bit clear reads them. word < FM__TC_BUSY. */
static inline void fm__tc_leave_w(void *payload, uint64_t word)
{
    atomic_store_explicit(&fm__tc_of(payload)->state, word, memory_order_release);
}

/* The same for modules that keep no word (state is 0 or FM__TC_BUSY): no load. */
static inline void *fm__tc_enter(struct fm__tc_owner *o)
{
    if (FM__UNLIKELY(!fm__tc_is_bound(o)))
        return NULL;
    struct fm__tc *c = fm__tc_bound_cache(o);
    atomic_store_explicit(&c->state, FM__TC_BUSY, memory_order_relaxed); /* see fm__tc_enter_w */
    atomic_signal_fence(memory_order_seq_cst);
    if (FM__UNLIKELY(fm__tc_gate(c))) {
        atomic_store_explicit(&c->state, 0, memory_order_release);
        return NULL;
    }
    return c->payload;
}

static inline void fm__tc_leave(void *payload)
{
    atomic_store_explicit(&fm__tc_of(payload)->state, 0, memory_order_release);
}

/* The word of a cache that a drainer (or the thread-exit flush) holds. */
static inline uint64_t fm__tc_word(const void *payload)
{
    const struct fm__tc *c =
        (const struct fm__tc *)((const char *)payload - offsetof(struct fm__tc, payload));
    return atomic_load_explicit(&c->state, memory_order_relaxed) & ~FM__TC_BUSY;
}

/* Inside the thread's own bracket: the drains since the last call are dealt
 * with, so the fast path may enter again (it clears FM__TC_DRAINED). */
void fm__tc_reopen(void *payload);

/* Slow path of fm__tc_enter: binds a cache for o to the calling thread
 * (creating one, or reusing one a departed thread left), waiting out a drain
 * in progress, fencing when membarrier is missing. Returns the payload
 * entered (its gate may still say FM__TC_DRAINED: see fm__tc_reopen), or NULL
 * when memory for a cache could not be had (the caller then works without
 * one). */
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
