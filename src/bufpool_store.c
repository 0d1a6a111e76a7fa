/* The buffer pool's central store: per class, the free blocks (large classes,
 * one mapping each) or the chunks (small classes), each with the time it was
 * last used, newest first, so that decay unmaps from the old end. Locks and
 * layout: bufpool_internal.h.
 *
 * Large blocks (FM__BUF_LARGE and up) have a mapping of their own: a free one
 * is unmapped whole, whatever its neighbours hold, so a burst goes back to
 * the OS even while some of its buffers stay live. Small blocks are carved
 * from 64 KiB chunks; a chunk goes back once every block in it is free.
 */
#include "bufpool_internal.h"

static int fm__buf_is_large(const struct fm__buf_class *k)
{
    return k->size >= FM__BUF_LARGE;
}

/* A free large block keeps its list node in its body. */
static struct fm__buf_node *fm__buf_node_of(struct fm__buf_hdr *h)
{
    return (struct fm__buf_node *)(h + 1);
}

static struct fm__buf_hdr *fm__buf_block_of(struct fm__buf_node *n)
{
    return (struct fm__buf_hdr *)n - 1;
}

/* ---- colours of large blocks ----
 *
 * A large block is a mapping of its own. Were its header at the mapping's
 * start, every header, and the first bytes of every buffer with it, would sit
 * at the same offset in a page, so in the same set of the L1 data cache (its
 * sets repeat every 4 KiB): a thread going through more classes than the set
 * has ways would miss on each get's header and on each buffer's first bytes.
 * So a new block's header goes a whole number of cache lines (its colour, one
 * of FM__BUF_COLOURS) into a mapping one page longer than the block, and
 * successive blocks take colours FM__BUF_COLOUR_STRIDE apart, an odd stride:
 * it visits every colour before one repeats, and blocks mapped one after the
 * other land far apart. Buffers stay 16-byte aligned (the header is 16 bytes
 * and the colour a multiple of 64) and keep the class's whole usable size.
 * The mapping starts at the header rounded down to FM__BUF_COLOUR_SPAN (pages
 * are at least that), so nothing more is stored. The page more is counted in
 * every byte figure (the class's span): it is address space, and becomes
 * resident only as far as the buffer reaches into it. */
#define FM__BUF_COLOUR_LINE 64 /* an L1 line */
#define FM__BUF_COLOUR_SPAN ((uintptr_t)FM__BUF_COLOURS * FM__BUF_COLOUR_LINE) /* 4 KiB */
#define FM__BUF_COLOUR_STRIDE 39u /* about 64 / 1.618: neighbours far apart */

static size_t fm__buf_colour_next(struct fm_bufpool *b)
{
    /* relaxed: any value will do, the count only spreads the colours. */
    unsigned n = atomic_fetch_add_explicit(&b->colours, 1, memory_order_relaxed);
    return (size_t)(n * FM__BUF_COLOUR_STRIDE % FM__BUF_COLOURS) * FM__BUF_COLOUR_LINE;
}

/* The mapping that holds large block h. */
static void *fm__buf_large_base(struct fm__buf_hdr *h)
{
    return (void *)((uintptr_t)h & ~(FM__BUF_COLOUR_SPAN - 1));
}

static struct fm__buf_chunk *fm__buf_chunk_of(const void *p)
{
    return (struct fm__buf_chunk *)((uintptr_t)p & ~(uintptr_t)(FM__BUF_CHUNK - 1));
}

/* A free small block links to the next through its first body word. */
static struct fm__buf_hdr **fm__buf_link(struct fm__buf_hdr *h)
{
    return (struct fm__buf_hdr **)(h + 1);
}

void fm__buf_store_init(struct fm_bufpool *b)
{
    for (unsigned c = 0; c < b->nclasses; c++) {
        struct fm__buf_class *k = &b->cls[c];
        pthread_mutex_init(&k->lock, NULL);
        k->size = fm__buf_class_size(c);
        k->span = k->size >= FM__BUF_LARGE ? k->size + fm__page_size() : k->size;
        size_t cap = FM__BUF_TC_CLASS_BYTES / k->size;
        k->tc_cap = cap < 1 ? 1 : cap > FM__BUF_TC_DEPTH ? FM__BUF_TC_DEPTH : (unsigned)cap;
    }
}

/* Bytes one aged entry of k holds mapped. */
static size_t fm__buf_entry_bytes(const struct fm__buf_class *k)
{
    return fm__buf_is_large(k) ? k->span : FM__BUF_CHUNK;
}

/* Free bytes held by class k: its own count (for stats) and the pool's (for
 * cache_limit). Class lock held. relaxed for k->cached: a statistic read on
 * its own, the class lock orders it against the lists it describes; seq_cst
 * for central_bytes: see fm__buf_claim. */
static void fm__buf_cached_in(struct fm_bufpool *b, struct fm__buf_class *k, size_t bytes)
{
    atomic_fetch_add_explicit(&k->cached, bytes, memory_order_relaxed);
    atomic_fetch_add(&b->central_bytes, bytes);
}

static void fm__buf_cached_out(struct fm_bufpool *b, struct fm__buf_class *k, size_t bytes)
{
    atomic_fetch_sub_explicit(&k->cached, bytes, memory_order_relaxed);
    atomic_fetch_sub(&b->central_bytes, bytes);
}

/* Counts n entries of k as given back. Called under the class lock, before
 * the unmap itself, so that a stats snapshot never sees an entry gone from
 * the lists but still mapped. relaxed: statistics, each exact on its own. */
static void fm__buf_forget(struct fm_bufpool *b, const struct fm__buf_class *k, unsigned n)
{
    size_t bytes = n * fm__buf_entry_bytes(k);
    atomic_fetch_sub_explicit(&b->mapped, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->returned, bytes, memory_order_relaxed);
}

/* Claims room for size bytes under cache_limit; 0 when it is full. seq_cst:
 * besides the limit, this is the store side of the arming handshake
 * (fm__buf_arm): the caller's later load of armed cannot move before it. */
static int fm__buf_claim(struct fm_bufpool *b, struct fm__buf_class *k, size_t size)
{
    size_t before = atomic_fetch_add(&b->central_bytes, size);
    if (before + size <= b->cache_limit) {
        atomic_fetch_add_explicit(&k->cached, size, memory_order_relaxed); /* as in cached_in */
        return 1;
    }
    atomic_fetch_sub(&b->central_bytes, size);
    return 0;
}

/* ---- large classes ---- */

static struct fm__buf_hdr *fm__buf_large_get(struct fm_bufpool *b, struct fm__buf_class *k,
                                             int *fresh)
{
    pthread_mutex_lock(&k->lock);
    struct fm__buf_node *n = k->aged.head;
    if (n) {
        fm__buf_list_remove(&k->aged, n);
        fm__buf_cached_out(b, k, k->span);
    }
    pthread_mutex_unlock(&k->lock);
    if (n) {
        *fresh = 0;
        return fm__buf_block_of(n);
    }
    *fresh = 1;
    char *base = fm__os_map(k->span);
    if (!base)
        return NULL;
    atomic_fetch_add_explicit(&b->mapped, k->span, memory_order_relaxed); /* statistics */
    return (struct fm__buf_hdr *)(base + fm__buf_colour_next(b));
}

/* Class lock held. Returns the block's mapping when it must be unmapped
 * (cache full). */
static void *fm__buf_large_put(struct fm_bufpool *b, struct fm__buf_class *k,
                               struct fm__buf_hdr *h, int64_t stamp)
{
    if (!fm__buf_claim(b, k, k->span))
        return fm__buf_large_base(h);
    fm__buf_list_push(&k->aged, fm__buf_node_of(h), stamp);
    return NULL;
}

/* ---- small classes ---- */

static struct fm__buf_chunk *fm__buf_chunk_new(struct fm_bufpool *b, unsigned c)
{
    struct fm__buf_chunk *ch = fm__os_map_aligned(FM__BUF_CHUNK, FM__BUF_CHUNK);
    if (!ch)
        return NULL;
    ch->nblocks = (uint32_t)((FM__BUF_CHUNK - FM__BUF_CHUNK_HDR) / b->cls[c].size);
    ch->cls = c;
    atomic_fetch_add_explicit(&b->mapped, FM__BUF_CHUNK, memory_order_relaxed); /* statistics */
    return ch;
}

/* A block from ch, which has room; class lock held. */
static struct fm__buf_hdr *fm__buf_chunk_take(struct fm_bufpool *b, struct fm__buf_class *k,
                                              struct fm__buf_chunk *ch, int *fresh)
{
    struct fm__buf_hdr *h = ch->free;
    *fresh = h == NULL;
    if (h) {
        ch->free = *fm__buf_link(h);
        fm__buf_cached_out(b, k, k->size);
    } else {
        h = (struct fm__buf_hdr *)((char *)ch + FM__BUF_CHUNK_HDR + ch->carved++ * k->size);
    }
    if (++ch->nlive == ch->nblocks)
        fm__buf_list_remove(&k->partial, &ch->node);
    return h;
}

static struct fm__buf_hdr *fm__buf_small_get(struct fm_bufpool *b, unsigned c, int *fresh)
{
    struct fm__buf_class *k = &b->cls[c];
    pthread_mutex_lock(&k->lock);
    struct fm__buf_node *n = k->partial.head;
    if (!n && (n = k->aged.head)) { /* an empty chunk: back in use */
        fm__buf_list_remove(&k->aged, n);
        fm__buf_list_push(&k->partial, n, 0);
    }
    if (!n) {
        pthread_mutex_unlock(&k->lock); /* no lock across mmap */
        struct fm__buf_chunk *ch = fm__buf_chunk_new(b, c);
        if (!ch)
            return NULL;
        pthread_mutex_lock(&k->lock);
        n = &ch->node;
        fm__buf_list_push(&k->partial, n, 0);
    }
    struct fm__buf_hdr *h = fm__buf_chunk_take(b, k, (struct fm__buf_chunk *)n, fresh);
    pthread_mutex_unlock(&k->lock);
    return h;
}

/* Class lock held. Returns the chunk when it must be unmapped: it emptied
 * and the cache is full. */
static void *fm__buf_small_put(struct fm_bufpool *b, struct fm__buf_class *k,
                               struct fm__buf_hdr *h, int64_t stamp, int *aged)
{
    struct fm__buf_chunk *ch = fm__buf_chunk_of(h);
    *fm__buf_link(h) = ch->free;
    ch->free = h;
    if (ch->nlive-- == ch->nblocks)
        fm__buf_list_push(&k->partial, &ch->node, stamp);
    fm__buf_cached_in(b, k, k->size); /* the block sits in its chunk whatever the limit */
    if (ch->nlive > 0)
        return NULL;
    fm__buf_list_remove(&k->partial, &ch->node);
    if (atomic_load(&b->central_bytes) > b->cache_limit) {
        fm__buf_cached_out(b, k, (size_t)ch->carved * k->size);
        return ch;
    }
    fm__buf_list_push(&k->aged, &ch->node, stamp);
    *aged = 1;
    return NULL;
}

/* ---- both ---- */

struct fm__buf_hdr *fm__buf_store_get(struct fm_bufpool *b, unsigned c, int *fresh)
{
    struct fm__buf_class *k = &b->cls[c];
    struct fm__buf_hdr *h = fm__buf_is_large(k) ? fm__buf_large_get(b, k, fresh)
                                                 : fm__buf_small_get(b, c, fresh);
    /* relaxed: statistics, each exact on its own. */
    if (*fresh || !h)
        atomic_fetch_add_explicit(&k->misses, 1, memory_order_relaxed);
    if (!h)
        atomic_fetch_add_explicit(&k->failed, 1, memory_order_relaxed);
    return h;
}

int fm__buf_store_put(struct fm_bufpool *b, unsigned c, struct fm__buf_hdr *const *v, unsigned n,
                      int64_t stamp)
{
    struct fm__buf_class *k = &b->cls[c];
    void *drop[FM__BUF_TC_DEPTH];
    unsigned ndrop = 0;
    int aged = 0;
    pthread_mutex_lock(&k->lock);
    for (unsigned i = 0; i < n; i++) {
        void *d = fm__buf_is_large(k) ? fm__buf_large_put(b, k, v[i], stamp)
                                      : fm__buf_small_put(b, k, v[i], stamp, &aged);
        if (d)
            drop[ndrop++] = d;
    }
    if (fm__buf_is_large(k))
        aged = ndrop < n;
    fm__buf_forget(b, k, ndrop);
    pthread_mutex_unlock(&k->lock);
    for (unsigned i = 0; i < ndrop; i++)
        fm__os_unmap(drop[i], fm__buf_entry_bytes(k));
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(&b->dropped, ndrop, memory_order_relaxed);
    return aged;
}

int64_t fm__buf_store_decay(struct fm_bufpool *b, unsigned c, int64_t cutoff)
{
    struct fm__buf_class *k = &b->cls[c];
    struct fm__buf_node *gone = NULL, *n;
    size_t bytes = 0;
    unsigned count = 0;
    pthread_mutex_lock(&k->lock);
    while ((n = k->aged.tail) && n->stamp <= cutoff) {
        fm__buf_list_remove(&k->aged, n);
        bytes += fm__buf_is_large(k) ? k->span
                                     : (size_t)((struct fm__buf_chunk *)n)->carved * k->size;
        n->next = gone;
        gone = n;
        count++;
    }
    int64_t oldest = n ? n->stamp : INT64_MAX;
    fm__buf_cached_out(b, k, bytes);
    fm__buf_forget(b, k, count);
    pthread_mutex_unlock(&k->lock);
    while ((n = gone)) {
        gone = n->next;
        fm__os_unmap(fm__buf_is_large(k) ? fm__buf_large_base(fm__buf_block_of(n)) : (void *)n,
                     fm__buf_entry_bytes(k));
    }
    return oldest;
}
