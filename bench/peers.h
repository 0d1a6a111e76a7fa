/* What the peer adapters share: the systems they define (each file is built
 * only when its peer is found) and a counter of finished tasks for peers that
 * have no "wait for all" of their own. */
#ifndef FORMICA_BENCH_PEERS_H
#define FORMICA_BENCH_PEERS_H

#include "bench.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct pool_system glib_pool_system;   /* peer_glib.c */
extern const struct pool_system libuv_pool_system;  /* peer_libuv.c */
extern const struct pool_system openmp_pool_system; /* peer_openmp.c */
extern const struct pool_system tbb_pool_system;    /* peer_tbb.cpp */

#ifndef __cplusplus
#include <pthread.h>
#include <stdatomic.h>

/* Tasks submitted (by the one submitting thread) and finished (by any). The
 * waiter publishes its target, then sleeps until done reaches it; the task
 * that brings done to the target wakes it. Both sides write their own atomic
 * before reading the other's (seq_cst), so one of them sees the other. */
struct done_counter {
    long submitted; /* the submitting thread's own count */
    atomic_long done;
    atomic_long target; /* LONG_MAX while nobody waits */
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

void done_counter_init(struct done_counter *c);
void done_counter_add(struct done_counter *c);
void done_counter_wait(struct done_counter *c);
void done_counter_destroy(struct done_counter *c);
#endif

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_BENCH_PEERS_H */
