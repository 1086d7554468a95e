/* engine/visit.c - one visit of a job (see control_int.h): take its state
 * from the mirror (mirror.h), wait until the mirror has folded what the job
 * appended, plan (scheduler.h), apply the plan as events. */
#include "control_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_alloc.h"
#include "cb_sla_expr.h"
#include "cb_log.h"
#include "cb_time.h"
#include "decide.h"

/* The smallest [makespan] bound of the job's own sla.guarantees, in ms (0:
 * none). The intake parsed them already; one that does not parse counts
 * for nothing. */
static int64_t makespan_bound_ms(const json_t *sla)
{
    const json_t *g;
    size_t i;
    double best = INFINITY;
    json_array_foreach(json_object_get(sla, "guarantees"), i, g)
    {
        cb_sla_expr *e = NULL;
        char err[160];
        const char *text = json_string_value(json_object_get(g, "constraint"));
        if (text && cb_sla_parse(text, &e, err, sizeof err) == CB_OK) {
            double b = cb_sla_expr_bound(e, "makespan");
            if (b < best)
                best = b;
        }
        cb_sla_expr_free(e);
    }
    return isfinite(best) && best >= 1 ? (int64_t)best : 0;
}

/* Is f's job shaped per lane (docs/engine.md, "Jobs over several
 * accounts")? Several lanes, or a DAG whose steps name one pool (a map's
 * pool shapes it as a pool). */
static bool mixed(const cb_control *c, const cb_flow *f)
{
    return f->nlanes > 1 || (f->kind == CB_FLOW_DAG && cb_config_pool(c->reg, f->lanes[0]));
}

/* A flow half loaded is dropped (the next visit loads it again). */
static cb_status unload(cjob *j, cb_status s)
{
    cb_flow_cleanup(&j->flow);
    free(j->step_policy);
    j->step_policy = NULL;
    return s;
}

static cb_status job_load_flow(cb_control *c, cjob *j, const cb_job_state *js)
{
    char err[256];
    cb_status s;
    if (j->have_flow)
        return CB_OK;
    if ((s = cb_flow_build(js->spec, 0, &j->flow, err, sizeof err)) != CB_OK) {
        cb_log_job(CB_LOG_ERROR, "control", j->tenant, j->job, "cannot plan: %s", err);
        return s;
    }
    cb_policy_from_spec(js->spec, js->spec, &c->o.policy, &j->policy);
    if (j->flow.kind == CB_FLOW_DAG) {
        if (!(j->step_policy = cb_calloc(j->flow.nsteps, sizeof *j->step_policy)))
            return unload(j, CB_ENOMEM);
        for (size_t i = 0; i < j->flow.nsteps; i++)
            cb_policy_from_spec(js->spec, j->flow.steps[i].spec, &c->o.policy, &j->step_policy[i]);
    }
    if (j->flow.kind == CB_FLOW_MAP_REDUCE)
        cb_policy_from_spec(js->spec, json_object_get(js->spec, "reduce"), &c->o.policy,
                            &j->reduce_policy);
    j->backend = mixed(c, &j->flow) ? ctl_mixed_of(c, &j->flow)
                                    : ctl_backend_of(c, cb_flow_backend(&j->flow));
    if (!j->backend) { /* out of memory, or more accounts than intake let through */
        cb_log_job(CB_LOG_ERROR, "control", j->tenant, j->job,
                   "cannot shape the job: out of memory, or its functions run on more than %d "
                   "accounts (has the configuration's pools changed?)",
                   CB_POOL_MAX);
        return unload(j, CB_ENOMEM);
    }
    if (ctl_use_backend(c, j) != 0)
        return unload(j, CB_ENOMEM);
    j->priority = (int)json_integer_value(json_object_get(js->spec, "priority"));
    j->submitted_ns = js->submitted_ns;
    /* the deadline that ranks it: the SLA's, else the tightest makespan its
     * own guarantees allow, else the job's timeout (docs/engine.md) */
    int64_t deadline_ms =
        json_integer_value(json_object_get(json_object_get(js->spec, "sla"), "deadline_ms"));
    if (deadline_ms <= 0)
        deadline_ms = makespan_bound_ms(json_object_get(js->spec, "sla"));
    if (deadline_ms <= 0)
        deadline_ms = j->policy.job_timeout_ms;
    if (deadline_ms > 0)
        j->deadline_ns = js->submitted_ns + deadline_ms * 1000000;
    j->have_flow = 1;
    return CB_OK;
}

static void progress(cb_control *c, cjob *j, const cb_job_state *js, int64_t now, int force)
{
    char subject[320], *text;
    json_t *m;
    if (!force && now - j->progress_ns < c->o.progress_ms * 1000000)
        return;
    j->progress_ns = now;
    snprintf(subject, sizeof subject, "cb.progress.%s.%s", j->tenant, j->job);
    m = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "job_id", j->job, "tenant", j->tenant,
                  "status", cb_job_status_name(js->status), "total", (json_int_t)js->total,
                  "succeeded", (json_int_t)js->succeeded, "failed", (json_int_t)js->failed,
                  "running", (json_int_t)js->inflight, "retries", (json_int_t)js->retries);
    if (m && (text = cb_json_dumps(m, JSON_COMPACT))) {
        if (cb_broker_notify(c->b, subject, NULL, text, strlen(text), NULL, NULL) != CB_OK)
            c->stats.errors++;
        free(text);
    }
    json_decref(m);
}

static void apply_plan(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                       const cb_sched_plan *p, int64_t now, bool by_ref)
{
    cb_task_view v = cb_task_list_view(tb);
    cb_decisions d;
    j->expect = js->applied + js->ignored;
    j->await_until_ns = now + c->o.await_ms * 1000000;
    j->await_ref.attempt = 0;                 /* dispatch_to sets it */
    for (size_t i = 0; i < p->ndispatch; i++) /* new tasks move the frontier */
        if (p->dispatch[i].attempt == 1 && p->dispatch[i].task >= j->await_frontier)
            j->await_frontier = p->dispatch[i].task + 1;
    if (cb_decide(&j->flow, &v, p, now, &d) != CB_OK) {
        c->stats.errors++;
        ctl_job_wake(j, 500);
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        ctl_emit(c, j, d.v[i].type, d.v[i].what, d.v[i].data, NULL);
        d.v[i].data = NULL; /* taken */
    }
    cb_decisions_cleanup(&d);
    ctl_dispatch(c, j, js, tb, p);
    if (p->end != CB_END_NONE)
        ctl_end_job(c, j, js, tb, p, now, by_ref);
}

/* Whether applying the plan reads task outputs: the job's result, or the
 * reduce's input. */
static bool needs_outputs(const cjob *j, const cb_sched_plan *p)
{
    if (p->end == CB_END_SUCCEED)
        return true;
    for (size_t i = 0; j->flow.kind == CB_FLOW_MAP_REDUCE && i < p->ndispatch; i++)
        if (p->dispatch[i].task == cb_flow_reduce_task(&j->flow))
            return true;
    return false;
}

/* The outputs kept as text, parsed into the records (mirror.h). */
static bool outputs_ready(cjob *j, cb_mirror_job *mj)
{
    cb_status s = cb_mirror_outputs(mj);
    if (s == CB_EINVAL)
        cb_log_job(CB_LOG_ERROR, "control", j->tenant, j->job,
                   "an output in the log is not JSON: it reads as null");
    else if (s != CB_OK) {
        ctl_job_wake(j, 500);
        return false;
    }
    return true;
}

/* Whether the mirror lacks what the job's last plan appended. Counting the
 * job's events is not enough (an adapter's report can make up the count
 * while our dispatch is still on its way), so where the broker tells log
 * positions the mirror must have folded ours, a flat job's frontier must
 * show its last dispatch, and a DAG's records its last dispatched task
 * (RabbitMQ tells no positions: a DAG planned again on the count alone
 * dispatched a task twice). */
static bool behind(cb_control *c, const cjob *j, const cb_job_state *js, const cb_task_list *tb)
{
    if (js->applied + js->ignored < j->expect)
        return true;
    if (j->await_seq && cb_mirror_seq(c->mirror, j->log_part) < j->await_seq)
        return true;
    if (j->flow.kind == CB_FLOW_DAG) {
        const cb_task_state *t =
            j->await_ref.attempt ? cb_task_list_get(tb, j->await_ref.task) : NULL;
        return j->await_ref.attempt && !js->cancel_requested &&
               (!t || t->status == CB_TASK_PENDING || t->attempt < j->await_ref.attempt);
    }
    return !js->cancel_requested && js->frontier < j->await_frontier;
}

/* The broker confirmed appends of j that the log has not shown for
 * await_ms: said once; shown by no visit in a row for UNSEEN_RESET of them,
 * the connection is dropped and made again (at most once a RESET_EVERY_S),
 * since a RabbitMQ connection was seen confirming for minutes what it
 * never wrote (docs/broker.md, "Node failure"). The plan is made again
 * either way: what was lost is appended again (same ids). */
#define UNSEEN_RESET  3
#define RESET_EVERY_S 60
static void confirmed_unseen(cb_control *c, cjob *j, const cb_job_state *js)
{
    int64_t mono = cb_time_mono_ns();
    if (j->unseen == 1)
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job,
                   "the log does not show what the broker confirmed for this job %lld ms "
                   "ago (%llu of %llu events folded); planning again",
                   (long long)c->o.await_ms, (unsigned long long)(js->applied + js->ignored),
                   (unsigned long long)j->expect);
    if (j->unseen != UNSEEN_RESET ||
        (c->reset_ns && mono - c->reset_ns < (int64_t)RESET_EVERY_S * 1000000000))
        return;
    if (cb_broker_reset(c->b, "confirmed appends are not in the log") == CB_OK) {
        c->reset_ns = mono;
        c->stats.resets++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job,
                   "the log has not shown this job's confirmed appends for %d plans: "
                   "connecting to the broker again",
                   UNSEEN_RESET);
    }
}

void ctl_visit(cb_control *c, cjob *j)
{
    cb_mirror_job *mj;
    const cb_job_state *js;
    const cb_task_list *tb;
    cb_sched_in in;
    cb_sched_plan p;
    int64_t now = cb_time_now_ns(), retry_ms = 0;
    uint64_t free_cap = 0;
    uint32_t lanes[CB_FLOW_LANES_MAX] = {0};
    bool by_ref, late;
    cb_status s;

    if (!(mj = cb_mirror_get(c->mirror, j->key))) {
        if (c->live && j->pending == 0)
            ctl_job_forget(c, j); /* not submitted yet, or ended: its events bring it back */
        return;
    }
    j->log_part = mj->js.log_partition;
    if (j->log_part >= c->o.partitions || !c->parts[j->log_part].owned ||
        !c->parts[j->log_part].live)
        return; /* its log is catching up: every job is woken then */
    c->stats.visits++;
    js = &mj->js;
    tb = &mj->tasks;
    if (cb_job_terminal(js->status) || js->status == CB_JOB_ABSENT) {
        if (j->pending == 0) {
            cb_mirror_drop(c->mirror, j->key);
            ctl_job_forget(c, j);
        }
        return;
    }
    if (j->pending > 0 || j->ending)
        return; /* the confirmations re-visit */
    if (job_load_flow(c, j, js) != CB_OK)
        return;
    late = behind(c, j, js, tb);
    if (late && now < j->await_until_ns) {
        ctl_job_wake(j, (j->await_until_ns - now) / 1000000 + 1);
        return; /* the mirror has not folded what we appended yet */
    }
    j->unseen = late ? j->unseen + 1 : 0;
    if (late)
        confirmed_unseen(c, j, js);
    if (j->flow.objects && !j->flow.partitioned && !js->cancel_requested &&
        !ctl_partition(c, j, js))
        return; /* its plan is being listed: each page's confirmation comes back here */
    ctl_set_inflight(j, js->inflight);
    ctl_pool_sync(j, js, now);
    if (!j->recovered) { /* a dispatched reduce's command carries the outputs */
        if (!outputs_ready(j, mj))
            return;
        ctl_recover(c, j, js, tb);
    }
    memset(&in, 0, sizeof in);
    in.flow = &j->flow;
    in.policy = &j->policy;
    in.step_policy = j->step_policy;
    in.reduce_policy = j->flow.kind == CB_FLOW_MAP_REDUCE ? &j->reduce_policy : NULL;
    in.job = js;
    /* a DAG plans over all its records, other jobs over their open ones */
    in.view = j->flow.kind == CB_FLOW_DAG ? cb_task_list_view(tb) : cb_mirror_open_view(mj);
    in.capacity = j->held ? 0 : ctl_capacity(c, j, now, &retry_ms, &free_cap, lanes);
    if (j->backend && j->backend->mixed && !j->held)
        in.lane_capacity = lanes;
    in.now_ns = now;
    in.job_key = j->key;
    if ((s = cb_sched_plan_job(&in, &p)) != CB_OK) {
        cb_log_job(CB_LOG_ERROR, "control", j->tenant, j->job, "scheduler: %s", cb_strerror(s));
        ctl_job_wake(j, 1000);
        return;
    }
    c->stats.plans++;
    ctl_after_plan(c, j, &p, free_cap, now);
    progress(c, j, js, now, p.end != CB_END_NONE);
    /* a map's result larger than can be inlined is referenced: its outputs
     * are never parsed here (the store has them for `cb result`) */
    by_ref = j->flow.kind == CB_FLOW_MAP && p.end == CB_END_SUCCEED &&
             mj->kept_bytes > c->o.inline_result_max;
    if (!by_ref && needs_outputs(j, &p) && !outputs_ready(j, mj)) {
        cb_sched_plan_cleanup(&p);
        return;
    }
    apply_plan(c, j, js, tb, &p, now, by_ref);
    if (p.wake_ns > now)
        ctl_job_wake(j, (p.wake_ns - now) / 1000000 + 1);
    if (retry_ms > 0)
        ctl_job_wake(j, retry_ms);
    cb_sched_plan_cleanup(&p);
}
