/* Error names and version. */
#include <errno.h>

#include "internal.h"

FM_API int fm_version(void)
{
    return FM_VERSION;
}

#define FM__STR2(x) #x
#define FM__STR(x) FM__STR2(x)

FM_API const char *fm_version_string(void)
{
    return FM__STR(FM_VERSION_MAJOR) "." FM__STR(FM_VERSION_MINOR) "." FM__STR(FM_VERSION_PATCH);
}

FM_API const char *fm_strerror(int err)
{
    /* INT_MIN has no positive counterpart; it is simply unknown. */
    int code = err < 0 && err != -2147483647 - 1 ? -err : err;
    switch (code) {
    case 0:
        return "success";
    case EINVAL:
        return "invalid argument";
    case EAGAIN:
        return "pool saturated, or resource temporarily unavailable";
    case ESHUTDOWN:
        return "pool released";
    case ETIMEDOUT:
        return "timed out";
    case ENOMEM:
        return "out of memory";
    case EDEADLK:
        return "would wait for the calling task itself (deadlock)";
    case ECANCELED:
        return "task group cancelled";
    default:
        return "unknown error";
    }
}
