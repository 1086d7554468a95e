/* engine/decide.c - a plan's events (see decide.h). */
#include "decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_time.h"

/* Append one decision; data is stolen (also on failure). */
static cb_status add(cb_decisions *d, size_t cap, cb_event_type type, json_t *data, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static cb_status add(cb_decisions *d, size_t cap, cb_event_type type, json_t *data, const char *fmt,
                     ...)
{
    va_list ap;
    cb_decision *x;
    if (!data || d->n >= cap) {
        json_decref(data);
        return CB_ENOMEM;
    }
    x = &d->v[d->n++];
    x->type = type;
    x->data = data;
    va_start(ap, fmt);
    vsnprintf(x->what, sizeof x->what, fmt, ap);
    va_end(ap);
    return CB_OK;
}

static cb_status decide(const cb_flow *f, const cb_task_view *v, const cb_sched_plan *p,
                        int64_t now, cb_decisions *d, size_t cap)
{
    char at[40];
    cb_status s = CB_OK;
    if (p->start)
        s = add(d, cap, CB_EV_JOB_STARTED, json_pack("{s:I}", "tasks", (json_int_t)f->tasks),
                "started");
    for (size_t i = 0; s == CB_OK && i < p->ntimeout; i++)
        s = add(d, cap, CB_EV_TASK_TIMED_OUT,
                json_pack("{s:I, s:I}", "task", (json_int_t)p->timeout[i].task, "attempt",
                          (json_int_t)p->timeout[i].attempt),
                "%u/%u/timed_out", p->timeout[i].task, p->timeout[i].attempt);
    for (size_t i = 0; s == CB_OK && i < p->nretry; i++) {
        const cb_retry *r = &p->retry[i];
        int64_t delay = r->at_ns > now ? (r->at_ns - now) / 1000000 : 0;
        s = add(d, cap, CB_EV_TASK_RETRY_SCHEDULED,
                json_pack("{s:I, s:I, s:s, s:I}", "task", (json_int_t)r->task, "attempt",
                          (json_int_t)r->attempt, "at", cb_time_format(r->at_ns, at, sizeof at),
                          "delay_ms", (json_int_t)delay),
                "%u/%u/retry", r->task, r->attempt);
    }
    for (size_t i = 0; s == CB_OK && i < p->nskip; i++) {
        const cb_skip *k = &p->skip[i];
        s = add(d, cap, CB_EV_TASK_SKIPPED,
                json_pack("{s:I, s:s, s:s}", "task", (json_int_t)k->task, "step",
                          f->steps[k->task].name, "reason", k->reason),
                "%u/skipped", k->task);
    }
    for (size_t i = 0; s == CB_OK && i < p->nexpand; i++) {
        const cb_expand *e = &p->expand[i];
        s = add(d, cap, CB_EV_TASK_EXPANDED,
                json_pack("{s:I, s:s, s:I, s:I}", "task", (json_int_t)e->task, "step",
                          f->steps[e->task].name, "first", (json_int_t)e->first, "count",
                          (json_int_t)e->count),
                "%u/expanded", e->task);
    }
    for (size_t i = 0; s == CB_OK && i < p->ncollect; i++) {
        uint32_t step = p->collect[i];
        json_t *outs = cb_sched_children_outputs(v, cb_task_view_get(v, step));
        if (!outs)
            continue;
        /* the same id an adapter's report of attempt 1 would have */
        s = add(d, cap, CB_EV_TASK_SUCCEEDED,
                json_pack("{s:I, s:I, s:s, s:[o]}", "task", (json_int_t)step, "attempt",
                          (json_int_t)1, "step", f->steps[step].name, "output", outs),
                "%u/1/succeeded", step);
    }
    return s;
}

cb_status cb_decide(const cb_flow *f, const cb_task_view *v, const cb_sched_plan *p, int64_t now_ns,
                    cb_decisions *out)
{
    size_t cap = (p->start ? 1 : 0) + p->ntimeout + p->nretry + p->nskip + p->nexpand + p->ncollect;
    cb_status s;
    memset(out, 0, sizeof *out);
    if (cap == 0)
        return CB_OK;
    if (!(out->v = cb_calloc(cap, sizeof *out->v)))
        return CB_ENOMEM;
    if ((s = decide(f, v, p, now_ns, out, cap)) != CB_OK)
        cb_decisions_cleanup(out);
    return s;
}

void cb_decisions_cleanup(cb_decisions *d)
{
    for (size_t i = 0; i < d->n; i++)
        json_decref(d->v[i].data);
    cb_free(d->v);
    memset(d, 0, sizeof *d);
}
