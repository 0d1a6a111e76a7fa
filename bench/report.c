/* The results: a table for people on stdout, and a CSV for charts and scripts
 * (header workload,system,metric,value,unit; one row per median figure). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

enum { LABEL_WIDTH = 30, RATIO_WIDTH = 16 };

static int column_width(const struct bench_system *sys)
{
    int len = (int)strlen(sys->name);
    return (len > 10 ? len : 10) + 2;
}

/* Few digits, but enough to compare: 13440, 194, 31.3, 2.06, 0.178. */
static void format_value(char *buf, size_t len, double v)
{
    double a = fabs(v);
    const char *fmt = a >= 100 || v == floor(v) ? "%.0f"
                      : a >= 10              ? "%.1f"
                      : a >= 1               ? "%.2f"
                      : a >= 0.01            ? "%.3f"
                                             : "%.2g";
    snprintf(buf, len, fmt, v);
}

/* The value column of one cell; a '*' marks a median over fewer runs than asked. */
static void format_cell(char *buf, size_t len, const struct cell *c, int m)
{
    if (c->skipped != NULL) {
        snprintf(buf, len, "skipped");
        return;
    }
    if (c->runs_ok == 0) {
        snprintf(buf, len, "%s", strstr(c->failure, "timeout") ? "timeout" : "failed");
        return;
    }
    if (isnan(c->value[m])) {
        snprintf(buf, len, "-");
        return;
    }
    char num[24];
    format_value(num, sizeof num, c->value[m]);
    snprintf(buf, len, "%s%s", num, c->runs_failed ? "*" : "");
}

/* Lowest median of metric m among formica's modes (formica = true) or among the
 * other systems. Returns false if none of them measured it. */
static bool best_value(const struct workload *w, const struct cell *cells, int m, bool formica,
                       double *best)
{
    bool found = false;
    for (int s = 0; s < w->systems->n; s++) {
        if (w->systems->v[s].is_formica != formica || cells[s].runs_ok == 0 ||
            isnan(cells[s].value[m]))
            continue;
        if (!found || cells[s].value[m] < *best)
            *best = cells[s].value[m];
        found = true;
    }
    return found;
}

/* formica's best mode over the best other system: below 1, formica is lower. */
static void format_ratio(char *buf, size_t len, const struct workload *w, const struct cell *cells,
                         int m)
{
    double ours, theirs;
    if (!w->metrics[m].compare) {
        buf[0] = '\0';
    } else if (!best_value(w, cells, m, true, &ours) || !best_value(w, cells, m, false, &theirs)) {
        snprintf(buf, len, "-");
    } else if (theirs == 0) {
        snprintf(buf, len, "%s", ours == 0 ? "equal" : "inf");
    } else {
        snprintf(buf, len, "%.2f", ours / theirs);
    }
}

void report_header(FILE *out)
{
    fprintf(out, "\n(last column: formica's best mode / the best other system; below 1 = formica "
                 "lower; * = median of the runs that did not fail; - = not measured by that "
                 "system; skipped = peer not installed, see the notes)\n");
}

void report_workload(FILE *out, int wi, cell_table cells)
{
    const struct workload *w = bench_workloads[wi];
    const struct system_list *sys = w->systems;
    char what[256];
    w->describe(what, sizeof what);
    fprintf(out, "\n%s %s: %s\n%-*s", w->id, w->title, what, LABEL_WIDTH, "  metric [unit]");
    for (int s = 0; s < sys->n; s++)
        fprintf(out, "%*s", column_width(&sys->v[s]), sys->v[s].name);
    fprintf(out, "%*s\n", RATIO_WIDTH, "formica/other");
    for (int m = 0; m < w->nmetrics; m++) {
        char label[64], text[32];
        snprintf(label, sizeof label, "  %s [%s]", w->metrics[m].name, w->metrics[m].unit);
        fprintf(out, "%-*s", LABEL_WIDTH, label);
        for (int s = 0; s < sys->n; s++) {
            format_cell(text, sizeof text, &cells[wi][s], m);
            fprintf(out, "%*s", column_width(&sys->v[s]), text);
        }
        format_ratio(text, sizeof text, w, cells[wi], m);
        fprintf(out, "%*s\n", RATIO_WIDTH, text);
    }
}

void report_notes(FILE *out, const bool *selected, cell_table cells)
{
    bool any = false;
    for (int wi = 0; wi < bench_workload_count; wi++) {
        const struct system_list *sys = bench_workloads[wi]->systems;
        for (int s = 0; s < sys->n && selected[wi]; s++) {
            const struct cell *c = &cells[wi][s];
            if (c->deselected)
                continue;
            if (c->runs_failed == 0 && c->runs_skipped == 0 && c->note[0] == '\0' &&
                c->skipped == NULL)
                continue;
            if (!any)
                fprintf(out, "\nNotes:\n");
            any = true;
            fprintf(out, "  %s %s:", bench_workloads[wi]->id, sys->v[s].name);
            const char *sep = " ";
            if (c->skipped) {
                fprintf(out, "%snot built here: %s", sep, c->skipped);
                sep = "; ";
            }
            if (c->runs_failed) {
                fprintf(out, "%s%d of %d runs failed: %s", sep, c->runs_failed,
                        c->runs_failed + c->runs_ok, c->failure);
                sep = "; ";
            }
            if (c->runs_skipped) {
                fprintf(out, "%s%d more runs skipped after the timeout", sep, c->runs_skipped);
                sep = "; ";
            }
            if (c->note[0])
                fprintf(out, "%s%s", sep, c->note);
            fputc('\n', out);
        }
    }
}

/* mkdir -p of the folder that will hold path: results/ is not kept in git while
 * it is empty, so a fresh clone does not have it. */
int bench_make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *slash = strchr(copy + 1, '/'); slash != NULL && rc == 0;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(copy, 0777) != 0 && errno != EEXIST)
            rc = -errno;
        *slash = '/';
    }
    free(copy);
    return rc;
}

static void csv_cell(FILE *f, const struct workload *w, const struct bench_system *sys,
                     const struct cell *c)
{
    if (c->skipped != NULL)
        fprintf(f, "%s,%s,skipped,NA,%s\n", w->id, sys->name, c->skipped);
    for (int m = 0; m < w->nmetrics && c->runs_ok > 0; m++)
        if (!isnan(c->value[m]))
            fprintf(f, "%s,%s,%s,%.6g,%s\n", w->id, sys->name, w->metrics[m].name, c->value[m],
                    w->metrics[m].unit);
    if (c->runs_failed > 0)
        fprintf(f, "%s,%s,failed_runs,%d,runs\n", w->id, sys->name, c->runs_failed);
}

int report_csv(const char *path, const bool *selected, cell_table cells)
{
    int rc = bench_make_parent_dirs(path);
    if (rc != 0)
        return rc;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    fprintf(f, "workload,system,metric,value,unit\n");
    for (int wi = 0; wi < bench_workload_count; wi++)
        for (int s = 0; s < bench_workloads[wi]->systems->n && selected[wi]; s++)
            csv_cell(f, bench_workloads[wi], &bench_workloads[wi]->systems->v[s], &cells[wi][s]);
    bool write_failed = ferror(f) != 0;
    if (fclose(f) != 0 || write_failed)
        return -EIO;
    return 0;
}
