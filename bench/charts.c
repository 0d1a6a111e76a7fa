/* The charts: one PNG per workload with a bar per system for its first metric
 * (formica's bars in red, log scale when the bars span more than 30x), and,
 * for workloads that sample a time series (W4; O3 once it does), RSS and
 * threads over time per system. The data and the gnuplot script are written
 * to DIR/plot/, the PNGs to DIR; without gnuplot a note says how to get it.
 */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static bool have_program(const char *name)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path != NULL ? path : "/usr/bin:/bin"), *save = NULL;
    bool found = false;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", dir, name);
        found = access(file, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* Copies text into out as lines of about width characters, broken at spaces
 * with gnuplot's "\\n" escape, for a title; drops double quotes. */
static void wrap(const char *text, size_t width, char *out, size_t len)
{
    size_t o = 0, line = 0;
    for (const char *c = text; *c != '\0' && o + 3 < len; c++) {
        if (*c == '"')
            continue;
        if (*c == ' ' && line + strcspn(c + 1, " ") >= width) {
            out[o++] = '\\';
            out[o++] = 'n';
            line = 0;
            continue;
        }
        out[o++] = *c;
        line++;
    }
    out[o] = '\0';
}

/* Writes DIR/plot/ID.dat (name value is_formica) and its bar chart to the
 * script. Returns false if no system measured the metric. */
static bool bar_chart(FILE *gp, const char *dir, int wi, cell_table cells)
{
    const struct workload *w = bench_workloads[wi];
    const struct metric *m = &w->metrics[0];
    char data[4096];
    snprintf(data, sizeof data, "%s/plot/%s.dat", dir, w->id);
    FILE *f = fopen(data, "w");
    if (f == NULL)
        return false;
    double lo = INFINITY, hi = 0;
    int n = 0, zeros = 0;
    for (int s = 0; s < w->systems->n; s++) {
        const struct cell *c = &cells[wi][s];
        if (c->skipped != NULL || c->runs_ok == 0 || isnan(c->value[0]))
            continue;
        fprintf(f, "\"%s\" %.6g %d\n", w->systems->v[s].name, c->value[0],
                w->systems->v[s].is_formica ? 1 : 0);
        if (c->value[0] > 0) {
            lo = fmin(lo, c->value[0]);
            hi = fmax(hi, c->value[0]);
        } else {
            zeros++; /* no bar on a log scale */
        }
        n++;
    }
    fclose(f);
    if (n == 0)
        return false;
    bool logscale = zeros == 0 && hi > 0 && hi / lo > 30;
    char what[256], title[300];
    w->describe(what, sizeof what);
    wrap(what, 110, title, sizeof title);
    fprintf(gp, "set output '%s/%s.png'\n", dir, w->id);
    fprintf(gp, "set title \"%s %s: %s [%s], median (lower is better)\\n%s\" noenhanced\n",
            w->id, w->title, m->name, m->unit, title);
    fprintf(gp, "set ylabel '%s [%s]' noenhanced\n", m->name, m->unit);
    if (logscale)
        fprintf(gp, "set logscale y\nset yrange [%g:%g]\n", lo / 2, hi * 3);
    else
        fprintf(gp, "unset logscale y\nset yrange [0:%g]\n", hi * 1.15);
    fprintf(gp, "plot '%s' using 0:2:($3 > 0 ? 0xc0392b : 0x7f8c8d):xtic(1) with boxes lc rgb "
                "variable notitle, '' using 0:2:(sprintf('%%.3g', $2)) with labels offset 0,0.8 "
                "notitle\n",
            data);
    return true;
}

/* RSS and threads over time from the series files of the first run of each
 * system (DIR/series/ID-SYSTEM.dat: seconds rss_mb threads). */
static bool series_chart(FILE *gp, const char *dir, int wi, cell_table cells)
{
    const struct workload *w = bench_workloads[wi];
    char files[BENCH_MAX_SYSTEMS][4096];
    const struct bench_system *sys[BENCH_MAX_SYSTEMS];
    int n = 0;
    for (int s = 0; s < w->systems->n; s++) {
        snprintf(files[n], sizeof files[n], "%s/series/%s-%s.dat", dir, w->id,
                 w->systems->v[s].name);
        struct stat st;
        if (cells[wi][s].skipped == NULL && stat(files[n], &st) == 0 && st.st_size > 0)
            sys[n++] = &w->systems->v[s]; /* a run killed early may leave an empty file */
    }
    if (n == 0)
        return false;
    fprintf(gp, "set output '%s/%s-series.png'\nunset title\nset multiplot layout 2,1 title "
                "\"%s %s: RSS and threads over time, first run of each system (formica: solid, "
                "others: dashed)\" noenhanced\nset key outside right\n",
            dir, w->id, w->id, w->title);
    for (int panel = 0; panel < 2; panel++) {
        fprintf(gp, "set ylabel '%s'\nset xlabel '%s'\nplot ",
                panel == 0 ? "RSS [MB]" : "threads (Go: OS threads)",
                panel == 1 ? "seconds from the start of the run" : "");
        for (int i = 0; i < n; i++)
            fprintf(gp, "%s'%s' using 1:%d with lines lt %d lw %d dt %d title '%s'", i ? ", " : "",
                    files[i], panel == 0 ? 2 : 3, i + 1, sys[i]->is_formica ? 3 : 2,
                    sys[i]->is_formica ? 1 : 2, sys[i]->name);
        fprintf(gp, "\n");
    }
    fprintf(gp, "unset multiplot\nunset xlabel\nset key default\n");
    return true;
}

static int run_gnuplot(const char *script)
{
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc != 0)
        return -rc;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

void charts_write(const char *dir, const bool *selected, cell_table cells)
{
    if (!have_program("gnuplot")) {
        printf("Charts skipped: gnuplot not found (apt-get install gnuplot-nox, or make "
               "bench-deps)\n");
        return;
    }
    char script[4096];
    snprintf(script, sizeof script, "%s/plot/charts.gp", dir);
    int rc = bench_make_parent_dirs(script);
    FILE *gp = rc == 0 ? fopen(script, "w") : NULL;
    if (gp == NULL) {
        printf("Charts skipped: cannot write %s\n", script);
        return;
    }
    /* Twelve distinct line colours for the series charts. */
    static const char *const colours[] = {"#c0392b", "#e67e22", "#2c3e50", "#16a085",
                                          "#8e44ad", "#2980b9", "#27ae60", "#7f8c8d",
                                          "#d35400", "#f1c40f", "#1abc9c", "#34495e"};
    fprintf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                "  set terminal pngcairo size 1000,560 font ',9'\n"
                "} else {\n  set terminal png size 1000,560 font ',10'\n}\n"
                "set style fill solid 0.85 border -1\n");
    for (int i = 0; i < (int)(sizeof colours / sizeof colours[0]); i++)
        fprintf(gp, "set linetype %d lc rgb '%s'\n", i + 1, colours[i]);
    fprintf(gp,
                "set boxwidth 0.7\nset grid ytics\nset xtics rotate by -25 noenhanced\n"
                "set key noenhanced\n");
    int charts = 0;
    for (int wi = 0; wi < bench_workload_count; wi++) {
        if (!selected[wi])
            continue;
        charts += bar_chart(gp, dir, wi, cells);
        fprintf(gp, "set xtics norotate\nunset logscale y\nset yrange [*:*]\nset autoscale\n");
        if (series_chart(gp, dir, wi, cells))
            charts++;
        fprintf(gp, "set xtics rotate by -25\n");
    }
    fclose(gp);
    rc = charts ? run_gnuplot(script) : 0;
    if (rc != 0)
        printf("Charts: gnuplot failed on %s\n", script);
    else
        printf("%d chart%s written to %s/ (PNG)\n", charts, charts == 1 ? "" : "s", dir);
}
