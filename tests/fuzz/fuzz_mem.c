/* The API fuzzer's object-pool and buffer-pool ops. Everything handed out
 * is written over its whole size with a pattern of its holder and checked
 * when it is given back, so two holders of one block, or a block shorter than
 * promised, show up as a changed pattern (or as a sanitizer report). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)
#define FZ_FILL_ALL MIB  /* larger items are written at both ends only */
#define FZ_CHECK_ALL (64 * KIB) /* larger items are checked at both ends and sampled */
/* Debug builds fill a pooled buffer's whole block at put: pooled gets stay
 * below this (the classes above the default max_size stay reachable). */
#define FZ_POOLED_MAX (6 * MIB)

/* ---- patterns ---- */

static void fz_fill(void *ptr, size_t size, uint8_t v)
{
    if (size <= FZ_FILL_ALL) {
        memset(ptr, v, size);
        return;
    }
    memset(ptr, v, 64 * KIB);
    memset((char *)ptr + size - 64 * KIB, v, 64 * KIB);
}

static void fz_expect(const void *ptr, size_t size, uint8_t v)
{
    const uint8_t *b = ptr;
    size_t head = size <= FZ_CHECK_ALL ? size : 4 * KIB;
    for (size_t i = 0; i < head; i++)
        FZ_CHECK_EQ(b[i], v);
    if (size <= FZ_CHECK_ALL)
        return;
    for (size_t i = size - 4 * KIB; i < size; i++)
        FZ_CHECK_EQ(b[i], v);
    size_t filled = size <= FZ_FILL_ALL ? size : 64 * KIB;
    for (size_t i = head; i < filled; i += 509)
        FZ_CHECK_EQ(b[i], v);
}

/* ---- holding ---- */

static struct fz_item *fz_hold(struct fz_thread *t, void *ptr, size_t size, uint8_t fill)
{
    fz_live_add(t->w, ptr);
    fz_fill(ptr, size, fill);
    struct fz_item *it = &t->held[t->nheld++];
    *it = (struct fz_item){ptr, size, NULL, NULL, fill};
    return it;
}

/* Puts it back into its pool after checking its pattern. */
static void fz_mem_give_back(struct fz_world *w, struct fz_item *it)
{
    fz_expect(it->ptr, it->size, it->fill);
    fz_live_remove(w, it->ptr);
    if (it->obj)
        fm_objpool_put(it->obj->p, it->ptr);
    else
        fm_bufpool_put(it->buf->b, it->ptr);
    it->ptr = NULL;
}

static void fz_unhold(struct fz_thread *t, int i)
{
    t->held[i] = t->held[--t->nheld];
}

/* The index of a held item of pool obj or buf picked by byte, or -1. */
static int fz_find_held(struct fz_thread *t, const struct fz_obj *obj, const struct fz_buf *buf,
                        uint8_t byte)
{
    int n = 0, idx[FZ_MAX_HELD];
    for (int i = 0; i < t->nheld; i++)
        if ((obj && t->held[i].obj == obj) || (buf && t->held[i].buf == buf))
            idx[n++] = i;
    return n ? idx[byte % n] : -1;
}

/* ---- object pools ---- */

static void *fz_obj_new_fn(void *ctx)
{
    struct fz_obj *o = ctx;
    /* A flaky new_fn fails every fourth call: the get returns NULL. */
    if (o->flaky_new && atomic_fetch_add(&o->new_calls, 1) % 4 == 3)
        return NULL;
    void *obj = malloc(o->size);
    if (obj)
        atomic_fetch_add(&o->created, 1);
    return obj;
}

static void fz_obj_reset_fn(void *obj, void *ctx)
{
    struct fz_obj *o = ctx;
    memset(obj, 0x5a, o->size < 8 ? o->size : 8);
}

static void fz_obj_free_fn(void *obj, void *ctx)
{
    struct fz_obj *o = ctx;
    atomic_fetch_add(&o->released, 1);
    free(obj);
}

/* Objects are counted where every one is made by new_fn or the harness and
 * freed by free_fn or the harness. */
static int fz_obj_countable(const struct fz_obj *o)
{
    return o->has_free && (o->has_new || o->obj_size == 0);
}

void fz_obj_new(struct fz_obj *o, int shared, const uint8_t *r)
{
    static const size_t sizes[] = {0, 1, 3, 8, 17, 64, 4096, 100000};
    static const size_t own[] = {1, 16, 48, 200};
    static const int64_t intervals[] = {0, -1, 1, 1000000, 10000000};
    memset(o, 0, sizeof *o);
    o->shared = shared;
    o->obj_size = FZ_PICK(sizes, r[0]);
    o->size = o->obj_size ? o->obj_size : FZ_PICK(own, r[3]);
    o->has_new = r[1] & 1;
    o->flaky_new = o->has_new && (r[1] & 2);
    o->has_reset = (r[1] >> 2) & 1;
    o->has_free = (r[1] >> 3) & 1;
    fm_objpool_opts opts = {
        .obj_size = o->obj_size,
        .new_fn = o->has_new ? fz_obj_new_fn : NULL,
        .reset_fn = o->has_reset ? fz_obj_reset_fn : NULL,
        .free_fn = o->has_free ? fz_obj_free_fn : NULL,
        .ctx = o,
        .cleanup_interval_ns = FZ_PICK(intervals, r[2]),
    };
    if ((r[1] & 0x30) == 0x30) { /* NULL opts: the defaults, no size, no hooks */
        o->obj_size = 0;
        o->has_new = o->flaky_new = o->has_reset = o->has_free = 0;
    }
    FZ_CHECK_EQ(fm_objpool_new(&o->p, (r[1] & 0x30) == 0x30 ? NULL : &opts), 0);
}

/* Destroys o while the harness still holds the items kept[0..n-1] of it
 * (removed from the live set): they stay the harness's, which checks and
 * frees them after the pool is gone. */
static void fz_obj_destroy_keeping(struct fz_obj *o, struct fz_item *kept, int n)
{
    fm_objpool_destroy(o->p);
    o->p = NULL;
    for (int i = 0; i < n; i++) {
        fz_expect(kept[i].ptr, kept[i].size, kept[i].fill);
        free(kept[i].ptr);
        atomic_fetch_add(&o->released, 1);
    }
    if (fz_obj_countable(o))
        FZ_CHECK_EQ(atomic_load(&o->created), atomic_load(&o->released));
}

void fz_obj_destroy(struct fz_world *w, struct fz_obj *o)
{
    struct fz_item kept[FZ_BOX];
    int n = 0;
    if (!o->p)
        return;
    for (int i = 0; i < FZ_BOX; i++) /* after the join: the box holds the last ones */
        if (w->box[i].ptr && w->box[i].obj == o) {
            fz_live_remove(w, w->box[i].ptr);
            kept[n++] = w->box[i];
            w->box[i].ptr = NULL;
        }
    fz_obj_destroy_keeping(o, kept, n);
}

static void fz_obj_get(struct fz_thread *t, struct fz_obj *o, const uint8_t *r)
{
    if (!o->p || t->nheld == FZ_MAX_HELD)
        return;
    errno = 0;
    void *obj = fm_objpool_get(o->p);
    if (!obj) {
        /* Only a pool with nothing to make objects with, or a failing
         * new_fn, comes back empty-handed. */
        FZ_CHECK(o->flaky_new || (!o->has_new && o->obj_size == 0));
        return;
    }
    fz_hold(t, obj, o->size, (uint8_t)(r[3] | 1))->obj = o;
}

static void fz_obj_put(struct fz_thread *t, struct fz_obj *o, const uint8_t *r)
{
    if (!o->p)
        return;
    switch (r[3] % 4) {
    case 0:
        fm_objpool_put(o->p, NULL); /* a no-op */
        return;
    case 1: { /* an object of the harness's own making joins the pool */
        void *obj = malloc(o->size);
        FZ_CHECK(obj != NULL);
        atomic_fetch_add(&o->created, 1);
        fm_objpool_put(o->p, obj);
        return;
    }
    default: {
        int i = fz_find_held(t, o, NULL, r[4]);
        if (i >= 0) {
            fz_mem_give_back(t->w, &t->held[i]);
            fz_unhold(t, i);
        }
    }
    }
}

static void fz_obj_stats(struct fz_obj *o, const uint8_t *r)
{
    struct fm_objpool_stats s;
    FZ_CHECK_EQ(fm_objpool_stats(NULL, &s), -EINVAL);
    if (!o->p)
        return;
    FZ_CHECK_EQ(fm_objpool_stats(o->p, NULL), -EINVAL);
    FZ_CHECK_EQ(fm_objpool_stats(o->p, &s), 0);
    FZ_CHECK(s.gets >= s.misses);
    char line[512];
    size_t len = fz_json_len(r[3], sizeof line);
    fz_json_check(fm_objpool_stats_json(o->p, len ? line : NULL, len), line, len, sizeof line);
}

/* Gives back every held item of o, then destroys it (a private pool). */
static void fz_obj_drop_private(struct fz_thread *t, int keep_some)
{
    struct fz_obj *o = &t->obj;
    struct fz_item kept[FZ_MAX_HELD];
    int n = 0;
    if (!o->p)
        return;
    for (int i = t->nheld - 1; i >= 0; i--) {
        if (t->held[i].obj != o)
            continue;
        if (keep_some && (i & 1)) {
            fz_live_remove(t->w, t->held[i].ptr);
            kept[n++] = t->held[i];
        } else {
            fz_mem_give_back(t->w, &t->held[i]);
        }
        fz_unhold(t, i);
    }
    fz_obj_destroy_keeping(o, kept, n);
}

/* ---- buffer pools ---- */

void fz_buf_new(struct fz_buf *b, int shared, const uint8_t *r)
{
    static const size_t max_sizes[] = {0, 1, 47, 48, 49, 4096, 16368, 16369, MIB, 4 * MIB,
                                       GIB, GIB + 1, SIZE_MAX, SIZE_MAX / 2 + 1};
    static const size_t limits[] = {0, 1, 4096, MIB};
    static const int64_t decays[] = {0, -1, 1, 1000000, 20000000};
    memset(b, 0, sizeof *b);
    b->shared = shared;
    fm_bufpool_opts o = {
        .max_size = FZ_PICK(max_sizes, r[0]),
        .cache_limit = FZ_PICK(limits, r[1]),
        .decay_ns = FZ_PICK(decays, r[2]),
        .zero_on_get = r[3] & 1,
    };
    int rc = fm_bufpool_new(&b->b, (r[3] & 6) == 6 ? NULL : &o);
    if ((r[3] & 6) == 6) {
        o = (fm_bufpool_opts){0};
    } else if (o.max_size > GIB) {
        FZ_CHECK_EQ(rc, -EINVAL);
        o = (fm_bufpool_opts){0}; /* a valid pool all the same, for the ops */
        rc = fm_bufpool_new(&b->b, &o);
    }
    FZ_CHECK_EQ(rc, 0);
    b->zero = o.zero_on_get;
    struct fm_bufpool_stats s;
    struct fm_bufpool_class_stats c;
    FZ_CHECK_EQ(fm_bufpool_stats(b->b, &s), 0);
    FZ_CHECK_EQ(fm_bufpool_class_stats(b->b, s.classes, &c), -EINVAL);
    FZ_CHECK_EQ(fm_bufpool_class_stats(b->b, s.classes - 1, &c), 0);
    FZ_CHECK(c.size >= (o.max_size ? o.max_size : 4 * MIB));
    b->max_pooled = c.size;
}

/* The bytes the pool counts for a buffer of usable size u: a block with its
 * header, and for a block of 16 KiB and up the page its colour takes
 * (docs/bufpool.md); a direct mapping has a second header-sized word in
 * front. */
static size_t fz_buf_block(const struct fz_buf *b, size_t u)
{
    if (u > b->max_pooled)
        return u + 32;
    return u + 16 >= 16 * 1024 ? u + 16 + (size_t)sysconf(_SC_PAGESIZE) : u + 16;
}

/* With nothing running on it but the caller: the pool counts exactly what
 * the harness holds. */
static void fz_buf_check_exact(struct fz_buf *b, const struct fz_item *items, int n)
{
    size_t bytes = 0;
    long count = 0;
    for (int i = 0; i < n; i++)
        if (items[i].ptr && items[i].buf == b) {
            bytes += fz_buf_block(b, items[i].size);
            count++;
        }
    struct fm_bufpool_stats s;
    FZ_CHECK_EQ(fm_bufpool_stats(b->b, &s), 0);
    FZ_CHECK_EQ(s.bytes_live, bytes);
    FZ_CHECK_EQ(s.gets - s.failed - s.puts, count);
    FZ_CHECK(s.hits + s.misses == s.gets);
    FZ_CHECK(s.bytes_mapped >= s.bytes_live);
}

void fz_buf_destroy(struct fz_world *w, struct fz_buf *b)
{
    if (!b->b)
        return;
    if (b->shared) {
        fz_buf_check_exact(b, w->box, FZ_BOX);
        for (int i = 0; i < FZ_BOX; i++)
            if (w->box[i].ptr && w->box[i].buf == b)
                fz_mem_give_back(w, &w->box[i]);
        fz_buf_check_exact(b, w->box, 0);
    }
    fm_bufpool_destroy(b->b);
    b->b = NULL;
}

static size_t fz_buf_size(const struct fz_buf *b, const uint8_t *r)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 47, 48, 49, 63, 64, 65, 112, 113, 1008,
                                   1009, 4080, 4081, 16368, 16369, 16384, 65520, 65521,
                                   262128, 262129, 524272, 524273, 4 * MIB - 16, 4 * MIB - 15,
                                   5242864, 5242865, 64 * MIB, SIZE_MAX, SIZE_MAX - 15,
                                   SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)1 << 40};
    switch (r[3] % 4) {
    case 0:
        return FZ_PICK(sizes, r[4]);
    case 1: /* the largest pooled size and its neighbours */
        return b->max_pooled - 1 + r[4] % 3;
    default: /* anything up to a few hundred KiB */
        return ((size_t)r[4] | (size_t)r[5] << 8) << (r[6] % 3 * 2);
    }
}

static void fz_buf_get(struct fz_thread *t, struct fz_buf *b, const uint8_t *r)
{
    if (!b->b || t->nheld == FZ_MAX_HELD)
        return;
    size_t size = fz_buf_size(b, r);
    if (size > FZ_POOLED_MAX && size <= b->max_pooled)
        return;
    errno = 0;
    char *p = fm_bufpool_get(b->b, size);
    if (!p) {
        FZ_CHECK_EQ(errno, ENOMEM);
        FZ_CHECK(size > GIB); /* a plain request gets its memory */
        return;
    }
    FZ_CHECK_EQ((uintptr_t)p % 16, 0);
    size_t u = fm_bufpool_usable_size(b->b, p);
    FZ_CHECK(u >= size);
    if (b->zero) {
        size_t n = u < 64 * KIB ? u : 64 * KIB;
        for (size_t i = 0; i < n; i++)
            FZ_CHECK_EQ(p[i], 0);
        FZ_CHECK_EQ(p[u - 1], 0);
    }
    fz_hold(t, p, u, (uint8_t)(r[7] | 1))->buf = b;
}

static void fz_buf_put(struct fz_thread *t, struct fz_buf *b, const uint8_t *r)
{
    if (!b->b)
        return;
    if (r[3] % 8 == 0) {
        fm_bufpool_put(b->b, NULL); /* a no-op */
        return;
    }
    int i = fz_find_held(t, NULL, b, r[4]);
    if (i >= 0) {
        fz_mem_give_back(t->w, &t->held[i]);
        fz_unhold(t, i);
    }
}

/* usable_size: what was recorded for our own, 0 for a buffer of another pool. */
static void fz_buf_usable(struct fz_thread *t, struct fz_buf *b, const uint8_t *r)
{
    FZ_CHECK_EQ(fm_bufpool_usable_size(NULL, t->nheld ? t->held[0].ptr : NULL), 0);
    if (!b->b)
        return;
    FZ_CHECK_EQ(fm_bufpool_usable_size(b->b, NULL), 0);
    if (!t->nheld)
        return;
    /* Only buffers: the call reads the header in front of the pointer. */
    const struct fz_item *it = &t->held[r[4] % t->nheld];
    if (!it->buf)
        return;
    size_t u = fm_bufpool_usable_size(b->b, it->ptr);
    FZ_CHECK_EQ(u, it->buf == b ? it->size : 0); /* 0: a live buffer of another pool */
}

static void fz_buf_drop_private(struct fz_thread *t)
{
    if (!t->buf.b)
        return;
    for (int i = t->nheld - 1; i >= 0; i--)
        if (t->held[i].buf == &t->buf) {
            fz_mem_give_back(t->w, &t->held[i]);
            fz_unhold(t, i);
        }
    fz_buf_check_exact(&t->buf, t->held, 0);
    fz_buf_destroy(t->w, &t->buf);
}

static void fz_buf_stats(struct fz_thread *t, struct fz_buf *b, const uint8_t *r)
{
    struct fm_bufpool_stats s;
    FZ_CHECK_EQ(fm_bufpool_stats(NULL, &s), -EINVAL);
    if (!b->b)
        return;
    if (!b->shared) /* only this thread uses it */
        fz_buf_check_exact(b, t->held, t->nheld);
    FZ_CHECK_EQ(fm_bufpool_stats(b->b, &s), 0);
    char line[512];
    size_t len = fz_json_len(r[3], sizeof line);
    fz_json_check(fm_bufpool_stats_json(b->b, len ? line : NULL, len), line, len, sizeof line);
}

/* ---- bursts: many of one size, got and put back at once ---- */

#define FZ_BURST 20 /* more than a thread cache holds of one class */

/* Gets n items of one size, puts them all back in the order picked by
 * order, then gets n again: the caches' spill and refill paths, where a block
 * handed out twice would show. The second round is given back too. */
static void fz_burst(struct fz_thread *t, struct fz_obj *o, struct fz_buf *b, const uint8_t *r)
{
    struct fz_item it[FZ_BURST];
    int n = 1 + r[6] % FZ_BURST, got;
    size_t size = b ? fz_buf_size(b, r) : o->size;
    if (b && (size > FZ_POOLED_MAX || size > ((size_t)1 << 30)))
        return;
    for (int round = 0; round < 2; round++) {
        for (got = 0; got < n; got++) {
            void *p = b ? fm_bufpool_get(b->b, size) : fm_objpool_get(o->p);
            if (!p)
                break;
            fz_live_add(t->w, p);
            size_t u = b ? fm_bufpool_usable_size(b->b, p) : o->size;
            FZ_CHECK(u >= size);
            it[got] = (struct fz_item){p, u, b ? NULL : o, b, (uint8_t)(got * 2 + 1)};
            fz_fill(p, u, it[got].fill);
        }
        for (int i = 0; i < got; i++) {
            struct fz_item *x = &it[r[7] & 1 ? got - 1 - i : i];
            fz_mem_give_back(t->w, x);
        }
    }
}

/* ---- the hand-over box: items of the shared pools change hands ---- */

static void fz_box_deposit(struct fz_thread *t, const uint8_t *r)
{
    struct fz_world *w = t->w;
    int i = t->nheld ? r[4] % t->nheld : -1;
    if (i < 0 || !((t->held[i].obj && t->held[i].obj->shared) ||
                   (t->held[i].buf && t->held[i].buf->shared)))
        return;
    pthread_mutex_lock(&w->lock);
    struct fz_item *slot = &w->box[r[3] % FZ_BOX];
    int free_slot = slot->ptr == NULL;
    if (free_slot)
        *slot = t->held[i];
    pthread_mutex_unlock(&w->lock);
    if (free_slot)
        fz_unhold(t, i);
}

static void fz_box_take(struct fz_thread *t, const uint8_t *r)
{
    struct fz_world *w = t->w;
    if (t->nheld == FZ_MAX_HELD)
        return;
    pthread_mutex_lock(&w->lock);
    struct fz_item *slot = &w->box[r[3] % FZ_BOX];
    if (slot->ptr) {
        t->held[t->nheld++] = *slot;
        slot->ptr = NULL;
    }
    pthread_mutex_unlock(&w->lock);
}

/* ---- dispatch ---- */

static void fz_default_bufpool(void)
{
    void *p = fm_buf_get(100);
    FZ_CHECK(p != NULL);
    FZ_CHECK(fm_bufpool_usable_size(fm_default_bufpool(), p) >= 100);
    memset(p, 1, 100);
    fm_buf_put(p);
    fm_buf_trim();
    errno = 0;
    FZ_CHECK(fm_bufpool_get(NULL, 1) == NULL && errno == EINVAL);
    errno = 0;
    FZ_CHECK(fm_objpool_get(NULL) == NULL && errno == EINVAL);
    fm_objpool_cleanup(NULL);
    fm_bufpool_trim(NULL);
    fm_bufpool_put(NULL, NULL);
    fm_objpool_destroy(NULL);
    fm_bufpool_destroy(NULL);
}

void fz_mem_op(struct fz_thread *t, const uint8_t *r)
{
    struct fz_obj *o = FZ_SHARED(r) ? &t->w->obj : &t->obj;
    struct fz_buf *b = FZ_SHARED(r) ? &t->w->buf : &t->buf;
    switch ((r[0] >> 1) % 16) {
    case 0:
        fz_obj_drop_private(t, r[2] & 1);
        fz_obj_new(&t->obj, 0, r + 3);
        break;
    case 1:
        fz_obj_get(t, o, r);
        break;
    case 2:
        fz_obj_put(t, o, r);
        break;
    case 3:
        if (o->p && (r[2] & 1))
            fz_burst(t, o, NULL, r);
        else if (o->p)
            fm_objpool_cleanup(o->p);
        break;
    case 4:
        fz_obj_drop_private(t, r[2] & 1);
        break;
    case 5:
        fz_obj_stats(o, r);
        break;
    case 6:
        fz_buf_drop_private(t);
        fz_buf_new(&t->buf, 0, r + 3);
        break;
    case 7:
        fz_buf_get(t, b, r);
        break;
    case 8:
        if (b->b)
            fz_burst(t, NULL, b, r);
        break;
    case 9:
        fz_buf_put(t, b, r);
        break;
    case 10:
        fz_buf_usable(t, b, r);
        break;
    case 11:
        if (b->b)
            fm_bufpool_trim(b->b);
        break;
    case 12:
        fz_buf_drop_private(t);
        break;
    case 13:
        fz_buf_stats(t, b, r);
        break;
    case 14:
        if (r[2] & 1)
            fz_box_deposit(t, r);
        else
            fz_box_take(t, r);
        break;
    default:
        fz_default_bufpool();
        break;
    }
}

void fz_mem_thread_end(struct fz_thread *t)
{
    fz_obj_drop_private(t, 1);
    fz_buf_drop_private(t);
    /* What it holds of the shared pools goes back from this thread. */
    for (int i = t->nheld - 1; i >= 0; i--) {
        fz_mem_give_back(t->w, &t->held[i]);
        fz_unhold(t, i);
    }
}
