/* formica: the object pool (fm_objpool).
 *
 * Go's sync.Pool for C: a cache of interchangeable objects (request structs,
 * parsers, scratch buffers of one size) that threads take and give back
 * instead of allocating and freeing them. An object put by one thread may be
 * got by another. The pool owns what it caches and frees it by itself when it
 * stops being used:
 *
 *   - every cleanup cycle (every opts.cleanup_interval_ns, 2 s by default, on
 *     the library's maintenance thread, or at fm_objpool_cleanup) frees the
 *     "victims" of the previous cycle and makes everything cached a victim;
 *     a victim that is got again is simply reused. So an object cached through
 *     two cycles with no use is freed, and a pool that is used keeps its
 *     objects. An idle pool costs no CPU: with nothing cached no cycle runs.
 *   - where objects come from, in order: the calling thread's own cache (no
 *     atomic instruction, no shared cache line), the shared store of the
 *     calling CPU, the stores of the other CPUs (stealing), the victims, and
 *     finally opts.new_fn (or malloc(opts.obj_size)).
 *   - a thread that exits hands its cache back to the shared stores.
 *
 * Hooks (all optional; ctx is opts.ctx):
 *   new_fn(ctx)          makes an object when nothing is cached. Without it,
 *                        objects are malloc(obj_size); with neither, get
 *                        returns NULL when the pool is empty.
 *   reset_fn(obj, ctx)   runs in fm_objpool_put before the object is cached.
 *   free_fn(obj, ctx)    frees an object the pool drops; without it, free().
 * Hooks may run on any thread that calls the pool, free_fn also on the
 * maintenance thread; they must not call fm_objpool_destroy on their own pool.
 *
 * Debug builds (FM_DEBUG) check misuse: a put of an object that is already
 * cached in the calling thread's cache aborts ("double put"), and an object
 * written after its put is caught when it is next got ("written after put").
 * Objects of plain obj_size pools (no new_fn, no reset_fn) are also filled
 * with 0xdb on put, so that code reading a stale object sees garbage; objects
 * with hooks keep their contents, which are checked by a hash instead (give
 * obj_size with new_fn to have them checked: the pool hashes obj_size bytes).
 *
 * | call                   | may run concurrently with              | progress           |
 * |------------------------|----------------------------------------|--------------------|
 * | fm_objpool_get / put   | every call on the pool but destroy     | lock-free in the   |
 * |                        |                                        | thread's cache; a  |
 * |                        |                                        | short lock every   |
 * |                        |                                        | 64 objects         |
 * | fm_objpool_cleanup     | every call on the pool but destroy     | blocking           |
 * | fm_objpool_stats(_json)| every call on the pool but destroy     | blocking, brief    |
 * | fm_objpool_destroy     | nothing on the same pool (the last call)| blocking          |
 */
#ifndef FORMICA_OBJPOOL_H
#define FORMICA_OBJPOOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_objpool fm_objpool;

typedef struct fm_objpool_opts {
    size_t obj_size;                         /* with no new_fn: objects are malloc(obj_size) / free */
    void *(*new_fn)(void *ctx);              /* no new_fn and no obj_size: get returns NULL when empty */
    void (*reset_fn)(void *obj, void *ctx);  /* on put, before caching */
    void (*free_fn)(void *obj, void *ctx);   /* for objects the pool drops; NULL = free() */
    void *ctx;
    int64_t cleanup_interval_ns;             /* 0 = 2 s; <0 = only explicit fm_objpool_cleanup */
} fm_objpool_opts;

/* Gets are served from the calling thread's cache; when it is empty, a
 * magazine of up to 64 objects moves into it from a shared store or the
 * victims. hits_shared, hits_stolen and hits_victim count the objects that
 * came that way, hits_private the other gets served (objects the thread had
 * put itself). The hits and misses add up to gets once the moved objects are
 * got (an object moved in may also be moved out again unused). */
struct fm_objpool_stats {
    uint64_t gets;         /* fm_objpool_get calls */
    uint64_t hits_private; /* served from objects the calling thread had put */
    uint64_t hits_shared;  /* objects from the shared store of the calling CPU */
    uint64_t hits_stolen;  /* objects from another CPU's shared store */
    uint64_t hits_victim;  /* objects from the victims of the last cleanup cycle */
    uint64_t misses;       /* nothing cached: new_fn or malloc ran, or NULL was returned */
    uint64_t puts;         /* fm_objpool_put calls with an object */
    uint64_t dropped;      /* objects the pool freed: aged out, or no memory to cache them */
    uint64_t cleanups;     /* cleanup cycles run */
    uint64_t cached;       /* objects cached now, victims included */
};

/* A new pool; opts may be NULL (all defaults: a pool whose get returns NULL
 * until something is put). 0, -EINVAL (NULL out) or -ENOMEM. */
FM_API int fm_objpool_new(fm_objpool **out, const fm_objpool_opts *opts);

/* An object: a cached one, or a new one. NULL when the pool is empty and has
 * nothing to make objects with, when new_fn returned NULL, or on ENOMEM (errno
 * set), or when p is NULL (errno EINVAL). */
FM_API void *fm_objpool_get(fm_objpool *p);

/* Gives obj back: reset_fn runs, then the object is cached. NULL is a no-op. */
FM_API void fm_objpool_put(fm_objpool *p, void *obj);

/* One cleanup cycle now: victims are freed, cached objects become victims. */
FM_API void fm_objpool_cleanup(fm_objpool *p);

/* Frees every cached object (through free_fn) and the pool. Objects that
 * threads still hold stay theirs. */
FM_API void fm_objpool_destroy(fm_objpool *p);

/* The counters, summed over every thread. 0 or -EINVAL. The figures are read
 * while the pool runs, so they are consistent with each other only roughly. */
FM_API int fm_objpool_stats(const fm_objpool *p, struct fm_objpool_stats *out);

/* The counters as one line of JSON ({"gets":...,"cached":...}) in buf, like
 * snprintf: returns the length it needs (not counting the NUL), or -EINVAL. */
FM_API int fm_objpool_stats_json(const fm_objpool *p, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_OBJPOOL_H */
