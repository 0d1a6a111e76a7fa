/* The buffer pool's decay: thread caches going idle are emptied into the
 * central store, and what the store has held unused for decay_ns goes back to
 * the OS, all on the library's maintenance thread, with no call from the
 * program. The thread sleeps while nothing waits to decay.
 *
 * Arming (armed == 0 means no tick is pending or coming):
 *   tick:  armed = 0; drain every thread cache (tc handshake) and look at
 *          every aged list (class locks); if anything is left to decay:
 *          armed = 1 and ask for the next tick.
 *   put:   caches a block (in its thread cache, inside the tc bracket; or in
 *          the store, under the class lock after a seq_cst RMW), then loads
 *          armed; if 0: fm__buf_arm.
 * Either the tick sees the block (then it keeps ticking), or the put's load
 * comes after the tick's store of 0 (then the put asks for a tick): the tc
 * bracket and the class lock each order the two sides, so a cached block
 * never waits for a tick that nobody asked for. Hence the invariant: while a
 * thread cache or an aged list holds a block, a tick is pending or running.
 */
#include "bufpool_internal.h"

static struct fm_bufpool *fm__buf_of_owner(struct fm__tc_owner *o)
{
    return (struct fm_bufpool *)((char *)o - offsetof(struct fm_bufpool, tc));
}

void fm__buf_tc_init(struct fm__tc_owner *o, void *payload)
{
    struct fm_bufpool *b = fm__buf_of_owner(o);
    struct fm__buf_tcache *t = payload;
    for (unsigned c = 0; c < b->nclasses; c++)
        t->cls[c].cap = b->cls[c].tc_cap;
}

/* Moves every block of t into the store, as last used at stamp. The cache is
 * held (drain) or its thread is gone (flush). No arming is needed: while a
 * thread cache holds blocks, a tick is pending (the handshake above), and it
 * will find them in the store. (Arming here would also take the maint lock
 * under the tc lock, an order fork handlers may take the other way round.) */
static void fm__buf_tc_empty(struct fm_bufpool *b, struct fm__buf_tcache *t, int64_t stamp)
{
    for (unsigned c = 0; c < b->nclasses; c++) {
        struct fm__buf_tcc *q = &t->cls[c];
        uint64_t w = fm__buf_tcc_word(q); /* we hold the cache: nobody else writes it now */
        size_t n = fm__buf_tcc_n(w);
        if (n) {
            fm__buf_store_put(b, c, q->v, (unsigned)n, stamp);
            fm__buf_add(&q->moved_out, n);
            fm__buf_tcc_set(q, w - n); /* the puts stay counted */
        }
    }
}

/* Thread exit or eviction: blocks to the store, counters to the classes, the
 * payload as fm__buf_tc_init left it. tc lock held. */
void fm__buf_tc_flush(struct fm__tc_owner *o, void *payload)
{
    struct fm_bufpool *b = fm__buf_of_owner(o);
    struct fm__buf_tcache *t = payload;
    fm__buf_tc_empty(b, t, fm__now_coarse_ns());
    for (unsigned c = 0; c < b->nclasses; c++) {
        struct fm__buf_tcc *q = &t->cls[c];
        /* relaxed: statistics; the tc lock orders them against stats' visit. */
        atomic_fetch_add_explicit(&b->cls[c].gets, fm__buf_tcc_gets(q), memory_order_relaxed);
        atomic_fetch_add_explicit(&b->cls[c].puts, fm__buf_tcc_puts(fm__buf_tcc_word(q)),
                                  memory_order_relaxed);
        atomic_store_explicit(&q->slow_gets, 0, memory_order_relaxed);
        fm__buf_tcc_set(q, 0); /* no block (emptied above), no put */
        atomic_store_explicit(&q->moved_out, 0, memory_order_relaxed);
    }
    t->seen_ops = 0;
    t->active_at = 0;
}

void fm__buf_arm(struct fm_bufpool *b)
{
    /* The load side of the handshake above, after the caller's seq_cst RMW or
     * tc bracket (fm__maint_arm's loads are seq_cst). */
    fm__maint_arm(&b->maint, &b->armed, b->tick_ns);
}

struct fm__buf_tick_ctx {
    struct fm_bufpool *b;
    int64_t now;
    int busy; /* a thread cache still holds blocks and was used since the last tick */
};

static uint64_t fm__buf_tc_ops(const struct fm_bufpool *b, const struct fm__buf_tcache *t)
{
    uint64_t ops = 0;
    for (unsigned c = 0; c < b->nclasses; c++)
        ops += fm__buf_tcc_gets(&t->cls[c]) + fm__buf_tcc_puts(fm__buf_tcc_word(&t->cls[c]));
    return ops;
}

static int fm__buf_tc_holds(const struct fm_bufpool *b, const struct fm__buf_tcache *t)
{
    for (unsigned c = 0; c < b->nclasses; c++)
        if (fm__buf_tcc_n(fm__buf_tcc_word(&t->cls[c])))
            return 1;
    return 0;
}

/* A cache used since the last tick is left alone (its time noted); one that
 * was not is emptied, its blocks dated from when it was last seen in use. */
static void fm__buf_tick_one(void *payload, void *ctx)
{
    struct fm__buf_tick_ctx *x = ctx;
    struct fm__buf_tcache *t = payload;
    uint64_t ops = fm__buf_tc_ops(x->b, t);
    if (ops != t->seen_ops) {
        t->seen_ops = ops;
        t->active_at = x->now;
        x->busy |= fm__buf_tc_holds(x->b, t);
        return;
    }
    fm__buf_tc_empty(x->b, t, t->active_at);
}

int64_t fm__buf_tick(fm__maint_client *m, int64_t now)
{
    struct fm_bufpool *b = (struct fm_bufpool *)((char *)m - offsetof(struct fm_bufpool, maint));
    atomic_store(&b->armed, 0); /* seq_cst: see the handshake above */
    struct fm__buf_tick_ctx x = {b, now, 0};
    fm__tc_drain(&b->tc, fm__buf_tick_one, &x);
    int64_t oldest = INT64_MAX;
    for (unsigned c = 0; c < b->nclasses; c++) {
        int64_t o = fm__buf_store_decay(b, c, now - b->decay_ns);
        oldest = o < oldest ? o : oldest;
    }
    int64_t next = x.busy ? now + b->tick_ns : INT64_MAX;
    int64_t due = oldest > INT64_MAX - b->decay_ns ? INT64_MAX : oldest + b->decay_ns;
    if (due < next)
        next = due;
    if (next != INT64_MAX)
        atomic_store(&b->armed, 1); /* a later put need not ask: we will tick */
    return next;
}

static void fm__buf_drain_one(void *payload, void *ctx)
{
    fm__buf_tc_empty(ctx, payload, fm__now_coarse_ns());
}

void fm__buf_drain_all(struct fm_bufpool *b)
{
    fm__tc_drain(&b->tc, fm__buf_drain_one, b);
}

void fm_bufpool_trim(fm_bufpool *b)
{
    if (!b)
        return;
    fm__buf_drain_all(b);
    for (unsigned c = 0; c < b->nclasses; c++)
        fm__buf_store_decay(b, c, INT64_MAX);
}
