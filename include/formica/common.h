/* formica: common definitions shared by every module.
 *
 * Errors: every call that can fail returns 0 or a negative errno value.
 *   -EINVAL     a bad argument (NULL handle or function, capacity out of range, ...)
 *   -EAGAIN     the pool is saturated and the caller asked not to wait, or the
 *               limit on blocked submitters is reached, or a thread could not be started
 *   -ESHUTDOWN  the pool is released
 *   -ETIMEDOUT  the timeout expired first
 *   -ENOMEM     out of memory
 *   -EDEADLK    the call would wait for the calling task itself (for example a
 *               blocking submit from inside a task of the same saturated pool)
 *   -ECANCELED  the task group was cancelled
 * fm_strerror() names any of them.
 *
 * Timeouts are int64_t nanoseconds: FM_FOREVER (-1) waits forever, 0 does not wait.
 */
#ifndef FORMICA_COMMON_H
#define FORMICA_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FM_VERSION_MAJOR 0
#define FM_VERSION_MINOR 1
#define FM_VERSION_PATCH 0
/* One integer that orders releases: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define FM_VERSION (FM_VERSION_MAJOR * 10000 + FM_VERSION_MINOR * 100 + FM_VERSION_PATCH)

#if defined(FM_BUILDING_LIBRARY) && defined(__GNUC__)
#define FM_API __attribute__((visibility("default")))
#else
#define FM_API
#endif

#define FM_UNLIMITED (-1) /* a capacity without bound */
#define FM_FOREVER (-1)   /* a timeout that never expires */

/* A task: a function and the argument it is called with. */
typedef void (*fm_task_fn)(void *arg);

/* FM_VERSION of the library actually linked (may differ from the header's). */
FM_API int fm_version(void);

/* "major.minor.patch" of the library actually linked. */
FM_API const char *fm_version_string(void);

/* A short English description of a formica error code, negative (-EAGAIN) or
 * positive (EAGAIN); never NULL. Thread-safe. */
FM_API const char *fm_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* FORMICA_COMMON_H */
