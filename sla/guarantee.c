/* sla/guarantee.c - evaluating one guarantee (see guarantee.h). */
#include "guarantee.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

void cb_sla_guarantee_cleanup(cb_sla_guarantee *g)
{
    cb_sla_expr_free(g->expr);
    free(g->query);
    for (int i = 0; i < CB_SLA_NMETRICS; i++)
        cb_sla_window_cleanup(&g->win[i]);
    memset(g, 0, sizeof *g);
}

/* A constraint on [query] and the guarantee's query go together; the daemon
 * asks it every period and each answer is an evaluation (punctual here). */
static cb_status query_of(cb_sla_guarantee *g, const json_t *spec, char *err, size_t errlen)
{
    const char *q = json_string_value(json_object_get(spec, "query"));
    if (g->level != CB_SLA_LEVEL_QUERY) {
        if (!q)
            return CB_OK;
        snprintf(err, errlen, "/query: only a constraint on [query] uses a query");
        return CB_EINVAL;
    }
    if (!q || !*q) {
        snprintf(err, errlen,
                 "/query: [query] is the value of the guarantee's query (PromQL), "
                 "and it has none");
        return CB_EINVAL;
    }
    if (!(g->query = cb_strdup(q))) {
        snprintf(err, errlen, "out of memory");
        return CB_ENOMEM;
    }
    g->query_period_ms = g->period_ms > 0 ? g->period_ms : CB_SLA_QUERY_PERIOD_MS;
    g->period_ms = 0;
    return CB_OK;
}

cb_status cb_sla_guarantee_init(cb_sla_guarantee *g, const json_t *spec, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(spec, "name"));
    const char *text = json_string_value(json_object_get(spec, "constraint"));
    const json_t *win = json_object_get(spec, "window");
    json_int_t reps = json_integer_value(json_object_get(spec, "repetitions"));
    int64_t span_ms, count;
    char why[300];
    cb_status s;

    memset(g, 0, sizeof *g);
    if (!name || !text || strlen(name) > CB_NAME_MAX || strlen(text) > CB_SLA_EXPR_MAX) {
        snprintf(err, errlen, "a guarantee needs a name and a constraint");
        return CB_EINVAL;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->constraint, sizeof g->constraint, "%s", text);
    if ((s = cb_sla_parse(text, &g->expr, why, sizeof why)) != CB_OK) {
        snprintf(err, errlen, "/constraint: %s", why);
        return s;
    }
    g->level = cb_sla_expr_level(g->expr);
    /* a punctual job-level bound is a deadline to predict against */
    g->makespan_bound =
        g->level == CB_SLA_LEVEL_JOB && !json_integer_value(json_object_get(spec, "period_ms"))
            ? cb_sla_expr_bound(g->expr, "makespan")
            : INFINITY;
    g->repetitions = reps > 0 ? (uint32_t)reps : 1;
    g->period_ms = json_integer_value(json_object_get(spec, "period_ms"));
    if ((s = query_of(g, spec, err, errlen)) != CB_OK)
        return s;
    g->windowed = g->period_ms > 0 || cb_sla_expr_aggregates(g->expr);
    span_ms = json_integer_value(json_object_get(win, "ms"));
    count = json_integer_value(json_object_get(win, "count"));
    if (!span_ms && !count) { /* without a window: the period's, else the last 100 values */
        span_ms = g->period_ms;
        count = g->period_ms ? 0 : 100;
    }
    for (int i = 0; i < CB_SLA_NMETRICS; i++)
        cb_sla_window_init(&g->win[i], span_ms, (size_t)count);
    return CB_OK;
}

typedef struct look {
    const cb_sla_guarantee *g;
    const cb_sla_obs *o; /* NULL: periodic (the windows' newest values) */
} look;

static int lookup(void *ctx, const char *metric, cb_sla_agg agg, double *out)
{
    const look *l = ctx;
    int i = cb_sla_metric_index(metric);
    if (i < 0)
        return -1;
    if (agg == CB_SLA_AGG_NONE && l->o)
        return cb_sla_obs_lookup((void *)l->o, metric, agg, out);
    return cb_sla_window_agg(&l->g->win[i], agg, out);
}

static void fill(const cb_sla_guarantee *g, const cb_sla_obs *o, int64_t t_ns, double observed,
                 double threshold, cb_sla_breach *b)
{
    memset(b, 0, sizeof *b);
    b->bound = threshold;
    b->guarantee = g->name;
    b->constraint = g->constraint;
    b->observed = observed;
    b->ordinal = g->breaches;
    b->level = g->level;
    b->task = o ? o->task : 0;
    b->time_ns = t_ns;
}

/* Count one evaluation: CB_SLA_BREACHED or CB_SLA_RECOVERED with *b, else 0. */
static int judge(cb_sla_guarantee *g, const cb_sla_obs *o, int64_t t_ns, cb_sla_breach *b)
{
    look l = {g, o};
    double observed = NAN, threshold = NAN;
    cb_sla_verdict v = cb_sla_eval(g->expr, lookup, &l, &observed, &threshold);
    if (v == CB_SLA_UNKNOWN)
        return 0;
    g->evaluations++;
    if (v == CB_SLA_HOLDS) {
        g->streak = 0;
        if (!g->in_breach)
            return 0;
        g->in_breach = 0;
        fill(g, o, t_ns, observed, threshold, b);
        return CB_SLA_RECOVERED;
    }
    g->violations++;
    if (++g->streak < g->repetitions)
        return 0;
    g->streak = 0;
    g->breaches++;
    g->in_breach = 1;
    fill(g, o, t_ns, observed, threshold, b);
    return CB_SLA_BREACHED;
}

int cb_sla_guarantee_observe(cb_sla_guarantee *g, const cb_sla_obs *o, cb_sla_breach *b)
{
    if (o->level != g->level)
        return 0;
    if (g->windowed)
        for (int i = 0; i < CB_SLA_NMETRICS; i++)
            if (!isnan(o->v[i]) && cb_sla_window_add(&g->win[i], o->time_ns, o->v[i]) != CB_OK)
                return -1;
    if (g->period_ms > 0) {
        if (!g->next_tick_ns)
            g->next_tick_ns = o->time_ns + g->period_ms * 1000000;
        return 0;
    }
    return judge(g, o, o->time_ns, b);
}

int cb_sla_guarantee_tick(cb_sla_guarantee *g, int64_t now_ns, cb_sla_breach *b)
{
    if (g->period_ms <= 0 || !g->next_tick_ns || now_ns < g->next_tick_ns)
        return 0;
    /* one evaluation for the periods that passed; the next one period on */
    g->next_tick_ns = now_ns + g->period_ms * 1000000;
    for (int i = 0; i < CB_SLA_NMETRICS; i++)
        cb_sla_window_trim(&g->win[i], now_ns);
    return judge(g, NULL, now_ns, b);
}
