/* sla/evaluator.c - agreements and watched jobs (see evaluator.h). Small
 * lists: agreements per deployment are few; a watched job keeps the
 * agreements that take it. */
#include "evaluator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_map.h"
#include "cb_time.h"
#include "observe.h"

typedef struct entry {
    cb_sla_agreement a;
    struct entry *next;
} entry;

typedef struct warned {
    const void *agreement; /* entry * (compared, never followed) */
    size_t guarantee;
} warned;

typedef struct watched {
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    cb_sla_watch *w;
    int64_t submitted_ns;
    uint32_t total, done; /* tasks (cb.job.started), task outcomes observed */
    warned *warned;       /* at-risk warnings given */
    size_t nwarned;
    entry **by; /* the agreements that take it (borrowed; re-checked by pointer) */
    size_t nby;
    entry *own; /* its own sla.guarantees, or NULL */
} watched;

struct cb_sla_evaluator {
    cb_sla_breach_fn *fn;
    void *ctx;
    entry *list;
    cb_map jobs; /* hash of tenant/job -> watched * */
};

static uint64_t job_key(const char *tenant, const char *job)
{
    char k[2 * CB_NAME_MAX + 2];
    int n = snprintf(k, sizeof k, "%s/%s", tenant, job);
    return cb_hash64(k, (size_t)n);
}

cb_sla_evaluator *cb_sla_evaluator_new(cb_sla_breach_fn *fn, void *ctx)
{
    cb_sla_evaluator *e = cb_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->fn = fn;
    e->ctx = ctx;
    cb_map_init(&e->jobs);
    return e;
}

static void entry_free(entry *x)
{
    if (x) {
        cb_sla_agreement_cleanup(&x->a);
        free(x);
    }
}

static void watched_free(watched *w)
{
    cb_sla_watch_free(w->w);
    free(w->warned);
    free(w->by);
    entry_free(w->own);
    free(w);
}

static void free_job(uint64_t key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    watched_free(val);
}

void cb_sla_evaluator_free(cb_sla_evaluator *e)
{
    if (!e)
        return;
    cb_map_each(&e->jobs, free_job, NULL);
    cb_map_cleanup(&e->jobs);
    while (e->list) {
        entry *x = e->list;
        e->list = x->next;
        entry_free(x);
    }
    free(e);
}

static entry **find(cb_sla_evaluator *e, const char *tenant, const char *id)
{
    entry **p = &e->list;
    while (*p && (strcmp((*p)->a.tenant, tenant) || strcmp((*p)->a.id, id)))
        p = &(*p)->next;
    return p;
}

/* Forget x in every watched job (it is being removed). */
static void unwatch(uint64_t key, void *val, void *arg)
{
    watched *w = val;
    (void)key;
    for (size_t i = 0; i < w->nby; i++)
        if (w->by[i] == arg)
            w->by[i] = w->by[--w->nby];
}

typedef struct swap {
    entry *old, *new_;
} swap;

/* A new version of an agreement: the jobs the old one watched are the new one's. */
static void rewatch(uint64_t key, void *val, void *arg)
{
    watched *w = val;
    const swap *sw = arg;
    (void)key;
    for (size_t i = 0; i < w->nby; i++)
        if (w->by[i] == sw->old)
            w->by[i] = sw->new_;
}

cb_status cb_sla_evaluator_put(cb_sla_evaluator *e, cb_sla_agreement *a)
{
    entry **p = find(e, a->tenant, a->id), *x = cb_calloc(1, sizeof *x);
    if (!x)
        return CB_ENOMEM;
    x->a = *a;
    memset(a, 0, sizeof *a);
    if (*p) {
        swap sw = {*p, x};
        x->next = sw.old->next;
        *p = x;
        cb_map_each(&e->jobs, rewatch, &sw);
        entry_free(sw.old);
    } else {
        *p = x;
    }
    return CB_OK;
}

int cb_sla_evaluator_remove(cb_sla_evaluator *e, const char *tenant, const char *id)
{
    entry **p = find(e, tenant, id), *x = *p;
    if (!x)
        return 0;
    *p = x->next;
    cb_map_each(&e->jobs, unwatch, x);
    entry_free(x);
    return 1;
}

int cb_sla_evaluator_set_stopped(cb_sla_evaluator *e, const char *tenant, const char *id,
                                 int stopped)
{
    entry *x = *find(e, tenant, id);
    if (!x)
        return 0;
    x->a.stopped = stopped;
    return 1;
}

const cb_sla_agreement *cb_sla_evaluator_get(const cb_sla_evaluator *e, const char *tenant,
                                             const char *id)
{
    entry *x = *find((cb_sla_evaluator *)e, tenant, id);
    return x ? &x->a : NULL;
}

size_t cb_sla_evaluator_count(const cb_sla_evaluator *e)
{
    size_t n = 0;
    for (const entry *x = e->list; x; x = x->next)
        n++;
    return n;
}

size_t cb_sla_evaluator_jobs(const cb_sla_evaluator *e)
{
    return e->jobs.len;
}

/* A job's own agreement from the template its sla names (sla.template):
 * CB_OK with own set, or a refusal reported (the job is not evaluated). */
static cb_status from_template(cb_sla_evaluator *e, const cb_event *ev, const json_t *tpl,
                               entry **own)
{
    const char *tid = json_string_value(json_object_get(tpl, "id"));
    entry *t = tid ? *find(e, ev->tenant, tid) : NULL, *x;
    cb_sla_agreement a;
    cb_sla_breach b;
    char err[400];
    json_t *filled = NULL, *sla;
    cb_status s;
    *own = NULL;
    if (!t || !t->a.is_template) {
        snprintf(err, sizeof err, "/sla/template/id: tenant \"%s\" has no template \"%s\"",
                 ev->tenant, tid ? tid : "");
    } else if ((filled = cb_sla_template_fill(t->a.spec, "t", json_object_get(tpl, "values"), err,
                                              sizeof err))) {
        sla = json_pack("{s:O}", "guarantees",
                        json_object_get(json_object_get(filled, "details"), "guarantees"));
        json_decref(filled);
        if (!sla)
            return CB_ENOMEM;
        if (!(x = cb_calloc(1, sizeof *x))) {
            json_decref(sla);
            return CB_ENOMEM;
        }
        s = cb_sla_agreement_of_job(&x->a, ev->tenant, ev->job, sla, err, sizeof err);
        json_decref(sla);
        if (s == CB_OK) {
            *own = x;
            return CB_OK;
        }
        entry_free(x);
        if (s == CB_ENOMEM)
            return s;
    }
    /* refused: said once, at the job's submission, as the job's agreement's */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (snprintf(a.id, sizeof a.id, "job-%s", ev->job) >= (int)sizeof a.id)
        snprintf(a.id, sizeof a.id, "job-%016llx",
                 (unsigned long long)cb_hash64(ev->job, strlen(ev->job)));
    snprintf(a.tenant, sizeof a.tenant, "%s", ev->tenant);
    b.guarantee = "";
    b.constraint = err;
    b.observed = b.bound = NAN;
    b.time_ns = ev->time_ns;
    e->fn(e->ctx, &a, &b, CB_SLA_REFUSED, ev->job);
    return CB_OK;
}

static cb_status watch_job(cb_sla_evaluator *e, const cb_event *ev)
{
    const json_t *job = json_object_get(ev->data, "job"), *sla = json_object_get(job, "sla");
    uint64_t key = job_key(ev->tenant, ev->job);
    watched *w;
    if (cb_map_get(&e->jobs, key))
        return CB_OK; /* a repeated submission */
    if (!(w = cb_calloc(1, sizeof *w)))
        return CB_ENOMEM;
    snprintf(w->tenant, sizeof w->tenant, "%s", ev->tenant);
    snprintf(w->job, sizeof w->job, "%s", ev->job);
    w->submitted_ns = ev->time_ns;
    if (json_object_get(sla, "template")) {
        cb_status s = from_template(e, ev, json_object_get(sla, "template"), &w->own);
        if (s != CB_OK) {
            watched_free(w);
            return s;
        }
    } else if (json_array_size(json_object_get(sla, "guarantees"))) {
        char err[300];
        entry *own = cb_calloc(1, sizeof *own);
        if (!own) {
            watched_free(w);
            return CB_ENOMEM;
        }
        if (cb_sla_agreement_of_job(&own->a, ev->tenant, ev->job, sla, err, sizeof err) != CB_OK)
            entry_free(own); /* refused at intake already: nothing to evaluate */
        else
            w->own = own;
    }
    for (entry *x = e->list; x; x = x->next)
        if (cb_sla_agreement_watches(&x->a, ev->tenant, ev->job, job, ev->time_ns)) {
            entry **by = realloc(w->by, (w->nby + 1) * sizeof *by);
            if (!by) {
                watched_free(w);
                return CB_ENOMEM;
            }
            w->by = by;
            w->by[w->nby++] = x;
        }
    if (!w->own && !w->nby) { /* nothing watches it */
        watched_free(w);
        return CB_OK;
    }
    if (!(w->w = cb_sla_watch_new()) || cb_map_put(&e->jobs, key, w) != CB_OK) {
        watched_free(w);
        return CB_ENOMEM;
    }
    {
        cb_sla_obs o;
        (void)cb_sla_watch_apply(w->w, ev, &o); /* its submission time */
    }
    return CB_OK;
}

#define RECENT_MAX 20

/* Keep what happened in the agreement's recent list and tell the daemon. */
static void found(cb_sla_evaluator *e, cb_sla_agreement *a, const cb_sla_breach *b, int kind,
                  const char *job)
{
    json_t *r;
    char t[40];
    if (!a->recent)
        a->recent = json_array();
    r = json_pack("{s:s, s:s, s:I, s:s, s:s}", "kind",
                  kind == CB_SLA_RECOVERED ? "recovered"
                  : kind == CB_SLA_AT_RISK ? "at_risk"
                                           : "violated",
                  "guarantee", b->guarantee, "ordinal", (json_int_t)b->ordinal, "job",
                  job ? job : "", "time", cb_time_format(b->time_ns, t, sizeof t));
    if (r && !isnan(b->observed))
        json_object_set_new(r, "observed", json_real(b->observed));
    if (r && b->level == CB_SLA_LEVEL_TASK)
        json_object_set_new(r, "task", json_integer(b->task));
    if (a->recent && r && json_array_append_new(a->recent, r) == 0) {
        if (json_array_size(a->recent) > RECENT_MAX)
            json_array_remove(a->recent, 0);
    } else {
        json_decref(r);
    }
    e->fn(e->ctx, a, b, kind, job);
}

static void judge(cb_sla_evaluator *e, entry *x, const cb_sla_obs *o, const char *job)
{
    cb_sla_breach b;
    if (x->a.stopped || x->a.terminated)
        return;
    for (size_t i = 0; i < x->a.n; i++) {
        int r = cb_sla_guarantee_observe(&x->a.g[i], o, &b);
        if (r == CB_SLA_BREACHED || r == CB_SLA_RECOVERED)
            found(e, &x->a, &b, r, job);
    }
}

/* ---- agreement events ------------------------------------------------ */

static uint64_t version_of(const cb_event *ev)
{
    json_int_t v = json_integer_value(json_object_get(ev->data, "version"));
    return v > 0 ? (uint64_t)v : 0;
}

static cb_status agreement_event(cb_sla_evaluator *e, const cb_event *ev)
{
    const char *id = json_string_value(json_object_get(ev->data, "agreement"));
    uint64_t version = version_of(ev);
    entry *x;
    if (!id)
        return CB_OK;
    x = *find(e, ev->tenant, id);
    if (x && version && version <= x->a.version)
        return CB_OK; /* a repeat */
    switch (ev->type) {
    case CB_EV_SLA_CREATED:
    case CB_EV_SLA_UPDATED: {
        cb_sla_agreement a;
        char err[400];
        cb_status s = cb_sla_agreement_init(&a, json_object_get(ev->data, "spec"), ev->tenant, err,
                                            sizeof err);
        if (s != CB_OK) {
            cb_sla_agreement_cleanup(&a);
            return s == CB_ENOMEM ? s : CB_OK; /* checked before it was appended */
        }
        a.version = version;
        return cb_sla_evaluator_put(e, &a);
    }
    case CB_EV_SLA_DELETED:
        cb_sla_evaluator_remove(e, ev->tenant, id);
        return CB_OK;
    default:
        break;
    }
    if (!x)
        return CB_OK;
    x->a.version = version;
    if (ev->type == CB_EV_SLA_STARTED)
        x->a.stopped = 0;
    else if (ev->type == CB_EV_SLA_STOPPED)
        x->a.stopped = 1;
    else if (ev->type == CB_EV_SLA_TERMINATED)
        x->a.terminated = 1;
    return CB_OK;
}

/* A breach or recovery in the log: a periodic guarantee takes its count and
 * state from it (its ticks depend on the clock, so a replay does not
 * re-evaluate them; docs/sla.md). */
static void reported(cb_sla_evaluator *e, const cb_event *ev)
{
    const char *id = json_string_value(json_object_get(ev->data, "agreement"));
    const char *gn = json_string_value(json_object_get(ev->data, "guarantee"));
    json_int_t ordinal = json_integer_value(json_object_get(ev->data, "ordinal"));
    entry *x = id ? *find(e, ev->tenant, id) : NULL;
    if (!x || !gn || ordinal <= 0)
        return;
    for (size_t i = 0; i < x->a.n; i++) {
        cb_sla_guarantee *g = &x->a.g[i];
        if ((g->period_ms <= 0 && !g->query) || strcmp(g->name, gn))
            continue;
        if (ev->type == CB_EV_SLA_VIOLATED && (uint64_t)ordinal > g->breaches) {
            g->breaches = (uint64_t)ordinal;
            g->in_breach = 1;
        } else if (ev->type == CB_EV_SLA_RECOVERED && (uint64_t)ordinal == g->breaches) {
            g->in_breach = 0;
        }
    }
}

/* The job's makespan predicted from its progress (elapsed time over the
 * share of its tasks done) against each makespan bound of the agreements
 * that watch it: over the bound while the bound has not passed yet is a
 * warning, once per guarantee and job. Needs two outcomes at least. */
static void risk(cb_sla_evaluator *e, watched *w, entry *x, int64_t now_ns)
{
    double elapsed_ms = (double)(now_ns - w->submitted_ns) / 1e6, predicted;
    if (!x || x->a.stopped || x->a.terminated || w->total == 0 || w->done < 2 ||
        w->done >= w->total)
        return;
    predicted = elapsed_ms * w->total / w->done;
    for (size_t i = 0; i < x->a.n; i++) {
        const cb_sla_guarantee *g = &x->a.g[i];
        cb_sla_breach b;
        warned *more;
        size_t k;
        if (!isfinite(g->makespan_bound) || predicted <= g->makespan_bound ||
            elapsed_ms >= g->makespan_bound)
            continue;
        for (k = 0; k < w->nwarned; k++)
            if (w->warned[k].agreement == x && w->warned[k].guarantee == i)
                break;
        if (k < w->nwarned || !(more = realloc(w->warned, (w->nwarned + 1) * sizeof *more)))
            continue;
        w->warned = more;
        w->warned[w->nwarned++] = (warned){x, i};
        memset(&b, 0, sizeof b);
        b.guarantee = g->name;
        b.constraint = g->constraint;
        b.observed = predicted;
        b.bound = g->makespan_bound;
        b.level = CB_SLA_LEVEL_JOB;
        b.time_ns = now_ns;
        found(e, &x->a, &b, CB_SLA_AT_RISK, w->job);
    }
}

bool cb_sla_evaluator_needs(const cb_sla_evaluator *e, cb_event_type type, const char *tenant,
                            const char *job)
{
    switch (type) {
    case CB_EV_UNKNOWN:
    case CB_EV_JOB_SUBMITTED:
    case CB_EV_SLA_VIOLATED:
    case CB_EV_SLA_CREATED:
    case CB_EV_SLA_UPDATED:
    case CB_EV_SLA_DELETED:
    case CB_EV_SLA_STARTED:
    case CB_EV_SLA_STOPPED:
    case CB_EV_SLA_TERMINATED:
    case CB_EV_SLA_RECOVERED:
    case CB_EV_SLA_AT_RISK:
        return true;
    default:
        return cb_map_get(&e->jobs, job_key(tenant, job)) != NULL;
    }
}

cb_status cb_sla_evaluator_apply(cb_sla_evaluator *e, const cb_event *ev)
{
    uint64_t key;
    watched *w;
    cb_sla_obs o;
    int r;
    if (ev->type == CB_EV_TASKS_SUCCEEDED) { /* each success observed as if it came alone */
        cb_status s = CB_OK;
        for (size_t i = 0, n = cb_event_outcomes(ev); i < n && s == CB_OK; i++) {
            cb_event one;
            s = cb_sla_evaluator_apply(e, cb_event_outcome(ev, i, &one));
        }
        return s;
    }
    if (ev->type == CB_EV_JOB_SUBMITTED)
        return watch_job(e, ev);
    if (ev->type >= CB_EV_SLA_CREATED && ev->type <= CB_EV_SLA_TERMINATED)
        return agreement_event(e, ev);
    if (ev->type == CB_EV_SLA_VIOLATED || ev->type == CB_EV_SLA_RECOVERED) {
        reported(e, ev);
        return CB_OK;
    }
    key = job_key(ev->tenant, ev->job);
    if (!(w = cb_map_get(&e->jobs, key)))
        return CB_OK;
    if ((r = cb_sla_watch_apply(w->w, ev, &o)) < 0)
        return CB_ENOMEM;
    if (ev->type == CB_EV_JOB_STARTED)
        w->total = (uint32_t)json_integer_value(json_object_get(ev->data, "tasks"));
    if (r == 1) {
        if (w->own)
            judge(e, w->own, &o, w->job);
        for (size_t i = 0; i < w->nby; i++)
            judge(e, w->by[i], &o, w->job);
        if (o.level == CB_SLA_LEVEL_TASK) {
            w->done++;
            risk(e, w, w->own, ev->time_ns);
            for (size_t i = 0; i < w->nby; i++)
                risk(e, w, w->by[i], ev->time_ns);
        }
    }
    if (ev->type == CB_EV_JOB_SUCCEEDED || ev->type == CB_EV_JOB_FAILED ||
        ev->type == CB_EV_JOB_CANCELLED || ev->type == CB_EV_JOB_REJECTED) {
        watched_free(cb_map_take(&e->jobs, key));
    }
    return CB_OK;
}

void cb_sla_evaluator_tick(cb_sla_evaluator *e, int64_t now_ns)
{
    cb_sla_breach b;
    for (entry *x = e->list; x; x = x->next) {
        if (x->a.stopped || x->a.terminated || x->a.is_template)
            continue;
        for (size_t i = 0; i < x->a.n; i++) {
            int r = cb_sla_guarantee_tick(&x->a.g[i], now_ns, &b);
            if (r == CB_SLA_BREACHED || r == CB_SLA_RECOVERED)
                found(e, &x->a, &b, r, NULL);
        }
    }
}

void cb_sla_evaluator_query(cb_sla_evaluator *e, const char *tenant, const char *agreement,
                            const char *guarantee, double value, int64_t now_ns)
{
    entry *x = *find(e, tenant, agreement);
    cb_sla_obs o;
    cb_sla_breach b;
    if (!x || x->a.stopped || x->a.terminated || x->a.is_template)
        return;
    memset(&o, 0, sizeof o);
    o.level = CB_SLA_LEVEL_QUERY;
    o.time_ns = now_ns;
    for (int i = 0; i < CB_SLA_NMETRICS; i++)
        o.v[i] = NAN;
    o.v[cb_sla_metric_index("query")] = value;
    for (size_t i = 0; i < x->a.n; i++) {
        int r;
        if (!x->a.g[i].query || strcmp(x->a.g[i].name, guarantee))
            continue;
        r = cb_sla_guarantee_observe(&x->a.g[i], &o, &b);
        if (r == CB_SLA_BREACHED || r == CB_SLA_RECOVERED)
            found(e, &x->a, &b, r, NULL);
    }
}

void cb_sla_evaluator_each(const cb_sla_evaluator *e, const char *tenant,
                           void (*fn)(const cb_sla_agreement *a, void *ctx), void *ctx)
{
    for (const entry *x = e->list; x; x = x->next)
        if (!tenant || !strcmp(x->a.tenant, tenant))
            fn(&x->a, ctx);
}
