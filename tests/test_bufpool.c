/* Buffer pool: every call, the class boundaries, direct mappings, errors,
 * statistics, trim, cache_limit, decay observed through RSS and through the
 * pool's own counters, buffers crossing threads, and the aborts on misuse.
 *
 * Decay is waited for with a bounded poll (FM_WAIT_UNTIL, 5 s against a
 * decay of 100 ms), never a fixed sleep; under the sanitizers the RSS checks
 * are replaced by the pool's mapped-bytes counter, with a line saying so.
 */
#include "bufpool_test_util.h"

#include <dirent.h>

#define DECAY_NS 100000000 /* 100 ms */
#define WAIT_MS 5000

/* ---- creation, errors ---- */

FM_TEST(new_rejects_bad_arguments)
{
    fm_bufpool *b = NULL;
    FM_CHECK_EQ(fm_bufpool_new(NULL, NULL), -EINVAL);
    fm_bufpool_opts o = {.max_size = ((size_t)1 << 30) + 1};
    FM_CHECK_EQ(fm_bufpool_new(&b, &o), -EINVAL);
    FM_CHECK(b == NULL);
    o.max_size = (size_t)1 << 30; /* the largest accepted */
    FM_CHECK_EQ(fm_bufpool_new(&b, &o), 0);
    fm_bufpool_destroy(b);
    fm_bufpool_destroy(NULL); /* no-op */
}

FM_TEST(defaults)
{
    fm_bufpool_opts zero = {0};
    fm_bufpool *a = new_bufpool(NULL), *b = new_bufpool(&zero);
    struct fm_bufpool_stats sa = bufpool_stats(a), sb = bufpool_stats(b);
    FM_CHECK_EQ(sa.cache_limit, (size_t)1 << 30);
    FM_CHECK_EQ(sa.classes, sb.classes);
    struct fm_bufpool_class_stats last;
    FM_CHECK_EQ(fm_bufpool_class_stats(a, sa.classes - 1, &last), 0);
    FM_CHECK(last.size >= 4 * MiB);
    FM_CHECK_EQ(sa.gets + sa.puts + sa.bytes_mapped + sa.bytes_cached, 0);
    fm_bufpool_destroy(a);
    fm_bufpool_destroy(b);
}

FM_TEST(null_arguments)
{
    errno = 0;
    FM_CHECK(fm_bufpool_get(NULL, 10) == NULL);
    FM_CHECK_EQ(errno, EINVAL);
    fm_bufpool *b = new_bufpool(NULL);
    fm_bufpool_put(b, NULL); /* no-op */
    FM_CHECK_EQ(fm_bufpool_usable_size(b, NULL), 0);
    struct fm_bufpool_stats s;
    struct fm_bufpool_class_stats k;
    FM_CHECK_EQ(fm_bufpool_stats(NULL, &s), -EINVAL);
    FM_CHECK_EQ(fm_bufpool_stats(b, NULL), -EINVAL);
    FM_CHECK_EQ(fm_bufpool_class_stats(b, -1, &k), -EINVAL);
    FM_CHECK_EQ(fm_bufpool_class_stats(b, bufpool_stats(b).classes, &k), -EINVAL);
    FM_CHECK_EQ(fm_bufpool_class_stats(NULL, 0, &k), -EINVAL);
    FM_CHECK_EQ(fm_bufpool_stats_json(NULL, NULL, 0), -EINVAL);
    fm_bufpool_trim(NULL);
    FM_CHECK_EQ(bufpool_stats(b).puts, 0);
    fm_bufpool_destroy(b);
}

FM_TEST(get_zero_is_a_minimal_buffer)
{
    fm_bufpool *b = new_bufpool(NULL);
    unsigned char *p = fm_bufpool_get(b, 0), *q = fm_bufpool_get(b, 0);
    FM_CHECK(p && q && p != q);
    FM_CHECK(((uintptr_t)p & 15) == 0);
    size_t n = fm_bufpool_usable_size(b, p);
    FM_CHECK(n > 0);
    memset(p, 1, n);
    fm_bufpool *other = new_bufpool(NULL);
    FM_CHECK_EQ(fm_bufpool_usable_size(other, p), 0); /* not its buffer */
    fm_bufpool_put(b, p);
    FM_CHECK_EQ(fm_bufpool_usable_size(b, p), 0); /* no longer live */
    fm_bufpool_put(b, q);
    fm_bufpool_destroy(other);
    fm_bufpool_destroy(b);
}

FM_TEST(overflowing_sizes_fail_with_enomem)
{
    fm_bufpool *b = new_bufpool(NULL);
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        FM_CHECK(fm_bufpool_get(b, sizes[i]) == NULL);
        FM_CHECK_EQ(errno, ENOMEM);
    }
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.failed, 5);
    FM_CHECK_EQ(s.bytes_live, 0);
    FM_CHECK_EQ(s.bytes_mapped, 0);
    fm_bufpool_destroy(b);
}

/* ---- classes ---- */

/* size-1, size and size+1 around every class's usable size: each buffer holds
 * what was asked, a request of exactly a class's size lands in it, one byte
 * more goes to the next class (or to a direct mapping after the last). */
FM_TEST(every_class_boundary)
{
    fm_bufpool_opts o = {.max_size = 256 << 10};
    fm_bufpool *b = new_bufpool(&o);
    int n = bufpool_stats(b).classes;
    FM_CHECK(n >= 4 * 12); /* about four per doubling from 48 bytes to 256 KiB */
    size_t prev = 0;
    for (int c = 0; c < n; c++) {
        struct fm_bufpool_class_stats k;
        FM_CHECK_EQ(fm_bufpool_class_stats(b, c, &k), 0);
        FM_CHECK(k.size > prev);
        FM_CHECK(prev == 0 || k.size - prev <= (prev + 16) / 4 + 16); /* four per doubling */
        prev = k.size;
        size_t want[3] = {k.size - 1, k.size, k.size + 1};
        void *p[3];
        for (int i = 0; i < 3; i++) {
            p[i] = fm_bufpool_get(b, want[i]);
            FM_CHECK(p[i] != NULL);
            FM_CHECK(((uintptr_t)p[i] & 15) == 0);
            size_t u = fm_bufpool_usable_size(b, p[i]);
            FM_CHECK(u >= want[i]);
            ((unsigned char *)p[i])[0] = 1;
            ((unsigned char *)p[i])[u - 1] = 2;
        }
        FM_CHECK_EQ(fm_bufpool_usable_size(b, p[0]), k.size);
        FM_CHECK_EQ(fm_bufpool_usable_size(b, p[1]), k.size);
        FM_CHECK(fm_bufpool_usable_size(b, p[2]) > k.size);
        struct fm_bufpool_class_stats after;
        FM_CHECK_EQ(fm_bufpool_class_stats(b, c, &after), 0);
        FM_CHECK_EQ(after.gets - k.gets, 2);
        for (int i = 0; i < 3; i++)
            fm_bufpool_put(b, p[i]);
    }
    FM_CHECK(prev >= o.max_size);
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.gets, s.puts);
    FM_CHECK_EQ(s.bytes_live, 0);
    fm_bufpool_destroy(b);
}

FM_TEST(above_max_size_maps_directly_and_is_counted)
{
    fm_bufpool_opts o = {.max_size = 64 << 10};
    fm_bufpool *b = new_bufpool(&o);
    size_t n = 3 * MiB + 5;
    unsigned char *p = fm_bufpool_get(b, n);
    FM_CHECK(p != NULL);
    FM_CHECK(fm_bufpool_usable_size(b, p) >= n);
    p[0] = 1;
    p[n - 1] = 1;
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.direct, 1);
    FM_CHECK_EQ(s.gets, 1);
    FM_CHECK_EQ(s.misses, 1);
    FM_CHECK(s.bytes_live >= n && s.bytes_mapped >= n);
    /* max_size is rounded up to its class: one byte more than that is direct */
    struct fm_bufpool_class_stats last;
    FM_CHECK_EQ(fm_bufpool_class_stats(b, s.classes - 1, &last), 0);
    FM_CHECK(last.size >= o.max_size);
    void *q = fm_bufpool_get(b, last.size);
    FM_CHECK_EQ(bufpool_stats(b).direct, 1);
    fm_bufpool_put(b, q);
    q = fm_bufpool_get(b, last.size + 1);
    FM_CHECK_EQ(bufpool_stats(b).direct, 2);
    fm_bufpool_put(b, p);
    fm_bufpool_put(b, q);
    s = bufpool_stats(b);
    FM_CHECK_EQ(s.puts, 3);
    FM_CHECK_EQ(s.bytes_live, 0);
    FM_CHECK_EQ(s.bytes_mapped, s.bytes_cached); /* the pooled one is cached, direct ones gone */
    FM_CHECK(s.bytes_returned >= n);
    fm_bufpool_destroy(b);
}

/* ---- reuse, zeroing, statistics ---- */

FM_TEST(put_then_get_reuses_the_buffer)
{
    fm_bufpool_opts o = {.decay_ns = -1}; /* nothing leaves, however slow the machine */
    fm_bufpool *b = new_bufpool(&o);
    void *p = fm_bufpool_get(b, 100000);
    fm_bufpool_put(b, p);
    void *q = fm_bufpool_get(b, 99000); /* same class */
    FM_CHECK(p == q);
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.gets, 2);
    FM_CHECK_EQ(s.hits, 1);
    FM_CHECK_EQ(s.misses, 1);
    FM_CHECK_EQ(s.puts, 1);
    /* a large block: the buffer, its header and the page of its colour */
    FM_CHECK_EQ(s.bytes_live, fm_bufpool_usable_size(b, q) + 16 + (size_t)sysconf(_SC_PAGESIZE));
    fm_bufpool_put(b, q);
    fm_bufpool_destroy(b);
}

FM_TEST(zero_on_get_hands_out_zeroed_memory)
{
    /* no decay: the second round must find the first round's buffers however
     * slowly the byte checks run (sanitizers) */
    fm_bufpool_opts o = {.zero_on_get = 1, .decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    size_t sizes[] = {0, 100, 5000, 100000, 3 * MiB, 5 * MiB};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = fm_bufpool_get(b, sizes[i]);
            size_t u = fm_bufpool_usable_size(b, p);
            for (size_t j = 0; j < u; j++)
                if (p[j])
                    FM_FAIL("byte %zu of a %zu-byte buffer is %d", j, sizes[i], p[j]);
            memset(p, 0x77, u);
            fm_bufpool_put(b, p);
        }
    }
    FM_CHECK(bufpool_stats(b).hits >= 5);
    fm_bufpool_destroy(b);
}

FM_TEST(stats_json_is_one_line)
{
    fm_bufpool *b = new_bufpool(NULL);
    void *p = fm_bufpool_get(b, 1000);
    char line[512];
    int n = fm_bufpool_stats_json(b, line, sizeof line);
    FM_CHECK(n > 0 && (size_t)n < sizeof line);
    FM_CHECK_EQ(strlen(line), n);
    FM_CHECK(line[0] == '{' && line[n - 1] == '}' && !strchr(line, '\n'));
    const char *keys[] = {"\"gets\":1,", "\"hits\":0,", "\"misses\":1,", "\"puts\":0,",
                          "\"bytes_live\":", "\"bytes_cached\":0,", "\"bytes_mapped\":65536,",
                          "\"bytes_returned\":0,", "\"cache_limit\":1073741824,", "\"classes\":"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strstr(line, keys[i]))
            FM_FAIL("%s lacks %s", line, keys[i]);
    char small[8];
    FM_CHECK_EQ(fm_bufpool_stats_json(b, small, sizeof small), n); /* cut, like snprintf */
    FM_CHECK_EQ(strlen(small), sizeof small - 1);
    FM_CHECK_EQ(fm_bufpool_stats_json(b, NULL, 0), n);
    fm_bufpool_put(b, p);
    fm_bufpool_destroy(b);
}

/* ---- trim, cache_limit ---- */

FM_TEST(trim_returns_every_cached_byte)
{
    fm_bufpool_opts o = {.decay_ns = -1}; /* only trim gives memory back */
    fm_bufpool *b = new_bufpool(&o);
    void *p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = fm_bufpool_get(b, i % 2 ? 1000 : 1 * MiB);
        touch_all(p[i], fm_bufpool_usable_size(b, p[i]), 1);
    }
    void *keep = p[0];
    for (int i = 1; i < 40; i++)
        fm_bufpool_put(b, p[i]);
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK(s.bytes_cached >= 19 * MiB);
    fm_bufpool_trim(b);
    s = bufpool_stats(b);
    FM_CHECK_EQ(s.bytes_cached, 0);
    FM_CHECK_EQ(s.bytes_mapped, s.bytes_live); /* the one large buffer still live */
    FM_CHECK(s.bytes_returned >= 19 * MiB);
    fm_bufpool_put(b, keep);
    fm_buf_trim(); /* the default pool, never used: nothing to do */
    fm_bufpool_destroy(b);
}

FM_TEST(cache_limit_holds_under_a_burst)
{
    fm_bufpool_opts o = {.cache_limit = 8 * MiB, .decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    enum { N = 64 };
    void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = fm_bufpool_get(b, 1 * MiB);
    size_t block = fm_bufpool_usable_size(b, p[0]) + 16;
    for (int i = 0; i < N; i++) {
        fm_bufpool_put(b, p[i]);
        /* the store holds at most the limit, the thread cache one block of
         * a class this large */
        FM_CHECK(bufpool_stats(b).bytes_cached <= o.cache_limit + block);
    }
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK(s.dropped >= N - (8 * MiB / block) - 1);
    FM_CHECK_EQ(s.bytes_mapped, s.bytes_cached);
    FM_CHECK(s.bytes_returned >= (N - 8) * MiB);
    fm_bufpool_destroy(b);
}

/* ---- decay ---- */

/* Waits until the pool has given back everything but what stays live, and
 * (outside the sanitizers) until RSS, minus the live bytes, is back within
 * 8 MiB of where it started. */
static void wait_for_decay(fm_bufpool *b, size_t base_rss, size_t live_touched)
{
    /* both: the counters of one snapshot are not taken at the same instant */
    if (!FM_WAIT_UNTIL(bufpool_stats(b).bytes_cached == 0 &&
                           bufpool_stats(b).bytes_mapped == bufpool_stats(b).bytes_live,
                       WAIT_MS)) {
        struct fm_bufpool_stats s = bufpool_stats(b);
        FM_FAIL("after %d ms: %zu bytes cached, %zu mapped, %zu live", WAIT_MS, s.bytes_cached,
                s.bytes_mapped, s.bytes_live);
    }
    if (FM_TEST_SANITIZED) {
        printf("  RSS not checked under a sanitizer (its shadow memory is resident too); "
               "the pool's mapped bytes were checked instead\n");
        return;
    }
    if (!FM_WAIT_UNTIL(rss_bytes() <= base_rss + live_touched + 8 * MiB, WAIT_MS))
        FM_FAIL("RSS %zu MiB, live %zu MiB, baseline %zu MiB", rss_bytes() / MiB,
                live_touched / MiB, base_rss / MiB);
}

/* A burst of 96 MiB in 1 MiB buffers, every page touched, all put back (in a
 * shuffled order) or all but every keep-th: with no further call, the pool
 * gives the freed ones back within the bounded wait. */
static void burst_decays(int keep)
{
    fm_bufpool_opts o = {.decay_ns = DECAY_NS};
    fm_bufpool *b = new_bufpool(&o);
    enum { N = 96 };
    void *p[N];
    size_t base = rss_bytes();
    for (int i = 0; i < N; i++) {
        p[i] = fm_bufpool_get(b, MiB);
        touch_all(p[i], MiB, (unsigned char)i);
    }
    if (!FM_TEST_SANITIZED)
        FM_CHECK(rss_bytes() >= base + (N - 8) * MiB); /* RSS does see the burst */
    size_t live = 0;
    for (int i = 0; i < N; i++) {
        int j = (i * 37) % N; /* 37 is prime to 96: a permutation */
        if (keep && j % keep == 0)
            live += MiB;
        else
            fm_bufpool_put(b, p[j]);
    }
    wait_for_decay(b, base, live);
    /* given back by the decay, none of it at put time */
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.dropped, 0);
    FM_CHECK(s.bytes_returned >= (N - live / MiB) * MiB);
    for (int i = 0; keep && i < N; i += keep) {
        FM_CHECK(((unsigned char *)p[i])[MiB - 1] == (unsigned char)i); /* live data intact */
        fm_bufpool_put(b, p[i]);
    }
    wait_for_decay(b, base, 0);
    fm_bufpool_destroy(b);
}

FM_TEST(decay_returns_a_burst_by_itself) { burst_decays(0); }
FM_TEST(decay_returns_a_burst_with_live_neighbours) { burst_decays(10); }

/* Small buffers come from 64 KiB chunks: once all of a chunk is free, it
 * goes back too. */
FM_TEST(decay_returns_small_classes)
{
    fm_bufpool_opts o = {.decay_ns = DECAY_NS};
    fm_bufpool *b = new_bufpool(&o);
    enum { N = 6000 };
    static void *p[N];
    size_t base = rss_bytes();
    for (int i = 0; i < N; i++) {
        p[i] = fm_bufpool_get(b, (size_t)(i % 7) * 1000 + 10);
        touch_all(p[i], fm_bufpool_usable_size(b, p[i]), 3);
    }
    FM_CHECK(bufpool_stats(b).bytes_mapped >= 12 * MiB);
    for (int i = N - 1; i >= 0; i--)
        fm_bufpool_put(b, p[i]);
    wait_for_decay(b, base, 0);
    FM_CHECK_EQ(bufpool_stats(b).bytes_mapped, 0);
    fm_bufpool_destroy(b);
}

/* Reads file (of /proc/self/task/TID/) of the thread named name into buf;
 * 0, or -1 if there is no such thread. */
static int thread_file(const char *name, const char *file, char *buf, size_t len)
{
    DIR *d = opendir("/proc/self/task");
    int rc = -1;
    struct dirent *e;
    while (d && rc < 0 && (e = readdir(d))) {
        char path[300], comm[64];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        int named = f && fscanf(f, "%63s", comm) == 1 && strcmp(comm, name) == 0;
        if (f)
            fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/%s", e->d_name, file);
        if (named && (f = fopen(path, "r")) != NULL) {
            buf[fread(buf, 1, len - 1, f)] = '\0';
            fclose(f);
            rc = 0;
        }
    }
    if (d)
        closedir(d);
    return rc;
}

/* Context switches of the thread named name, or -1 if there is none. */
static long thread_switches(const char *name)
{
    char buf[4096];
    const char *vol, *invol;
    if (thread_file(name, "status", buf, sizeof buf) != 0 ||
        !(vol = strstr(buf, "\nvoluntary_ctxt_switches:")) ||
        !(invol = strstr(buf, "\nnonvoluntary_ctxt_switches:")))
        return -1;
    return atol(vol + strlen("\nvoluntary_ctxt_switches:")) +
           atol(invol + strlen("\nnonvoluntary_ctxt_switches:"));
}

/* Whether the thread named name is blocked in a futex wait with no timeout
 * (/proc/self/task/TID/syscall: futex is 202 on x86-64, 98 on arm64; the
 * fourth argument is the timeout): asleep until someone wakes it, as
 * pthread_cond_wait sleeps, not in a timed wait that ends in a tick. */
static int thread_sleeps_untimed(const char *name)
{
#if defined(__x86_64__)
    const long futex_nr = 202;
#elif defined(__aarch64__)
    const long futex_nr = 98;
#else
    const long futex_nr = -2;
#endif
    char buf[256];
    long nr;
    unsigned long uaddr, op, val, timeout;
    return thread_file(name, "syscall", buf, sizeof buf) == 0 &&
           sscanf(buf, "%ld %lx %lx %lx %lx", &nr, &uaddr, &op, &val, &timeout) == 5 &&
           nr == futex_nr && timeout == 0;
}

/* Once everything has decayed the maintenance thread sleeps: no tick for a
 * pool with nothing cached (a pool still ticking would wake it every 12.5 ms,
 * decay / 8, from a timed wait). It is seen blocked in an untimed wait, and
 * its context switches do not change while it is watched. A put wakes it
 * again. */
FM_TEST(maintenance_thread_sleeps_once_nothing_is_cached)
{
    fm_bufpool_opts o = {.decay_ns = DECAY_NS};
    fm_bufpool *b = new_bufpool(&o);
    fm_bufpool_put(b, fm_bufpool_get(b, 200000));
    FM_CHECK(FM_WAIT_UNTIL(bufpool_stats(b).bytes_mapped == 0, WAIT_MS));
    FM_CHECK(FM_WAIT_UNTIL(thread_sleeps_untimed("fm-maint"), WAIT_MS));
    long before = thread_switches("fm-maint");
    FM_CHECK(before >= 0);
    fm_test_sleep_ms(300);
    FM_CHECK_EQ(thread_switches("fm-maint"), before);
    FM_CHECK(thread_sleeps_untimed("fm-maint"));
    fm_bufpool_put(b, fm_bufpool_get(b, 200000)); /* cached again: decays again */
    FM_CHECK(FM_WAIT_UNTIL(bufpool_stats(b).bytes_mapped == 0, WAIT_MS));
    FM_CHECK(thread_switches("fm-maint") > before);
    fm_bufpool_destroy(b);
}

FM_TEST(negative_decay_keeps_the_cache)
{
    fm_bufpool_opts o = {.decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    void *p = fm_bufpool_get(b, 5 * 100000);
    fm_bufpool_put(b, p);
    size_t cached = bufpool_stats(b).bytes_cached;
    FM_CHECK(cached > 0);
    fm_test_sleep_ms(300); /* three decay periods of the other tests: nothing may happen */
    FM_CHECK_EQ(bufpool_stats(b).bytes_cached, cached);
    fm_bufpool_trim(b);
    FM_CHECK_EQ(bufpool_stats(b).bytes_mapped, 0);
    fm_bufpool_destroy(b);
}

/* ---- threads ---- */

struct xfer {
    fm_bufpool *b;
    void *buf[32];
};

static void *get_many(void *arg)
{
    struct xfer *x = arg;
    for (int i = 0; i < 32; i++) {
        x->buf[i] = fm_bufpool_get(x->b, (size_t)(i + 1) * 10000);
        tag_set(x->buf[i], (size_t)(i + 1) * 10000, (uint64_t)i * 77);
    }
    return NULL;
}

static void *put_some_and_exit(void *arg)
{
    struct xfer *x = arg;
    for (int i = 0; i < 16; i++) {
        if (!tag_ok(x->buf[i], (size_t)(i + 1) * 10000, (uint64_t)i * 77))
            FM_FAIL("buffer %d changed while in flight", i);
        fm_bufpool_put(x->b, x->buf[i]);
    }
    return NULL; /* its thread cache is flushed into the store at exit */
}

FM_TEST(buffers_cross_threads_and_exits_leave_nothing_stranded)
{
    fm_bufpool_opts o = {.decay_ns = DECAY_NS};
    struct xfer x = {.b = new_bufpool(&o)};
    pthread_t t;
    FM_CHECK_EQ(pthread_create(&t, NULL, get_many, &x), 0);
    FM_CHECK_EQ(pthread_join(t, NULL), 0);
    FM_CHECK_EQ(pthread_create(&t, NULL, put_some_and_exit, &x), 0);
    FM_CHECK_EQ(pthread_join(t, NULL), 0);
    for (int i = 16; i < 32; i++)
        fm_bufpool_put(x.b, x.buf[i]); /* by a third thread */
    struct fm_bufpool_stats s = bufpool_stats(x.b);
    FM_CHECK_EQ(s.gets, 32);
    FM_CHECK_EQ(s.puts, 32);
    FM_CHECK_EQ(s.bytes_live, 0);
    FM_CHECK(FM_WAIT_UNTIL(bufpool_stats(x.b).bytes_mapped == 0, WAIT_MS));
    fm_bufpool_destroy(x.b);
}

/* ---- fork ---- */

/* ThreadSanitizer does not support starting threads in the child of a
 * multi-threaded fork, which the child's decay needs. */
#if defined(__SANITIZE_THREAD__)
#define SKIP_FORK_UNDER_TSAN() FM_SKIP("ThreadSanitizer cannot start threads after fork")
#else
#define SKIP_FORK_UNDER_TSAN() ((void)0)
#endif

struct churn {
    fm_bufpool *b;
    atomic_bool stop;
    struct fm_test_park park; /* under the sanitizers, parked before each fork */
};

/* Gets and puts through the central store all the time (more blocks of a
 * class than a thread cache holds), so that forks land while it holds locks. */
static void *churn_main(void *arg)
{
    struct churn *ch = arg;
    void *p[12];
    while (!atomic_load(&ch->stop)) {
        fm_test_park_point(&ch->park);
        for (int i = 0; i < 12; i++)
            p[i] = fm_bufpool_get(ch->b, (size_t)(i % 3) * 3000 + 300000);
        for (int i = 0; i < 12; i++)
            fm_bufpool_put(ch->b, p[i]);
    }
    return NULL;
}

/* The child of a fork inherits a working pool: no lock a vanished thread held
 * stays taken, what was cached there is reused, and memory it caches still
 * decays (a maintenance thread starts in the child). */
FM_TEST(fork_child_keeps_a_working_pool)
{
    SKIP_FORK_UNDER_TSAN();
    fm_bufpool_opts o = {.decay_ns = DECAY_NS};
    struct churn ch = {.b = new_bufpool(&o)};
    pthread_t t;
    FM_CHECK_EQ(pthread_create(&t, NULL, churn_main, &ch), 0);
    for (int round = 0; round < 20; round++) {
        FM_CHECK(fm_test_park_all(&ch.park, 1));
        fflush(NULL);
        pid_t pid = fork();
        FM_CHECK(pid >= 0);
        if (pid == 0) {
            void *p[12];
            for (int i = 0; i < 12; i++)
                p[i] = fm_bufpool_get(ch.b, (size_t)(i % 3) * 3000 + 300000);
            for (int i = 0; i < 12; i++)
                fm_bufpool_put(ch.b, p[i]);
            /* what the churning thread held is leaked here: not cached */
            if (!FM_WAIT_UNTIL(bufpool_stats(ch.b).bytes_cached == 0, WAIT_MS)) {
                char js[512];
                fm_bufpool_stats_json(ch.b, js, sizeof js);
                FM_FAIL("round %d, child: still cached after %d ms: %s", round, WAIT_MS, js);
            }
            _exit(0);
        }
        fm_test_unpark(&ch.park);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            FM_FAIL("round %d: child status 0x%x", round, status);
    }
    atomic_store(&ch.stop, true);
    FM_CHECK_EQ(pthread_join(t, NULL), 0);
    FM_CHECK(FM_WAIT_UNTIL(bufpool_stats(ch.b).bytes_mapped == 0, WAIT_MS));
    fm_bufpool_destroy(ch.b);
}

/* ---- the default pool ---- */

FM_TEST(default_pool)
{
    fm_bufpool *d = fm_default_bufpool();
    FM_CHECK(d != NULL && d == fm_default_bufpool());
    unsigned char *p = fm_buf_get(20000);
    FM_CHECK(p != NULL);
    p[19999] = 1;
    FM_CHECK(fm_bufpool_usable_size(d, p) >= 20000);
    fm_buf_put(p);
    fm_buf_put(NULL);
    FM_CHECK_EQ(bufpool_stats(d).puts, 1);
    fm_buf_trim();
    FM_CHECK_EQ(bufpool_stats(d).bytes_mapped, 0);
}

/* ---- without membarrier ---- */

/* Where membarrier(2) is missing every call takes the fenced slow path; the
 * test sets the library's flag itself, before any pool of its process. */
extern int fm__tc_fenced;

FM_TEST(without_membarrier_the_fenced_path_caches_and_trims)
{
    fm__tc_fenced = 1;
    fm_bufpool_opts o = {.decay_ns = -1};
    fm_bufpool *b = new_bufpool(&o);
    for (int i = 0; i < 1000; i++) {
        void *p = fm_bufpool_get(b, (size_t)(i % 7) * 5000 + 100);
        FM_CHECK(p != NULL);
        fm_bufpool_put(b, p);
        if (i % 100 == 99)
            fm_bufpool_trim(b); /* a drain of this thread's cache */
    }
    struct fm_bufpool_stats s = bufpool_stats(b);
    FM_CHECK_EQ(s.gets, 1000);
    FM_CHECK_EQ(s.puts, 1000);
    FM_CHECK_EQ(s.bytes_live, 0);
    FM_CHECK(s.hits > 900); /* 7 classes, each missed again only after a trim */
    fm_bufpool_trim(b);
    FM_CHECK_EQ(bufpool_stats(b).bytes_cached, 0);
    FM_CHECK_EQ(fm__tc_fenced, 1);
    fm_bufpool_destroy(b);
}

/* ---- misuse aborts ---- */

static void put_malloced(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    char *m = calloc(1, 256);
    fm_bufpool_put(b, m + 32);
}

static void put_twice(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    void *p = fm_bufpool_get(b, 3000);
    fm_bufpool_put(b, p);
    fm_bufpool_put(b, p);
}

static void put_large_twice(void)
{
    fm_bufpool *b = new_bufpool(NULL);
    void *p = fm_bufpool_get(b, 300000);
    fm_bufpool_put(b, p);
    fm_bufpool_put(b, p);
}

static void put_to_other_pool(void)
{
    fm_bufpool *a = new_bufpool(NULL), *b = new_bufpool(NULL);
    fm_bufpool_put(b, fm_bufpool_get(a, 100));
}

FM_TEST(foreign_put_aborts)
{
    fm_test_expect_abort(put_malloced, "not a live buffer of this pool");
    fm_test_expect_abort(put_to_other_pool, "not a live buffer of this pool");
}

FM_TEST(double_put_aborts)
{
    fm_test_expect_abort(put_twice, "already put back (double put)");
    fm_test_expect_abort(put_large_twice, "already put back (double put)");
}

FM_TEST_MAIN()
