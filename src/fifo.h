/* A bounded multi-producer multi-consumer FIFO of tasks, lock-free.
 *
 * The algorithm is the bounded MPMC queue described by Dmitry Vyukov: every
 * cell carries a sequence number that says whose turn it is, so producers and
 * consumers each claim a position with one CAS on their own index and never
 * touch each other's index.
 *
 *   cell[i].seq == pos        the cell is empty and waits for the producer of pos
 *   cell[i].seq == pos + 1    the cell holds the task of pos for its consumer
 *   (pos = the position the cell serves now, i = pos & mask)
 *
 * | operation        | concurrent with        | progress                          |
 * |------------------|------------------------|-----------------------------------|
 * | fm__fifo_push    | push, pop, peek, count | lock-free (a CAS retry loop)      |
 * | fm__fifo_pop     | push, pop, peek, count | lock-free                         |
 * | fm__fifo_ready   | everything             | wait-free                         |
 * | fm__fifo_has_room, fm__fifo_unconsumed | everything | wait-free, hints        |
 * | fm__fifo_count   | everything             | wait-free, a snapshot             |
 * | fm__fifo_init/free | nothing              |                                   |
 *
 * A push is visible to consumers once its release store of seq is; a push that
 * claimed a position but has not stored seq yet looks "not ready" to
 * fm__fifo_ready while fm__fifo_count already counts it.
 */
#ifndef FM_FIFO_H
#define FM_FIFO_H

#include <errno.h>

#include "internal.h"

struct fm__fifo_cell {
    _Atomic size_t seq;
    fm_task_fn fn;
    void *arg;
};

struct fm__fifo {
    /* Producers' index and consumers' index on lines of their own, so the
     * submitting thread and the workers do not bounce one line between them. */
    _Atomic size_t tail FM__ALIGNED;
    _Atomic size_t head FM__ALIGNED;
    struct fm__fifo_cell *cells FM__ALIGNED; /* read-only after init */
    size_t mask;                             /* cells - 1, cells a power of two */
};

/* capacity > 0, rounded up to a power of two of at least 2 (with one cell,
 * "full for this lap" and "empty for the next" would be the same sequence
 * number). 0 or -ENOMEM. */
static inline int fm__fifo_init(struct fm__fifo *q, size_t capacity)
{
    size_t n = 2;
    while (n < capacity) {
        if (n > SIZE_MAX / 2 / sizeof(struct fm__fifo_cell))
            return -ENOMEM;
        n <<= 1;
    }
    q->cells = fm__sys.calloc(n, sizeof *q->cells);
    if (!q->cells)
        return -ENOMEM;
    q->mask = n - 1;
    for (size_t i = 0; i < n; i++)
        atomic_init(&q->cells[i].seq, i);
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    return 0;
}

/* Drops every task and resets the indexes; nothing may run concurrently (used
 * in a fork child). */
static inline void fm__fifo_reset(struct fm__fifo *q)
{
    for (size_t i = 0; i <= q->mask; i++)
        atomic_store_explicit(&q->cells[i].seq, i, memory_order_relaxed);
    atomic_store_explicit(&q->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&q->head, 0, memory_order_relaxed);
}

static inline void fm__fifo_free(struct fm__fifo *q)
{
    fm__sys.free(q->cells);
    q->cells = NULL;
}

static inline size_t fm__fifo_capacity(const struct fm__fifo *q)
{
    return q->mask + 1;
}

/* Appends a task. Returns 1 and the position it took in *pos, or 0 when full. */
static inline int fm__fifo_push(struct fm__fifo *q, fm_task_fn fn, void *arg, size_t *pos_out)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        struct fm__fifo_cell *c = &q->cells[pos & q->mask];
        /* acquire: pairs with the consumer's release that emptied this cell,
         * so our writes of fn/arg cannot overtake its reads. */
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->fn = fn;
                c->arg = arg;
                /* release: publishes fn/arg to the consumer of pos. */
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                *pos_out = pos;
                return 1;
            }
        } else if (dif < 0) {
            return 0; /* the cell still holds the task of pos - capacity: full */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

/* Takes the oldest task. Returns 1, or 0 when nothing is ready. */
static inline int fm__fifo_pop(struct fm__fifo *q, fm_task_fn *fn, void **arg)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        struct fm__fifo_cell *c = &q->cells[pos & q->mask];
        /* acquire: pairs with the producer's release, so fn/arg are visible. */
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *fn = c->fn;
                *arg = c->arg;
                /* Our reads of fn/arg happen before the next producer's writes
                 * (release), and seq_cst orders this store before the pool's
                 * later load of its blocked-submitter count (pool_internal.h). */
                atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_seq_cst);
                return 1;
            }
        } else if (dif < 0) {
            return 0;
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

/* 1 if the oldest task is published and ready to pop. */
static inline int fm__fifo_ready(struct fm__fifo *q)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t seq = atomic_load_explicit(&q->cells[pos & q->mask].seq, memory_order_acquire);
    return seq == pos + 1;
}

/* 1 if the next push would find its cell free (a hint: racy by nature). */
static inline int fm__fifo_has_room(struct fm__fifo *q)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return atomic_load_explicit(&q->cells[pos & q->mask].seq, memory_order_relaxed) == pos;
}

/* 1 if the task pushed at pos is still in its cell, not yet taken. */
static inline int fm__fifo_unconsumed(struct fm__fifo *q, size_t pos)
{
    return atomic_load_explicit(&q->cells[pos & q->mask].seq, memory_order_relaxed) == pos + 1;
}

/* Tasks claimed by producers and not yet taken; exact when quiescent. */
static inline size_t fm__fifo_count(struct fm__fifo *q)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    return tail > head ? tail - head : 0;
}

#endif /* FM_FIFO_H */
