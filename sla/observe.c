/* sla/observe.c - a job's timings for the SLA evaluator (see observe.h):
 * per task the latest dispatch and start, the first start, the attempt
 * last observed and whether its last outcome failed; per job the
 * submission, start, tasks, final failures and retries. */
#include "observe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cb_cost.h"
#include "cb_alloc.h"
#include "cb_map.h"

typedef struct task_t {
    int64_t dispatched_ns, started_ns, first_started_ns;
    uint32_t observed; /* the last attempt observed (0: none) */
    int failed;        /* its last outcome failed */
} task_t;

struct cb_sla_watch {
    int64_t submitted_ns, started_ns;
    uint32_t tasks, failed, retries;
    uint64_t nanos; /* what the attempts observed cost (cb_cost.h) */
    int ended;
    cb_map by_task; /* task index + 1 -> task_t * */
};

static void free_task(uint64_t key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    free(val);
}

cb_sla_watch *cb_sla_watch_new(void)
{
    cb_sla_watch *w = cb_calloc(1, sizeof *w);
    if (w)
        cb_map_init(&w->by_task);
    return w;
}

void cb_sla_watch_free(cb_sla_watch *w)
{
    if (!w)
        return;
    cb_map_each(&w->by_task, free_task, NULL);
    cb_map_cleanup(&w->by_task);
    free(w);
}

static task_t *task_of(cb_sla_watch *w, const json_t *idx, int make)
{
    task_t *t;
    uint64_t key;
    if (!json_is_integer(idx) || json_integer_value(idx) < 0)
        return NULL;
    key = (uint64_t)json_integer_value(idx) + 1;
    if ((t = cb_map_get(&w->by_task, key)) || !make)
        return t;
    if (!(t = cb_calloc(1, sizeof *t)))
        return NULL;
    if (cb_map_put(&w->by_task, key, t) != CB_OK) {
        free(t);
        return NULL;
    }
    w->tasks++;
    return t;
}

static void obs_init(cb_sla_obs *o, cb_sla_level level, int64_t t_ns)
{
    memset(o, 0, sizeof *o);
    o->level = level;
    o->time_ns = t_ns;
    for (int i = 0; i < CB_SLA_NMETRICS; i++)
        o->v[i] = NAN;
}

static void set(cb_sla_obs *o, const char *metric, double v)
{
    int i = cb_sla_metric_index(metric);
    if (i >= 0)
        o->v[i] = v;
}

static double ms(int64_t from_ns, int64_t to_ns)
{
    return from_ns && to_ns ? (double)(to_ns - from_ns) / 1e6 : NAN;
}

static int outcome(cb_sla_watch *w, const cb_event *ev, cb_sla_obs *obs)
{
    const json_t *d = ev->data;
    task_t *t = task_of(w, json_object_get(d, "task"), 1);
    json_int_t attempt = json_integer_value(json_object_get(d, "attempt"));
    const json_t *dur = json_object_get(d, "duration_ms"), *cost;
    cb_cost c;
    int failed = ev->type != CB_EV_TASK_SUCCEEDED;
    if (!t)
        return json_is_integer(json_object_get(d, "task")) ? -1 : 0;
    if (attempt <= 0)
        attempt = 1;
    if ((uint32_t)attempt <= t->observed)
        return 0; /* seen: a repeated outcome, or a late one of an older attempt */
    t->observed = (uint32_t)attempt;
    if (failed && !t->failed)
        w->failed++;
    else if (!failed && t->failed)
        w->failed--; /* a retry succeeded */
    t->failed = failed;
    obs_init(obs, CB_SLA_LEVEL_TASK, ev->time_ns);
    obs->task = (uint32_t)json_integer_value(json_object_get(d, "task"));
    obs->attempt = (uint32_t)attempt;
    set(obs, "execution_time",
        json_is_number(dur) ? json_number_value(dur) : ms(t->started_ns, ev->time_ns));
    set(obs, "queue_time", ms(w->submitted_ns, t->first_started_ns));
    set(obs, "dispatch_latency",
        t->started_ns >= t->dispatched_ns ? ms(t->dispatched_ns, t->started_ns) : NAN);
    set(obs, "task_retries", (double)(attempt - 1));
    if ((cost = json_object_get(d, "cost")) && cb_cost_invocation_parse(cost, &c) == CB_OK) {
        w->nanos += c.nanos;
        set(obs, "task_cost", cb_cost_amount(&c));
    }
    return 1;
}

int cb_sla_watch_apply(cb_sla_watch *w, const cb_event *ev, cb_sla_obs *obs)
{
    const json_t *d = ev->data, *it;
    task_t *t;
    size_t i;
    switch (ev->type) {
    case CB_EV_JOB_SUBMITTED:
        if (!w->submitted_ns)
            w->submitted_ns = ev->time_ns;
        return 0;
    case CB_EV_JOB_STARTED:
        if (!w->started_ns)
            w->started_ns = ev->time_ns;
        return 0;
    case CB_EV_TASKS_DISPATCHED:
        json_array_foreach(json_object_get(d, "tasks"), i, it)
        {
            if (!(t = task_of(w, json_object_get(it, "task"), 1)))
                return -1;
            t->dispatched_ns = ev->time_ns;
        }
        return 0;
    case CB_EV_TASK_STARTED:
        if (!(t = task_of(w, json_object_get(d, "task"), 1)))
            return json_is_integer(json_object_get(d, "task")) ? -1 : 0;
        t->started_ns = ev->time_ns;
        if (!t->first_started_ns)
            t->first_started_ns = ev->time_ns;
        return 0;
    case CB_EV_TASK_RETRY_SCHEDULED:
        w->retries++;
        return 0;
    case CB_EV_TASK_SUCCEEDED:
    case CB_EV_TASK_FAILED:
    case CB_EV_TASK_TIMED_OUT:
        return outcome(w, ev, obs);
    case CB_EV_JOB_SUCCEEDED:
    case CB_EV_JOB_FAILED:
    case CB_EV_JOB_CANCELLED: {
        double span;
        if (w->ended)
            return 0;
        w->ended = 1;
        obs_init(obs, CB_SLA_LEVEL_JOB, ev->time_ns);
        span = ms(w->submitted_ns, ev->time_ns);
        set(obs, "makespan", span);
        set(obs, "job_queue_time", ms(w->submitted_ns, w->started_ns));
        set(obs, "failure_rate", w->tasks ? (double)w->failed / (double)w->tasks : 0.0);
        set(obs, "retries", (double)w->retries);
        set(obs, "throughput", span > 0 ? (double)w->tasks / (span / 1000.0) : NAN);
        set(obs, "cost", (double)w->nanos / 1e9);
        return 1;
    }
    default:
        return 0;
    }
}

int cb_sla_obs_lookup(void *ctx, const char *metric, cb_sla_agg agg, double *out)
{
    const cb_sla_obs *o = ctx;
    int i = cb_sla_metric_index(metric);
    if (agg != CB_SLA_AGG_NONE || i < 0 || isnan(o->v[i]))
        return -1;
    *out = o->v[i];
    return 0;
}
