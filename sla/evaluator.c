/* sla/evaluator.c - agreements and watched jobs (see evaluator.h). Small
 * lists: agreements per deployment are few; a watched job keeps the
 * agreements that take it. */
#include "evaluator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_map.h"
#include "observe.h"

typedef struct entry {
    cb_sla_agreement a;
    struct entry *next;
} entry;

typedef struct watched {
    char tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    cb_sla_watch *w;
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
    if (json_array_size(json_object_get(sla, "guarantees"))) {
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

static void judge(cb_sla_evaluator *e, entry *x, const cb_sla_obs *o, const char *job)
{
    cb_sla_breach b;
    if (x->a.stopped)
        return;
    for (size_t i = 0; i < x->a.n; i++)
        if (cb_sla_guarantee_observe(&x->a.g[i], o, &b) == 1)
            e->fn(e->ctx, &x->a, &b, job);
}

cb_status cb_sla_evaluator_apply(cb_sla_evaluator *e, const cb_event *ev)
{
    uint64_t key;
    watched *w;
    cb_sla_obs o;
    int r;
    if (ev->type == CB_EV_JOB_SUBMITTED)
        return watch_job(e, ev);
    key = job_key(ev->tenant, ev->job);
    if (!(w = cb_map_get(&e->jobs, key)))
        return CB_OK;
    if ((r = cb_sla_watch_apply(w->w, ev, &o)) < 0)
        return CB_ENOMEM;
    if (r == 1) {
        if (w->own)
            judge(e, w->own, &o, w->job);
        for (size_t i = 0; i < w->nby; i++)
            judge(e, w->by[i], &o, w->job);
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
        if (x->a.stopped)
            continue;
        for (size_t i = 0; i < x->a.n; i++)
            if (cb_sla_guarantee_tick(&x->a.g[i], now_ns, &b) == 1)
                e->fn(e->ctx, &x->a, &b, "");
    }
}
