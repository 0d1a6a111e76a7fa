/* The object pool: see include/formica/objpool.h for the contract.
 *
 * Each thread has a cache per pool (tcache.h) holding up to FM__TC_OBJS
 * objects in an array of its own: get pops and put pushes there with no
 * atomic read-modify-write and only three dependent loads (slot, cache,
 * count). When the array runs empty (get) or full (put), FM__MAG_SIZE
 * objects move at once, as a magazine (Bonwick and Adams' magazine layer,
 * 2001), between it and a shard: one lock per FM__MAG_SIZE objects, and the
 * array is left half full, so the next exchange is again FM__MAG_SIZE
 * operations away. A cleanup cycle takes every object (thread caches
 * included, by a drain) to the victim list and frees the previous victims,
 * which is sync.Pool's two-cycle ageing.
 *
 * Where each piece of state lives and what guards it:
 *
 * | state                          | guarded by                     | touched by               |
 * |--------------------------------|--------------------------------|--------------------------|
 * | a thread cache's word (count   | written by its thread only, in | its thread; drains and   |
 * | of objects, puts)              | the store that ends a bracket  | stats read it            |
 * | fm__objtc.limit, moved_in/out, | the thread-cache bracket       | its thread; drains; the  |
 * | obj, spare                     | (tcache.h): one holder at once;| thread-exit flush; stats |
 * |                                | relaxed atomics where stats    | read the counters        |
 * |                                | read them                      |                          |
 * | fm__objshard.full / empty      | the shard's lock               | slow paths, cycles,      |
 * |                                |                                | destroy                  |
 * | victims                        | fm_objpool.lock                | get slow path, cycles    |
 * | orphans                        | lock-free: CAS push, exchange  | thread-exit flush; take  |
 * |                                | of the whole list              | paths, cycles, destroy   |
 * | a magazine not on any list     | its holder alone               |                          |
 * | counters (hits_shared, ...)    | atomic RMW, relaxed            | anyone                   |
 * | armed, activity                | seq_cst (Dekker pair below)    | slow paths, the tick     |
 *
 * Lock order: registry lock -> cycle_lock -> tc lock; shard locks and
 * fm_objpool.lock are leaves (nothing else is taken while one is held). No
 * lock is held while a user hook runs: reset_fn and new_fn run on the calling
 * thread outside every lock and bracket, free_fn after the locks are dropped.
 *
 * Invariants: a magazine on a full list holds 1..FM__MAG_SIZE objects, one on
 * an empty list none, a thread cache's spare none. A thread cache's limit is
 * 0 after a drain (and when new), so that the first put after it takes the
 * slow path, which arms the cleanup timer; otherwise FM__TC_OBJS. While its
 * limit is 0 its gate is closed (tcache.h: a drain leaves FM__TC_DRAINED, and
 * only fm__objtc_ready or a slow entry that finds the limit set reopens it),
 * so the fast path, which enters only through an open gate, needs no look at
 * the limit.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "tcache.h"

#define FM__TC_OBJS 128                 /* objects a thread cache holds */
#define FM__MAG_SIZE (FM__TC_OBJS / 2) /* objects moved at once to or from a shard */
#define FM__OBJ_DEFAULT_INTERVAL (2 * FM__NSEC_PER_SEC)
#define FM__OBJ_KEEP_EMPTY 4 /* empty magazines a shard keeps through a cycle */
#define FM__OBJ_MAX_EMPTY 64 /* and at most at any time */

struct fm__mag {
    struct fm__mag *next; /* on a shard's or the victim list */
    uint32_t n;           /* objects in obj[0, n) */
    void *obj[FM__MAG_SIZE];
#ifdef FM_DEBUG
    uint64_t hash[FM__MAG_SIZE]; /* of each object's bytes as it was put */
#endif
};

/* A thread cache. Its tcache word holds (puts << 8) | n: objects in
 * obj[0, n), the newest on top, and puts cached here, so that a get or put
 * commits with the one store that ends its bracket. Gets are derived:
 * puts + puts_folded + moved_in - moved_out - n. The fields below are
 * written by whoever holds the cache (its thread inside a bracket, or a
 * drain) and read by stats at any time: relaxed atomics where stats read
 * them. */
#define FM__OBJ_N(word) ((uint32_t)((word)&0xff))
#define FM__OBJ_PUT (((uint64_t)1 << 8) | 1) /* added to the word by a put */
/* A put whose word has this bit (or n == FM__TC_OBJS) goes slow and folds the
 * puts into puts_folded: the word never reaches FM__TC_BUSY. */
#define FM__OBJ_PUTS_HIGH ((uint64_t)1 << 62)
#define FM__OBJ_FULL ((uint64_t)FM__TC_OBJS) /* n's top bit: n == FM__TC_OBJS */
_Static_assert(FM__TC_OBJS == 128, "a full cache is the word's bit 7 (FM__OBJ_FULL)");

struct fm__objtc {
    /* FM__TC_OBJS, or 0 when new and after a drain: the count in the word is
     * then stale (it means 0), gets and puts both take the slow path, and the
     * first put re-arms the cleanup timer. */
    _Atomic uint32_t limit;
    _Atomic uint64_t moved_in;  /* objects taken from shards into obj */
    _Atomic uint64_t moved_out; /* objects moved from obj to magazines */
    _Atomic uint64_t puts_folded; /* puts moved out of the word (put slow path) */
    struct fm__mag *spare;      /* an empty magazine for the next overflow, or NULL */
    void *obj[FM__TC_OBJS];
#ifdef FM_DEBUG
    uint64_t hash[FM__TC_OBJS]; /* of each object's bytes as it was put */
#endif
};

struct fm__objshard {
    pthread_mutex_t lock;
    struct fm__mag *full;  /* lock */
    struct fm__mag *empty; /* lock */
    size_t nempty;         /* lock */
} FM__ALIGNED;

struct fm_objpool {
    struct fm__tc_owner tco; /* the thread caches */
    fm_objpool_opts opts;
    int poison; /* debug builds: fill objects on put (plain obj_size pools) */
    int nshards;
    struct fm__objshard *shards;

    pthread_mutex_t lock;       /* victims */
    struct fm__mag *victims;
    pthread_mutex_t cycle_lock; /* one cleanup cycle at a time */
    /* Magazines of threads that left, pushed under the tc lock (so without
     * taking a shard lock there); taken whole by an exchange, never popped
     * one by one, so the push's compare-and-swap has no ABA case. */
    _Atomic(struct fm__mag *) orphans;
    struct fm_objpool *reg_next, *reg_prev; /* every pool, for fork; registry lock */

    fm__maint_client maint;
    int64_t interval_ns; /* <0: no timer */
    /* armed: a tick is requested or running. activity: bumped by every slow
     * path that caches objects where cycles will age them (the first put
     * after a drain, a magazine pushed to a shard). The tick clears armed and
     * then re-reads activity; a slow path bumps activity and then reads
     * armed; both seq_cst, so one of them sees the other and the timer is
     * never left off with something cached. */
    _Atomic int armed;
    _Atomic uint64_t activity;

    /* Counters outside the thread caches (relaxed: only summed for stats),
     * on lines of their own, away from the fields every get and put reads. */
    FM__ALIGNED _Atomic uint64_t hits_shared, hits_stolen, hits_victim, misses;
    _Atomic uint64_t puts_uncached, dropped, cleanups;
};

/* ---- counters ---- */

static inline void fm__count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- debug checks ---- */

#ifdef FM_DEBUG
#define FM__OBJ_POISON 0xdb

/* FNV-1a over the object's bytes; 0 when the pool does not know its size. */
static uint64_t fm__obj_hash(const fm_objpool *p, const void *obj)
{
    const unsigned char *b = obj;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < p->opts.obj_size; i++)
        h = (h ^ b[i]) * 0x100000001b3u;
    return h;
}

static uint64_t fm__obj_debug_put(const fm_objpool *p, void *obj)
{
    if (p->poison)
        memset(obj, FM__OBJ_POISON, p->opts.obj_size);
    return fm__obj_hash(p, obj);
}

static void fm__obj_debug_get(const fm_objpool *p, void *obj, uint64_t hash)
{
    if (fm__obj_hash(p, obj) != hash)
        fm__die("fm_objpool_get: object %p was written after it was put (use after put)", obj);
}

static void fm__objtc_debug_no_dup(const struct fm__objtc *tc, uint32_t n, const void *obj)
{
    for (uint32_t i = 0; i < n; i++)
        if (tc->obj[i] == obj)
            fm__die("fm_objpool_put: object %p put twice (it is already cached)", obj);
}

#define FM__SET_HASH(x, i, h) ((x)->hash[i] = (h))
#define FM__HASH(x, i) ((x)->hash[i])
#define FM__COPY_HASHES(dst, src, n) memcpy(dst, src, (n) * sizeof(uint64_t))
#else
#define fm__obj_debug_put(p, obj) ((void)(p), (void)(obj), (uint64_t)0)
#define fm__obj_debug_get(p, obj, hash) ((void)(hash))
#define fm__objtc_debug_no_dup(tc, n, obj) ((void)0)
#define FM__SET_HASH(x, i, h) ((void)(h))
#define FM__HASH(x, i) ((uint64_t)0)
#define FM__COPY_HASHES(dst, src, n) ((void)0)
#endif

/* ---- magazines and objects ---- */

static struct fm__mag *fm__mag_new(void)
{
    struct fm__mag *m = fm__sys.malloc(sizeof *m);
    if (m) {
        m->next = NULL;
        m->n = 0;
    }
    return m;
}

static inline void fm__mag_push(struct fm__mag **list, struct fm__mag *m)
{
    m->next = *list;
    *list = m;
}

static inline struct fm__mag *fm__mag_pop(struct fm__mag **list)
{
    struct fm__mag *m = *list;
    if (m)
        *list = m->next;
    return m;
}

static void fm__obj_free(const fm_objpool *p, void *obj)
{
    if (p->opts.free_fn)
        p->opts.free_fn(obj, p->opts.ctx);
    else
        fm__sys.free(obj);
}

/* Frees every object of every magazine on list, and the magazines. No lock
 * held: free_fn may call into the library. */
static void fm__mags_free(fm_objpool *p, struct fm__mag *list)
{
    uint64_t n = 0;
    for (struct fm__mag *m; (m = fm__mag_pop(&list)) != NULL; fm__sys.free(m))
        for (uint32_t i = 0; i < m->n; i++, n++)
            fm__obj_free(p, m->obj[i]);
    fm__count(&p->dropped, n);
}

/* An object when nothing is cached. */
static void *fm__objpool_miss(fm_objpool *p)
{
    fm__count(&p->misses, 1);
    if (p->opts.new_fn)
        return p->opts.new_fn(p->opts.ctx);
    if (p->opts.obj_size)
        return fm__sys.malloc(p->opts.obj_size);
    return NULL;
}

/* ---- the cleanup timer ---- */

static void fm__objpool_arm(fm_objpool *p)
{
    if (p->interval_ns >= 0)
        fm__maint_arm(&p->maint, &p->armed, p->interval_ns);
}

/* ---- shards ---- */

static unsigned fm__objpool_home(const fm_objpool *p)
{
    int cpu = sched_getcpu();
    return cpu > 0 ? (unsigned)cpu % (unsigned)p->nshards : 0;
}

/* Locks the calling CPU's shard or, when another thread holds it, the next
 * free one; with every shard busy, waits for its own. */
static struct fm__objshard *fm__objpool_lock_shard(fm_objpool *p, unsigned home)
{
    for (int i = 0; i < p->nshards; i++) {
        struct fm__objshard *s = &p->shards[(home + (unsigned)i) % (unsigned)p->nshards];
        if (pthread_mutex_trylock(&s->lock) == 0)
            return s;
    }
    pthread_mutex_lock(&p->shards[home].lock);
    return &p->shards[home];
}

/* Puts m on the shard's full or empty list; returns a magazine to free when
 * the shard has empties enough. Shard locked. */
static struct fm__mag *fm__shard_push(struct fm__objshard *s, struct fm__mag *m)
{
    if (m->n) {
        fm__mag_push(&s->full, m);
    } else if (s->nempty < FM__OBJ_MAX_EMPTY) {
        fm__mag_push(&s->empty, m);
        s->nempty++;
    } else {
        return m;
    }
    return NULL;
}

/* Pops a full (want_full) or empty magazine; NULL if it has none. Shard locked. */
static struct fm__mag *fm__shard_pop(struct fm__objshard *s, int want_full)
{
    struct fm__mag *m = fm__mag_pop(want_full ? &s->full : &s->empty);
    if (m && !want_full)
        s->nempty--;
    return m;
}

/* Takes the whole orphan list (acquire: pairs with the pushes' release). */
static struct fm__mag *fm__objpool_take_orphans(fm_objpool *p)
{
    if (!atomic_load_explicit(&p->orphans, memory_order_relaxed))
        return NULL;
    return atomic_exchange_explicit(&p->orphans, NULL, memory_order_acquire);
}

/* Puts orphaned magazines into the calling CPU's shard. */
static void fm__objpool_adopt_orphans(fm_objpool *p)
{
    struct fm__mag *list = fm__objpool_take_orphans(p), *spill = NULL;
    if (!list)
        return;
    struct fm__objshard *s = fm__objpool_lock_shard(p, fm__objpool_home(p));
    for (struct fm__mag *m; (m = fm__mag_pop(&list)) != NULL;) {
        struct fm__mag *extra = fm__shard_push(s, m);
        if (extra)
            fm__mag_push(&spill, extra);
    }
    pthread_mutex_unlock(&s->lock);
    for (struct fm__mag *m; (m = fm__mag_pop(&spill)) != NULL;)
        fm__sys.free(m);
}

/* Takes a magazine of the wanted kind from the first shard that has one,
 * starting at the calling CPU's, and leaves give (if any) in that same shard:
 * a thread that takes full magazines leaves its empty ones where the threads
 * that fill them look for empties, so both kinds circulate instead of piling
 * up in different shards. Busy shards are skipped on a first pass (a thread
 * that finds a shard contended moves on) and waited for on a second. With
 * nothing found, give goes to the home shard and NULL is returned; *home_hit
 * says whether the magazine came from the home shard. */
static struct fm__mag *fm__objpool_exchange(fm_objpool *p, struct fm__mag *give, int want_full,
                                            int *home_hit)
{
    unsigned home = fm__objpool_home(p), n = (unsigned)p->nshards;
    int skipped = 0;
    for (int pass = 0; pass < 2 && (pass == 0 || skipped); pass++) {
        for (unsigned i = 0; i < n; i++) {
            struct fm__objshard *s = &p->shards[(home + i) % n];
            if (pass == 0 && pthread_mutex_trylock(&s->lock) != 0) {
                skipped = 1;
                continue;
            }
            if (pass == 1)
                pthread_mutex_lock(&s->lock);
            struct fm__mag *m = fm__shard_pop(s, want_full);
            struct fm__mag *spill = m && give ? fm__shard_push(s, give) : NULL;
            pthread_mutex_unlock(&s->lock);
            if (m) {
                fm__sys.free(spill);
                *home_hit = i == 0;
                return m;
            }
        }
    }
    if (give) {
        struct fm__objshard *s = fm__objpool_lock_shard(p, home);
        struct fm__mag *spill = fm__shard_push(s, give);
        pthread_mutex_unlock(&s->lock);
        fm__sys.free(spill);
    }
    return NULL;
}

/* Gives back an empty magazine (if any) and takes a magazine with objects:
 * from the home shard (hits_shared), another shard (hits_stolen) or the
 * victims (hits_victim). NULL when nothing is cached anywhere. */
static struct fm__mag *fm__objpool_take_full(fm_objpool *p, struct fm__mag *empty)
{
    int home_hit;
    struct fm__mag *full = fm__objpool_exchange(p, empty, 1, &home_hit);
    if (!full && atomic_load_explicit(&p->orphans, memory_order_relaxed)) {
        fm__objpool_adopt_orphans(p);
        full = fm__objpool_exchange(p, NULL, 1, &home_hit);
    }
    if (full) {
        fm__count(home_hit ? &p->hits_shared : &p->hits_stolen, full->n);
        return full;
    }
    pthread_mutex_lock(&p->lock);
    full = fm__mag_pop(&p->victims);
    pthread_mutex_unlock(&p->lock);
    if (full)
        fm__count(&p->hits_victim, full->n);
    return full;
}

/* Gives back a magazine with objects (if any) and takes an empty one, or makes
 * one; NULL only when out of memory. */
static struct fm__mag *fm__objpool_take_empty(fm_objpool *p, struct fm__mag *full)
{
    int home_hit;
    struct fm__mag *empty = fm__objpool_exchange(p, full, 0, &home_hit);
    return empty ? empty : fm__mag_new();
}

/* ---- the thread caches ---- */

/* Everything a drain, a flush or destroy collects. */
struct fm__objharvest {
    struct fm__mag *full;
    struct fm__mag *empty;
};

static inline uint32_t fm__objtc_limit(const struct fm__objtc *tc)
{
    return atomic_load_explicit(&tc->limit, memory_order_relaxed);
}

static inline void fm__objtc_set_limit(struct fm__objtc *tc, uint32_t limit)
{
    atomic_store_explicit(&tc->limit, limit, memory_order_relaxed);
}

/* Objects in obj[], reading a stale count (limit 0) as none. */
static inline uint32_t fm__objtc_count(const struct fm__objtc *tc, uint64_t word)
{
    return fm__objtc_limit(tc) ? FM__OBJ_N(word) : 0;
}

/* The single-writer counters: a plain increment readers may load any time. */
static inline void fm__count_own(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Moves the count oldest of the n objects of tc into the empty magazine m and
 * shifts the rest down. Held by its thread or by a drain. */
static void fm__objtc_unload(struct fm__objtc *tc, uint32_t n, struct fm__mag *m, uint32_t count)
{
    memcpy(m->obj, tc->obj, count * sizeof(void *));
    FM__COPY_HASHES(m->hash, tc->hash, count);
    m->n = count;
    memmove(tc->obj, tc->obj + count, (n - count) * sizeof(void *));
#ifdef FM_DEBUG
    memmove(tc->hash, tc->hash + count, (n - count) * sizeof(uint64_t));
#endif
    fm__count_own(&tc->moved_out, count);
}

/* Moves every object of a held cache into magazines on h->full (its spare
 * first, then h->empty, then new ones) and its spare to h->empty. The word is
 * left alone (a drain may not write it): limit 0 says its count is stale. So
 * the objects move all or none: every magazine is had first, and if no memory
 * for one can be had, every object stays and the count stays true. */
static void fm__objtc_unload_all(struct fm__objtc *tc, struct fm__objharvest *h)
{
    uint32_t n = fm__objtc_count(tc, fm__tc_word(tc));
    /* Every magazine first: the count in the word stays right only if all the
     * objects go or none does. */
    struct fm__mag *mags = NULL;
    for (uint32_t k = 0; k < n; k += FM__MAG_SIZE) {
        struct fm__mag *m = tc->spare;
        tc->spare = NULL;
        if (!m && !(m = fm__mag_pop(&h->empty)) && !(m = fm__mag_new())) {
            while ((m = fm__mag_pop(&mags)) != NULL)
                fm__mag_push(&h->empty, m);
            return; /* no memory: the objects stay, and so does the limit */
        }
        fm__mag_push(&mags, m);
    }
    for (struct fm__mag *m; (m = fm__mag_pop(&mags)) != NULL;) {
        uint32_t count = n < FM__MAG_SIZE ? n : FM__MAG_SIZE;
        fm__objtc_unload(tc, n, m, count);
        n -= count;
        fm__mag_push(&h->full, m);
    }
    if (tc->spare)
        fm__mag_push(&h->empty, tc->spare);
    tc->spare = NULL;
    fm__objtc_set_limit(tc, 0);
}

/* Drain callback of a cleanup cycle. */
static void fm__objtc_harvest(void *payload, void *ctx)
{
    fm__objtc_unload_all(payload, ctx);
}

/* Destroy's drain: like a cycle's, but what no magazine can be had for (a
 * memory shortage) is taken into stash, one whole cache at a time so that
 * the cache's count stays right (limit 0 then reads it as empty); a cache
 * that does not fit sets more, and destroy drains again after freeing the
 * stash. Each pass empties at least one cache, so destroy needs no memory
 * to free every object. */
struct fm__objfinal {
    struct fm__objharvest h;
    uint32_t n;
    int more;
    void *stash[FM__TC_OBJS];
};

static void fm__objtc_harvest_final(void *payload, void *ctx)
{
    struct fm__objtc *tc = payload;
    struct fm__objfinal *f = ctx;
    fm__objtc_unload_all(tc, &f->h);
    uint32_t n = fm__objtc_count(tc, fm__tc_word(tc));
    if (n == 0)
        return;
    if (f->n + n > FM__TC_OBJS) {
        f->more = 1;
        return;
    }
    memcpy(f->stash + f->n, tc->obj, n * sizeof(void *));
    f->n += n;
    fm__objtc_set_limit(tc, 0);
}

/* A departing (or evicted) thread's objects go on the orphan list, where the
 * next thread short of objects takes them. tc lock held. */
static void fm__objtc_flush(struct fm__tc_owner *o, void *payload)
{
    fm_objpool *p = (fm_objpool *)((char *)o - offsetof(fm_objpool, tco));
    struct fm__objharvest h = {NULL, NULL};
    fm__objtc_unload_all(payload, &h);
    struct fm__mag *lists[2] = {h.full, h.empty};
    for (int i = 0; i < 2; i++) {
        for (struct fm__mag *m; (m = fm__mag_pop(&lists[i])) != NULL;) {
            /* release: the magazine's contents before its publication;
             * relaxed on failure: nothing read through the old head. */
            m->next = atomic_load_explicit(&p->orphans, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(&p->orphans, &m->next, m,
                                                          memory_order_release,
                                                          memory_order_relaxed)) {
            }
        }
    }
}


/* The calling thread's cache entered on the slow path (NULL: no memory for
 * one). A gate closed by a drain opens again once the cache is in a state
 * the fast path may use (limit FM__TC_OBJS; see fm__objtc_ready). */
static struct fm__objtc *fm__objtc_enter_slow(fm_objpool *p, uint64_t *word)
{
    struct fm__objtc *tc = fm__tc_enter_slow_w(&p->tco, word);
    if (tc && fm__objtc_limit(tc))
        fm__tc_reopen(tc);
    return tc;
}

/* Held by its thread: its count is right and the fast path may use it. */
static void fm__objtc_ready(struct fm__objtc *tc)
{
    fm__objtc_set_limit(tc, FM__TC_OBJS);
    fm__tc_reopen(tc);
}

/* The calling thread's cache, entered again after the caller left it to lock
 * a shard. Allocates nothing: the thread already has its cache. */
static struct fm__objtc *fm__objtc_reenter(fm_objpool *p, uint64_t *word)
{
    struct fm__objtc *tc = fm__tc_enter_w(&p->tco, word);
    if (!tc)
        tc = fm__objtc_enter_slow(p, word);
    FM__ASSERT(tc != NULL);
    return tc;
}

/* Objects entered a place that cleanup cycles age: make sure a tick comes. */
static void fm__objpool_note_activity(fm_objpool *p)
{
    atomic_fetch_add(&p->activity, 1); /* seq_cst: see armed */
    fm__objpool_arm(p);
}

/* ---- get and put ---- */

/* Pops the newest of the n objects of tc and leaves the cache. */
static inline void *fm__objtc_pop(fm_objpool *p, struct fm__objtc *tc, uint64_t word, uint32_t n)
{
    void *obj = tc->obj[n - 1];
    uint64_t hash = FM__HASH(tc, n - 1);
    fm__tc_leave_w(tc, word - 1);
    fm__obj_debug_get(p, obj, hash);
    return obj;
}

/* Pushes onto tc, which holds n objects and has room, and leaves the cache. */
static inline void fm__objtc_push(struct fm__objtc *tc, uint64_t word, uint32_t n, void *obj,
                                  uint64_t hash)
{
    FM__SET_HASH(tc, n, hash);
    tc->obj[n] = obj;
    fm__tc_leave_w(tc, word + FM__OBJ_PUT);
}

/* The word with a stale count (limit 0) cleared. */
static inline uint64_t fm__objtc_fresh_word(const struct fm__objtc *tc, uint64_t word)
{
    return fm__objtc_limit(tc) ? word : word & ~(uint64_t)0xff;
}

__attribute__((noinline, cold)) static void *fm__objpool_get_slow(fm_objpool *p)
{
    uint64_t word;
    struct fm__objtc *tc = fm__objtc_enter_slow(p, &word);
    if (!tc)
        return fm__objpool_miss(p);
    word = fm__objtc_fresh_word(tc, word);
    if (FM__OBJ_N(word) > 0)
        return fm__objtc_pop(p, tc, word, FM__OBJ_N(word));
    struct fm__mag *give = tc->spare; /* an empty magazine for the shard's puts */
    tc->spare = NULL;
    fm__tc_leave_w(tc, word);
    struct fm__mag *full = fm__objpool_take_full(p, give);
    if (!full)
        return fm__objpool_miss(p);
    tc = fm__objtc_reenter(p, &word);
    /* Only this thread adds objects to its cache, and it added none since it
     * found the cache empty; a drain took no spare (there was none). */
    FM__ASSERT(fm__objtc_count(tc, word) == 0 && tc->spare == NULL);
    word = fm__objtc_fresh_word(tc, word);
    memcpy(tc->obj, full->obj, full->n * sizeof(void *));
    FM__COPY_HASHES(tc->hash, full->hash, full->n);
    fm__count_own(&tc->moved_in, full->n);
    word += full->n;
    full->n = 0;
    tc->spare = full;
    /* After a drain, limit 0 asked the next put to arm the timer; these
     * objects come from a shard or the victims, which the timer ages already,
     * unless a request that failed to start the maintenance thread left it
     * off: arming again is one load when it is on (and out of the bracket). */
    fm__objtc_ready(tc);
    void *obj = fm__objtc_pop(p, tc, word, FM__OBJ_N(word));
    fm__objpool_arm(p);
    return obj;
}

void *fm_objpool_get(fm_objpool *p)
{
    if (FM__UNLIKELY(!p)) {
        errno = EINVAL;
        return NULL;
    }
    uint64_t word;
    struct fm__objtc *tc = fm__tc_enter_w(&p->tco, &word);
    if (FM__LIKELY(tc != NULL)) {
        /* Entered on the fast path, limit is FM__TC_OBJS and the count fresh
         * (an open gate says so). */
        if (FM__LIKELY(FM__OBJ_N(word) != 0))
            return fm__objtc_pop(p, tc, word, FM__OBJ_N(word));
        fm__tc_leave_w(tc, word); /* empty: the slow path enters again */
    }
    return fm__objpool_get_slow(p);
}

static void fm__objpool_drop(fm_objpool *p, void *obj)
{
    fm__count(&p->puts_uncached, 1);
    fm__count(&p->dropped, 1);
    fm__obj_free(p, obj);
}

/* Gives the thread's cache (held, n == limit) a spare magazine; returns the
 * cache entered again with *word, or NULL (cache left) when no memory for a
 * magazine can be had. */
static struct fm__objtc *fm__objtc_get_spare(fm_objpool *p, struct fm__objtc *tc, uint64_t *word)
{
    fm__tc_leave_w(tc, *word);
    struct fm__mag *m = fm__objpool_take_empty(p, NULL);
    if (!m)
        return NULL;
    tc = fm__objtc_reenter(p, word);
    FM__ASSERT(tc->spare == NULL); /* drains take spares, never give them */
    tc->spare = m;
    return tc;
}

__attribute__((noinline, cold)) static void fm__objpool_put_slow(fm_objpool *p, void *obj,
                                                                 uint64_t hash)
{
    uint64_t word;
    struct fm__objtc *tc = fm__objtc_enter_slow(p, &word);
    if (!tc) {
        fm__objpool_drop(p, obj);
        return;
    }
    fm__count_own(&tc->puts_folded, word >> 8);
    word = FM__OBJ_N(word);
    if (tc->spare == NULL && fm__objtc_limit(tc) && FM__OBJ_N(word) == fm__objtc_limit(tc) &&
        !(tc = fm__objtc_get_spare(p, tc, &word))) {
        fm__objpool_drop(p, obj);
        return;
    }
    fm__objtc_debug_no_dup(tc, fm__objtc_count(tc, word), obj);
    if (fm__objtc_limit(tc) == 0) { /* first put since a drain, or ever */
        word = fm__objtc_fresh_word(tc, word);
        fm__objtc_ready(tc);
        fm__objtc_push(tc, word, 0, obj, hash);
        fm__objpool_note_activity(p);
        return;
    }
    uint32_t n = FM__OBJ_N(word);
    if (n < fm__objtc_limit(tc)) {
        fm__objtc_push(tc, word, n, obj, hash);
        return;
    }
    struct fm__mag *full = tc->spare;
    tc->spare = NULL;
    fm__objtc_unload(tc, n, full, FM__MAG_SIZE);
    fm__objtc_push(tc, word - FM__MAG_SIZE, n - FM__MAG_SIZE, obj, hash);
    struct fm__mag *next = fm__objpool_take_empty(p, full);
    fm__objpool_note_activity(p);
    if (!next)
        return; /* the next overflow finds no spare and tries again */
    tc = fm__objtc_reenter(p, &word);
    FM__ASSERT(tc->spare == NULL); /* drains take spares, never give them */
    tc->spare = next;
    fm__tc_leave_w(tc, word);
}

/* Caches obj (reset already). Inlined into both entry points below, so that
 * the common case of a pool without reset_fn calls nothing. */
static inline void fm__objpool_put_reset(fm_objpool *p, void *obj)
{
    uint64_t hash = fm__obj_debug_put(p, obj);
    uint64_t word;
    struct fm__objtc *tc = fm__tc_enter_w(&p->tco, &word);
    if (FM__LIKELY(tc != NULL)) {
        fm__objtc_debug_no_dup(tc, fm__objtc_count(tc, word), obj);
        /* Not full (an open gate says limit is FM__TC_OBJS), puts not high. */
        if (FM__LIKELY(!(word & (FM__OBJ_FULL | FM__OBJ_PUTS_HIGH)))) {
            fm__objtc_push(tc, word, FM__OBJ_N(word), obj, hash);
            return;
        }
        fm__tc_leave_w(tc, word); /* full, or puts to fold: the slow path enters again */
    }
    fm__objpool_put_slow(p, obj, hash);
}

__attribute__((noinline)) static void fm__objpool_put_with_reset(fm_objpool *p, void *obj)
{
    p->opts.reset_fn(obj, p->opts.ctx);
    fm__objpool_put_reset(p, obj);
}

void fm_objpool_put(fm_objpool *p, void *obj)
{
    if (!obj)
        return;
    if (FM__UNLIKELY(!p)) {
#ifdef FM_DEBUG
        fm__die("fm_objpool_put: NULL pool");
#endif
        return;
    }
    if (p->opts.reset_fn)
        fm__objpool_put_with_reset(p, obj);
    else
        fm__objpool_put_reset(p, obj);
}

/* Takes every cached object outside the thread caches: orphans, then shards
 * (their full lists; with keep_empty, a few empties stay for the next puts). */
static void fm__objpool_harvest_shared(fm_objpool *p, struct fm__objharvest *h,
                                       size_t keep_empty)
{
    for (struct fm__mag *m, *list = fm__objpool_take_orphans(p); (m = fm__mag_pop(&list));)
        fm__mag_push(m->n ? &h->full : &h->empty, m);
    for (int i = 0; i < p->nshards; i++) {
        struct fm__objshard *s = &p->shards[i];
        pthread_mutex_lock(&s->lock);
        while (s->full)
            fm__mag_push(&h->full, fm__mag_pop(&s->full));
        while (s->nempty > keep_empty) {
            fm__mag_push(&h->empty, fm__mag_pop(&s->empty));
            s->nempty--;
        }
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---- cleanup cycles ---- */

/* One cycle. Returns whether victims remain (something to age next time). */
static int fm__objpool_cycle(fm_objpool *p)
{
    struct fm__objharvest h = {NULL, NULL};
    pthread_mutex_lock(&p->cycle_lock);
    fm__tc_drain(&p->tco, fm__objtc_harvest, &h);
    fm__objpool_harvest_shared(p, &h, FM__OBJ_KEEP_EMPTY);
    pthread_mutex_lock(&p->lock);
    struct fm__mag *old = p->victims;
    p->victims = h.full;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->cycle_lock);
    fm__count(&p->cleanups, 1);
    fm__mags_free(p, old);
    fm__mags_free(p, h.empty);
    return h.full != NULL;
}

void fm_objpool_cleanup(fm_objpool *p)
{
    if (p)
        fm__objpool_cycle(p);
}

static int64_t fm__objpool_tick(fm__maint_client *c, int64_t now)
{
    fm_objpool *p = (fm_objpool *)((char *)c - offsetof(fm_objpool, maint));
    uint64_t seen = atomic_load(&p->activity);
    if (fm__objpool_cycle(p))
        return now + p->interval_ns;
    atomic_store(&p->armed, 0); /* seq_cst: see armed */
    if (atomic_load(&p->activity) != seen && !atomic_exchange(&p->armed, 1))
        return now + p->interval_ns;
    return INT64_MAX;
}

/* ---- lifecycle ---- */

/* Every pool, for fork (fork.c takes their locks in the library's order). */
static pthread_mutex_t fm__objpool_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fm_objpool *fm__objpool_registry;

static void fm__objpool_registry_add(fm_objpool *p)
{
    fm__atfork_init();
    pthread_mutex_lock(&fm__objpool_registry_lock);
    p->reg_prev = NULL;
    p->reg_next = fm__objpool_registry;
    if (p->reg_next)
        p->reg_next->reg_prev = p;
    fm__objpool_registry = p;
    pthread_mutex_unlock(&fm__objpool_registry_lock);
}

static void fm__objpool_registry_remove(fm_objpool *p)
{
    pthread_mutex_lock(&fm__objpool_registry_lock);
    if (p->reg_prev)
        p->reg_prev->reg_next = p->reg_next;
    else
        fm__objpool_registry = p->reg_next;
    if (p->reg_next)
        p->reg_next->reg_prev = p->reg_prev;
    pthread_mutex_unlock(&fm__objpool_registry_lock);
}

void fm__objpool_atfork_prepare_outer(void)
{
    pthread_mutex_lock(&fm__objpool_registry_lock);
    for (fm_objpool *p = fm__objpool_registry; p; p = p->reg_next)
        pthread_mutex_lock(&p->cycle_lock);
}

void fm__objpool_atfork_prepare_inner(void)
{
    for (fm_objpool *p = fm__objpool_registry; p; p = p->reg_next) {
        for (int i = 0; i < p->nshards; i++)
            pthread_mutex_lock(&p->shards[i].lock);
        pthread_mutex_lock(&p->lock);
    }
}

void fm__objpool_atfork_parent_inner(void)
{
    for (fm_objpool *p = fm__objpool_registry; p; p = p->reg_next) {
        pthread_mutex_unlock(&p->lock);
        for (int i = 0; i < p->nshards; i++)
            pthread_mutex_unlock(&p->shards[i].lock);
    }
}

void fm__objpool_atfork_parent_outer(void)
{
    for (fm_objpool *p = fm__objpool_registry; p; p = p->reg_next)
        pthread_mutex_unlock(&p->cycle_lock);
    pthread_mutex_unlock(&fm__objpool_registry_lock);
}

/* The child keeps every cached object. Its maintenance thread does not exist:
 * the timer is disarmed, and the next put that caches something arms it
 * (starting a maintenance thread in the child). */
void fm__objpool_atfork_child_inner(void)
{
    for (fm_objpool *p = fm__objpool_registry; p; p = p->reg_next) {
        for (int i = 0; i < p->nshards; i++)
            pthread_mutex_init(&p->shards[i].lock, NULL);
        pthread_mutex_init(&p->lock, NULL);
        atomic_store(&p->armed, 0);
    }
}

void fm__objpool_atfork_child_outer(void)
{
    for (fm_objpool *p = fm__objpool_registry; p; p = p->reg_next)
        pthread_mutex_init(&p->cycle_lock, NULL);
    pthread_mutex_init(&fm__objpool_registry_lock, NULL);
}

int fm_objpool_new(fm_objpool **out, const fm_objpool_opts *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    fm_objpool_opts o = {0};
    if (opts)
        o = *opts; /* every combination of hooks and sizes has a meaning */
    /* sizeof is a multiple of the alignment: the counters are FM__ALIGNED. */
    fm_objpool *p = fm__sys.aligned_alloc(FM__CACHELINE, sizeof *p);
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    p->nshards = fm__ncpu();
    p->shards = fm__sys.aligned_alloc(FM__CACHELINE,
                                      sizeof(struct fm__objshard) * (size_t)p->nshards);
    if (!p->shards) {
        fm__sys.free(p);
        return -ENOMEM;
    }
    memset(p->shards, 0, sizeof(struct fm__objshard) * (size_t)p->nshards);
    for (int i = 0; i < p->nshards; i++)
        pthread_mutex_init(&p->shards[i].lock, NULL);
    p->opts = o;
#ifdef FM_DEBUG
    p->poison = o.obj_size && !o.new_fn && !o.reset_fn;
#endif
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->cycle_lock, NULL);
    p->interval_ns = o.cleanup_interval_ns == 0 ? FM__OBJ_DEFAULT_INTERVAL : o.cleanup_interval_ns;
    /* No init: a new cache is zeroed memory, which is empty, with limit 0 and
     * no spare. */
    fm__tc_owner_init(&p->tco, sizeof(struct fm__objtc), NULL, fm__objtc_flush);
    fm__objpool_registry_add(p);
    if (p->interval_ns > 0) {
        p->maint.tick = fm__objpool_tick;
        fm__maint_register(&p->maint);
    }
    *out = p;
    return 0;
}

void fm_objpool_destroy(fm_objpool *p)
{
    if (!p)
        return;
    if (p->interval_ns > 0)
        fm__maint_unregister(&p->maint); /* waits out a running tick */
    fm__objpool_registry_remove(p);
    /* Threads may still exit meanwhile: their flush pushes orphans until
     * fm__tc_owner_fini, after which their caches no longer name this pool;
     * so the orphans are taken after it. */
    struct fm__objfinal f = {.h = {NULL, NULL}};
    do {
        f.n = 0;
        f.more = 0;
        fm__tc_drain(&p->tco, fm__objtc_harvest_final, &f);
        for (uint32_t i = 0; i < f.n; i++) /* no lock held: free_fn may call in */
            fm__obj_free(p, f.stash[i]);
        fm__count(&p->dropped, f.n);
    } while (f.more);
    fm__tc_owner_fini(&p->tco);
    fm__objpool_harvest_shared(p, &f.h, 0);
    fm__mags_free(p, p->victims);
    fm__mags_free(p, f.h.full);
    fm__mags_free(p, f.h.empty);
    for (int i = 0; i < p->nshards; i++)
        pthread_mutex_destroy(&p->shards[i].lock);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->cycle_lock);
    fm__sys.free(p->shards);
    fm__sys.free(p);
}

/* ---- statistics ---- */

/* Adds a thread cache's figures, read while its thread may run: in
 * s->hits_private, every get it served (derived from its word, see
 * fm__objtc). */
static void fm__objtc_sum(const void *payload, void *ctx)
{
    const struct fm__objtc *tc = payload;
    struct fm_objpool_stats *s = ctx;
    uint64_t word = fm__tc_word(payload);
    uint64_t puts = (word >> 8) + atomic_load_explicit(&tc->puts_folded, memory_order_relaxed);
    uint64_t in = puts + atomic_load_explicit(&tc->moved_in, memory_order_relaxed);
    uint64_t out = atomic_load_explicit(&tc->moved_out, memory_order_relaxed) +
                   fm__objtc_count(tc, word);
    s->puts += puts;
    s->hits_private += in > out ? in - out : 0;
}

int fm_objpool_stats(const fm_objpool *p, struct fm_objpool_stats *out)
{
    if (!p || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    fm__tc_visit((struct fm__tc_owner *)&p->tco, fm__objtc_sum, out);
    uint64_t served = out->hits_private; /* every get the thread caches served */
    out->hits_shared = atomic_load_explicit(&p->hits_shared, memory_order_relaxed);
    out->hits_stolen = atomic_load_explicit(&p->hits_stolen, memory_order_relaxed);
    out->hits_victim = atomic_load_explicit(&p->hits_victim, memory_order_relaxed);
    uint64_t moved_in = out->hits_shared + out->hits_stolen + out->hits_victim;
    out->hits_private = served > moved_in ? served - moved_in : 0;
    out->misses = atomic_load_explicit(&p->misses, memory_order_relaxed);
    out->puts += atomic_load_explicit(&p->puts_uncached, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&p->dropped, memory_order_relaxed);
    out->cleanups = atomic_load_explicit(&p->cleanups, memory_order_relaxed);
    out->gets = served + out->misses;
    uint64_t gone = served + out->dropped;
    out->cached = out->puts > gone ? out->puts - gone : 0;
    return 0;
}

int fm_objpool_stats_json(const fm_objpool *p, char *buf, size_t len)
{
    struct fm_objpool_stats s;
    if (fm_objpool_stats(p, &s) != 0 || (!buf && len))
        return -EINVAL;
    return snprintf(buf, len,
                    "{\"gets\":%llu,\"hits_private\":%llu,\"hits_shared\":%llu,"
                    "\"hits_stolen\":%llu,\"hits_victim\":%llu,\"misses\":%llu,\"puts\":%llu,"
                    "\"dropped\":%llu,\"cleanups\":%llu,\"cached\":%llu}",
                    (unsigned long long)s.gets, (unsigned long long)s.hits_private,
                    (unsigned long long)s.hits_shared, (unsigned long long)s.hits_stolen,
                    (unsigned long long)s.hits_victim, (unsigned long long)s.misses,
                    (unsigned long long)s.puts, (unsigned long long)s.dropped,
                    (unsigned long long)s.cleanups, (unsigned long long)s.cached);
}
