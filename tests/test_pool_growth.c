/* Worker pool: only submitters and the maintenance thread start threads.
 *
 * glibc gives a thread that calls pthread_create a malloc arena of its own
 * (the new thread's TLS is allocated in the calling thread), and keeps the
 * arena after the thread is gone. Worker threads that started other workers
 * left up to 8 arenas per CPU behind a burst. The case counts glibc's arenas
 * (malloc_info) before and after a burst that grows a pool to dozens of
 * workers: at most one more, the maintenance thread's. Built in release and
 * debug builds only: the sanitizers replace malloc (tests/CMakeLists.txt).
 */
#include "pool_test_util.h"

#include <malloc.h>
#include <time.h>

/* glibc's arenas now: the <heap nr=...> elements of malloc_info. */
static int count_arenas(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    FM_CHECK(f != NULL);
    FM_CHECK_EQ(malloc_info(0, f), 0);
    fclose(f);
    int n = 0;
    for (const char *s = buf; (s = strstr(s, "<heap nr=")) != NULL; s++)
        n++;
    free(buf);
    return n;
}

static void task_sleep_1ms(void *arg)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void burst_case(size_t qcap)
{
    enum { TASKS = 2000, CAP = 200 };
    int before = count_arenas();
    fm_pool_opts o = {.queue_capacity = qcap, .expiry_ns = -1};
    fm_pool *p = new_pool(CAP, &o);
    atomic_int ran = 0;
    for (int i = 0; i < TASKS; i++)
        FM_CHECK_EQ(fm_pool_submit(p, task_sleep_1ms, &ran), 0);
    FM_CHECK_EQ(fm_pool_wait(p, FM_FOREVER), 0);
    FM_CHECK_EQ(atomic_load(&ran), TASKS);
    struct fm_pool_stats st = pool_stats(p);
    fprintf(stderr, "  %llu workers started, arenas %d -> %d\n", (unsigned long long)st.threads_created,
           before, count_arenas());
    FM_CHECK(st.threads_created > 8); /* it did grow */
    FM_CHECK(count_arenas() <= before + 1);
    fm_pool_destroy(p);
}

FM_TEST(queue_burst_creates_at_most_one_arena) { burst_case(1024); }
FM_TEST(handoff_burst_creates_at_most_one_arena) { burst_case(0); }

FM_TEST_MAIN()
