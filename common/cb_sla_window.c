/* common/cb_sla_window.c - SLA aggregation windows (see cb_sla_window.h): a
 * growable ring of (time, value); percentiles sort a copy. */
#include "cb_sla_window.h"

#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

void cb_sla_window_init(cb_sla_window *w, int64_t span_ms, size_t count)
{
    memset(w, 0, sizeof *w);
    w->span_ns = count ? 0 : span_ms * 1000000;
    w->limit = count ? (count < CB_SLA_WINDOW_MAX ? count : CB_SLA_WINDOW_MAX) : CB_SLA_WINDOW_MAX;
}

void cb_sla_window_cleanup(cb_sla_window *w)
{
    free(w->t);
    free(w->v);
    memset(w, 0, sizeof *w);
}

static size_t at(const cb_sla_window *w, size_t i)
{
    return (w->head + i) % w->cap;
}

static void drop_oldest(cb_sla_window *w)
{
    w->head = (w->head + 1) % w->cap;
    w->n--;
}

static int grow(cb_sla_window *w)
{
    size_t cap = w->cap ? w->cap * 2 : 16;
    int64_t *t;
    double *v;
    if (cap > w->limit)
        cap = w->limit;
    if (!(t = cb_calloc(cap, sizeof *t)) || !(v = cb_calloc(cap, sizeof *v))) {
        free(t);
        return -1;
    }
    for (size_t i = 0; i < w->n; i++) { /* unroll the ring: the oldest first */
        t[i] = w->t[at(w, i)];
        v[i] = w->v[at(w, i)];
    }
    free(w->t);
    free(w->v);
    w->t = t;
    w->v = v;
    w->cap = cap;
    w->head = 0;
    return 0;
}

void cb_sla_window_trim(cb_sla_window *w, int64_t now_ns)
{
    if (w->span_ns <= 0)
        return;
    while (w->n && w->t[w->head] < now_ns - w->span_ns)
        drop_oldest(w);
}

cb_status cb_sla_window_add(cb_sla_window *w, int64_t t_ns, double v)
{
    if (w->n) {
        int64_t newest = w->t[at(w, w->n - 1)];
        if (t_ns < newest)
            t_ns = newest;
    }
    if (w->n == w->limit)
        drop_oldest(w);
    else if (w->n == w->cap && grow(w) != 0)
        return CB_ENOMEM;
    w->t[at(w, w->n)] = t_ns;
    w->v[at(w, w->n)] = v;
    w->n++;
    cb_sla_window_trim(w, t_ns);
    return CB_OK;
}

size_t cb_sla_window_size(const cb_sla_window *w)
{
    return w->n;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cb_sla_window_agg(const cb_sla_window *w, cb_sla_agg agg, double *out)
{
    double acc = 0, *sorted;
    int pct = 0;
    if (agg == CB_SLA_AGG_COUNT) {
        *out = (double)w->n;
        return 0;
    }
    if (!w->n)
        return -1;
    switch (agg) {
    case CB_SLA_AGG_NONE: /* the newest value */
        *out = w->v[at(w, w->n - 1)];
        return 0;
    case CB_SLA_AGG_SUM:
    case CB_SLA_AGG_AVG:
        for (size_t i = 0; i < w->n; i++)
            acc += w->v[at(w, i)];
        *out = agg == CB_SLA_AGG_SUM ? acc : acc / (double)w->n;
        return 0;
    case CB_SLA_AGG_MIN:
    case CB_SLA_AGG_MAX:
        acc = w->v[w->head];
        for (size_t i = 1; i < w->n; i++) {
            double x = w->v[at(w, i)];
            if (agg == CB_SLA_AGG_MIN ? x < acc : x > acc)
                acc = x;
        }
        *out = acc;
        return 0;
    case CB_SLA_AGG_P50:
        pct = 50;
        break;
    case CB_SLA_AGG_P90:
        pct = 90;
        break;
    case CB_SLA_AGG_P95:
        pct = 95;
        break;
    case CB_SLA_AGG_P99:
        pct = 99;
        break;
    default:
        return -1;
    }
    if (!(sorted = cb_calloc(w->n, sizeof *sorted)))
        return -1;
    for (size_t i = 0; i < w->n; i++)
        sorted[i] = w->v[at(w, i)];
    qsort(sorted, w->n, sizeof *sorted, by_value);
    {
        /* nearest rank: the smallest value with at least pct% at or below it */
        size_t rank = ((size_t)pct * w->n + 99) / 100;
        *out = sorted[rank ? rank - 1 : 0];
    }
    free(sorted);
    return 0;
}
