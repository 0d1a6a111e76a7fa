/* Buffer pool internals, shared by bufpool.c (public calls, hot path),
 * bufpool_store.c (the central store per class), bufpool_decay.c (thread
 * caches, decay, trim), bufpool_stats.c and bufpool_fork.c.
 *
 * Layers, from the program inward:
 *   1. a thread cache per (thread, pool) (tcache.h): per class a short stack
 *      of free blocks, capped by bytes. get and put touch only it in steady
 *      state: no lock, no atomic read-modify-write.
 *   2. the central store, one per class under its own lock: free blocks of the
 *      large classes (one mapping each) and the chunks of the small classes,
 *      each with the time it was last used.
 *   3. the OS: the maintenance tick unmaps what the store has held unused for
 *      decay_ns; trim unmaps all of it.
 *
 * Every buffer has a 16-byte header in front of it (its class, its pool and a
 * state word), so put finds the class in O(1) and catches foreign and double
 * puts.
 *
 * Locks and who may run what concurrently:
 *
 * | operation                         | may run concurrently with     | locks taken            |
 * |-----------------------------------|-------------------------------|------------------------|
 * | get/put, thread cache hit         | everything but destroy        | none (tc bracket)      |
 * | get/put, thread cache miss/spill  | everything but destroy        | one class lock at once |
 * | tick (maintenance thread)         | everything but destroy        | tc lock -> class lock  |
 * | trim                              | everything but destroy        | tc lock -> class lock  |
 * | thread exit flush (tc callback)   | everything but destroy        | tc lock -> class lock  |
 * | stats                             | everything but destroy        | tc lock (visit)        |
 * | destroy                           | nothing on this pool          | maint lock, tc, class  |
 * | fork (prepare, fork.c)            | everything                    | tc -> registry -> class|
 *
 * Lock order: tc lock -> class lock; a class lock is never held while taking
 * another lock, entering a thread cache or calling into the maintenance layer,
 * and the maint lock (fm__buf_arm) is taken with no lock of ours held.
 * The OS calls (mmap, munmap) happen outside every lock but the tc lock.
 */
#ifndef FM_BUFPOOL_INTERNAL_H
#define FM_BUFPOOL_INTERNAL_H

#include "internal.h"
#include "tcache.h"

#define FM__BUF_HDR 16                       /* header bytes in front of every buffer */
#define FM__BUF_MIN_SHIFT 6                  /* smallest block: 64 bytes */
#define FM__BUF_MIN ((size_t)1 << FM__BUF_MIN_SHIFT)
#define FM__BUF_MAX_LIMIT ((size_t)1 << 30)  /* largest max_size accepted */
#define FM__BUF_MAX_CLASSES 100              /* classes up to FM__BUF_MAX_LIMIT: 97 */
#define FM__BUF_LARGE ((size_t)16 << 10)     /* blocks this size and up: one mapping each */
#define FM__BUF_CHUNK ((size_t)64 << 10)     /* smaller blocks are carved from chunks */
#define FM__BUF_TC_DEPTH 8                   /* most blocks per class in a thread cache */
#define FM__BUF_TC_CLASS_BYTES ((size_t)1 << 20) /* ...and at most this many bytes (or 1 block) */
#define FM__BUF_COLOURS 64                   /* header offsets of large blocks: 64 lines, 4 KiB */

#define FM__BUF_DEFAULT_MAX ((size_t)4 << 20)
#define FM__BUF_DEFAULT_LIMIT ((size_t)1 << 30)
#define FM__BUF_DEFAULT_DECAY FM__NSEC_PER_SEC

/* Header states: the live ones say how the block was made. */
enum {
    FM__BUF_LIVE = 0x6275664cu,   /* handed out, from a class */
    FM__BUF_DIRECT = 0x62756644u, /* handed out, mapped for this get alone */
    FM__BUF_FREE = 0x62756646u,   /* back in the pool */
};

struct fm__buf_hdr {
    struct fm_bufpool *pool;
    uint32_t state; /* written by the holder of the block only */
    uint32_t cls;   /* class index; direct blocks: the mapping's length in pages */
};

/* A node in a list kept newest first; lives in a free large block's body, at
 * the start of a chunk, or in a pool (the registry of bufpool_fork.c). */
struct fm__buf_node {
    struct fm__buf_node *next, *prev;
    int64_t stamp; /* when it was last used (pushed) */
};

struct fm__buf_list {
    struct fm__buf_node *head, *tail;
};

static inline void fm__buf_list_push(struct fm__buf_list *l, struct fm__buf_node *n, int64_t stamp)
{
    n->stamp = stamp;
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

static inline void fm__buf_list_remove(struct fm__buf_list *l, struct fm__buf_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
}

/* A chunk of FM__BUF_CHUNK bytes, aligned to its size, for one small class.
 * Blocks follow this header; a block finds its chunk by masking its address.
 * Class lock. */
struct fm__buf_chunk {
    struct fm__buf_node node;   /* in the class's partial list, or aged list when empty */
    struct fm__buf_hdr *free;   /* blocks put back, linked through their first body word */
    uint32_t nblocks, carved, nlive;
    uint32_t cls;
};
#define FM__BUF_CHUNK_HDR 64

/* The central store of one class. */
struct fm__buf_class {
    pthread_mutex_t lock;
    size_t size;    /* block size, header included; immutable */
    size_t span;    /* bytes one block holds mapped: size, plus the colour page of a
                       large block (fm__buf_colour); every byte count uses it; immutable */
    unsigned tc_cap; /* thread cache depth for this class; immutable */
    /* Below: class lock. */
    struct fm__buf_list aged;    /* large: free blocks; small: empty chunks */
    struct fm__buf_list partial; /* small: chunks with live and free blocks */
    /* Counters read by stats without the lock: relaxed atomics, each exact on
     * its own. */
    _Atomic size_t cached;     /* bytes of free blocks held here */
    _Atomic uint64_t misses;   /* gets that needed new memory (failed ones too) */
    _Atomic uint64_t failed;   /* gets that found no memory */
    _Atomic uint64_t gets, puts; /* of threads gone, and of calls made without a cache */
} FM__ALIGNED;

/* A thread's cache of one class: the owning thread writes, the maintenance
 * thread moves blocks out while it holds the cache (tcache.h). Gets are
 * derived, so that a get served here counts nothing: every block a put left
 * here was got again, moved out, or is still here, so gets = slow_gets +
 * puts - moved_out - n (fm__buf_tcc_gets). n and puts share one word, so that
 * a put counts itself and its block with one store (a store less on the hot
 * path is a pair more in flight behind a store that misses the cache). */
#define FM__BUF_TCC_PUT ((uint64_t)1 << 8) /* word: n below it, puts above (this many each) */
struct fm__buf_tcc {
    /* Written by the cache's holder with a relaxed load and store (no RMW:
     * one holder at a time), read relaxed by stats and the tick. */
    _Atomic uint64_t w;         /* n (blocks held), puts through this cache: see above */
    uint32_t cap;
    _Atomic uint64_t slow_gets; /* gets it had no block for */
    _Atomic uint64_t moved_out; /* blocks moved to the store: spills, drains */
    struct fm__buf_hdr *v[FM__BUF_TC_DEPTH];
};

static inline size_t fm__buf_tcc_n(uint64_t w)
{
    return (size_t)(w % FM__BUF_TCC_PUT);
}

static inline uint64_t fm__buf_tcc_puts(uint64_t w)
{
    return w / FM__BUF_TCC_PUT;
}

/* relaxed: only the cache's holder writes w; others read some recent value. */
static inline uint64_t fm__buf_tcc_word(const struct fm__buf_tcc *q)
{
    return atomic_load_explicit(&q->w, memory_order_relaxed);
}

static inline void fm__buf_tcc_set(struct fm__buf_tcc *q, uint64_t w)
{
    atomic_store_explicit(&q->w, w, memory_order_relaxed);
}

/* A counter only the cache's holder writes: a relaxed load and store, no RMW.
 * Readers (stats, the tick) see some recent value, which is all they need. */
static inline void fm__buf_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Gets made through q (see fm__buf_tcc). Read while the owner works, the
 * counters may be a call apart: never below 0. */
static inline uint64_t fm__buf_tcc_gets(const struct fm__buf_tcc *q)
{
    uint64_t w = fm__buf_tcc_word(q);
    uint64_t in = atomic_load_explicit(&q->slow_gets, memory_order_relaxed) + fm__buf_tcc_puts(w);
    uint64_t out = atomic_load_explicit(&q->moved_out, memory_order_relaxed) + fm__buf_tcc_n(w);
    return in > out ? in - out : 0;
}

/* The thread-cache payload. */
struct fm__buf_tcache {
    uint64_t seen_ops;   /* gets + puts at the tick that last saw them change */
    int64_t active_at;   /* that tick's time: no op since the tick after it */
    struct fm__buf_tcc cls[];
};

struct fm_bufpool {
    struct fm__tc_owner tc;
    fm__maint_client maint;
    size_t max_size, cache_limit;
    int64_t decay_ns, tick_ns;
    int zero_on_get;
    unsigned nclasses;
    /* 0 when the last tick found nothing cached and asked for no more ticks;
     * see fm__buf_arm for the handshake. */
    _Atomic int armed FM__ALIGNED;
    /* Slow-path counters: atomics, updated outside the hot path. */
    _Atomic size_t central_bytes FM__ALIGNED; /* sum of the classes' cached: for cache_limit */
    _Atomic size_t mapped;
    _Atomic uint64_t returned, dropped;
    _Atomic uint64_t direct_gets, direct_puts, direct_failed;
    _Atomic size_t direct_live;
    _Atomic unsigned colours; /* large blocks mapped so far: the next one's colour */
    struct fm__buf_node reg; /* in the list of every pool (bufpool_fork.c) */
    struct fm__buf_class cls[];
};

static inline size_t fm__buf_round(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Class of a request of size bytes (size <= max_size, so no overflow): the
 * smallest block holding size + header. Four classes per doubling: with
 * n = size + header - 1 and k its top bit, class 4 (k - 6) + 1 + the two bits
 * below k; n is raised to 63 so that every block of 64 or less is class 0
 * (63's top bits give 4 * 5 + 3 - 23 = 0), with no branch. */
static inline unsigned fm__buf_class_of(size_t size)
{
    size_t n = size + FM__BUF_HDR - 1;
    n = n < FM__BUF_MIN - 1 ? FM__BUF_MIN - 1 : n;
    unsigned k = 63u ^ (unsigned)__builtin_clzll((unsigned long long)n);
    return 4 * k + (unsigned)((n >> (k - 2)) & 3) - (4 * FM__BUF_MIN_SHIFT - 1);
}

/* Block size of class c: 64, then (4 + j) << (k - 2) for j = 1..4 per doubling. */
static inline size_t fm__buf_class_size(unsigned c)
{
    if (c == 0)
        return FM__BUF_MIN;
    unsigned k = FM__BUF_MIN_SHIFT + (c - 1) / 4, j = (c - 1) % 4 + 1;
    return (size_t)(4 + j) << (k - 2);
}

static inline struct fm__buf_hdr *fm__buf_hdr_of(const void *buf)
{
    return (struct fm__buf_hdr *)((char *)buf - FM__BUF_HDR);
}

/* bufpool_store.c: the central store. Blocks come and go as headers. */
void fm__buf_store_init(struct fm_bufpool *b);
/* A block of class c; *fresh = 1 when its memory was never used (zeroed).
 * NULL when no memory could be mapped. */
struct fm__buf_hdr *fm__buf_store_get(struct fm_bufpool *b, unsigned c, int *fresh);
/* Takes n (<= FM__BUF_TC_DEPTH) free blocks of class c back, last used at
 * stamp. Returns 1 when something now waits to decay (the caller arms the
 * tick), 0 otherwise (kept in a partial chunk, or unmapped: cache_limit). */
int fm__buf_store_put(struct fm_bufpool *b, unsigned c, struct fm__buf_hdr *const *v, unsigned n,
                      int64_t stamp);
/* Unmaps what class c has held unused since cutoff or before. Returns the
 * stamp of the oldest entry left waiting to decay, INT64_MAX if none. */
int64_t fm__buf_store_decay(struct fm_bufpool *b, unsigned c, int64_t cutoff);

/* bufpool_fork.c: the registry of pools the fork handlers walk. */
void fm__buf_register(struct fm_bufpool *b);
void fm__buf_unregister(struct fm_bufpool *b);

/* bufpool_decay.c: thread caches, the maintenance tick, trim. */
void fm__buf_tc_init(struct fm__tc_owner *o, void *payload);
void fm__buf_tc_flush(struct fm__tc_owner *o, void *payload);
int64_t fm__buf_tick(fm__maint_client *m, int64_t now);
void fm__buf_arm(struct fm_bufpool *b); /* something got cached: make sure a tick comes */
void fm__buf_drain_all(struct fm_bufpool *b); /* every thread cache into the store */

#endif /* FM_BUFPOOL_INTERNAL_H */
