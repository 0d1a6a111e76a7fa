/* The buffer pool: creation, the get/put hot path, direct mappings above
 * max_size, the default pool. Design and locks: bufpool_internal.h. */
#include <errno.h>
#include <string.h>

#include "bufpool_internal.h"

/* The paths off the thread-cache fast path stay out of line, so that get and
 * put save no registers and set up no frame for them. */
#define FM__BUF_SLOW __attribute__((noinline, cold))

int fm_bufpool_new(fm_bufpool **out, const fm_bufpool_opts *opts)
{
    fm_bufpool_opts o = {0};
    if (opts)
        o = *opts;
    if (!out || o.max_size > FM__BUF_MAX_LIMIT)
        return -EINVAL;
    size_t max = o.max_size ? o.max_size : FM__BUF_DEFAULT_MAX;
    unsigned n = fm__buf_class_of(max) + 1;
    size_t size = fm__buf_round(sizeof(fm_bufpool) + n * sizeof(struct fm__buf_class),
                                FM__CACHELINE);
    fm_bufpool *b = fm__sys.aligned_alloc(FM__CACHELINE, size);
    if (!b)
        return -ENOMEM;
    memset(b, 0, size);
    b->max_size = fm__buf_class_size(n - 1) - FM__BUF_HDR; /* the last class's whole size */
    b->cache_limit = o.cache_limit ? o.cache_limit : FM__BUF_DEFAULT_LIMIT;
    b->decay_ns = o.decay_ns ? o.decay_ns : FM__BUF_DEFAULT_DECAY;
    /* Ticks an eighth of the decay apart: memory goes back at most about a
     * quarter of decay_ns late (one tick to see a thread cache idle, one more
     * past the deadline). */
    b->tick_ns = b->decay_ns / 8 > 1000000 ? b->decay_ns / 8 : 1000000;
    b->zero_on_get = o.zero_on_get;
    b->nclasses = n;
    /* Never decaying: armed for good, so no put ever asks for a tick. */
    atomic_init(&b->armed, b->decay_ns < 0);
    fm__buf_store_init(b);
    fm__tc_owner_init(&b->tc, sizeof(struct fm__buf_tcache) + n * sizeof(struct fm__buf_tcc),
                      fm__buf_tc_init, fm__buf_tc_flush);
    if (b->decay_ns >= 0) {
        b->maint.tick = fm__buf_tick;
        fm__maint_register(&b->maint);
    }
    fm__buf_register(b);
    *out = b;
    return 0;
}

/* Debug builds say how much the program still held at destroy. */
static void fm__buf_report_leaks(const fm_bufpool *b)
{
#ifdef FM_DEBUG
    struct fm_bufpool_stats s;
    fm_bufpool_stats(b, &s);
    if (s.bytes_live)
        fprintf(stderr, "formica: fm_bufpool_destroy: %zu bytes still live are leaked\n",
                s.bytes_live);
#else
    (void)b;
#endif
}

void fm_bufpool_destroy(fm_bufpool *b)
{
    if (!b)
        return;
    fm__buf_unregister(b);
    if (b->decay_ns >= 0)
        fm__maint_unregister(&b->maint); /* waits out a tick in progress */
    fm__buf_drain_all(b);
    fm__buf_report_leaks(b); /* while the thread caches still count */
    fm__tc_owner_fini(&b->tc);
    for (unsigned c = 0; c < b->nclasses; c++) {
        fm__buf_store_decay(b, c, INT64_MAX);
        pthread_mutex_destroy(&b->cls[c].lock);
    }
    fm__sys.free(b);
}

/* ---- direct mappings: requests above max_size ---- */

/* [length word, padding][header][buffer]: a direct buffer starts 32 bytes
 * into its own mapping, and its header counts the mapping's pages. */
FM__BUF_SLOW static void *fm__buf_direct_get(fm_bufpool *b, size_t size)
{
    size_t page = fm__page_size();
    size_t len = size <= SIZE_MAX - 2 * FM__BUF_HDR - page
                     ? fm__buf_round(size + 2 * FM__BUF_HDR, page) : 0;
    char *base = len && len / page <= UINT32_MAX ? fm__os_map(len) : NULL;
    /* relaxed: statistics, each exact on its own. */
    atomic_fetch_add_explicit(&b->direct_gets, 1, memory_order_relaxed);
    if (!base) {
        atomic_fetch_add_explicit(&b->direct_failed, 1, memory_order_relaxed);
        errno = ENOMEM;
        return NULL;
    }
    atomic_fetch_add_explicit(&b->mapped, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->direct_live, len, memory_order_relaxed);
    struct fm__buf_hdr *h = (struct fm__buf_hdr *)(base + FM__BUF_HDR);
    *h = (struct fm__buf_hdr){b, FM__BUF_DIRECT, (uint32_t)(len / page)};
    return h + 1;
}

static size_t fm__buf_direct_len(const struct fm__buf_hdr *h)
{
    return (size_t)h->cls * fm__page_size();
}

FM__BUF_SLOW static void fm__buf_direct_put(fm_bufpool *b, struct fm__buf_hdr *h)
{
    size_t len = fm__buf_direct_len(h);
    fm__os_unmap((char *)h - FM__BUF_HDR, len);
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&b->direct_puts, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&b->mapped, len, memory_order_relaxed);
    atomic_fetch_sub_explicit(&b->direct_live, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->returned, len, memory_order_relaxed);
}

/* ---- get ---- */

/* Zeroes a block handed out again (zero_on_get). */
FM__BUF_SLOW static void *fm__buf_zeroed(fm_bufpool *b, void *buf, unsigned c)
{
    return memset(buf, 0, b->cls[c].size - FM__BUF_HDR);
}

static inline void *fm__buf_hand_out(fm_bufpool *b, struct fm__buf_hdr *h, unsigned c, int fresh)
{
    *h = (struct fm__buf_hdr){b, FM__BUF_LIVE, c};
    if (FM__UNLIKELY(b->zero_on_get) && !fresh) /* fresh memory comes zeroed from the kernel */
        return fm__buf_zeroed(b, h + 1, c);
    return h + 1;
}

/* The same for a block from the thread cache of class c: it was put as a
 * live block of b and class c (fm_bufpool_put checked), so only its state
 * changes. */
static inline void *fm__buf_hand_out_cached(fm_bufpool *b, struct fm__buf_hdr *h, unsigned c)
{
    FM__ASSERT(h->pool == b && h->cls == c && h->state == FM__BUF_FREE);
    h->state = FM__BUF_LIVE;
    if (FM__UNLIKELY(b->zero_on_get))
        return fm__buf_zeroed(b, h + 1, c);
    return h + 1;
}

/* A block from the store: the thread cache had none (counted there), or the
 * thread has no cache (no memory for one: counted centrally). */
FM__BUF_SLOW static void *fm__buf_get_slow(fm_bufpool *b, unsigned c, int counted)
{
    if (!counted)
        atomic_fetch_add_explicit(&b->cls[c].gets, 1, memory_order_relaxed); /* statistics */
    int fresh;
    struct fm__buf_hdr *h = fm__buf_store_get(b, c, &fresh);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    return fm__buf_hand_out(b, h, c, fresh);
}

/* A get from the thread cache t, entered. */
static inline void *fm__buf_get_in(fm_bufpool *b, struct fm__buf_tcache *t, unsigned c)
{
    struct fm__buf_tcc *q = &t->cls[c];
    uint64_t w = fm__buf_tcc_word(q); /* only this thread writes it while in its bracket */
    size_t n = fm__buf_tcc_n(w);
    if (FM__UNLIKELY(!n)) {
        fm__buf_add(&q->slow_gets, 1);
        fm__tc_leave(t);
        return fm__buf_get_slow(b, c, 1);
    }
    struct fm__buf_hdr *h = q->v[n - 1];
    fm__buf_tcc_set(q, w - 1);
    fm__tc_leave(t);
    return fm__buf_hand_out_cached(b, h, c);
}

/* The calling thread's cache entered on the slow path (its first call, a
 * drain since its last one, or no membarrier), then the same get. */
FM__BUF_SLOW static void *fm__buf_get_entering(fm_bufpool *b, unsigned c)
{
    struct fm__buf_tcache *t = fm__tc_enter_slow(&b->tc);
    if (!t)
        return fm__buf_get_slow(b, c, 0);
    fm__tc_reopen(t); /* a drain only takes blocks: the cache is as usable as before */
    return fm__buf_get_in(b, t, c);
}

void *fm_bufpool_get(fm_bufpool *b, size_t size)
{
    if (FM__UNLIKELY(!b)) {
        errno = EINVAL;
        return NULL;
    }
    if (FM__UNLIKELY(size > b->max_size))
        return fm__buf_direct_get(b, size);
    unsigned c = fm__buf_class_of(size);
    struct fm__buf_tcache *t = fm__tc_enter(&b->tc);
    if (FM__UNLIKELY(!t))
        return fm__buf_get_entering(b, c);
    return fm__buf_get_in(b, t, c);
}

/* ---- put ---- */

/* Not a live class block of b: a direct one, or a bad put. */
FM__BUF_SLOW static void fm__buf_put_other(fm_bufpool *b, struct fm__buf_hdr *h, const void *buf)
{
    if (h->state == FM__BUF_FREE && h->pool == b)
        fm__die("fm_bufpool_put: buffer %p was already put back (double put)", buf);
    if (h->state != FM__BUF_DIRECT || h->pool != b)
        fm__die("fm_bufpool_put: %p is not a live buffer of this pool", buf);
    fm__buf_direct_put(b, h);
}

/* The thread's cache of class c (word w) is full: its newer half (at least
 * one block) goes to the central store, then h takes the first place freed.
 * n shrinks before any entry is overwritten, so the cache never holds a block
 * twice, even as a fork() child sees a bracket left half done. */
FM__BUF_SLOW static void fm__buf_spill(fm_bufpool *b, struct fm__buf_tcache *t, unsigned c,
                                       struct fm__buf_hdr *h, uint64_t w)
{
    struct fm__buf_tcc *q = &t->cls[c];
    struct fm__buf_hdr *out[FM__BUF_TC_DEPTH];
    size_t n = fm__buf_tcc_n(w); /* == cap */
    size_t k = (n + 1) / 2;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    memcpy(out, q->v + n - k, k * sizeof *out);
    fm__buf_add(&q->moved_out, k);
    fm__buf_tcc_set(q, w - k); /* only this thread writes */
    atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the order, see above */
    q->v[n - k] = h;
    atomic_signal_fence(memory_order_seq_cst);
    fm__buf_tcc_set(q, w - k + 1 + FM__BUF_TCC_PUT); /* h, and the put counted */
    fm__tc_leave(t);
    if (fm__buf_store_put(b, c, out, (unsigned)k, fm__now_coarse_ns()))
        fm__buf_arm(b);
}

/* No memory for a cache for this thread. */
FM__BUF_SLOW static void fm__buf_put_uncached(fm_bufpool *b, unsigned c, struct fm__buf_hdr *h)
{
    atomic_fetch_add_explicit(&b->cls[c].puts, 1, memory_order_relaxed); /* statistics */
    if (fm__buf_store_put(b, c, &h, 1, fm__now_coarse_ns()))
        fm__buf_arm(b);
}

/* A put into the thread cache t, entered. */
static inline void fm__buf_put_in(fm_bufpool *b, struct fm__buf_tcache *t, unsigned c,
                                  struct fm__buf_hdr *h)
{
    struct fm__buf_tcc *q = &t->cls[c];
    uint64_t w = fm__buf_tcc_word(q); /* only this thread writes it while in its bracket */
    size_t n = fm__buf_tcc_n(w);
    if (FM__UNLIKELY(n == q->cap)) {
        fm__buf_spill(b, t, c, h, w);
        return;
    }
    q->v[n] = h;
    /* the entry before the count, also in the compiler's order: a fork()
     * child that sees this bracket half done never counts a stale entry */
    atomic_signal_fence(memory_order_seq_cst);
    fm__buf_tcc_set(q, w + 1 + FM__BUF_TCC_PUT); /* the block, and the put counted */
    /* relaxed, inside the bracket: the bracket's handshake with the tick's
     * drain orders this load against the tick's reset of armed (fm__buf_arm). */
    int armed = atomic_load_explicit(&b->armed, memory_order_relaxed);
    fm__tc_leave(t);
    if (FM__UNLIKELY(!armed))
        fm__buf_arm(b);
}

/* The calling thread's cache entered on the slow path, then the same put. */
FM__BUF_SLOW static void fm__buf_put_entering(fm_bufpool *b, unsigned c, struct fm__buf_hdr *h)
{
    struct fm__buf_tcache *t = fm__tc_enter_slow(&b->tc);
    if (!t) {
        fm__buf_put_uncached(b, c, h);
        return;
    }
    fm__tc_reopen(t); /* as in fm__buf_get_entering */
    fm__buf_put_in(b, t, c, h);
}

void fm_bufpool_put(fm_bufpool *b, void *buf)
{
    if (!buf)
        return;
    struct fm__buf_hdr *h = fm__buf_hdr_of(buf);
    if (FM__UNLIKELY(h->state != FM__BUF_LIVE || h->pool != b)) {
        fm__buf_put_other(b, h, buf);
        return;
    }
    unsigned c = h->cls;
    h->state = FM__BUF_FREE;
#ifdef FM_DEBUG
    memset(buf, 0xa5, b->cls[c].size - FM__BUF_HDR); /* stale data shows as 0xa5 bytes */
#endif
    struct fm__buf_tcache *t = fm__tc_enter(&b->tc);
    if (FM__UNLIKELY(!t)) {
        fm__buf_put_entering(b, c, h);
        return;
    }
    fm__buf_put_in(b, t, c, h);
}

size_t fm_bufpool_usable_size(fm_bufpool *b, const void *buf)
{
    if (!b || !buf)
        return 0;
    const struct fm__buf_hdr *h = fm__buf_hdr_of(buf);
    if (h->pool != b) /* not ours: nothing is known of it */
        return 0;
    if (h->state == FM__BUF_DIRECT)
        return fm__buf_direct_len(h) - 2 * FM__BUF_HDR;
    return h->state == FM__BUF_LIVE ? b->cls[h->cls].size - FM__BUF_HDR : 0;
}

/* ---- the default pool ---- */

static fm_bufpool *fm__buf_default;
static pthread_once_t fm__buf_default_once = PTHREAD_ONCE_INIT;

static void fm__buf_default_make(void)
{
    if (fm_bufpool_new(&fm__buf_default, NULL) != 0)
        fm__buf_default = NULL;
}

fm_bufpool *fm_default_bufpool(void)
{
    pthread_once(&fm__buf_default_once, fm__buf_default_make);
    return fm__buf_default;
}

void *fm_buf_get(size_t size)
{
    fm_bufpool *b = fm_default_bufpool();
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    return fm_bufpool_get(b, size);
}

void fm_buf_put(void *buf)
{
    if (buf)
        fm_bufpool_put(fm_default_bufpool(), buf);
}

void fm_buf_trim(void)
{
    fm_bufpool *b = fm_default_bufpool();
    if (b)
        fm_bufpool_trim(b);
}
