/* formica: threads and memory for long-running concurrent programs.
 *
 * One umbrella header; each module has its own header under formica/ and a
 * page under docs/:
 *   formica/common.h   error codes, timeouts, version        (docs/errors.md)
 *   formica/pool.h     fm_pool: the worker pool               (docs/pool.md)
 *   formica/multipool.h fm_multipool: pools behind a balancer (docs/tasks.md)
 *   formica/tasks.h    fm_group, fm_future: jobs and results   (docs/tasks.md)
 *   formica/diag.h     pool dump, slow-task watchdog, JSON stats (docs/diagnostics.md)
 *   formica/objpool.h  fm_objpool: the object pool            (docs/objpool.md)
 *   formica/bufpool.h  fm_bufpool: the buffer pool            (docs/bufpool.md)
 *
 * Link with -lformica -lpthread, or use pkg-config formica / find_package(formica).
 */
#ifndef FORMICA_H
#define FORMICA_H

#include "formica/common.h"
#include "formica/pool.h"
#include "formica/multipool.h"
#include "formica/tasks.h"
#include "formica/diag.h"
#include "formica/objpool.h"
#include "formica/bufpool.h"

#endif /* FORMICA_H */
