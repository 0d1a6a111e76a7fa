/* formica-bench: runs the workloads of docs/benchmarks.md on formica, the
 * in-tree baselines and the installed peers, and prints a table (and a CSV and
 * charts).
 *
 * Every (workload, system) run happens in a child process of its own, so that
 * one system's threads and memory never linger into another's figures, and
 * peak RSS can be read per run with wait4(). The child is a fork of this
 * program, or a helper program it starts (bench.h: allocator-linked builds,
 * the allocation counter, the Go peers). Either way it sends its figures as one
 * line through a pipe (the child protocol of bench.h); the parent kills a child
 * that is not done in time, so a system that hangs is reported as a timeout
 * instead of stopping the bench.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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
    const char *systems; /* --systems: a comma-separated list; NULL = all */
    char results_dir[PATH_MAX]; /* the CSV's folder: time series and charts; "" = none */
    bool selected[BENCH_MAX_WORKLOADS];
};

const char *bench_series_path;

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
            "usage: formica-bench [--only W1,W2,...] [--systems A,B,...] [--quick] [--runs N]\n"
            "                     [--csv FILE]\n"
            "  --only LIST  run only these workloads (default: all of");
    for (int i = 0; i < bench_workload_count; i++)
        fprintf(out, " %s", bench_workloads[i]->id);
    fprintf(out, ")\n"
                 "  --systems LIST  run only these systems (columns); the others show as skipped\n"
                 "  --quick      every workload about 10x smaller (smoke runs)\n"
                 "  --runs N     runs per (workload, system); medians are reported (default 3)\n"
                 "  --csv FILE   also write workload,system,metric,value,unit rows to FILE,\n"
                 "               time series and PNG charts (gnuplot) in its folder\n"
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
        {"help", no_argument, NULL, 'h'},       {"systems", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    bool only = false;
    memset(opt, 0, sizeof *opt);
    opt->runs = 3;
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
        case 's':
            opt->systems = optarg;
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
static const struct workload *publish_workload;

/* One line of the child protocol (bench.h). */
static void format_result(const struct workload *w, const struct run_result *r, char *line,
                          size_t len)
{
    size_t used = 0;
    if (!r->ok) {
        snprintf(line, len, "fail %s", r->error);
        for (char *c = line; *c; c++)
            if (*c == '\n')
                *c = ' ';
        used = strlen(line);
    } else {
        used = (size_t)snprintf(line, len, "ok");
        for (int m = 0; m < w->nmetrics && used < len; m++)
            if (w->metrics[m].source == FROM_CHILD && !isnan(r->values[m]))
                used += (size_t)snprintf(line + used, len - used, " %s=%.17g",
                                         w->metrics[m].name, r->values[m]);
    }
    if (used > len - 2)
        used = len - 2;
    line[used] = '\n';
    line[used + 1] = '\0';
}

void bench_publish(const struct run_result *result)
{
    if (publish_fd < 0)
        return;
    /* One write below PIPE_BUF is atomic: the parent gets all of it or nothing.
     * The pipe stays open, so its end-of-file tells the parent the child exited. */
    char line[PIPE_BUF];
    format_result(publish_workload, result, line, sizeof line);
    ssize_t n = write(publish_fd, line, strlen(line));
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
    publish_workload = w;
    struct run_result result = {.ok = true};
    w->run(sys, &result);
    bench_publish(&result); /* a run that failed before publishing */
    _exit(0);
}

static const struct bench_system *find_system(const struct workload *w, const char *name)
{
    for (int s = 0; s < w->systems->n; s++)
        if (strcmp(w->systems->v[s].name, name) == 0)
            return &w->systems->v[s];
    return NULL;
}

/* In formica-bench-ALLOCATOR: false (with why in err) unless malloc really is
 * that allocator's, so that a figure is never credited to the wrong one. */
static bool allocator_in_place(char *err, size_t len)
{
    static const char *const allocators[] = {"jemalloc", "mimalloc", "tcmalloc"};
    const char *prefix = "formica-bench-";
    if (strncmp(bench_exe_name, prefix, strlen(prefix)) != 0)
        return true;
    const char *suffix = bench_exe_name + strlen(prefix);
    for (size_t i = 0; i < sizeof allocators / sizeof allocators[0]; i++) {
        if (strcmp(suffix, allocators[i]) != 0)
            continue;
        void *(*fn)(size_t) = malloc, *addr;
        memcpy(&addr, &fn, sizeof addr);
        Dl_info info = {0};
        if (dladdr(addr, &info) != 0 && info.dli_fname != NULL &&
            strstr(info.dli_fname, suffix) != NULL)
            return true;
        snprintf(err, len, "malloc is not %s's here but %s's", suffix,
                 info.dli_fname != NULL ? info.dli_fname : "?");
        return false;
    }
    return true;
}

/* A helper started by the parent: HELPER --child WORKLOAD SYSTEM --fd N
 * [--quick] [--params P] [--series FILE] (bench.h). Runs that one measurement. */
static int exec_child_main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *wid = argv[2], *sname = argv[3];
    int fd = -1;
    bool quick = false;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc)
            fd = atoi(argv[++i]);
        else if (strcmp(argv[i], "--series") == 0 && i + 1 < argc)
            bench_series_path = argv[++i];
        else if (strcmp(argv[i], "--params") == 0 && i + 1 < argc)
            i++; /* the sizes come from workloads_configure() here */
    }
    workloads_configure(quick);
    const struct workload *w = NULL;
    for (int i = 0; i < bench_workload_count; i++)
        if (strcmp(bench_workloads[i]->id, wid) == 0)
            w = bench_workloads[i];
    const struct bench_system *sys = w ? find_system(w, sname) : NULL;
    if (fd < 0 || sys == NULL) {
        fprintf(stderr, "%s: no workload %s with system %s\n", bench_exe_name, wid, sname);
        return 2;
    }
    publish_fd = fd;
    publish_workload = w;
    struct run_result r = {.ok = false};
    if (sys->exec != NULL && strcmp(sys->exec, bench_exe_name) != 0) {
        /* e.g. "jemalloc" asked of a program not linked with it */
        snprintf(r.error, sizeof r.error, "%s runs in %s, not in %s", sname, sys->exec,
                 bench_exe_name);
        bench_publish(&r);
        return 1;
    }
    if (!allocator_in_place(r.error, sizeof r.error)) {
        bench_publish(&r);
        return 1;
    }
    child_main(w, sys, fd);
}

/* ---- the parent ---- */

/* How to run one child. */
struct run_ctx {
    bool quick;
    double timeout_s;
    const char *series; /* --series for this run, or NULL */
};

/* What the parent learns from one child. */
struct run_sample {
    bool got_report;
    bool timed_out;
    struct run_result result;
    double peak_rss_mb;
    char exit_problem[BENCH_ERROR_LEN]; /* empty when the child exited cleanly */
};

/* Parses one line of the child protocol into s->result. */
static void parse_report(const struct workload *w, char *line, struct run_sample *s)
{
    struct run_result *r = &s->result;
    for (int m = 0; m < BENCH_MAX_METRICS; m++)
        r->values[m] = NAN;
    char *save = NULL, *tok = strtok_r(line, " \n", &save);
    if (tok != NULL && strcmp(tok, "fail") == 0) {
        r->ok = false;
        char *rest = strtok_r(NULL, "\n", &save);
        snprintf(r->error, sizeof r->error, "%s", rest ? rest : "failed");
        return;
    }
    r->ok = tok != NULL && strcmp(tok, "ok") == 0;
    if (!r->ok)
        snprintf(r->error, sizeof r->error, "bad report from the child");
    while (r->ok && (tok = strtok_r(NULL, " \n", &save)) != NULL) {
        char *eq = strchr(tok, '=');
        int m = 0;
        if (eq != NULL) {
            *eq = '\0';
            while (m < w->nmetrics && strcmp(w->metrics[m].name, tok) != 0)
                m++;
        }
        if (eq == NULL || m == w->nmetrics) {
            r->ok = false;
            snprintf(r->error, sizeof r->error, "child reported an unknown metric '%s'", tok);
        } else {
            r->values[m] = strtod(eq + 1, NULL);
        }
    }
}

/* Reads the child's report line and then waits for end-of-file (the child's
 * exit), until the deadline. Returns false if the deadline passed first. */
static bool read_report(const struct workload *w, int fd, double deadline_s, struct run_sample *s)
{
    char line[PIPE_BUF + 1];
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
        /* Once the line is in, read on only to see end-of-file. */
        char scratch[64];
        char *dst = got < PIPE_BUF ? line + got : scratch;
        size_t room = got < PIPE_BUF ? PIPE_BUF - got : sizeof scratch;
        ssize_t n = read(fd, dst, room);
        if (n == 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
        if (n <= 0 || s->got_report)
            continue;
        got += (size_t)n;
        line[got < PIPE_BUF ? got : PIPE_BUF] = '\0';
        if (memchr(line, '\n', got) != NULL) {
            s->got_report = true;
            parse_report(w, line, s);
        }
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

/* The folder of this executable, where the helper programs are. */
static void helper_path(const char *name, char *path, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    if (snprintf(path, len, "%s/%s", slash != NULL ? self : ".", name) >= (int)len)
        path[0] = '\0'; /* too long: the spawn fails and says so */
}

/* Starts sys's helper program on the write end of the pipe (bench.h). vfork
 * semantics (posix_spawn): the child never holds a copy of this process's
 * pages, so its peak RSS is the helper's own. Returns the pid or -errno. */
static pid_t spawn_helper(const struct workload *w, const struct bench_system *sys,
                          const struct run_ctx *ctx, int fds[2])
{
    char path[PATH_MAX], fd[16], params[512] = "";
    helper_path(sys->exec, path, sizeof path);
    snprintf(fd, sizeof fd, "%d", fds[1]);
    if (w->params != NULL)
        w->params(params, sizeof params);
    char *argv[16];
    int argc = 0;
    argv[argc++] = path;
    argv[argc++] = "--child";
    argv[argc++] = (char *)w->id;
    argv[argc++] = (char *)sys->name;
    argv[argc++] = "--fd";
    argv[argc++] = fd;
    argv[argc++] = "--params";
    argv[argc++] = params;
    if (ctx->quick)
        argv[argc++] = "--quick";
    if (ctx->series != NULL) {
        argv[argc++] = "--series";
        argv[argc++] = (char *)ctx->series;
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -rc;
}

static void run_child(const struct workload *w, const struct bench_system *sys,
                      const struct run_ctx *ctx, struct run_sample *s)
{
    memset(s, 0, sizeof *s);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("formica-bench: pipe");
        exit(1);
    }
    fflush(stdout); /* or the child's exit could print the parent's buffered text */
    fflush(stderr);
    pid_t pid;
    if (sys->exec != NULL) {
        pid = spawn_helper(w, sys, ctx, fds);
        if (pid < 0) {
            char path[PATH_MAX];
            helper_path(sys->exec, path, sizeof path);
            if (snprintf(s->exit_problem, sizeof s->exit_problem, "cannot start %s: %s",
                         path, strerror((int)-pid)) >= (int)sizeof s->exit_problem)
                snprintf(s->exit_problem, sizeof s->exit_problem, "cannot start %s: %s",
                         sys->exec, strerror((int)-pid));
            close(fds[0]);
            close(fds[1]);
            return;
        }
    } else {
        pid = fork();
        if (pid < 0) {
            perror("formica-bench: fork");
            exit(1);
        }
        if (pid == 0) {
            close(fds[0]);
            bench_series_path = ctx->series;
            child_main(w, sys, fds[1]);
        }
    }
    close(fds[1]);
    s->timed_out = !read_report(w, fds[0], monotonic_seconds() + ctx->timeout_s, s);
    close(fds[0]);
    if (s->timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    s->peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KB */
    describe_exit(status, ctx->timeout_s, s);
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
            if (sample_ok(&runs[r]) && !isnan(metric_value(w, m, &runs[r])))
                column[n++] = metric_value(w, m, &runs[r]);
        cell->value[m] = n > 0 ? median(column, n) : NAN;
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

/* Whether --systems names this system (every system without --systems). */
static bool system_selected(const struct options *opt, const char *name)
{
    if (opt->systems == NULL)
        return true;
    size_t len = strlen(name);
    for (const char *p = opt->systems; p != NULL; p = strchr(p, ',')) {
        p += *p == ',';
        if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
            return true;
    }
    return false;
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
    for (int s = 0; s < w->systems->n; s++)
        if (w->systems->v[s].skip != NULL)
            fprintf(stderr, "  %s %-16s skipped: %s\n", w->id, w->systems->v[s].name,
                    w->systems->v[s].skip);
    for (int r = 0; r < opt->runs; r++) {
        for (int s = 0; s < w->systems->n; s++) {
            const struct bench_system *sys = &w->systems->v[s];
            if (sys->skip != NULL || !system_selected(opt, sys->name) ||
                (done[s] > 0 && samples[s][done[s] - 1].timed_out))
                continue;
            /* The first run of each system writes the time series, if any. */
            char series[PATH_MAX];
            struct run_ctx ctx = {opt->quick, child_timeout_s(opt->quick), NULL};
            if (r == 0 && opt->results_dir[0] != '\0') {
                int n = snprintf(series, sizeof series, "%s/series/%s-%s.dat", opt->results_dir,
                                 w->id, sys->name);
                if (n < (int)sizeof series && bench_make_parent_dirs(series) == 0) {
                    unlink(series); /* no stale series if this run writes none */
                    ctx.series = series;
                }
            }
            struct run_sample *sample = &samples[s][done[s]++];
            double t0 = monotonic_seconds();
            run_child(w, sys, &ctx, sample);
            print_progress(w, sys, r, opt->runs, monotonic_seconds() - t0, sample);
        }
    }
    for (int s = 0; s < w->systems->n; s++) {
        bool skip = w->systems->v[s].skip != NULL;
        bool selected = system_selected(opt, w->systems->v[s].name);
        summarise(w, samples[s], done[s], skip || !selected ? 0 : opt->runs - done[s],
                  &cells[wi][s]);
        cells[wi][s].skipped = selected ? w->systems->v[s].skip : "left out by --systems";
        cells[wi][s].deselected = !selected;
    }
}

/* The first line of path that starts with key, after its ": ", or "?". */
static void read_field(const char *path, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen(path, "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, strlen(key)) != 0)
            continue;
        char *v = strstr(line, ": ");
        v = v != NULL ? v + 2 : line;
        v[strcspn(v, "\n")] = '\0';
        if (snprintf(buf, len, "%s", v) >= (int)len)
            buf[len - 1] = '\0'; /* cut */
        break;
    }
    if (f != NULL)
        fclose(f);
}

static void print_machine(const struct options *opt)
{
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof u);
    char cpu[128], load[64];
    read_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_field("/proc/loadavg", "", load, sizeof load);
    double l1, l5, l15; /* the three averages, without the task counts */
    if (sscanf(load, "%lf %lf %lf", &l1, &l5, &l15) == 3)
        snprintf(load, sizeof load, "%.1f %.1f %.1f", l1, l5, l15);
    printf("formica-bench: formica %s; mode: %s, %d run%s per figure (medians)\n"
           "machine: %ld CPUs online (%s), %s %s %s; load average at start: %s\n",
           fm_version_string(), opt->quick ? "quick" : "full", opt->runs,
           opt->runs == 1 ? "" : "s", sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release,
           u.machine, load);
}

int main(int argc, char **argv)
{
    /* Line-buffered, so that the table and the progress lines on stderr come out
     * in order when both go to one file. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return exec_child_main(argc, argv);
    static struct options opt;
    if (!parse_options(argc, argv, &opt))
        return 2;
    if (opt.csv_path != NULL) {
        snprintf(opt.results_dir, sizeof opt.results_dir, "%s", opt.csv_path);
        char *slash = strrchr(opt.results_dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(opt.results_dir, sizeof opt.results_dir, ".");
    }
    workloads_configure(opt.quick);
    for (int w = 0; w < bench_workload_count; w++)
        if (bench_workloads[w]->systems->n > BENCH_MAX_SYSTEMS) {
            fprintf(stderr, "formica-bench: %s has more than BENCH_MAX_SYSTEMS systems\n",
                    bench_workloads[w]->id);
            return 2;
        }
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
        charts_write(opt.results_dir, opt.selected, cells);
    }
    return 0;
}
