/* The buffer pool's statistics: the classes' own counters plus what every
 * thread cache counts, read without stopping anybody. */
#include <errno.h>
#include <stdio.h>

#include "bufpool_internal.h"

/* One class's counters, summed over the store and every thread cache. */
struct fm__buf_tally {
    uint64_t gets, puts;
    uint64_t tc_blocks; /* blocks in thread caches */
};

struct fm__buf_tally_ctx {
    const struct fm_bufpool *b;
    struct fm__buf_tally *t; /* nclasses entries */
};

static void fm__buf_tally_one(const void *payload, void *ctx)
{
    const struct fm__buf_tally_ctx *x = ctx;
    const struct fm__buf_tcache *tc = payload;
    for (unsigned c = 0; c < x->b->nclasses; c++) {
        const struct fm__buf_tcc *q = &tc->cls[c];
        /* relaxed: each counter on its own is all a snapshot promises. */
        uint64_t w = fm__buf_tcc_word(q);
        x->t[c].gets += fm__buf_tcc_gets(q);
        x->t[c].puts += fm__buf_tcc_puts(w);
        x->t[c].tc_blocks += fm__buf_tcc_n(w);
    }
}

static void fm__buf_tally(const struct fm_bufpool *b, struct fm__buf_tally *t)
{
    for (unsigned c = 0; c < b->nclasses; c++) {
        const struct fm__buf_class *k = &b->cls[c];
        t[c] = (struct fm__buf_tally){
            atomic_load_explicit(&k->gets, memory_order_relaxed),
            atomic_load_explicit(&k->puts, memory_order_relaxed), 0};
    }
    struct fm__buf_tally_ctx x = {b, t};
    /* The owner is only read: visit takes the tc lock, changes nothing. */
    fm__tc_visit((struct fm__tc_owner *)&b->tc, fm__buf_tally_one, &x);
}

/* Class c's figures from its tally. A snapshot can catch a put counted before
 * its get: live bytes never go below zero. */
static void fm__buf_class_fill(const struct fm_bufpool *b, unsigned c,
                               const struct fm__buf_tally *t, struct fm_bufpool_class_stats *out)
{
    const struct fm__buf_class *k = &b->cls[c];
    uint64_t misses = atomic_load_explicit(&k->misses, memory_order_relaxed);
    uint64_t failed = atomic_load_explicit(&k->failed, memory_order_relaxed);
    uint64_t out_now = t->gets - failed;
    out->size = k->size - FM__BUF_HDR;
    out->gets = t->gets;
    out->misses = misses;
    out->hits = t->gets > misses ? t->gets - misses : 0;
    out->puts = t->puts;
    out->bytes_live = out_now > t->puts ? (size_t)(out_now - t->puts) * k->span : 0;
    out->bytes_cached = atomic_load_explicit(&k->cached, memory_order_relaxed) +
                        (size_t)t->tc_blocks * k->span;
}

int fm_bufpool_class_stats(const fm_bufpool *b, int cls, struct fm_bufpool_class_stats *out)
{
    if (!b || !out || cls < 0 || (unsigned)cls >= b->nclasses)
        return -EINVAL;
    struct fm__buf_tally t[FM__BUF_MAX_CLASSES];
    fm__buf_tally(b, t);
    fm__buf_class_fill(b, (unsigned)cls, &t[cls], out);
    return 0;
}

int fm_bufpool_stats(const fm_bufpool *b, struct fm_bufpool_stats *out)
{
    if (!b || !out)
        return -EINVAL;
    struct fm__buf_tally t[FM__BUF_MAX_CLASSES];
    fm__buf_tally(b, t);
    /* relaxed: statistics, each exact on its own. */
    uint64_t direct = atomic_load_explicit(&b->direct_gets, memory_order_relaxed);
    uint64_t direct_failed = atomic_load_explicit(&b->direct_failed, memory_order_relaxed);
    *out = (struct fm_bufpool_stats){
        .gets = direct,
        .misses = direct,
        .failed = direct_failed,
        .puts = atomic_load_explicit(&b->direct_puts, memory_order_relaxed),
        .dropped = atomic_load_explicit(&b->dropped, memory_order_relaxed),
        .direct = direct,
        .bytes_live = atomic_load_explicit(&b->direct_live, memory_order_relaxed),
        .bytes_mapped = atomic_load_explicit(&b->mapped, memory_order_relaxed),
        .bytes_returned = atomic_load_explicit(&b->returned, memory_order_relaxed),
        .cache_limit = b->cache_limit,
        .classes = (int)b->nclasses,
    };
    for (unsigned c = 0; c < b->nclasses; c++) {
        struct fm_bufpool_class_stats k;
        fm__buf_class_fill(b, c, &t[c], &k);
        out->gets += k.gets;
        out->hits += k.hits;
        out->misses += k.misses;
        out->failed += atomic_load_explicit(&b->cls[c].failed, memory_order_relaxed);
        out->puts += k.puts;
        out->bytes_live += k.bytes_live;
        out->bytes_cached += k.bytes_cached;
    }
    return 0;
}

int fm_bufpool_stats_json(const fm_bufpool *b, char *buf, size_t len)
{
    struct fm_bufpool_stats s;
    if (fm_bufpool_stats(b, &s) != 0 || (!buf && len))
        return -EINVAL;
    return snprintf(buf, len,
                    "{\"gets\":%llu,\"hits\":%llu,\"misses\":%llu,\"failed\":%llu,\"puts\":%llu,"
                    "\"dropped\":%llu,\"direct\":%llu,\"bytes_live\":%zu,\"bytes_cached\":%zu,"
                    "\"bytes_mapped\":%zu,\"bytes_returned\":%llu,\"cache_limit\":%zu,"
                    "\"classes\":%d}",
                    (unsigned long long)s.gets, (unsigned long long)s.hits,
                    (unsigned long long)s.misses, (unsigned long long)s.failed,
                    (unsigned long long)s.puts, (unsigned long long)s.dropped,
                    (unsigned long long)s.direct, s.bytes_live, s.bytes_cached, s.bytes_mapped,
                    (unsigned long long)s.bytes_returned, s.cache_limit, s.classes);
}
