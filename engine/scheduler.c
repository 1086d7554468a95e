/* engine/scheduler.c - one job's next step (see scheduler.h). */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_json.h"
#include "cb_alloc.h"

void cb_sched_plan_cleanup(cb_sched_plan *p)
{
    cb_free(p->dispatch);
    cb_free(p->retry);
    cb_free(p->timeout);
    cb_free(p->skip);
    cb_free(p->expand);
    cb_free(p->collect);
    memset(p, 0, sizeof *p);
}

const cb_task_state *cb_task_view_get(const cb_task_view *v, uint32_t idx)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) { /* records are in ascending index order */
        size_t mid = (lo + hi) / 2;
        if (v->index[mid] < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->n && v->index[lo] == idx ? &v->tasks[lo] : NULL;
}

static cb_task_status status_of(const cb_task_view *v, uint32_t idx)
{
    const cb_task_state *t = cb_task_view_get(v, idx);
    return t ? t->status : CB_TASK_PENDING;
}

static void wake_at(cb_sched_plan *p, int64_t t)
{
    if (t > 0 && (p->wake_ns == 0 || t < p->wake_ns))
        p->wake_ns = t;
}

/* Append one element to a plan array. */
static cb_status push(void **arr, size_t *n, size_t size, const void *elem)
{
    char *a = cb_realloc(*arr, (*n + 1) * size);
    if (!a)
        return CB_ENOMEM;
    memcpy(a + *n * size, elem, size);
    *arr = a;
    (*n)++;
    return CB_OK;
}

static cb_status push_ref(cb_task_ref **arr, size_t *n, uint32_t task, uint32_t attempt)
{
    cb_task_ref r = {task, attempt, false};
    return push((void **)arr, n, sizeof r, &r);
}

/* ---- DAG helpers ------------------------------------------------------------ */

int32_t cb_sched_step_of(const cb_flow *f, const cb_task_view *v, uint32_t task)
{
    if (f->kind != CB_FLOW_DAG)
        return -1;
    if (task < f->nsteps)
        return (int32_t)task;
    for (uint32_t s = 0; s < f->nsteps; s++) {
        const cb_task_state *t = cb_task_view_get(v, s);
        if (t && t->count && task >= t->first && task - t->first < t->count)
            return (int32_t)s;
    }
    return -1;
}

json_t *cb_sched_step_output(const cb_flow *f, const cb_task_view *v, uint32_t step)
{
    const cb_task_state *t = step < f->nsteps ? cb_task_view_get(v, step) : NULL;
    json_t *o = t && t->status == CB_TASK_SUCCEEDED ? json_array_get(t->output, 0) : NULL;
    return o ? json_incref(o) : json_null();
}

json_t *cb_sched_children_outputs(const cb_task_view *v, const cb_task_state *step)
{
    json_t *all = json_array();
    for (uint32_t k = 0; all && k < step->count; k++) {
        const cb_task_state *c = cb_task_view_get(v, step->first + k);
        json_t *o = c && c->status == CB_TASK_SUCCEEDED ? json_array_get(c->output, 0) : NULL;
        if (!o || json_array_append(all, o) != 0) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}

/* Python's truth: null, false, 0, "", [] and {} are false. */
static bool truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_TRUE:
        return true;
    case JSON_INTEGER:
    case JSON_REAL:
        return json_number_value(v) != 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false;
    }
}

/* <0, 0, >0 like strcmp; 2 when the values do not compare (type mismatch). */
static int compare(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_string(a) && json_is_string(b)) {
        int c = strcmp(json_string_value(a), json_string_value(b));
        return (c > 0) - (c < 0);
    }
    return json_equal(a, b) ? 0 : 2;
}

bool cb_sched_when_holds(const json_t *when, const json_t *value)
{
    const char *op = json_string_value(json_object_get(when, "op"));
    const json_t *ref = json_object_get(when, "value");
    int c;
    if (!op)
        return false;
    if (!strcmp(op, "truthy"))
        return truthy(value);
    if (!strcmp(op, "falsy"))
        return !truthy(value);
    c = compare(value, ref ? ref : json_null());
    if (!strcmp(op, "eq"))
        return c == 0;
    if (!strcmp(op, "ne"))
        return c != 0;
    if (c == 2)
        return false; /* an order between a number and a string does not hold */
    if (!strcmp(op, "gt"))
        return c > 0;
    if (!strcmp(op, "ge"))
        return c >= 0;
    if (!strcmp(op, "lt"))
        return c < 0;
    if (!strcmp(op, "le"))
        return c <= 0;
    return false;
}

/* ---- ranking ---------------------------------------------------------------- */

bool cb_sched_rank_before(const cb_rank *a, const cb_rank *b, int64_t aging_ms)
{
    int64_t pa = a->priority, pb = b->priority;
    if (aging_ms > 0) {
        pa += a->waiting_ns / (aging_ms * 1000000);
        pb += b->waiting_ns / (aging_ms * 1000000);
    }
    if (pa != pb)
        return pa > pb;
    if (a->deadline_ns != b->deadline_ns) {
        if (!a->deadline_ns || !b->deadline_ns)
            return a->deadline_ns != 0;
        return a->deadline_ns < b->deadline_ns;
    }
    return a->submitted_ns < b->submitted_ns;
}

uint64_t cb_sched_fair_share(const cb_share_in *t, size_t n, uint64_t free, int64_t aging_ms)
{
    uint64_t given[64] = {0};
    size_t k = n < 64 ? n : 64, m = k; /* more tenants than that on one backend: the first 64 */
    for (size_t i = 0; i < k; i++)
        if (t[i].mine)
            m = i;
    for (uint64_t slot = 0; slot < free; slot++) {
        size_t best = k;
        double best_share = 0;
        for (size_t i = 0; i < k; i++) {
            double share;
            int better;
            if (i != m && given[i] >= t[i].demand)
                continue;
            share = (double)(t[i].inflight + given[i]) / t[i].weight;
            if (best == k)
                better = 1;
            else if (share != best_share)
                better = share < best_share;
            else if (cb_sched_rank_before(&t[i].best, &t[best].best, aging_ms))
                better = 1;
            else if (cb_sched_rank_before(&t[best].best, &t[i].best, aging_ms))
                better = 0;
            else
                better = i == m;
            if (better) {
                best = i;
                best_share = share;
            }
        }
        if (best == k)
            break; /* nobody wants more */
        if (best == m) {
            int others = 0; /* only the asking tenant still wants: the rest is its */
            for (size_t i = 0; i < k; i++)
                others |= i != m && given[i] < t[i].demand;
            if (!others) {
                given[m] += free - slot;
                break;
            }
        }
        given[best]++;
    }
    return m < k ? given[m] : 0;
}

/* ---- a plan ----------------------------------------------------------------- */

typedef struct scan {
    uint64_t succeeded, lost; /* lost: failed with no retry left */
    uint32_t first_lost;
    const char *first_error;
    uint32_t next_new; /* first map index never dispatched (dispatch is in order) */
    bool reduce_seen;
    bool reduce_lost; /* the reduce failed with no retry left */
} scan;

/* What the job's counters say, so a flat job's plan needs only its open
 * records: new tasks go out in index order, so everything below the
 * frontier was dispatched once. */
static void scan_counters(const cb_sched_in *in, scan *s)
{
    const cb_flow *f = in->flow;
    uint32_t frontier = in->job->frontier;
    s->succeeded = in->job->succeeded;
    if (f->kind == CB_FLOW_MAP_REDUCE) {
        s->next_new = frontier < f->map_tasks ? frontier : f->map_tasks;
        s->reduce_seen = frontier > f->map_tasks;
    } else {
        s->next_new = frontier;
    }
}

static bool is_reduce(const cb_flow *f, uint32_t task)
{
    return f->kind == CB_FLOW_MAP_REDUCE && task == cb_flow_reduce_task(f);
}

static const cb_policy *policy_of(const cb_sched_in *in, uint32_t task)
{
    int32_t step;
    if (in->reduce_policy && is_reduce(in->flow, task))
        return in->reduce_policy;
    if (!in->step_policy || (step = cb_sched_step_of(in->flow, &in->view, task)) < 0)
        return in->policy;
    return &in->step_policy[step];
}

/* Walk the records: timeouts, retries, due retries, counts. */
static cb_status scan_tasks(const cb_sched_in *in, cb_sched_plan *p, scan *s, cb_task_ref **due,
                            size_t *ndue)
{
    for (size_t i = 0; i < in->view.n; i++) {
        const cb_task_state *t = &in->view.tasks[i];
        uint32_t idx = in->view.index[i];
        const cb_policy *pol = policy_of(in, idx);
        cb_status st = CB_OK;
        switch (t->status) {
        case CB_TASK_DISPATCHED:
        case CB_TASK_RUNNING:
            if (pol->task_timeout_ms > 0) {
                int64_t limit = t->updated_ns + pol->task_timeout_ms * 1000000;
                if (in->now_ns >= limit)
                    st = push_ref(&p->timeout, &p->ntimeout, idx, t->attempt);
                else
                    wake_at(p, limit);
            }
            break;
        case CB_TASK_FAILED:
        case CB_TASK_TIMED_OUT:
            if (cb_policy_may_retry(pol, t->attempt)) {
                int64_t wait = cb_policy_backoff_ms(pol, in->job_key, idx, t->attempt + 1);
                cb_retry r = {idx, t->attempt + 1, t->updated_ns + wait * 1000000};
                st = push((void **)&p->retry, &p->nretry, sizeof r, &r);
            } else {
                bool reduce = is_reduce(in->flow, idx);
                s->reduce_lost |= reduce;
                if (s->lost++ == 0 || reduce) { /* the reason a lost reduce fails the job */
                    s->first_lost = idx;
                    s->first_error = t->error;
                }
            }
            break;
        case CB_TASK_RETRY_WAIT:
            if (t->due_ns <= in->now_ns)
                st = push_ref(due, ndue, idx, t->attempt);
            else
                wake_at(p, t->due_ns);
            break;
        case CB_TASK_SUCCEEDED:
        case CB_TASK_PENDING:
        case CB_TASK_SKIPPED:
        case CB_TASK_EXPANDED:
            break;
        }
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* Whether every step `idx` depends on has succeeded or been skipped. */
static bool deps_done(const cb_sched_in *in, uint32_t idx)
{
    const cb_flow_step *st = &in->flow->steps[idx];
    for (size_t d = 0; d < st->ndeps; d++) {
        cb_task_status s = status_of(&in->view, st->deps[d]);
        if (s != CB_TASK_SUCCEEDED && s != CB_TASK_SKIPPED)
            return false;
    }
    return true;
}

/* Skip `idx` if its `when` does not hold; *skipped says which. */
static cb_status judge_when(const cb_sched_in *in, cb_sched_plan *out, uint32_t idx, bool *skipped)
{
    const cb_flow_step *st = &in->flow->steps[idx];
    const json_t *when = json_object_get(st->spec, "when");
    const char *on = json_string_value(json_object_get(when, "step"));
    json_t *value;
    cb_skip sk;

    *skipped = false;
    if (!when)
        return CB_OK;
    value = cb_sched_step_output(in->flow, &in->view, (uint32_t)cb_flow_step_index(in->flow, on));
    if (!value)
        return CB_ENOMEM;
    if (!cb_sched_when_holds(when, value)) {
        char *v = cb_json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        *skipped = true;
        sk.task = idx;
        snprintf(sk.reason, sizeof sk.reason, "/tasks/%.64s/when: %s of step %.64s's output %.60s",
                 st->name, json_string_value(json_object_get(when, "op")), on, v ? v : "?");
        free(v);
        json_decref(value);
        return push((void **)&out->skip, &out->nskip, sizeof sk, &sk);
    }
    json_decref(value);
    return CB_OK;
}

/* Expand a ready foreach step, or fail the job when there is nothing to
 * iterate over. *next_first is the next free task index. */
static cb_status expand(const cb_sched_in *in, cb_sched_plan *out, uint32_t idx,
                        uint32_t *next_first)
{
    const cb_flow *f = in->flow;
    const cb_flow_step *st = &f->steps[idx];
    json_t *over = cb_sched_step_output(f, &in->view, (uint32_t)st->foreach);
    cb_expand e;
    cb_status s;
    if (!over)
        return CB_ENOMEM;
    if (!json_is_array(over) || json_array_size(over) > UINT32_MAX - *next_first) {
        out->end = CB_END_FAIL;
        snprintf(out->error, sizeof out->error,
                 "/tasks/%.64s/foreach: the output of step %.64s is not an array", st->name,
                 f->steps[st->foreach].name);
        json_decref(over);
        return CB_OK;
    }
    e = (cb_expand){idx, *next_first, (uint32_t)json_array_size(over)};
    json_decref(over);
    if ((s = push((void **)&out->expand, &out->nexpand, sizeof e, &e)) == CB_OK)
        *next_first += e.count;
    return s;
}

/* What a plan may still dispatch: `left` in all (parallelism and the
 * capacity), and per lane what its account may take (a job of several
 * lanes, cb_sched_in.lane_capacity). */
typedef struct sched_room {
    uint64_t left;
    bool lanes;
    uint32_t lane[CB_FLOW_LANES_MAX];
} sched_room;

uint8_t cb_sched_lane_of(const cb_flow *f, const cb_task_view *v, uint32_t task)
{
    if (f->nlanes < 2)
        return 0;
    return cb_flow_lane(f, task, f->kind == CB_FLOW_DAG ? cb_sched_step_of(f, v, task) : -1);
}

/* Room for one more dispatch of `task` (taken when there is). */
static bool take(const cb_sched_in *in, sched_room *r, uint32_t task)
{
    uint8_t l = r->lanes ? cb_sched_lane_of(in->flow, &in->view, task) : 0;
    if (r->left == 0 || (r->lanes && r->lane[l] == 0))
        return false;
    if (r->lanes)
        r->lane[l]--;
    r->left--;
    return true;
}

/* Push task's dispatch if there is room for it, else count it as wanted. */
static cb_status offer(const cb_sched_in *in, cb_sched_plan *out, sched_room *r, uint32_t task,
                       uint32_t attempt)
{
    if (!take(in, r, task)) {
        out->want++;
        return CB_OK;
    }
    return push_ref(&out->dispatch, &out->ndispatch, task, attempt);
}

/* A foreach step's children: dispatch those never dispatched, collect the
 * step once all have succeeded. */
static cb_status children(const cb_sched_in *in, cb_sched_plan *out, uint32_t idx,
                          const cb_task_state *t, sched_room *r)
{
    uint32_t ok = 0;
    cb_status s = CB_OK;
    for (uint32_t k = 0; k < t->count && s == CB_OK; k++) {
        cb_task_status cs = status_of(&in->view, t->first + k);
        if (cs == CB_TASK_SUCCEEDED)
            ok++;
        else if (cs == CB_TASK_PENDING)
            s = offer(in, out, r, t->first + k, 1);
    }
    if (s == CB_OK && ok == t->count)
        s = push((void **)&out->collect, &out->ncollect, sizeof idx, &idx);
    return s;
}

/* The DAG's next steps in topological order, within the room. */
static cb_status dag_plan(const cb_sched_in *in, cb_sched_plan *out, sched_room *r)
{
    const cb_flow *f = in->flow;
    uint32_t next_first = in->job->total;
    bool all_done = true;
    cb_status s = CB_OK;

    for (size_t k = 0; k < f->nsteps && s == CB_OK && out->end == CB_END_NONE; k++) {
        uint32_t idx = f->order[k];
        const cb_task_state *t = cb_task_view_get(&in->view, idx);
        cb_task_status ts = t ? t->status : CB_TASK_PENDING;
        bool skipped;

        if (ts == CB_TASK_SUCCEEDED || ts == CB_TASK_SKIPPED)
            continue;
        all_done = false;
        if (ts == CB_TASK_EXPANDED) {
            s = children(in, out, idx, t, r);
            continue;
        }
        if (ts != CB_TASK_PENDING || !deps_done(in, idx))
            continue;
        if ((s = judge_when(in, out, idx, &skipped)) != CB_OK || skipped)
            continue;
        if (f->steps[idx].foreach >= 0)
            s = expand(in, out, idx, &next_first);
        else
            s = offer(in, out, r, idx, 1);
    }
    if (s == CB_OK && all_done && out->end == CB_END_NONE && in->job->inflight == 0 &&
        in->job->waiting == 0 && out->nretry == 0)
        out->end = CB_END_SUCCEED;
    return s;
}

/* Map, map_reduce and call: due retries, then new tasks in index order, then
 * the reduce once every map task has ended well enough. */
static cb_status flat_plan(const cb_sched_in *in, cb_sched_plan *out, const scan *s,
                           uint64_t map_total, sched_room *r)
{
    const cb_flow *f = in->flow;
    uint64_t left = map_total > s->next_new ? map_total - s->next_new : 0;
    uint64_t n = left < r->left ? left : r->left;
    cb_status st = CB_OK;

    if (r->lanes && n > r->lane[0]) /* map tasks are lane 0's (cb_flow_lane) */
        n = r->lane[0];
    out->want += left - n;
    for (uint32_t t = s->next_new; t < s->next_new + n && st == CB_OK; t++)
        st = push_ref(&out->dispatch, &out->ndispatch, t, 1);
    r->left -= n;
    if (r->lanes)
        r->lane[0] -= (uint32_t)n;
    if (st == CB_OK && f->kind == CB_FLOW_MAP_REDUCE && !s->reduce_seen &&
        s->succeeded + s->lost >= map_total && s->next_new >= map_total)
        st = offer(in, out, r, cb_flow_reduce_task(f), 1);
    return st;
}

/* Straggler backups (docs/engine.md): once the policy's share of the map
 * tasks has succeeded, a map task in flight for `factor` times the
 * successes' median (and min_ms) gets a backup attempt, within the room
 * left; the plan wakes when the next one would. */
static cb_status backups(const cb_sched_in *in, cb_sched_plan *out, const scan *s,
                         uint64_t map_total, sched_room *rm)
{
    const cb_policy *pol = in->policy;
    double median;
    int64_t wait;
    if (pol->backup_factor <= 0 || map_total == 0 ||
        (double)s->succeeded < pol->backup_after * (double)map_total ||
        !(median = cb_duration_median_ms(in->job->durations, in->job->ndurations)))
        return CB_OK;
    wait = (int64_t)(median * pol->backup_factor * 1e6);
    if (wait < pol->backup_min_ms * 1000000)
        wait = pol->backup_min_ms * 1000000;
    for (size_t i = 0; i < in->view.n; i++) {
        const cb_task_state *t = &in->view.tasks[i];
        uint32_t idx = in->view.index[i];
        cb_task_ref r = {idx, t->attempt + 1, true};
        if ((t->status != CB_TASK_DISPATCHED && t->status != CB_TASK_RUNNING) || t->backup ||
            is_reduce(in->flow, idx))
            continue;
        if (in->now_ns < t->updated_ns + wait)
            wake_at(out, t->updated_ns + wait);
        else if (!take(in, rm, idx))
            out->want++;
        else if (push((void **)&out->dispatch, &out->ndispatch, sizeof r, &r) != CB_OK)
            return CB_ENOMEM;
    }
    return CB_OK;
}

static bool map_done(const cb_sched_in *in, const cb_sched_plan *out, const scan *s,
                     uint64_t map_total, size_t ndue)
{
    const cb_flow *f = in->flow;
    if (f->kind == CB_FLOW_MAP_REDUCE) { /* dispatched, and no longer open */
        const cb_task_state *r = cb_task_view_get(&in->view, cb_flow_reduce_task(f));
        return s->reduce_seen && (!r || r->status == CB_TASK_SUCCEEDED);
    }
    return s->succeeded + s->lost >= map_total && out->nretry == 0 && ndue == 0 &&
           in->job->inflight == 0 && in->job->waiting == 0;
}

/* What a job about to start will dispatch first, beyond `capacity`: its
 * claim on a shared backend from the very first plan. */
static uint64_t first_wave(const cb_flow *f, const cb_policy *pol, uint32_t capacity)
{
    uint64_t n = 0;
    if (f->kind == CB_FLOW_DAG) {
        for (size_t i = 0; i < f->nsteps; i++)
            n += f->steps[i].ndeps == 0;
    } else {
        n = f->kind == CB_FLOW_MAP_REDUCE ? f->map_tasks : f->tasks;
    }
    if (n > pol->parallelism)
        n = pol->parallelism;
    return n > capacity ? n - capacity : 0;
}

cb_status cb_sched_plan_job(const cb_sched_in *in, cb_sched_plan *out)
{
    const cb_job_state *j = in->job;
    const cb_flow *f = in->flow;
    const cb_policy *pol = in->policy;
    cb_task_ref *due = NULL;
    size_t ndue = 0;
    scan s = {0};
    cb_status st;

    memset(out, 0, sizeof *out);
    if (j->status == CB_JOB_ABSENT || cb_job_terminal(j->status))
        return CB_OK;
    if (j->cancel_requested) {
        out->end = CB_END_CANCEL;
        return CB_OK;
    }
    if (pol->job_timeout_ms > 0 && j->submitted_ns) {
        int64_t limit = j->submitted_ns + pol->job_timeout_ms * 1000000;
        if (in->now_ns >= limit) {
            out->end = CB_END_FAIL;
            snprintf(out->error, sizeof out->error, "job timed out after %lld ms",
                     (long long)pol->job_timeout_ms);
            return CB_OK;
        }
        wake_at(out, limit);
    }
    if (j->status == CB_JOB_SUBMITTED) {
        out->start = true; /* tasks come once the start is folded */
        out->want = first_wave(f, pol, in->capacity);
        return CB_OK;
    }
    scan_counters(in, &s);
    if ((st = scan_tasks(in, out, &s, &due, &ndue)) != CB_OK)
        goto out_fail;

    uint64_t map_total = f->kind == CB_FLOW_MAP_REDUCE ? f->map_tasks : f->tasks;
    /* In a DAG a lost step blocks what depends on it: no failure is tolerated;
     * nor is a lost reduce (it is the result). Map losses are tolerated as
     * a share of the map tasks. */
    if ((f->kind == CB_FLOW_DAG && s.lost > 0) || s.reduce_lost ||
        cb_policy_too_many_failures(pol, s.lost, map_total)) {
        out->end = CB_END_FAIL;
        snprintf(out->error, sizeof out->error, "%llu of %u tasks failed; task %u: %.160s",
                 (unsigned long long)s.lost, j->total, s.first_lost,
                 s.first_error ? s.first_error : "failed");
        goto out_ok;
    }
    if (f->kind != CB_FLOW_DAG && map_done(in, out, &s, map_total, ndue)) {
        out->end = CB_END_SUCCEED;
        goto out_ok;
    }

    /* Room: what parallelism allows, bounded by the backend's capacity; a
     * suspended job, or one over its budget, dispatches nothing (retries
     * and timeouts go on). */
    uint64_t busy = (uint64_t)j->inflight;
    uint64_t room = pol->parallelism > busy ? pol->parallelism - busy : 0;
    bool broke = pol->budget_nanos && j->cost.nanos > pol->budget_nanos;
    bool suspended = j->status == CB_JOB_SUSPENDED || broke;
    uint64_t allowed = suspended ? 0 : room < in->capacity ? room : in->capacity;
    sched_room give = {allowed, in->lane_capacity && f->nlanes > 1, {0}};
    bool lane_short = false; /* a lane's account has less than the job could take */
    for (uint8_t k = 0; give.lanes && k < f->nlanes; k++) {
        give.lane[k] = in->lane_capacity[k];
        lane_short |= give.lane[k] < allowed;
    }
    for (size_t i = 0; i < ndue; i++)
        if ((st = offer(in, out, &give, due[i].task, due[i].attempt)) != CB_OK)
            goto out_fail;
    st = f->kind == CB_FLOW_DAG ? dag_plan(in, out, &give)
                                : flat_plan(in, out, &s, map_total, &give);
    if (st == CB_OK && f->kind != CB_FLOW_DAG)
        st = backups(in, out, &s, map_total, &give);
    if (st != CB_OK)
        goto out_fail;
    if (broke && out->end == CB_END_NONE && j->inflight == 0) {
        /* over budget, and what was in flight has ended: it stops here */
        out->end = CB_END_FAIL;
        snprintf(out->error, sizeof out->error,
                 "over budget: its invocations cost %.9g, its budget is %.9g; %u of %u tasks "
                 "succeeded and no more were dispatched (raise \"budget\" and re-run it: cb retry)",
                 cb_cost_amount(&j->cost), pol->budget, j->succeeded, j->total);
        goto out_ok;
    }
    /* Only a shortfall of capacity counts: parallelism and suspension are the job's own. */
    if (suspended || (allowed == room && !lane_short))
        out->want = 0;
    else if (out->want > room - out->ndispatch)
        out->want = room - out->ndispatch;
out_ok:
    cb_free(due);
    return CB_OK;
out_fail:
    cb_free(due);
    cb_sched_plan_cleanup(out);
    return st;
}
