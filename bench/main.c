/* formica-bench: runs the worker-pool workloads W1-W4 of docs/benchmarks.md on
 * formica and on the in-tree baselines, and prints a table (and a CSV).
 *
 * Every (workload, system) run happens in a child process of its own, so that
 * one system's threads and memory never linger into another's figures, and
 * peak RSS can be read per run with wait4(). The child sends its figures
 * through a pipe; the parent kills a child that is not done in time, so a
 * system that hangs is reported as a timeout instead of stopping the bench.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

struct options {
    bool quick;
    int runs;
    const char *csv_path;
    bool selected[BENCH_MAX_WORKLOADS];
};

/* Long enough for the slowest expected run (thread-per-task takes about 17 s
 * on full W1 and 3.5 s on quick W1; W4 takes 16 s full, 2 s quick), short
 * enough that a hang costs little. */
static double child_timeout_s(bool quick)
{
    return quick ? 20 : 120;
}

/* ---- options ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: formica-bench [--only W1,W2,...] [--quick] [--runs N] [--csv FILE]\n"
            "  --only LIST  run only these workloads (default: all of");
    for (int i = 0; i < bench_workload_count; i++)
        fprintf(out, " %s", bench_workloads[i]->id);
    fprintf(out, ")\n"
                 "  --quick      every workload about 10x smaller (smoke runs)\n"
                 "  --runs N     runs per (workload, system); medians are reported (default 3)\n"
                 "  --csv FILE   also write workload,system,metric,value,unit rows to FILE\n"
                 "  --help       this text\n");
}

static int workload_index(const char *id)
{
    for (int i = 0; i < bench_workload_count; i++)
        if (strcasecmp(bench_workloads[i]->id, id) == 0)
            return i;
    return -1;
}

static bool parse_only(const char *list, bool *selected)
{
    char *copy = strdup(list), *save = NULL;
    bool ok = copy != NULL;
    for (char *id = ok ? strtok_r(copy, ",", &save) : NULL; id != NULL;
         id = strtok_r(NULL, ",", &save)) {
        int w = workload_index(id);
        if (w < 0) {
            fprintf(stderr, "formica-bench: unknown workload '%s'\n", id);
            ok = false;
            break;
        }
        selected[w] = true;
    }
    free(copy);
    return ok;
}

/* Returns false (after printing why) when the command line is wrong. */
static bool parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"only", required_argument, NULL, 'o'}, {"quick", no_argument, NULL, 'q'},
        {"runs", required_argument, NULL, 'r'}, {"csv", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    bool only = false;
    *opt = (struct options){.runs = 3};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!parse_only(optarg, opt->selected))
                return false;
            only = true;
            break;
        case 'q':
            opt->quick = true;
            break;
        case 'r':
            opt->runs = atoi(optarg);
            if (opt->runs < 1 || opt->runs > BENCH_MAX_RUNS) {
                fprintf(stderr, "formica-bench: --runs needs a count from 1 to %d\n",
                        BENCH_MAX_RUNS);
                return false;
            }
            break;
        case 'c':
            opt->csv_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return false;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "formica-bench: unexpected argument '%s'\n", argv[optind]);
        return false;
    }
    for (int i = 0; i < bench_workload_count && !only; i++)
        opt->selected[i] = true;
    return true;
}

/* ---- the child ---- */

static int publish_fd = -1; /* the child's end of the pipe */

_Static_assert(sizeof(struct run_result) <= PIPE_BUF, "a report must fit one atomic pipe write");

void bench_publish(const struct run_result *result)
{
    if (publish_fd < 0)
        return;
    /* One write below PIPE_BUF is atomic: the parent gets all of it or nothing.
     * The pipe stays open, so its end-of-file tells the parent the child exited. */
    ssize_t n = write(publish_fd, result, sizeof *result);
    (void)n; /* a parent that is gone cannot be told */
    publish_fd = -1;
}

void bench_fail(struct run_result *out, const char *what, int rc)
{
    if (!out->ok)
        return; /* keep the first cause */
    out->ok = false;
    snprintf(out->error, sizeof out->error, "%s: %s", what, strerror(-rc));
}

static _Noreturn void child_main(const struct workload *w, const struct bench_system *sys, int fd)
{
    publish_fd = fd;
    struct run_result result = {.ok = true};
    w->run(sys, &result);
    bench_publish(&result); /* a run that failed before publishing */
    _exit(0);
}

/* ---- the parent ---- */

/* What the parent learns from one child. */
struct run_sample {
    bool got_report;
    bool timed_out;
    struct run_result result;
    double peak_rss_mb;
    char exit_problem[BENCH_ERROR_LEN]; /* empty when the child exited cleanly */
};

/* Reads the child's report and then waits for end-of-file (the child's exit),
 * until the deadline. Returns false if the deadline passed first. */
static bool read_report(int fd, double deadline_s, struct run_sample *s)
{
    char *buf = (char *)&s->result;
    size_t got = 0;
    for (;;) {
        int left_ms = (int)((deadline_s - monotonic_seconds()) * 1e3);
        if (left_ms <= 0)
            return false;
        struct pollfd pfd = {fd, POLLIN, 0};
        int rc = poll(&pfd, 1, left_ms);
        if (rc < 0 && errno != EINTR)
            return false;
        if (rc <= 0)
            continue;
        /* Once the report is in, read on only to see end-of-file. */
        char scratch[64];
        char *dst = got < sizeof s->result ? buf + got : scratch;
        size_t room = got < sizeof s->result ? sizeof s->result - got : sizeof scratch;
        ssize_t n = read(fd, dst, room);
        if (n == 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0)
            got += (size_t)n;
        s->got_report = got >= sizeof s->result;
    }
}

static void describe_exit(int status, double timeout_s, struct run_sample *s)
{
    const char *when = s->got_report ? "after measuring, " : "";
    if (s->timed_out)
        snprintf(s->exit_problem, sizeof s->exit_problem, "%stimeout (killed after %g s)",
                 when, timeout_s);
    else if (WIFSIGNALED(status))
        snprintf(s->exit_problem, sizeof s->exit_problem, "%skilled by signal %d (%s)", when,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        snprintf(s->exit_problem, sizeof s->exit_problem, "%sexited with status %d", when,
                 WEXITSTATUS(status));
}

static void run_child(const struct workload *w, const struct bench_system *sys,
                      double timeout_s, struct run_sample *s)
{
    memset(s, 0, sizeof *s);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("formica-bench: pipe");
        exit(1);
    }
    fflush(stdout); /* or the child's exit could print the parent's buffered text */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("formica-bench: fork");
        exit(1);
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(w, sys, fds[1]);
    }
    close(fds[1]);
    s->timed_out = !read_report(fds[0], monotonic_seconds() + timeout_s, s);
    close(fds[0]);
    if (s->timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    s->peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KB */
    describe_exit(status, timeout_s, s);
}

static bool sample_ok(const struct run_sample *s)
{
    return s->got_report && s->result.ok;
}

/* Why a run failed, or what went wrong after it measured; "" if nothing did. */
static const char *run_problem(const struct run_sample *s)
{
    if (s->got_report && !s->result.ok)
        return s->result.error;
    if (s->exit_problem[0])
        return s->exit_problem;
    return s->got_report ? "" : "exited without a report";
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double metric_value(const struct workload *w, int m, const struct run_sample *s)
{
    return w->metrics[m].source == FROM_RUSAGE ? s->peak_rss_mb : s->result.values[m];
}

/* Folds the runs of one (workload, system) into medians and remarks: nruns
 * were run, and skipped more were not. */
static void summarise(const struct workload *w, const struct run_sample *runs, int nruns,
                      int skipped, struct cell *cell)
{
    memset(cell, 0, sizeof *cell);
    cell->runs_skipped = skipped;
    double column[BENCH_MAX_RUNS];
    for (int m = 0; m < w->nmetrics; m++) {
        int n = 0;
        for (int r = 0; r < nruns; r++)
            if (sample_ok(&runs[r]))
                column[n++] = metric_value(w, m, &runs[r]);
        if (n > 0)
            cell->value[m] = median(column, n);
    }
    for (int r = 0; r < nruns; r++) {
        const struct run_sample *s = &runs[r];
        if (sample_ok(s)) {
            cell->runs_ok++;
            if (run_problem(s)[0])
                snprintf(cell->note, sizeof cell->note, "%s", run_problem(s));
        } else {
            cell->runs_failed++;
            snprintf(cell->failure, sizeof cell->failure, "%s", run_problem(s));
        }
    }
}

static void print_progress(const struct workload *w, const struct bench_system *sys, int run,
                           int runs, double seconds, const struct run_sample *s)
{
    fprintf(stderr, "  %s %-16s run %d/%d  %6.2f s  %s\n", w->id, sys->name, run + 1, runs,
            seconds, run_problem(s)[0] ? run_problem(s) : "ok");
}

/* Runs every system on one workload. The runs go round the systems (run 1 of
 * each, then run 2 of each, ...) so that a slow spell of the shared machine is
 * spread over all of them rather than landing on one. After a timeout a system
 * gets no more runs of this workload: each would cost the whole timeout again. */
static void measure_workload(int wi, const struct options *opt, cell_table cells)
{
    const struct workload *w = bench_workloads[wi];
    char what[256];
    w->describe(what, sizeof what);
    fprintf(stderr, "%s %s: %s\n", w->id, w->title, what);

    static struct run_sample samples[BENCH_MAX_SYSTEMS][BENCH_MAX_RUNS];
    int done[BENCH_MAX_SYSTEMS] = {0};
    for (int r = 0; r < opt->runs; r++) {
        for (int s = 0; s < w->systems->n; s++) {
            if (done[s] > 0 && samples[s][done[s] - 1].timed_out)
                continue;
            struct run_sample *sample = &samples[s][done[s]++];
            double t0 = monotonic_seconds();
            run_child(w, &w->systems->v[s], child_timeout_s(opt->quick), sample);
            print_progress(w, &w->systems->v[s], r, opt->runs, monotonic_seconds() - t0, sample);
        }
    }
    for (int s = 0; s < w->systems->n; s++)
        summarise(w, samples[s], done[s], opt->runs - done[s], &cells[wi][s]);
}

static void print_machine(const struct options *opt)
{
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof u);
    printf("formica-bench: formica %s; machine: %ld CPUs online, %s %s %s; mode: %s, %d run%s "
           "per figure (medians)\n",
           fm_version_string(), sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, u.machine,
           opt->quick ? "quick" : "full", opt->runs, opt->runs == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
    /* Line-buffered, so that the table and the progress lines on stderr come out
     * in order when both go to one file. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct options opt;
    if (!parse_options(argc, argv, &opt))
        return 2;
    workloads_configure(opt.quick);
    print_machine(&opt);
    for (int w = 0; w < bench_workload_count; w++)
        if (opt.selected[w] && bench_workloads[w]->prepare != NULL)
            bench_workloads[w]->prepare();

    static cell_table cells;
    for (int w = 0; w < bench_workload_count; w++)
        if (opt.selected[w])
            measure_workload(w, &opt, cells);

    report_header(stdout);
    for (int w = 0; w < bench_workload_count; w++)
        if (opt.selected[w])
            report_workload(stdout, w, cells);
    report_notes(stdout, opt.selected, cells);

    if (opt.csv_path != NULL) {
        int rc = report_csv(opt.csv_path, opt.selected, cells);
        if (rc != 0) {
            fprintf(stderr, "formica-bench: writing %s: %s\n", opt.csv_path, strerror(-rc));
            return 1;
        }
        printf("CSV written to %s\n", opt.csv_path);
    }
    return 0;
}
