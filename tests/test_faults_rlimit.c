/* Real resource limits instead of injected faults: RLIMIT_NPROC makes
 * pthread_create fail with EAGAIN, a low RLIMIT_AS makes mmap and malloc
 * fail. The library must report the failures cleanly, run every task it
 * accepted, and work fully again once the limit is raised.
 *
 * RLIMIT_NPROC does not bind root: run as root (as CI does), the case drops
 * to the user nobody first; as another user it binds that user, counting
 * every thread the user has on the machine. RLIMIT_AS cannot work under the
 * sanitizers, which reserve terabytes of address space and abort when their
 * own allocator finds no memory: skipped there.
 */
#include "pool_test_util.h"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>

#include "../src/os/sys.h"

#if defined(__SANITIZE_ADDRESS__) || FM_TEST_TSAN
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MIB ((size_t)1 << 20)

/* ---- helpers ---- */

/* Threads on the machine whose real user is uid (what RLIMIT_NPROC counts). */
static long user_threads(uid_t uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        FM_FAIL("opendir /proc: %s", strerror(errno));
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long ruid = -1, threads = 0;
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Uid:", 4) == 0)
                ruid = strtol(line + 4, NULL, 10);
            else if (strncmp(line, "Threads:", 8) == 0)
                threads = strtol(line + 8, NULL, 10);
        }
        fclose(f);
        if (ruid == (long)uid)
            n += threads;
    }
    closedir(d);
    return n;
}

static void set_soft_limit(int resource, rlim_t soft)
{
    struct rlimit r;
    FM_CHECK_EQ(getrlimit(resource, &r), 0);
    r.rlim_cur = soft;
    if (setrlimit(resource, &r) != 0)
        FM_FAIL("setrlimit(%d, %llu): %s", resource, (unsigned long long)soft, strerror(errno));
}

static void raise_soft_limit(int resource)
{
    struct rlimit r;
    FM_CHECK_EQ(getrlimit(resource, &r), 0);
    set_soft_limit(resource, r.rlim_max);
}

/* Submits n gate tasks without waiting; returns how many were accepted.
 * Every refusal must be one of the two errors a limit causes. */
static int submit_gated(fm_pool *p, struct gate *g, int n, int *refused)
{
    int accepted = 0;
    for (int i = 0; i < n; i++) {
        int rc = fm_pool_submit_timeout(p, task_gate, g, 0);
        if (rc != 0 && rc != -EAGAIN && rc != -ENOMEM)
            FM_FAIL("submit returned %d (%s)", rc, fm_strerror(rc));
        accepted += rc == 0;
        *refused += rc != 0;
    }
    return accepted;
}

/* ---- RLIMIT_NPROC: thread starts fail with EAGAIN ---- */

static void drop_to_nobody(void)
{
    if (geteuid() != 0)
        return; /* the limit binds this user as it is */
    struct passwd *pw = getpwnam("nobody");
    uid_t uid = pw ? pw->pw_uid : 65534;
    gid_t gid = pw ? pw->pw_gid : 65534;
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0)
        FM_SKIP("root cannot switch to the user nobody here (%s)", strerror(errno));
}

FM_TEST(nproc)
{
    /* The limits are set while still root (the hard limit stays where it
     * is, so the unprivileged user can raise the soft one again). */
    uid_t target = 65534;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        target = pw ? pw->pw_uid : 65534;
    } else {
        target = getuid();
    }
    long before = user_threads(target) + (geteuid() == 0 ? 1 : 0); /* + this process */
    const long headroom = 3;
    set_soft_limit(RLIMIT_NPROC, (rlim_t)(before + headroom));
    drop_to_nobody();

    /* Queue mode first: its first task starts a worker, the others wait in
     * the FIFO while the workers it adds start or fail to; all accepted. */
    struct gate g;
    gate_init(&g);
    fm_pool_opts qo = {.expiry_ns = -1, .queue_capacity = 64};
    fm_pool *q = new_pool(8, &qo);
    int refused = 0;
    int qaccepted = submit_gated(q, &g, 40, &refused);
    /* Hand-off mode: each task needs a worker of its own. */
    fm_pool_opts o = {.expiry_ns = -1};
    fm_pool *p = new_pool(16, &o);
    int accepted = submit_gated(p, &g, 16, &refused);
    printf("  RLIMIT_NPROC %ld: %d of 8 queue-mode workers, %d of 16 hand-off workers, "
           "%d submits refused\n",
           before + headroom, fm_pool_running(q), fm_pool_running(p), refused);
    fflush(stdout);
    /* How many start depends on the user's other threads on the machine,
     * and running also counts a start still in progress (a worker adding one
     * may be failing right now): that some did not start is what matters. */
    if (refused == 0)
        FM_SKIP("the limit never bit: other threads of the user ended meanwhile");
    /* A buffer pool caches while the maintenance thread cannot start. */
    fm_bufpool_opts bo = {.decay_ns = SEC_NS};
    fm_bufpool *b;
    FM_CHECK_EQ(fm_bufpool_new(&b, &bo), 0);
    void *buf = fm_bufpool_get(b, 100000);
    FM_CHECK(buf != NULL);
    fm_bufpool_put(b, buf);

    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(q, 20 * SEC_NS), 0);
    FM_CHECK_EQ(fm_pool_wait(p, 20 * SEC_NS), 0);
    FM_CHECK_EQ(atomic_load(&g.passed), qaccepted + accepted);

    /* The limit is raised: every worker starts, the buffers decay. */
    raise_soft_limit(RLIMIT_NPROC);
    struct gate g2;
    gate_init(&g2);
    refused = 0;
    FM_CHECK_EQ(submit_gated(p, &g2, 16, &refused), 16);
    FM_CHECK_EQ(fm_pool_running(p), 16);
    gate_open(&g2);
    FM_CHECK_EQ(fm_pool_wait(p, 20 * SEC_NS), 0);
    buf = fm_bufpool_get(b, 100000);
    fm_bufpool_put(b, buf);
    struct fm_bufpool_stats s;
    FM_CHECK(FM_WAIT_UNTIL((fm__clock_advance(SEC_NS), fm_bufpool_stats(b, &s),
                            s.bytes_mapped == 0),
                           20000));
    fm_bufpool_destroy(b);
    fm_pool_destroy(q);
    fm_pool_destroy(p);
}

/* ---- RLIMIT_AS: mappings and malloc fail with ENOMEM ---- */

static size_t address_space_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        FM_FAIL("fopen /proc/self/status: %s", strerror(errno));
    char line[256];
    size_t kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0)
            kib = (size_t)strtoull(line + 7, NULL, 10);
    fclose(f);
    return kib * 1024;
}

#define AS_HEADROOM (48 * MIB)
#define MAX_HELD 256

FM_TEST(address_space)
{
    if (SANITIZED)
        FM_SKIP("RLIMIT_AS cannot work under a sanitizer (it reserves terabytes of address "
                "space and aborts when its allocator finds none)");
    fm_bufpool *b;
    FM_CHECK_EQ(fm_bufpool_new(&b, NULL), 0);
    fm_objpool_opts oo = {.obj_size = MIB, .cleanup_interval_ns = -1};
    fm_objpool *op;
    FM_CHECK_EQ(fm_objpool_new(&op, &oo), 0);
    fm_pool_opts po = {.expiry_ns = -1, .stack_size = MIB};
    fm_pool *p = new_pool(MAX_HELD, &po);
    static void *bufs[MAX_HELD], *objs[MAX_HELD];
    int nbufs = 0, nobjs = 0;

    set_soft_limit(RLIMIT_AS, (rlim_t)(address_space_now() + AS_HEADROOM));
    /* Buffers of 1 MiB until the limit: NULL with ENOMEM, never a crash. */
    for (errno = 0; nbufs < MAX_HELD && (bufs[nbufs] = fm_bufpool_get(b, MIB)) != NULL;)
        memset(bufs[nbufs++], 1, MIB);
    FM_CHECK(nbufs < MAX_HELD);
    FM_CHECK_EQ(errno, ENOMEM);
    errno = 0;
    FM_CHECK(fm_bufpool_get(b, 64 * MIB) == NULL); /* above max_size: a direct mapping */
    FM_CHECK_EQ(errno, ENOMEM);
    /* Half of them back, trimmed: the memory is given back and can be had again. */
    for (int i = nbufs / 2; i < nbufs; i++)
        fm_bufpool_put(b, bufs[i]);
    int had = nbufs;
    nbufs /= 2;
    fm_bufpool_trim(b);
    /* Objects of 1 MiB (malloc maps each) until malloc fails. */
    for (errno = 0; nobjs < MAX_HELD && (objs[nobjs] = fm_objpool_get(op)) != NULL;)
        memset(objs[nobjs++], 2, MIB);
    FM_CHECK(nobjs < MAX_HELD);
    FM_CHECK_EQ(errno, ENOMEM);
    /* Workers with 1 MiB stacks: their mappings fail with -ENOMEM. */
    struct gate g;
    gate_init(&g);
    int refused = 0;
    int accepted = submit_gated(p, &g, MAX_HELD, &refused);
    printf("  RLIMIT_AS +%zu MiB: %d buffers, %d objects, %d workers before ENOMEM\n",
           AS_HEADROOM / MIB, had, nobjs, accepted);
    FM_CHECK(refused > 0);
    gate_open(&g);
    FM_CHECK_EQ(fm_pool_wait(p, 20 * SEC_NS), 0);
    FM_CHECK_EQ(atomic_load(&g.passed), accepted);

    /* The limit is raised: everything works again. */
    raise_soft_limit(RLIMIT_AS);
    for (int i = 0; i < nobjs; i++)
        fm_objpool_put(op, objs[i]);
    void *big = fm_bufpool_get(b, 64 * MIB);
    FM_CHECK(big != NULL);
    memset(big, 3, 64 * MIB);
    fm_bufpool_put(b, big);
    for (int i = 0; i < nbufs; i++)
        fm_bufpool_put(b, bufs[i]);
    struct gate g2;
    gate_init(&g2);
    refused = 0;
    FM_CHECK_EQ(submit_gated(p, &g2, 64, &refused), 64);
    gate_open(&g2);
    FM_CHECK_EQ(fm_pool_wait(p, 20 * SEC_NS), 0);
    fm_pool_destroy(p);
    fm_objpool_destroy(op);
    fm_bufpool_destroy(b);
}

FM_TEST_MAIN()
