/* formica: the buffer pool (fm_bufpool).
 *
 * Hands out buffers of any size from size classes (four per doubling, from 48
 * usable bytes up to max_size) and takes them back for reuse. Memory a program
 * stops using goes back to the operating system by itself: buffers cached and
 * unused for decay_ns (1 s by default) are unmapped by the library's
 * maintenance thread, with no call from the program, also while other buffers
 * stay live. fm_bufpool_trim gives back every cached byte at once.
 *
 *   fm_bufpool *bp;
 *   fm_bufpool_new(&bp, NULL);             // defaults: max_size 4 MiB, decay 1 s
 *   char *b = fm_bufpool_get(bp, 100000);  // at least 100,000 bytes, 16-aligned
 *   ...
 *   fm_bufpool_put(bp, b);
 *   fm_bufpool_destroy(bp);
 *
 * Thread safety (see docs/bufpool.md):
 *
 * | call                          | may run concurrently with                  |
 * |-------------------------------|--------------------------------------------|
 * | get, put, usable_size, trim   | every call on the pool but destroy         |
 * | stats, class_stats, stats_json| every call on the pool but destroy         |
 * | destroy                       | nothing: the last call on the pool         |
 * | fm_buf_get, _put, _trim       | everything (the default pool is never      |
 * |                               | destroyed)                                 |
 *
 * A buffer may be put by another thread than the one that got it. A buffer
 * must go back to the pool it came from; a put of anything else (a pointer of
 * another pool or of malloc, a buffer already put) aborts with a message.
 */
#ifndef FORMICA_BUFPOOL_H
#define FORMICA_BUFPOOL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fm_bufpool fm_bufpool;

typedef struct fm_bufpool_opts {
    size_t max_size;    /* largest pooled request (rounded up to its class's size);
                           0 = 4 MiB; at most 1 GiB. Larger requests map and
                           unmap directly (still counted) */
    size_t cache_limit; /* most bytes kept cached; 0 = 1 GiB */
    int64_t decay_ns;   /* cached memory unused this long goes back to the OS;
                           0 = 1 s; < 0 = never (only fm_bufpool_trim) */
    int zero_on_get;    /* hand out zeroed memory */
} fm_bufpool_opts;

/* Counters to graph; a snapshot, each field read atomically but not all at
 * the same instant. Byte counts are of whole blocks (a block is a buffer's
 * usable bytes plus a 16-byte header; from 16 KiB up, plus the page of its
 * colour, see docs/bufpool.md). */
struct fm_bufpool_stats {
    uint64_t gets;           /* get calls on a valid pool */
    uint64_t hits;           /* gets served from cached memory */
    uint64_t misses;         /* gets that needed new memory (direct and failed gets too) */
    uint64_t failed;         /* gets that returned NULL: no memory */
    uint64_t puts;
    uint64_t dropped;        /* puts given straight back to the OS: cache_limit reached */
    uint64_t direct;         /* gets above max_size, mapped and unmapped directly */
    size_t bytes_live;       /* held by the program right now */
    size_t bytes_cached;     /* kept for reuse, in thread caches and the central store */
    size_t bytes_mapped;     /* all memory the pool has mapped now */
    uint64_t bytes_returned; /* given back to the OS since creation */
    size_t cache_limit;
    int classes;             /* number of size classes */
};

/* One size class. */
struct fm_bufpool_class_stats {
    size_t size; /* usable bytes of its buffers: a get of up to this many lands here */
    uint64_t gets, hits, misses, puts;
    size_t bytes_live, bytes_cached;
};

/* Creates a pool. opts may be NULL; zeroed fields mean defaults. Returns 0,
 * -EINVAL (NULL out, max_size above 1 GiB) or -ENOMEM. */
FM_API int fm_bufpool_new(fm_bufpool **out, const fm_bufpool_opts *opts);

/* A buffer of at least size bytes (get(0) is a valid minimal buffer), aligned
 * to 16 bytes; zeroed if opts.zero_on_get. NULL with errno ENOMEM when memory
 * cannot be had or size overflows, EINVAL for a NULL pool. */
FM_API void *fm_bufpool_get(fm_bufpool *b, size_t size);

/* Gives buf back. NULL is a no-op. Aborts with a message when buf is a
 * buffer of another buffer pool, or was put already. buf must come from a
 * buffer pool: the check reads the 16 bytes in front of it, so any other
 * pointer (a malloc'd block, an interior pointer) is undefined behaviour that
 * the check catches only by luck. */
FM_API void fm_bufpool_put(fm_bufpool *b, void *buf);

/* Bytes buf may use: at least what its get asked for. 0 for NULL, for a
 * buffer already put, and for a buffer of another buffer pool. As for put,
 * buf must come from a buffer pool (its header is read). */
FM_API size_t fm_bufpool_usable_size(fm_bufpool *b, const void *buf);

/* Gives every cached byte back to the OS now (every thread's cache too). */
FM_API void fm_bufpool_trim(fm_bufpool *b);

/* Frees the pool and every cached byte. Buffers still live stay mapped (they
 * are leaked) and must not be put afterwards. */
FM_API void fm_bufpool_destroy(fm_bufpool *b);

/* Fills *out; 0, or -EINVAL for NULL arguments. */
FM_API int fm_bufpool_stats(const fm_bufpool *b, struct fm_bufpool_stats *out);

/* Fills *out for class cls (0 .. stats.classes - 1, smallest first); 0 or -EINVAL. */
FM_API int fm_bufpool_class_stats(const fm_bufpool *b, int cls, struct fm_bufpool_class_stats *out);

/* Writes the pool's stats as one line of JSON (no newline) into buf, as
 * snprintf does: returns the length the whole line needs (a result >= len
 * means it was cut), or -EINVAL. */
FM_API int fm_bufpool_stats_json(const fm_bufpool *b, char *buf, size_t len);

/* The default buffer pool: all defaults, created on first use, never destroyed. */
FM_API void *fm_buf_get(size_t size);
FM_API void fm_buf_put(void *buf);
FM_API void fm_buf_trim(void);
FM_API fm_bufpool *fm_default_bufpool(void); /* NULL if it could not be created */

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_BUFPOOL_H */
