// Peer: oneTBB (libtbb-dev). A task_arena of the workload's capacity, with a
// global_control allowing that many threads (TBB's default would cap the
// arena at one thread per CPU, whatever its size), and a task_group: the
// submitting thread enters the arena, runs the group's n tasks through it and
// waits for them, as TBB code does. The submitting thread takes one of the
// arena's slots and runs tasks too. TBB's defaults otherwise.
#include <cerrno>
#include <new>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include "peers.h"

namespace {

struct tbb_pool {
    explicit tbb_pool(int capacity)
        : control(oneapi::tbb::global_control::max_allowed_parallelism,
                  static_cast<size_t>(capacity)),
          arena(capacity)
    {
    }
    oneapi::tbb::global_control control;
    oneapi::tbb::task_arena arena;
    oneapi::tbb::task_group group;
};

int tbb_create(const struct pool_config *cfg, void **pool)
{
    try {
        *pool = new tbb_pool(cfg->capacity);
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EAGAIN;
    }
}

int tbb_submit(void *, fm_task_fn, void *)
{
    return -ENOTSUP; // see tbb_run_batch
}

int tbb_wait_all(void *)
{
    return 0;
}

int tbb_run_batch(void *pool, fm_task_fn fn, void *arg, long n)
{
    tbb_pool *p = static_cast<tbb_pool *>(pool);
    try {
        p->arena.execute([&] {
            for (long i = 0; i < n; i++)
                p->group.run([fn, arg] { fn(arg); });
            p->group.wait();
        });
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EAGAIN;
    }
}

void tbb_destroy(void *pool)
{
    delete static_cast<tbb_pool *>(pool);
}

} // namespace

extern "C" const struct pool_system tbb_pool_system = {tbb_create, tbb_submit, tbb_wait_all,
                                                       tbb_destroy, tbb_run_batch};
