/* Per-thread caches that another thread can drain: see tcache.h. */
#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tcache.h"

__thread struct fm__tc_slot fm__tc_slots[FM__TC_SLOTS] __attribute__((tls_model("initial-exec")));
/* Whether the calling thread has set fm__tc_key (so its caches are flushed at exit). */
static __thread int fm__tc_key_set __attribute__((tls_model("initial-exec")));
int fm__tc_fenced;

static pthread_mutex_t fm__tc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fm__tc_once = PTHREAD_ONCE_INIT;
static pthread_key_t fm__tc_key; /* its destructor flushes a departing thread's caches */
static struct fm__tc_owner *fm__tc_owners; /* tc lock */
static _Atomic uint64_t fm__tc_next_id = 1;

static long fm__membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

/* The heavy half of the handshake: after it, every store a cache's thread made
 * before its load of the gate is visible here, and every load it makes after
 * sees our store of the gate. */
static void fm__tc_heavy_barrier(void)
{
    if (fm__tc_fenced || fm__membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
        atomic_thread_fence(memory_order_seq_cst);
}

static void fm__tc_thread_exit(void *table);

/* The gate bits every cache keeps for the life of the process. */
static uint32_t fm__tc_fixed_gate(void)
{
    return fm__tc_fenced ? FM__TC_FENCED : 0;
}

void fm__tc_reopen(void *payload)
{
    struct fm__tc *c = fm__tc_of(payload);
    /* relaxed: the thread holds its cache (its bracket), and the acquire load
     * that entered it saw the drainer's release. A drainer's store of HELD
     * racing this makes it fail, which is fine: the next entry goes slow. */
    uint32_t g = atomic_load_explicit(&c->gate, memory_order_relaxed);
    if (g & FM__TC_DRAINED)
        atomic_compare_exchange_strong_explicit(&c->gate, &g, g & ~FM__TC_DRAINED,
                                                memory_order_relaxed, memory_order_relaxed);
}

/* Enters c, already bound to the calling thread, on the slow path: a full
 * fence where membarrier is missing, and any gate without HELD lets it in.
 * NULL while a drainer holds c. */
static void *fm__tc_enter_bound(struct fm__tc *c, uint64_t *word)
{
    uint64_t st = atomic_load_explicit(&c->state, memory_order_relaxed);
    atomic_store_explicit(&c->state, st | FM__TC_BUSY, memory_order_relaxed);
    /* The light half of the handshake: see fm__tc_enter_w; with no
     * membarrier, the Dekker pair is this fence and the drainer's. */
    if (fm__tc_fenced)
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
    if (fm__tc_gate(c) & FM__TC_HELD) {
        atomic_store_explicit(&c->state, st, memory_order_release);
        return NULL;
    }
    *word = st;
    return c->payload;
}

void fm__tc_atfork_prepare(void)
{
    pthread_mutex_lock(&fm__tc_lock);
}

void fm__tc_atfork_parent(void)
{
    pthread_mutex_unlock(&fm__tc_lock);
}

/* The child's only thread keeps its caches; the others' stay bound to slots of
 * threads that do not exist there, and are emptied by drains like any other.
 * A thread caught inside a bracket by the fork never leaves it in the child:
 * its busy bit is cleared here, or drains would wait for it forever. (Its
 * operation is lost half-done: at worst one object is forgotten, none is
 * handed out twice, since the thread that held it does not exist here.) */
void fm__tc_atfork_child(void)
{
    pthread_mutex_init(&fm__tc_lock, NULL);
    for (struct fm__tc_owner *o = fm__tc_owners; o; o = o->next_owner)
        for (struct fm__tc *c = o->caches; c; c = c->next) /* the forking thread is in none */
            atomic_store_explicit(&c->state,
                                  atomic_load_explicit(&c->state, memory_order_relaxed) &
                                      ~FM__TC_BUSY,
                                  memory_order_relaxed);
}

static void fm__tc_setup(void)
{
    /* Registration makes PRIVATE_EXPEDITED available to this process. If it
     * fails (old kernel, seccomp, valgrind), both sides fence instead. Decided
     * before any owner exists, so no thread is inside a bracket yet. */
    long cmds = fm__membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
        fm__membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        fm__tc_fenced = 1;
    if (pthread_key_create(&fm__tc_key, fm__tc_thread_exit) != 0)
        fm__die("no pthread key left for the thread caches");
}

void fm__tc_owner_init(struct fm__tc_owner *o, size_t payload_size,
                       void (*init)(struct fm__tc_owner *, void *),
                       void (*flush)(struct fm__tc_owner *, void *))
{
    fm__atfork_init();
    pthread_once(&fm__tc_once, fm__tc_setup);
    o->id = atomic_fetch_add_explicit(&fm__tc_next_id, 1, memory_order_relaxed);
    o->slot = (unsigned)(o->id % FM__TC_SLOTS);
#ifdef FM__TC_SEG
    o->slot_off = (uintptr_t)&fm__tc_slots[o->slot] - (uintptr_t)__builtin_thread_pointer();
#endif
    o->payload_size = payload_size;
    o->init = init;
    o->flush = flush;
    o->caches = NULL;
    o->prev_owner = NULL;
    pthread_mutex_lock(&fm__tc_lock);
    o->next_owner = fm__tc_owners;
    if (o->next_owner)
        o->next_owner->prev_owner = o;
    fm__tc_owners = o;
    pthread_mutex_unlock(&fm__tc_lock);
}

/* Gives a slot's cache back: to its owner (flushed, free for another thread)
 * or, when the owner is gone, to the heap. tc lock held. */
static void fm__tc_unbind(struct fm__tc_slot *s)
{
    struct fm__tc *c = s->cache;
    s->id = 0;
    s->cache = NULL;
    if (!c)
        return;
    c->slot = NULL;
    if (c->owner) {
        c->owner->flush(c->owner, c->payload);
        /* Like a drain: the next thread to bind it enters through the
         * module's slow path. relaxed: that thread takes the tc lock first. */
        atomic_store_explicit(&c->gate, FM__TC_DRAINED | fm__tc_fixed_gate(),
                              memory_order_relaxed);
    } else {
        fm__sys.free(c);
    }
}

/* The key's destructor, at thread exit: every cache goes back. It runs on
 * the departing thread, whose static TLS is still there. */
static void fm__tc_thread_exit(void *unused)
{
    pthread_mutex_lock(&fm__tc_lock);
    for (int i = 0; i < FM__TC_SLOTS; i++)
        fm__tc_unbind(&fm__tc_slots[i]);
    pthread_mutex_unlock(&fm__tc_lock);
    fm__tc_key_set = 0;
}

/* The destructor runs only for threads whose key value is not NULL. */
static int fm__tc_key_ensure(void)
{
    if (!fm__tc_key_set && pthread_setspecific(fm__tc_key, &fm__tc_key_set) == 0)
        fm__tc_key_set = 1;
    return fm__tc_key_set;
}

/* A cache of o for the calling thread: one a departed thread left, or a new
 * one. tc lock held. */
static struct fm__tc *fm__tc_find_free(struct fm__tc_owner *o)
{
    for (struct fm__tc *c = o->caches; c; c = c->next)
        if (!c->slot)
            return c;
    size_t size = sizeof(struct fm__tc) + o->payload_size;
    size = (size + FM__CACHELINE - 1) / FM__CACHELINE * FM__CACHELINE;
    /* Aligned to a pair of cache lines: no two threads' caches share one. */
    struct fm__tc *c = fm__sys.aligned_alloc(FM__CACHELINE, size);
    if (!c)
        return NULL;
    memset(c, 0, size);
    /* Closed until the module first reopens it: it may want a slow first
     * entry (objpool), as after a drain. */
    atomic_init(&c->gate, FM__TC_DRAINED | fm__tc_fixed_gate());
    c->owner = o;
    c->next = o->caches;
    o->caches = c;
    if (o->init)
        o->init(o, c->payload);
    return c;
}

void *fm__tc_enter_slow(struct fm__tc_owner *o)
{
    uint64_t word;
    return fm__tc_enter_slow_w(o, &word);
}

void *fm__tc_enter_slow_w(struct fm__tc_owner *o, uint64_t *word)
{
    struct fm__tc_slot *s = &fm__tc_slots[o->slot];
    if (s->id == o->id) { /* bound: a drain in progress, a drained gate or fenced mode */
        void *payload = fm__tc_enter_bound(s->cache, word);
        if (payload)
            return payload;
    }
    if (!fm__tc_key_ensure())
        return NULL;
    for (;;) {
        pthread_mutex_lock(&fm__tc_lock); /* a drain of our cache ends before we get it */
        if (s->id != o->id) {
            fm__tc_unbind(s); /* another owner's cache: hand it back */
            struct fm__tc *c = fm__tc_find_free(o);
            if (!c) {
                pthread_mutex_unlock(&fm__tc_lock);
                return NULL;
            }
            c->slot = s;
            s->cache = c;
            s->id = o->id;
        }
        pthread_mutex_unlock(&fm__tc_lock);
        void *payload = fm__tc_enter_bound(s->cache, word);
        if (payload)
            return payload;
        /* A drain began between our unlock and the handshake: wait it out. */
    }
}

void fm__tc_drain(struct fm__tc_owner *o, void (*fn)(void *payload, void *ctx), void *ctx)
{
    pthread_mutex_lock(&fm__tc_lock);
    if (!o->caches) {
        pthread_mutex_unlock(&fm__tc_lock);
        return;
    }
    uint32_t fixed = fm__tc_fixed_gate();
    for (struct fm__tc *c = o->caches; c; c = c->next)
        atomic_store_explicit(&c->gate, FM__TC_HELD | fixed, memory_order_relaxed);
    fm__tc_heavy_barrier();
    for (struct fm__tc *c = o->caches; c; c = c->next) {
        /* acquire: pairs with fm__tc_leave, so the thread's payload writes are
         * visible. A bracket never blocks: yielding lets a preempted thread
         * on this CPU finish its few instructions. */
        while (atomic_load_explicit(&c->state, memory_order_acquire) & FM__TC_BUSY)
            sched_yield();
        fn(c->payload, ctx);
    }
    /* release: our payload writes happen before the thread's next entry. The
     * DRAINED bit sends that entry to the module's slow path. */
    for (struct fm__tc *c = o->caches; c; c = c->next)
        atomic_store_explicit(&c->gate, FM__TC_DRAINED | fixed, memory_order_release);
    pthread_mutex_unlock(&fm__tc_lock);
}

void fm__tc_visit(struct fm__tc_owner *o, void (*fn)(const void *payload, void *ctx), void *ctx)
{
    pthread_mutex_lock(&fm__tc_lock);
    for (struct fm__tc *c = o->caches; c; c = c->next)
        fn(c->payload, ctx);
    pthread_mutex_unlock(&fm__tc_lock);
}

void fm__tc_owner_fini(struct fm__tc_owner *o)
{
    pthread_mutex_lock(&fm__tc_lock);
    struct fm__tc *c = o->caches;
    while (c) {
        struct fm__tc *next = c->next;
        if (c->slot)
            c->owner = NULL; /* its thread frees it when it exits or needs the slot */
        else
            fm__sys.free(c);
        c = next;
    }
    o->caches = NULL;
    if (o->prev_owner)
        o->prev_owner->next_owner = o->next_owner;
    else
        fm__tc_owners = o->next_owner;
    if (o->next_owner)
        o->next_owner->prev_owner = o->prev_owner;
    pthread_mutex_unlock(&fm__tc_lock);
}
