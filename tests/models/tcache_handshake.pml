/* The thread-cache handshake of src/tcache.h, on a machine with store buffers
 * (x86-TSO: a thread's stores wait in a FIFO buffer and reach memory later;
 * its own loads see them at once, other threads' loads do not).
 *
 * The cache's thread enters its bracket (store busy = 1; compiler barrier;
 * load locked), uses the payload, and leaves (store busy = 0). A drainer
 * stores locked = 1, issues the heavy barrier, waits until it loads
 * busy == 0, uses the payload, and stores locked = 0. ("locked" is the HELD
 * bit of the cache's gate; the gate's other bits only send the thread to its
 * slow path, which enters the same way, fenced in the THREAD_FENCE mode.)
 * The assertion: never
 * both inside at once.
 *
 * Variants (spin -D...):
 *   MEMBARRIER    the drainer's heavy barrier is membarrier(2): a full
 *                 barrier on its own CPU and on every CPU running a thread of
 *                 the process (modelled: both store buffers drain at once).
 *                 The library's normal mode. Must hold.
 *   THREAD_FENCE  no membarrier; the thread fences after its store and the
 *                 drainer fences after its own. The library's fallback. Must
 *                 hold.
 *   neither       the drainer fences on its own CPU only, the thread has a
 *                 compiler barrier only: the broken ordering. Must fail.
 */
bit busy_mem, locked_mem;   /* memory */
bit tb_full, tb_val;        /* the thread's store buffer: a pending store to busy */
bit db_full, db_val;        /* the drainer's: a pending store to locked */
byte inside;                /* parties using the payload */

/* A store goes behind the one already buffered (FIFO: that one commits first). */
inline thread_store_busy(v) { atomic { if :: tb_full -> busy_mem = tb_val :: else -> skip fi; tb_full = 1; tb_val = v } }
inline drainer_store_locked(v) { atomic { if :: db_full -> locked_mem = db_val :: else -> skip fi; db_full = 1; db_val = v } }
inline thread_fence() { atomic { if :: tb_full -> busy_mem = tb_val; tb_full = 0 :: else -> skip fi } }
inline drainer_fence() { atomic { if :: db_full -> locked_mem = db_val; db_full = 0 :: else -> skip fi } }

/* The hardware commits buffered stores whenever it likes. */
active proctype memory_system()
{
end:
    do
    :: atomic { tb_full -> busy_mem = tb_val; tb_full = 0 }
    :: atomic { db_full -> locked_mem = db_val; db_full = 0 }
    od
}

active proctype cache_thread()
{
    byte op;
    for (op : 1 .. 2) {
        thread_store_busy(1);
#ifdef THREAD_FENCE
        thread_fence();
#endif
        if
        :: locked_mem == 1 -> thread_store_busy(0)   /* drainer there: slow path */
        :: else ->
            inside++;
            assert(inside == 1);
            inside--;
            thread_store_busy(0)
        fi
    }
}

active proctype drainer()
{
    drainer_store_locked(1);
#ifdef MEMBARRIER
    atomic { drainer_fence(); thread_fence() }
#else
    drainer_fence();
#endif
    busy_mem == 0;   /* waits until its load sees busy clear */
    inside++;
    assert(inside == 1);
    inside--;
    drainer_store_locked(0)
}
