/* engine/dispatch.c - the invocation commands of a plan (see control_int.h):
 * what each carries (a map chunk, a call's input, a DAG step's input or a
 * foreach child's value, the reduce's input), appended as
 * cb.tasks.dispatched and put on cb.invoke.<backend> once confirmed. */
#include "control_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"
#include "cb_json.h"
#include "cb_log.h"
#include "cb_msg_invoke.h"
#include "cb_msg_outcome.h"
#include "cb_time.h"
#include "memo.h"
#include "views.h"
#include "result.h"

/* Put each command on the queue of its function's backend; append the
 * memoized successes instead of theirs. */
void ctl_put_invokes(cb_control *c, cjob *j, json_t *invokes)
{
    size_t i;
    json_t *e;
    json_array_foreach(invokes, i, e)
    {
        const json_t *cmd = json_object_get(e, "command");
        const char *id = json_string_value(json_object_get(e, "id")) ?: "";
        char subject[64], *text;
        op *o;
        cb_status s = CB_ENOMEM;
        if (!cmd) { /* {"what", "memoized"}: the success appended instead */
            if (ctl_emit(c, j, CB_EV_TASK_SUCCEEDED,
                         json_string_value(json_object_get(e, "what")) ?: "memoized",
                         json_incref(json_object_get(e, "memoized")), NULL) == CB_OK)
                c->stats.memoized++;
            else
                j->recovered = 0; /* the next visit tries again */
            continue;
        }
        text = cb_json_dumps(cmd, JSON_COMPACT);
        o = text ? ctl_op_new(c, j, OP_PUT) : NULL;
        snprintf(subject, sizeof subject, "cb.invoke.%s",
                 json_string_value(json_object_get(json_object_get(cmd, "function"), "backend"))
                     ?: "local");
        if (o &&
            (s = cb_broker_put(c->b, subject, id, text, strlen(text), ctl_op_done, o)) == CB_OK) {
            j->pending++;
            c->stats.invokes++;
        } else {
            if (o)
                ctl_op_free(o);
            c->stats.errors++;
            j->recovered = 0;
            cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job,
                       "cannot put the invocation command %s: %s", id, cb_strerror(s));
        }
        free(text);
    }
}

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

/* What one task's part of a command carries: its function and step, and its
 * items (a new reference in *items). 0, or -1 (nothing to send). */
static int task_part(const cjob *j, const cb_job_state *js, const cb_task_list *tb,
                     const cb_task_ref *r, cb_invoke_task *t, json_t **items, const json_t **fn,
                     const char **step_name)
{
    const json_t *spec = js->spec;
    uint32_t task = r->task;
    const cb_task_state *rec = cb_task_list_get(tb, task);
    int32_t step = -1;
    *fn = json_object_get(spec, "function");
    *items = NULL;
    *step_name = NULL;
    t->first_item = -1;
    if (rec && rec->attempt >= r->attempt &&
        (rec->status == CB_TASK_SUCCEEDED || rec->status == CB_TASK_FAILED ||
         rec->status == CB_TASK_TIMED_OUT))
        return -1; /* reported before its dispatch (fold.c adopt_dispatch): nothing to run */
    if (j->flow.kind == CB_FLOW_DAG) {
        cb_task_view v = cb_task_list_view(tb);
        if ((step = cb_sched_step_of(&j->flow, &v, task)) < 0)
            return -1;
        *fn = json_object_get(j->flow.steps[step].spec, "function");
        *step_name = j->flow.steps[step].name;
        *items = dag_items(j, tb, task, (uint32_t)step);
        if (task != (uint32_t)step)
            t->first_item = (int64_t)(task - cb_task_list_get(tb, (uint32_t)step)->first);
    } else if (j->flow.kind == CB_FLOW_CALL) {
        const json_t *in = json_object_get(spec, "input");
        *items = json_pack("[O]", in ? in : json_null());
    } else if (j->flow.kind == CB_FLOW_MAP_REDUCE && task == cb_flow_reduce_task(&j->flow)) {
        cb_task_view v = cb_task_list_view(tb);
        json_t *outs = cb_result_reduce_input(&j->flow, &v);
        *fn = json_object_get(json_object_get(spec, "reduce"), "function");
        *items = outs ? json_pack("[o]", outs) : NULL;
    } else {
        *items = cb_flow_map_items(&j->flow, task);
        t->first_item = (int64_t)task * j->flow.chunksize;
    }
    t->task = task;
    t->attempt = r->attempt;
    t->items = *items;
    return *items ? 0 : -1;
}

/* A re-run's task (retry_of, docs/engine.md): the output of the task of
 * the job it re-runs with the same index (a foreach child: the same place
 * in its step's children, when the step has as many there), if that one
 * succeeded; its index into *from. New reference, or NULL. */
static json_t *rerun_output(cb_control *c, const cjob *j, const cb_task_list *tb, uint32_t task,
                            const char *of, int32_t step, uint32_t *from)
{
    char key[CTL_KEY_MAX];
    cb_task_state old;
    json_t *out = NULL;
    *from = task;
    if (cb_job_key(j->tenant, of, key, sizeof key) != 0)
        return NULL;
    if (step >= 0 && task != (uint32_t)step) { /* a child: where its step's children are there */
        const cb_task_state *parent = cb_task_list_get(tb, (uint32_t)step);
        if (!parent || cb_view_task(c->st, key, (uint32_t)step, &old) != CB_OK)
            return NULL;
        if (old.count == parent->count && task - parent->first < old.count)
            *from = old.first + (task - parent->first);
        else
            *from = UINT32_MAX;
        cb_task_state_cleanup(&old);
        if (*from == UINT32_MAX)
            return NULL;
    }
    if (cb_view_task(c->st, key, *from, &old) != CB_OK)
        return NULL;
    if (old.status == CB_TASK_SUCCEEDED && old.output)
        out = json_incref(old.output);
    cb_task_state_cleanup(&old);
    return out;
}

/* A cached task (memo.h): the output of an earlier success of the tenant
 * with its memo key, not older than the engine's memo_ttl_s (the recent
 * successes the controller folded first, then the store); new reference,
 * or NULL. Its job into job, its index into *from. */
static json_t *memo_output(cb_control *c, const cjob *j, const char *hex, char *job, uint32_t *from)
{
    const char *text, *src;
    size_t n = 0;
    int64_t not_before;
    json_t *out;
    cb_status st;
    if (c->o.memo_ttl_s <= 0)
        return NULL;
    not_before = cb_time_now_ns() - c->o.memo_ttl_s * 1000000000LL;
    if ((text = cb_memo_get(c->memo, j->tenant, hex, not_before, &src, from, &n)) &&
        (out = cb_json_loadb(text, n, JSON_DECODE_ANY, NULL, &st))) {
        snprintf(job, CB_NAME_MAX + 1, "%s", src);
        return out;
    }
    return cb_view_memo(c->st, j->tenant, hex, not_before, job, from, &out) == CB_OK ? out : NULL;
}

/* What reuse needs of a job and the step of the tasks at hand, taken once
 * per command rather than per task. */
typedef struct reuse {
    const char *of;   /* the job it re-runs (retry_of), or NULL */
    const char *step; /* the step whose index si is */
    int32_t si;       /* the step's index, -1: none (a map) */
    bool cached;      /* its tasks are memoized (cb_memo_wanted) */
} reuse;

static void reuse_step(reuse *u, const cjob *j, const cb_job_state *js, const char *step)
{
    if (u->si != INT32_MIN && step == u->step)
        return;
    u->step = step;
    u->si = step ? cb_flow_step_index(&j->flow, step) : -1;
    u->cached = cb_memo_wanted(js->spec, u->si >= 0 ? j->flow.steps[u->si].spec : NULL);
}

/* The success to append instead of invoking task t (new reference), or
 * NULL: invoke it, with its memo key in hex when it is cached ("" when
 * not). A re-run's task that succeeded in the job it re-runs takes that
 * output; else a cached task (memo.h) an earlier one's with its key. */
static json_t *reused(cb_control *c, const cjob *j, const cb_task_list *tb, const reuse *u,
                      const cb_invoke_task *t, const json_t *fn, char hex[65])
{
    const char *of = u->of, *step = u->step;
    int32_t si = u->si;
    char job[CB_NAME_MAX + 1];
    uint32_t from = 0;
    json_t *out = NULL, *data;
    cb_outcome_msg m;
    hex[0] = '\0';
    if (of && (out = rerun_output(c, j, tb, t->task, of, si, &from)))
        snprintf(job, sizeof job, "%s", of);
    if (!out && u->cached) {
        if (cb_memo_key(fn, t->items, hex) != CB_OK)
            hex[0] = '\0';
        else
            out = memo_output(c, j, hex, job, &from);
    }
    if (!out)
        return NULL;
    memset(&m, 0, sizeof m);
    m.task = t->task;
    m.attempt = t->attempt;
    m.step = step;
    m.output = out;
    m.duration_ms = -1;
    m.memoized_job = job;
    m.memoized_task = from;
    data = cb_outcome_succeeded(&m);
    json_decref(out);
    return data;
}

_Static_assert(CTL_BATCH_MAX <= CB_INVOKE_TASKS_MAX, "a command takes CTL_BATCH_MAX tasks");

/* Tasks per command for a plan of n on a backend with `busy` invocations
 * of other plans in flight: while it has fewer than CTL_BATCH_BUSY, at least
 * CTL_BATCH_SPREAD commands per plan (none shared below that), so that a
 * plan spreads over the adapters; once its adapters have that much work
 * anyway, up to CTL_BATCH_MAX, so that many small jobs cost a command each. */
static size_t batch_size(size_t n, uint64_t busy)
{
    size_t k = busy >= CTL_BATCH_BUSY ? n : n / CTL_BATCH_SPREAD;
    return k < 1 ? 1 : k > CTL_BATCH_MAX ? CTL_BATCH_MAX : k;
}

/* A function that names a pool (the job's, or a lane's of a job over
 * several accounts), with member k as backend instead: made once per
 * function and member, kept by j until it ends; NULL when out of memory. A
 * function on a backend of its own is left as it is. */
static const json_t *member_fn(cjob *j, const json_t *fn, int k)
{
    const char *b = json_string_value(json_object_get(fn, "backend")) ?: "";
    char key[64];
    json_t *copy;
    if (strcmp(b, j->backend->name) != 0 && !cb_config_pool(j->c->reg, b))
        return fn;
    snprintf(key, sizeof key, "%d:%p", k, (const void *)fn);
    if (!j->mfns && !(j->mfns = json_object()))
        return NULL;
    if ((copy = json_object_get(j->mfns, key)))
        return copy;
    if (!(copy = json_deep_copy(fn)) ||
        json_object_set_new(copy, "backend", json_string(j->backend->pool->members[k])) ||
        json_object_set_new(j->mfns, key, copy)) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

int ctl_task_member(const cjob *j, const cb_job_state *js, const cb_task_state *t, bool backup)
{
    const cb_pool *pool = j->backend ? j->backend->pool : NULL;
    uint8_t m = backup ? t->backup_member : t->member;
    if (!pool)
        return -1;
    for (size_t k = 0; m && m <= js->nmembers && k < pool->n; k++)
        if (!strcmp(pool->members[k], js->members[m - 1].backend))
            return (int)k;
    return 0; /* not recorded (or no longer a member): the first */
}

void ctl_invoke_cmds(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                     const cb_task_ref *refs, size_t n, int member, json_t *into)
{
    /* a DAG's foreach children carry parts of one output, which may itself be
     * near the message limit: they always spread (docs/engine.md) */
    uint64_t busy = j->flow.kind != CB_FLOW_DAG && j->backend && j->backend->inflight > j->inflight
                        ? j->backend->inflight - j->inflight
                        : 0;
    size_t k = batch_size(n, busy), have = 0;
    json_t *held[CB_INVOKE_TASKS_MAX];  /* the items' references; m.tasks borrows them */
    char memo[CB_INVOKE_TASKS_MAX][65]; /* the tasks' memo keys; m.tasks borrows them */
    cb_invoke_msg m = {.job_id = j->job, .tenant = j->tenant, .partition = j->log_part};
    reuse u = {.of = json_string_value(json_object_get(js->spec, "retry_of")), .si = INT32_MIN};
    const json_t *m_fn = NULL; /* the function of the command under way (before member_fn) */
    for (size_t i = 0; i <= n; i++) {
        cb_invoke_task t;
        json_t *items = NULL;
        const json_t *fn = NULL;
        const char *step = NULL;
        int ok = i < n && task_part(j, js, tb, &refs[i], &t, &items, &fn, &step) == 0;
        /* a command holds tasks of one function and step, up to k of them */
        if (have > 0 && (i == n || !ok || have == k || fn != m_fn || step != m.step)) {
            char id[512];
            int len = snprintf(id, sizeof id, "%s/%s/%u/%u", j->tenant, j->job, m.tasks[0].task,
                               m.tasks[0].attempt);
            m.ntasks = have;
            if (have > 1 && len > 0 && (size_t)len < sizeof id)
                snprintf(id + len, sizeof id - (size_t)len, "+%zu", have);
            json_t *cmd = cb_invoke_msg_build(&m);
            if (cmd)
                json_array_append_new(into, json_pack("{s:s, s:o}", "id", id, "command", cmd));
            while (have > 0) /* the command holds its own references */
                json_decref(held[--have]);
        }
        if (!ok) {
            json_decref(items);
            continue;
        }
        {
            json_t *data;
            reuse_step(&u, j, js, step);
            data = reused(c, j, tb, &u, &t, fn, memo[have]);
            if (data) { /* appended instead of invoking, once the dispatch is confirmed */
                char what[64];
                snprintf(what, sizeof what, "%u/%u/memoized", t.task, t.attempt);
                json_array_append_new(into,
                                      json_pack("{s:s, s:o}", "what", what, "memoized", data));
                json_decref(items);
                continue;
            }
            t.memo = memo[have][0] ? memo[have] : NULL;
        }
        {
            const json_t *cmd_fn = member >= 0 ? member_fn(j, fn, member) : fn;
            if (!cmd_fn) { /* out of memory: left out, its attempt times out */
                json_decref(items);
                continue;
            }
            m_fn = fn; /* commands are grouped by fn (the memo key's too) */
            m.function = cmd_fn;
        }
        m.step = step;
        m.tasks[have] = t;
        held[have++] = items;
    }
}

/* Append the dispatches of refs[0..n) in chunks, to `backend` (member k of
 * j's backend: a pool's member, named with `pool`; an account of a job
 * over several, "mixed", with the pool of its lane if any). */
static void dispatch_to(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                        const cb_task_ref *refs, size_t n, const char *backend, int member,
                        const char *pool)
{
    char what[256];
    for (size_t from = 0; from < n; from += DISPATCH_CHUNK) {
        size_t cnt = n - from < DISPATCH_CHUNK ? n - from : DISPATCH_CHUNK;
        json_t *tasks = json_array(), *invokes = json_array(), *data;
        op *o = ctl_op_new(c, j, OP_DISPATCH);
        if (!tasks || !invokes || !o) {
            json_decref(tasks);
            json_decref(invokes);
            if (o)
                ctl_op_free(o);
            break;
        }
        for (size_t i = from; i < from + cnt; i++) {
            const cb_task_ref *r = &refs[i];
            json_t *one = json_pack("{s:i, s:i}", "task", (json_int_t)r->task, "attempt",
                                    (json_int_t)r->attempt);
            if (one && r->backup) /* docs/engine.md, "Straggler backups" */
                json_object_set_new(one, "backup", json_true());
            json_array_append_new(tasks, one);
        }
        ctl_invoke_cmds(c, j, js, tb, refs + from, cnt, member, invokes);
        o->invokes = invokes;
        snprintf(what, sizeof what, "dispatch/%u.%u+%zu", refs[from].task, refs[from].attempt, cnt);
        if (j->backend && j->backend->mixed) /* counted per account, as a pool's members */
            data = json_pack("{s:s, s:s*, s:b, s:o}", "backend", backend, "pool", pool, "mixed", 1,
                             "tasks", tasks);
        else if (j->flow.kind == CB_FLOW_DAG) /* a DAG's steps on one backend */
            data = json_pack("{s:o}", "tasks", tasks);
        else if (pool)
            data = json_pack("{s:s, s:s, s:o}", "backend", backend, "pool", pool, "tasks", tasks);
        else
            data = json_pack("{s:s, s:o}", "backend", backend, "tasks", tasks);
        j->await_ref = refs[from]; /* the plan's last event's, once all are out */
        if (ctl_emit(c, j, CB_EV_TASKS_DISPATCHED, what, data, o) == CB_OK) {
            c->stats.dispatched += cnt;
            ctl_set_inflight(j, j->inflight + (uint32_t)cnt);
        }
    }
}

/* refs[0..n) split across the members of `pool` (j's own, or a lane's),
 * each member's share to it; what none could take waits for the next plan,
 * still pending. */
static void dispatch_pool(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                          const cb_task_ref *refs, size_t n, const cb_pool *pool)
{
    uint64_t out[CB_POOL_MAX], off = 0;
    ctl_pool_split(c, j, pool, n, cb_time_now_ns(), out); /* visit's clock */
    for (size_t i = 0; i < pool->n; off += out[i], i++)
        if (out[i])
            dispatch_to(c, j, js, tb, refs + off, out[i], pool->members[i],
                        ctl_member_index(j, pool->members[i]), pool->name);
}

/* A job over several accounts: each lane's tasks to its account, in plan
 * order within the lane; the lanes on one account first, then the pools'
 * (the split sees what the others took of a member they share). */
static void dispatch_lanes(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                           const cb_sched_plan *p)
{
    const backend_state *bs = j->backend;
    cb_task_view v = cb_task_list_view(tb);
    cb_task_ref *mine = cb_malloc(p->ndispatch * sizeof *mine);
    uint8_t *lane = cb_malloc(p->ndispatch ? p->ndispatch : 1);
    if (!mine || !lane) { /* left pending: the next plan dispatches them */
        cb_log_job(CB_LOG_WARN, "control", j->tenant, j->job, "dispatch: out of memory");
        free(mine);
        free(lane);
        return;
    }
    for (size_t i = 0; i < p->ndispatch; i++) /* each task's lane, looked up once */
        lane[i] = cb_sched_lane_of(&j->flow, &v, p->dispatch[i].task);
    for (int pools = 0; pools < 2; pools++)
        for (size_t k = 0; k < bs->nlanes; k++) {
            size_t n = 0;
            if ((bs->lane_pool[k] != NULL) != pools)
                continue;
            for (size_t i = 0; i < p->ndispatch; i++)
                if (lane[i] == k)
                    mine[n++] = p->dispatch[i];
            if (!n)
                continue;
            if (pools) {
                dispatch_pool(c, j, js, tb, mine, n, bs->lane_pool[k]);
            } else {
                int a = ctl_member_index(j, j->flow.lanes[k]); /* >= 0: ctl_mixed_of */
                ctl_lane_took(j, (size_t)a, n);
                dispatch_to(c, j, js, tb, mine, n, j->flow.lanes[k], a, NULL);
            }
        }
    free(mine);
    free(lane);
}

void ctl_dispatch(cb_control *c, cjob *j, const cb_job_state *js, const cb_task_list *tb,
                  const cb_sched_plan *p)
{
    const cb_pool *pool = j->backend ? j->backend->pool : NULL;
    if (pool && j->backend->mixed)
        dispatch_lanes(c, j, js, tb, p);
    else if (pool) /* a map's (or map_reduce's, its reduce on the pool too) */
        dispatch_pool(c, j, js, tb, p->dispatch, p->ndispatch, pool);
    else
        dispatch_to(c, j, js, tb, p->dispatch, p->ndispatch,
                    j->backend ? j->backend->name : "local", -1, NULL);
}
