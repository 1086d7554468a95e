/* engine/control.c - the controllers (see control.h). */
#include "control.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cb_alloc.h"
#include "cb_dedup.h"
#include "cb_log.h"
#include "cb_msg_done.h"
#include "cb_msg_invoke.h"
#include "cb_map.h"
#include "cb_time.h"
#include "emit.h"
#include "flow.h"
#include "fold.h"
#include "proj.h"
#include "result.h"
#include "scheduler.h"
#include "tasklist.h"

#define SOURCE         "cbcore/engine"
#define KEY_MAX        (2 * CB_NAME_MAX + 2)
#define DISPATCH_CHUNK 10000 /* tasks per cb.tasks.dispatched (schema: <= 100000) */

typedef struct backend_state {
    char name[40];
    cb_backend_limits lim;
    double tokens;
    int64_t refilled_ns;
    struct backend_state *next;
} backend_state;

typedef struct cjob {
    char key[KEY_MAX], tenant[CB_NAME_MAX + 1], job[CB_NAME_MAX + 1];
    uint64_t hash;
    cb_flow flow;
    cb_policy policy;
    cb_policy *step_policy;  /* owned: DAG steps' retry and timeout */
    cb_policy reduce_policy; /* map_reduce: the reduce function's timeout */
    int have_flow, recovered, ending, held;
    const char *end_status; /* static: what the done message says */
    backend_state *backend;
    int priority;
    int64_t deadline_ns, submitted_ns;
    uint32_t inflight; /* in flight as the controller last saw them */
    uint64_t want;     /* dispatches its last plan could not make for lack of capacity */
    int64_t hungry_since_ns;
    int pending;             /* appends and puts not yet confirmed */
    uint64_t expect;         /* events the projection must have counted before the next plan */
    uint64_t await_seq;      /* ...and the log position it must have folded (NATS) */
    uint32_t await_frontier; /* ...and the frontier its last dispatch makes (flat jobs) */
    int64_t await_until_ns;
    int64_t progress_ns;
    struct event *wake;
    int64_t wake_at_ns; /* monotonic */
    struct cb_control *c;
} cjob;

struct cb_control {
    struct event_base *base;
    cb_broker *b;
    cb_store *st;
    const cb_config *reg;
    cb_control_opts o;
    cb_map jobs; /* hash of key -> cjob */
    backend_state *backends;
    cb_sub *changed;
    struct event *tick, *reconcile;
    cb_control_stats stats;
    int stopped; /* freed by the caller: the last outstanding op frees it */
    size_t nops;
};

/* One confirmation the controller waits for. */
typedef struct op {
    cb_control *c;
    char key[KEY_MAX];
    int kind;         /* OP_EVENT, OP_DISPATCH, OP_PUT, OP_DONE */
    json_t *invokes;  /* OP_DISPATCH: commands to put once confirmed */
    json_t *terminal; /* OP_DONE: {type, data} to append once confirmed */
} op;

enum { OP_EVENT = 0, OP_DISPATCH, OP_PUT, OP_DONE };

void cb_control_opts_init(cb_control_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reconcile_ms = 1000;
    o->await_ms = 2000;
    o->progress_ms = 200;
    o->inline_result_max = 256 * 1024;
    o->aging_ms = 10000;
    cb_policy_defaults_init(&o->policy);
}

const cb_control_stats *cb_control_stats_get(const cb_control *c)
{
    return &c->stats;
}

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* ---- the job table --------------------------------------------------------- */

static cjob *job_get(cb_control *c, const char *key)
{
    uint64_t h = cb_hash64(key, strlen(key));
    cjob *j = cb_map_get(&c->jobs, h);
    return j && !strcmp(j->key, key) ? j : NULL;
}

static void visit_cb(evutil_socket_t fd, short what, void *arg);

static cjob *job_add(cb_control *c, const char *key)
{
    const char *slash = strchr(key, '/');
    cjob *j;
    if (!slash || strlen(key) >= KEY_MAX || (size_t)(slash - key) > CB_NAME_MAX)
        return NULL;
    if (!(j = cb_calloc(1, sizeof *j)))
        return NULL;
    snprintf(j->key, sizeof j->key, "%s", key);
    snprintf(j->tenant, sizeof j->tenant, "%.*s", (int)(slash - key), key);
    snprintf(j->job, sizeof j->job, "%s", slash + 1);
    j->hash = cb_hash64(key, strlen(key));
    j->c = c;
    if (!(j->wake = evtimer_new(c->base, visit_cb, j)) ||
        cb_map_put(&c->jobs, j->hash, j) != CB_OK) {
        if (j->wake)
            event_free(j->wake);
        free(j);
        return NULL;
    }
    c->stats.jobs++;
    return j;
}

static void job_free(cjob *j)
{
    if (j->have_flow)
        cb_flow_cleanup(&j->flow);
    free(j->step_policy);
    event_free(j->wake);
    free(j);
}

static void job_forget(cb_control *c, cjob *j)
{
    cb_map_take(&c->jobs, j->hash);
    c->stats.jobs--;
    job_free(j);
}

/* Visit `j` after delay_ms (0: on the next loop turn). An earlier request wins. */
static void job_wake(cjob *j, int64_t delay_ms)
{
    struct timeval tv = tv_ms(delay_ms);
    int64_t at = cb_time_mono_ns() + delay_ms * 1000000;
    if (evtimer_pending(j->wake, NULL) && j->wake_at_ns <= at)
        return;
    j->wake_at_ns = at;
    evtimer_add(j->wake, &tv);
}

void cb_control_touch(cb_control *c, const char *key)
{
    cjob *j = job_get(c, key);
    if (!j && !(j = job_add(c, key)))
        return;
    job_wake(j, 0);
}

void cb_control_hold(cb_control *c, const char *key, int held)
{
    cjob *j = job_get(c, key);
    if (!j && !(j = job_add(c, key)))
        return;
    j->held = held;
    job_wake(j, 0);
}

const char *cb_control_ending(cb_control *c, const char *key)
{
    cjob *j = job_get(c, key);
    return j && j->ending ? j->end_status : NULL;
}

/* ---- traffic shaping --------------------------------------------------------- */

static backend_state *backend_of(cb_control *c, const char *name)
{
    backend_state *bs;
    for (bs = c->backends; bs; bs = bs->next)
        if (!strcmp(bs->name, name))
            return bs;
    if (!(bs = cb_calloc(1, sizeof *bs)))
        return NULL;
    snprintf(bs->name, sizeof bs->name, "%s", name);
    cb_config_limits(c->reg, name, &bs->lim);
    bs->tokens = bs->lim.rate_per_s; /* a one-second burst */
    bs->next = c->backends;
    c->backends = bs;
    return bs;
}

static cb_rank rank_of(const cjob *j, int64_t now)
{
    cb_rank r = {j->priority, j->deadline_ns, j->submitted_ns,
                 j->want ? now - j->hungry_since_ns : 0};
    return r;
}

/* One pass over the jobs sharing j's backend. */
typedef struct share_ctx {
    const cjob *j;
    cb_rank rank;
    int64_t now, aging_ms;
    uint64_t inflight; /* over all the backend's jobs but j */
    uint64_t reserved; /* wanted by better-ranked jobs */
    int wake;          /* 1: wake every hungry job (capacity came free) */
} share_ctx;

static void share(uint64_t k, void *val, void *arg)
{
    cjob *o = val;
    share_ctx *s = arg;
    (void)k;
    if (o == s->j || o->backend != s->j->backend)
        return;
    if (s->wake) {
        if (o->want)
            job_wake(o, 0);
        return;
    }
    s->inflight += o->inflight;
    if (o->want) {
        cb_rank r = rank_of(o, s->now);
        if (cb_sched_rank_before(&r, &s->rank, s->aging_ms))
            s->reserved += o->want;
    }
}

/* Invocations `j` may start now; *retry_ms says when tokens come back. What
 * better-ranked jobs of the same backend wait for is theirs: the free
 * capacity is handed out by rank (priority with aging, deadline, submission).
 * *free_out: capacity free before that reservation. */
static uint32_t capacity(cb_control *c, cjob *j, int64_t now, int64_t *retry_ms, uint64_t *free_out)
{
    backend_state *bs = j->backend;
    uint64_t cap = UINT32_MAX;
    share_ctx sc = {j, rank_of(j, now), now, c->o.aging_ms, 0, 0, 0};
    *retry_ms = 0;
    *free_out = UINT32_MAX;
    if (!bs || (!bs->lim.max_concurrency && bs->lim.rate_per_s <= 0))
        return UINT32_MAX;
    cb_map_each(&c->jobs, share, &sc);
    if (bs->lim.max_concurrency) {
        uint64_t all = sc.inflight + j->inflight;
        cap = all >= bs->lim.max_concurrency ? 0 : bs->lim.max_concurrency - all;
    }
    if (bs->lim.rate_per_s > 0) {
        double rate = bs->lim.rate_per_s;
        bs->tokens += rate * (double)(now - bs->refilled_ns) / 1e9;
        bs->refilled_ns = now;
        if (bs->tokens > rate)
            bs->tokens = rate;
        if ((uint64_t)bs->tokens < cap)
            cap = (uint64_t)bs->tokens;
        if (cap == 0)
            *retry_ms = (int64_t)(1000.0 / rate) + 1;
    }
    *free_out = cap;
    return (uint32_t)(cap > sc.reserved ? cap - sc.reserved : 0);
}

/* After a plan: remember what j wants; if capacity is left over, the jobs
 * waiting for it get a look. */
static void after_plan(cb_control *c, cjob *j, const cb_sched_plan *p, uint64_t free_cap,
                       int64_t now)
{
    uint64_t want = p->end == CB_END_NONE ? p->want : 0;
    if (want && !j->want)
        j->hungry_since_ns = now;
    j->want = want;
    if (j->backend && free_cap != UINT32_MAX && free_cap > p->ndispatch) {
        share_ctx sc = {j, rank_of(j, now), now, c->o.aging_ms, 0, 0, 1};
        cb_map_each(&c->jobs, share, &sc);
    }
}

/* ---- loading a job ------------------------------------------------------- */

static cb_status job_load_flow(cb_control *c, cjob *j, const cb_job_state *js)
{
    char err[256];
    cb_status s;
    const json_t *fn;
    if (j->have_flow)
        return CB_OK;
    if ((s = cb_flow_build(js->spec, 0, &j->flow, err, sizeof err)) != CB_OK) {
        cb_log_job(CB_LOG_ERROR, "control", j->tenant, j->job, "cannot plan: %s", err);
        return s;
    }
    cb_policy_from_spec(js->spec, js->spec, &c->o.policy, &j->policy);
    if (j->flow.kind == CB_FLOW_DAG) {
        if (!(j->step_policy = cb_calloc(j->flow.nsteps, sizeof *j->step_policy))) {
            cb_flow_cleanup(&j->flow);
            return CB_ENOMEM;
        }
        for (size_t i = 0; i < j->flow.nsteps; i++)
            cb_policy_from_spec(js->spec, j->flow.steps[i].spec, &c->o.policy, &j->step_policy[i]);
    }
    if (j->flow.kind == CB_FLOW_MAP_REDUCE)
        cb_policy_from_spec(js->spec, json_object_get(js->spec, "reduce"), &c->o.policy,
                            &j->reduce_policy);
    fn = json_object_get(js->spec, "function");
    j->backend = backend_of(c, json_string_value(json_object_get(fn, "backend")) ?: "local");
    j->priority = (int)json_integer_value(json_object_get(js->spec, "priority"));
    j->submitted_ns = js->submitted_ns;
    /* the deadline that ranks it: the SLA's, else the job's timeout */
    int64_t deadline_ms =
        json_integer_value(json_object_get(json_object_get(js->spec, "sla"), "deadline_ms"));
    if (deadline_ms <= 0)
        deadline_ms = j->policy.job_timeout_ms;
    if (deadline_ms > 0)
        j->deadline_ns = js->submitted_ns + deadline_ms * 1000000;
    j->have_flow = 1;
    return CB_OK;
}

/* ---- appending ------------------------------------------------------------- */

static void control_release(cb_control *c);

static void op_free(op *o)
{
    cb_control *c = o->c;
    json_decref(o->invokes);
    json_decref(o->terminal);
    free(o);
    if (--c->nops == 0 && c->stopped)
        control_release(c);
}

static void put_invokes(cb_control *c, cjob *j, json_t *invokes);
static cb_status emit_terminal(cb_control *c, cjob *j, json_t *terminal);

static void op_done(cb_status s, uint64_t seq, int duplicate, void *ctx)
{
    op *o = ctx;
    cb_control *c = o->c;
    cjob *j = c->stopped ? NULL : job_get(c, o->key);
    (void)seq;
    if (!j) {
        op_free(o);
        return;
    }
    j->pending--;
    if (s != CB_OK) {
        c->stats.errors++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "%s not confirmed: %s",
                   o->kind == OP_PUT    ? "an invocation command"
                   : o->kind == OP_DONE ? "the done message"
                                        : "an event",
                   cb_strerror(s));
        if (o->kind == OP_PUT)
            j->recovered = 0; /* re-send the commands of dispatched tasks */
        j->ending = 0;
        job_wake(j, 500);
        op_free(o);
        return;
    }
    if (o->kind != OP_PUT && o->kind != OP_DONE && !duplicate)
        j->expect++;
    if (o->kind != OP_PUT && o->kind != OP_DONE && seq > j->await_seq)
        j->await_seq = seq;
    if (o->kind == OP_DISPATCH && o->invokes)
        put_invokes(c, j, o->invokes);
    if (o->kind == OP_DONE) {
        c->stats.done++;
        if (emit_terminal(c, j, o->terminal) != CB_OK)
            job_wake(j, 500);
    }
    if (j->pending == 0)
        job_wake(j, 0); /* the projection may already have it */
    op_free(o);
}

static op *op_new(cb_control *c, cjob *j, int kind)
{
    op *o = cb_calloc(1, sizeof *o);
    if (o) {
        c->nops++;
        o->c = c;
        o->kind = kind;
        snprintf(o->key, sizeof o->key, "%s", j->key);
    }
    return o;
}

/* Append one event of the plan; the id is "<tenant>/<job>/<what>". */
static cb_status emit(cb_control *c, cjob *j, cb_event_type type, const char *what, json_t *data,
                      op *o)
{
    char id[512];
    cb_status s;
    if (!o && !(o = op_new(c, j, OP_EVENT))) {
        json_decref(data);
        return CB_ENOMEM;
    }
    snprintf(id, sizeof id, "%s/%s/%s", j->tenant, j->job, what);
    if ((s = cb_emit(c->b, type, j->tenant, j->job, id, SOURCE, data, op_done, o)) != CB_OK) {
        op_free(o);
        c->stats.errors++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot append %s: %s",
                   cb_event_type_name(type), cb_strerror(s));
        return s;
    }
    j->pending++;
    c->stats.events++;
    return CB_OK;
}

/* Put each command on the queue of its function's backend. */
static void put_invokes(cb_control *c, cjob *j, json_t *invokes)
{
    char subject[64];
    size_t i;
    json_t *cmd;
    json_array_foreach(invokes, i, cmd)
    {
        snprintf(subject, sizeof subject, "cb.invoke.%s",
                 json_string_value(json_object_get(json_object_get(cmd, "function"), "backend"))
                     ?: "local");
        char id[512], *text = json_dumps(cmd, JSON_COMPACT);
        op *o = text ? op_new(c, j, OP_PUT) : NULL;
        cb_status s = CB_ENOMEM;
        snprintf(id, sizeof id, "%s/%s/%d/%d", j->tenant, j->job,
                 (int)json_integer_value(json_object_get(cmd, "task")),
                 (int)json_integer_value(json_object_get(cmd, "attempt")));
        if (o && (s = cb_broker_put(c->b, subject, id, text, strlen(text), op_done, o)) == CB_OK) {
            j->pending++;
            c->stats.invokes++;
        } else {
            if (o)
                op_free(o);
            c->stats.errors++;
            j->recovered = 0;
            cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job,
                       "cannot put the invocation of task %s: %s", id, cb_strerror(s));
        }
        free(text);
    }
}

/* ---- what an invocation carries -------------------------------------------- */

/* A DAG step's output (the first of its items' outputs), or null. New reference. */
static json_t *step_output(const cjob *j, const cb_task_list *tb, const char *name)
{
    int32_t idx = cb_flow_step_index(&j->flow, name);
    cb_task_view v = cb_task_list_view(tb);
    return idx >= 0 ? cb_sched_step_output(&j->flow, &v, (uint32_t)idx) : json_null();
}

/* The input of a DAG task: a step's literal input or the outputs it names;
 * a foreach child's value. New reference. */
static json_t *dag_items(const cjob *j, const cb_task_list *tb, uint32_t task, uint32_t step)
{
    const cb_flow_step *st = &j->flow.steps[step];
    const json_t *from = json_object_get(st->spec, "input_from");
    if (task != step) { /* a child: the value of its index in what the step iterates over */
        const cb_task_state *parent = cb_task_list_get(tb, step);
        json_t *over = step_output(j, tb, j->flow.steps[st->foreach].name), *items;
        items =
            parent && over ? json_pack("[O]", json_array_get(over, task - parent->first)) : NULL;
        json_decref(over);
        return items;
    }
    if (json_is_string(from)) /* the output of one step */
        return json_pack("[o]", step_output(j, tb, json_string_value(from)));
    if (json_is_array(from)) { /* the outputs of several, in that order */
        json_t *outs = json_array(), *name;
        size_t i;
        json_array_foreach(from, i, name)
            json_array_append_new(outs, step_output(j, tb, json_string_value(name)));
        return json_pack("[o]", outs);
    }
    from = json_object_get(st->spec, "input");
    return json_pack("[O]", from ? from : json_null());
}

static json_t *invoke_cmd(const cjob *j, const cb_job_state *js, const cb_task_list *tb,
                          uint32_t task, uint32_t attempt)
{
    const json_t *spec = js->spec, *fn = json_object_get(spec, "function");
    json_t *items = NULL, *cmd;
    int64_t first = -1;
    int32_t step = -1;
    if (j->flow.kind == CB_FLOW_DAG) {
        cb_task_view v = cb_task_list_view(tb);
        if ((step = cb_sched_step_of(&j->flow, &v, task)) < 0)
            return NULL;
        fn = json_object_get(j->flow.steps[step].spec, "function");
        items = dag_items(j, tb, task, (uint32_t)step);
        if (task != (uint32_t)step)
            first = (int64_t)(task - cb_task_list_get(tb, (uint32_t)step)->first);
    } else if (j->flow.kind == CB_FLOW_CALL) {
        const json_t *in = json_object_get(spec, "input");
        items = json_pack("[O]", in ? in : json_null());
    } else if (j->flow.kind == CB_FLOW_MAP_REDUCE && task == cb_flow_reduce_task(&j->flow)) {
        cb_task_view v = cb_task_list_view(tb);
        json_t *outs = cb_result_reduce_input(&j->flow, &v);
        fn = json_object_get(json_object_get(spec, "reduce"), "function");
        items = outs ? json_pack("[o]", outs) : NULL;
    } else {
        items = cb_flow_map_items(&j->flow, task);
        first = (int64_t)task * j->flow.chunksize;
    }
    if (!items)
        return NULL;
    {
        cb_invoke_msg m = {.job_id = j->job,
                           .tenant = j->tenant,
                           .task = task,
                           .attempt = attempt,
                           .step = step >= 0 ? j->flow.steps[step].name : NULL,
                           .function = fn,
                           .items = items,
                           .first_item = first};
        cmd = cb_invoke_msg_build(&m);
    }
    json_decref(items);
    return cmd;
}

/* ---- the end of a job ------------------------------------------------------ */

static cb_status emit_terminal(cb_control *c, cjob *j, json_t *terminal)
{
    cb_event_type type = (cb_event_type)json_integer_value(json_object_get(terminal, "type"));
    json_t *data = json_incref(json_object_get(terminal, "data"));
    return emit(c, j, type, cb_event_type_name(type) + 3, data, NULL);
}

/* Publish the done message, then (op_done) append the terminal event. */
static void end_job(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                    const cb_sched_plan *p, int64_t now)
{
    static const char *const status[] = {
        [CB_END_SUCCEED] = "succeeded", [CB_END_FAIL] = "failed", [CB_END_CANCEL] = "cancelled"};
    json_t *data, *result = NULL, *failed = NULL;
    cb_done_msg done;
    cb_event_type type;
    char subject[320], id[320], ref[300], *text;
    op *o;
    cb_status s;

    cb_done_msg_init(&done, j->tenant, j->job, status[p->end]);
    if (p->end == CB_END_SUCCEED) {
        char *rtext;
        type = CB_EV_JOB_SUCCEEDED;
        cb_task_view v = cb_task_list_view(tb);
        result = cb_result_of(&j->flow, &v, &failed);
        rtext = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (rtext && strlen(rtext) <= c->o.inline_result_max) {
            done.result = result;
            data = json_pack("{s:O}", "result", result);
        } else {
            /* too large to inline: the outputs stay in the task records */
            snprintf(ref, sizeof ref, "cb://%s/%s/result", j->tenant, j->job);
            done.result_ref = ref;
            data = json_pack("{s:s}", "result_ref", ref);
        }
        free(rtext);
        if (failed && data) { /* tolerated losses: which items have no output, and why */
            done.failed = failed;
            json_object_set(data, "failed", failed);
        }
    } else if (p->end == CB_END_FAIL) {
        type = CB_EV_JOB_FAILED;
        done.error = p->error[0] ? p->error : "failed";
        data = json_pack("{s:s}", "error", done.error);
    } else {
        type = CB_EV_JOB_CANCELLED;
        data = json_object();
    }
    done.has_counts = 1;
    done.counts.total = js->total;
    done.counts.succeeded = js->succeeded;
    done.counts.retries = js->retries;
    for (size_t i = 0; i < tb->n; i++)
        if (tb->tasks[i].status == CB_TASK_FAILED || tb->tasks[i].status == CB_TASK_TIMED_OUT)
            done.counts.failed++;
    done.submitted_ns = js->submitted_ns;
    done.started_ns = js->started_ns;
    done.finished_ns = now;
    done.makespan_ms = (double)(now - js->submitted_ns) / 1e6;
    text = cb_done_msg_text(&done);
    json_decref(result);
    json_decref(failed);
    o = op_new(c, j, OP_DONE);
    if (!o || !text || !data) {
        free(text);
        json_decref(data);
        if (o)
            op_free(o);
        return;
    }
    o->terminal = json_pack("{s:i, s:o}", "type", (json_int_t)type, "data", data);
    snprintf(subject, sizeof subject, "cb.done.%s.%s", j->tenant, j->job);
    snprintf(id, sizeof id, "%s/%s/done", j->tenant, j->job);
    s = cb_broker_notify(c->b, subject, id, text, strlen(text), op_done, o);
    free(text);
    if (s != CB_OK) {
        c->stats.errors++;
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot publish done: %s",
                   cb_strerror(s));
        op_free(o);
        job_wake(j, 500);
        return;
    }
    cb_log_job(CB_LOG_INFO, "control", j->tenant, j->job, "job %s", status[p->end]);
    j->ending = 1;
    j->end_status = status[p->end];
    j->pending++;
}

/* ---- a visit ----------------------------------------------------------------- */

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
    if (m && (text = json_dumps(m, JSON_COMPACT))) {
        if (cb_broker_notify(c->b, subject, NULL, text, strlen(text), NULL, NULL) != CB_OK)
            c->stats.errors++;
        free(text);
    }
    json_decref(m);
}

/* After a restart: the commands of tasks dispatched before may not have been
 * put (or were taken by an adapter that died): put them again, same ids. */
static void recover(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb)
{
    json_t *invokes = json_array();
    for (size_t i = 0; invokes && i < tb->n; i++)
        if (tb->tasks[i].status == CB_TASK_DISPATCHED) {
            json_t *cmd = invoke_cmd(j, js, tb, tb->index[i], tb->tasks[i].attempt);
            if (cmd)
                json_array_append_new(invokes, cmd);
        }
    if (invokes && json_array_size(invokes) > 0) {
        cb_log_job(CB_LOG_INFO, "control", j->tenant, j->job,
                   "re-sending %zu invocation commands of dispatched tasks",
                   json_array_size(invokes));
        put_invokes(c, j, invokes);
    }
    json_decref(invokes);
    j->recovered = 1;
}

/* A DAG plan's skips, expansions and collections, as events. */
static void dag_decisions(cb_control *c, cjob *j, const cb_task_list *tb, const cb_sched_plan *p)
{
    cb_task_view v = cb_task_list_view(tb);
    char what[64];
    for (size_t i = 0; i < p->nskip; i++) {
        const cb_skip *k = &p->skip[i];
        snprintf(what, sizeof what, "%u/skipped", k->task);
        emit(c, j, CB_EV_TASK_SKIPPED, what,
             json_pack("{s:i, s:s, s:s}", "task", (json_int_t)k->task, "step",
                       j->flow.steps[k->task].name, "reason", k->reason),
             NULL);
    }
    for (size_t i = 0; i < p->nexpand; i++) {
        const cb_expand *e = &p->expand[i];
        snprintf(what, sizeof what, "%u/expanded", e->task);
        emit(c, j, CB_EV_TASK_EXPANDED, what,
             json_pack("{s:i, s:s, s:i, s:i}", "task", (json_int_t)e->task, "step",
                       j->flow.steps[e->task].name, "first", (json_int_t)e->first, "count",
                       (json_int_t)e->count),
             NULL);
    }
    for (size_t i = 0; i < p->ncollect; i++) {
        uint32_t step = p->collect[i];
        json_t *outs = cb_sched_children_outputs(&v, cb_task_view_get(&v, step));
        if (!outs)
            continue;
        /* the same id an adapter's report of attempt 1 would have */
        snprintf(what, sizeof what, "%u/1/succeeded", step);
        emit(c, j, CB_EV_TASK_SUCCEEDED, what,
             json_pack("{s:i, s:i, s:s, s:[o]}", "task", (json_int_t)step, "attempt", 1, "step",
                       j->flow.steps[step].name, "output", outs),
             NULL);
    }
}

static void apply_plan(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                       const cb_sched_plan *p, int64_t now)
{
    char what[256], at[40];
    j->expect = js->applied + js->ignored;
    j->await_until_ns = now + c->o.await_ms * 1000000;
    for (size_t i = 0; i < p->ndispatch; i++) /* new tasks move the frontier */
        if (p->dispatch[i].attempt == 1 && p->dispatch[i].task >= j->await_frontier)
            j->await_frontier = p->dispatch[i].task + 1;
    if (p->start)
        emit(c, j, CB_EV_JOB_STARTED, "started",
             json_pack("{s:i}", "tasks", (json_int_t)j->flow.tasks), NULL);
    for (size_t i = 0; i < p->ntimeout; i++) {
        snprintf(what, sizeof what, "%u/%u/timed_out", p->timeout[i].task, p->timeout[i].attempt);
        emit(c, j, CB_EV_TASK_TIMED_OUT, what,
             json_pack("{s:i, s:i}", "task", (json_int_t)p->timeout[i].task, "attempt",
                       (json_int_t)p->timeout[i].attempt),
             NULL);
    }
    for (size_t i = 0; i < p->nretry; i++) {
        int64_t delay = p->retry[i].at_ns > now ? (p->retry[i].at_ns - now) / 1000000 : 0;
        snprintf(what, sizeof what, "%u/%u/retry", p->retry[i].task, p->retry[i].attempt);
        emit(c, j, CB_EV_TASK_RETRY_SCHEDULED, what,
             json_pack("{s:i, s:i, s:s, s:i}", "task", (json_int_t)p->retry[i].task, "attempt",
                       (json_int_t)p->retry[i].attempt, "at",
                       cb_time_format(p->retry[i].at_ns, at, sizeof at), "delay_ms",
                       (json_int_t)delay),
             NULL);
    }
    dag_decisions(c, j, tb, p);
    for (size_t from = 0; from < p->ndispatch; from += DISPATCH_CHUNK) {
        size_t n = p->ndispatch - from < DISPATCH_CHUNK ? p->ndispatch - from : DISPATCH_CHUNK;
        json_t *tasks = json_array(), *invokes = json_array();
        const char *backend = j->backend ? j->backend->name : "local";
        op *o = op_new(c, j, OP_DISPATCH);
        if (!tasks || !invokes || !o) {
            json_decref(tasks);
            json_decref(invokes);
            if (o)
                op_free(o);
            break;
        }
        for (size_t i = from; i < from + n; i++) {
            const cb_task_ref *r = &p->dispatch[i];
            json_t *cmd = invoke_cmd(j, js, tb, r->task, r->attempt);
            json_array_append_new(tasks, json_pack("{s:i, s:i}", "task", (json_int_t)r->task,
                                                   "attempt", (json_int_t)r->attempt));
            if (cmd)
                json_array_append_new(invokes, cmd);
        }
        o->invokes = invokes;
        snprintf(what, sizeof what, "dispatch/%u.%u+%zu", p->dispatch[from].task,
                 p->dispatch[from].attempt, n);
        json_t *data = j->flow.kind == CB_FLOW_DAG /* a DAG's steps have their own backends */
                           ? json_pack("{s:o}", "tasks", tasks)
                           : json_pack("{s:s, s:o}", "backend", backend, "tasks", tasks);
        if (emit(c, j, CB_EV_TASKS_DISPATCHED, what, data, o) == CB_OK) {
            c->stats.dispatched += n;
            j->inflight += (uint32_t)n;
        }
    }
    if (p->end != CB_END_NONE)
        end_job(c, j, js, tb, p, now);
}

/* The job's task records: its open ones only, or all. */
static cb_status load_tasks(cb_control *c, cjob *j, int open_only, cb_task_list *tb)
{
    cb_status s = open_only ? cb_view_job_open_tasks(c->st, j->key, cb_task_list_add, tb)
                            : cb_view_job_tasks(c->st, j->key, cb_task_list_add, tb);
    if (s == CB_OK && tb->oom)
        s = CB_ENOMEM;
    if (s != CB_OK) {
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "cannot read tasks: %s",
                   cb_strerror(s));
        job_wake(j, 1000);
    }
    return s;
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

/* Whether the projection lacks what the job's last plan appended. Counting
 * the job's events is not enough (an adapter's report can make up the count
 * while our dispatch is still on its way), so where the broker tells log
 * positions the projector must have folded ours, and a flat job's frontier
 * must show its last dispatch. */
static bool behind(cb_control *c, const cjob *j, const cb_job_state *js)
{
    uint64_t applied = 0;
    if (js->applied + js->ignored < j->expect)
        return true;
    if (j->await_seq && cb_view_applied_seq(c->st, &applied) == CB_OK && applied < j->await_seq)
        return true;
    return j->flow.kind != CB_FLOW_DAG && !js->cancel_requested && js->frontier < j->await_frontier;
}

static void visit(cb_control *c, cjob *j)
{
    cb_job_state js;
    cb_task_list tb = {0};
    cb_sched_in in;
    cb_sched_plan p;
    int64_t now = cb_time_now_ns(), retry_ms = 0;
    uint64_t free_cap = 0;
    int open_only;
    cb_status s;

    c->stats.visits++;
    memset(&js, 0, sizeof js);
    if ((s = cb_view_job(c->st, j->key, &js)) != CB_OK) {
        if (s == CB_ENOTFOUND && j->pending == 0)
            job_forget(c, j); /* not projected yet: the announcement brings it back */
        return;
    }
    if (cb_job_terminal(js.status) || js.status == CB_JOB_ABSENT) {
        if (j->pending == 0) {
            cb_job_state_cleanup(&js);
            job_forget(c, j);
            return;
        }
        goto out;
    }
    if (j->pending > 0 || j->ending)
        goto out; /* the confirmations re-visit */
    if (job_load_flow(c, j, &js) != CB_OK)
        goto out;
    if (behind(c, j, &js) && now < j->await_until_ns) {
        job_wake(j, (j->await_until_ns - now) / 1000000 + 1);
        goto out; /* the projection has not caught up with what we appended */
    }
    /* A DAG plans over all its records, other jobs over their open ones (the
     * first visit after a start re-sends commands, a reduce's with its input) */
    open_only = j->flow.kind != CB_FLOW_DAG && j->recovered;
    if (load_tasks(c, j, open_only, &tb) != CB_OK)
        goto out;
    j->inflight = js.inflight;
    if (!j->recovered)
        recover(c, j, &js, &tb);
    memset(&in, 0, sizeof in);
    in.flow = &j->flow;
    in.policy = &j->policy;
    in.step_policy = j->step_policy;
    in.reduce_policy = j->flow.kind == CB_FLOW_MAP_REDUCE ? &j->reduce_policy : NULL;
    in.job = &js;
    in.view = cb_task_list_view(&tb);
    in.capacity = j->held ? 0 : capacity(c, j, now, &retry_ms, &free_cap);
    in.now_ns = now;
    in.job_key = j->key;
    if ((s = cb_sched_plan_job(&in, &p)) != CB_OK) {
        cb_log_job(CB_LOG_ERROR, "control", j->tenant, j->job, "scheduler: %s", cb_strerror(s));
        job_wake(j, 1000);
        goto out;
    }
    c->stats.plans++;
    if (j->backend && j->backend->lim.rate_per_s > 0)
        j->backend->tokens -= (double)p.ndispatch;
    if (!j->held)
        after_plan(c, j, &p, free_cap, now);
    progress(c, j, &js, now, p.end != CB_END_NONE);
    if (open_only && needs_outputs(j, &p)) {
        /* the result, or the reduce's input: now the outputs are needed */
        cb_task_list_cleanup(&tb);
        memset(&tb, 0, sizeof tb);
        if (load_tasks(c, j, 0, &tb) != CB_OK) {
            cb_sched_plan_cleanup(&p);
            goto out;
        }
    }
    apply_plan(c, j, &js, &tb, &p, now);
    if (p.wake_ns > now)
        job_wake(j, (p.wake_ns - now) / 1000000 + 1);
    if (retry_ms > 0)
        job_wake(j, retry_ms);
    cb_sched_plan_cleanup(&p);
out:
    cb_task_list_cleanup(&tb);
    cb_job_state_cleanup(&js);
}

static void visit_cb(evutil_socket_t fd, short what, void *arg)
{
    cjob *j = arg;
    (void)fd;
    (void)what;
    visit(j->c, j);
}

/* ---- the loops ----------------------------------------------------------------- */

static void changed_cb(const cb_broker_msg *m, void *ctx)
{
    cb_control *c = ctx;
    json_t *o = json_loadb(m->data, m->len, 0, NULL);
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(o, "jobs"), i, k)
    {
        if (json_is_string(k))
            cb_control_touch(c, json_string_value(k));
    }
    json_decref(o);
}

static int touch_active(const char *key, int64_t deadline_ns, void *arg)
{
    (void)deadline_ns;
    cb_control_touch(arg, key);
    return 0;
}

static void reconcile_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_control *c = arg;
    cb_status s;
    (void)fd;
    (void)what;
    if ((s = cb_view_active(c->st, touch_active, c)) != CB_OK)
        CB_LOG_WRN("control", "cannot list active jobs: %s", cb_strerror(s));
}

cb_status cb_control_start(struct event_base *base, cb_broker *b, cb_store *st,
                           const cb_config *reg, const cb_control_opts *o, cb_control **out)
{
    cb_control *c = cb_calloc(1, sizeof *c);
    struct timeval tv;
    cb_status s;
    if (!c)
        return CB_ENOMEM;
    c->base = base;
    c->b = b;
    c->st = st;
    c->reg = reg;
    if (o)
        c->o = *o;
    else
        cb_control_opts_init(&c->o);
    cb_map_init(&c->jobs);
    if (!(c->reconcile = event_new(base, -1, EV_PERSIST, reconcile_cb, c))) {
        free(c);
        return CB_ENOMEM;
    }
    if ((s = cb_broker_subscribe(b, CB_PROJ_CHANGED, 0, changed_cb, c, &c->changed)) != CB_OK) {
        event_free(c->reconcile);
        free(c);
        return s;
    }
    tv = tv_ms(c->o.reconcile_ms);
    evtimer_add(c->reconcile, &tv);
    reconcile_cb(-1, 0, c); /* the first pass now: recover what a previous run left */
    *out = c;
    return CB_OK;
}

static void stop_job(uint64_t k, void *val, void *arg)
{
    cjob *j = val;
    (void)k;
    (void)arg;
    evtimer_del(j->wake);
}

static void free_job(uint64_t k, void *val, void *arg)
{
    (void)k;
    (void)arg;
    job_free(val);
}

static void control_release(cb_control *c)
{
    cb_map_each(&c->jobs, free_job, NULL);
    cb_map_cleanup(&c->jobs);
    while (c->backends) {
        backend_state *bs = c->backends;
        c->backends = bs->next;
        free(bs);
    }
    free(c);
}

void cb_control_free(cb_control *c)
{
    if (!c)
        return;
    cb_sub_close(c->changed);
    c->changed = NULL;
    event_free(c->reconcile);
    c->reconcile = NULL;
    /* Job timers stop now; confirmations still due find c->stopped. */
    c->stopped = 1;
    cb_map_each(&c->jobs, stop_job, NULL);
    if (c->nops == 0)
        control_release(c);
}
