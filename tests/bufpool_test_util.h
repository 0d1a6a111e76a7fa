/* Helpers shared by the buffer-pool tests: pools that must be created, stats
 * snapshots, the process's resident set, patterns written into buffers. */
#ifndef FM_BUFPOOL_TEST_UTIL_H
#define FM_BUFPOOL_TEST_UTIL_H

#include "fm_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <formica.h>

/* Under the sanitizers the resident set also holds their shadow memory and
 * quarantine, so RSS figures are not the pool's: the tests then check the
 * pool's own mapped-bytes counter only, and say so. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FM_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FM_TEST_SANITIZED 1
#endif
#endif
#ifndef FM_TEST_SANITIZED
#define FM_TEST_SANITIZED 0
#endif

#define MiB ((size_t)1 << 20)

static inline fm_bufpool *new_bufpool(const fm_bufpool_opts *o)
{
    fm_bufpool *b = NULL;
    int rc = fm_bufpool_new(&b, o);
    if (rc != 0 || !b)
        FM_FAIL("fm_bufpool_new: %d", rc);
    return b;
}

static inline struct fm_bufpool_stats bufpool_stats(const fm_bufpool *b)
{
    struct fm_bufpool_stats s;
    if (fm_bufpool_stats(b, &s) != 0)
        FM_FAIL("fm_bufpool_stats failed");
    return s;
}

/* Resident set of this process in bytes (VmRSS of /proc/self/status). */
static inline size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        FM_FAIL("cannot open /proc/self/status");
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    fclose(f);
    if (kb == 0)
        FM_FAIL("no VmRSS in /proc/self/status");
    return kb * 1024;
}

/* Writes every byte of buf (so every page is resident). */
static inline void touch_all(void *buf, size_t n, unsigned char v)
{
    memset(buf, v, n);
}

/* Marks the first and last byte of a buffer with a tag derived from seed, and
 * checks them later: a buffer handed to two holders at once shows up. */
static inline void tag_set(unsigned char *buf, size_t n, uint64_t seed)
{
    buf[0] = (unsigned char)seed;
    if (n > 1)
        buf[n - 1] = (unsigned char)(seed >> 8);
}

static inline bool tag_ok(const unsigned char *buf, size_t n, uint64_t seed)
{
    return buf[0] == (unsigned char)seed && (n <= 1 || buf[n - 1] == (unsigned char)(seed >> 8));
}

#endif /* FM_BUFPOOL_TEST_UTIL_H */
