/* parallel_checksum: prints an FNV-1a checksum of every file named on the
 * command line, reading and hashing them on a worker pool of at most 4
 * threads. Shows fm_pool_new, fm_pool_submit, fm_pool_wait and the stats.
 *
 *   parallel_checksum FILE...
 */
#include <formica.h>

#include <errno.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    const char *path;
    uint64_t sum;
    int err; /* nonzero if the file could not be read */
};

static void checksum_file(void *arg)
{
    struct job *job = arg;
    FILE *f = fopen(job->path, "rb");
    if (!f) {
        job->err = 1;
        return;
    }
    uint64_t h = 1469598103934665603u;
    unsigned char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211u;
    job->err = ferror(f);
    job->sum = h;
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    int njobs = argc - 1;
    struct job *jobs = calloc((size_t)njobs, sizeof *jobs);
    fm_pool *pool;
    int rc = jobs ? fm_pool_new(&pool, 4, &(fm_pool_opts){.name = "cksum"}) : -ENOMEM;
    if (rc) {
        fprintf(stderr, "pool: %s\n", fm_strerror(rc));
        free(jobs);
        return 1;
    }
    for (int i = 0; i < njobs; i++) {
        jobs[i].path = argv[i + 1];
        rc = fm_pool_submit(pool, checksum_file, &jobs[i]);
        if (rc) { /* blocking submit: only a released pool or no memory fails */
            fprintf(stderr, "submit: %s\n", fm_strerror(rc));
            fm_pool_destroy(pool); /* the accepted tasks still use jobs: let them end */
            free(jobs);
            return 1;
        }
    }
    fm_pool_wait(pool, FM_FOREVER);

    int failed = 0;
    for (int i = 0; i < njobs; i++) {
        if (jobs[i].err) {
            fprintf(stderr, "%s: cannot read\n", jobs[i].path);
            failed = 1;
        } else {
            printf("%016llx  %s\n", (unsigned long long)jobs[i].sum, jobs[i].path);
        }
    }
    struct fm_pool_stats st;
    fm_pool_stats(pool, &st);
    fprintf(stderr, "%llu tasks on %llu threads\n", (unsigned long long)st.completed,
            (unsigned long long)st.threads_created);
    fm_pool_destroy(pool);
    free(jobs);
    return failed;
}
