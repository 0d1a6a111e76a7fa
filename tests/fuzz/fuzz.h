/* The API fuzzer's shared parts: how an input is read, the records the
 * harness keeps of what it created and holds, and the check that fails the
 * run.
 *
 * An input is a header (the shared objects' options and the thread count)
 * followed by 8-byte op records. Record byte 1 names the thread that runs the
 * op, so a mutation of one record moves one op between threads; each thread
 * runs its records in order, concurrently with the others. Every op checks
 * what it can: the return code against the documented set (an exact code
 * where the harness alone touches the object), the counters, the memory
 * handed out. At the end everything is destroyed and the totals are checked:
 * every accepted task ran exactly once, every byte and object is accounted
 * for. See docs/reliability.md (Fuzzing).
 */
#ifndef FZ_FUZZ_H
#define FZ_FUZZ_H

#include <formica.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FZ_REC 8          /* bytes per op record */
#define FZ_MAX_OPS 384    /* records per input; the rest is ignored */
#define FZ_MAX_THREADS 3
#define FZ_MAX_TASKS 4096 /* task records per input */
#define FZ_MAX_HELD 48    /* objects and buffers one thread holds at once */
#define FZ_BOX 8          /* hand-over slots between threads */

void fz_fail(const char *file, int line, const char *what, long long a, long long b);
#define FZ_CHECK(c)                                                                      \
    do {                                                                                 \
        if (!(c))                                                                        \
            fz_fail(__FILE__, __LINE__, #c, 0, 0);                                       \
    } while (0)
#define FZ_CHECK_EQ(a, b)                                                                \
    do {                                                                                 \
        long long fz_a_ = (long long)(a), fz_b_ = (long long)(b);                        \
        if (fz_a_ != fz_b_)                                                              \
            fz_fail(__FILE__, __LINE__, #a " == " #b, fz_a_, fz_b_);                     \
    } while (0)
/* rc is one of the listed codes (0 and negative errnos). */
int fz_rc_in(int rc, const int *set, int n);
#define FZ_CHECK_RC(rc, ...)                                                             \
    do {                                                                                 \
        static const int fz_set_[] = {__VA_ARGS__};                                      \
        int fz_rc_ = (rc);                                                               \
        if (!fz_rc_in(fz_rc_, fz_set_, (int)(sizeof fz_set_ / sizeof *fz_set_)))         \
            fz_fail(__FILE__, __LINE__, "return code of " #rc, fz_rc_, 0);               \
    } while (0)

/* ---- worker pools (fuzz_pool.c) ---- */

/* A pool (or a multipool: then m is set and cap is per pool) and what the
 * harness knows of it. "Private" objects belong to one harness thread, which
 * knows their state exactly; shared ones are created before the threads
 * start and destroyed after they are joined. */
struct fz_pool {
    struct fz_world *w;
    struct fz_thread *owner; /* the thread whose group runs on it */
    fm_pool *p;
    fm_multipool *m;
    int shared, npools;
    int cap; /* the capacity now (private) */
    int prealloc, nonblocking, max_blocking, has_fn;
    size_t queue;
    int closed;           /* private: released and not rebooted */
    int foreign;          /* a group runs on it: the pool counts tasks the harness does not */
    _Atomic int maxcap;   /* the largest capacity it ever had; tasks in flight stay below */
    _Atomic long accepted, ran;
    _Atomic int active;   /* harness tasks running now */
    _Atomic int starts, exits; /* worker hooks */
    _Atomic int nesting, dying; /* tasks submitting to it; its destroy waits them out */
};

/* A task record: each submit gets its own, checked at the end. */
struct fz_task {
    struct fz_pool *pool;
    struct fm_group *group; /* a job's group */
    _Atomic int ran;
    _Atomic int state; /* 0 not yet known, 1 accepted, 2 rejected */
    uint8_t kind;
};

/* ---- object and buffer pools (fuzz_mem.c) ---- */

struct fz_obj {
    fm_objpool *p;
    int shared;
    size_t size; /* of every object in it: obj_size, or what new_fn and the harness make */
    size_t obj_size;
    int has_new, flaky_new, has_reset, has_free;
    _Atomic long new_calls;
    _Atomic long created, released; /* objects made / freed by anybody, when countable */
};

struct fz_buf {
    fm_bufpool *b;
    int shared, zero;
    size_t max_pooled; /* the last class's usable size: larger gets are direct */
};

/* An object or a buffer the harness holds, filled with a pattern. */
struct fz_item {
    void *ptr;
    size_t size; /* bytes checked: the object's size, or the buffer's usable size */
    struct fz_obj *obj;
    struct fz_buf *buf;
    uint8_t fill;
};

/* ---- the world of one input ---- */

struct fz_thread;

struct fz_world {
    int nthreads;
    struct fz_pool pool;   /* shared */
    struct fz_pool dflt;   /* fm_default_pool(): never destroyed, waited on at the end */
    struct fz_obj obj;     /* shared */
    struct fz_buf buf;     /* shared */
    struct fz_task tasks[FZ_MAX_TASKS];
    _Atomic int ntasks;
    pthread_mutex_t lock; /* the box and the live set */
    struct fz_item box[FZ_BOX];
    void *live[FZ_MAX_THREADS * FZ_MAX_HELD + FZ_BOX]; /* everything handed out now */
    int nlive;
    struct fz_thread *threads[FZ_MAX_THREADS];
};

struct fz_thread {
    struct fz_world *w;
    int id;
    const uint8_t *ops[FZ_MAX_OPS];
    int nops;
    struct fz_pool pools[2]; /* private */
    struct fz_pool multi;    /* private multipool */
    fm_group *group;         /* private, on pools[0] */
    _Atomic int group_dying, group_nesting;
    int group_failed;        /* a failing job was accepted */
    fm_future *futures[2];
    void *future_args[2];
    struct fz_obj obj; /* private */
    struct fz_buf buf; /* private */
    struct fz_item held[FZ_MAX_HELD];
    int nheld;
};

/* Record byte 1: bits 0-1 the thread, bit 2 the shared object rather than
 * the thread's own, bit 3 the thread's second pool. */
#define FZ_SHARED(r) ((r)[1] & 4)
#define FZ_SLOT(r) (((r)[1] >> 3) & 1)
#define FZ_PICK(table, byte) ((table)[(byte) % (sizeof(table) / sizeof *(table))])

/* fuzz_main.c */
size_t fz_json_len(uint8_t byte, size_t cap); /* the whole buffer, or a short one (maybe 0) */
/* The snprintf contract of a *_stats_json call that returned n into line[len]. */
void fz_json_check(int n, const char *line, size_t len, size_t cap);
void fz_live_add(struct fz_world *w, void *ptr);
void fz_live_remove(struct fz_world *w, void *ptr);

/* fuzz_pool.c */
void fz_pool_new(struct fz_world *w, struct fz_pool *fp, int shared, const uint8_t *r);
void fz_pool_destroy(struct fz_world *w, struct fz_pool *fp);
void fz_default_pool_init(struct fz_world *w);
void fz_default_pool_end(struct fz_world *w);
void fz_pool_op(struct fz_thread *t, const uint8_t *r);
void fz_pool_thread_end(struct fz_thread *t);
void fz_tasks_check(struct fz_world *w);

/* fuzz_mem.c */
void fz_obj_new(struct fz_obj *o, int shared, const uint8_t *r);
void fz_obj_destroy(struct fz_world *w, struct fz_obj *o);
void fz_buf_new(struct fz_buf *b, int shared, const uint8_t *r);
void fz_buf_destroy(struct fz_world *w, struct fz_buf *b);
void fz_mem_op(struct fz_thread *t, const uint8_t *r);
void fz_mem_thread_end(struct fz_thread *t);

#endif /* FZ_FUZZ_H */
