/* engine/scheduler.c - one job's next step (see scheduler.h). */
#include "scheduler.h"

#include <stdio.h>
#include <string.h>

#include "cb_alloc.h"

void cb_sched_plan_cleanup(cb_sched_plan *p)
{
    cb_free(p->dispatch);
    cb_free(p->retry);
    cb_free(p->timeout);
    memset(p, 0, sizeof *p);
}

static void wake_at(cb_sched_plan *p, int64_t t)
{
    if (t > 0 && (p->wake_ns == 0 || t < p->wake_ns))
        p->wake_ns = t;
}

static cb_status push_ref(cb_task_ref **arr, size_t *n, uint32_t task, uint32_t attempt)
{
    cb_task_ref *a = cb_realloc(*arr, (*n + 1) * sizeof *a);
    if (!a)
        return CB_ENOMEM;
    a[*n] = (cb_task_ref){task, attempt};
    *arr = a;
    (*n)++;
    return CB_OK;
}

typedef struct scan {
    uint64_t succeeded, lost; /* lost: failed with no retry left */
    uint32_t first_lost;
    const char *first_error;
    uint32_t next_new; /* first index never dispatched (dispatch is in order) */
    bool reduce_seen;
} scan;

/* Walk the records: timeouts, retries, due retries, counts. */
static cb_status scan_tasks(const cb_sched_in *in, cb_sched_plan *p, scan *s, cb_task_ref **due,
                            size_t *ndue)
{
    const cb_policy *pol = in->policy;
    const cb_flow *f = in->flow;
    for (size_t i = 0; i < in->ntasks; i++) {
        const cb_task_state *t = &in->tasks[i];
        uint32_t idx = in->index[i];
        cb_status st = CB_OK;
        bool is_reduce = f->kind == CB_FLOW_MAP_REDUCE && idx == cb_flow_reduce_task(f);

        if (is_reduce)
            s->reduce_seen = true;
        else if (idx + 1 > s->next_new)
            s->next_new = idx + 1;
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
                cb_retry *r = cb_realloc(p->retry, (p->nretry + 1) * sizeof *r);
                if (!r)
                    return CB_ENOMEM;
                p->retry = r;
                int64_t wait = cb_policy_backoff_ms(pol, in->job_key, idx, t->attempt + 1);
                r[p->nretry++] = (cb_retry){idx, t->attempt + 1, t->updated_ns + wait * 1000000};
            } else {
                if (s->lost++ == 0) {
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
            s->succeeded++;
            break;
        case CB_TASK_PENDING:
            break;
        }
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* A DAG step's record status, PENDING when it has none. */
static cb_task_status step_status(const cb_sched_in *in, uint32_t idx)
{
    size_t lo = 0, hi = in->ntasks;
    while (lo < hi) { /* records are in ascending index order */
        size_t mid = (lo + hi) / 2;
        if (in->index[mid] < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < in->ntasks && in->index[lo] == idx ? in->tasks[lo].status : CB_TASK_PENDING;
}

bool cb_sched_dag_runnable(const cb_flow *f, char *err, size_t errlen)
{
    for (size_t i = 0; f->kind == CB_FLOW_DAG && i < f->nsteps; i++) {
        const char *what = f->steps[i].foreach >= 0                            ? "foreach"
                           : json_object_get(f->steps[i].spec, "when") != NULL ? "when"
                                                                               : NULL;
        if (what) {
            snprintf(err, errlen, "/tasks/%s/%s: not run by this engine version yet",
                     f->steps[i].name, what);
            return false;
        }
    }
    return true;
}

/* DAG steps whose dependencies all succeeded and that never ran, in
 * topological order, up to `room`. */
static cb_status dag_ready(const cb_sched_in *in, cb_sched_plan *out, uint64_t room)
{
    const cb_flow *f = in->flow;
    for (size_t k = 0; k < f->nsteps && room > 0; k++) {
        uint32_t idx = f->order[k];
        bool ready = step_status(in, idx) == CB_TASK_PENDING;
        for (size_t d = 0; ready && d < f->steps[idx].ndeps; d++)
            ready = step_status(in, f->steps[idx].deps[d]) == CB_TASK_SUCCEEDED;
        if (ready) {
            cb_status st = push_ref(&out->dispatch, &out->ndispatch, idx, 1);
            if (st != CB_OK)
                return st;
            room--;
        }
    }
    return CB_OK;
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
    if (!cb_sched_dag_runnable(f, out->error, sizeof out->error)) {
        out->error[0] = '\0';
        return CB_EUNSUPP;
    }
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
        return CB_OK;
    }
    if ((st = scan_tasks(in, out, &s, &due, &ndue)) != CB_OK)
        goto out_fail;

    uint64_t map_total = f->kind == CB_FLOW_MAP_REDUCE ? f->map_tasks : f->tasks;
    /* In a DAG a lost step blocks what depends on it: no failure is tolerated. */
    if ((f->kind == CB_FLOW_DAG && s.lost > 0) ||
        cb_policy_too_many_failures(pol, s.lost, f->tasks)) {
        out->end = CB_END_FAIL;
        snprintf(out->error, sizeof out->error, "%llu of %u tasks failed; task %u: %.160s",
                 (unsigned long long)s.lost, f->tasks, s.first_lost,
                 s.first_error ? s.first_error : "failed");
        goto out_ok;
    }
    /* Done? Every task succeeded, or ended (failures tolerated). */
    bool reduce_done = false;
    if (f->kind == CB_FLOW_MAP_REDUCE) {
        for (size_t i = 0; i < in->ntasks; i++)
            if (in->index[i] == cb_flow_reduce_task(f) && in->tasks[i].status == CB_TASK_SUCCEEDED)
                reduce_done = true;
        if (reduce_done) {
            out->end = CB_END_SUCCEED;
            goto out_ok;
        }
    } else if (s.succeeded + s.lost >= map_total && out->nretry == 0 && ndue == 0 &&
               j->inflight == 0 && j->waiting == 0) {
        out->end = CB_END_SUCCEED;
        goto out_ok;
    }
    if (j->status == CB_JOB_SUSPENDED)
        goto out_ok; /* retries and timeouts go on; no new dispatch */

    /* Dispatch: due retries first, then new tasks in index order. */
    uint64_t busy = (uint64_t)j->inflight;
    uint64_t room = pol->parallelism > busy ? pol->parallelism - busy : 0;
    if (room > in->capacity)
        room = in->capacity;
    for (size_t i = 0; i < ndue && room > 0; i++, room--)
        if ((st = push_ref(&out->dispatch, &out->ndispatch, due[i].task, due[i].attempt)) != CB_OK)
            goto out_fail;
    if (f->kind == CB_FLOW_DAG) {
        if ((st = dag_ready(in, out, room)) != CB_OK)
            goto out_fail;
        goto out_ok;
    }
    for (uint32_t t = s.next_new; t < map_total && room > 0; t++, room--)
        if ((st = push_ref(&out->dispatch, &out->ndispatch, t, 1)) != CB_OK)
            goto out_fail;
    /* The reduce runs once every map task has ended well enough. */
    if (f->kind == CB_FLOW_MAP_REDUCE && !s.reduce_seen && room > 0 &&
        s.succeeded + s.lost >= map_total && s.next_new >= map_total)
        if ((st = push_ref(&out->dispatch, &out->ndispatch, cb_flow_reduce_task(f), 1)) != CB_OK)
            goto out_fail;
out_ok:
    cb_free(due);
    return CB_OK;
out_fail:
    cb_free(due);
    cb_sched_plan_cleanup(out);
    return st;
}
